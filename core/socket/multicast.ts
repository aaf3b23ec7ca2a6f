// deno-lint-ignore-file require-await -- async turns synchronous throws into rejections
/**
 * `MulticastSocket`: a UDP socket that joins groups (API 11).
 *
 * @module
 */
import { BusinessError, ParameterError } from "../errors.ts";
import type { IpEndpoint, SocketOptionMap } from "./platform.ts";
import type { AsyncCallback, NetAddress } from "./types.ts";
import {
  closedError,
  dual,
  EBADF,
  isIPv4,
  isIPv6,
  optBool,
  optUint,
  toBusinessError,
  toEndpoint,
} from "./_util.ts";
import { UDPSocket } from "./udp.ts";

function checkGroup(addr: NetAddress, action: string): IpEndpoint {
  const e = toEndpoint(addr, action);
  const multicast = e.family === "IPv4"
    ? isIPv4(e.address) && Number(e.address.split(".")[0]) >= 224 &&
      Number(e.address.split(".")[0]) <= 239
    : isIPv6(e.address) && e.address.toLowerCase().startsWith("ff");
  if (!multicast) {
    throw new ParameterError(`Cannot ${action}: "${e.address}" is not a multicast address`);
  }
  return e;
}

/**
 * A multicast UDP socket (API 11). Create it with
 * `socket.constructMulticastSocketInstance()`. `addMembership` binds the
 * socket to the wildcard address and the group's port when it is not bound.
 *
 * @example Join and leave a group
 * ```ts ignore
 * import { constructMulticastSocketInstance } from "../../socket.ts";
 * const m = constructMulticastSocketInstance();
 * await m.addMembership({ address: "239.255.0.1", port: 32123 });
 * await m.setMulticastTTL(4);
 * await m.dropMembership({ address: "239.255.0.1", port: 32123 });
 * await m.close();
 * ```
 */
export class MulticastSocket extends UDPSocket {
  /**
   * Join a multicast group (binding `0.0.0.0:port` or `[::]:port` first when unbound).
   *
   * @param multicastAddress The group and port.
   * @param callback Called when joined.
   */
  addMembership(multicastAddress: NetAddress, callback: AsyncCallback<void>): void;
  /**
   * Join a multicast group.
   *
   * @param multicastAddress The group and port.
   * @returns When joined.
   */
  addMembership(multicastAddress: NetAddress): Promise<void>;
  addMembership(
    multicastAddress: NetAddress,
    callback?: AsyncCallback<void>,
  ): Promise<void> | void {
    return dual(async () => {
      const action = "add membership";
      const g = checkGroup(multicastAddress, action);
      if (this.isClosed) throw closedError(action, "multicast socket");
      const h = this.handle ?? await this.doBind(
        { address: g.family === "IPv4" ? "0.0.0.0" : "::", port: g.port, family: g.family },
        action,
      );
      try {
        h.addMembership(g.address);
      } catch (e) {
        throw toBusinessError(e);
      }
    }, callback);
  }

  /**
   * Leave a multicast group.
   *
   * @param multicastAddress The group.
   * @param callback Called when left.
   */
  dropMembership(multicastAddress: NetAddress, callback: AsyncCallback<void>): void;
  /**
   * Leave a multicast group.
   *
   * @param multicastAddress The group.
   * @returns When left.
   */
  dropMembership(multicastAddress: NetAddress): Promise<void>;
  dropMembership(
    multicastAddress: NetAddress,
    callback?: AsyncCallback<void>,
  ): Promise<void> | void {
    return dual(async () => {
      const action = "drop membership";
      const g = checkGroup(multicastAddress, action);
      if (this.isClosed) throw closedError(action, "multicast socket");
      const h = this.handle;
      if (h === undefined) {
        throw new BusinessError(EBADF, `Cannot ${action}: the multicast socket is not bound`);
      }
      try {
        h.dropMembership(g.address);
      } catch (e) {
        throw toBusinessError(e);
      }
    }, callback);
  }

  /**
   * Set the multicast TTL (0..255).
   *
   * @param ttl The TTL.
   * @param callback Called when set.
   */
  setMulticastTTL(ttl: number, callback: AsyncCallback<void>): void;
  /**
   * Set the multicast TTL (0..255).
   *
   * @param ttl The TTL.
   * @returns When set.
   */
  setMulticastTTL(ttl: number): Promise<void>;
  setMulticastTTL(ttl: number, callback?: AsyncCallback<void>): Promise<void> | void {
    return dual(async () => {
      const action = "set the multicast TTL";
      const v = optUint(ttl, "ttl", action, 255);
      if (v === undefined) throw new ParameterError(`Cannot ${action}: ttl is required`);
      this.#apply("multicastTTL", v, action);
    }, callback);
  }

  /**
   * The multicast TTL in effect.
   *
   * @param callback Receives the TTL.
   */
  getMulticastTTL(callback: AsyncCallback<number>): void;
  /**
   * The multicast TTL in effect.
   *
   * @returns The TTL.
   */
  getMulticastTTL(): Promise<number>;
  getMulticastTTL(callback?: AsyncCallback<number>): Promise<number> | void {
    return dual(async () => this.#read("multicastTTL", "get the multicast TTL"), callback, 0);
  }

  /**
   * Turn multicast loopback on or off.
   *
   * @param flag Whether own datagrams are looped back.
   * @param callback Called when set.
   */
  setLoopbackMode(flag: boolean, callback: AsyncCallback<void>): void;
  /**
   * Turn multicast loopback on or off.
   *
   * @param flag Whether own datagrams are looped back.
   * @returns When set.
   */
  setLoopbackMode(flag: boolean): Promise<void>;
  setLoopbackMode(flag: boolean, callback?: AsyncCallback<void>): Promise<void> | void {
    return dual(async () => {
      const action = "set the loopback mode";
      const v = optBool(flag, "flag", action);
      if (v === undefined) throw new ParameterError(`Cannot ${action}: flag is required`);
      this.#apply("multicastLoopback", v, action);
    }, callback);
  }

  /**
   * Whether multicast loopback is on.
   *
   * @param callback Receives the mode.
   */
  getLoopbackMode(callback: AsyncCallback<boolean>): void;
  /**
   * Whether multicast loopback is on.
   *
   * @returns The mode.
   */
  getLoopbackMode(): Promise<boolean>;
  getLoopbackMode(callback?: AsyncCallback<boolean>): Promise<boolean> | void {
    return dual(async () => this.#read("multicastLoopback", "get the loopback mode"), callback);
  }

  #apply<K extends "multicastTTL" | "multicastLoopback">(
    k: K,
    v: SocketOptionMap[K],
    action: string,
  ): void {
    if (this.isClosed) throw closedError(action, "multicast socket");
    const h = this.handle;
    if (h === undefined) {
      throw new BusinessError(EBADF, `Cannot ${action}: the multicast socket is not bound`);
    }
    if (!h.setOption(k, v)) {
      throw new BusinessError(801, `Cannot ${action}: this runtime cannot set ${k}`);
    }
    this.applied[k] = v;
  }

  #read<K extends "multicastTTL" | "multicastLoopback">(
    k: K,
    action: string,
  ): SocketOptionMap[K] {
    if (this.isClosed) throw closedError(action, "multicast socket");
    const h = this.handle;
    if (h === undefined) {
      throw new BusinessError(EBADF, `Cannot ${action}: the multicast socket is not bound`);
    }
    const v = h.getOption(k) ?? this.applied[k];
    if (v !== undefined) return v as SocketOptionMap[K];
    return (k === "multicastTTL" ? 1 : true) as SocketOptionMap[K];
  }
}

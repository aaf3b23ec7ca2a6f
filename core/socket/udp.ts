// deno-lint-ignore-file require-await -- async turns synchronous throws into rejections
/**
 * `UDPSocket` and `MulticastSocket`.
 *
 * @module
 */
import { BusinessError, ParameterError } from "../errors.ts";
import { Emitter } from "../emitter.ts";
import type {
  DatagramHandle,
  IpEndpoint,
  SocketOption,
  SocketOptionMap,
  SocketPlatform,
} from "./platform.ts";
import type {
  AsyncCallback,
  Callback,
  ErrorCallback,
  NetAddress,
  SocketMessageInfo,
  SocketStateBase,
  UDPExtraOptions,
  UDPSendOptions,
} from "./types.ts";
import { applyOptions } from "./_stream.ts";
import {
  binaryView,
  checkObject,
  checkOff,
  checkOn,
  closedError,
  copyBytes,
  dual,
  EBADF,
  EINVAL,
  encodeData,
  EndpointCache,
  errorEventOf,
  optBool,
  optUint,
  RESOLVED,
  settle,
  toArrayBuffer,
  toBusinessError,
  toEndpoint,
  toNetAddress,
  withTimeout,
} from "./_util.ts";

type UdpEvents = {
  message: SocketMessageInfo;
  listening: void;
  close: void;
  error: BusinessError<unknown>;
};
const UDP_EVENTS = ["message", "listening", "close", "error"] as const;

const UDP_OPTIONS: ReadonlyArray<[keyof UDPExtraOptions, SocketOption]> = [
  ["broadcast", "broadcast"],
  ["receiveBufferSize", "receiveBufferSize"],
  ["sendBufferSize", "sendBufferSize"],
  ["reuseAddress", "reuseAddress"],
];

/**
 * A UDP socket. Create it with `socket.constructUDPSocketInstance()`.
 *
 * @example Send a datagram to yourself on loopback
 * ```ts
 * import { constructUDPSocketInstance } from "../../socket.ts";
 * const udp = constructUDPSocketInstance();
 * await udp.bind({ address: "127.0.0.1", port: 0, family: 1 });
 * const got = new Promise((resolve) => udp.on("message", resolve));
 * const { port } = await udp.getLocalAddress();
 * await udp.send({ data: "ping", address: { address: "127.0.0.1", port } });
 * await got;
 * await udp.close();
 * ```
 */
export class UDPSocket {
  #platform: SocketPlatform;
  #events: Emitter<UdpEvents> = new Emitter<UdpEvents>({ single: true });
  #handle: DatagramHandle | undefined;
  #binding: Promise<DatagramHandle> | undefined;
  #closed = false;
  #applied: Partial<SocketOptionMap> = {};
  #socketTimeout: number | undefined;
  #to: EndpointCache = new EndpointCache();
  // The last `ArrayBuffer` sent and its view: a loop sending one buffer builds one view.
  #lastBuffer: unknown = undefined;
  #lastView: Uint8Array | undefined = undefined;

  /**
   * Make a UDP socket on a platform (use `socket.constructUDPSocketInstance()`).
   *
   * @param platform The platform adapter.
   */
  constructor(platform: SocketPlatform) {
    this.#platform = platform;
  }

  /**
   * The bound handle, if any (for `MulticastSocket`).
   *
   * @returns The handle.
   */
  protected get handle(): DatagramHandle | undefined {
    return this.#handle;
  }

  /**
   * Whether the socket is closed (for `MulticastSocket`).
   *
   * @returns Whether it is.
   */
  protected get isClosed(): boolean {
    return this.#closed;
  }

  /**
   * The options applied so far (for `MulticastSocket`).
   *
   * @returns The options.
   */
  protected get applied(): Partial<SocketOptionMap> {
    return this.#applied;
  }

  /**
   * Bind, used by `bind` and by `MulticastSocket.addMembership`.
   *
   * @param local The endpoint.
   * @param action The action, for messages.
   * @returns The handle.
   */
  protected doBind(local: IpEndpoint, action: string): Promise<DatagramHandle> {
    if (this.#closed) return Promise.reject(closedError(action, "UDP socket"));
    if (this.#handle !== undefined || this.#binding !== undefined) {
      return Promise.reject(
        new BusinessError(EINVAL, `Cannot ${action}: the UDP socket is already bound`),
      );
    }
    const binding = this.#platform.udpBind({ local }, {
      onMessage: (bytes, from) => {
        this.#events.emit("message", {
          message: toArrayBuffer(bytes),
          remoteInfo: {
            address: from.address,
            family: from.family,
            port: from.port,
            size: bytes.byteLength,
          },
        });
      },
      onError: (e) => this.#events.emit("error", errorEventOf(e)),
    });
    this.#binding = binding;
    return binding.then(async (h) => {
      this.#binding = undefined;
      if (this.#closed) {
        await h.close();
        throw closedError(action, "UDP socket");
      }
      this.#handle = h;
      this.#events.emit("listening", undefined);
      return h;
    }, (e) => {
      this.#binding = undefined;
      throw e;
    });
  }

  /**
   * Bind the socket (port 0 or absent: the system chooses).
   *
   * @param address The local address.
   * @param callback Called when bound.
   */
  bind(address: NetAddress, callback: AsyncCallback<void>): void;
  /**
   * Bind the socket (port 0 or absent: the system chooses).
   *
   * @param address The local address.
   * @returns When bound.
   */
  bind(address: NetAddress): Promise<void>;
  bind(address: NetAddress, callback?: AsyncCallback<void>): Promise<void> | void {
    return dual(async () => {
      await this.doBind(toEndpoint(address, "bind"), "bind");
    }, callback);
  }

  /**
   * Send a datagram (after `bind`).
   *
   * @param options The data and destination.
   * @param callback Called when sent.
   */
  send(options: UDPSendOptions, callback: AsyncCallback<void>): void;
  /**
   * Send a datagram (after `bind`).
   *
   * @param options The data and destination.
   * @returns When sent.
   */
  send(options: UDPSendOptions): Promise<void>;
  send(options: UDPSendOptions, callback?: AsyncCallback<void>): Promise<void> | void {
    let p: Promise<void>;
    try {
      p = this.#send(options);
    } catch (e) {
      p = Promise.reject(e);
    }
    return typeof callback === "function" ? settle(p, callback) : p;
  }

  #send(options: UDPSendOptions): Promise<void> {
    const action = "send data";
    const o = checkObject<UDPSendOptions>(options, action);
    const to = this.#to.get(o.address, action);
    const data = o.data;
    // Binary data is lent to the handle (it never keeps it past the send); strings are encoded.
    let view: Uint8Array | undefined;
    if (data === this.#lastBuffer) view = this.#lastView;
    else {
      view = binaryView(data);
      if (data instanceof ArrayBuffer) {
        this.#lastBuffer = data;
        this.#lastView = view;
      }
    }
    let bytes = view ?? encodeData(data, undefined, action);
    if (this.#closed) throw closedError(action, "UDP socket");
    const h = this.#handle;
    if (h === undefined) {
      throw new BusinessError(EBADF, `Cannot ${action}: the UDP socket is not bound`);
    }
    if (to.family !== h.localAddress.family) {
      throw new ParameterError(
        `Cannot ${action}: address "${to.address}" is ${to.family} but the socket is bound to ${h.localAddress.family}`,
      );
    }
    const t = this.#socketTimeout;
    // A send that times out may still go out later: it must not borrow the caller's buffer.
    if (t && view !== undefined) bytes = copyBytes(view);
    const p = h.send(bytes, to);
    if (p === undefined) return RESOLVED;
    return t ? withTimeout(p, t, `Cannot ${action}: not sent within socketTimeout "${t}" ms`) : p;
  }

  /**
   * Close the socket; closing twice, or before binding, succeeds.
   *
   * @param callback Called when closed.
   */
  close(callback: AsyncCallback<void>): void;
  /**
   * Close the socket; closing twice, or before binding, succeeds.
   *
   * @returns When closed.
   */
  close(): Promise<void>;
  close(callback?: AsyncCallback<void>): Promise<void> | void {
    return dual(async () => {
      if (this.#closed) return;
      this.#closed = true;
      this.#lastBuffer = this.#lastView = undefined;
      const h = this.#handle;
      this.#handle = undefined;
      if (h !== undefined) {
        try {
          await h.close();
        } catch (e) {
          throw toBusinessError(e);
        }
        this.#events.emit("close", undefined);
      }
    }, callback);
  }

  /**
   * linkweave extension: `await using` closes it when the scope ends, as
   * `close()` does.
   *
   * @returns When closed.
   */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /**
   * The socket state.
   *
   * @param callback Receives the state.
   */
  getState(callback: AsyncCallback<SocketStateBase>): void;
  /**
   * The socket state.
   *
   * @returns The state.
   */
  getState(): Promise<SocketStateBase>;
  getState(callback?: AsyncCallback<SocketStateBase>): Promise<SocketStateBase> | void {
    return dual(async () => ({
      isBound: this.#handle !== undefined,
      isClose: this.#closed,
      isConnected: false,
    }), callback);
  }

  /**
   * The bound address (after `bind`).
   *
   * @param callback Receives the address.
   */
  getLocalAddress(callback: AsyncCallback<NetAddress>): void;
  /**
   * The bound address (after `bind`).
   *
   * @returns The address.
   */
  getLocalAddress(): Promise<NetAddress>;
  getLocalAddress(callback?: AsyncCallback<NetAddress>): Promise<NetAddress> | void {
    return dual(async () => {
      if (this.#closed) throw closedError("get the local address", "UDP socket");
      if (this.#handle === undefined) {
        throw new BusinessError(EBADF, "Cannot get the local address: the UDP socket is not bound");
      }
      return toNetAddress(this.#handle.localAddress);
    }, callback);
  }

  /**
   * Set socket options (after `bind`). Options this runtime cannot apply are
   * skipped, never pretended: see `getExtraOptions`.
   *
   * @param options The options.
   * @param callback Called when applied.
   */
  setExtraOptions(options: UDPExtraOptions, callback: AsyncCallback<void>): void;
  /**
   * Set socket options (after `bind`).
   *
   * @param options The options.
   * @returns When applied.
   */
  setExtraOptions(options: UDPExtraOptions): Promise<void>;
  setExtraOptions(options: UDPExtraOptions, callback?: AsyncCallback<void>): Promise<void> | void {
    return dual(async () => {
      const action = "set extra options";
      const o = checkObject<UDPExtraOptions>(options, action);
      const os: Partial<SocketOptionMap> = {};
      const bc = optBool(o.broadcast, "broadcast", action);
      if (bc !== undefined) os.broadcast = bc;
      const ra = optBool(o.reuseAddress, "reuseAddress", action);
      if (ra !== undefined) os.reuseAddress = ra;
      const rb = optUint(o.receiveBufferSize, "receiveBufferSize", action);
      if (rb !== undefined) os.receiveBufferSize = rb;
      const sb = optUint(o.sendBufferSize, "sendBufferSize", action);
      if (sb !== undefined) os.sendBufferSize = sb;
      const st = optUint(o.socketTimeout, "socketTimeout", action);
      if (this.#closed) throw closedError(action, "UDP socket");
      if (this.#handle === undefined) {
        throw new BusinessError(EBADF, `Cannot ${action}: the UDP socket is not bound`);
      }
      applyOptions(this.#handle, os, this.#applied);
      if (st !== undefined) this.#socketTimeout = st;
    }, callback);
  }

  /**
   * The options really in effect (options the runtime could not apply are absent).
   *
   * @param callback Receives the options.
   */
  getExtraOptions(callback: AsyncCallback<UDPExtraOptions>): void;
  /**
   * The options really in effect.
   *
   * @returns The options.
   */
  getExtraOptions(): Promise<UDPExtraOptions>;
  getExtraOptions(callback?: AsyncCallback<UDPExtraOptions>): Promise<UDPExtraOptions> | void {
    return dual(async () => {
      if (this.#closed) throw closedError("get extra options", "UDP socket");
      const out: Record<string, unknown> = {};
      for (const [pub, os] of UDP_OPTIONS) {
        const v = this.#handle?.getOption(os) ?? this.#applied[os];
        if (v !== undefined) out[pub] = v;
      }
      if (this.#socketTimeout !== undefined) out.socketTimeout = this.#socketTimeout;
      return out as UDPExtraOptions;
    }, callback);
  }

  /**
   * Listen for datagrams. One callback per event type: it replaces the one set
   * before.
   *
   * @param type `message`.
   * @param callback Receives each datagram and its sender.
   */
  on(type: "message", callback: Callback<SocketMessageInfo>): void;
  /**
   * Listen for the socket being bound or closed. One callback per event
   * type: it replaces the one set before.
   *
   * @param type `listening` or `close`.
   * @param callback Called on the event.
   */
  on(type: "listening" | "close", callback: Callback<void>): void;
  /**
   * Listen for errors. One callback per event type: it replaces the one set
   * before.
   *
   * @param type `error`.
   * @param callback Receives the error.
   */
  on(type: "error", callback: ErrorCallback): void;
  on(type: string, callback: (v: never) => void): void {
    if (checkOn(type, callback, UDP_EVENTS, "UDP socket")) {
      this.#events.on(type as "message", callback as Callback<SocketMessageInfo>);
    }
  }

  /**
   * Remove the callback of the event type: with `callback`, only if it is the
   * one `on` set (as OpenHarmony); without, whatever was set.
   *
   * @param type The event type.
   * @param callback The callback to remove.
   */
  off(type: "message", callback?: Callback<SocketMessageInfo>): void;
  /**
   * Remove the callback of the event type: with `callback`, only if it is the
   * one `on` set (as OpenHarmony); without, whatever was set.
   *
   * @param type The event type.
   * @param callback The callback to remove.
   */
  off(type: "listening" | "close", callback?: Callback<void>): void;
  /**
   * Remove the callback of the event type: with `callback`, only if it is the
   * one `on` set (as OpenHarmony); without, whatever was set.
   *
   * @param type The event type.
   * @param callback The callback to remove.
   */
  off(type: "error", callback?: ErrorCallback): void;
  off(type: string, callback?: (v: never) => void): void {
    if (checkOff(type, callback, UDP_EVENTS, "UDP socket")) {
      this.#events.off(type as "message", callback as Callback<SocketMessageInfo> | undefined);
    }
  }
}

// deno-lint-ignore-file require-await -- async turns synchronous throws into rejections
/**
 * `TCPSocket`, the TCP client (the server is in `tcp_server.ts`).
 *
 * @module
 */
import { BusinessError, ParameterError } from "../errors.ts";
import { abortSignal } from "../abort.ts";
import type { BoundTcpHandle, IpEndpoint, SocketPlatform } from "./platform.ts";
import type {
  AsyncCallback,
  Callback,
  ErrorCallback,
  NetAddress,
  SocketMessageInfo,
  SocketStateBase,
  TCPConnectOptions,
  TCPExtraOptions,
  TCPSendOptions,
} from "./types.ts";
import { parseStreamOptions, StreamCore } from "./_stream.ts";
import {
  checkObject,
  closedError,
  DEFAULT_CONNECT_TIMEOUT,
  dual,
  EBADF,
  EINVAL,
  ENOTCONN,
  ipMessage,
  optUint,
  toEndpoint,
  toNetAddress,
} from "./_util.ts";

const CLIENT_EVENTS = ["message", "connect", "close", "error"] as const;

/**
 * A TCP client socket. Create it with `socket.constructTCPSocketInstance()`.
 *
 * @example Connect, send and close (to a loopback server)
 * ```ts
 * import { constructTCPSocketInstance, constructTCPSocketServerInstance } from "../../socket.ts";
 * const server = constructTCPSocketServerInstance();
 * await server.listen({ address: "127.0.0.1", port: 0 });
 * const { port } = await server.getLocalAddress();
 * const tcp = constructTCPSocketInstance();
 * await tcp.connect({ address: { address: "127.0.0.1", port }, timeout: 2000 });
 * await tcp.send({ data: "Hello, server!" });
 * await tcp.close();
 * await server.close();
 * ```
 */
export class TCPSocket {
  #platform: SocketPlatform;
  #core: StreamCore<SocketMessageInfo>;
  #local: IpEndpoint | undefined;
  #bound: BoundTcpHandle | undefined;
  #binding = false;

  /**
   * Make a TCP socket on a platform (use `socket.constructTCPSocketInstance()`).
   *
   * @param platform The platform adapter.
   */
  constructor(platform: SocketPlatform) {
    this.#platform = platform;
    this.#core = new StreamCore("TCP socket", ipMessage(() => this.#core.handle?.remoteAddress));
  }

  /**
   * Bind the local address and port used by a later `connect` (port 0: the
   * system chooses). On Node and Deno the kernel binds now, so
   * `getLocalAddress` reports the chosen port; on Bun the address is
   * recorded and bound at `connect` (see `docs/socket.md`).
   *
   * @param address The local address.
   * @param callback Called when done.
   */
  bind(address: NetAddress, callback: AsyncCallback<void>): void;
  /**
   * Bind the local address and port used by a later `connect`.
   *
   * @param address The local address.
   * @returns When done.
   */
  bind(address: NetAddress): Promise<void>;
  bind(address: NetAddress, callback?: AsyncCallback<void>): Promise<void> | void {
    return dual(async () => {
      const local = toEndpoint(address, "bind");
      this.#core.checkUnconnected("bind");
      if (this.#binding) {
        throw new BusinessError(EINVAL, "Cannot bind: the TCP socket is already binding");
      }
      // Binding again releases the previous bound socket.
      const previous = this.#bound;
      this.#bound = undefined;
      this.#local = undefined;
      this.#binding = true;
      try {
        await previous?.close();
        const bound = await this.#platform.tcpBind?.(local);
        if (this.#core.closed) {
          await bound?.close();
          throw closedError("bind", "TCP socket");
        }
        this.#bound = bound;
        this.#local = bound?.localAddress ?? local;
      } finally {
        this.#binding = false;
      }
    }, callback);
  }

  /**
   * Connect to a server. `timeout` defaults to 5000 ms. linkweave extension:
   * `options.signal` gives the connect up (see `TCPConnectOptions`).
   *
   * @param options The server address and timeout.
   * @param callback Called when connected or failed.
   */
  connect(options: TCPConnectOptions, callback: AsyncCallback<void>): void;
  /**
   * Connect to a server. `timeout` defaults to 5000 ms. linkweave extension:
   * `options.signal` gives the connect up (see `TCPConnectOptions`).
   *
   * @param options The server address and timeout.
   * @returns When connected.
   *
   * @example Connect within a deadline of your own
   * ```ts ignore
   * await tcp.connect({ address: { address: "127.0.0.1", port }, signal: AbortSignal.timeout(500) });
   * ```
   */
  connect(options: TCPConnectOptions): Promise<void>;
  connect(options: TCPConnectOptions, callback?: AsyncCallback<void>): Promise<void> | void {
    return dual(async () => {
      const o = checkObject<TCPConnectOptions>(options, "connect");
      const remote = toEndpoint(o.address, "connect");
      const timeout = optUint(o.timeout, "timeout", "connect") || DEFAULT_CONNECT_TIMEOUT;
      const signal = abortSignal(o, "connect", (m) => new ParameterError(m));
      this.#core.checkUnconnected("connect");
      signal?.throwIfAborted();
      if (this.#binding) {
        throw new BusinessError(EINVAL, "Cannot connect: the TCP socket is still binding");
      }
      const local = this.#local;
      if (local !== undefined && local.family !== remote.family) {
        throw new ParameterError(
          `Cannot connect: address "${remote.address}" is ${remote.family} but the socket is bound to ${local.family}`,
        );
      }
      const bound = this.#bound;
      this.#bound = undefined;
      await this.#core.connect(
        (events) =>
          bound !== undefined
            ? bound.connect(remote, events)
            : this.#platform.tcpConnect({ remote, local }, events),
        timeout,
        `Cannot connect to "${remote.address}" port ${remote.port}: timed out after ${timeout} ms`,
        signal,
      );
    }, callback);
  }

  /**
   * Send data; strings are encoded with `encoding` (UTF-8 by default).
   *
   * @param options The data and encoding.
   * @param callback Called when the data was handed to the system.
   */
  send(options: TCPSendOptions, callback: AsyncCallback<void>): void;
  /**
   * Send data; strings are encoded with `encoding` (UTF-8 by default).
   *
   * @param options The data and encoding.
   * @returns When the data was handed to the system.
   */
  send(options: TCPSendOptions): Promise<void>;
  send(options: TCPSendOptions, callback?: AsyncCallback<void>): Promise<void> | void {
    return this.#core.sendOptions(options, callback);
  }

  /**
   * Close the socket; closing twice, or before connecting, succeeds.
   *
   * @param callback Called when closed.
   */
  close(callback: AsyncCallback<void>): void;
  /**
   * Close the socket; closing twice, or before connecting, succeeds.
   *
   * @returns When closed.
   */
  close(): Promise<void>;
  close(callback?: AsyncCallback<void>): Promise<void> | void {
    const bound = this.#bound;
    this.#bound = undefined;
    return dual(() => {
      // Closed at once: a bind or connect under way sees it and releases its socket.
      const closing = this.#core.close();
      return bound === undefined ? closing : Promise.all([closing, bound.close()]).then(() => {});
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
   * The server's address (after `connect`).
   *
   * @param callback Receives the address.
   */
  getRemoteAddress(callback: AsyncCallback<NetAddress>): void;
  /**
   * The server's address (after `connect`).
   *
   * @returns The address.
   */
  getRemoteAddress(): Promise<NetAddress>;
  getRemoteAddress(callback?: AsyncCallback<NetAddress>): Promise<NetAddress> | void {
    return dual(async () => {
      if (this.#core.closed) throw closedError("get the remote address", "TCP socket");
      const r = this.#core.handle?.remoteAddress;
      if (r === undefined) {
        throw new BusinessError(
          ENOTCONN,
          "Cannot get the remote address: the TCP socket is not connected",
        );
      }
      return toNetAddress(r);
    }, callback);
  }

  /**
   * The local address (after `bind` or `connect`; a linkweave extension of API 7).
   *
   * @param callback Receives the address.
   */
  getLocalAddress(callback: AsyncCallback<NetAddress>): void;
  /**
   * The local address (after `bind` or `connect`).
   *
   * @returns The address.
   */
  getLocalAddress(): Promise<NetAddress>;
  getLocalAddress(callback?: AsyncCallback<NetAddress>): Promise<NetAddress> | void {
    return dual(async () => {
      if (this.#core.closed) throw closedError("get the local address", "TCP socket");
      const l = this.#core.handle?.localAddress ?? this.#local;
      if (l === undefined) {
        throw new BusinessError(
          EBADF,
          "Cannot get the local address: the TCP socket is not bound or connected",
        );
      }
      return toNetAddress(l);
    }, callback);
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
    return dual(async () => this.#core.state(this.#local !== undefined), callback);
  }

  /**
   * Set socket options (after `bind` or `connect`). Options this runtime
   * cannot apply are skipped, never pretended: see `getExtraOptions`.
   *
   * @param options The options.
   * @param callback Called when applied.
   */
  setExtraOptions(options: TCPExtraOptions, callback: AsyncCallback<void>): void;
  /**
   * Set socket options (after `bind` or `connect`).
   *
   * @param options The options.
   * @returns When applied.
   */
  setExtraOptions(options: TCPExtraOptions): Promise<void>;
  setExtraOptions(options: TCPExtraOptions, callback?: AsyncCallback<void>): Promise<void> | void {
    return dual(async () => {
      const action = "set extra options";
      const { os, socketTimeout } = parseStreamOptions(checkObject(options, action), action);
      const c = this.#core;
      if (!c.closed && c.handle === undefined && this.#local === undefined && !c.connecting) {
        throw new BusinessError(
          EBADF,
          `Cannot ${action}: the TCP socket is not bound or connected`,
        );
      }
      c.setExtraOptions(os, socketTimeout, action);
    }, callback);
  }

  /**
   * The options really in effect (options the runtime could not apply are absent).
   *
   * @param callback Receives the options.
   */
  getExtraOptions(callback: AsyncCallback<TCPExtraOptions>): void;
  /**
   * The options really in effect (options the runtime could not apply are absent).
   *
   * @returns The options.
   */
  getExtraOptions(): Promise<TCPExtraOptions>;
  getExtraOptions(callback?: AsyncCallback<TCPExtraOptions>): Promise<TCPExtraOptions> | void {
    return dual(async () => this.#core.extraOptions() as TCPExtraOptions, callback);
  }

  /**
   * Listen for received data. One callback per event type: it replaces the one set
   * before.
   *
   * @param type `message`.
   * @param callback Receives the data and sender.
   */
  on(type: "message", callback: Callback<SocketMessageInfo>): void;
  /**
   * Listen for the connection being made or closed. One callback per event
   * type: it replaces the one set before.
   *
   * @param type `connect` or `close`.
   * @param callback Called on the event.
   */
  on(type: "connect" | "close", callback: Callback<void>): void;
  /**
   * Listen for errors. One callback per event type: it replaces the one set
   * before.
   *
   * @param type `error`.
   * @param callback Receives the error.
   */
  on(type: "error", callback: ErrorCallback): void;
  on(type: string, callback: (v: never) => void): void {
    this.#core.on(type, callback, CLIENT_EVENTS);
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
  off(type: "connect" | "close", callback?: Callback<void>): void;
  /**
   * Remove the callback of the event type: with `callback`, only if it is the
   * one `on` set (as OpenHarmony); without, whatever was set.
   *
   * @param type The event type.
   * @param callback The callback to remove.
   */
  off(type: "error", callback?: ErrorCallback): void;
  off(type: string, callback?: (v: never) => void): void {
    this.#core.off(type, callback, CLIENT_EVENTS);
  }
}

// deno-lint-ignore-file require-await -- async turns synchronous throws into rejections
/**
 * `TCPSocket`, `TCPSocketServer` and `TCPSocketConnection`.
 *
 * @module
 */
import { BusinessError, ParameterError } from "../errors.ts";
import { Emitter } from "../emitter.ts";
import type { IpEndpoint, ListenerHandle, SocketOptionMap, SocketPlatform } from "./platform.ts";
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
import { applyOptions, parseStreamOptions, StreamCore, streamOptionsInEffect } from "./_stream.ts";
import {
  checkObject,
  closedError,
  DEFAULT_CONNECT_TIMEOUT,
  dual,
  EBADF,
  EISCONN,
  ENOTCONN,
  optUint,
  toArrayBuffer,
  toEndpoint,
  toNetAddress,
  withTimeout,
} from "./_util.ts";

/** The most clients a {@linkcode TCPSocketServer} keeps at once. */
export const MAX_CLIENTS = 1024;

function ipMessage(remote: () => IpEndpoint | undefined): (b: Uint8Array) => SocketMessageInfo {
  return (bytes) => {
    const r = remote();
    return {
      message: toArrayBuffer(bytes),
      remoteInfo: {
        address: r?.address ?? "",
        family: r?.family ?? "IPv4",
        port: r?.port ?? 0,
        size: bytes.byteLength,
      },
    };
  };
}

function checkType(type: unknown, allowed: readonly string[], what: string): void {
  if (typeof type !== "string" || !allowed.includes(type)) {
    throw new ParameterError(
      `Cannot listen for event "${String(type)}" on a ${what}: expected one of ${
        allowed.join(", ")
      }`,
    );
  }
}

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
  #connecting = false;
  #pending: Partial<SocketOptionMap> = {};

  /**
   * @param platform The platform adapter.
   */
  constructor(platform: SocketPlatform) {
    this.#platform = platform;
    this.#core = new StreamCore("TCP socket", ipMessage(() => this.#core.handle?.remoteAddress));
  }

  /**
   * Bind the local address and port used by a later `connect` (port 0: the
   * system chooses).
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
      if (this.#core.closed) throw closedError("bind", "TCP socket");
      if (this.#core.handle !== undefined || this.#connecting) {
        throw new BusinessError(EISCONN, "Cannot bind: the TCP socket is already connected");
      }
      this.#local = local;
    }, callback);
  }

  /**
   * Connect to a server. `timeout` defaults to 5000 ms.
   *
   * @param options The server address and timeout.
   * @param callback Called when connected or failed.
   */
  connect(options: TCPConnectOptions, callback: AsyncCallback<void>): void;
  /**
   * Connect to a server. `timeout` defaults to 5000 ms.
   *
   * @param options The server address and timeout.
   * @returns When connected.
   */
  connect(options: TCPConnectOptions): Promise<void>;
  connect(options: TCPConnectOptions, callback?: AsyncCallback<void>): Promise<void> | void {
    return dual(async () => {
      const o = checkObject<TCPConnectOptions>(options, "connect");
      const remote = toEndpoint(o.address, "connect");
      const timeout = optUint(o.timeout, "timeout", "connect") || DEFAULT_CONNECT_TIMEOUT;
      if (this.#core.closed) throw closedError("connect", "TCP socket");
      if (this.#core.handle !== undefined || this.#connecting) {
        throw new BusinessError(EISCONN, "Cannot connect: the TCP socket is already connected");
      }
      if (this.#local !== undefined && this.#local.family !== remote.family) {
        throw new ParameterError(
          `Cannot connect: address "${remote.address}" is ${remote.family} but the socket is bound to ${this.#local.family}`,
        );
      }
      this.#connecting = true;
      const opening = this.#platform.tcpConnect(
        { remote, local: this.#local },
        this.#core.streamEvents(),
      );
      let handle;
      try {
        handle = await withTimeout(
          opening,
          timeout,
          `Cannot connect to "${remote.address}" port ${remote.port}: timed out after ${timeout} ms`,
        );
      } catch (e) {
        opening.then((h) => h.close(), () => {});
        throw e;
      } finally {
        this.#connecting = false;
      }
      if (this.#core.closed) {
        await handle.close();
        throw closedError("connect", "TCP socket");
      }
      this.#core.attach(handle);
      applyOptions(handle, this.#pending, this.#core.applied);
      this.#core.events.emit("connect", undefined);
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
    if (this.#connecting) this.#core.markClosed();
    return dual(() => this.#core.close(), callback);
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
    return dual(async () => {
      const open = this.#core.handle !== undefined && !this.#core.closed;
      return {
        isBound: open || (this.#local !== undefined && !this.#core.closed),
        isClose: this.#core.closed,
        isConnected: open,
      };
    }, callback);
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
      if (this.#core.closed) throw closedError(action, "TCP socket");
      const h = this.#core.handle;
      if (h === undefined && this.#local === undefined && !this.#connecting) {
        throw new BusinessError(
          EBADF,
          `Cannot ${action}: the TCP socket is not bound or connected`,
        );
      }
      if (socketTimeout !== undefined) this.#core.socketTimeout = socketTimeout;
      if (h === undefined) Object.assign(this.#pending, os);
      else applyOptions(h, os, this.#core.applied);
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
    return dual(async () => {
      if (this.#core.closed) throw closedError("get extra options", "TCP socket");
      return streamOptionsInEffect(
        this.#core.handle,
        this.#core.applied,
        this.#core.socketTimeout,
      ) as TCPExtraOptions;
    }, callback);
  }

  /**
   * Listen for received data.
   *
   * @param type `message`.
   * @param callback Receives the data and sender.
   */
  on(type: "message", callback: Callback<SocketMessageInfo>): void;
  /**
   * Listen for the connection being made or closed.
   *
   * @param type `connect` or `close`.
   * @param callback Called on the event.
   */
  on(type: "connect" | "close", callback: Callback<void>): void;
  /**
   * Listen for errors.
   *
   * @param type `error`.
   * @param callback Receives the error.
   */
  on(type: "error", callback: ErrorCallback): void;
  on(type: string, callback: (v: never) => void): void {
    checkType(type, CLIENT_EVENTS, "TCP socket");
    this.#core.events.on(type as "message", callback as Callback<SocketMessageInfo>);
  }

  /**
   * Stop listening; without a callback, remove every listener of the type.
   *
   * @param type The event type.
   * @param callback The listener to remove.
   */
  off(type: "message", callback?: Callback<SocketMessageInfo>): void;
  /**
   * Stop listening; without a callback, remove every listener of the type.
   *
   * @param type The event type.
   * @param callback The listener to remove.
   */
  off(type: "connect" | "close", callback?: Callback<void>): void;
  /**
   * Stop listening; without a callback, remove every listener of the type.
   *
   * @param type The event type.
   * @param callback The listener to remove.
   */
  off(type: "error", callback?: ErrorCallback): void;
  off(type: string, callback?: (v: never) => void): void {
    checkType(type, CLIENT_EVENTS, "TCP socket");
    this.#core.events.off(type as "message", callback as Callback<SocketMessageInfo>);
  }
}

const CONNECTION_EVENTS = ["message", "close", "error"] as const;

/**
 * One client of a {@linkcode TCPSocketServer}, passed to its `connect` event.
 */
export class TCPSocketConnection {
  /** The client's id, unique within its server. */
  readonly clientId: number;
  #core: StreamCore<SocketMessageInfo>;

  /**
   * @param clientId The id.
   * @param core The stream state (created by the server).
   */
  constructor(clientId: number, core: StreamCore<SocketMessageInfo>) {
    this.clientId = clientId;
    this.#core = core;
  }

  /**
   * Send data to the client.
   *
   * @param options The data and encoding.
   * @param callback Called when sent.
   */
  send(options: TCPSendOptions, callback: AsyncCallback<void>): void;
  /**
   * Send data to the client.
   *
   * @param options The data and encoding.
   * @returns When sent.
   */
  send(options: TCPSendOptions): Promise<void>;
  send(options: TCPSendOptions, callback?: AsyncCallback<void>): Promise<void> | void {
    return this.#core.sendOptions(options, callback);
  }

  /**
   * Close the connection.
   *
   * @param callback Called when closed.
   */
  close(callback: AsyncCallback<void>): void;
  /**
   * Close the connection.
   *
   * @returns When closed.
   */
  close(): Promise<void>;
  close(callback?: AsyncCallback<void>): Promise<void> | void {
    return dual(() => this.#core.close(), callback);
  }

  /**
   * The client's address.
   *
   * @param callback Receives the address.
   */
  getRemoteAddress(callback: AsyncCallback<NetAddress>): void;
  /**
   * The client's address.
   *
   * @returns The address.
   */
  getRemoteAddress(): Promise<NetAddress>;
  getRemoteAddress(callback?: AsyncCallback<NetAddress>): Promise<NetAddress> | void {
    return dual(async () => {
      const r = this.#core.handle?.remoteAddress;
      if (this.#core.closed || r === undefined) {
        throw closedError("get the remote address", "TCP connection");
      }
      return toNetAddress(r);
    }, callback);
  }

  /**
   * The server-side address of this connection.
   *
   * @param callback Receives the address.
   */
  getLocalAddress(callback: AsyncCallback<NetAddress>): void;
  /**
   * The server-side address of this connection.
   *
   * @returns The address.
   */
  getLocalAddress(): Promise<NetAddress>;
  getLocalAddress(callback?: AsyncCallback<NetAddress>): Promise<NetAddress> | void {
    return dual(async () => {
      const l = this.#core.handle?.localAddress;
      if (this.#core.closed || l === undefined) {
        throw closedError("get the local address", "TCP connection");
      }
      return toNetAddress(l);
    }, callback);
  }

  /**
   * Listen for data from the client.
   *
   * @param type `message`.
   * @param callback Receives the data.
   */
  on(type: "message", callback: Callback<SocketMessageInfo>): void;
  /**
   * Listen for the connection closing.
   *
   * @param type `close`.
   * @param callback Called on close.
   */
  on(type: "close", callback: Callback<void>): void;
  /**
   * Listen for errors.
   *
   * @param type `error`.
   * @param callback Receives the error.
   */
  on(type: "error", callback: ErrorCallback): void;
  on(type: string, callback: (v: never) => void): void {
    checkType(type, CONNECTION_EVENTS, "TCP connection");
    this.#core.events.on(type as "message", callback as Callback<SocketMessageInfo>);
  }

  /**
   * Stop listening; without a callback, remove every listener of the type.
   *
   * @param type The event type.
   * @param callback The listener to remove.
   */
  off(type: "message" | "close" | "error", callback?: (v: never) => void): void {
    checkType(type, CONNECTION_EVENTS, "TCP connection");
    this.#core.events.off(type as "message", callback as Callback<SocketMessageInfo>);
  }
}

type ServerEvents = { connect: TCPSocketConnection; error: BusinessError<unknown> };
const SERVER_EVENTS = ["connect", "error"] as const;

/**
 * A TCP server (API 10). Create it with `socket.constructTCPSocketServerInstance()`.
 *
 * @example Echo server on loopback
 * ```ts
 * import { constructTCPSocketServerInstance } from "../../socket.ts";
 * const server = constructTCPSocketServerInstance();
 * server.on("connect", (client) => {
 *   client.on("message", (m) => client.send({ data: m.message }));
 * });
 * await server.listen({ address: "127.0.0.1", port: 0, family: 1 });
 * await server.close();
 * ```
 */
export class TCPSocketServer {
  #platform: SocketPlatform;
  #events: Emitter<ServerEvents> = new Emitter<ServerEvents>();
  #listener: ListenerHandle | undefined;
  #listening = false;
  #closed = false;
  #clients: Map<number, StreamCore<SocketMessageInfo>> = new Map();
  #nextId = 1;
  #os: Partial<SocketOptionMap> = {};
  #socketTimeout: number | undefined;

  /**
   * @param platform The platform adapter.
   */
  constructor(platform: SocketPlatform) {
    this.#platform = platform;
  }

  /**
   * Bind and listen (backlog 511, at most 1024 clients at once).
   *
   * @param address The local address.
   * @param callback Called when listening.
   */
  listen(address: NetAddress, callback: AsyncCallback<void>): void;
  /**
   * Bind and listen (backlog 511, at most 1024 clients at once).
   *
   * @param address The local address.
   * @returns When listening.
   */
  listen(address: NetAddress): Promise<void>;
  listen(address: NetAddress, callback?: AsyncCallback<void>): Promise<void> | void {
    return dual(async () => {
      const local = toEndpoint(address, "listen");
      if (this.#closed) throw closedError("listen", "TCP server");
      if (this.#listening) {
        throw new BusinessError(EISCONN, "Cannot listen: the TCP server is already listening");
      }
      this.#listening = true;
      try {
        this.#listener = await this.#platform.tcpListen(local, {
          onConnection: (handle) => this.#accept(handle),
          onError: (e) => this.#events.emit("error", e),
        });
      } catch (e) {
        this.#listening = false;
        throw e;
      }
      if (this.#closed) await this.#listener.close();
    }, callback);
  }

  #accept(handle: import("./platform.ts").StreamHandle) {
    const core = new StreamCore<SocketMessageInfo>(
      "TCP connection",
      ipMessage(() => handle.remoteAddress),
    );
    const events = core.streamEvents();
    if (this.#closed || this.#clients.size >= MAX_CLIENTS) {
      handle.close().catch(() => {});
      return events;
    }
    const id = this.#nextId++;
    core.attach(handle);
    core.socketTimeout = this.#socketTimeout;
    applyOptions(handle, this.#os, core.applied);
    this.#clients.set(id, core);
    core.events.on("close", () => this.#clients.delete(id));
    this.#events.emit("connect", new TCPSocketConnection(id, core));
    return events;
  }

  /**
   * Stop listening and close every client connection (a linkweave extension).
   *
   * @param callback Called when closed.
   */
  close(callback: AsyncCallback<void>): void;
  /**
   * Stop listening and close every client connection (a linkweave extension).
   *
   * @returns When closed.
   */
  close(): Promise<void>;
  close(callback?: AsyncCallback<void>): Promise<void> | void {
    return dual(async () => {
      if (this.#closed) return;
      this.#closed = true;
      const all = [...this.#clients.values()].map((c) => c.close().catch(() => {}));
      await Promise.all([this.#listener?.close(), ...all]);
    }, callback);
  }

  /**
   * The server state.
   *
   * @param callback Receives the state.
   */
  getState(callback: AsyncCallback<SocketStateBase>): void;
  /**
   * The server state.
   *
   * @returns The state.
   */
  getState(): Promise<SocketStateBase>;
  getState(callback?: AsyncCallback<SocketStateBase>): Promise<SocketStateBase> | void {
    return dual(async () => ({
      isBound: this.#listener !== undefined && !this.#closed,
      isClose: this.#closed,
      isConnected: false,
    }), callback);
  }

  /**
   * The bound address (after `listen`).
   *
   * @param callback Receives the address.
   */
  getLocalAddress(callback: AsyncCallback<NetAddress>): void;
  /**
   * The bound address (after `listen`).
   *
   * @returns The address.
   */
  getLocalAddress(): Promise<NetAddress>;
  getLocalAddress(callback?: AsyncCallback<NetAddress>): Promise<NetAddress> | void {
    return dual(async () => {
      const l = this.#listener?.localAddress;
      if (this.#closed || l === undefined) {
        throw new BusinessError(
          EBADF,
          "Cannot get the local address: the TCP server is not listening",
        );
      }
      return toNetAddress(l);
    }, callback);
  }

  /**
   * Set options of every current and future client connection.
   *
   * @param options The options.
   * @param callback Called when applied.
   */
  setExtraOptions(options: TCPExtraOptions, callback: AsyncCallback<void>): void;
  /**
   * Set options of every current and future client connection.
   *
   * @param options The options.
   * @returns When applied.
   */
  setExtraOptions(options: TCPExtraOptions): Promise<void>;
  setExtraOptions(options: TCPExtraOptions, callback?: AsyncCallback<void>): Promise<void> | void {
    return dual(async () => {
      const action = "set extra options";
      const { os, socketTimeout } = parseStreamOptions(checkObject(options, action), action);
      if (this.#closed) throw closedError(action, "TCP server");
      if (!this.#listening) {
        throw new BusinessError(EBADF, `Cannot ${action}: the TCP server is not listening`);
      }
      Object.assign(this.#os, os);
      if (socketTimeout !== undefined) this.#socketTimeout = socketTimeout;
      for (const c of this.#clients.values()) {
        if (c.handle !== undefined) applyOptions(c.handle, os, c.applied);
        if (socketTimeout !== undefined) c.socketTimeout = socketTimeout;
      }
    }, callback);
  }

  /**
   * The options given to client connections (listening sockets of every
   * supported runtime use `SO_REUSEADDR`).
   *
   * @param callback Receives the options.
   */
  getExtraOptions(callback: AsyncCallback<TCPExtraOptions>): void;
  /**
   * The options given to client connections.
   *
   * @returns The options.
   */
  getExtraOptions(): Promise<TCPExtraOptions>;
  getExtraOptions(callback?: AsyncCallback<TCPExtraOptions>): Promise<TCPExtraOptions> | void {
    return dual(async () => {
      if (this.#closed) throw closedError("get extra options", "TCP server");
      const first = this.#clients.values().next().value;
      const applied = first?.applied ?? {};
      return { ...streamOptionsInEffect(undefined, applied, this.#socketTimeout) };
    }, callback);
  }

  /**
   * Listen for clients.
   *
   * @param type `connect`.
   * @param callback Receives each client connection.
   */
  on(type: "connect", callback: Callback<TCPSocketConnection>): void;
  /**
   * Listen for errors.
   *
   * @param type `error`.
   * @param callback Receives the error.
   */
  on(type: "error", callback: ErrorCallback): void;
  on(type: string, callback: (v: never) => void): void {
    checkType(type, SERVER_EVENTS, "TCP server");
    this.#events.on(type as "connect", callback as Callback<TCPSocketConnection>);
  }

  /**
   * Stop listening; without a callback, remove every listener of the type.
   *
   * @param type The event type.
   * @param callback The listener to remove.
   */
  off(type: "connect" | "error", callback?: (v: never) => void): void {
    checkType(type, SERVER_EVENTS, "TCP server");
    this.#events.off(type as "connect", callback as Callback<TCPSocketConnection>);
  }
}

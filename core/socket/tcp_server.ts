// deno-lint-ignore-file require-await -- async turns synchronous throws into rejections
/**
 * `TCPSocketServer` and the `TCPSocketConnection`s it accepts.
 *
 * @module
 */
import type { SocketPlatform } from "./platform.ts";
import type {
  AsyncCallback,
  Callback,
  ErrorCallback,
  NetAddress,
  SocketMessageInfo,
  SocketStateBase,
  TCPExtraOptions,
  TCPSendOptions,
} from "./types.ts";
import { parseStreamOptions, StreamCore } from "./_stream.ts";
import { StreamServerCore } from "./_stream_server.ts";
import { checkObject, closedError, dual, ipMessage, toEndpoint, toNetAddress } from "./_util.ts";

/** The most clients a {@linkcode TCPSocketServer} keeps at once. */
export const MAX_CLIENTS = 1024;

const CONNECTION_EVENTS = ["message", "close", "error"] as const;

/**
 * One client of a {@linkcode TCPSocketServer}, passed to its `connect` event.
 */
export class TCPSocketConnection {
  /** The client's id, unique within its server. */
  readonly clientId: number;
  #core: StreamCore<SocketMessageInfo>;

  /**
   * The server makes one for each client it accepts.
   *
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
   * linkweave extension: `await using` closes it when the scope ends, as
   * `close()` does.
   *
   * @returns When closed.
   */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
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
   * Listen for data from the client. One callback per event type: it replaces the one set
   * before.
   *
   * @param type `message`.
   * @param callback Receives the data.
   */
  on(type: "message", callback: Callback<SocketMessageInfo>): void;
  /**
   * Listen for the connection closing. One callback per event type: it replaces the one set
   * before.
   *
   * @param type `close`.
   * @param callback Called on close.
   */
  on(type: "close", callback: Callback<void>): void;
  /**
   * Listen for errors. One callback per event type: it replaces the one set
   * before.
   *
   * @param type `error`.
   * @param callback Receives the error.
   */
  on(type: "error", callback: ErrorCallback): void;
  on(type: string, callback: (v: never) => void): void {
    this.#core.on(type, callback, CONNECTION_EVENTS);
  }

  /**
   * Remove the callback of the event type: with `callback`, only if it is the
   * one `on` set (as OpenHarmony); without, whatever was set.
   *
   * @param type The event type.
   * @param callback The callback to remove.
   */
  off(type: "message" | "close" | "error", callback?: (v: never) => void): void {
    this.#core.off(type, callback, CONNECTION_EVENTS);
  }
}

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
  #server: StreamServerCore<TCPSocketConnection, SocketMessageInfo> = new StreamServerCore({
    what: "TCP server",
    maxClients: MAX_CLIENTS,
    core: (handle) => new StreamCore("TCP connection", ipMessage(() => handle.remoteAddress)),
    connection: (id, core) => new TCPSocketConnection(id, core),
  });

  /**
   * Make a TCP server on a platform (use `socket.constructTCPSocketServerInstance()`).
   *
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
      await this.#server.listen((events) => this.#platform.tcpListen(local, events));
    }, callback);
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
    return dual(() => this.#server.close(), callback);
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
    return dual(async () => this.#server.state(), callback);
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
      const l = this.#server.listener?.localAddress;
      if (l === undefined) throw this.#server.notListening("get the local address")!;
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
      this.#server.setExtraOptions(os, socketTimeout, { listening: true });
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
    return dual(async () => this.#server.extraOptions() as TCPExtraOptions, callback);
  }

  /**
   * Listen for clients. One callback per event type: it replaces the one set
   * before.
   *
   * @param type `connect`.
   * @param callback Receives each client connection.
   */
  on(type: "connect", callback: Callback<TCPSocketConnection>): void;
  /**
   * Listen for errors. One callback per event type: it replaces the one set
   * before.
   *
   * @param type `error`.
   * @param callback Receives the error.
   */
  on(type: "error", callback: ErrorCallback): void;
  on(type: string, callback: (v: never) => void): void {
    this.#server.on(type, callback);
  }

  /**
   * Remove the callback of the event type: with `callback`, only if it is the
   * one `on` set (as OpenHarmony); without, whatever was set.
   *
   * @param type The event type.
   * @param callback The callback to remove.
   */
  off(type: "connect" | "error", callback?: (v: never) => void): void {
    this.#server.off(type, callback);
  }
}

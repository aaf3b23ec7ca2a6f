// deno-lint-ignore-file require-await -- async turns synchronous throws into rejections
/**
 * `LocalSocket`, `LocalSocketServer` and `LocalSocketConnection`: Unix-domain
 * stream sockets (API 11).
 *
 * @module
 */
import { BusinessError, ParameterError } from "../errors.ts";
import { Emitter } from "../emitter.ts";
import type { ListenerHandle, SocketOptionMap, SocketPlatform, StreamHandle } from "./platform.ts";
import type {
  AsyncCallback,
  Callback,
  ErrorCallback,
  LocalAddress,
  LocalConnectOptions,
  LocalExtraOptions,
  LocalSendOptions,
  LocalSocketMessageInfo,
  SocketStateBase,
} from "./types.ts";
import { applyOptions, parseStreamOptions, StreamCore, streamOptionsInEffect } from "./_stream.ts";
import {
  checkObject,
  closedError,
  DEFAULT_CONNECT_TIMEOUT,
  dual,
  EBADF,
  EISCONN,
  optUint,
  toArrayBuffer,
  withTimeout,
} from "./_util.ts";
import { MAX_CLIENTS } from "./tcp.ts";

function checkPath(addr: unknown, action: string): string {
  const path = (addr as LocalAddress | null)?.address;
  if (typeof path !== "string" || path === "" || path.includes("\0")) {
    throw new ParameterError(
      `Cannot ${action}: invalid local socket path "${String(path)}"`,
    );
  }
  if (new TextEncoder().encode(path).byteLength > 107) {
    throw new ParameterError(`Cannot ${action}: local socket path "${path}" exceeds 107 bytes`);
  }
  return path;
}

function localMessage(path: () => string): (b: Uint8Array) => LocalSocketMessageInfo {
  return (bytes) => ({ message: toArrayBuffer(bytes), address: path(), size: bytes.byteLength });
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

function onlyBufferOptions(options: LocalExtraOptions, action: string) {
  const o = checkObject<LocalExtraOptions>(options, action);
  return parseStreamOptions(
    {
      receiveBufferSize: o.receiveBufferSize,
      sendBufferSize: o.sendBufferSize,
      socketTimeout: o.socketTimeout,
    },
    action,
  );
}

const CLIENT_EVENTS = ["message", "connect", "close", "error"] as const;

/**
 * A Unix-domain stream client. Create it with `socket.constructLocalSocketInstance()`.
 *
 * @example
 * ```ts ignore
 * import { constructLocalSocketInstance } from "../../socket.ts";
 * const client = constructLocalSocketInstance();
 * await client.connect({ address: { address: "/tmp/demo.sock" }, timeout: 2000 });
 * await client.send({ data: "hello" });
 * await client.close();
 * ```
 */
export class LocalSocket {
  #platform: SocketPlatform;
  #core: StreamCore<LocalSocketMessageInfo>;
  #path = "";
  #bound: string | undefined;
  #connecting = false;
  #pending: Partial<SocketOptionMap> = {};

  /**
   * @param platform The platform adapter.
   */
  constructor(platform: SocketPlatform) {
    this.#platform = platform;
    this.#core = new StreamCore("local socket", localMessage(() => this.#path));
  }

  /**
   * Record a local path (no runtime can bind a Unix-domain client; see `docs/socket.md`).
   *
   * @param address The path.
   * @param callback Called when done.
   */
  bind(address: LocalAddress, callback: AsyncCallback<void>): void;
  /**
   * Record a local path.
   *
   * @param address The path.
   * @returns When done.
   */
  bind(address: LocalAddress): Promise<void>;
  bind(address: LocalAddress, callback?: AsyncCallback<void>): Promise<void> | void {
    return dual(async () => {
      const path = checkPath(address, "bind");
      if (this.#core.closed) throw closedError("bind", "local socket");
      this.#bound = path;
    }, callback);
  }

  /**
   * Connect to a Unix-domain server.
   *
   * @param options The server path and timeout (default 5000 ms).
   * @param callback Called when connected.
   */
  connect(options: LocalConnectOptions, callback: AsyncCallback<void>): void;
  /**
   * Connect to a Unix-domain server.
   *
   * @param options The server path and timeout (default 5000 ms).
   * @returns When connected.
   */
  connect(options: LocalConnectOptions): Promise<void>;
  connect(options: LocalConnectOptions, callback?: AsyncCallback<void>): Promise<void> | void {
    return dual(async () => {
      const o = checkObject<LocalConnectOptions>(options, "connect");
      const path = checkPath(o.address, "connect");
      const timeout = optUint(o.timeout, "timeout", "connect") || DEFAULT_CONNECT_TIMEOUT;
      if (this.#core.closed) throw closedError("connect", "local socket");
      if (this.#core.handle !== undefined || this.#connecting) {
        throw new BusinessError(EISCONN, "Cannot connect: the local socket is already connected");
      }
      this.#connecting = true;
      const opening = this.#platform.unixConnect(path, this.#core.streamEvents());
      let handle: StreamHandle;
      try {
        handle = await withTimeout(
          opening,
          timeout,
          `Cannot connect to "${path}": timed out after ${timeout} ms`,
        );
      } catch (e) {
        opening.then((h) => h.close(), () => {});
        throw e;
      } finally {
        this.#connecting = false;
      }
      if (this.#core.closed) {
        await handle.close();
        throw closedError("connect", "local socket");
      }
      this.#path = path;
      this.#core.attach(handle);
      applyOptions(handle, this.#pending, this.#core.applied);
      this.#core.events.emit("connect", undefined);
    }, callback);
  }

  /**
   * Send data.
   *
   * @param options The data and encoding.
   * @param callback Called when sent.
   */
  send(options: LocalSendOptions, callback: AsyncCallback<void>): void;
  /**
   * Send data.
   *
   * @param options The data and encoding.
   * @returns When sent.
   */
  send(options: LocalSendOptions): Promise<void>;
  send(options: LocalSendOptions, callback?: AsyncCallback<void>): Promise<void> | void {
    return this.#core.sendOptions(options, callback);
  }

  /**
   * Close the socket.
   *
   * @param callback Called when closed.
   */
  close(callback: AsyncCallback<void>): void;
  /**
   * Close the socket.
   *
   * @returns When closed.
   */
  close(): Promise<void>;
  close(callback?: AsyncCallback<void>): Promise<void> | void {
    if (this.#connecting) this.#core.markClosed();
    return dual(() => this.#core.close(), callback);
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
        isBound: open || (this.#bound !== undefined && !this.#core.closed),
        isClose: this.#core.closed,
        isConnected: open,
      };
    }, callback);
  }

  /**
   * The local path (as given to `bind`, else the connected server's path).
   *
   * @param callback Receives the path.
   */
  getLocalAddress(callback: AsyncCallback<string>): void;
  /**
   * The local path.
   *
   * @returns The path.
   */
  getLocalAddress(): Promise<string>;
  getLocalAddress(callback?: AsyncCallback<string>): Promise<string> | void {
    return dual(
      async () => {
        if (this.#core.closed) throw closedError("get the local address", "local socket");
        const p = this.#bound ?? (this.#core.handle !== undefined ? this.#path : undefined);
        if (p === undefined) {
          throw new BusinessError(
            EBADF,
            "Cannot get the local address: the local socket is not bound or connected",
          );
        }
        return p;
      },
      callback,
      "",
    );
  }

  /**
   * Set buffer sizes and `socketTimeout` (others are ignored).
   *
   * @param options The options.
   * @param callback Called when applied.
   */
  setExtraOptions(options: LocalExtraOptions, callback: AsyncCallback<void>): void;
  /**
   * Set buffer sizes and `socketTimeout`.
   *
   * @param options The options.
   * @returns When applied.
   */
  setExtraOptions(options: LocalExtraOptions): Promise<void>;
  setExtraOptions(
    options: LocalExtraOptions,
    callback?: AsyncCallback<void>,
  ): Promise<void> | void {
    return dual(async () => {
      const action = "set extra options";
      const { os, socketTimeout } = onlyBufferOptions(options, action);
      if (this.#core.closed) throw closedError(action, "local socket");
      if (socketTimeout !== undefined) this.#core.socketTimeout = socketTimeout;
      const h = this.#core.handle;
      if (h === undefined) Object.assign(this.#pending, os);
      else applyOptions(h, os, this.#core.applied);
    }, callback);
  }

  /**
   * The options really in effect.
   *
   * @param callback Receives the options.
   */
  getExtraOptions(callback: AsyncCallback<LocalExtraOptions>): void;
  /**
   * The options really in effect.
   *
   * @returns The options.
   */
  getExtraOptions(): Promise<LocalExtraOptions>;
  getExtraOptions(
    callback?: AsyncCallback<LocalExtraOptions>,
  ): Promise<LocalExtraOptions> | void {
    return dual(async () => {
      if (this.#core.closed) throw closedError("get extra options", "local socket");
      return streamOptionsInEffect(
        this.#core.handle,
        this.#core.applied,
        this.#core.socketTimeout,
      ) as LocalExtraOptions;
    }, callback);
  }

  /**
   * Listen for data.
   *
   * @param type `message`.
   * @param callback Receives the data.
   */
  on(type: "message", callback: Callback<LocalSocketMessageInfo>): void;
  /**
   * Listen for connect and close.
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
    checkType(type, CLIENT_EVENTS, "local socket");
    this.#core.events.on(type as "message", callback as Callback<LocalSocketMessageInfo>);
  }

  /**
   * Stop listening; without a callback, remove every listener of the type.
   *
   * @param type The event type.
   * @param callback The listener to remove.
   */
  off(type: "message" | "connect" | "close" | "error", callback?: (v: never) => void): void {
    checkType(type, CLIENT_EVENTS, "local socket");
    this.#core.events.off(type as "message", callback as Callback<LocalSocketMessageInfo>);
  }
}

const CONNECTION_EVENTS = ["message", "close", "error"] as const;

/** One client of a {@linkcode LocalSocketServer}, passed to its `connect` event. */
export class LocalSocketConnection {
  /** The client's id, unique within its server. */
  readonly clientId: number;
  #core: StreamCore<LocalSocketMessageInfo>;
  #path: string;

  /**
   * @param clientId The id.
   * @param core The stream state.
   * @param path The server path.
   */
  constructor(clientId: number, core: StreamCore<LocalSocketMessageInfo>, path: string) {
    this.clientId = clientId;
    this.#core = core;
    this.#path = path;
  }

  /**
   * Send data to the client.
   *
   * @param options The data and encoding.
   * @param callback Called when sent.
   */
  send(options: LocalSendOptions, callback: AsyncCallback<void>): void;
  /**
   * Send data to the client.
   *
   * @param options The data and encoding.
   * @returns When sent.
   */
  send(options: LocalSendOptions): Promise<void>;
  send(options: LocalSendOptions, callback?: AsyncCallback<void>): Promise<void> | void {
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
   * The server's path.
   *
   * @param callback Receives the path.
   */
  getLocalAddress(callback: AsyncCallback<string>): void;
  /**
   * The server's path.
   *
   * @returns The path.
   */
  getLocalAddress(): Promise<string>;
  getLocalAddress(callback?: AsyncCallback<string>): Promise<string> | void {
    return dual(
      async () => {
        if (this.#core.closed) throw closedError("get the local address", "local connection");
        return this.#path;
      },
      callback,
      "",
    );
  }

  /**
   * Listen for data.
   *
   * @param type `message`.
   * @param callback Receives the data.
   */
  on(type: "message", callback: Callback<LocalSocketMessageInfo>): void;
  /**
   * Listen for close.
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
    checkType(type, CONNECTION_EVENTS, "local connection");
    this.#core.events.on(type as "message", callback as Callback<LocalSocketMessageInfo>);
  }

  /**
   * Stop listening; without a callback, remove every listener of the type.
   *
   * @param type The event type.
   * @param callback The listener to remove.
   */
  off(type: "message" | "close" | "error", callback?: (v: never) => void): void {
    checkType(type, CONNECTION_EVENTS, "local connection");
    this.#core.events.off(type as "message", callback as Callback<LocalSocketMessageInfo>);
  }
}

type ServerEvents = { connect: LocalSocketConnection; error: BusinessError<unknown> };
const SERVER_EVENTS = ["connect", "error"] as const;

/**
 * A Unix-domain stream server. Create it with `socket.constructLocalSocketServerInstance()`.
 *
 * @example
 * ```ts ignore
 * import { constructLocalSocketServerInstance } from "../../socket.ts";
 * const server = constructLocalSocketServerInstance();
 * server.on("connect", (c) => c.on("message", (m) => c.send({ data: m.message })));
 * await server.listen({ address: "/tmp/demo.sock" });
 * await server.close();
 * ```
 */
export class LocalSocketServer {
  #platform: SocketPlatform;
  #events: Emitter<ServerEvents> = new Emitter<ServerEvents>();
  #listener: ListenerHandle | undefined;
  #listening = false;
  #closed = false;
  #path = "";
  #clients: Map<number, StreamCore<LocalSocketMessageInfo>> = new Map();
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
   * Listen on a path (the file must not exist).
   *
   * @param address The path.
   * @param callback Called when listening.
   */
  listen(address: LocalAddress, callback: AsyncCallback<void>): void;
  /**
   * Listen on a path (the file must not exist).
   *
   * @param address The path.
   * @returns When listening.
   */
  listen(address: LocalAddress): Promise<void>;
  listen(address: LocalAddress, callback?: AsyncCallback<void>): Promise<void> | void {
    return dual(async () => {
      const path = checkPath(address, "listen");
      if (this.#closed) throw closedError("listen", "local server");
      if (this.#listening) {
        throw new BusinessError(EISCONN, "Cannot listen: the local server is already listening");
      }
      this.#listening = true;
      try {
        this.#listener = await this.#platform.unixListen(path, {
          onConnection: (h) => this.#accept(h),
          onError: (e) => this.#events.emit("error", e),
        });
      } catch (e) {
        this.#listening = false;
        throw e;
      }
      this.#path = path;
      if (this.#closed) await this.#listener.close();
    }, callback);
  }

  #accept(handle: StreamHandle) {
    const core = new StreamCore<LocalSocketMessageInfo>(
      "local connection",
      localMessage(() => this.#path),
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
    this.#events.emit("connect", new LocalSocketConnection(id, core, this.#path));
    return events;
  }

  /**
   * Stop listening and close every client (a linkweave extension).
   *
   * @param callback Called when closed.
   */
  close(callback: AsyncCallback<void>): void;
  /**
   * Stop listening and close every client.
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
   * The path listened on.
   *
   * @param callback Receives the path.
   */
  getLocalAddress(callback: AsyncCallback<string>): void;
  /**
   * The path listened on.
   *
   * @returns The path.
   */
  getLocalAddress(): Promise<string>;
  getLocalAddress(callback?: AsyncCallback<string>): Promise<string> | void {
    return dual(
      async () => {
        if (this.#closed || this.#listener === undefined) {
          throw new BusinessError(
            EBADF,
            "Cannot get the local address: the local server is not listening",
          );
        }
        return this.#path;
      },
      callback,
      "",
    );
  }

  /**
   * Set buffer sizes and `socketTimeout` of current and future clients.
   *
   * @param options The options.
   * @param callback Called when applied.
   */
  setExtraOptions(options: LocalExtraOptions, callback: AsyncCallback<void>): void;
  /**
   * Set buffer sizes and `socketTimeout` of current and future clients.
   *
   * @param options The options.
   * @returns When applied.
   */
  setExtraOptions(options: LocalExtraOptions): Promise<void>;
  setExtraOptions(
    options: LocalExtraOptions,
    callback?: AsyncCallback<void>,
  ): Promise<void> | void {
    return dual(async () => {
      const action = "set extra options";
      const { os, socketTimeout } = onlyBufferOptions(options, action);
      if (this.#closed) throw closedError(action, "local server");
      Object.assign(this.#os, os);
      if (socketTimeout !== undefined) this.#socketTimeout = socketTimeout;
      for (const c of this.#clients.values()) {
        if (c.handle !== undefined) applyOptions(c.handle, os, c.applied);
        if (socketTimeout !== undefined) c.socketTimeout = socketTimeout;
      }
    }, callback);
  }

  /**
   * The options in effect for clients.
   *
   * @param callback Receives the options.
   */
  getExtraOptions(callback: AsyncCallback<LocalExtraOptions>): void;
  /**
   * The options in effect for clients.
   *
   * @returns The options.
   */
  getExtraOptions(): Promise<LocalExtraOptions>;
  getExtraOptions(
    callback?: AsyncCallback<LocalExtraOptions>,
  ): Promise<LocalExtraOptions> | void {
    return dual(async () => {
      if (this.#closed) throw closedError("get extra options", "local server");
      const first = this.#clients.values().next().value;
      return streamOptionsInEffect(undefined, first?.applied ?? {}, this.#socketTimeout);
    }, callback);
  }

  /**
   * Listen for clients.
   *
   * @param type `connect`.
   * @param callback Receives each client.
   */
  on(type: "connect", callback: Callback<LocalSocketConnection>): void;
  /**
   * Listen for errors.
   *
   * @param type `error`.
   * @param callback Receives the error.
   */
  on(type: "error", callback: ErrorCallback): void;
  on(type: string, callback: (v: never) => void): void {
    checkType(type, SERVER_EVENTS, "local server");
    this.#events.on(type as "connect", callback as Callback<LocalSocketConnection>);
  }

  /**
   * Stop listening; without a callback, remove every listener of the type.
   *
   * @param type The event type.
   * @param callback The listener to remove.
   */
  off(type: "connect" | "error", callback?: (v: never) => void): void {
    checkType(type, SERVER_EVENTS, "local server");
    this.#events.off(type as "connect", callback as Callback<LocalSocketConnection>);
  }
}

// deno-lint-ignore-file require-await -- async turns synchronous throws into rejections
/**
 * `LocalSocketServer` (Unix-domain) and the `LocalSocketConnection`s it accepts.
 *
 * @module
 */
import type { SocketPlatform } from "./platform.ts";
import type {
  AsyncCallback,
  Callback,
  ErrorCallback,
  LocalAddress,
  LocalExtraOptions,
  LocalSendOptions,
  LocalSocketMessageInfo,
  SocketStateBase,
} from "./types.ts";
import { StreamCore } from "./_stream.ts";
import { StreamServerCore } from "./_stream_server.ts";
import { closedError, dual } from "./_util.ts";
import { checkPath, localMessage, onlyBufferOptions } from "./local.ts";
import { MAX_CLIENTS } from "./tcp_server.ts";

const CONNECTION_EVENTS = ["message", "close", "error"] as const;

/** One client of a {@linkcode LocalSocketServer}, passed to its `connect` event. */
export class LocalSocketConnection {
  /** The client's id, unique within its server. */
  readonly clientId: number;
  #core: StreamCore<LocalSocketMessageInfo>;
  #path: string;

  /**
   * The server makes one for each client it accepts.
   *
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
   * linkweave extension: `await using` closes it when the scope ends, as
   * `close()` does.
   *
   * @returns When closed.
   */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
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
   * Listen for data. One callback per event type: it replaces the one set
   * before.
   *
   * @param type `message`.
   * @param callback Receives the data.
   */
  on(type: "message", callback: Callback<LocalSocketMessageInfo>): void;
  /**
   * Listen for close. One callback per event type: it replaces the one set
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
  #path = "";
  #server: StreamServerCore<LocalSocketConnection, LocalSocketMessageInfo> = new StreamServerCore({
    what: "local server",
    maxClients: MAX_CLIENTS,
    core: () => new StreamCore("local connection", localMessage(() => this.#path)),
    connection: (id, core) => new LocalSocketConnection(id, core, this.#path),
  });

  /**
   * Make a Unix-domain server on a platform (use `socket.constructLocalSocketServerInstance()`).
   *
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
      await this.#server.listen((events) =>
        this.#platform.unixListen(path, events).then((l) => {
          this.#path = path;
          return l;
        })
      );
    }, callback);
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
        const e = this.#server.notListening("get the local address");
        if (e !== undefined) throw e;
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
      this.#server.setExtraOptions(os, socketTimeout, { listening: false });
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
    return dual(async () => this.#server.extraOptions() as LocalExtraOptions, callback);
  }

  /**
   * Listen for clients. One callback per event type: it replaces the one set
   * before.
   *
   * @param type `connect`.
   * @param callback Receives each client.
   */
  on(type: "connect", callback: Callback<LocalSocketConnection>): void;
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

// deno-lint-ignore-file require-await -- async turns synchronous throws into rejections
/**
 * `LocalSocket`, `LocalSocketServer` and `LocalSocketConnection`: Unix-domain
 * stream sockets (API 11).
 *
 * @module
 */
import { BusinessError, ParameterError } from "../errors.ts";
import { abortSignal } from "../abort.ts";
import type { SocketPlatform } from "./platform.ts";
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
import { parseStreamOptions, StreamCore } from "./_stream.ts";
import {
  checkObject,
  closedError,
  DEFAULT_CONNECT_TIMEOUT,
  dual,
  EBADF,
  optUint,
  toArrayBuffer,
} from "./_util.ts";

/** @internal A local socket path, checked (non-empty, no NUL, at most 107 bytes). */
export function checkPath(addr: unknown, action: string): string {
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

/** @internal The `message` event value of a local socket, for received bytes. */
export function localMessage(path: () => string): (b: Uint8Array) => LocalSocketMessageInfo {
  return (bytes) => ({ message: toArrayBuffer(bytes), address: path(), size: bytes.byteLength });
}

/** @internal The options a local socket takes (buffer sizes and timeout only). */
export function onlyBufferOptions(
  options: LocalExtraOptions,
  action: string,
): ReturnType<typeof parseStreamOptions> {
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

  /**
   * Make a Unix-domain socket on a platform (use `socket.constructLocalSocketInstance()`).
   *
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
   * Connect to a Unix-domain server. linkweave extension: `options.signal`
   * gives the connect up (see `LocalConnectOptions`).
   *
   * @param options The server path and timeout (default 5000 ms).
   * @param callback Called when connected.
   */
  connect(options: LocalConnectOptions, callback: AsyncCallback<void>): void;
  /**
   * Connect to a Unix-domain server. linkweave extension: `options.signal`
   * gives the connect up (see `LocalConnectOptions`).
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
      const signal = abortSignal(o, "connect", (m) => new ParameterError(m));
      this.#core.checkUnconnected("connect");
      signal?.throwIfAborted();
      // Messages name the path from the first byte on.
      this.#path = path;
      await this.#core.connect(
        (events) => this.#platform.unixConnect(path, events),
        timeout,
        `Cannot connect to "${path}": timed out after ${timeout} ms`,
        signal,
      );
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
    return dual(async () => this.#core.state(this.#bound !== undefined), callback);
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
      this.#core.setExtraOptions(os, socketTimeout, action);
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
    return dual(async () => this.#core.extraOptions() as LocalExtraOptions, callback);
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
   * Listen for connect and close. One callback per event type: it replaces the one set
   * before.
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
  off(type: "message" | "connect" | "close" | "error", callback?: (v: never) => void): void {
    this.#core.off(type, callback, CLIENT_EVENTS);
  }
}

/**
 * The state shared by every stream socket (TCP client, TCP server connection,
 * Unix-domain client and connection: {@linkcode StreamCore}) and by both
 * stream servers ({@linkcode StreamServerCore}): connecting with a timeout,
 * sending with backpressure, closing, events, state and extra options. The
 * public classes in `tcp.ts` and `local.ts` keep OpenHarmony's signatures and
 * delegate here.
 *
 * @module
 */
import { BusinessError } from "../errors.ts";
import { Emitter } from "../emitter.ts";
import type { SocketOption, SocketOptionMap, StreamEvents, StreamHandle } from "./platform.ts";
import type { AsyncCallback, Callback, SocketStateBase } from "./types.ts";
import {
  binaryView,
  checkObject,
  checkOff,
  checkOn,
  closedError,
  copyBytes,
  EAGAIN,
  EISCONN,
  encodeData,
  ENOTCONN,
  errorEventOf,
  optBool,
  optUint,
  RESOLVED,
  settle,
  toBusinessError,
  withTimeout,
} from "./_util.ts";
import { ParameterError } from "../errors.ts";

/** Events of a stream socket; `M` is the message payload. */
export type StreamEventMap<M> = {
  message: M;
  connect: void;
  close: void;
  error: BusinessError<unknown>;
};

interface Waiter {
  resolve: () => void;
  reject: (e: unknown) => void;
  timer?: ReturnType<typeof setTimeout>;
}

/** Extra options as the stream sockets know them (the union of TCP and local). */
export interface StreamExtraOptions {
  keepAlive?: boolean;
  OOBInline?: boolean;
  TCPNoDelay?: boolean;
  socketLinger?: { on: boolean; linger: number };
  receiveBufferSize?: number;
  sendBufferSize?: number;
  reuseAddress?: boolean;
  socketTimeout?: number;
}

const OPTION_NAMES: ReadonlyArray<[keyof StreamExtraOptions, SocketOption]> = [
  ["keepAlive", "keepAlive"],
  ["OOBInline", "oobInline"],
  ["TCPNoDelay", "noDelay"],
  ["receiveBufferSize", "receiveBufferSize"],
  ["sendBufferSize", "sendBufferSize"],
  ["reuseAddress", "reuseAddress"],
];

/**
 * Validate extra options (TCP or local) and turn them into socket options.
 *
 * @param options The options.
 * @param action The action, for messages.
 * @returns The socket options and `socketTimeout`.
 */
export function parseStreamOptions(
  options: StreamExtraOptions,
  action: string,
): { os: Partial<SocketOptionMap>; socketTimeout?: number } {
  const os: Partial<SocketOptionMap> = {};
  const b = (k: "keepAlive" | "OOBInline" | "TCPNoDelay" | "reuseAddress") =>
    optBool(options[k], k, action);
  const set = <K extends SocketOption>(k: K, v: SocketOptionMap[K] | undefined) => {
    if (v !== undefined) os[k] = v;
  };
  set("keepAlive", b("keepAlive"));
  set("oobInline", b("OOBInline"));
  set("noDelay", b("TCPNoDelay"));
  set("reuseAddress", b("reuseAddress"));
  set("receiveBufferSize", optUint(options.receiveBufferSize, "receiveBufferSize", action));
  set("sendBufferSize", optUint(options.sendBufferSize, "sendBufferSize", action));
  const linger = options.socketLinger;
  if (linger !== undefined) {
    if (linger === null || typeof linger !== "object") {
      throw new ParameterError(
        `Cannot ${action}: socketLinger "${String(linger)}" is not an object`,
      );
    }
    const on = optBool(linger.on, "socketLinger.on", action) ?? false;
    const l = optUint(linger.linger, "socketLinger.linger", action, 65535) ?? 0;
    os.linger = on ? l : -1;
  }
  const socketTimeout = optUint(options.socketTimeout, "socketTimeout", action);
  return { os, socketTimeout };
}

/**
 * Apply socket options to a handle, recording those applied.
 *
 * @param target The handle.
 * @param os The options.
 * @param applied Where applied values are recorded.
 */
export function applyOptions(
  target: { setOption<K extends SocketOption>(n: K, v: SocketOptionMap[K]): boolean },
  os: Partial<SocketOptionMap>,
  applied: Partial<SocketOptionMap>,
): void {
  for (const [k, v] of Object.entries(os) as [SocketOption, never][]) {
    if (target.setOption(k, v)) (applied as Record<string, unknown>)[k] = v;
  }
}

/**
 * Options in effect as TCP extra options: what the handle reads back, else
 * what was applied; options neither applied nor readable are absent.
 *
 * @param handle The handle, if open.
 * @param applied What was applied.
 * @param socketTimeout The core's send timeout.
 * @returns The options.
 */
export function streamOptionsInEffect(
  handle: { getOption<K extends SocketOption>(n: K): SocketOptionMap[K] | undefined } | undefined,
  applied: Partial<SocketOptionMap>,
  socketTimeout: number | undefined,
): StreamExtraOptions {
  const out: Record<string, unknown> = {};
  for (const [pub, os] of OPTION_NAMES) {
    const v = handle?.getOption(os) ?? applied[os];
    if (v !== undefined) out[pub] = v;
  }
  const linger = handle?.getOption("linger") ?? applied.linger;
  if (linger !== undefined) {
    out.socketLinger = linger < 0 ? { on: false, linger: 0 } : { on: true, linger };
  }
  if (socketTimeout !== undefined) out.socketTimeout = socketTimeout;
  return out as StreamExtraOptions;
}

/**
 * One stream socket's state around a {@linkcode StreamHandle}.
 */
export class StreamCore<M> {
  /** The event emitter of the public object: one callback per event, as OpenHarmony keeps. */
  readonly events: Emitter<StreamEventMap<M>> = new Emitter<StreamEventMap<M>>({ single: true });
  /** Called once when the stream closed, before the `close` event (for its server). */
  onClosed: (() => void) | undefined;
  /** The options applied to the handle. */
  readonly applied: Partial<SocketOptionMap> = {};
  /** The send timeout in ms (0 or undefined: none). */
  socketTimeout: number | undefined;
  #handle: StreamHandle | undefined;
  #connecting = false;
  #pending: Partial<SocketOptionMap> = {};
  #closed = false;
  #closeSeen = false;
  #closing: Promise<void> | undefined;
  #waiters: Waiter[] = [];
  #what: string;
  #toMessage: (bytes: Uint8Array) => M;

  /**
   * @param what The socket kind for messages (`TCP socket`).
   * @param toMessage Build the `message` payload from received bytes.
   */
  constructor(what: string, toMessage: (bytes: Uint8Array) => M) {
    this.#what = what;
    this.#toMessage = toMessage;
  }

  /** The open handle, if any. */
  get handle(): StreamHandle | undefined {
    return this.#handle;
  }

  /** Whether the socket is closed. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Whether a `connect` is under way. */
  get connecting(): boolean {
    return this.#connecting;
  }

  /** Attach an open handle. @param handle The handle. */
  attach(handle: StreamHandle): void {
    this.#handle = handle;
  }

  /**
   * Throw unless the socket may still connect (or bind): open, not connected,
   * not connecting.
   *
   * @param action The action, for messages.
   */
  checkUnconnected(action: string): void {
    if (this.#closed) throw closedError(action, this.#what);
    if (this.#handle !== undefined || this.#connecting) {
      throw new BusinessError(EISCONN, `Cannot ${action}: the ${this.#what} is already connected`);
    }
  }

  /**
   * Connect: open a handle within `timeout` ms (else `ETIMEDOUT`, and a late
   * handle is closed), attach it, apply the options set before, emit `connect`.
   *
   * @param open Opens the handle with the given events.
   * @param timeout The timeout in ms.
   * @param message The timeout's error message.
   * @param signal Gives up (rejects with its reason; a late handle is closed).
   * @returns When connected.
   */
  async connect(
    open: (events: StreamEvents) => Promise<StreamHandle>,
    timeout: number,
    message: string,
    signal?: AbortSignal,
  ): Promise<void> {
    this.#connecting = true;
    let opening: Promise<StreamHandle>;
    let handle: StreamHandle;
    try {
      opening = open(this.streamEvents());
      try {
        handle = await withTimeout(opening, timeout, message, signal);
      } catch (e) {
        opening.then((h) => h.close(), () => {});
        throw e;
      }
    } finally {
      this.#connecting = false;
    }
    if (this.#closed) {
      await handle.close();
      throw closedError("connect", this.#what);
    }
    this.#handle = handle;
    applyOptions(handle, this.#pending, this.applied);
    this.events.emit("connect", undefined);
  }

  /**
   * The client state.
   *
   * @param bound Whether the socket was bound before connecting.
   * @returns The state.
   */
  state(bound: boolean): SocketStateBase {
    const open = this.#handle !== undefined && !this.#closed;
    return { isBound: open || (bound && !this.#closed), isClose: this.#closed, isConnected: open };
  }

  /**
   * Set extra options: applied to the handle, or kept for `connect`.
   *
   * @param os The socket options.
   * @param socketTimeout The send timeout, if given.
   * @param action The action, for messages.
   */
  setExtraOptions(
    os: Partial<SocketOptionMap>,
    socketTimeout: number | undefined,
    action: string,
  ): void {
    if (this.#closed) throw closedError(action, this.#what);
    if (socketTimeout !== undefined) this.socketTimeout = socketTimeout;
    const h = this.#handle;
    if (h === undefined) Object.assign(this.#pending, os);
    else applyOptions(h, os, this.applied);
  }

  /**
   * The extra options in effect.
   *
   * @returns The options.
   */
  extraOptions(): StreamExtraOptions {
    if (this.#closed) throw closedError("get extra options", this.#what);
    return streamOptionsInEffect(this.#handle, this.applied, this.socketTimeout);
  }

  /**
   * Set the callback of an event (replacing the previous one), after
   * checking the arguments as OpenHarmony does (see `checkOn`).
   *
   * @param type The event type.
   * @param callback The callback.
   * @param allowed The types this socket emits; others are ignored.
   */
  on(type: unknown, callback: unknown, allowed: readonly string[]): void {
    if (checkOn(type, callback, allowed, this.#what)) {
      this.events.on(type as "message", callback as Callback<M>);
    }
  }

  /**
   * Remove the callback of an event (only if it is `callback`, when given),
   * after checking the arguments as OpenHarmony does.
   *
   * @param type The event type.
   * @param callback The callback, or `undefined`.
   * @param allowed The types this socket emits; others are ignored.
   */
  off(type: unknown, callback: unknown, allowed: readonly string[]): void {
    if (checkOff(type, callback, allowed, this.#what)) {
      this.events.off(type as "message", callback as Callback<M> | undefined);
    }
  }

  /**
   * The callbacks to open a handle with.
   *
   * @returns Stream events routed to this core.
   */
  streamEvents(): StreamEvents {
    return {
      onData: (bytes) => {
        this.events.emit("message", this.#toMessage(bytes));
      },
      onDrain: () => {
        const ws = this.#waiters;
        this.#waiters = [];
        for (const w of ws) {
          if (w.timer !== undefined) clearTimeout(w.timer);
          w.resolve();
        }
      },
      onClose: (error) => {
        if (this.#closeSeen) return;
        this.#closeSeen = true;
        this.#closed = true;
        const ws = this.#waiters;
        this.#waiters = [];
        for (const w of ws) {
          if (w.timer !== undefined) clearTimeout(w.timer);
          w.reject(error ?? closedError("send data", this.#what));
        }
        this.onClosed?.();
        if (error !== undefined) this.events.emit("error", errorEventOf(error));
        this.events.emit("close", undefined);
      },
    };
  }

  /**
   * The public `send(options, callback?)` of every stream socket: validate,
   * then send, in the callback or the promise form.
   *
   * @param options `{ data, encoding }`.
   * @param callback The optional callback.
   * @returns The promise, or `undefined` when a callback was given.
   */
  sendOptions(
    options: unknown,
    callback: AsyncCallback<void> | undefined,
  ): Promise<void> | undefined {
    let p: Promise<void>;
    try {
      const o = checkObject<{ data: unknown; encoding?: unknown }>(options, "send data");
      p = this.send(o.data, o.encoding, "send data");
    } catch (e) {
      p = Promise.reject(e);
    }
    return typeof callback === "function" ? settle(p, callback) : p;
  }

  /**
   * Send data, resolving once the caller may reuse its buffer and the handle
   * is not over its high-water mark (else after `onDrain`). Binary data is
   * lent to the handle, not copied here; strings are encoded into fresh bytes.
   *
   * @param data A string, an `ArrayBuffer` or a view.
   * @param encoding The string encoding.
   * @param action The action, for messages.
   * @returns When sent. Throws `ParameterError` for bad data or encoding.
   */
  send(data: unknown, encoding: unknown, action: string): Promise<void> {
    let bytes = binaryView(data);
    let lent = bytes !== undefined;
    if (bytes === undefined) bytes = encodeData(data, encoding, action);
    if (this.#closed) return Promise.reject(closedError(action, this.#what));
    const h = this.#handle;
    if (h === undefined) {
      return Promise.reject(
        new BusinessError(ENOTCONN, `Cannot ${action}: the ${this.#what} is not connected`),
      );
    }
    const t = this.socketTimeout;
    if (lent && t !== undefined && t > 0) {
      // A send that times out still goes out later: it must not borrow the caller's buffer.
      bytes = copyBytes(bytes);
      lent = false;
    }
    const r = h.write(bytes, lent);
    if (r === true) return RESOLVED;
    if (r !== false) return r;
    return new Promise<void>((resolve, reject) => {
      const w: Waiter = { resolve, reject };
      if (t !== undefined && t > 0) {
        w.timer = setTimeout(() => {
          const i = this.#waiters.indexOf(w);
          if (i >= 0) this.#waiters.splice(i, 1);
          reject(
            new BusinessError(
              EAGAIN,
              `Cannot ${action}: the send buffer did not drain within socketTimeout "${t}" ms`,
            ),
          );
        }, t);
      }
      this.#waiters.push(w);
    });
  }

  /**
   * Close the stream; idempotent.
   *
   * @returns When closed.
   */
  close(): Promise<void> {
    if (this.#closing !== undefined) return this.#closing;
    const h = this.#handle;
    if (h === undefined || this.#closed) {
      this.#closed = true;
      this.#closing = Promise.resolve();
      return this.#closing;
    }
    this.#closing = h.close().catch((e) => {
      throw toBusinessError(e);
    });
    return this.#closing;
  }
}

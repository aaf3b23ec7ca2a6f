/**
 * OpenHarmony's `linkEnhance` (API 20) semantics: named servers, client
 * connections to a peer device, `sendData` of at most 1024 bytes, events,
 * exact error codes and limits. Connections are streams on the device's
 * link to the peer (`core/device/driver.ts`); this module holds only the
 * API rules.
 *
 * Listeners follow OpenHarmony's runtime: each object keeps one callback
 * per event. `on` replaces it, `off(type, anyCallback)` clears it, and
 * `Server.stop()` / `Server.close()` clear both server callbacks.
 *
 * @module
 */
import { DisconnectReason, ErrorCode } from "../error_codes.ts";
import { BusinessError } from "../errors.ts";
import { type AbortOptions, abortSignal, isTimeout, onAbort } from "../abort.ts";
import { type DeviceConfig, isDeviceId } from "../device/config.ts";
import type { DeviceHost } from "../device/host.ts";
import { type IncomingRequest, Port } from "../device/driver.ts";
import type { DeviceSurface } from "../device/driver_options.ts";
import { TRACE, trace } from "../trace.ts";
import { SendCopies } from "./_copies.ts";
import { ServiceKind } from "../proto/link/control.ts";
import { call, checkCallback, checkName, describe, invalid, MAX_NAME_BYTES } from "./_check.ts";
import { Server, serverAccepted, serverDied } from "./server.ts";

export { MAX_NAME_BYTES, Server };
export type { AbortOptions };

/** Largest `sendData` payload, in bytes (and the largest message a peer may send). */
export const MAX_SEND_DATA = 1024;
/**
 * How long a process stays alive after `disconnect()` or `close()` to flush
 * data already accepted by `sendData` (ms).
 */
export const LINGER_MS = 5000;

/** The result of `connect()`, reported by the `connectResult` event. */
export interface ConnectResult {
  /** The peer's device id on success; an empty string on failure. */
  deviceId: string;
  /** Whether the connection is up. */
  success: boolean;
  /** 0 on success, else 32390200 (timeout), 32390201 (no such server) or 32390300. */
  reason: number;
}

/** Undocumented in the API reference but exported by OpenHarmony's module. */
export const ConnectionState = {
  /** Connected. */
  STATE_CONNECTED: 2,
  /** Disconnected. */
  STATE_DISCONNECTED: 3,
} as const;

/** Events of a {@linkcode Server}. */
export interface ServerEvents {
  /** A peer connected to this server. */
  connectionAccepted: Connection;
  /** The server stopped abnormally (32390301: the link service died). */
  serverStopped: number;
}

/** Events of a {@linkcode Connection}. */
export interface ConnectionEvents {
  /** The outcome of `connect()`. */
  connectResult: ConnectResult;
  /** The connection ended without `disconnect()` here; the value says why. */
  disconnected: number;
  /** A message from the peer. */
  dataReceived: ArrayBuffer;
  /** linkweave extension: the send queue is back to half full or less after it had filled up. */
  drain: void;
}

/** What the API layer needs from the process: the device, its config, the host. */
export interface LinkEnhanceContext {
  /** The configuration in effect (read at first use). */
  config(): DeviceConfig;
  /** The machine. */
  host: DeviceHost;
  /** The device (embedded or attached to a daemon), started on first call. */
  driver(): Promise<DeviceSurface>;
}

/** The per-process state of the API: servers by name, counts, the device. */
export class LinkEnhance {
  #ctx: LinkEnhanceContext;
  /** Servers not closed, by lower-case name. */
  servers: Map<string, Server> = new Map();
  /** Started servers. */
  started = 0;
  /** Client connections connecting or connected. */
  clients = 0;
  #wired = false;

  /** @param ctx The device, its configuration and the host. */
  constructor(ctx: LinkEnhanceContext) {
    this.#ctx = ctx;
  }

  /** The context. */
  get ctx(): LinkEnhanceContext {
    return this.#ctx;
  }

  /**
   * Create a server.
   *
   * @param name 1..255 UTF-8 bytes; unique in the process, case-insensitively.
   * @returns The server.
   * @throws {ParameterError} 32390206 for a bad name.
   * @throws {BusinessError} 32390203 when the name is taken.
   */
  createServer(name: string): Server {
    checkName(name, "server name");
    const key = name.toLowerCase();
    if (this.servers.has(key)) {
      throw new BusinessError(
        ErrorCode.DUPLICATE_SERVER_NAME,
        `Cannot create server "${name}": a server with this name already exists`,
      );
    }
    const server = new Server(this, name);
    this.servers.set(key, server);
    return server;
  }

  /**
   * Create a client connection object.
   *
   * @param deviceId The peer's id, `AA:BB:CC:DD:EE:FF`.
   * @param name The peer's server name, 1..255 UTF-8 bytes.
   * @returns The connection, not yet connected.
   * @throws {ParameterError} 32390206 for a bad id or name.
   */
  createConnection(deviceId: string, name: string): Connection {
    if (!isDeviceId(deviceId)) {
      throw invalid(`Invalid device id ${JSON.stringify(deviceId)}: expected "AA:BB:CC:DD:EE:FF"`);
    }
    checkName(name, "server name");
    return new Connection(this, deviceId.toUpperCase(), name, false);
  }

  /** The driver once it runs (no promise needed then). */
  get running(): DeviceSurface | undefined {
    return this.#running;
  }

  #running: DeviceSurface | undefined;

  /** Make sure the device runs and answers incoming connections for our servers. */
  driver(): Promise<DeviceSurface> {
    return this.#ctx.driver().then((d) => {
      if (!this.#wired) {
        this.#wired = true;
        this.#running = d;
        d.setAcceptor(ServiceKind.LINK_ENHANCE, (request) => this.#accept(request));
        d.onListenerFailed(() => {
          for (const s of [...this.servers.values()]) serverDied(s, ErrorCode.SERVER_DIED);
        });
        this.advertise();
      }
      return d;
    });
  }

  /** Tell the device which servers are started (a device daemon routes connections by it). */
  advertise(): void {
    const names: string[] = [];
    for (const [key, s] of this.servers) if (s.started) names.push(key);
    this.#running?.serve?.(ServiceKind.LINK_ENHANCE, names);
  }

  /** The device is closing: every server stops (connections end with their links). */
  shutdown(): void {
    for (const s of this.servers.values()) s.stop();
  }

  #accept(request: IncomingRequest): Port | number {
    const server = this.servers.get(request.name.toLowerCase());
    if (server === undefined || !server.started) return ErrorCode.PEER_SERVER_NOT_STARTED;
    const conn = new Connection(this, request.peerId, server.name, true);
    // A connection the peer ended before it could be announced is never
    // announced. Messages that arrive before the announcement wait for it, so
    // the callbacks the app sets in `connectionAccepted` get them.
    queueMicrotask(() => {
      if (isConnected(conn)) serverAccepted(server, conn);
      announced(conn);
    });
    return portOf(conn);
  }
}

/** Module-private door into `Connection` (set in its static block). */
let portOf: (c: Connection) => Port;
let isConnected: (c: Connection) => boolean;
let announced: (c: Connection) => void;
const CONNECTION_EVENTS = ["connectResult", "disconnected", "dataReceived", "drain"] as const;

type ConnState = "idle" | "connecting" | "connected" | "disconnected" | "closed";

/** A logical connection to a peer device's server. */
export class Connection {
  #api: LinkEnhance;
  #peerId: string;
  #known: boolean;
  #name: string;
  #client: boolean;
  #state: ConnState;
  #port: Port;
  #live = false;
  #copies: SendCopies | undefined;
  #onResult: ((result: ConnectResult) => void) | undefined;
  #onDisconnected: ((reason: number) => void) | undefined;
  #onData: ((data: ArrayBuffer) => void) | undefined;
  #onDrain: (() => void) | undefined;
  #held = false;
  #attempt = 0;
  #unabort: (() => void) | undefined;
  /** An accepted connection not yet announced by `connectionAccepted`. */
  #unannounced: boolean;
  /** Messages that arrived while unannounced. */
  #early: ArrayBuffer[] | undefined;

  /** @internal Use `createConnection()`. */
  constructor(api: LinkEnhance, peerId: string, name: string, accepted: boolean) {
    this.#api = api;
    this.#peerId = peerId;
    this.#name = name;
    this.#client = !accepted;
    this.#known = accepted;
    this.#live = accepted;
    this.#state = accepted ? "connected" : "idle";
    this.#unannounced = accepted;
    this.#port = new Connection.#LinkPort(this);
    if (accepted) this.#hold();
  }

  /**
   * Connect to the peer's server. The outcome arrives as `connectResult`:
   * never as an exception, also when the peer is unknown or unreachable
   * (32390200 after the connect timeout, 10 s by default).
   *
   * linkweave extension: `options.signal` gives the attempt up. Aborted
   * before the call, `connect` throws the signal's reason and starts nothing;
   * aborted while connecting, the attempt ends as `disconnect()` would end it
   * and `connectResult` reports `success: false` with reason 32390200 when
   * the signal timed out (`AbortSignal.timeout(ms)`), else 32390300; once
   * connected, the signal no longer matters.
   *
   * @param options `signal` (a linkweave extension).
   * @throws {BusinessError} 32390204 when the limit of client connections is
   *   reached; 32390300 when already connecting or connected, on an accepted
   *   connection, or after `close()`.
   * @throws {ParameterError} 32390206 when `options` or its `signal` is malformed.
   * @throws The signal's reason when it aborted already.
   *
   * @example Give up after 2 s
   * ```ts ignore
   * conn.connect({ signal: AbortSignal.timeout(2000) });
   * ```
   */
  connect(options?: AbortOptions): void {
    const signal = abortSignal(options, "connect", invalid);
    if (this.#state === "closed") throw this.#usedAfterClose("connect");
    if (!this.#client) {
      throw new BusinessError(
        ErrorCode.INTERNAL_ERROR,
        `Cannot connect: connection "${this.#name}" was accepted from ${this.#peerId}`,
      );
    }
    if (this.#state === "connecting" || this.#state === "connected") {
      throw new BusinessError(
        ErrorCode.INTERNAL_ERROR,
        `Cannot connect: connection "${this.#name}" to ${this.#peerId} is already ${this.#state}`,
      );
    }
    const ctx = this.#api.ctx;
    const limit = ctx.config().limits.connections;
    if (this.#api.clients >= limit) {
      throw new BusinessError(
        ErrorCode.CONNECTION_LIMIT,
        `Cannot connect to ${this.#peerId}: ${limit} connections are already open`,
      );
    }
    signal?.throwIfAborted();
    this.#state = "connecting";
    this.#api.clients++;
    this.#hold();
    const attempt = ++this.#attempt;
    this.#unabort = onAbort(signal, (reason) => {
      if (attempt !== this.#attempt) return;
      const code = isTimeout(reason) ? ErrorCode.CONNECT_TIMEOUT : ErrorCode.INTERNAL_ERROR;
      Connection.#failed(this, code, `aborted: ${String(reason)}`);
    });
    const running = this.#api.running;
    if (running !== undefined) {
      this.#port = new Connection.#LinkPort(this);
      this.#live = true;
      running.connect(this.#peerId, this.#name, this.#port, {
        timeout: ctx.config().connectTimeout,
      });
      return;
    }
    const deadline = ctx.host.now() + ctx.config().connectTimeout;
    this.#api.driver().then((driver) => {
      if (attempt !== this.#attempt || this.#state !== "connecting") return;
      this.#port = new Connection.#LinkPort(this);
      this.#live = true;
      driver.connect(this.#peerId, this.#name, this.#port, {
        timeout: Math.max(0, deadline - ctx.host.now()),
      });
    }, (e) => {
      ctx.host.warn(`linkweave: cannot start the device: ${(e as Error).message}`);
      if (attempt === this.#attempt) {
        Connection.#failed(this, ErrorCode.INTERNAL_ERROR, "the device did not start");
      }
    });
  }

  /**
   * Disconnect. Data already accepted by `sendData` reaches the peer before
   * it sees `disconnected`. The object stays valid: `connect()` may be
   * called again.
   */
  disconnect(): void {
    if (this.#state === "connecting" || this.#state === "connected") {
      this.#end(true);
      this.#api.driver().then((d) => d.linger(LINGER_MS), () => {});
    }
  }

  /** Disconnect and destroy the object. */
  close(): void {
    if (this.#state === "closed") return;
    this.disconnect();
    this.#state = "closed";
    this.#onResult =
      this.#onDisconnected =
      this.#onData =
      this.#onDrain =
        undefined;
  }

  /**
   * The peer's device id: `""` until one was obtained (a client connection
   * obtains it when it connects; an accepted one has it from the start), as
   * in OpenHarmony.
   *
   * @returns The id, or `""`.
   */
  getPeerDeviceId(): string {
    return this.#known ? this.#peerId : "";
  }

  /**
   * linkweave extension: payload bytes accepted by `sendData` and not yet
   * handed to the network.
   */
  get bufferedAmount(): number {
    return this.#live ? this.#port.bufferedAmount : 0;
  }

  /**
   * Send a message of 1..1024 bytes. Messages arrive in order, exactly
   * once, or the connection reports `disconnected`.
   *
   * @param data The message: an ArrayBuffer, as OpenHarmony requires.
   * @throws {ParameterError} 32390206 when `data` is not an ArrayBuffer of
   *   1..1024 bytes (a typed array or DataView, or a detached buffer).
   * @throws {BusinessError} 32390205 when not connected; 32390300 when the
   *   send queue is full (wait for `drain`) or after `close()`.
   */
  sendData(data: ArrayBuffer): void {
    if (this.#state === "closed") throw this.#usedAfterClose("send data");
    const value: unknown = data;
    if (!(value instanceof ArrayBuffer)) {
      throw invalid(`Invalid data: expected an ArrayBuffer, got ${describe(value)}`);
    }
    if ((value as { detached?: boolean }).detached === true) {
      throw invalid("Invalid data: the ArrayBuffer is detached");
    }
    const n = value.byteLength;
    if (n === 0 || n > MAX_SEND_DATA) {
      throw invalid(`Invalid data: expected 1..${MAX_SEND_DATA} bytes, got ${n}`);
    }
    if (this.#state !== "connected" || !this.#live) {
      throw new BusinessError(
        ErrorCode.CONNECTION_NOT_READY,
        `Cannot send data: connection "${this.#name}" to ${this.#peerId} is not connected`,
      );
    }
    const bytes = new Uint8Array(value);
    const copies = this.#copies ??= new SendCopies();
    const port = this.#port;
    if (!port.send(copies.copy(bytes, port.bufferedAmount))) {
      copies.undo(n);
      throw new BusinessError(
        ErrorCode.INTERNAL_ERROR,
        `Cannot send data: the send queue of connection "${this.#name}" is full ` +
          `(${port.bufferedAmount} bytes waiting); wait for "drain"`,
      );
    }
  }

  /**
   * Set the callback of `connectResult`, replacing the previous one: the
   * outcome of `connect()`.
   *
   * @param type `connectResult`.
   * @param callback Receives the result.
   * @throws {ParameterError} 32390206 for a bad type or callback.
   */
  on(type: "connectResult", callback: (result: ConnectResult) => void): void;
  /**
   * Set the callback of `disconnected`, replacing the previous one: the
   * connection ended without `disconnect()` here.
   *
   * @param type `disconnected`.
   * @param callback Receives the reason (`DisconnectReason`).
   * @throws {ParameterError} 32390206 for a bad type or callback.
   */
  on(type: "disconnected", callback: (reason: number) => void): void;
  /**
   * Set the callback of `dataReceived`, replacing the previous one: a
   * message from the peer.
   *
   * @param type `dataReceived`.
   * @param callback Receives the message.
   * @throws {ParameterError} 32390206 for a bad type or callback.
   */
  on(type: "dataReceived", callback: (data: ArrayBuffer) => void): void;
  /**
   * linkweave extension: set the callback of `drain`, replacing the previous
   * one: the send queue is back to half full or less after it had filled up.
   *
   * @param type `drain`.
   * @param callback Called without a value.
   * @throws {ParameterError} 32390206 for a bad type or callback.
   */
  on(type: "drain", callback: () => void): void;
  on(type: string, callback: (value: never) => void): void {
    checkCallback(type, callback, CONNECTION_EVENTS, false);
    this.#set(type, callback);
  }

  /**
   * Clear the callback of `connectResult` (whatever function is passed, as
   * in OpenHarmony).
   *
   * @param type `connectResult`.
   * @param callback Ignored when given; must be a function.
   * @throws {ParameterError} 32390206 for a bad type or a non-function callback.
   */
  off(type: "connectResult", callback?: (result: ConnectResult) => void): void;
  /**
   * Clear the callback of `disconnected` (whatever function is passed).
   *
   * @param type `disconnected`.
   * @param callback Ignored when given; must be a function.
   * @throws {ParameterError} 32390206 for a bad type or a non-function callback.
   */
  off(type: "disconnected", callback?: (reason: number) => void): void;
  /**
   * Clear the callback of `dataReceived` (whatever function is passed).
   *
   * @param type `dataReceived`.
   * @param callback Ignored when given; must be a function.
   * @throws {ParameterError} 32390206 for a bad type or a non-function callback.
   */
  off(type: "dataReceived", callback?: (data: ArrayBuffer) => void): void;
  /**
   * Clear the callback of `drain` (whatever function is passed).
   *
   * @param type `drain`.
   * @param callback Ignored when given; must be a function.
   * @throws {ParameterError} 32390206 for a bad type or a non-function callback.
   */
  off(type: "drain", callback?: () => void): void;
  off(type: string, callback?: (value: never) => void): void {
    checkCallback(type, callback, CONNECTION_EVENTS, true);
    this.#set(type, undefined);
  }

  #set(type: string, cb: ((value: never) => void) | undefined): void {
    const f = cb as ((value: unknown) => void) | undefined;
    switch (type) {
      case "connectResult":
        this.#onResult = f;
        return;
      case "disconnected":
        this.#onDisconnected = f;
        return;
      case "dataReceived":
        this.#onData = f;
        return;
      default:
        this.#onDrain = f as (() => void) | undefined;
    }
  }

  /**
   * linkweave extension: `await using conn = device.createConnection(...)`
   * closes the connection when the scope ends, as `close()` does.
   *
   * @returns When closed.
   */
  [Symbol.asyncDispose](): Promise<void> {
    this.close();
    return Promise.resolve();
  }

  /** A plain description (for `JSON.stringify`). */
  toJSON(): { deviceId: string; name: string; state: string } {
    return { deviceId: this.getPeerDeviceId(), name: this.#name, state: this.#state };
  }

  /** The peer accepted. */
  static #opened(c: Connection): void {
    if (c.#state !== "connecting") return;
    c.#state = "connected";
    c.#known = true;
    c.#unabort?.();
    c.#unabort = undefined;
    c.#result({ deviceId: c.#peerId, success: true, reason: 0 });
  }

  /** The peer refused, or the connect failed. */
  static #failed(c: Connection, code: number, message: string | undefined): void {
    if (c.#state !== "connecting") return;
    if (message !== undefined) {
      trace("connectFailed", { peer: c.#peerId, name: c.#name, code, message });
    }
    // OpenHarmony's conversion: these pass through, anything else is 32390300.
    const reason = code === ErrorCode.PEER_SERVER_NOT_STARTED ||
        code === ErrorCode.CONNECT_TIMEOUT || code === ErrorCode.CONNECTION_LIMIT
      ? code
      : ErrorCode.INTERNAL_ERROR;
    c.#end(true);
    c.#result({ deviceId: "", success: false, reason });
  }

  /** A message arrived. */
  static #data(c: Connection, data: ArrayBuffer): void {
    if (c.#state !== "connected") return;
    if (c.#unannounced) {
      // Bounded by the link's receive window of this stream.
      (c.#early ??= []).push(data);
      return;
    }
    if (data.byteLength === 0 || data.byteLength > MAX_SEND_DATA) {
      // What the API can receive is what it can send: anything else is a
      // protocol error that ends this connection only.
      c.#api.ctx.host.warn(
        `linkweave: ${c.#peerId} sent a ${data.byteLength}-byte message on "${c.#name}" ` +
          `(linkEnhance messages are 1..${MAX_SEND_DATA} bytes); connection closed`,
      );
      c.#end(true);
      call(c.#onDisconnected, DisconnectReason.LINK_CLOSED);
      return;
    }
    if (TRACE) trace("dataReceived", { peer: c.#peerId, name: c.#name, bytes: data.byteLength });
    const cb = c.#onData;
    if (cb === undefined) return;
    try {
      cb(data);
    } catch (error) {
      console.error("linkweave: an event callback threw:", error);
    }
  }

  /** The connection closed under us. */
  static #closed(c: Connection, reason: number): void {
    if (c.#state === "connecting") {
      Connection.#failed(c, ErrorCode.INTERNAL_ERROR, "the link closed while connecting");
    } else if (c.#state === "connected") {
      c.#end(false);
      trace("disconnected", { peer: c.#peerId, name: c.#name, reason });
      call(c.#onDisconnected, reason);
    }
  }

  /** The send queue drained. */
  static #drained(c: Connection): void {
    if (c.#state === "connected") call(c.#onDrain, undefined);
  }

  #result(result: ConnectResult): void {
    trace("connectResult", { peer: this.#peerId, name: this.#name, ...result });
    call(this.#onResult, result);
  }

  #hold(): void {
    if (this.#held) return;
    this.#held = true;
    this.#api.ctx.host.hold();
  }

  /** Leave connecting/connected; `local` closes our side of the stream. */
  #end(local: boolean): void {
    if (this.#client) this.#api.clients--;
    this.#unabort?.();
    this.#unabort = undefined;
    this.#state = "disconnected";
    this.#attempt++;
    if (local && this.#live) this.#port.close();
    this.#live = false;
    this.#copies = undefined; // the link may still send from its slabs
    if (this.#held) {
      this.#held = false;
      this.#api.ctx.host.release();
    }
  }

  #usedAfterClose(action: string): BusinessError {
    return new BusinessError(
      ErrorCode.INTERNAL_ERROR,
      `Cannot ${action}: connection "${this.#name}" to ${this.#peerId} is closed`,
    );
  }

  /** How the device reaches a connection: one small object per connection, no closures. */
  static #LinkPort = class extends Port {
    #c: Connection;

    constructor(c: Connection) {
      super();
      this.#c = c;
      // What the API can receive is what it can send.
      this.maxMessage = MAX_SEND_DATA;
    }

    override onOpened(): void {
      Connection.#opened(this.#c);
    }

    override onRejected(code: number): void {
      Connection.#failed(this.#c, code, undefined);
    }

    override onFailed(code: number, message: string): void {
      Connection.#failed(this.#c, code, message);
    }

    override onData(data: ArrayBuffer): void {
      Connection.#data(this.#c, data);
    }

    override onClosed(reason: number): void {
      Connection.#closed(this.#c, reason);
    }

    override onDrain(): void {
      Connection.#drained(this.#c);
    }
  };

  static {
    portOf = (c) => c.#port;
    isConnected = (c) => c.#state === "connected";
    announced = (c) => {
      const early = c.#early;
      c.#unannounced = false;
      c.#early = undefined;
      for (const data of early ?? []) Connection.#data(c, data);
    };
  }
}

/** Reasons `disconnected` reports. */
export { DisconnectReason };

/**
 * OpenHarmony's `linkEnhance` (API 20) semantics: named servers, client
 * connections to a peer device, `sendData` of at most 1024 bytes, events,
 * exact error codes and limits. Connections are streams on the device's
 * link to the peer (`core/device/runtime.ts`); this module holds only the
 * API rules.
 *
 * @module
 */
import { Emitter } from "../emitter.ts";
import { DisconnectReason, ErrorCode } from "../error_codes.ts";
import { BusinessError, ParameterError } from "../errors.ts";
import { type DeviceConfig, isDeviceId } from "../device_config.ts";
import type { DeviceHost } from "../device/host.ts";
import type {
  ConnectionHandler,
  ConnectionRef,
  DeviceDriver,
  IncomingRequest,
} from "../device/driver.ts";
import { SendCopies } from "./_copies.ts";

/** Largest `sendData` payload, in bytes. */
export const MAX_SEND_DATA = 1024;
/** Longest server name, in UTF-8 bytes. */
export const MAX_NAME_BYTES = 255;
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
  [key: string]: unknown;
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
  [key: string]: unknown;
}

/** What the API layer needs from the process: the device, its config, timers. */
export interface LinkEnhanceContext {
  /** The configuration in effect (read at first use). */
  config(): DeviceConfig;
  /** The machine. */
  host: DeviceHost;
  /** The device driver, started on first call. */
  driver(): Promise<DeviceDriver>;
}

const encoder = new TextEncoder();

function invalid(message: string): ParameterError {
  return new ParameterError(message, ErrorCode.INVALID_PARAMETER);
}

function checkName(name: unknown, what: string): string {
  if (typeof name !== "string") {
    throw invalid(`Invalid ${what}: expected a string, got ${typeof name}`);
  }
  const bytes = encoder.encode(name).length;
  if (bytes === 0 || bytes > MAX_NAME_BYTES) {
    throw invalid(
      `Invalid ${what} ${
        JSON.stringify(name)
      }: expected 1..${MAX_NAME_BYTES} UTF-8 bytes, got ${bytes}`,
    );
  }
  return name;
}

function checkCallback(
  type: unknown,
  cb: unknown,
  types: readonly string[],
  optional: boolean,
): void {
  if (typeof type !== "string" || !types.includes(type)) {
    throw invalid(
      `Invalid event type ${JSON.stringify(type)}: expected one of ${types.join(", ")}`,
    );
  }
  if (!(optional && cb === undefined) && typeof cb !== "function") {
    throw invalid(`Invalid callback for "${type}": expected a function`);
  }
}

function swallow(error: unknown): void {
  // OpenHarmony swallows what event callbacks throw; we also say so.
  console.error("linkweave: an event callback threw:", error);
}

const TRACE = (() => {
  try {
    return typeof process !== "undefined" && process.env?.LINKWEAVE_TRACE === "1";
  } catch {
    return false;
  }
})();

declare const process: { env?: Record<string, string | undefined> } | undefined;

function trace(event: string, detail: Record<string, unknown>): void {
  if (TRACE) console.error(JSON.stringify({ linkweave: event, ...detail }));
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
  #acceptorSet = false;

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
    return new Connection(this, deviceId.toUpperCase(), name, undefined);
  }

  /** Make sure the device runs and answers incoming connections for our servers. */
  driver(): Promise<DeviceDriver> {
    return this.#ctx.driver().then((d) => {
      if (!this.#acceptorSet) {
        this.#acceptorSet = true;
        d.setAcceptor((request, ref) => this.#accept(request, ref));
      }
      return d;
    });
  }

  #accept(request: IncomingRequest, ref: ConnectionRef): ConnectionHandler | number {
    const server = this.servers.get(request.name.toLowerCase());
    if (server === undefined || !server.started) return ErrorCode.PEER_SERVER_NOT_STARTED;
    const conn = new Connection(this, request.peerId, server.name, ref);
    queueMicrotask(() => server.accepted(conn));
    return conn.handler;
  }
}

/** A named server other devices connect to. */
export class Server {
  #api: LinkEnhance;
  #name: string;
  #state: "created" | "started" | "stopped" | "closed" = "created";
  #events = new Emitter<ServerEvents>({ onListenerError: swallow });
  #release: (() => void) | undefined;

  /** @internal Use `createServer()`. */
  constructor(api: LinkEnhance, name: string) {
    this.#api = api;
    this.#name = name;
  }

  /** The server's name. */
  get name(): string {
    return this.#name;
  }

  /** Whether it accepts connections. */
  get started(): boolean {
    return this.#state === "started";
  }

  /**
   * Start accepting connections.
   *
   * @throws {BusinessError} 32390202 when the limit of started servers is
   *   reached; 32390300 after `close()`.
   */
  start(): void {
    if (this.#state === "closed") {
      throw new BusinessError(
        ErrorCode.INTERNAL_ERROR,
        `Cannot start server "${this.#name}": it is closed`,
      );
    }
    if (this.#state === "started") return;
    const limit = this.#api.ctx.config().limits.servers;
    if (this.#api.started >= limit) {
      throw new BusinessError(
        ErrorCode.SERVER_LIMIT,
        `Cannot start server "${this.#name}": ${limit} servers are already started`,
      );
    }
    this.#state = "started";
    this.#api.started++;
    this.#release = this.#api.ctx.host.hold();
    this.#api.driver().catch((e) => {
      if (this.#state !== "started") return;
      this.#api.ctx.host.warn(`linkweave: server "${this.#name}" stopped: ${(e as Error).message}`);
      this.stop();
      this.#emit("serverStopped", ErrorCode.SERVER_DIED);
    });
  }

  /** Stop accepting connections; `start()` may be called again. */
  stop(): void {
    if (this.#state !== "started") return;
    this.#state = "stopped";
    this.#api.started--;
    this.#release?.();
    this.#release = undefined;
  }

  /** Stop and destroy the server; its name becomes free. */
  close(): void {
    if (this.#state === "closed") return;
    this.stop();
    this.#state = "closed";
    this.#api.servers.delete(this.#name.toLowerCase());
    this.#events.off("connectionAccepted");
    this.#events.off("serverStopped");
  }

  /**
   * Add a listener.
   *
   * @param type `connectionAccepted` or `serverStopped`.
   * @param callback The listener.
   * @throws {ParameterError} 32390206 for a bad type or callback.
   */
  on(type: "connectionAccepted", callback: (connection: Connection) => void): void;
  on(type: "serverStopped", callback: (reason: number) => void): void;
  on(type: string, callback: (value: never) => void): void {
    checkCallback(type, callback, SERVER_EVENTS, false);
    this.#events.on(type, callback as (v: unknown) => void);
  }

  /**
   * Remove a listener, or every listener of the type.
   *
   * @param type `connectionAccepted` or `serverStopped`.
   * @param callback The listener; all of the type when omitted.
   * @throws {ParameterError} 32390206 for a bad type or callback.
   */
  off(type: "connectionAccepted", callback?: (connection: Connection) => void): void;
  off(type: "serverStopped", callback?: (reason: number) => void): void;
  off(type: string, callback?: (value: never) => void): void {
    checkCallback(type, callback, SERVER_EVENTS, true);
    this.#events.off(type, callback as ((v: unknown) => void) | undefined);
  }

  /** @internal A connection was accepted. */
  accepted(conn: Connection): void {
    trace("connectionAccepted", { server: this.#name, peer: conn.getPeerDeviceId() });
    this.#emit("connectionAccepted", conn);
  }

  #emit<K extends keyof ServerEvents & string>(type: K, value: ServerEvents[K]): void {
    this.#events.emit(type, value);
  }

  /** A plain description (for `JSON.stringify`). */
  toJSON(): { name: string; state: string } {
    return { name: this.#name, state: this.#state };
  }
}

const SERVER_EVENTS = ["connectionAccepted", "serverStopped"] as const;
const CONNECTION_EVENTS = ["connectResult", "disconnected", "dataReceived", "drain"] as const;

type ConnState = "idle" | "connecting" | "connected" | "disconnected" | "closed";

/** A logical connection to a peer device's server. */
export class Connection {
  #api: LinkEnhance;
  #peerId: string;
  #name: string;
  #client: boolean;
  #state: ConnState;
  #stream: ConnectionRef | undefined;
  #copies: SendCopies | undefined;
  #events = new Emitter<ConnectionEvents>({ onListenerError: swallow });
  #release: (() => void) | undefined;
  #attempt = 0;

  /** @internal Use `createConnection()`. */
  constructor(
    api: LinkEnhance,
    peerId: string,
    name: string,
    accepted: ConnectionRef | undefined,
  ) {
    this.#api = api;
    this.#peerId = peerId;
    this.#name = name;
    this.#client = accepted === undefined;
    this.#stream = accepted;
    this.#state = accepted === undefined ? "idle" : "connected";
    if (accepted !== undefined) this.#release = api.ctx.host.hold();
  }

  /**
   * Connect to the peer's server. The outcome arrives as `connectResult`:
   * never as an exception, also when the peer is unknown or unreachable
   * (32390200 after the connect timeout, 10 s by default).
   *
   * @throws {BusinessError} 32390204 when the limit of client connections is
   *   reached; 32390300 when already connecting or connected, on an accepted
   *   connection, or after `close()`.
   */
  connect(): void {
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
    this.#state = "connecting";
    this.#api.clients++;
    this.#release = ctx.host.hold();
    const attempt = ++this.#attempt;
    const deadline = ctx.host.now() + ctx.config().connectTimeout;
    this.#api.driver().then((driver) => {
      if (attempt !== this.#attempt || this.#state !== "connecting") return;
      this.#stream = driver.connect(this.#peerId, this.#name, this.handler, {
        timeout: Math.max(0, deadline - ctx.host.now()),
      });
    }, (e) => {
      ctx.host.warn(`linkweave: cannot start the device: ${(e as Error).message}`);
      if (attempt === this.#attempt && this.#state === "connecting") {
        this.#fail(ErrorCode.INTERNAL_ERROR);
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
    for (const t of CONNECTION_EVENTS) this.#events.off(t);
  }

  /**
   * The peer's device id (also before connecting, for a client connection).
   *
   * @returns The id.
   */
  getPeerDeviceId(): string {
    return this.#peerId;
  }

  /**
   * linkweave extension: payload bytes accepted by `sendData` and not yet
   * handed to the network.
   */
  get bufferedAmount(): number {
    return this.#stream?.bufferedAmount ?? 0;
  }

  /**
   * Send a message of 1..1024 bytes. Messages arrive in order, exactly
   * once, or the connection reports `disconnected`.
   *
   * @param data The message.
   * @throws {ParameterError} 32390206 when `data` is not an ArrayBuffer (or
   *   a view of one) of 1..1024 bytes.
   * @throws {BusinessError} 32390205 when not connected; 32390300 when the
   *   send queue is full (wait for `drain`) or after `close()`.
   */
  sendData(data: ArrayBuffer): void {
    if (this.#state === "closed") throw this.#usedAfterClose("send data");
    const value: unknown = data;
    let bytes: Uint8Array;
    if (value instanceof ArrayBuffer) bytes = new Uint8Array(value);
    else if (ArrayBuffer.isView(value)) {
      bytes = new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
    } else throw invalid(`Invalid data: expected an ArrayBuffer, got ${describe(data)}`);
    if (bytes.length === 0 || bytes.length > MAX_SEND_DATA) {
      throw invalid(
        `Invalid data: expected 1..${MAX_SEND_DATA} bytes, got ${bytes.length}`,
      );
    }
    if (this.#state !== "connected" || this.#stream === undefined) {
      throw new BusinessError(
        ErrorCode.CONNECTION_NOT_READY,
        `Cannot send data: connection "${this.#name}" to ${this.#peerId} is not connected`,
      );
    }
    const copies = this.#copies ??= new SendCopies();
    if (!this.#stream.send(copies.copy(bytes, this.#stream.bufferedAmount))) {
      copies.undo(bytes.length);
      throw new BusinessError(
        ErrorCode.INTERNAL_ERROR,
        `Cannot send data: the send queue of connection "${this.#name}" is full ` +
          `(${this.#stream.bufferedAmount} bytes waiting); wait for "drain"`,
      );
    }
  }

  /**
   * Add a listener. Several listeners per event are kept (OpenHarmony's
   * docs; its runtime keeps only the last).
   *
   * @param type `connectResult`, `disconnected`, `dataReceived` or `drain`.
   * @param callback The listener.
   * @throws {ParameterError} 32390206 for a bad type or callback.
   */
  on(type: "connectResult", callback: (result: ConnectResult) => void): void;
  on(type: "disconnected", callback: (reason: number) => void): void;
  on(type: "dataReceived", callback: (data: ArrayBuffer) => void): void;
  on(type: "drain", callback: () => void): void;
  on(type: string, callback: (value: never) => void): void {
    checkCallback(type, callback, CONNECTION_EVENTS, false);
    this.#events.on(type, callback as (v: unknown) => void);
  }

  /**
   * Remove a listener, or every listener of the type.
   *
   * @param type The event type.
   * @param callback The listener; all of the type when omitted.
   * @throws {ParameterError} 32390206 for a bad type or callback.
   */
  off(type: "connectResult", callback?: (result: ConnectResult) => void): void;
  off(type: "disconnected", callback?: (reason: number) => void): void;
  off(type: "dataReceived", callback?: (data: ArrayBuffer) => void): void;
  off(type: "drain", callback?: () => void): void;
  off(type: string, callback?: (value: never) => void): void {
    checkCallback(type, callback, CONNECTION_EVENTS, true);
    this.#events.off(type, callback as ((v: unknown) => void) | undefined);
  }

  /** A plain description (for `JSON.stringify`). */
  toJSON(): { deviceId: string; name: string; state: string } {
    return { deviceId: this.#peerId, name: this.#name, state: this.#state };
  }

  /** @internal The connection's events. */
  readonly handler: ConnectionHandler = {
    onOpened: () => {
      if (this.#state !== "connecting") return;
      this.#state = "connected";
      this.#result({ deviceId: this.#peerId, success: true, reason: 0 });
    },
    onRejected: (code) => {
      if (this.#state === "connecting") {
        this.#fail(code === ErrorCode.PEER_SERVER_NOT_STARTED ? code : ErrorCode.INTERNAL_ERROR);
      }
    },
    onFailed: (code, message) => {
      if (this.#state !== "connecting") return;
      trace("connectFailed", { peer: this.#peerId, name: this.#name, code, message });
      this.#fail(code === ErrorCode.CONNECT_TIMEOUT ? code : ErrorCode.INTERNAL_ERROR);
    },
    onData: (data) => {
      if (this.#state !== "connected") return;
      if (TRACE) {
        trace("dataReceived", { peer: this.#peerId, name: this.#name, bytes: data.byteLength });
      }
      this.#events.emit("dataReceived", data);
    },
    onClosed: (reason) => {
      if (this.#state === "connecting") {
        this.#fail(ErrorCode.INTERNAL_ERROR);
      } else if (this.#state === "connected") {
        this.#end(false);
        trace("disconnected", { peer: this.#peerId, name: this.#name, reason });
        this.#events.emit("disconnected", reason);
      }
    },
    onDrain: () => {
      if (this.#state === "connected") this.#events.emit("drain", undefined);
    },
  };

  #result(result: ConnectResult): void {
    trace("connectResult", { peer: this.#peerId, name: this.#name, ...result });
    this.#events.emit("connectResult", result);
  }

  #fail(reason: number): void {
    this.#end(true);
    this.#result({ deviceId: "", success: false, reason });
  }

  /** Leave connecting/connected; `local` closes our side of the stream. */
  #end(local: boolean): void {
    if (this.#client) this.#api.clients--;
    this.#state = "disconnected";
    this.#attempt++;
    if (local) this.#stream?.close();
    this.#stream = undefined;
    this.#copies = undefined; // the link may still send from its slabs
    this.#release?.();
    this.#release = undefined;
  }

  #usedAfterClose(action: string): BusinessError {
    return new BusinessError(
      ErrorCode.INTERNAL_ERROR,
      `Cannot ${action}: connection "${this.#name}" to ${this.#peerId} is closed`,
    );
  }
}

function describe(v: unknown): string {
  return v === null ? "null" : Array.isArray(v) ? "an array" : typeof v;
}

/** Reasons `disconnected` reports. */
export { DisconnectReason };

/**
 * The daemon server's two kinds of record: a {@linkcode Relay} (one
 * connection through the daemon: a port on its device, relayed to an
 * application, or held while its collaboration request is read) and an
 * {@linkcode App} (one attached application: its socket, decoder, served
 * names, relays, and its write queue, joined per tick). Both hand what
 * happens to their {@linkcode RelayOwner}, the `DaemonServer` (`server.ts`).
 *
 * @module
 */
import { type IncomingRequest, Port } from "../device/port.ts";
import type { Hello } from "../ability/wire.ts";
import type { ManifestEntry } from "./manifest.ts";
import { AttachDecoder, type AttachMessage, encodeAttach } from "./wire.ts";
import type { AppConnection, AppTransport } from "./_server_types.ts";

/** Writes above this size go to the socket on their own rather than joined (bytes). */
const JOIN_LIMIT = 64 * 1024;

/** What relays and applications tell the server (its `@internal` methods). */
export interface RelayOwner {
  /** A relay's connection opened. */
  relayOpened(r: Relay): void;
  /** A relay's connection was refused or failed (`m` tells the application). */
  relayFailed(r: Relay, m: AttachMessage): void;
  /** A message arrived on a relay. */
  relayData(r: Relay, data: ArrayBuffer): void;
  /** A relay's connection closed. */
  relayClosed(r: Relay, reason: number, byPeer: boolean): void;
  /** The link's queue for a relay is back to half. */
  relayDrain(r: Relay): void;
  /** Bytes from an application. */
  appBytes(app: App, bytes: Uint8Array): void;
  /** Detach an application. */
  detach(app: App, why: string, tell: boolean): void;
  /** After a write to an application's socket. */
  checkQueue(app: App): void;
}

/** A collaboration request being read, or waiting for its ability to register. */
export interface Held {
  /** The stream as the device offered it. */
  request: IncomingRequest;
  /** What arrived on it so far (the application gets it on hand-over). */
  messages: Uint8Array[];
  /** Their bytes. */
  bytes: number;
  /** The collaboration request, once read. */
  hello: Hello | undefined;
  /** The callee's manifest key, once read. */
  key: string | undefined;
  /** The collaboration timeout. */
  timer: unknown;
}

/** An ability being started: who waits for it, and its registration deadline. */
export interface LaunchRecord {
  /** The manifest entry started. */
  entry: ManifestEntry;
  /** The held relays handed over once it registers. */
  waiters: Set<Relay>;
  /** Its registration deadline. */
  timer: unknown;
}

/** Where a relay is in its life. */
export type RelayState = "connecting" | "offered" | "open" | "held" | "closing";

/** One connection through the daemon: a port on its device, relayed to an application. */
export class Relay extends Port {
  app: App | undefined;
  handle: number = 0;
  readonly kind: number;
  state: RelayState;
  overflow: Uint8Array[] = [];
  overflowBytes: number = 0;
  /** Bytes the link took since the application was last told. */
  taken: number = 0;
  /** The link's queued bytes the application was last told. */
  reported: number = 0;
  held: Held | undefined;
  #server: RelayOwner;

  /**
   * @param server Hears the relay's events.
   * @param kind The service kind.
   * @param state Its first state.
   */
  constructor(server: RelayOwner, kind: number, state: RelayState) {
    super();
    this.#server = server;
    this.kind = kind;
    this.state = state;
  }

  override onOpened(): void {
    this.#server.relayOpened(this);
  }
  override onRejected(code: number): void {
    this.#server.relayFailed(this, { type: "rejected", handle: this.handle, code });
  }
  override onFailed(code: number, message: string): void {
    this.#server.relayFailed(this, { type: "failed", handle: this.handle, code, message });
  }
  override onData(data: ArrayBuffer): void {
    this.#server.relayData(this, data);
  }
  override onClosed(reason: number, byPeer: boolean): void {
    this.#server.relayClosed(this, reason, byPeer);
  }
  override onDrain(): void {
    this.#server.relayDrain(this);
  }
}

/** An attached application. */
export class App implements AppConnection {
  readonly id: number;
  pid: number = 0;
  state: "hello" | "ready" | "closed" = "hello";
  readonly transport: AppTransport;
  readonly decoder: AttachDecoder = new AttachDecoder("app");
  readonly served: Map<number, Set<string>> = new Map();
  readonly relays: Map<number, Relay> = new Map();
  nextHandle: number = 2;
  /** Pairing requests under way. */
  pairings: number = 0;
  helloTimer: unknown;
  out: Uint8Array[] = [];
  outBytes: number = 0;
  flushQueued: boolean = false;
  #server: RelayOwner;

  /**
   * @param server Hears the application's bytes and end.
   * @param id Its number in the daemon.
   * @param transport Its socket.
   */
  constructor(server: RelayOwner, id: number, transport: AppTransport) {
    this.#server = server;
    this.id = id;
    this.transport = transport;
  }

  handleBytes(bytes: Uint8Array): void {
    this.#server.appBytes(this, bytes);
  }
  handleDrained(): void {}
  handleClosed(message?: string): void {
    this.#server.detach(
      this,
      message === undefined ? "it closed its socket" : `it closed its socket (${message})`,
      false,
    );
  }

  /**
   * Queue a message; what one tick queued goes to the socket together. An
   * application that lets more than its bound wait unread is detached.
   */
  write(m: AttachMessage): void {
    if (this.state === "closed") return;
    const bytes = encodeAttach(m);
    this.out.push(bytes);
    this.outBytes += bytes.length;
    if (this.flushQueued) return;
    this.flushQueued = true;
    queueMicrotask(() => this.#flush());
  }

  #flush(): void {
    this.flushQueued = false;
    if (this.state === "closed") return;
    const out = this.out;
    this.out = [];
    const total = this.outBytes;
    this.outBytes = 0;
    if (out.length === 1) this.transport.write(out[0]);
    else if (total <= JOIN_LIMIT) {
      const joined = new Uint8Array(total);
      let at = 0;
      for (const b of out) {
        joined.set(b, at);
        at += b.length;
      }
      this.transport.write(joined);
    } else for (const b of out) this.transport.write(b);
    this.#server.checkQueue(this);
  }

  allocate(): number {
    let h = this.nextHandle;
    while (this.relays.has(h)) h = h >= 0xfffffffe ? 2 : h + 2;
    this.nextHandle = h >= 0xfffffffe ? 2 : h + 2;
    return h;
  }
}

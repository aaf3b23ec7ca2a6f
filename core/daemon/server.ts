/**
 * The device daemon's side of the attach protocol (`wire.ts`): one device
 * (the daemon's `DeviceSurface`, embedded in the daemon's process) shared by
 * every application attached over the local socket. Each connection an
 * application opens, or is offered, is a {@linkcode Relay}: a port on the
 * daemon's device whose events become attach messages, and whose messages
 * from the application go to the link; so all applications share one link
 * per peer.
 *
 * Routing of incoming connections:
 *
 * - `linkEnhance` (`ServiceKind.LINK_ENHANCE`): to the first attached
 *   application (in attach order) that serves a started server of that name
 *   (case-insensitively); none: refused with 32390201, as an embedded device
 *   refuses it.
 * - abilities (`ServiceKind.ABILITY`): the stream names the callee's bundle;
 *   a bundle no application serves and the manifest does not list is refused
 *   as an embedded device refuses it. Otherwise the daemon accepts the
 *   stream and reads its first message, the collaboration request
 *   (`core/ability/wire.ts`), for the callee's bundle, module and ability;
 *   then it hands the stream to the application that registered that
 *   ability, or starts the ability from the manifest and hands it over once
 *   the new process registers it, or answers `SYSTEM_INTERNAL_ERROR` (no
 *   such ability, the start failed, or nothing registered within
 *   OpenHarmony's collaboration timeout, `COLLAB_TIMEOUT`).
 *
 * Bounds ({@linkcode DAEMON_LIMITS}): attached applications, connections per
 * application, bytes queued for an application's socket, names served. An
 * application that breaks the protocol (a malformed message, more than its
 * send window, a length over the limit) or does not read its socket is
 * detached: its connections close on the peers' side (ability sessions end
 * with `PEER_APP_EXIT`, linkEnhance connections with `disconnected`), other
 * applications go on.
 *
 * @module
 */
import { ErrorCode } from "../error_codes.ts";
import { isDeviceId } from "../device/config.ts";
import type { DeviceHost } from "../device/host.ts";
import type { DeviceSurface } from "../device/driver_options.ts";
import { type IncomingRequest, Port } from "../device/port.ts";
import { ServiceKind } from "../proto/link/control.ts";
import { trace } from "../trace.ts";
import { MAX_SEND_DATA } from "../link_enhance/mod.ts";
import { SESSION_MAX_MESSAGE } from "../ability/_session.ts";
import { COLLAB_TIMEOUT, ConnectErrorCode, StartOptionParams } from "../ability/types.ts";
import { decodeMessage, encodeResult, type Hello } from "../ability/wire.ts";
import { SEND_WINDOW } from "./client.ts";
import { type Manifest, type ManifestEntry, manifestKey } from "./manifest.ts";
import {
  ATTACH_CAPABILITIES,
  ATTACH_MAJOR,
  ATTACH_MINOR,
  AttachDecoder,
  type AttachMessage,
  type AttachProtocolError,
  encodeAttach,
} from "./wire.ts";

/** The daemon's bounds on what applications make it hold. */
export interface DaemonLimits {
  /** Applications attached at once; one more is told so and closed. @default {256} */
  apps: number;
  /** Connections one application has through the daemon (both directions). @default {1024} */
  connectionsPerApp: number;
  /** Bytes waiting to be written to one application's socket; beyond, it is detached. @default {67108864} */
  appQueueBytes: number;
  /** Names one application serves per service kind. @default {1024} */
  servedNames: number;
  /** How long a new application has to say hello (ms). @default {5000} */
  helloTimeout: number;
}

/** The default bounds. */
export const DAEMON_LIMITS: Readonly<DaemonLimits> = Object.freeze({
  apps: 256,
  connectionsPerApp: 1024,
  appQueueBytes: 64 * 1024 * 1024,
  servedNames: 1024,
  helloTimeout: 5000,
});

/** Writes above this size go to the socket on their own rather than joined (bytes). */
const JOIN_LIMIT = 64 * 1024;

/** How often the device's links and known peers are compared and sent on when they changed (ms). */
export const STATE_INTERVAL = 500;

/** A started ability's process, as the daemon follows it. */
export interface Launch {
  /** Its process id, when it started. */
  pid: number | undefined;
  /** Settles with how it ended (`"exited with code 1"`, `"could not start: ..."`). */
  exited: Promise<string>;
}

/**
 * Starts the command of a manifest entry.
 *
 * @param entry The ability.
 * @param options Whether to start it in the foreground (see `docs/daemon.md`).
 * @returns The process.
 */
export type Launcher = (entry: ManifestEntry, options: { foreground: boolean }) => Launch;

/** What happened in the daemon (for its log). */
export type DaemonEvent =
  | { event: "attached"; app: number; pid: number }
  | { event: "detached"; app: number; pid: number; why: string }
  | { event: "launched"; ability: string; pid: number | undefined; foreground: boolean }
  | { event: "launchFailed"; ability: string; why: string }
  | { event: "unknownAbility"; ability: string; peer: string };

/** The socket to one application, as the daemon uses it. */
export interface AppTransport {
  /**
   * Write bytes (queued when the socket cannot take them now).
   *
   * @param bytes The bytes.
   */
  write(bytes: Uint8Array): void;
  /** Bytes written and not yet taken by the socket. */
  readonly queued: number;
  /** Close the socket. */
  close(): void;
}

/** An attached application, as its socket's driver feeds it. */
export interface AppConnection {
  /**
   * Bytes from the application.
   *
   * @param bytes The bytes.
   */
  handleBytes(bytes: Uint8Array): void;
  /** The socket took what was queued. */
  handleDrained(): void;
  /**
   * The socket closed.
   *
   * @param message Why, when it failed.
   */
  handleClosed(message?: string): void;
}

/** Options of {@linkcode DaemonServer}. */
export interface DaemonServerOptions {
  /** The machine. */
  host: DeviceHost;
  /** The device the daemon runs. */
  device: DeviceSurface;
  /** The peers the device knows (discovery, static peers). @default {() => []} */
  known?: () => string[];
  /** What it may start. @default {{ abilities: [] }} */
  manifest?: Manifest;
  /** Starts a manifest entry's command. @default {none: nothing is started} */
  launch?: Launcher;
  /** The daemon's process id (in `welcome`). @default {0} */
  pid?: number;
  /** Bounds. @default {DAEMON_LIMITS} */
  limits?: Partial<DaemonLimits>;
  /** Hears what happens. @default {nothing} */
  onEvent?: (event: DaemonEvent) => void;
}

interface Held {
  request: IncomingRequest;
  messages: Uint8Array[];
  bytes: number;
  hello: Hello | undefined;
  key: string | undefined;
  timer: unknown;
}

/** An ability being started: who waits for it, and its registration deadline. */
interface LaunchRecord {
  entry: ManifestEntry;
  waiters: Set<Relay>;
  timer: unknown;
}

type RelayState = "connecting" | "offered" | "open" | "held" | "closing";

/** One connection through the daemon: a port on its device, relayed to an application. */
class Relay extends Port {
  app: App | undefined;
  handle = 0;
  readonly kind: number;
  state: RelayState;
  overflow: Uint8Array[] = [];
  overflowBytes = 0;
  /** Bytes the link took since the application was last told. */
  taken = 0;
  /** The link's queued bytes the application was last told. */
  reported = 0;
  held: Held | undefined;
  #server: DaemonServer;

  constructor(server: DaemonServer, kind: number, state: RelayState) {
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
class App implements AppConnection {
  readonly id: number;
  pid = 0;
  state: "hello" | "ready" | "closed" = "hello";
  readonly transport: AppTransport;
  readonly decoder: AttachDecoder = new AttachDecoder("app");
  readonly served: Map<number, Set<string>> = new Map();
  readonly relays: Map<number, Relay> = new Map();
  nextHandle = 2;
  helloTimer: unknown;
  out: Uint8Array[] = [];
  outBytes = 0;
  flushQueued = false;
  #server: DaemonServer;

  constructor(server: DaemonServer, id: number, transport: AppTransport) {
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

/** The daemon's attach server. */
export class DaemonServer {
  #host: DeviceHost;
  #device: DeviceSurface;
  #knownPeers: () => string[];
  #manifest: Map<string, ManifestEntry>;
  #bundles: Set<string>;
  #launcher: Launcher | undefined;
  #pid: number;
  #limits: DaemonLimits;
  #onEvent: (event: DaemonEvent) => void;
  #apps = new Map<number, App>();
  #nextApp = 1;
  #held = new Set<Relay>();
  #launching = new Map<string, LaunchRecord>();
  #closing = new Set<Relay>();
  #dirty = new Set<Relay>();
  #reportQueued = false;
  #state = "";
  #stateTimer: unknown;
  #closed = false;

  /** @param options The device, the manifest and how to start its commands, the bounds. */
  constructor(options: DaemonServerOptions) {
    this.#host = options.host;
    this.#device = options.device;
    this.#knownPeers = options.known ?? (() => []);
    const entries = options.manifest?.abilities ?? [];
    this.#manifest = new Map(entries.map((e) => [manifestKey(e), e]));
    this.#bundles = new Set(entries.map((e) => e.bundleName));
    this.#launcher = options.launch;
    this.#pid = options.pid ?? 0;
    this.#limits = { ...DAEMON_LIMITS, ...options.limits };
    this.#onEvent = options.onEvent ?? (() => {});
    const d = this.#device;
    d.setAcceptor(ServiceKind.LINK_ENHANCE, (r) => this.#acceptLinkEnhance(r));
    d.setAcceptor(ServiceKind.ABILITY, (r) => this.#acceptAbility(r));
    d.onListenerFailed((e) => {
      for (const app of this.#ready()) app.write({ type: "listenerFailed", message: e.message });
    });
    this.#tick();
  }

  /** The applications attached now. */
  get apps(): { app: number; pid: number; connections: number; serves: number }[] {
    return [...this.#apps.values()].filter((a) => a.state === "ready").map((a) => ({
      app: a.id,
      pid: a.pid,
      connections: a.relays.size,
      serves: [...a.served.values()].reduce((n, s) => n + s.size, 0),
    }));
  }

  /**
   * A new application connected.
   *
   * @param transport Its socket.
   * @returns What its socket's bytes and end go to.
   */
  attach(transport: AppTransport): AppConnection {
    const app = new App(this, this.#nextApp++, transport);
    if (this.#closed || this.#apps.size >= this.#limits.apps) {
      app.state = "closed";
      transport.write(encodeAttach({
        type: "error",
        message: this.#closed
          ? "the device daemon is stopping"
          : `${this.#limits.apps} applications are attached already`,
      }));
      transport.close();
      return app;
    }
    this.#apps.set(app.id, app);
    app.helloTimer = this.#host.setTimer(() => {
      if (app.state === "hello") this.detach(app, "it did not say hello in time", true);
    }, this.#limits.helloTimeout);
    return app;
  }

  /** Stop: every application is told and detached; connections close on the peers' side. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#host.clearTimer(this.#stateTimer);
    for (const app of [...this.#apps.values()]) this.detach(app, "the device daemon stopped", true);
    for (const r of [...this.#held]) this.#answer(r, ConnectErrorCode.SYSTEM_INTERNAL_ERROR);
    for (const l of this.#launching.values()) this.#host.clearTimer(l.timer);
    this.#launching.clear();
  }

  // ------------------------------------------------------------ applications

  /** @internal Bytes from an application. */
  appBytes(app: App, bytes: Uint8Array): void {
    if (app.state === "closed") return;
    let messages: AttachMessage[];
    try {
      messages = app.decoder.push(bytes);
    } catch (e) {
      this.detach(app, `it sent ${(e as AttachProtocolError).message}`, true);
      return;
    }
    for (const m of messages) {
      this.#message(app, m);
      if ((app.state as App["state"]) === "closed") return;
    }
  }

  #message(app: App, m: AttachMessage): void {
    if (app.state === "hello") {
      if (m.type !== "hello") {
        this.detach(app, `it sent "${m.type}" before hello`, true);
        return;
      }
      this.#hello(app, m.major, m.minor, m.pid);
      return;
    }
    switch (m.type) {
      case "serve":
        this.#serve(app, m.kind, m.names);
        return;
      case "connect":
        this.#connect(app, m);
        return;
      case "accept": {
        const r = app.relays.get(m.handle);
        if (r?.state === "offered") r.state = "open";
        return;
      }
      case "reject": {
        const r = app.relays.get(m.handle);
        if (r?.state !== "offered") return;
        app.relays.delete(m.handle);
        r.app = undefined;
        if (r.kind === ServiceKind.ABILITY) this.#answer(r, ConnectErrorCode.SYSTEM_INTERNAL_ERROR);
        else r.close();
        return;
      }
      case "data":
        this.#data(app, m.handle, m.bytes);
        return;
      case "close":
        this.#closeRelay(app, m.handle);
        return;
      default:
        this.detach(app, `it sent "${m.type}" again`, true);
    }
  }

  #hello(app: App, major: number, minor: number, pid: number): void {
    this.#host.clearTimer(app.helloTimer);
    if (major !== ATTACH_MAJOR) {
      this.detach(
        app,
        `it speaks attach protocol ${major}.${minor}; this daemon speaks ${ATTACH_MAJOR}.${ATTACH_MINOR}`,
        true,
      );
      return;
    }
    app.pid = pid;
    app.state = "ready";
    const d = this.#device;
    app.write({
      type: "welcome",
      major: ATTACH_MAJOR,
      minor: Math.min(minor, ATTACH_MINOR),
      caps: ATTACH_CAPABILITIES,
      deviceId: d.deviceId,
      nonce: d.nonce,
      port: d.port,
      bind: d.bind,
      pid: this.#pid,
    });
    app.write({ type: "state", ...this.#snapshot() });
    trace("daemon.attached", { app: app.id, pid });
    this.#onEvent({ event: "attached", app: app.id, pid });
  }

  /**
   * @internal Detach an application: its connections close on the peers'
   * side (what it queued is sent first), what it served is forgotten.
   */
  detach(app: App, why: string, tell: boolean): void {
    if (app.state === "closed") return;
    const wasReady = app.state === "ready";
    app.state = "closed";
    this.#apps.delete(app.id);
    this.#host.clearTimer(app.helloTimer);
    if (tell) {
      app.out = [];
      app.outBytes = 0;
      app.transport.write(encodeAttach({ type: "error", message: why }));
      this.#host.warn(`linkweave daemon: detached application ${app.pid || app.id}: ${why}`);
    }
    app.transport.close();
    app.served.clear();
    // An application detached for what it did (or by a stopping daemon): what it queued is dropped.
    for (const r of [...app.relays.values()]) this.#release(r, tell);
    app.relays.clear();
    trace("daemon.detached", { app: app.id, pid: app.pid, why });
    if (wasReady) this.#onEvent({ event: "detached", app: app.id, pid: app.pid, why });
  }

  /** @internal After a write: an application that does not read its socket is detached. */
  checkQueue(app: App): void {
    const queued = app.transport.queued;
    if (queued > this.#limits.appQueueBytes) {
      this.detach(
        app,
        `it does not read: ${queued} bytes wait for it (more than ${this.#limits.appQueueBytes})`,
        true,
      );
    }
  }

  /** A relay whose application let go of it: what it queued goes (unless dropped), then it closes. */
  #release(r: Relay, drop = false): void {
    r.app = undefined;
    if (drop) {
      r.overflow = [];
      r.overflowBytes = 0;
    }
    if (r.state === "open" && r.overflow.length > 0) {
      r.state = "closing";
      this.#closing.add(r);
      return;
    }
    if (r.kind === ServiceKind.ABILITY && r.state === "offered") {
      this.#answer(r, ConnectErrorCode.SYSTEM_INTERNAL_ERROR);
      return;
    }
    r.state = "closing";
    r.close();
  }

  #serve(app: App, kind: number, names: string[]): void {
    if (names.length > this.#limits.servedNames || names.some((n) => n.length > 1024)) {
      this.detach(
        app,
        `it served ${names.length} names (at most ${this.#limits.servedNames} of 1024 characters)`,
        true,
      );
      return;
    }
    const set = new Set(names);
    app.served.set(kind, set);
    if (kind !== ServiceKind.ABILITY) return;
    for (const key of set) {
      const launch = this.#launching.get(key);
      if (launch === undefined) continue;
      this.#launching.delete(key);
      this.#host.clearTimer(launch.timer);
      for (const r of launch.waiters) this.#handOver(app, r);
    }
  }

  #connect(
    app: App,
    m: Extract<AttachMessage, { type: "connect" }>,
  ): void {
    if ((m.handle & 1) !== 1 || app.relays.has(m.handle)) {
      this.detach(app, `it opened handle ${m.handle}, which is not free`, true);
      return;
    }
    const fail = (message: string) =>
      app.write({ type: "failed", handle: m.handle, code: ErrorCode.INTERNAL_ERROR, message });
    if (app.relays.size >= this.#limits.connectionsPerApp) {
      fail(`this application has ${app.relays.size} connections through the daemon already`);
      return;
    }
    if (!isDeviceId(m.peer)) {
      fail(`Invalid device id ${JSON.stringify(m.peer)}`);
      return;
    }
    const r = new Relay(this, m.kind, "connecting");
    r.app = app;
    r.handle = m.handle;
    if (m.maxMessage > 0) r.maxMessage = m.maxMessage;
    app.relays.set(m.handle, r);
    this.#device.connect(m.peer.toUpperCase(), m.name, r, {
      kind: m.kind,
      bundle: m.bundle,
      ...(m.timeout > 0 ? { timeout: m.timeout } : {}),
    });
  }

  #data(app: App, handle: number, bytes: Uint8Array): void {
    const r = app.relays.get(handle);
    if (r === undefined || r.state !== "open") return; // it closed meanwhile
    if (r.overflow.length === 0 && r.send(bytes)) {
      r.taken += bytes.length;
      this.#markDirty(r);
      return;
    }
    r.overflow.push(bytes);
    r.overflowBytes += bytes.length;
    if (r.overflowBytes > SEND_WINDOW && r.overflow.length > 1) {
      this.detach(
        app,
        `it sent more than its ${SEND_WINDOW}-byte window on connection ${handle}`,
        true,
      );
    }
  }

  #closeRelay(app: App, handle: number): void {
    const r = app.relays.get(handle);
    if (r === undefined) return;
    app.relays.delete(handle);
    this.#release(r);
  }

  // ------------------------------------------------------------ the device's events

  /** @internal */
  relayOpened(r: Relay): void {
    if (r.state !== "connecting") return;
    r.state = "open";
    r.app?.write({ type: "opened", handle: r.handle });
  }

  /** @internal */
  relayFailed(r: Relay, m: AttachMessage): void {
    const app = r.app;
    if (app === undefined || app.relays.get(r.handle) !== r) return;
    app.relays.delete(r.handle);
    r.app = undefined;
    app.write(m);
  }

  /** @internal */
  relayData(r: Relay, data: ArrayBuffer): void {
    if (r.state === "held") {
      this.#heldData(r, new Uint8Array(data));
      return;
    }
    r.app?.write({ type: "deliver", handle: r.handle, bytes: new Uint8Array(data) });
  }

  /** @internal */
  relayClosed(r: Relay, reason: number, byPeer: boolean): void {
    if (r.state === "held") {
      this.#forgetHeld(r);
      return;
    }
    this.#closing.delete(r);
    const app = r.app;
    if (app === undefined || app.relays.get(r.handle) !== r) return;
    app.relays.delete(r.handle);
    r.app = undefined;
    app.write({ type: "closed", handle: r.handle, reason, byPeer });
  }

  /** @internal The link's queue for a relay is back to half: push what waits, tell the app. */
  relayDrain(r: Relay): void {
    while (r.overflow.length > 0) {
      const b = r.overflow[0];
      if (!r.send(b)) break;
      r.overflow.shift();
      r.overflowBytes -= b.length;
      r.taken += b.length;
    }
    if (r.state === "closing") {
      if (r.overflow.length === 0) {
        this.#closing.delete(r);
        r.close();
      }
      return;
    }
    this.#markDirty(r, true);
  }

  // ------------------------------------------------------------ incoming connections

  #route(kind: number, name: string): App | undefined {
    for (const app of this.#apps.values()) {
      if (app.state === "ready" && app.served.get(kind)?.has(name)) return app;
    }
    return undefined;
  }

  #acceptLinkEnhance(request: IncomingRequest): Port | number {
    const app = this.#route(ServiceKind.LINK_ENHANCE, request.name.toLowerCase());
    if (app === undefined) return ErrorCode.PEER_SERVER_NOT_STARTED;
    if (app.relays.size >= this.#limits.connectionsPerApp) return ErrorCode.INTERNAL_ERROR;
    const r = new Relay(this, ServiceKind.LINK_ENHANCE, "offered");
    // What the API can receive, as an embedded device's linkEnhance sets it.
    r.maxMessage = MAX_SEND_DATA;
    this.#offer(app, r, request);
    return r;
  }

  #offer(app: App, r: Relay, request: IncomingRequest): void {
    r.app = app;
    r.handle = app.allocate();
    r.state = "offered";
    app.relays.set(r.handle, r);
    app.write({
      type: "open",
      handle: r.handle,
      kind: r.kind,
      peer: request.peerId,
      name: request.name,
      bundle: request.bundle,
    });
  }

  #acceptAbility(request: IncomingRequest): Port | number {
    const bundle = request.bundle;
    let known = this.#bundles.has(bundle);
    for (const app of this.#apps.values()) {
      if (known) break;
      for (const key of app.served.get(ServiceKind.ABILITY) ?? []) {
        if (key.slice(0, key.indexOf("\u0000")) === bundle) {
          known = true;
          break;
        }
      }
    }
    // No ability of that application runs here, nor can be started: as an embedded device answers.
    if (!known) return ErrorCode.PEER_SERVER_NOT_STARTED;
    const r = new Relay(this, ServiceKind.ABILITY, "held");
    r.maxMessage = SESSION_MAX_MESSAGE;
    r.held = {
      request,
      messages: [],
      bytes: 0,
      hello: undefined,
      key: undefined,
      timer: this.#host.setTimer(() => this.#heldTimeout(r), COLLAB_TIMEOUT),
    };
    this.#held.add(r);
    return r;
  }

  #heldData(r: Relay, bytes: Uint8Array): void {
    const h = r.held!;
    h.messages.push(bytes);
    h.bytes += bytes.length;
    if (h.hello !== undefined) {
      // The caller waits for the answer before it sends more: this is a broken peer.
      if (h.bytes > SESSION_MAX_MESSAGE) this.#answer(r, ConnectErrorCode.SYSTEM_INTERNAL_ERROR);
      return;
    }
    const m = decodeMessage(bytes);
    if (m?.type !== "hello") {
      this.#host.warn(
        `linkweave daemon: ${h.request.peerId} sent a malformed collaboration request; refused`,
      );
      this.#answer(r, ConnectErrorCode.SYSTEM_INTERNAL_ERROR);
      return;
    }
    h.hello = m.hello;
    const key = manifestKey(m.hello.callee);
    h.key = key;
    const app = this.#route(ServiceKind.ABILITY, key);
    if (app !== undefined) {
      this.#handOver(app, r);
      return;
    }
    const entry = this.#manifest.get(key);
    const name = abilityName(m.hello.callee);
    if (entry === undefined || this.#launcher === undefined) {
      trace("daemon.unknownAbility", { ability: name, peer: h.request.peerId });
      this.#onEvent({ event: "unknownAbility", ability: name, peer: h.request.peerId });
      this.#answer(r, ConnectErrorCode.SYSTEM_INTERNAL_ERROR);
      return;
    }
    this.#launch(key, entry, r);
  }

  #launch(key: string, entry: ManifestEntry, r: Relay): void {
    const running = this.#launching.get(key);
    if (running !== undefined) {
      running.waiters.add(r);
      return;
    }
    const name = abilityName(entry);
    const foreground = entry.startOptions !== undefined
      ? entry.startOptions === "START_IN_FOREGROUND"
      : r.held!.hello!.options.startOptions === StartOptionParams.START_IN_FOREGROUND;
    const record: LaunchRecord = { entry, waiters: new Set([r]), timer: undefined };
    this.#launching.set(key, record);
    // OpenHarmony's collaboration timeout bounds the start, whether or not its callers still wait.
    record.timer = this.#host.setTimer(
      () => this.#launchFailed(key, record, `no registration within ${COLLAB_TIMEOUT} ms`),
      COLLAB_TIMEOUT,
    );
    let launch: Launch;
    try {
      launch = this.#launcher!(entry, { foreground });
    } catch (e) {
      this.#launchFailed(key, record, `could not start: ${(e as Error).message}`);
      return;
    }
    trace("daemon.launched", { ability: name, pid: launch.pid, foreground });
    this.#onEvent({ event: "launched", ability: name, pid: launch.pid, foreground });
    launch.exited.then((why) => this.#launchFailed(key, record, why));
  }

  #launchFailed(key: string, record: LaunchRecord, why: string): void {
    if (this.#launching.get(key) !== record) return; // it registered meanwhile
    this.#launching.delete(key);
    this.#host.clearTimer(record.timer);
    const name = abilityName(manifestParts(key));
    this.#host.warn(`linkweave daemon: ability ${name} did not register: ${why}`);
    this.#onEvent({ event: "launchFailed", ability: name, why });
    for (const w of record.waiters) this.#answer(w, ConnectErrorCode.SYSTEM_INTERNAL_ERROR);
  }

  #heldTimeout(r: Relay): void {
    if (r.held === undefined) return;
    this.#answer(r, ConnectErrorCode.SYSTEM_INTERNAL_ERROR);
  }

  #forgetHeld(r: Relay): void {
    const h = r.held;
    if (h === undefined) return;
    this.#host.clearTimer(h.timer);
    this.#held.delete(r);
    if (h.key !== undefined) this.#launching.get(h.key)?.waiters.delete(r);
    r.held = undefined;
  }

  #handOver(app: App, r: Relay): void {
    const h = r.held!;
    this.#forgetHeld(r);
    if (app.relays.size >= this.#limits.connectionsPerApp) {
      this.#answer(r, ConnectErrorCode.SYSTEM_INTERNAL_ERROR);
      return;
    }
    this.#offer(app, r, h.request);
    for (const bytes of h.messages) app.write({ type: "deliver", handle: r.handle, bytes });
  }

  /** Answer a collaboration request on the application's behalf, and close its stream. */
  #answer(r: Relay, errorCode: number): void {
    this.#forgetHeld(r);
    r.state = "closing";
    r.send(encodeResult({ errorCode, reason: "" }));
    r.close();
  }

  // ------------------------------------------------------------ reports

  #ready(): App[] {
    return [...this.#apps.values()].filter((a) => a.state === "ready");
  }

  #markDirty(r: Relay, always = false): void {
    if (always) r.reported = -1;
    this.#dirty.add(r);
    if (this.#reportQueued) return;
    this.#reportQueued = true;
    // After the device's own flush (queued first), so the link's count is current.
    queueMicrotask(() => queueMicrotask(() => this.#report()));
  }

  /** Tell applications what the link took, and what it still holds. */
  #report(): void {
    this.#reportQueued = false;
    const dirty = [...this.#dirty];
    this.#dirty.clear();
    for (const r of dirty) {
      const app = r.app;
      if (app === undefined || r.state !== "open") continue;
      const buffered = r.bufferedAmount;
      if (r.taken === 0 && buffered === r.reported) continue;
      app.write({ type: "sent", handle: r.handle, bytes: r.taken, buffered });
      r.taken = 0;
      r.reported = buffered;
    }
  }

  #snapshot(): { links: [string, number][]; known: string[] } {
    return { links: [...this.#device.links()], known: this.#knownPeers() };
  }

  /** Every STATE_INTERVAL: links and peers to every application when they changed; stale counts. */
  #tick(): void {
    if (this.#closed) return;
    const s = this.#snapshot();
    const text = JSON.stringify(s);
    if (text !== this.#state) {
      this.#state = text;
      for (const app of this.#ready()) app.write({ type: "state", ...s });
    }
    for (const app of this.#ready()) {
      for (const r of app.relays.values()) {
        if (r.state === "open" && r.reported > 0 && r.bufferedAmount !== r.reported) {
          this.#markDirty(r);
        }
      }
    }
    this.#stateTimer = this.#host.setTimer(() => this.#tick(), STATE_INTERVAL);
  }
}

function abilityName(a: { bundleName: string; moduleName: string; abilityName: string }): string {
  return `${a.bundleName}/${a.moduleName}/${a.abilityName}`;
}

function manifestParts(
  key: string,
): { bundleName: string; moduleName: string; abilityName: string } {
  const [bundleName, moduleName, abilityName] = key.split("\u0000");
  return { bundleName, moduleName, abilityName };
}

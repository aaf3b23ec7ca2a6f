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
 * The parts: the types, options and bounds in `_server_types.ts` (exported
 * from here); the relay and application records in `_relay.ts`; the
 * incoming ability streams (held, launched for, handed over, answered) in
 * `_abilities.ts`.
 *
 * @module
 */
import { ErrorCode } from "../error_codes.ts";
import { isDeviceId } from "../device/config.ts";
import type { DeviceHost } from "../device/host.ts";
import type { DeviceSurface } from "../device/driver_options.ts";
import type { IncomingRequest, Port } from "../device/port.ts";
import { ServiceKind } from "../proto/link/control.ts";
import { trace } from "../trace.ts";
import { MAX_SEND_DATA } from "../link_enhance/mod.ts";
import { ConnectErrorCode } from "../ability/types.ts";
import { SEND_WINDOW } from "./client.ts";
import {
  ATTACH_CAPABILITIES,
  ATTACH_MAJOR,
  ATTACH_MINOR,
  type AttachMessage,
  type AttachPaired,
  type AttachProtocolError,
  encodeAttach,
} from "./wire.ts";
import { AbilityStreams } from "./_abilities.ts";
import { App, Relay } from "./_relay.ts";
import {
  type AppConnection,
  type AppTransport,
  DAEMON_LIMITS,
  type DaemonEvent,
  type DaemonLimits,
  type DaemonPairing,
  type DaemonServerOptions,
  STATE_INTERVAL,
} from "./_server_types.ts";

export {
  type AppConnection,
  type AppTransport,
  DAEMON_LIMITS,
  type DaemonEvent,
  type DaemonLimits,
  type DaemonPairing,
  type DaemonServerOptions,
  type Launch,
  type Launcher,
  STATE_INTERVAL,
} from "./_server_types.ts";

/** The daemon's attach server. */
export class DaemonServer {
  #host: DeviceHost;
  #device: DeviceSurface;
  #knownPeers: () => string[];
  #pid: number;
  #limits: DaemonLimits;
  #onEvent: (event: DaemonEvent) => void;
  #apps = new Map<number, App>();
  #nextApp = 1;
  #abilities: AbilityStreams;
  #closing = new Set<Relay>();
  #dirty = new Set<Relay>();
  #reportQueued = false;
  #state = "";
  #stateTimer: unknown;
  #closed = false;
  #pairing: DaemonPairing | undefined;

  /** @param options The device, the manifest and how to start its commands, the bounds. */
  constructor(options: DaemonServerOptions) {
    this.#host = options.host;
    this.#device = options.device;
    this.#knownPeers = options.known ?? (() => []);
    this.#pid = options.pid ?? 0;
    this.#limits = { ...DAEMON_LIMITS, ...options.limits };
    this.#onEvent = options.onEvent ?? (() => {});
    this.#pairing = options.pairing;
    this.#abilities = new AbilityStreams({
      host: this.#host,
      owner: this,
      entries: options.manifest?.abilities ?? [],
      launch: options.launch,
      onEvent: this.#onEvent,
      apps: this.#apps,
      limits: this.#limits,
      route: (kind, name) => this.#route(kind, name),
      offer: (app, r, request) => this.#offer(app, r, request),
    });
    const d = this.#device;
    d.setAcceptor(ServiceKind.LINK_ENHANCE, (r) => this.#acceptLinkEnhance(r));
    d.setAcceptor(ServiceKind.ABILITY, (r) => this.#abilities.accept(r));
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
    this.#abilities.close();
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
        if (r.kind === ServiceKind.ABILITY) {
          this.#abilities.answer(r, ConnectErrorCode.SYSTEM_INTERNAL_ERROR);
        } else r.close();
        return;
      }
      case "data":
        this.#data(app, m.handle, m.bytes);
        return;
      case "close":
        this.#closeRelay(app, m.handle);
        return;
      case "pair":
        this.#pair(app, m);
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
   * Pair the daemon's device for an application: the answers go back as
   * `pairing` messages; an offer stands until it is taken or expires, also
   * when the application detaches meanwhile.
   */
  #pair(app: App, m: Extract<AttachMessage, { type: "pair" }>): void {
    const request = m.request;
    const fail = (e: unknown) => {
      const code = (e as { code?: unknown }).code;
      app.write({
        type: "pairing",
        request,
        failed: {
          code: typeof code === "number" ? code : ErrorCode.INTERNAL_ERROR,
          message: e instanceof Error ? e.message : String(e),
        },
      });
    };
    const p = this.#pairing;
    if (p === undefined) return fail(new Error("Cannot pair: this device daemon does not pair"));
    if (app.pairings >= this.#limits.pairings) {
      return fail(
        new Error(`Cannot pair: ${this.#limits.pairings} pairing requests are under way already`),
      );
    }
    app.pairings++;
    const done = () => app.pairings--;
    const paired = (d: AttachPaired) => app.write({ type: "pairing", request, paired: d });
    trace("daemon.pair", { app: app.id, op: m.op });
    if (m.op === "enter") {
      p.enter(m.target, m.code).then(paired, fail).finally(done);
      return;
    }
    p.offer(m.timeout).then((o) => {
      app.write({ type: "pairing", request, offer: o.code });
      return o.paired.then(paired);
    }).catch(fail).finally(done);
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
      this.#abilities.answer(r, ConnectErrorCode.SYSTEM_INTERNAL_ERROR);
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
    if (kind === ServiceKind.ABILITY) this.#abilities.registered(app, set);
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
      this.#abilities.data(r, new Uint8Array(data));
      return;
    }
    r.app?.write({ type: "deliver", handle: r.handle, bytes: new Uint8Array(data) });
  }

  /** @internal */
  relayClosed(r: Relay, reason: number, byPeer: boolean): void {
    if (r.state === "held") {
      this.#abilities.forget(r);
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

/**
 * The daemon's incoming ability streams (`ServiceKind.ABILITY`), as the
 * module doc of `server.ts` routes them: a stream for a bundle the daemon
 * knows is held while its first message, the collaboration request, is
 * read; then handed to the application that registered the callee, or kept
 * waiting while the manifest's command starts it (one start per ability,
 * bounded by `COLLAB_TIMEOUT`), or answered `SYSTEM_INTERNAL_ERROR` on the
 * application's behalf. {@linkcode AbilityStreams} is owned by the
 * `DaemonServer`, which keeps the applications and offers them streams.
 *
 * @module
 */
import type { DeviceHost } from "../device/host.ts";
import type { IncomingRequest, Port } from "../device/port.ts";
import { ErrorCode } from "../error_codes.ts";
import { ServiceKind } from "../proto/link/control.ts";
import { trace } from "../trace.ts";
import { SESSION_MAX_MESSAGE } from "../ability/_session.ts";
import { COLLAB_TIMEOUT, ConnectErrorCode, StartOptionParams } from "../ability/types.ts";
import { decodeMessage, encodeResult } from "../ability/wire.ts";
import { type ManifestEntry, manifestKey } from "./manifest.ts";
import { type App, type LaunchRecord, Relay, type RelayOwner } from "./_relay.ts";
import type { DaemonEvent, DaemonLimits, Launch, Launcher } from "./_server_types.ts";

/** What {@linkcode AbilityStreams} is given by its server. */
export interface AbilityStreamsInit {
  /** The machine (timers, warnings). */
  host: DeviceHost;
  /** Hears the relays' events. */
  owner: RelayOwner;
  /** The manifest's abilities. */
  entries: readonly ManifestEntry[];
  /** Starts a manifest entry's command, if any. */
  launch: Launcher | undefined;
  /** Hears what happens. */
  onEvent: (event: DaemonEvent) => void;
  /** The applications attached (any state). */
  apps: ReadonlyMap<number, App>;
  /** Bounds (`connectionsPerApp`). */
  limits: DaemonLimits;
  /** The ready application that serves a name of a kind, if any. */
  route(kind: number, name: string): App | undefined;
  /** Offer a relay to an application. */
  offer(app: App, r: Relay, request: IncomingRequest): void;
}

/** Incoming ability streams held, launched for, handed over or answered. */
export class AbilityStreams {
  #init: AbilityStreamsInit;
  #host: DeviceHost;
  #manifest: Map<string, ManifestEntry>;
  #bundles: Set<string>;
  #held = new Set<Relay>();
  #launching = new Map<string, LaunchRecord>();

  /** @param init The server's parts it uses. */
  constructor(init: AbilityStreamsInit) {
    this.#init = init;
    this.#host = init.host;
    this.#manifest = new Map(init.entries.map((e) => [manifestKey(e), e]));
    this.#bundles = new Set(init.entries.map((e) => e.bundleName));
  }

  /**
   * The device's acceptor of ability streams.
   *
   * @param request The stream offered.
   * @returns The relay that holds it, or the code it is refused with.
   */
  accept(request: IncomingRequest): Port | number {
    const bundle = request.bundle;
    let known = this.#bundles.has(bundle);
    for (const app of this.#init.apps.values()) {
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
    const r = new Relay(this.#init.owner, ServiceKind.ABILITY, "held");
    r.maxMessage = SESSION_MAX_MESSAGE;
    r.held = {
      request,
      messages: [],
      bytes: 0,
      hello: undefined,
      key: undefined,
      timer: this.#host.setTimer(() => this.#timeout(r), COLLAB_TIMEOUT),
    };
    this.#held.add(r);
    return r;
  }

  /**
   * A message on a held stream: the collaboration request, or more.
   *
   * @param r The held relay.
   * @param bytes The message.
   */
  data(r: Relay, bytes: Uint8Array): void {
    const h = r.held!;
    h.messages.push(bytes);
    h.bytes += bytes.length;
    if (h.hello !== undefined) {
      // The caller waits for the answer before it sends more: this is a broken peer.
      if (h.bytes > SESSION_MAX_MESSAGE) this.answer(r, ConnectErrorCode.SYSTEM_INTERNAL_ERROR);
      return;
    }
    const m = decodeMessage(bytes);
    if (m?.type !== "hello") {
      this.#host.warn(
        `linkweave daemon: ${h.request.peerId} sent a malformed collaboration request; refused`,
      );
      this.answer(r, ConnectErrorCode.SYSTEM_INTERNAL_ERROR);
      return;
    }
    h.hello = m.hello;
    const key = manifestKey(m.hello.callee);
    h.key = key;
    const app = this.#init.route(ServiceKind.ABILITY, key);
    if (app !== undefined) {
      this.#handOver(app, r);
      return;
    }
    const entry = this.#manifest.get(key);
    const name = abilityName(m.hello.callee);
    if (entry === undefined || this.#init.launch === undefined) {
      trace("daemon.unknownAbility", { ability: name, peer: h.request.peerId });
      this.#init.onEvent({ event: "unknownAbility", ability: name, peer: h.request.peerId });
      this.answer(r, ConnectErrorCode.SYSTEM_INTERNAL_ERROR);
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
      launch = this.#init.launch!(entry, { foreground });
    } catch (e) {
      this.#launchFailed(key, record, `could not start: ${(e as Error).message}`);
      return;
    }
    trace("daemon.launched", { ability: name, pid: launch.pid, foreground });
    this.#init.onEvent({ event: "launched", ability: name, pid: launch.pid, foreground });
    launch.exited.then((why) => this.#launchFailed(key, record, why));
  }

  /**
   * Abilities an application registered: the streams waiting for them are
   * handed to it.
   *
   * @param app The application.
   * @param keys The manifest keys it serves now.
   */
  registered(app: App, keys: Set<string>): void {
    for (const key of keys) {
      const launch = this.#launching.get(key);
      if (launch === undefined) continue;
      this.#launching.delete(key);
      this.#host.clearTimer(launch.timer);
      for (const r of launch.waiters) this.#handOver(app, r);
    }
  }

  /** Stop: every held stream is answered, every start's deadline dropped. */
  close(): void {
    for (const r of [...this.#held]) this.answer(r, ConnectErrorCode.SYSTEM_INTERNAL_ERROR);
    for (const l of this.#launching.values()) this.#host.clearTimer(l.timer);
    this.#launching.clear();
  }

  #launchFailed(key: string, record: LaunchRecord, why: string): void {
    if (this.#launching.get(key) !== record) return; // it registered meanwhile
    this.#launching.delete(key);
    this.#host.clearTimer(record.timer);
    const name = abilityName(manifestParts(key));
    this.#host.warn(`linkweave daemon: ability ${name} did not register: ${why}`);
    this.#init.onEvent({ event: "launchFailed", ability: name, why });
    for (const w of record.waiters) this.answer(w, ConnectErrorCode.SYSTEM_INTERNAL_ERROR);
  }

  #timeout(r: Relay): void {
    if (r.held === undefined) return;
    this.answer(r, ConnectErrorCode.SYSTEM_INTERNAL_ERROR);
  }

  /**
   * Stop holding a relay (its stream closed, or it was handed over or
   * answered).
   *
   * @param r The relay.
   */
  forget(r: Relay): void {
    const h = r.held;
    if (h === undefined) return;
    this.#host.clearTimer(h.timer);
    this.#held.delete(r);
    if (h.key !== undefined) this.#launching.get(h.key)?.waiters.delete(r);
    r.held = undefined;
  }

  #handOver(app: App, r: Relay): void {
    const h = r.held!;
    this.forget(r);
    if (app.relays.size >= this.#init.limits.connectionsPerApp) {
      this.answer(r, ConnectErrorCode.SYSTEM_INTERNAL_ERROR);
      return;
    }
    this.#init.offer(app, r, h.request);
    for (const bytes of h.messages) app.write({ type: "deliver", handle: r.handle, bytes });
  }

  /**
   * Answer a collaboration request on the application's behalf, and close its stream.
   *
   * @param r The relay of the stream.
   * @param errorCode The answer's `errorCode` (`ConnectErrorCode`).
   */
  answer(r: Relay, errorCode: number): void {
    this.forget(r);
    r.state = "closing";
    r.send(encodeResult({ errorCode, reason: "" }));
    r.close();
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

/**
 * OpenHarmony's `abilityConnectionManager` semantics (public and system
 * API): collaboration sessions between abilities of two devices, the
 * collaboration handshake (`connect` on one side, `onCollaborate` then
 * `acceptConnect` or `reject` on the other), texts, data, images, media
 * streams, events, and OpenHarmony's error rules (401 thrown synchronously
 * for a bad argument, even from a promise-returning call; other failures
 * reject). Sessions are streams on the device's link to the peer
 * (`core/device/driver.ts`, `ServiceKind.ABILITY`); this module holds only
 * the API rules and the registry of local abilities.
 *
 * Listeners follow OpenHarmony's runtime (`AbilityConnectionSession::
 * RegisterEventCallback`): one callback per session and event; `on`
 * replaces it, `off` clears it whatever callback is passed, and both throw
 * 401 for a session that does not exist.
 *
 * @module
 */
import { ErrorCode } from "../error_codes.ts";
import { BusinessError, ParameterError } from "../errors.ts";
import { type DeviceConfig, isDeviceId } from "../device/config.ts";
import type { DeviceHost } from "../device/host.ts";
import type { DeviceDriver, IncomingRequest, Port } from "../device/driver.ts";
import { ServiceKind } from "../proto/link/control.ts";
import { trace } from "../trace.ts";
import { utf8Length } from "../_utf8.ts";
import { type AbortOptions, abortSignal, onAbort } from "../abort.ts";
import {
  type AbilityCallbacks,
  AbilityConstant,
  type AbilityInfo,
  type UIAbility,
  UIAbilityContext,
  type Want,
} from "./ability.ts";
import { type ImageCodec, PixelMap } from "./pixel_map.ts";
import { findConsumer } from "./surface.ts";
import type { ReceiveBudget } from "./_transfer.ts";
import {
  failure,
  Incoming,
  MediaStream,
  Session,
  type SessionContext,
  type SessionOptions,
} from "./_session.ts";
import {
  COLLAB_TIMEOUT,
  type CollaborateEventInfo,
  ConnectErrorCode,
  type ConnectOptions,
  type ConnectResult,
  DEFAULT_BITRATE,
  DEFAULT_IMAGE_QUALITY,
  DisconnectReason,
  EVENT_TYPES,
  type EventCallbackInfo,
  type EventType,
  FIRST_SESSION_ID,
  FIRST_STREAM_ID,
  MAX_BITRATE,
  MAX_DATA_BYTES,
  MAX_MESSAGE_BYTES,
  MAX_SERVICE_NAME,
  MAX_STRING_BYTES,
  MIN_BITRATE,
  type PeerInfo,
  RECEIVE_BUDGET,
  StartOptionParams,
  type StreamParam,
  StreamRole,
  type SurfaceParam,
  VideoPixelFormat,
} from "./types.ts";
import { TransferKind } from "./wire.ts";
import type { Hello } from "./wire.ts";

/** How long the process stays alive after a disconnect to flush what is queued (ms). */
export const LINGER_MS = 5000;

/** What the API needs from the process: the device, its config, the host, the codec. */
export interface AbilityRuntime {
  /** The configuration in effect. */
  config(): DeviceConfig;
  /** The machine. */
  host: DeviceHost;
  /** The device driver, started on first call. */
  driver(): Promise<DeviceDriver>;
  /** The JPEG codec, made on first use. */
  imageCodec(): ImageCodec;
}

/** What `registerAbility` is told. */
export interface AbilityRegistration {
  /** The application's bundle name. */
  bundleName: string;
  /** The module name. */
  moduleName: string;
  /** The ability's name. */
  abilityName: string;
}

interface Registered {
  ability: UIAbility;
  info: AbilityInfo;
  context: UIAbilityContext;
}

function invalid(message: string): ParameterError {
  return new ParameterError(message);
}

function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (ArrayBuffer.isView(v)) return `a ${v.constructor.name}`;
  return typeof v;
}

function checkInt(v: unknown, what: string): number {
  if (typeof v !== "number" || !Number.isInteger(v)) {
    throw invalid(`Invalid ${what} ${JSON.stringify(v)}: expected an integer`);
  }
  return v;
}

function checkString(
  v: unknown,
  what: string,
  options: { nonEmpty?: boolean; maxBytes?: number } = {},
): string {
  if (typeof v !== "string") {
    throw invalid(`Invalid ${what}: expected a string, got ${describe(v)}`);
  }
  const max = options.maxBytes ?? MAX_STRING_BYTES;
  const n = utf8Length(v);
  if (n > max) {
    throw invalid(
      `Invalid ${what} ${JSON.stringify(v.slice(0, 40))}...: ${n} UTF-8 bytes, over ${max}`,
    );
  }
  if (options.nonEmpty && v === "") {
    throw invalid(`Invalid ${what} "": expected a non-empty string`);
  }
  return v;
}

function checkBool(v: unknown, what: string): boolean {
  if (v === undefined) return false;
  if (typeof v !== "boolean") {
    throw invalid(`Invalid ${what} ${JSON.stringify(v)}: expected a boolean`);
  }
  return v;
}

function checkStrings(v: unknown, what: string): Record<string, string> {
  if (v === undefined) return {};
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw invalid(`Invalid ${what}: expected a Record<string, string>, got ${describe(v)}`);
  }
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(v)) {
    out[checkString(k, `${what} key`)] = checkString(x, `${what} value of "${k}"`);
  }
  return out;
}

const START_OPTION_KEY = "ohos.collabrate.key.start.option";
const START_BACKGROUND = "ohos.collabrate.value.background";

function checkOptions(v: unknown): SessionOptions {
  if (typeof v !== "object" || v === null) {
    throw invalid(`Invalid connectOptions: expected an object, got ${describe(v)}`);
  }
  const o = v as ConnectOptions;
  const needSendData = checkBool(o.needSendData, "needSendData") ||
    checkBool(o.needSendBigData, "needSendBigData");
  const needSendStream = checkBool(o.needSendStream, "needSendStream");
  const needReceiveStream = checkBool(o.needReceiveStream, "needReceiveStream");
  if (needSendStream && needReceiveStream) {
    throw invalid(
      "Invalid connectOptions: needSendStream and needReceiveStream cannot both be true",
    );
  }
  const legacy = checkStrings(o.options, "options");
  let startOptions: number = legacy[START_OPTION_KEY] === START_BACKGROUND
    ? StartOptionParams.START_IN_BACKGROUND
    : StartOptionParams.START_IN_FOREGROUND;
  if (o.startOptions !== undefined) {
    if (
      o.startOptions !== StartOptionParams.START_IN_FOREGROUND &&
      o.startOptions !== StartOptionParams.START_IN_BACKGROUND
    ) {
      throw invalid(
        `Invalid startOptions ${
          JSON.stringify(o.startOptions)
        }: expected StartOptionParams (0 or 1)`,
      );
    }
    startOptions = o.startOptions;
  }
  return {
    needSendData,
    needSendStream,
    needReceiveStream,
    startOptions,
    parameters: checkStrings(o.parameters, "parameters"),
  };
}

function checkPeer(v: unknown, serviceName: string): Required<PeerInfo> {
  if (typeof v !== "object" || v === null) {
    throw invalid(`Invalid peerInfo: expected an object, got ${describe(v)}`);
  }
  const p = v as PeerInfo & { serverId?: string };
  const deviceId = checkString(p.deviceId, "peerInfo.deviceId", { nonEmpty: true });
  if (!isDeviceId(deviceId)) {
    throw invalid(
      `Invalid peerInfo.deviceId ${
        JSON.stringify(deviceId)
      }: expected a network id "AA:BB:CC:DD:EE:FF"`,
    );
  }
  const own = p.serviceName ?? p.serverId;
  return {
    deviceId: deviceId.toUpperCase(),
    bundleName: checkString(p.bundleName, "peerInfo.bundleName", { nonEmpty: true }),
    moduleName: checkString(p.moduleName, "peerInfo.moduleName", { nonEmpty: true }),
    abilityName: checkString(p.abilityName, "peerInfo.abilityName", { nonEmpty: true }),
    serviceName: own === undefined ? serviceName : checkServiceName(own, "peerInfo.serviceName"),
  };
}

function checkServiceName(v: unknown, what: string): string {
  const s = checkString(v, what);
  if ([...s].length > MAX_SERVICE_NAME) {
    throw invalid(`Invalid ${what}: ${[...s].length} characters, over ${MAX_SERVICE_NAME}`);
  }
  return s;
}

function checkSurfaceParam(v: unknown): Required<SurfaceParam> {
  if (typeof v !== "object" || v === null) {
    throw invalid(`Invalid surfaceParam: expected an object, got ${describe(v)}`);
  }
  const p = v as SurfaceParam;
  const width = checkInt(p.width, "surfaceParam.width");
  const height = checkInt(p.height, "surfaceParam.height");
  if (width < 1 || height < 1 || width > 65535 || height > 65535) {
    throw invalid(`Invalid surface size ${width}x${height}: expected 1..65535 each`);
  }
  const format = p.format === undefined ? VideoPixelFormat.UNKNOWN : checkInt(p.format, "format");
  if (format < VideoPixelFormat.UNKNOWN || format > VideoPixelFormat.NV21) {
    throw invalid(`Invalid format ${format}: expected VideoPixelFormat (-1, 0 or 1)`);
  }
  const rotation = p.rotation === undefined ? 0 : checkInt(p.rotation, "rotation");
  if (![0, 90, 180, 270].includes(rotation)) {
    throw invalid(`Invalid rotation ${rotation}: expected 0, 90, 180 or 270`);
  }
  const flip = p.flip === undefined ? -1 : checkInt(p.flip, "flip");
  if (flip !== -1 && flip !== 0 && flip !== 1) {
    throw invalid(`Invalid flip ${flip}: expected FlipOptions (0 or 1)`);
  }
  return { width, height, format, rotation, flip };
}

/** A collaboration token: 48 hex characters, as OpenHarmony's, but random. */
function newToken(): string {
  const b = new Uint8Array(24);
  crypto.getRandomValues(b);
  return [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
}

function abilityKey(bundle: string, module: string, ability: string): string {
  return `${bundle}\u0000${module}\u0000${ability}`;
}

/** The per-device state of the API: abilities, sessions, streams, requests. */
export class AbilityConnectionManager {
  #rt: AbilityRuntime;
  #abilities = new Map<string, Registered>();
  #contexts = new WeakMap<UIAbilityContext, Registered>();
  #sessions = new Map<number, Session>();
  #streams = new Map<number, MediaStream>();
  #pending = new Map<string, Incoming>();
  #nextSession = FIRST_SESSION_ID;
  #nextStream = FIRST_STREAM_ID;
  #budget: ReceiveBudget = { limit: RECEIVE_BUDGET, used: 0 };
  #running: DeviceDriver | undefined;
  #wired = false;
  #sessionCtx: SessionContext;

  /**
   * The device makes one (use the `abilityConnectionManager` namespace, or a
   * device's `abilityConnectionManager`).
   *
   * @param rt The device, its configuration, the host and the codec.
   */
  constructor(rt: AbilityRuntime) {
    this.#rt = rt;
    this.#sessionCtx = {
      host: rt.host,
      budget: this.#budget,
      imageCodec: () => rt.imageCodec(),
      duplicate: (s) => this.#duplicate(s),
      linger: () => this.#driver().then((d) => d.linger(LINGER_MS), () => {}),
      forgetStream: (id) => this.#streams.delete(id),
    };
  }

  #driver(): Promise<DeviceDriver> {
    return this.#rt.driver().then((d) => {
      if (!this.#wired) {
        this.#wired = true;
        this.#running = d;
        d.setAcceptor(ServiceKind.ABILITY, (request) => this.#accept(request));
      }
      return d;
    });
  }

  /** The bytes this device holds now in transfers it has not delivered. */
  get receiving(): number {
    return this.#budget.used;
  }

  // ------------------------------------------------------------ abilities

  /**
   * Register an ability: it gets its context, `onCreate` is called, the
   * device starts, and collaboration requests for it reach `onCollaborate`.
   * A registered ability keeps the process alive until
   * `context.terminateSelf()`.
   *
   * @param ability The instance.
   * @param info Its bundle, module and ability names.
   * @returns When the device runs and answers for it.
   * @throws {ParameterError} 401 for a bad argument or an ability registered twice.
   */
  registerAbility(ability: UIAbility, info: AbilityRegistration): Promise<void> {
    if (typeof ability !== "object" || ability === null) {
      throw invalid(`Invalid ability: expected a UIAbility, got ${describe(ability)}`);
    }
    if (typeof info !== "object" || info === null) {
      throw invalid(`Invalid info: expected { bundleName, moduleName, abilityName }`);
    }
    const bundleName = checkString(info.bundleName, "bundleName", { nonEmpty: true });
    const moduleName = checkString(info.moduleName, "moduleName", { nonEmpty: true });
    const abilityName = checkString(info.abilityName, "abilityName", { nonEmpty: true });
    const key = abilityKey(bundleName, moduleName, abilityName);
    if (this.#abilities.has(key)) {
      throw invalid(
        `Cannot register ability "${bundleName}/${moduleName}/${abilityName}": it is registered already`,
      );
    }
    if ([...this.#abilities.values()].some((r) => r.ability === ability)) {
      throw invalid("Cannot register an ability instance twice");
    }
    const abilityInfo: AbilityInfo = { bundleName, moduleName, name: abilityName };
    const context = new UIAbilityContext(abilityInfo, () => this.#terminate(key));
    const reg: Registered = { ability, info: abilityInfo, context };
    this.#abilities.set(key, reg);
    this.#contexts.set(context, reg);
    this.#rt.host.hold();
    ability.context = context;
    const want: Want = { bundleName, moduleName, abilityName };
    ability.launchWant = want;
    try {
      (ability as AbilityCallbacks).onCreate?.(want, {
        launchReason: AbilityConstant.LaunchReason.START_ABILITY,
      });
    } catch (error) {
      console.error("linkweave: onCreate threw:", error);
    }
    trace("ability.registered", { bundleName, moduleName, abilityName });
    return this.#driver().then(() => {});
  }

  async #terminate(key: string): Promise<void> {
    const reg = this.#abilities.get(key);
    if (reg === undefined) return;
    this.#abilities.delete(key);
    for (const s of [...this.#sessions.values()]) {
      if (s.context === reg.context) this.#destroy(s, DisconnectReason.PEER_APP_EXIT);
    }
    this.#rt.host.release();
    try {
      await (reg.ability as AbilityCallbacks).onDestroy?.();
    } catch (error) {
      console.error("linkweave: onDestroy threw:", error);
    }
  }

  /**
   * The device is closing: every session says the app exits, every request
   * is dropped, and abilities stop keeping the process alive.
   */
  shutdown(): void {
    for (const s of [...this.#sessions.values()]) this.#destroy(s, DisconnectReason.PEER_APP_EXIT);
    for (const inc of [...this.#pending.values()]) {
      inc.answer({ errorCode: ConnectErrorCode.SYSTEM_INTERNAL_ERROR, reason: "" });
    }
    for (const _ of this.#abilities) this.#rt.host.release();
    this.#abilities.clear();
  }

  // ------------------------------------------------------------ incoming requests

  #accept(request: IncomingRequest): Port | number {
    const bundle = request.bundle;
    if (![...this.#abilities.values()].some((r) => r.info.bundleName === bundle)) {
      // No ability of that application runs here.
      return ErrorCode.PEER_SERVER_NOT_STARTED;
    }
    const inc: Incoming = new Incoming(request.peerId, {
      hello: (i) => this.#hello(i),
      gone: (i) => {
        if (i.hello !== undefined && this.#pending.get(i.hello.token) === i) {
          this.#pending.delete(i.hello.token);
        }
      },
    });
    // A request that never says hello, or is never answered, ends with the collaboration timeout.
    const host = this.#rt.host;
    host.setTimer(() => {
      if (inc.waiting) {
        inc.answer({ errorCode: ConnectErrorCode.SYSTEM_INTERNAL_ERROR, reason: "" });
      }
    }, COLLAB_TIMEOUT);
    return inc.port;
  }

  #hello(inc: Incoming): void {
    const h = inc.hello!;
    const reg = this.#abilities.get(
      abilityKey(h.callee.bundleName, h.callee.moduleName, h.callee.abilityName),
    );
    trace("ability.request", {
      peer: inc.peerId,
      callee: `${h.callee.bundleName}/${h.callee.moduleName}/${h.callee.abilityName}`,
      found: reg !== undefined,
    });
    if (reg === undefined) {
      inc.answer({ errorCode: ConnectErrorCode.SYSTEM_INTERNAL_ERROR, reason: "" });
      return;
    }
    const onCollaborate = (reg.ability as AbilityCallbacks).onCollaborate;
    if (typeof onCollaborate !== "function") {
      inc.answer({ errorCode: ConnectErrorCode.PEER_ABILITY_NO_ONCOLLABORATE, reason: "" });
      return;
    }
    if (this.#pending.has(h.token)) {
      inc.answer({ errorCode: ConnectErrorCode.SYSTEM_INTERNAL_ERROR, reason: "" });
      return;
    }
    this.#pending.set(h.token, inc);
    const peerInfo = {
      deviceId: inc.peerId,
      bundleName: h.caller.bundleName,
      moduleName: h.caller.moduleName,
      abilityName: h.caller.abilityName,
      serverId: h.serviceName,
      serviceName: h.serviceName,
    };
    const option = {
      needSendData: h.options.needSendData,
      needSendStream: h.options.needSendStream,
      needReceiveStream: h.options.needReceiveStream,
      parameters: { ...h.options.parameters },
    };
    const wantParam: Record<string, unknown> = {
      "ohos.extra.param.key.supportCollaborateIndex": {
        PeerInfo: peerInfo,
        ConnectOption: option,
        // The API reference's examples read the plural key: both are there.
        ConnectOptions: { ...option, parameters: { ...option.parameters } },
        "ohos.dms.collabToken": h.token,
      },
      "ohos.aafwk.param.callAbilityToForeground":
        h.options.startOptions === StartOptionParams.START_IN_FOREGROUND,
    };
    queueMicrotask(() => {
      let result: unknown;
      try {
        result = onCollaborate.call(reg.ability, wantParam);
      } catch (error) {
        console.error("linkweave: onCollaborate threw:", error);
        return;
      }
      if (result === AbilityConstant.CollaborateResult.REJECT && inc.waiting) {
        inc.answer({ errorCode: ConnectErrorCode.PEER_APP_REJECTED, reason: "" });
      }
    });
  }

  // ------------------------------------------------------------ sessions

  #session(id: unknown, action: string): Session {
    const n = checkInt(id, "sessionId");
    const s = this.#sessions.get(n);
    if (s === undefined) throw invalid(`Cannot ${action}: no session ${n}`);
    return s;
  }

  #duplicate(s: Session): boolean {
    for (const o of this.#sessions.values()) {
      if (o === s || !o.active || o.context !== s.context) continue;
      const a = o.peer;
      const b = s.peer;
      if (
        a.deviceId === b.deviceId && a.bundleName === b.bundleName &&
        a.moduleName === b.moduleName && a.abilityName === b.abilityName &&
        a.serviceName === b.serviceName
      ) return true;
    }
    return false;
  }

  /**
   * Create a session with a peer ability.
   *
   * @param serviceName The service name (the same on both sides), at most 256 characters.
   * @param context The local ability's context (from `registerAbility`).
   * @param peerInfo The peer ability.
   * @param connectOptions The options.
   * @returns The session id (100, 101, ...).
   * @throws {ParameterError} 401 for a bad argument.
   */
  createAbilityConnectionSession(
    serviceName: string,
    context: UIAbilityContext,
    peerInfo: PeerInfo,
    connectOptions: ConnectOptions,
  ): number {
    const name = checkServiceName(serviceName, "serviceName");
    const reg = context instanceof UIAbilityContext ? this.#contexts.get(context) : undefined;
    if (
      reg === undefined ||
      !this.#abilities.has(abilityKey(reg.info.bundleName, reg.info.moduleName, reg.info.name))
    ) {
      throw invalid(
        "Invalid context: expected the context of a registered ability (ability.context after registerAbility)",
      );
    }
    const peer = checkPeer(peerInfo, name);
    const options = checkOptions(connectOptions);
    const id = this.#nextSession++;
    this.#sessions.set(id, new Session(id, { context, peer, options, ctx: this.#sessionCtx }));
    trace("ability.sessionCreated", { sessionId: id, peer: peer.deviceId, serviceName: name });
    return id;
  }

  #destroy(s: Session, reason: number): void {
    s.stream?.destroy();
    s.disconnect(reason);
    this.#sessions.delete(s.id);
  }

  /**
   * Destroy a session (disconnecting it first).
   *
   * @param sessionId The session.
   * @throws {ParameterError} 401 for a bad or unknown id.
   */
  destroyAbilityConnectionSession(sessionId: number): void {
    this.#destroy(
      this.#session(sessionId, "destroy the session"),
      DisconnectReason.PEER_APP_CLOSE_COLLABORATION,
    );
  }

  /**
   * The peer application of a session.
   *
   * @param sessionId The session.
   * @returns Its peer, or `undefined` for an unknown session.
   * @throws {ParameterError} 401 for a non-integer id.
   */
  getPeerInfoById(sessionId: number): PeerInfo | undefined {
    const s = this.#sessions.get(checkInt(sessionId, "sessionId"));
    return s === undefined ? undefined : { ...s.peer };
  }

  /**
   * Connect: the peer's ability gets `onCollaborate` and answers.
   *
   * linkweave extension: `options.signal` gives the attempt up. Aborted
   * before the call, it rejects with the signal's reason and asks nothing;
   * aborted while connecting, it rejects with the reason and the attempt
   * ends as `disconnect()` would end it (the session stays, idle); once
   * connected, the signal no longer matters.
   *
   * @param sessionId The session.
   * @param options `signal` (a linkweave extension).
   * @returns The outcome (a failure is a result, not a rejection).
   * @throws {ParameterError} 401 for a non-integer id or malformed options.
   */
  connect(sessionId: number, options?: AbortOptions): Promise<ConnectResult> {
    const n = checkInt(sessionId, "sessionId");
    const signal = abortSignal(options, "connect", invalid);
    const s = this.#sessions.get(n);
    if (s === undefined) return Promise.reject(failure(`Cannot connect: no session ${n}`));
    if (signal?.aborted) return Promise.reject(signal.reason);
    const reg = this.#contexts.get(s.context)!;
    const hello: Hello = {
      token: newToken(),
      caller: {
        bundleName: reg.info.bundleName,
        moduleName: reg.info.moduleName,
        abilityName: reg.info.name,
      },
      callee: {
        bundleName: s.peer.bundleName,
        moduleName: s.peer.moduleName,
        abilityName: s.peer.abilityName,
      },
      serviceName: s.peer.serviceName,
      options: s.options,
    };
    const started = this.#rt.host.now();
    const result = s.connect(
      (port) => {
        const open = (d: DeviceDriver) =>
          d.connect(s.peer.deviceId, s.peer.serviceName, port, {
            kind: ServiceKind.ABILITY,
            bundle: s.peer.bundleName,
            timeout: Math.max(1, COLLAB_TIMEOUT - (this.#rt.host.now() - started)),
          });
        if (this.#running !== undefined) open(this.#running);
        else {
          this.#driver().then(
            open,
            (e) => port.onFailed(ErrorCode.INTERNAL_ERROR, (e as Error).message),
          );
        }
      },
      hello,
      COLLAB_TIMEOUT,
    );
    if (signal === undefined) return result;
    return new Promise((resolve, reject) => {
      const unabort = onAbort(signal, (reason) => {
        if (s.state !== "connecting") return; // the outcome is known already
        trace("ability.connectAborted", { sessionId: n });
        s.disconnect(DisconnectReason.PEER_APP_CLOSE_COLLABORATION);
        reject(reason);
      });
      result.then((r) => {
        unabort();
        resolve(r);
      }, (e) => {
        unabort();
        reject(e);
      });
    });
  }

  /**
   * Accept a collaboration request with a session.
   *
   * @param sessionId The session made for it (in `onCollaborate`).
   * @param token The request's `"ohos.dms.collabToken"`.
   * @returns When accepted.
   * @throws {ParameterError} 401 for a bad argument.
   */
  acceptConnect(sessionId: number, token: string): Promise<void> {
    const n = checkInt(sessionId, "sessionId");
    checkString(token, "token");
    const s = this.#sessions.get(n);
    if (s === undefined) return Promise.reject(failure(`Cannot accept: no session ${n}`));
    const inc = this.#pending.get(token);
    if (inc === undefined || !inc.waiting) {
      return Promise.reject(
        failure(`Cannot accept: no collaboration request with token "${token}" is waiting`),
      );
    }
    return s.accept(inc);
  }

  /**
   * Reject a collaboration request.
   *
   * @param token The request's `"ohos.dms.collabToken"`.
   * @param reason Why (the caller's `ConnectResult.reason`).
   * @throws {ParameterError} 401 for a bad argument or a token no request waits with.
   */
  reject(token: string, reason: string): void {
    checkString(token, "token");
    checkString(reason, "reason");
    const inc = this.#pending.get(token);
    if (inc === undefined || !inc.waiting) {
      throw invalid(`Cannot reject: no collaboration request with token "${token}" is waiting`);
    }
    trace("ability.rejected", { peer: inc.peerId, reason });
    inc.answer({ errorCode: ConnectErrorCode.PEER_APP_REJECTED, reason });
  }

  /**
   * Disconnect a session; the peer sees `disconnect` with
   * `PEER_APP_CLOSE_COLLABORATION`. The session stays until destroyed.
   *
   * @param sessionId The session.
   * @throws {ParameterError} 401 for a bad or unknown id.
   */
  disconnect(sessionId: number): void {
    this.#session(sessionId, "disconnect").disconnect(
      DisconnectReason.PEER_APP_CLOSE_COLLABORATION,
    );
  }

  /**
   * Set the callback of a session's event (replacing the previous one).
   *
   * @param type The event.
   * @param sessionId The session.
   * @param callback The callback.
   * @throws {ParameterError} 401 for a bad argument or an unknown session.
   */
  on(
    type: Exclude<EventType, "collaborateEvent">,
    sessionId: number,
    callback: (info: EventCallbackInfo) => void,
  ): void;
  /**
   * Set the callback of a session's `collaborateEvent` (replacing the previous one).
   *
   * @param type `collaborateEvent`.
   * @param sessionId The session.
   * @param callback Receives the event.
   * @throws {ParameterError} 401 for a bad argument or an unknown session.
   */
  on(
    type: "collaborateEvent",
    sessionId: number,
    callback: (info: CollaborateEventInfo) => void,
  ): void;
  on(type: EventType, sessionId: number, callback: (info: never) => void): void {
    this.#checkType(type);
    const s = this.#session(sessionId, `listen for "${type}"`);
    if (typeof callback !== "function") {
      throw invalid(
        `Invalid callback for "${type}": expected a function, got ${describe(callback)}`,
      );
    }
    s.listen(type, callback);
  }

  /**
   * Clear the callback of a session's event (whatever callback is passed, as OpenHarmony does).
   *
   * @param type The event.
   * @param sessionId The session.
   * @param _callback Ignored.
   * @throws {ParameterError} 401 for a bad type or an unknown session.
   */
  off(
    type: Exclude<EventType, "collaborateEvent">,
    sessionId: number,
    callback?: (info: EventCallbackInfo) => void,
  ): void;
  /**
   * Clear the callback of a session's `collaborateEvent` (whatever callback is passed).
   *
   * @param type `collaborateEvent`.
   * @param sessionId The session.
   * @param callback Ignored.
   * @throws {ParameterError} 401 for a bad type or an unknown session.
   */
  off(
    type: "collaborateEvent",
    sessionId: number,
    callback?: (info: CollaborateEventInfo) => void,
  ): void;
  off(type: EventType, sessionId: number, _callback?: (info: never) => void): void {
    this.#checkType(type);
    this.#session(sessionId, `stop listening for "${type}"`).listen(type, undefined);
  }

  #checkType(type: unknown): void {
    if (typeof type !== "string" || !EVENT_TYPES.includes(type as EventType)) {
      throw invalid(
        `Invalid event type ${JSON.stringify(type)}: expected one of ${EVENT_TYPES.join(", ")}`,
      );
    }
  }

  /**
   * Send a text of at most 1 KB (UTF-8); texts arrive in order.
   *
   * @param sessionId The session.
   * @param msg The text.
   * @returns When queued.
   * @throws {ParameterError} 401 for a bad argument or a text over 1024 UTF-8 bytes.
   */
  sendMessage(sessionId: number, msg: string): Promise<void> {
    const n = checkInt(sessionId, "sessionId");
    checkString(msg, "msg", { maxBytes: MAX_MESSAGE_BYTES });
    const s = this.#sessions.get(n);
    if (s === undefined) return Promise.reject(failure(`Cannot send message: no session ${n}`));
    return s.sendMessage(msg);
  }

  /**
   * Send bytes; resolves once the peer has them. The buffer must not change
   * until the promise settles.
   *
   * linkweave extension: `options.signal` gives the transfer up. Aborted
   * before the call, it rejects with the signal's reason and sends nothing;
   * aborted while the transfer is queued or under way, it rejects with the
   * reason, nothing more of it is sent, and the peer drops what it holds of
   * it (no `receiveData`). Once every byte has left, the peer may still
   * receive it.
   *
   * @param sessionId The session (created with `needSendData`).
   * @param data At most 100 MiB.
   * @param options `signal` (a linkweave extension).
   * @returns When the peer has them.
   * @throws {ParameterError} 401 for a bad argument.
   */
  sendData(sessionId: number, data: ArrayBuffer, options?: AbortOptions): Promise<void> {
    const n = checkInt(sessionId, "sessionId");
    const signal = abortSignal(options, "send data", invalid);
    const value: unknown = data;
    if (!(value instanceof ArrayBuffer)) {
      throw invalid(`Invalid data: expected an ArrayBuffer, got ${describe(value)}`);
    }
    if (value.byteLength > MAX_DATA_BYTES) {
      throw invalid(
        `Invalid data: ${value.byteLength} bytes, over the ${MAX_DATA_BYTES}-byte limit`,
      );
    }
    const s = this.#sessions.get(n);
    if (s === undefined) return Promise.reject(failure(`Cannot send data: no session ${n}`));
    if (!s.options.needSendData) {
      return Promise.reject(
        failure(`Cannot send data: session ${n} was created without needSendData`),
      );
    }
    if (signal?.aborted) return Promise.reject(signal.reason);
    return s.transfer(TransferKind.DATA, new Uint8Array(value), signal);
  }

  /**
   * Send an image, JPEG-encoded; resolves once the peer decoded it.
   *
   * @param sessionId The session.
   * @param image The image.
   * @param quality JPEG quality 0..100. @default {30}
   * @returns When the peer has it.
   * @throws {ParameterError} 401 for a bad argument.
   */
  sendImage(
    sessionId: number,
    image: PixelMap,
    quality: number = DEFAULT_IMAGE_QUALITY,
  ): Promise<void> {
    const n = checkInt(sessionId, "sessionId");
    if (!(image instanceof PixelMap) || image.released) {
      throw invalid(`Invalid image: expected a PixelMap that is not released`);
    }
    const q = checkInt(quality, "quality");
    if (q < 0 || q > 100) throw invalid(`Invalid quality ${q}: expected 0..100`);
    const s = this.#sessions.get(n);
    if (s === undefined) return Promise.reject(failure(`Cannot send image: no session ${n}`));
    if (s.state !== "connected") {
      return Promise.reject(failure(`Cannot send image: session ${n} is not connected`));
    }
    const { size } = image.getImageInfoSync();
    let jpeg: Uint8Array;
    try {
      jpeg = this.#rt.imageCodec().encodeJpeg(image.rgba(), size.width, size.height, q);
    } catch (e) {
      return Promise.reject(failure(`Cannot send image: ${(e as Error).message}`));
    }
    return s.transfer(TransferKind.IMAGE, jpeg);
  }

  // ------------------------------------------------------------ streams

  #stream(id: unknown, action: string): MediaStream {
    const n = checkInt(id, "streamId");
    const st = this.#streams.get(n);
    if (st === undefined) throw invalid(`Cannot ${action}: no stream ${n}`);
    return st;
  }

  /**
   * Create the session's stream (one per session).
   *
   * @param sessionId The session (`needSendStream` for a source, `needReceiveStream` for a sink).
   * @param param Name, role, bitrate.
   * @returns The stream id (1000, 1001, ...).
   * @throws {ParameterError} 401 for a bad argument.
   * @throws {BusinessError} 32300003 for a bitrate out of range; 32300004 for a color space conversion.
   */
  createStream(sessionId: number, param: StreamParam): Promise<number> {
    const n = checkInt(sessionId, "sessionId");
    if (typeof param !== "object" || param === null) {
      throw invalid(`Invalid param: expected a StreamParam, got ${describe(param)}`);
    }
    const name = checkString(param.name, "param.name");
    const role = checkInt(param.role, "param.role");
    if (role !== StreamRole.SOURCE && role !== StreamRole.SINK) {
      throw invalid(`Invalid role ${role}: expected StreamRole.SOURCE (0) or SINK (1)`);
    }
    let bitrate: number = DEFAULT_BITRATE;
    if (param.bitrate !== undefined) {
      bitrate = checkInt(param.bitrate, "param.bitrate");
      if (bitrate < MIN_BITRATE || bitrate > MAX_BITRATE) {
        throw new BusinessError(
          ErrorCode.BITRATE_NOT_SUPPORTED,
          `Cannot create the stream: bitrate ${bitrate} is outside ${MIN_BITRATE}..${MAX_BITRATE}`,
        );
      }
    }
    if (param.colorSpaceConversionTarget !== undefined) {
      checkInt(param.colorSpaceConversionTarget, "param.colorSpaceConversionTarget");
      throw new BusinessError(
        ErrorCode.COLOR_SPACE_NOT_SUPPORTED,
        `Cannot create the stream: color space conversion to ${param.colorSpaceConversionTarget} is not supported`,
      );
    }
    const s = this.#sessions.get(n);
    if (s === undefined) return Promise.reject(failure(`Cannot create a stream: no session ${n}`));
    if (s.stream !== undefined) {
      return Promise.reject(
        new BusinessError(
          ErrorCode.STREAM_EXISTS,
          `Cannot create a stream: session ${n} has stream ${s.stream.id} already`,
        ),
      );
    }
    const need = role === StreamRole.SOURCE ? "needSendStream" : "needReceiveStream";
    if (!s.options[need]) {
      return Promise.reject(
        failure(`Cannot create a stream: session ${n} was created without ${need}`),
      );
    }
    const id = this.#nextStream++;
    const st = new MediaStream(id, { name, role, bitrate, session: s });
    s.stream = st;
    this.#streams.set(id, st);
    trace("ability.streamCreated", { sessionId: n, streamId: id, name, role, bitrate });
    return Promise.resolve(id);
  }

  /**
   * The surface a source stream reads frames from.
   *
   * @param streamId A source stream.
   * @param param The frames' geometry.
   * @returns The surface id (for `surface.getProducer`).
   * @throws {ParameterError} 401 for a bad argument or a sink stream.
   */
  getSurfaceId(streamId: number, param: SurfaceParam): string {
    const st = this.#stream(streamId, "get a surface id");
    const p = checkSurfaceParam(param);
    if (st.role !== StreamRole.SOURCE) {
      throw invalid(`Cannot get a surface id: stream ${st.id} is a sink (use setSurfaceId)`);
    }
    return st.surfaceFor(p);
  }

  /**
   * The surface a sink stream shows frames on.
   *
   * @param streamId A sink stream.
   * @param surfaceId A surface from `surface.createSurface()`.
   * @param param The frames' geometry.
   * @throws {ParameterError} 401 for a bad argument, a source stream or an unknown surface.
   */
  setSurfaceId(streamId: number, surfaceId: string, param: SurfaceParam): void {
    const st = this.#stream(streamId, "set the surface id");
    checkString(surfaceId, "surfaceId");
    const p = checkSurfaceParam(param);
    if (st.role !== StreamRole.SINK) {
      throw invalid(`Cannot set the surface id: stream ${st.id} is a source (use getSurfaceId)`);
    }
    const consumer = findConsumer(surfaceId);
    if (consumer === undefined) {
      throw invalid(`Cannot set the surface id: no surface ${JSON.stringify(surfaceId)}`);
    }
    st.param = p;
    st.consumer = consumer;
  }

  /**
   * Change rotation and flip: a source tells its sink, a sink applies them.
   *
   * @param streamId The stream.
   * @param param The parameters.
   * @throws {ParameterError} 401 for a bad argument.
   */
  updateSurfaceParam(streamId: number, param: SurfaceParam): void {
    const st = this.#stream(streamId, "update the surface parameters");
    st.update(checkSurfaceParam(param));
  }

  /**
   * Start a stream. A sink starts showing frames and tells its source; a
   * source starts sending once its sink started.
   *
   * @param streamId The stream.
   * @throws {ParameterError} 401 for a bad argument, no surface, or a disconnected session.
   * @throws {BusinessError} 32300002 for a source whose sink has not started.
   */
  startStream(streamId: number): void {
    const st = this.#stream(streamId, "start the stream");
    if (st.session.state !== "connected") {
      throw invalid(`Cannot start stream ${st.id}: its session is not connected`);
    }
    if (st.role === StreamRole.SOURCE) {
      if (st.producer === undefined) {
        throw invalid(`Cannot start stream ${st.id}: get its surface id first`);
      }
      if (st.session.peerSinkStarted !== st.name) {
        throw new BusinessError(
          ErrorCode.RECEIVE_STREAM_NOT_STARTED,
          `Cannot start stream ${st.id}: the peer's sink "${st.name}" has not started`,
        );
      }
    } else if (st.consumer === undefined) {
      throw invalid(`Cannot start stream ${st.id}: set its surface id first`);
    }
    st.start();
  }

  /**
   * Stop a stream.
   *
   * @param streamId The stream.
   * @throws {ParameterError} 401 for a bad or unknown id.
   */
  stopStream(streamId: number): void {
    this.#stream(streamId, "stop the stream").stop();
  }

  /**
   * Destroy a stream.
   *
   * @param streamId The stream.
   * @throws {ParameterError} 401 for a bad or unknown id.
   */
  destroyStream(streamId: number): void {
    this.#stream(streamId, "destroy the stream").destroy();
  }

  /**
   * linkweave extension: what a stream did (frames sent and dropped by a source).
   *
   * @param streamId The stream.
   * @returns Its counters.
   */
  streamStats(streamId: number): { sent: number; dropped: number; received: number } {
    const st = this.#stream(streamId, "read the stream's counters");
    return { sent: st.sent, dropped: st.dropped, received: st.consumer?.framesReceived ?? 0 };
  }
}

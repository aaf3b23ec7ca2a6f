/**
 * OpenHarmony's `abilityConnectionManager` semantics (public and system
 * API): collaboration sessions between abilities of two devices, the
 * collaboration handshake (`connect` on one side, `onCollaborate` then
 * `acceptConnect` or `reject` on the other), texts, data, images, media
 * streams, events, and OpenHarmony's error rules (401 thrown synchronously
 * for a bad argument, even from a promise-returning call; other failures
 * reject). Sessions are streams on the device's link to the peer
 * (`core/device/driver.ts`, `ServiceKind.ABILITY`); this module holds only
 * the API rules. Beside it: the argument checks (`_check.ts`), the registry
 * of local abilities (`_abilities.ts`), the collaboration requests waiting
 * for an answer (`_requests.ts`), the streams' table and rules
 * (`_streams.ts`) and what a session does (`_session.ts`).
 *
 * Listeners follow OpenHarmony's runtime (`AbilityConnectionSession::
 * RegisterEventCallback`): one callback per session and event; `on`
 * replaces it, `off` clears it whatever callback is passed, and both throw
 * 401 for a session that does not exist.
 *
 * @module
 */
import { ErrorCode } from "../error_codes.ts";
import type { DeviceConfig } from "../device/config.ts";
import type { DeviceHost } from "../device/host.ts";
import type { DeviceSurface } from "../device/driver_options.ts";
import { ServiceKind } from "../proto/link/control.ts";
import { trace } from "../trace.ts";
import { type AbortOptions, abortSignal, onAbort } from "../abort.ts";
import type { UIAbility, UIAbilityContext } from "./ability.ts";
import type { ImageCodec, PixelMap } from "./pixel_map.ts";
import type { ReceiveBudget } from "./_transfer.ts";
import { failure, Session, type SessionContext } from "./_session.ts";
import {
  checkData,
  checkEventType,
  checkImage,
  checkInt,
  checkOptions,
  checkPeer,
  checkServiceName,
  checkString,
  describe,
  invalid,
} from "./_check.ts";
import { callerHello, CollabRequests } from "./_requests.ts";
import { AbilityRegistry } from "./_abilities.ts";
import { MediaStreams } from "./_streams.ts";
import {
  COLLAB_TIMEOUT,
  type CollaborateEventInfo,
  ConnectErrorCode,
  type ConnectOptions,
  type ConnectResult,
  DEFAULT_IMAGE_QUALITY,
  DisconnectReason,
  type EventCallbackInfo,
  type EventType,
  FIRST_SESSION_ID,
  MAX_MESSAGE_BYTES,
  type PeerInfo,
  RECEIVE_BUDGET,
  type StreamParam,
  type SurfaceParam,
} from "./types.ts";
import { TransferKind } from "./wire.ts";

export { abilityKey } from "./_abilities.ts";

/** How long the process stays alive after a disconnect to flush what is queued (ms). */
export const LINGER_MS = 5000;

/** What the API needs from the process: the device, its config, the host, the codec. */
export interface AbilityRuntime {
  /** The configuration in effect. */
  config(): DeviceConfig;
  /** The machine. */
  host: DeviceHost;
  /** The device (embedded or attached to a daemon), started on first call. */
  driver(): Promise<DeviceSurface>;
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

/** The per-device state of the API: abilities, sessions, streams, requests. */
export class AbilityConnectionManager {
  #rt: AbilityRuntime;
  #abilities: AbilityRegistry;
  #sessions = new Map<number, Session>();
  #media = new MediaStreams(this.#sessions);
  #requests: CollabRequests;
  #nextSession = FIRST_SESSION_ID;
  #budget: ReceiveBudget = { limit: RECEIVE_BUDGET, used: 0 };
  #running: DeviceSurface | undefined;
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
    this.#abilities = new AbilityRegistry(rt, (reg) => {
      this.#advertise();
      for (const s of [...this.#sessions.values()]) {
        if (s.context === reg.context) this.#destroy(s, DisconnectReason.PEER_APP_EXIT);
      }
    });
    this.#requests = new CollabRequests(rt, this.#abilities);
    this.#sessionCtx = {
      host: rt.host,
      budget: this.#budget,
      imageCodec: () => rt.imageCodec(),
      duplicate: (s) => this.#duplicate(s),
      linger: () => this.#driver().then((d) => d.linger(LINGER_MS), () => {}),
      forgetStream: (id) => this.#media.forget(id),
    };
  }

  #driver(): Promise<DeviceSurface> {
    return this.#rt.driver().then((d) => {
      if (!this.#wired) {
        this.#wired = true;
        this.#running = d;
        d.setAcceptor(ServiceKind.ABILITY, (request) => this.#requests.accept(request));
      }
      this.#advertise();
      return d;
    });
  }

  /** Tell the device which abilities are registered (a device daemon routes requests by it). */
  #advertise(): void {
    this.#running?.serve?.(ServiceKind.ABILITY, [...this.#abilities.keys()]);
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
    this.#abilities.register(ability, info);
    return this.#driver().then(() => {});
  }

  /**
   * The device is closing: every session says the app exits, every request
   * is dropped, and abilities stop keeping the process alive.
   */
  shutdown(): void {
    for (const s of [...this.#sessions.values()]) this.#destroy(s, DisconnectReason.PEER_APP_EXIT);
    this.#requests.refuseAll();
    this.#abilities.clear();
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
    this.#abilities.checkContext(context);
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
    const reg = this.#abilities.ofContext(s.context)!;
    const hello = callerHello(reg.info, s.peer, s.options);
    const started = this.#rt.host.now();
    const result = s.connect(
      (port) => {
        const open = (d: DeviceSurface) =>
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
    const inc = this.#requests.get(token);
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
    const inc = this.#requests.get(token);
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
    checkEventType(type);
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
    checkEventType(type);
    this.#session(sessionId, `stop listening for "${type}"`).listen(type, undefined);
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
    const value = checkData(data);
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
    const q = checkImage(image, quality);
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
    return this.#media.createStream(sessionId, param);
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
    return this.#media.getSurfaceId(streamId, param);
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
    this.#media.setSurfaceId(streamId, surfaceId, param);
  }

  /**
   * Change rotation and flip: a source tells its sink, a sink applies them.
   *
   * @param streamId The stream.
   * @param param The parameters.
   * @throws {ParameterError} 401 for a bad argument.
   */
  updateSurfaceParam(streamId: number, param: SurfaceParam): void {
    this.#media.updateSurfaceParam(streamId, param);
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
    this.#media.startStream(streamId);
  }

  /**
   * Stop a stream.
   *
   * @param streamId The stream.
   * @throws {ParameterError} 401 for a bad or unknown id.
   */
  stopStream(streamId: number): void {
    this.#media.stopStream(streamId);
  }

  /**
   * Destroy a stream.
   *
   * @param streamId The stream.
   * @throws {ParameterError} 401 for a bad or unknown id.
   */
  destroyStream(streamId: number): void {
    this.#media.destroyStream(streamId);
  }

  /**
   * linkweave extension: what a stream did (frames sent and dropped by a source).
   *
   * @param streamId The stream.
   * @returns Its counters.
   */
  streamStats(streamId: number): { sent: number; dropped: number; received: number } {
    return this.#media.streamStats(streamId);
  }
}

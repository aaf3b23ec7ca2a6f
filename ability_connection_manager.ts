/**
 * `abilityConnectionManager` (OpenHarmony `@ohos.distributedsched.abilityConnectionManager`,
 * public and system API) for Deno, Bun and Node: collaboration sessions
 * between application abilities on two devices, with texts, data, images
 * and streams, over the device's one link per peer. Import it as
 * `import { abilityConnectionManager } from "@linkweave/linkweave"`.
 *
 * An application registers its ability ({@linkcode UIAbility}) with
 * {@linkcode registerAbility}; `ability.context` is then the context
 * sessions are created with, and peers' collaboration requests reach the
 * ability's `onCollaborate`. The process runs its device embedded, shared
 * with `linkEnhance` and configured the same way (`configure` or
 * `LINKWEAVE_*`, `docs/config.md`). `docs/ability-connection.md` has the
 * rules, limits and the differences from OpenHarmony.
 *
 * @example Two devices in one process: a collaboration and a message
 * ```ts
 * import assert from "node:assert/strict";
 * const b = createDevice({ deviceId: "02:00:00:00:00:B1", port: 0, discovery: "off" });
 * const port = (await b.runtime()).port;
 * const a = createDevice({
 *   deviceId: "02:00:00:00:00:A1", port: 0, discovery: "off",
 *   peers: [`02:00:00:00:00:B1@127.0.0.1:${port}`],
 * });
 * let resolve!: (msg: string) => void;
 * const got = new Promise<string>((r) => resolve = r);
 * class Sink extends UIAbility {
 *   onCollaborate(want: Record<string, unknown>): number {
 *     const p = want["ohos.extra.param.key.supportCollaborateIndex"] as Record<string, unknown>;
 *     const id = b.abilityConnectionManager.createAbilityConnectionSession(
 *       "demo", this.context, p["PeerInfo"] as PeerInfo, p["ConnectOption"] as ConnectOptions);
 *     b.abilityConnectionManager.on("receiveMessage", id, (info) => resolve(info.msg!));
 *     void b.abilityConnectionManager.acceptConnect(id, p["ohos.dms.collabToken"] as string);
 *     return AbilityConstant.CollaborateResult.ACCEPT;
 *   }
 * }
 * const sink = new Sink();
 * await b.abilityConnectionManager.registerAbility(sink, {
 *   bundleName: "com.example.demo", moduleName: "entry", abilityName: "EntryAbility" });
 * const source = new UIAbility();
 * await a.abilityConnectionManager.registerAbility(source, {
 *   bundleName: "com.example.demo", moduleName: "entry", abilityName: "EntryAbility" });
 * const m = a.abilityConnectionManager;
 * const id = m.createAbilityConnectionSession("demo", source.context, {
 *   deviceId: "02:00:00:00:00:B1", bundleName: "com.example.demo",
 *   moduleName: "entry", abilityName: "EntryAbility" }, {});
 * assert.equal(id, 100);
 * assert.equal((await m.connect(id)).isConnected, true);
 * await m.sendMessage(id, "hello");
 * assert.equal(await got, "hello");
 * await a.close();
 * await b.close();
 * ```
 *
 * @module
 */
import type { AbortOptions } from "./core/abort.ts";
import type { AbilityRegistration } from "./core/ability/mod.ts";
import type { UIAbility, UIAbilityContext } from "./core/ability/ability.ts";
import type { PixelMap } from "./core/ability/pixel_map.ts";
import type {
  CollaborateEventInfo,
  ConnectOptions,
  ConnectResult,
  EventCallbackInfo,
  PeerInfo,
  StreamParam,
  SurfaceParam,
} from "./core/ability/types.ts";
import { processDevice } from "./device.ts";

export {
  CHUNK_BYTES,
  COLLAB_TIMEOUT,
  CollaborateEventType,
  CollaborationKeys,
  CollaborationValues,
  ConnectErrorCode,
  DEFAULT_BITRATE,
  DEFAULT_IMAGE_QUALITY,
  DisconnectReason,
  FlipOptions,
  MAX_BITRATE,
  MAX_DATA_BYTES,
  MAX_FRAME_BYTES,
  MAX_MESSAGE_BYTES,
  MIN_BITRATE,
  RECEIVE_BUDGET,
  StartOptionParams,
  StreamRole,
  VideoPixelFormat,
} from "./core/ability/types.ts";
export type {
  CollaborateEventInfo,
  ConnectOptions,
  ConnectResult,
  EventCallbackInfo,
  EventType,
  PeerInfo,
  StreamParam,
  SurfaceParam,
} from "./core/ability/types.ts";
export { AbilityConstant, UIAbility, UIAbilityContext } from "./core/ability/ability.ts";
export type { AbilityCallbacks, AbilityInfo, Want } from "./core/ability/ability.ts";
export { AbilityConnectionManager, LINGER_MS } from "./core/ability/mod.ts";
export type { AbilityRegistration } from "./core/ability/mod.ts";
export type { AbortOptions } from "./core/abort.ts";
export * as surface from "./core/ability/surface.ts";
export { configure, createDevice } from "./device.ts";
export type { Device } from "./device.ts";

function api() {
  return processDevice().abilityConnectionManager;
}

/**
 * Register an ability with the process's device: it gets its `context`,
 * `onCreate` is called, the device starts, and peers' collaboration
 * requests for it reach its `onCollaborate`. It keeps the process alive
 * until `context.terminateSelf()`.
 *
 * @param ability The instance.
 * @param info Its bundle, module and ability names.
 * @returns When the device runs and answers for it.
 * @throws {TypeError} 401 for a bad argument or an ability registered twice.
 */
export function registerAbility(ability: UIAbility, info: AbilityRegistration): Promise<void> {
  return api().registerAbility(ability, info);
}

/**
 * Create a collaboration session with a peer ability.
 *
 * @param serviceName The service name, the same on both sides (at most 256 characters).
 * @param context The local ability's context (`ability.context`).
 * @param peerInfo The peer ability (`deviceId` is its network id).
 * @param connectOptions The options.
 * @returns The session id: 100, then 101, ...
 * @throws {TypeError} 401 for a bad argument.
 */
export function createAbilityConnectionSession(
  serviceName: string,
  context: UIAbilityContext,
  peerInfo: PeerInfo,
  connectOptions: ConnectOptions,
): number {
  return api().createAbilityConnectionSession(serviceName, context, peerInfo, connectOptions);
}

/**
 * Destroy a session; a connected one is disconnected first.
 *
 * @param sessionId The session.
 * @throws {TypeError} 401 for a bad or unknown id.
 */
export function destroyAbilityConnectionSession(sessionId: number): void {
  api().destroyAbilityConnectionSession(sessionId);
}

/**
 * The peer application of a session.
 *
 * @param sessionId The session.
 * @returns Its peer, or `undefined` when there is no such session.
 * @throws {TypeError} 401 for a non-integer id.
 */
export function getPeerInfoById(sessionId: number): PeerInfo | undefined {
  return api().getPeerInfoById(sessionId);
}

/**
 * Connect a session: the peer's ability gets `onCollaborate`, then accepts
 * or rejects. A failure resolves with `isConnected: false` and an
 * `errorCode` (`ConnectErrorCode`); no answer within 10 s is
 * `SYSTEM_INTERNAL_ERROR`.
 *
 * linkweave extension: `options.signal` gives the attempt up; the promise
 * then rejects with the signal's reason (`docs/ability-connection.md`).
 *
 * @param sessionId The session.
 * @param options `signal` (a linkweave extension).
 * @returns The outcome.
 * @throws {TypeError} 401 for a non-integer id or malformed options.
 */
export function connect(sessionId: number, options?: AbortOptions): Promise<ConnectResult> {
  return api().connect(sessionId, options);
}

/**
 * Accept a collaboration request (in `onCollaborate`).
 *
 * @param sessionId The session created for it.
 * @param token The request's `"ohos.dms.collabToken"`.
 * @returns When accepted; rejects (401) when no request with that token waits.
 * @throws {TypeError} 401 for a bad argument.
 */
export function acceptConnect(sessionId: number, token: string): Promise<void> {
  return api().acceptConnect(sessionId, token);
}

/**
 * Reject a collaboration request: the caller's `connect` resolves with
 * `PEER_APP_REJECTED` and this reason.
 *
 * @param token The request's `"ohos.dms.collabToken"`.
 * @param reason Why.
 * @throws {TypeError} 401 for a bad argument or a token no request waits with.
 */
export function reject(token: string, reason: string): void {
  api().reject(token, reason);
}

/**
 * Disconnect a session; the peer sees `disconnect` with
 * `PEER_APP_CLOSE_COLLABORATION`. The session stays until destroyed.
 *
 * @param sessionId The session.
 * @throws {TypeError} 401 for a bad or unknown id.
 */
export function disconnect(sessionId: number): void {
  api().disconnect(sessionId);
}

/**
 * Set the callback of a session's event (one per session and event; `on`
 * replaces it).
 *
 * @param type `connect`, `disconnect`, `receiveMessage`, `receiveData`, `receiveImage` or `collaborateEvent`.
 * @param sessionId The session.
 * @param callback The callback.
 * @throws {TypeError} 401 for a bad argument or an unknown session.
 */
export function on(
  type: "connect" | "disconnect" | "receiveMessage" | "receiveData" | "receiveImage",
  sessionId: number,
  callback: (info: EventCallbackInfo) => void,
): void;
/**
 * Set the callback of a session's `collaborateEvent` (one per session and
 * event: it replaces the previous one).
 *
 * @param type `collaborateEvent`.
 * @param sessionId The session.
 * @param callback Receives the event.
 * @throws {TypeError} 401 for a bad argument or an unknown session.
 */
export function on(
  type: "collaborateEvent",
  sessionId: number,
  callback: (info: CollaborateEventInfo) => void,
): void;
export function on(
  type: string,
  sessionId: number,
  callback: ((info: EventCallbackInfo) => void) | ((info: CollaborateEventInfo) => void),
): void {
  api().on(type as "connect", sessionId, callback as (info: EventCallbackInfo) => void);
}

/**
 * Clear the callback of a session's event (whatever callback is passed).
 *
 * @param type The event.
 * @param sessionId The session.
 * @param callback Ignored.
 * @throws {TypeError} 401 for a bad type or an unknown session.
 */
export function off(
  type: "connect" | "disconnect" | "receiveMessage" | "receiveData" | "receiveImage",
  sessionId: number,
  callback?: (info: EventCallbackInfo) => void,
): void;
/**
 * Clear the callback of a session's `collaborateEvent` (whatever callback is passed).
 *
 * @param type `collaborateEvent`.
 * @param sessionId The session.
 * @param callback Ignored.
 * @throws {TypeError} 401 for a bad type or an unknown session.
 */
export function off(
  type: "collaborateEvent",
  sessionId: number,
  callback?: (info: CollaborateEventInfo) => void,
): void;
export function off(
  type: string,
  sessionId: number,
  callback?: ((info: EventCallbackInfo) => void) | ((info: CollaborateEventInfo) => void),
): void {
  api().off(type as "connect", sessionId, callback as (info: EventCallbackInfo) => void);
}

/**
 * Send a text of at most 1 KB (1024 UTF-8 bytes); texts arrive in order.
 *
 * @param sessionId The session.
 * @param msg The text.
 * @returns When queued; rejects (401) when the session is not connected.
 * @throws {TypeError} 401 for a bad argument or a longer text.
 */
export function sendMessage(sessionId: number, msg: string): Promise<void> {
  return api().sendMessage(sessionId, msg);
}

/**
 * Send bytes (at most 100 MiB); resolves once the peer has them. The
 * buffer must not change until the promise settles.
 *
 * linkweave extension: `options.signal` gives the transfer up; the promise
 * then rejects with the signal's reason, nothing more is sent and the peer
 * drops what it holds of it (`docs/ability-connection.md`).
 *
 * @param sessionId The session (created with `needSendData`).
 * @param data The bytes.
 * @param options `signal` (a linkweave extension).
 * @returns When the peer has them.
 * @throws {TypeError} 401 for a bad argument.
 */
export function sendData(
  sessionId: number,
  data: ArrayBuffer,
  options?: AbortOptions,
): Promise<void> {
  return api().sendData(sessionId, data, options);
}

/**
 * Send an image as JPEG (system API); resolves once the peer decoded it.
 *
 * @param sessionId The session.
 * @param image The image.
 * @param quality JPEG quality 0..100. @default {30}
 * @returns When the peer has it.
 * @throws {TypeError} 401 for a bad argument.
 */
export function sendImage(sessionId: number, image: PixelMap, quality?: number): Promise<void> {
  return api().sendImage(sessionId, image, quality);
}

/**
 * Create the session's stream (system API; one per session).
 *
 * @param sessionId The session.
 * @param param Name, role, bitrate.
 * @returns The stream id (1000, 1001, ...).
 * @throws {TypeError} 401 for a bad argument.
 * @throws {BusinessError} 32300003 for an unsupported bitrate, 32300004 for a color space conversion.
 */
export function createStream(sessionId: number, param: StreamParam): Promise<number> {
  return api().createStream(sessionId, param);
}

/**
 * The surface id of a source stream: write frames with `surface.getProducer(id)`.
 *
 * @param streamId A source stream.
 * @param param The frames' geometry.
 * @returns The surface id.
 * @throws {TypeError} 401 for a bad argument or a sink.
 */
export function getSurfaceId(streamId: number, param: SurfaceParam): string {
  return api().getSurfaceId(streamId, param);
}

/**
 * Show a sink stream's frames on a surface from `surface.createSurface()`.
 *
 * @param streamId A sink stream.
 * @param surfaceId The surface.
 * @param param The frames' geometry.
 * @throws {TypeError} 401 for a bad argument, a source, or an unknown surface.
 */
export function setSurfaceId(streamId: number, surfaceId: string, param: SurfaceParam): void {
  api().setSurfaceId(streamId, surfaceId, param);
}

/**
 * Change a stream's rotation and flip.
 *
 * @param streamId The stream.
 * @param param The parameters.
 * @throws {TypeError} 401 for a bad argument.
 */
export function updateSurfaceParam(streamId: number, param: SurfaceParam): void {
  api().updateSurfaceParam(streamId, param);
}

/**
 * Start a stream: a sink shows frames, a source sends them.
 *
 * @param streamId The stream.
 * @throws {TypeError} 401 for a bad argument or a missing surface.
 * @throws {BusinessError} 32300002 when the peer's sink has not started.
 */
export function startStream(streamId: number): void {
  api().startStream(streamId);
}

/**
 * Stop a stream.
 *
 * @param streamId The stream.
 * @throws {TypeError} 401 for a bad or unknown id.
 */
export function stopStream(streamId: number): void {
  api().stopStream(streamId);
}

/**
 * Destroy a stream.
 *
 * @param streamId The stream.
 * @throws {TypeError} 401 for a bad or unknown id.
 */
export function destroyStream(streamId: number): void {
  api().destroyStream(streamId);
}

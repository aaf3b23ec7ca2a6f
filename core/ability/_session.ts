/**
 * One collaboration session: its stream on the link to the peer (a `Port`),
 * its state, its event callbacks, its queue of texts and control messages,
 * its transfers (data and images) and its media stream. The manager
 * (`mod.ts`) checks the API's arguments and owns the sessions; this file
 * holds what a session does.
 *
 * What a session sends goes out in this order of priority: control messages
 * and texts, then a stream frame when the pacer lets one go, then the pieces
 * of the transfer under way until the link's send queue is full. The link
 * reports `drain` when that queue is back to half full, and the session
 * sends by the same priority again, so a frame waits behind at most half a
 * queue of transfer pieces ({@linkcode FRAME_CONGESTION}).
 *
 * @module
 */
import { ErrorCode } from "../error_codes.ts";
import { BusinessError } from "../errors.ts";
import type { DeviceHost } from "../device/host.ts";
import { Port } from "../device/driver.ts";
import { DEFAULT_SEND_QUEUE_BYTES } from "../proto/link/mod.ts";
import { TRACE, trace } from "../trace.ts";
import { onAbort } from "../abort.ts";
import type { UIAbilityContext } from "./ability.ts";
import { FramePacer } from "./_pacer.ts";
import { type ImageCodec, MAX_IMAGE_PIXELS, type PixelMap, pixelMapFromJpeg } from "./pixel_map.ts";
import { type FrameSink, type SurfaceConsumer, SurfaceProducer } from "./surface.ts";
import { Inbound, Outbound, type ReceiveBudget } from "./_transfer.ts";
import {
  CollaborateEventType,
  ConnectErrorCode,
  type ConnectResult,
  DisconnectReason,
  type EventCallbackInfo,
  type EventType,
  MAX_FRAME_BYTES,
  MAX_QUEUED_BYTES,
  type PeerInfo,
  StreamRole,
  type SurfaceParam,
} from "./types.ts";
import {
  decodeMessage,
  encodeAck,
  encodeBye,
  encodeCancel,
  encodeFrame,
  encodeHello,
  encodeRefuse,
  encodeResult,
  encodeStream,
  encodeText,
  type FrameHeader,
  type Hello,
  type Result,
  type SessionMessage,
  type StreamControl,
  TransferKind,
} from "./wire.ts";

/**
 * A frame waits (and is replaced by newer ones) while the link holds this
 * much of the session's data unsent: half the link's send queue, the level
 * at which the link reports `drain` again.
 */
export const FRAME_CONGESTION: number = DEFAULT_SEND_QUEUE_BYTES / 2;
/** Largest message a peer may send on a session's stream. */
export const SESSION_MAX_MESSAGE: number = MAX_FRAME_BYTES + 64;

/** The options a session was created with, resolved. */
export interface SessionOptions {
  /** Whether this side may `sendData` (and `sendImage`). */
  needSendData: boolean;
  /** Whether this side may create a source stream. */
  needSendStream: boolean;
  /** Whether this side may create a sink stream. */
  needReceiveStream: boolean;
  /** `StartOptionParams`. */
  startOptions: number;
  /** Extra parameters. */
  parameters: Record<string, string>;
}

/** What sessions need from their manager. */
export interface SessionContext {
  /** The machine. */
  host: DeviceHost;
  /** The receive budget of the device. */
  budget: ReceiveBudget;
  /** The JPEG codec. */
  imageCodec(): ImageCodec;
  /** Whether another session already connects these two abilities. */
  duplicate(s: Session): boolean;
  /** Keep the process alive for the linger time (queued bytes still to flush). */
  linger(): void;
  /** A stream of a session is gone. */
  forgetStream(id: number): void;
}

/** Call a user callback; what it throws is reported, not raised. */
function call<T>(cb: ((value: T) => void) | undefined, value: T): void {
  if (cb === undefined) return;
  try {
    cb(value);
  } catch (error) {
    console.error("linkweave: an event callback threw:", error);
  }
}

/**
 * A runtime failure of a session (a rejected promise), with OpenHarmony's
 * code for it, 401.
 *
 * @param message What failed.
 * @returns The error.
 */
export function failure(message: string): BusinessError {
  return new BusinessError(ErrorCode.PARAMETER_ERROR, message);
}

/** What a port reports to whoever owns it now. */
interface PortOwner {
  opened(): void;
  failed(message: string): void;
  data(bytes: Uint8Array): void;
  closed(byPeer: boolean): void;
  drain(): void;
}

/** The session's stream as the device sees it: one small object, no closures. */
export class SessionPort extends Port {
  /** Who hears its events (an incoming request until accepted, then the session). */
  owner: PortOwner;

  /** @param owner Who hears its events. */
  constructor(owner: PortOwner) {
    super();
    this.owner = owner;
    this.maxMessage = SESSION_MAX_MESSAGE;
  }

  override onOpened(): void {
    this.owner.opened();
  }

  override onRejected(code: number): void {
    this.owner.failed(`the peer refused the session's stream (${code})`);
  }

  override onFailed(_code: number, message: string): void {
    this.owner.failed(message);
  }

  override onData(data: ArrayBuffer): void {
    this.owner.data(new Uint8Array(data));
  }

  override onClosed(_reason: number, byPeer: boolean): void {
    this.owner.closed(byPeer);
  }

  override onDrain(): void {
    this.owner.drain();
  }
}

/** The state of a session. */
export type SessionState = "idle" | "connecting" | "connected";

/** A collaboration session. */
export class Session implements PortOwner {
  /** The session id. */
  readonly id: number;
  /** The local ability's context. */
  readonly context: UIAbilityContext;
  /** The peer application (`serviceName` always set). */
  readonly peer: Required<PeerInfo>;
  /** The options. */
  readonly options: SessionOptions;
  /** `idle`, `connecting` or `connected`. */
  state: SessionState = "idle";
  /** The stream of this session, once created. */
  stream: MediaStream | undefined;
  /** The name of the stream the peer's sink started, if it did. */
  peerSinkStarted: string | undefined;
  #ctx: SessionContext;
  #port: SessionPort | undefined;
  #listeners = new Map<EventType, (info: never) => void>();
  #urgent: Uint8Array[] = [];
  #urgentBytes = 0;
  #outbound = new Outbound();
  #inbound: Inbound;
  #pendingPiece: Uint8Array | undefined;
  #connecting: { resolve: (r: ConnectResult) => void; timer: unknown } | undefined;
  #held = false;
  #pumping = false;

  /**
   * @param id The session id.
   * @param init Context, peer, options and the manager's services.
   */
  constructor(
    id: number,
    init: {
      context: UIAbilityContext;
      peer: Required<PeerInfo>;
      options: SessionOptions;
      ctx: SessionContext;
    },
  ) {
    this.id = id;
    this.context = init.context;
    this.peer = init.peer;
    this.options = init.options;
    this.#ctx = init.ctx;
    this.#inbound = new Inbound(init.ctx.budget);
  }

  /** Whether it is connecting or connected. */
  get active(): boolean {
    return this.state !== "idle";
  }

  // ------------------------------------------------------------ listeners

  /**
   * Set the callback of an event (replacing the previous one).
   *
   * @param type The event.
   * @param cb The callback, or `undefined` to clear it.
   */
  listen(type: EventType, cb: ((info: never) => void) | undefined): void {
    if (cb === undefined) this.#listeners.delete(type);
    else this.#listeners.set(type, cb);
  }

  /** Deliver an event in a microtask, after reactions to what came before it. */
  #emit(type: EventType, info: EventCallbackInfo | { eventType: number; eventMsg?: string }): void {
    if (TRACE) trace(`ability.${type}`, { sessionId: this.id, ...describe(info) });
    queueMicrotask(() =>
      call(this.#listeners.get(type) as ((i: unknown) => void) | undefined, info)
    );
  }

  // ------------------------------------------------------------ connect (caller)

  /**
   * Connect as the caller: open the stream and send the collaboration request.
   *
   * @param open Opens the session's stream (the driver's `connect`).
   * @param hello The request.
   * @param timeout How long the whole collaboration may take (ms).
   * @returns The outcome.
   */
  connect(
    open: (port: SessionPort) => void,
    hello: Hello,
    timeout: number,
  ): Promise<ConnectResult> {
    if (this.active || this.#ctx.duplicate(this)) {
      return Promise.resolve({
        isConnected: false,
        errorCode: ConnectErrorCode.CONNECTED_SESSION_EXISTS,
        reason: "",
      });
    }
    this.state = "connecting";
    this.#hold();
    return new Promise((resolve) => {
      const timer = this.#ctx.host.setTimer(
        () => this.#connectFailed(ConnectErrorCode.SYSTEM_INTERNAL_ERROR, "", "no answer in time"),
        timeout,
      );
      this.#connecting = { resolve, timer };
      this.#port = new SessionPort(this);
      this.#pendingHello = hello;
      open(this.#port);
    });
  }

  #pendingHello: Hello | undefined;

  /** The stream is open: send the request. */
  opened(): void {
    const hello = this.#pendingHello;
    this.#pendingHello = undefined;
    if (hello === undefined || this.state !== "connecting") return;
    this.#queue(encodeHello(hello));
  }

  /** The stream could not be opened. */
  failed(message: string): void {
    this.#connectFailed(ConnectErrorCode.SYSTEM_INTERNAL_ERROR, "", message);
  }

  #connectFailed(errorCode: number, reason: string, why: string): void {
    const c = this.#connecting;
    if (c === undefined) return;
    trace("ability.connectFailed", { sessionId: this.id, errorCode, reason, why });
    this.#connecting = undefined;
    this.#ctx.host.clearTimer(c.timer);
    this.#reset(true);
    c.resolve({ isConnected: false, errorCode, reason });
  }

  #connected(): void {
    const c = this.#connecting;
    this.state = "connected";
    if (c !== undefined) {
      this.#connecting = undefined;
      this.#ctx.host.clearTimer(c.timer);
    }
    trace("ability.connected", { sessionId: this.id, peer: this.peer.deviceId });
    this.#emit("connect", { sessionId: this.id });
    c?.resolve({ isConnected: true, reason: "" });
  }

  // ------------------------------------------------------------ accept (callee)

  /**
   * Accept an incoming request with this session.
   *
   * @param incoming The request.
   * @returns When the answer is queued.
   */
  accept(incoming: Incoming): Promise<void> {
    if (this.active) {
      return Promise.reject(failure(`Cannot accept: session ${this.id} is already ${this.state}`));
    }
    if (this.#ctx.duplicate(this)) {
      incoming.answer({ errorCode: ConnectErrorCode.CONNECTED_SESSION_EXISTS, reason: "" });
      return Promise.reject(
        failure(`Cannot accept: another session already connects these two abilities`),
      );
    }
    const port = incoming.takePort(this);
    if (port === undefined) {
      return Promise.reject(failure("Cannot accept: the peer gave up waiting"));
    }
    this.#port = port;
    this.state = "connecting";
    this.#hold();
    this.#queue(encodeResult({}));
    this.#connected();
    return Promise.resolve();
  }

  // ------------------------------------------------------------ sending

  #queue(bytes: Uint8Array): void {
    this.#urgent.push(bytes);
    this.#urgentBytes += bytes.length;
    this.pump();
  }

  /**
   * Queue a text.
   *
   * @param text The text (already checked).
   * @returns When queued.
   */
  sendMessage(text: string): Promise<void> {
    if (this.state !== "connected") {
      return Promise.reject(failure(`Cannot send message: session ${this.id} is not connected`));
    }
    const bytes = encodeText(text);
    if (this.#urgentBytes + bytes.length > MAX_QUEUED_BYTES) {
      return Promise.reject(
        failure(
          `Cannot send message: session ${this.id} has ${this.#urgentBytes} bytes queued already`,
        ),
      );
    }
    this.#queue(bytes);
    return Promise.resolve();
  }

  /**
   * Send bytes or an image; resolves when the peer has it.
   *
   * @param kind `TransferKind`.
   * @param bytes The bytes (not copied: they must not change until it settles).
   * @param signal Gives the transfer up: it rejects with the signal's reason,
   *   is sent no further, and the peer drops what it holds of it.
   * @returns When the peer acknowledged it.
   */
  transfer(kind: number, bytes: Uint8Array, signal?: AbortSignal): Promise<void> {
    const what = kind === TransferKind.IMAGE ? "image" : "data";
    if (this.state !== "connected") {
      return Promise.reject(failure(`Cannot send ${what}: session ${this.id} is not connected`));
    }
    return new Promise((resolve, reject) => {
      const id = this.#outbound.nextId();
      const unabort = onAbort(signal, (reason) => {
        if (this.#giveUp(id)) reject(reason);
      });
      this.#outbound.push({
        id,
        kind,
        bytes,
        settle: (error) => {
          unabort();
          if (error === undefined) {
            resolve();
          } else {
            this.#emit("collaborateEvent", {
              eventType: CollaborateEventType.SEND_FAILURE,
              eventMsg: error.message,
            });
            reject(error);
          }
        },
      });
      this.pump();
    });
  }

  /** Give a transfer up; whether it was still queued or awaited. */
  #giveUp(id: number): boolean {
    const gone = this.#outbound.cancel(id);
    if (gone === undefined) return false;
    if (gone.head) this.#pendingPiece = undefined;
    trace("ability.transferAborted", { sessionId: this.id, id, started: gone.started });
    // The peer holds part of it: tell it to drop that (after the pieces it has).
    if (gone.started && this.state === "connected") this.#queue(encodeCancel(id));
    else this.pump();
    return true;
  }

  /** Send what the link takes now, by priority. */
  pump(): void {
    const port = this.#port;
    if (port === undefined || this.#pumping) return;
    this.#pumping = true;
    try {
      while (this.#urgent.length > 0) {
        if (!port.send(this.#urgent[0])) return;
        this.#urgentBytes -= this.#urgent.shift()!.length;
      }
      if (this.state !== "connected") return;
      this.stream?.pumpFrames(port);
      for (;;) {
        const piece = this.#pendingPiece ?? this.#outbound.peek();
        if (piece === undefined) return;
        if (!port.send(piece)) {
          this.#pendingPiece = piece;
          return;
        }
        this.#pendingPiece = undefined;
        this.#outbound.sent();
      }
    } finally {
      this.#pumping = false;
    }
  }

  /** The send queue drained. */
  drain(): void {
    this.pump();
  }

  /** @internal Queue a control message (streams). */
  control(bytes: Uint8Array): void {
    if (this.state === "connected") this.#queue(bytes);
  }

  /** @internal The link's queued bytes for this session. */
  get bufferedAmount(): number {
    return this.#port?.bufferedAmount ?? 0;
  }

  // ------------------------------------------------------------ receiving

  /** A message arrived on the stream. */
  data(bytes: Uint8Array): void {
    const m = decodeMessage(bytes);
    if (m === undefined) {
      this.#violation(`a malformed message (type ${bytes[0]}, ${bytes.length} bytes)`);
      return;
    }
    if (this.state === "connecting") {
      if (m.type !== "result") {
        this.#violation(`a "${m.type}" message before its answer`);
        return;
      }
      this.#answered(m.result);
      return;
    }
    if (this.state !== "connected") return;
    this.#message(m);
  }

  #answered(r: Result): void {
    if (r.errorCode === undefined) {
      this.#connected();
      this.pump();
    } else {
      this.#connectFailed(r.errorCode, r.reason ?? "", "refused by the peer application");
    }
  }

  #message(m: SessionMessage): void {
    switch (m.type) {
      case "message":
        this.#emit("receiveMessage", { sessionId: this.id, msg: m.text });
        return;
      case "begin": {
        const r = this.#inbound.begin(m.id, m.kind, m.total);
        this.#inboundResult(r);
        return;
      }
      case "chunk":
        this.#inboundResult(this.#inbound.chunk(m.id, m.bytes));
        return;
      case "ack":
        this.#outbound.settle(m.id, undefined);
        this.pump();
        return;
      case "refuse":
        this.#outbound.settle(m.id, failure(`The peer refused the transfer: ${m.reason}`));
        this.pump();
        return;
      case "cancel":
        if (this.#inbound.cancel(m.id)) {
          trace("ability.transferCancelled", { sessionId: this.id, id: m.id });
        }
        return;
      case "stream":
        this.#streamControl(m.control);
        return;
      case "frame":
        this.stream?.frame(m.header, m.bytes);
        return;
      case "bye":
        this.#ended(m.reason);
        return;
      default:
        this.#violation(`a "${m.type}" message on a connected session`);
    }
  }

  #inboundResult(r: ReturnType<Inbound["begin"]>): void {
    if (r === undefined) return;
    switch (r.type) {
      case "refuse":
        trace("ability.refused", { sessionId: this.id, id: r.id, reason: r.reason });
        this.#queue(encodeRefuse(r.id, r.reason));
        return;
      case "error":
        this.#violation(r.message);
        return;
      case "done":
        if (r.kind === TransferKind.DATA) {
          const data = r.bytes.buffer as ArrayBuffer;
          this.#queue(encodeAck(r.id));
          this.#emit("receiveData", { sessionId: this.id, data });
          return;
        }
        this.#image(r.id, r.bytes);
    }
  }

  #image(id: number, jpeg: Uint8Array): void {
    let image: PixelMap;
    try {
      image = pixelMapFromJpeg(this.#ctx.imageCodec().decodeJpeg(jpeg, MAX_IMAGE_PIXELS));
    } catch (e) {
      this.#queue(encodeRefuse(id, `cannot decode the image: ${(e as Error).message}`));
      return;
    }
    this.#queue(encodeAck(id));
    this.#emit("receiveImage", { sessionId: this.id, image });
  }

  #streamControl(c: StreamControl): void {
    if (c.op === "start") this.peerSinkStarted = c.name;
    else if (c.op === "stop" || c.op === "destroy") {
      if (this.peerSinkStarted === c.name) this.peerSinkStarted = undefined;
    }
    this.stream?.peerControl(c);
  }

  /** The peer broke the session's protocol: end this session only. */
  #violation(why: string): void {
    this.#ctx.host.warn(
      `linkweave: ${this.peer.deviceId} sent ${why} on session ${this.id}; session closed`,
    );
    if (this.state === "connecting") {
      this.#connectFailed(ConnectErrorCode.SYSTEM_INTERNAL_ERROR, "", why);
      return;
    }
    this.#ended(DisconnectReason.NETWORK_DISCONNECTED);
  }

  /** The stream closed under us. */
  closed(byPeer: boolean): void {
    this.#port = undefined;
    if (this.state === "connecting") {
      this.#connectFailed(ConnectErrorCode.SYSTEM_INTERNAL_ERROR, "", "the stream closed");
      return;
    }
    this.#ended(byPeer ? DisconnectReason.PEER_APP_EXIT : DisconnectReason.NETWORK_DISCONNECTED);
  }

  /** The peer ended the session (or it was lost): report `disconnect`. */
  #ended(reason: number): void {
    if (this.state !== "connected") return;
    this.#reset(true);
    trace("ability.disconnected", { sessionId: this.id, reason });
    this.#emit("disconnect", { sessionId: this.id, reason });
  }

  /**
   * End the session from this side: tell the peer why, flush, close.
   *
   * @param reason The `DisconnectReason` the peer reports.
   */
  disconnect(reason: number): void {
    if (this.state === "connecting" && this.#connecting !== undefined) {
      this.#connectFailed(
        ConnectErrorCode.SYSTEM_INTERNAL_ERROR,
        "",
        "disconnected while connecting",
      );
      return;
    }
    if (this.state !== "connected") return;
    this.#queue(encodeBye(reason));
    this.#reset(true);
    this.#ctx.linger();
  }

  /** Back to idle: close the stream, fail transfers, stop the stream, release the process. */
  #reset(closePort: boolean): void {
    this.state = "idle";
    this.#pendingHello = undefined;
    this.#pendingPiece = undefined;
    const port = this.#port;
    this.#port = undefined;
    if (closePort && port !== undefined) {
      // What is queued still goes (the goodbye), then the stream closes.
      port.owner = DETACHED;
      port.close();
    }
    this.#urgent = [];
    this.#urgentBytes = 0;
    this.#outbound.fail(failure(`Session ${this.id} disconnected`));
    this.#inbound.abort();
    this.peerSinkStarted = undefined;
    this.stream?.sessionEnded();
    if (this.#held) {
      this.#held = false;
      this.#ctx.host.release();
    }
  }

  #hold(): void {
    if (this.#held) return;
    this.#held = true;
    this.#ctx.host.hold();
  }

  /** @internal The session's services (for its stream). */
  get ctx(): SessionContext {
    return this.#ctx;
  }

  /** @internal The port, while connected. */
  get port(): SessionPort | undefined {
    return this.#port;
  }
}

/** An owner that ignores everything (a port whose session let go of it). */
const DETACHED: PortOwner = {
  opened() {},
  failed() {},
  data() {},
  closed() {},
  drain() {},
};

function describe(info: object): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(info)) {
    if (k === "sessionId") continue;
    out[k] = v instanceof ArrayBuffer ? v.byteLength : typeof v === "object" ? "object" : v;
  }
  return out;
}

/** What an incoming request waits for: the app's `acceptConnect` or `reject`. */
export class Incoming implements PortOwner {
  /** The peer device. */
  readonly peerId: string;
  /** The request, once it arrived. */
  hello: Hello | undefined;
  #port: SessionPort | undefined;
  #onHello: (inc: Incoming) => void;
  #onGone: (inc: Incoming) => void;

  /**
   * @param peerId The peer device.
   * @param handlers What to do when the request arrives and when it is gone.
   */
  constructor(
    peerId: string,
    handlers: { hello: (inc: Incoming) => void; gone: (inc: Incoming) => void },
  ) {
    this.peerId = peerId;
    this.#onHello = handlers.hello;
    this.#onGone = handlers.gone;
    this.#port = new SessionPort(this);
  }

  /** The stream's port (for the driver's acceptor). */
  get port(): SessionPort {
    return this.#port!;
  }

  /** Whether the stream is still there and unanswered. */
  get waiting(): boolean {
    return this.#port !== undefined;
  }

  /**
   * Answer with a refusal and close.
   *
   * @param result The refusal.
   */
  answer(result: Result): void {
    const port = this.#port;
    if (port === undefined) return;
    this.#port = undefined;
    port.owner = DETACHED;
    port.send(encodeResult(result));
    port.close();
    this.#onGone(this);
  }

  /**
   * Hand the stream to the accepting session.
   *
   * @param session The session.
   * @returns The port, or `undefined` when the stream is gone.
   */
  takePort(session: Session): SessionPort | undefined {
    const port = this.#port;
    if (port === undefined) return undefined;
    this.#port = undefined;
    port.owner = session;
    this.#onGone(this);
    return port;
  }

  opened(): void {}
  failed(): void {}
  drain(): void {}

  data(bytes: Uint8Array): void {
    const m = decodeMessage(bytes);
    if (this.hello !== undefined || m?.type !== "hello") {
      this.answer({ errorCode: ConnectErrorCode.SYSTEM_INTERNAL_ERROR, reason: "" });
      return;
    }
    this.hello = m.hello;
    this.#onHello(this);
  }

  closed(): void {
    if (this.#port === undefined) return;
    this.#port = undefined;
    this.#onGone(this);
  }
}

/** A session's media stream (system API): source or sink. */
export class MediaStream implements FrameSink {
  /** The stream id. */
  readonly id: number;
  /** Its name. */
  readonly name: string;
  /** `StreamRole`. */
  readonly role: number;
  /** Bits per second (source). */
  readonly bitrate: number;
  /** The session. */
  readonly session: Session;
  /** The surface parameters, once set. */
  param: Required<SurfaceParam> | undefined;
  /** The source's producer surface. */
  producer: SurfaceProducer | undefined;
  /** The sink's display surface. */
  consumer: SurfaceConsumer | undefined;
  /** Whether `startStream` was called (and not `stopStream`). */
  started = false;
  /** Frames the source dropped (replaced by newer ones, or written while not sending). */
  dropped = 0;
  /** Frames the source sent. */
  sent = 0;
  #pacer: FramePacer<Uint8Array> | undefined;
  #seq = 0;
  #timer: unknown;
  #timerAt = Infinity;
  #peerParam = { rotation: 0, flip: -1 };

  /**
   * @param id The stream id.
   * @param init Name, role, bitrate, session.
   */
  constructor(id: number, init: { name: string; role: number; bitrate: number; session: Session }) {
    this.id = id;
    this.name = init.name;
    this.role = init.role;
    this.bitrate = init.bitrate;
    this.session = init.session;
  }

  /**
   * The source's surface (made once).
   *
   * @param param The geometry.
   * @returns The surface id.
   */
  surfaceFor(param: Required<SurfaceParam>): string {
    this.param = param;
    this.producer ??= new SurfaceProducer(this);
    return this.producer.surfaceId;
  }

  /** A frame was written to the source's surface. */
  write(data: Uint8Array, timestamp: number): void {
    const p = this.param!;
    const seq = this.#seq++;
    if (!this.started || this.session.peerSinkStarted !== this.name) {
      this.dropped++;
      return;
    }
    const header: FrameHeader = {
      seq,
      timestamp,
      width: p.width,
      height: p.height,
      format: p.format,
      rotation: p.rotation,
      flip: p.flip,
    };
    const host = this.session.ctx.host;
    this.#pacer ??= new FramePacer({ bitrate: this.bitrate, now: host.now() });
    const msg = encodeFrame(header, data);
    if (this.#pacer.offer(msg, msg.length, host.now()) !== undefined) this.dropped++;
    this.session.pump();
  }

  /** @internal Send the waiting frame if the pacer and the queue allow; arm the timer otherwise. */
  pumpFrames(port: SessionPort): void {
    const pacer = this.#pacer;
    if (pacer === undefined) return;
    const host = this.session.ctx.host;
    const now = host.now();
    // While congested no timer is needed: the link's drain calls the pump.
    if (port.bufferedAmount >= FRAME_CONGESTION) return;
    const frame = pacer.poll(now, false);
    if (frame !== undefined) {
      if (port.send(frame)) this.sent++;
      else this.dropped++;
    }
    const at = pacer.nextTime(host.now());
    if (at === undefined || at >= this.#timerAt) return;
    host.clearTimer(this.#timer);
    this.#timerAt = at;
    this.#timer = host.setTimer(() => {
      this.#timerAt = Infinity;
      this.session.pump();
    }, Math.max(1, at - host.now()));
  }

  /** A frame arrived (sink). */
  frame(h: FrameHeader, bytes: Uint8Array): void {
    if (this.role !== StreamRole.SINK || !this.started || this.consumer === undefined) return;
    this.consumer.deliver({
      seq: h.seq,
      timestamp: h.timestamp,
      data: bytes,
      width: h.width,
      height: h.height,
      format: h.format,
      rotation: this.#peerParam.rotation || h.rotation,
      flip: this.#peerParam.flip >= 0 ? this.#peerParam.flip : h.flip,
    });
  }

  /** The peer's stream said something. */
  peerControl(c: StreamControl): void {
    if (c.op === "param" && c.param !== undefined) this.#peerParam = c.param;
  }

  /** Start (and tell the peer, for a sink). */
  start(): void {
    this.started = true;
    if (this.role === StreamRole.SINK) {
      this.session.control(encodeStream({ op: "start", name: this.name }));
    }
  }

  /** Stop (and tell the peer, for a sink). */
  stop(): void {
    if (!this.started) return;
    this.started = false;
    if (this.#pacer?.clear() !== undefined) this.dropped++;
    if (this.role === StreamRole.SINK) {
      this.session.control(encodeStream({ op: "stop", name: this.name }));
    }
  }

  /**
   * New rotation and flip: a source tells the sink; a sink applies them.
   *
   * @param param The parameters.
   */
  update(param: Required<SurfaceParam>): void {
    if (this.role === StreamRole.SOURCE) {
      this.param = { ...(this.param ?? param), rotation: param.rotation, flip: param.flip };
      this.session.control(
        encodeStream({
          op: "param",
          name: this.name,
          param: { rotation: param.rotation, flip: param.flip },
        }),
      );
    } else {
      this.#peerParam = { rotation: param.rotation, flip: param.flip };
    }
  }

  /** The session ended: nothing more is sent. */
  sessionEnded(): void {
    this.started = false;
    this.#pacer?.clear();
    this.#cancelTimer();
  }

  /** Destroy: tell the peer, release the surface. */
  destroy(): void {
    if (this.role === StreamRole.SINK && this.started) {
      this.session.control(encodeStream({ op: "destroy", name: this.name }));
    }
    this.started = false;
    this.#pacer?.clear();
    this.#cancelTimer();
    this.producer?.release();
    this.producer = undefined;
    this.consumer = undefined;
    if (this.session.stream === this) this.session.stream = undefined;
    this.session.ctx.forgetStream(this.id);
  }

  #cancelTimer(): void {
    this.session.ctx.host.clearTimer(this.#timer);
    this.#timer = undefined;
    this.#timerAt = Infinity;
  }
}

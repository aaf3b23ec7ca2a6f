/**
 * One collaboration session: its stream on the link to the peer (a `Port`),
 * its state, its event callbacks, its queue of texts and control messages,
 * its transfers (data and images) and its media stream. The manager
 * (`mod.ts`) checks the API's arguments and owns the sessions; this file
 * holds what a session does. Its parts live beside it: its options, context
 * and port in `_session_port.ts`, an incoming request in `_incoming.ts`, its
 * media stream in `_media_stream.ts` (all re-exported here).
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
import { TRACE, trace } from "../trace.ts";
import { onAbort } from "../abort.ts";
import type { UIAbilityContext } from "./ability.ts";
import { MAX_IMAGE_PIXELS, type PixelMap, pixelMapFromJpeg } from "./pixel_map.ts";
import { Inbound, Outbound } from "./_transfer.ts";
import {
  CollaborateEventType,
  ConnectErrorCode,
  type ConnectResult,
  DisconnectReason,
  type EventCallbackInfo,
  type EventType,
  MAX_QUEUED_BYTES,
  type PeerInfo,
} from "./types.ts";
import {
  decodeMessage,
  encodeAck,
  encodeBye,
  encodeCancel,
  encodeHello,
  encodeRefuse,
  encodeResult,
  encodeText,
  type Hello,
  type Result,
  type SessionMessage,
  type StreamControl,
  TransferKind,
  WIRE_VERSION,
} from "./wire.ts";
import {
  DETACHED,
  failure,
  type PortOwner,
  type SessionContext,
  type SessionOptions,
  SessionPort,
} from "./_session_port.ts";
import type { Incoming } from "./_incoming.ts";
import type { MediaStream } from "./_media_stream.ts";

export {
  failure,
  FRAME_CONGESTION,
  SESSION_MAX_MESSAGE,
  type SessionContext,
  type SessionOptions,
  SessionPort,
} from "./_session_port.ts";
export { Incoming } from "./_incoming.ts";
export { MediaStream } from "./_media_stream.ts";

/** Call a user callback; what it throws is reported, not raised. */
function call<T>(cb: ((value: T) => void) | undefined, value: T): void {
  if (cb === undefined) return;
  try {
    cb(value);
  } catch (error) {
    console.error("linkweave: an event callback threw:", error);
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
  /** The transfer piece whose bytes are the next message (a `piece` header came). */
  #piece: { id: number; length: number } | undefined;
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
    this.#outbound.split((incoming.hello?.wire ?? 1) >= 2);
    this.#queue(encodeResult({ wire: WIRE_VERSION }));
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
      // The bytes of a piece whose header went come next, before anything else.
      if (this.#outbound.owed) {
        if (!port.send(this.#outbound.peek()!)) return;
        this.#pendingPiece = undefined;
        this.#outbound.sent();
      }
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
    const piece = this.#piece;
    if (piece !== undefined) {
      this.#piece = undefined;
      if (bytes.length !== piece.length) {
        this.#violation(`a ${bytes.length}-byte piece announced as ${piece.length} bytes`);
        return;
      }
      this.#inboundResult(this.#inbound.chunk(piece.id, bytes));
      return;
    }
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
      this.#outbound.split((r.wire ?? 1) >= 2);
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
      case "piece":
        this.#piece = { id: m.id, length: m.length };
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
    this.#piece = undefined;
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

function describe(info: object): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(info)) {
    if (k === "sessionId") continue;
    out[k] = v instanceof ArrayBuffer ? v.byteLength : typeof v === "object" ? "object" : v;
  }
  return out;
}

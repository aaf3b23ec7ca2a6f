/**
 * A session's media stream (system API), source or sink: the source's
 * producer surface, its frame pacer and the frames it sends; the sink's
 * display surface and the frames it shows; the stream control messages
 * (start, stop, param, destroy) between the two sides.
 *
 * @module
 */
import { FramePacer } from "./_pacer.ts";
import { type FrameSink, type SurfaceConsumer, SurfaceProducer } from "./surface.ts";
import { StreamRole, type SurfaceParam } from "./types.ts";
import { encodeFrame, encodeStream, type FrameHeader, type StreamControl } from "./wire.ts";
import { FRAME_CONGESTION, type SessionPort } from "./_session_port.ts";
import type { Session } from "./_session.ts";

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

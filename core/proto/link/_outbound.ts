/**
 * The sending half of a link: stream queues, credit, and the batches of
 * frames handed to a channel (urgent frames first, then streams in turn, each
 * stream's messages numbered by its own sequence).
 *
 * @module
 */
import { FRAME_OVERHEAD, type FrameInit, FrameType } from "../frame.ts";
import { DisconnectReason } from "../../error_codes.ts";
import { type Control, controlLength, encodeControl, encodeControlInto } from "./control.ts";
import type { LinkState } from "./_state.ts";
import { QUANTUM } from "./scheduler.ts";
import type { Entry, Stream } from "./streams.ts";

const { DATA, CONTROL, CREDIT, PING, CLOSE } = FrameType;
const EMPTY = new Uint8Array(0);
const BYE = encodeControl({ op: "bye" });

/**
 * Most answers (credit, resets, refusals) a link keeps for a peer that does
 * not read them, or 16 per stream of its stream limit when that is more. A
 * peer that follows the protocol never leaves more than 8 credits per stream
 * unread (it runs out of window first); beyond the bound it is flooding us
 * with requests while refusing our answers, and its link is closed.
 */
export const MAX_UNSENT_ANSWERS = 4096;

/** A channel's view needed to build a batch. */
export interface BatchTarget {
  /** Largest frame. */
  mtu: number;
  /** Whether a ping is due on it. */
  ping: boolean;
}

/** The sending half of a link. */
export class Outbound {
  #st: LinkState;
  #scratch = new Uint8Array(0);
  #scratchUsed = 0;
  #byeSent = false;

  /** @param st The link's shared state. */
  constructor(st: LinkState) {
    this.#st = st;
  }

  /** Whether the goodbye went out. */
  get byeSent(): boolean {
    return this.#byeSent;
  }

  /**
   * Queue an entry on a stream and put it in line if it can go.
   *
   * @param s The stream.
   * @param type Frame type.
   * @param payload Bytes, or a control message encoded when sent.
   * @param final The stream is finished once this is sent.
   */
  enqueue(s: Stream, type: number, payload: Uint8Array | Control, final = false): void {
    s.push({ type, payload, final });
    if (this.sendable(s)) this.#st.scheduler.add(s);
  }

  /**
   * Whether a stream's next entry may go now (DATA needs credit and an
   * accepted stream).
   *
   * @param s The stream.
   * @returns Whether it may.
   */
  sendable(s: Stream): boolean {
    const head = s.peek();
    if (head === undefined) return false;
    if (head.type !== DATA) return true;
    if (s.state === "opening") return false;
    const len = (head.payload as Uint8Array).length;
    return s.credit >= len || s.credit >= this.#st.limits.window;
  }

  /**
   * Return credit to the peer for bytes delivered on a stream.
   *
   * @param s The stream.
   * @param n The bytes.
   */
  credit(s: Stream, n: number): void {
    s.rxLeft += n;
    this.#answer({
      type: CREDIT,
      stream: s.id,
      seq: n,
      total: 0,
      offset: 0,
      payload: EMPTY,
    });
  }

  /**
   * Tell the peer a stream is over, at once and out of turn (a reset).
   *
   * @param stream The stream id.
   * @param seq The sequence number of our next message on it.
   * @param reason Why, reported to the peer's owner.
   */
  reset(stream: number, seq: number, reason: number): void {
    const payload = new Uint8Array(4);
    new DataView(payload.buffer).setInt32(0, reason);
    this.#answer({ type: CLOSE, stream, seq, total: 4, offset: 0, payload });
  }

  /**
   * Refuse an open: before a stream exists for it (a limit was reached), or
   * once the user rejected it.
   *
   * @param stream The stream id.
   * @param code The code the opener's API reports.
   */
  refuse(stream: number, code: number): void {
    const c: Control = { op: "reject", code };
    const payload = encodeControl(c);
    this.#answer({ type: CONTROL, stream, seq: 0, total: payload.length, offset: 0, payload });
  }

  /**
   * Whether the peer left so many answers unread that nothing more it sends
   * may be read (see {@linkcode MAX_UNSENT_ANSWERS}).
   *
   * @returns The bound when it is reached, else 0.
   */
  unread(): number {
    const max = Math.max(MAX_UNSENT_ANSWERS, 16 * this.#st.limits.maxStreams);
    return this.#st.urgent.length >= max ? max : 0;
  }

  /** Queue an answer to the peer, ahead of every stream. */
  #answer(f: FrameInit): void {
    this.#st.urgent.push(f);
  }

  /**
   * The frames for one channel: urgent ones first, then streams in turn, up
   * to the batch limit; the goodbye when closing and everything went; a ping
   * when due and nothing else goes.
   *
   * @param ch The channel.
   * @returns The frames (possibly none).
   */
  batch(ch: BatchTarget): FrameInit[] {
    const st = this.#st;
    this.#scratchUsed = 0;
    const frames: FrameInit[] = st.urgent;
    st.urgent = [];
    let bytes = frames.length * FRAME_OVERHEAD;
    const { maxBatch, sendQueueBytes } = st.limits;
    const scheduler = st.scheduler;
    while (bytes < maxBatch) {
      const s = scheduler.take();
      if (s === undefined) break;
      let spent = 0;
      while (spent < QUANTUM && bytes < maxBatch && this.sendable(s)) {
        const e: Entry = s.shift()!;
        const payload = e.type === CONTROL
          ? this.#control(e.payload as Control)
          : e.payload as Uint8Array;
        const len = payload.length;
        if (e.type === DATA) {
          s.credit -= len;
          s.queued -= len;
        }
        const seq = s.txSeq;
        s.txSeq = (seq + 1) >>> 0;
        bytes += fragments(frames, ch.mtu, e.type, s.id, seq, payload);
        spent += len + FRAME_OVERHEAD;
        if (e.final) {
          // Our close or reject went out: the stream is finished here.
          st.streams.delete(s.id);
          s.state = "closed";
          s.clear();
          break;
        }
      }
      if (s.state !== "closed") {
        if (s.wantDrain && s.queued * 2 <= sendQueueBytes) {
          s.wantDrain = false;
          st.events.push({ type: "drain", stream: s.id, owner: s.owner });
        }
        if (this.sendable(s)) scheduler.add(s);
      }
    }
    if (st.state === "closing" && !this.#byeSent && scheduler.length === 0) {
      let queued = false;
      for (const s of st.streams.values()) if (s.length > 0) queued = true;
      if (!queued) {
        frames.push({
          type: CONTROL,
          stream: 0,
          seq: 0,
          total: BYE.length,
          offset: 0,
          payload: BYE,
        });
        this.#byeSent = true;
      }
    }
    if (frames.length === 0 && ch.ping) {
      frames.push({ type: PING, stream: 0, seq: 0, total: 0, offset: 0, payload: EMPTY });
    }
    return frames;
  }

  /** Encode a control message into this batch's scratch (valid until the next batch). */
  #control(c: Control): Uint8Array {
    const n = controlLength(c);
    if (this.#scratchUsed + n > this.#scratch.length) {
      // Frames of this batch keep views of the old scratch: start a new one.
      this.#scratch = new Uint8Array(Math.max(4096, 2 * n));
      this.#scratchUsed = 0;
    }
    const at = this.#scratchUsed;
    encodeControlInto(c, this.#scratch, at);
    this.#scratchUsed = at + n;
    return this.#scratch.subarray(at, at + n);
  }
}

/** The reason a CLOSE carries (its 4-byte payload), or a plain close. */
export function closeReason(payload: Uint8Array): number {
  if (payload.length < 4) return DisconnectReason.PEER_DISCONNECTED;
  return ((payload[0] << 24) | (payload[1] << 16) | (payload[2] << 8) | payload[3]) | 0;
}

/** Append one message's fragments for an MTU; returns the bytes they take. */
function fragments(
  out: FrameInit[],
  mtu: number,
  type: number,
  stream: number,
  seq: number,
  data: Uint8Array,
): number {
  const max = mtu - FRAME_OVERHEAD;
  const total = data.length;
  if (total <= max) {
    out.push({ type, stream, seq, total, offset: 0, payload: data });
    return total + FRAME_OVERHEAD;
  }
  for (let off = 0; off < total; off += max) {
    const end = Math.min(total, off + max);
    out.push({ type, stream, seq, total, offset: off, payload: data.subarray(off, end) });
  }
  return total + Math.ceil(total / max) * FRAME_OVERHEAD;
}

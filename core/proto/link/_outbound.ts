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
import type { LinkState, PartialHold, Retained } from "./_state.ts";
import type { LinkChannel } from "./_channels.ts";
import { MAX_PARTIAL, MAX_PARTIAL_BYTES, QUANTUM } from "./scheduler.ts";
import type { Entry, Stream } from "./streams.ts";

const { DATA, CONTROL, CREDIT, PING, CLOSE } = FrameType;
const EMPTY = new Uint8Array(0);
const BYE = encodeControl({ op: "bye" });
const PING_FRAME: FrameInit = {
  type: PING,
  stream: 0,
  seq: 0,
  total: 0,
  offset: 0,
  payload: EMPTY,
};

/**
 * Most answers (credit, resets, refusals) a link keeps for a peer that does
 * not read them, or 16 per stream of its stream limit when that is more. A
 * peer that follows the protocol never leaves more than 8 credits per stream
 * unread (it runs out of window first); beyond the bound it is flooding us
 * with requests while refusing our answers, and its link is closed.
 */
export const MAX_UNSENT_ANSWERS = 4096;

/** Frames for one channel write. */
export interface Batch {
  /** The frames (none when nothing is due). */
  frames: FrameInit[];
  /** Whether the streams ran out of things to send before the budget and the batch limit did. */
  appLimited: boolean;
  /**
   * Frames sent again (of a lost or suspect channel, or redundant copies),
   * in the order they are in `frames` (each one's `frame` is there itself);
   * they keep their link numbers.
   */
  resent: Retained[];
}

/**
 * What a channel may carry in a batch (a link of several channels, see
 * `_paths.ts`).
 */
export interface BatchPlan {
  /**
   * `best`: everything (the channel that delivers soonest); `other`: frames
   * sent again, answers, and bulk data from the old line when `bulk`;
   * `standby`: acknowledgements and keep-alives only.
   */
  role: "best" | "other" | "standby";
  /** (`other`) Whether bulk data may go: the better channels would take longer to drain the backlog. */
  bulk: boolean;
  /** Most new numbered frames the batch may add (the peer's window of link numbers). */
  numbers: number;
}

/** The plan of a link with one channel. */
export const SINGLE_PLAN: BatchPlan = Object.freeze({
  role: "best",
  bulk: true,
  numbers: Infinity,
});

/**
 * Most frames one stream's turn adds to a batch (a quantum of empty
 * messages): a batch stops adding streams' frames this far from its limit of
 * new link numbers.
 */
const MAX_TURN_FRAMES = Math.ceil(QUANTUM / FRAME_OVERHEAD) + 1;

/** Default largest payload of a DATA frame: a bulk message is cut into frames this size. */
export const DEFAULT_FRAME_SIZE: number = 16 * 1024;

/** The sending half of a link. */
export class Outbound {
  #st: LinkState;
  #scratch = new Uint8Array(0);
  #scratchUsed = 0;
  #byeSent = false;
  #frameSize: number;
  #resent: Retained[] = [];
  /**
   * Whether the link keeps copies of what it sends (several channels): a
   * message of several frames then keeps its slot until every frame is
   * acknowledged (see {@linkcode PartialHold}).
   */
  retaining = false;
  /** The hold of each frame of a half-sent message in this batch (while retaining). */
  readonly holds: Map<FrameInit, PartialHold> = new Map();

  /**
   * @param st The link's shared state.
   * @param frameSize Largest payload of a DATA frame.
   */
  constructor(st: LinkState, frameSize: number) {
    this.#st = st;
    this.#frameSize = frameSize;
  }

  /** Whether the goodbye went out. */
  get byeSent(): boolean {
    return this.#byeSent;
  }

  /**
   * Queue an entry on a stream and put it in line if it can go. A stream
   * that had nothing queued joins the scheduler's new line (quiet streams
   * first).
   *
   * @param s The stream.
   * @param type Frame type.
   * @param payload Bytes, or a control message encoded when sent.
   * @param final The stream is finished once this is sent.
   */
  enqueue(s: Stream, type: number, payload: Uint8Array | Control, final = false): void {
    const fresh = s.length === 0;
    s.push({ type, payload, final });
    if (this.sendable(s)) this.#st.scheduler.add(s, fresh);
  }

  /**
   * Whether a stream's next entry may go now (DATA needs credit and an
   * accepted stream; the rest of a message already begun always may).
   *
   * @param s The stream.
   * @returns Whether it may.
   */
  sendable(s: Stream): boolean {
    const head = s.peek();
    if (head === undefined) return false;
    if (head.type !== DATA || s.sentOff > 0) return true;
    if (s.state === "opening") return false;
    const len = (head.payload as Uint8Array).length;
    return s.credit >= len || s.credit >= this.#st.limits.window;
  }

  /**
   * A stream is dropped (reset, closed by the peer, link lost): forget its
   * half-sent message.
   *
   * @param s The stream.
   */
  abandon(s: Stream): void {
    if (s.hold !== undefined) {
      this.release(s.hold);
      s.hold = undefined;
      s.slot = "none";
      s.slotBytes = 0;
    } else if (s.slot !== "none") this.#releaseSlot(s);
    s.sentOff = 0;
  }

  /**
   * A half-sent message's frames are all acknowledged (or it was dropped):
   * its slot is free.
   *
   * @param h Its hold.
   */
  release(h: PartialHold): void {
    if (h.bytes < 0) return; // released already
    this.#free(h.bytes);
    h.bytes = -1;
  }

  /**
   * Whether a message of `len` bytes may start going out in part: always
   * when none does, else within `MAX_PARTIAL` messages and `MAX_PARTIAL_BYTES`.
   */
  #roomForPartial(len: number): boolean {
    const st = this.#st;
    return st.partial === 0 ||
      (st.partial < MAX_PARTIAL && st.partialBytes + len <= MAX_PARTIAL_BYTES);
  }

  /** Count a half-sent message of `len` bytes for a stream (held, or reserved for it). */
  #takeSlot(s: Stream, len: number, state: "held" | "reserved"): void {
    this.#st.partial++;
    this.#st.partialBytes += len;
    s.slotBytes = len;
    s.slot = state;
  }

  /**
   * A stream's half-sent message completed or was dropped: the room goes to
   * the streams parked longest, in order, as far as it allows (reserved for
   * them, so the stream that freed it cannot take it back first).
   */
  #releaseSlot(s: Stream): void {
    const bytes = s.slotBytes;
    s.slot = "none";
    s.slotBytes = 0;
    this.#free(bytes);
  }

  /** A slot of `bytes` is free: the room goes to the parked streams, in order. */
  #free(bytes: number): void {
    const st = this.#st;
    st.partial--;
    st.partialBytes -= bytes;
    for (;;) {
      const next = st.scheduler.parked;
      if (next === undefined) return;
      const head = next.peek();
      const len = head === undefined ? 0 : (head.payload as Uint8Array).length;
      if (!this.#roomForPartial(len)) return;
      this.#takeSlot(st.scheduler.unpark()!, len, "reserved");
    }
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
   * The frames for one channel: frames to send again (of a lost or suspect
   * channel, and redundant copies), the urgent frames, then streams in turn
   * (quiet ones first, deficit round robin) while the batch is under
   * `maxBatch` and the channel's in-flight budget allows (a quiet stream's
   * turn may overdraw it by a quantum), its acknowledgement when one is due
   * and rides along or cannot wait; the goodbye when closing and everything
   * went; a ping when due and nothing else goes. DATA messages are cut into
   * frames of at most `frameSize` payload bytes, so a stream's turn ends at
   * a frame boundary. In a link of several channels, `plan` says what this
   * one may carry.
   *
   * @param ch The channel.
   * @param holdAck Whether an acknowledgement alone should wait (events
   *   not yet polled may make a reply it can ride with).
   * @param plan What the channel may carry. @default {SINGLE_PLAN}
   * @returns The frames (possibly none), whether the streams ran out of
   *   things to send before the budget did, and the frames sent again.
   */
  batch(ch: LinkChannel, holdAck: boolean, plan: BatchPlan = SINGLE_PLAN): Batch {
    const st = this.#st;
    this.#scratchUsed = 0;
    const resent = this.#resent;
    resent.length = 0;
    let frames: FrameInit[];
    let bytes = 0; // the batch's length so far, ACKs aside
    const room = Math.min(st.limits.maxBatch, ch.room);
    const carries = plan.role !== "standby";
    if (carries && (st.resend.length > 0 || ch.copies.length > 0)) {
      frames = [];
      bytes = this.#again(ch, frames, room);
      const answers = st.urgent;
      st.urgent = [];
      for (const f of answers) {
        frames.push(f);
        bytes += FRAME_OVERHEAD + f.payload.length;
      }
    } else if (carries) {
      frames = st.urgent;
      st.urgent = [];
      for (const f of frames) bytes += FRAME_OVERHEAD + f.payload.length;
    } else {
      frames = [];
    }
    // A quiet stream's turn may overdraw the budget by one quantum: it then
    // waits behind the bytes in flight only, not for an acknowledgement too.
    const quietRoom = plan.role === "best" ? Math.min(st.limits.maxBatch, ch.room + QUANTUM) : room;
    const scheduler = st.scheduler;
    const streams = plan.role === "best" || (plan.role === "other" && plan.bulk);
    const waiting = (streams && scheduler.length > 0) || (carries && st.resend.length > 0);
    const maxData = Math.min(this.#frameSize, ch.mtu - FRAME_OVERHEAD);
    let appLimited = false;
    let streamBytes = 0;
    if (room <= 0 && waiting && !ch.askPending) {
      // Blocked, and no acknowledgement asked for covers what is in flight.
      frames.push(PING_FRAME);
      ch.asked(bytes += FRAME_OVERHEAD);
    }
    const numbers = plan.numbers - frames.length;
    if (streams && numbers > MAX_TURN_FRAMES) {
      const fresh = plan.role === "best";
      while (bytes < quietRoom && frames.length < numbers - MAX_TURN_FRAMES) {
        const full = bytes >= room;
        const s = !fresh
          ? (full ? undefined : scheduler.takeOld(this.#quiet))
          : full
          ? scheduler.takeNew()
          : scheduler.take();
        if (s === undefined) {
          appLimited = !full;
          break;
        }
        const n = this.#serve(s, frames, maxData, ch.mtu, (s.fresh ? quietRoom : room) - bytes);
        bytes += n;
        streamBytes += n;
        if (ch.countForAsk(n, bytes)) {
          frames.push(PING_FRAME);
          ch.asked(bytes += FRAME_OVERHEAD);
        }
      }
    } else {
      appLimited = true;
    }
    if (carries && st.state === "closing" && !this.#byeSent && scheduler.length === 0) {
      let queued = false;
      for (const s of st.streams.values()) if (s.length > 0) queued = true;
      if (!queued && st.resend.length === 0) {
        frames.push({
          type: CONTROL,
          stream: 0,
          seq: 0,
          total: BYE.length,
          offset: 0,
          payload: BYE,
        });
        bytes += FRAME_OVERHEAD + BYE.length;
        this.#byeSent = true;
      }
    }
    // The budget is spent and streams wait: ask for an acknowledgement,
    // unless one was asked for already.
    if (bytes >= room && (streamBytes > 0 || resent.length > 0) && waiting && !ch.askPending) {
      if (frames[frames.length - 1] !== PING_FRAME) {
        frames.push(PING_FRAME);
        ch.asked(bytes += FRAME_OVERHEAD);
      }
    }
    if (ch.ask && !ch.askPending && frames.length > 0 && frames[frames.length - 1] !== PING_FRAME) {
      frames.push(PING_FRAME);
      ch.asked(bytes += FRAME_OVERHEAD);
    }
    const lone = frames.length === 0;
    const acks = ch.ackDue && (!lone || (ch.ackAsked && !holdAck) || ch.ping);
    if (acks) frames.push(ch.ack()); // also keeps the channel alive
    // An ask goes even beside a lone ACK (a joined channel answers the
    // peer's PING and asks its own: both measure it).
    if (lone && ((ch.ping && !acks) || (ch.ask && !ch.askPending))) {
      frames.push(PING_FRAME);
      ch.asked(FRAME_OVERHEAD);
    }
    return { frames, appLimited, resent };
  }

  /**
   * Frames to send again, within the room: the link's (of lost or suspect
   * channels) first, then this channel's redundant copies. A frame larger
   * than this channel's MTU goes as pieces that fit, after the others: the
   * first keeps the frame's link number (the peer lacks it until a frame
   * with it comes, and would hold every later number against its window),
   * the rest are new numbered frames (the peer's reassembly drops pieces it
   * has). Frames the peer acknowledged meanwhile are dropped.
   */
  #again(ch: LinkChannel, frames: FrameInit[], room: number): number {
    const st = this.#st;
    const resent = this.#resent;
    let bytes = 0;
    let firsts: Retained[] | undefined;
    let pieces: FrameInit[] | undefined;
    for (const [q, queue] of [st.resend, ch.copies].entries()) {
      let k = 0;
      let skipped: Retained[] | undefined;
      for (; k < queue.length && bytes < room; k++) {
        const r = queue[k];
        if (r.acked) {
          r.copies--;
          continue;
        }
        const f = r.frame;
        if (FRAME_OVERHEAD + f.payload.length <= ch.mtu) {
          r.copies--;
          frames.push(f);
          resent.push(r);
          bytes += FRAME_OVERHEAD + f.payload.length;
          continue;
        }
        if (r.written > 0) {
          // Too large here, and a copy written elsewhere may still arrive: a
          // redundant copy is dropped; a frame to send again waits for a
          // channel it fits, or for that copy's channel to be lost.
          if (q === 0) (skipped ??= []).push(r);
          else r.copies--;
          continue;
        }
        r.copies--;
        // Too large for this channel: pieces that fit, the first with its number.
        pieces ??= [];
        const max = ch.mtu - FRAME_OVERHEAD;
        for (let off = 0; off < f.payload.length; off += max) {
          const end = Math.min(f.payload.length, off + max);
          const piece: FrameInit = {
            type: f.type,
            stream: f.stream,
            seq: f.seq,
            total: f.total,
            offset: f.offset + off,
            payload: f.payload.subarray(off, end),
          };
          pieces.push(piece);
          if (off === 0) {
            (firsts ??= []).push({
              ls: r.ls,
              frame: piece,
              acked: false,
              copies: 0,
              written: 0,
              hold: undefined,
            });
          }
          bytes += FRAME_OVERHEAD + end - off;
        }
        // The pieces stand for it from now on.
        r.acked = true;
        if (r.hold !== undefined) {
          r.hold.unacked--;
          if (r.hold.unacked === 0 && r.hold.done) this.release(r.hold);
        }
      }
      if (k > 0) queue.splice(0, k);
      if (skipped !== undefined) queue.unshift(...skipped);
    }
    // In order, after the others: each frame's pieces in a row (the peer
    // reassembles them with no hole between), its first piece sent again
    // (kept, numbered as its frame was), the rest new.
    if (pieces !== undefined) { for (const f of pieces) frames.push(f); }
    if (firsts !== undefined) { for (const r of firsts) resent.push(r); }
    ch.resent += resent.length;
    return bytes;
  }

  /**
   * Whether a stream waiting in the old line is quiet after all: its queue
   * is one message that fits in one frame, nothing before it (a request or
   * a reply of a stream that is not saturating, sent before its turn came
   * round to take it off the line). Such a message goes on the channel
   * that delivers soonest, never on one that only takes bulk data: on a
   * slow path it would arrive after the whole of that path's queue.
   */
  #quiet = (s: Stream): boolean => s.sentOff === 0 && s.length === 1 && s.queued <= this.#frameSize;

  /** One stream's turn: frames while it has deficit, something sendable and room. */
  #serve(s: Stream, out: FrameInit[], maxData: number, mtu: number, room: number): number {
    const st = this.#st;
    const scheduler = st.scheduler;
    let used = 0;
    while (s.deficit > 0 && this.sendable(s)) {
      if (used >= room) {
        scheduler.interrupted(s);
        return used;
      }
      const e: Entry = s.peek()!;
      if (e.type !== DATA) {
        // Control and close entries go whole (fragmented only at the MTU).
        s.shift();
        const payload = e.type === CONTROL
          ? this.#control(e.payload as Control)
          : e.payload as Uint8Array;
        const seq = s.txSeq;
        s.txSeq = (seq + 1) >>> 0;
        const n = fragments(out, mtu, e.type, s.id, seq, payload);
        used += n;
        s.deficit -= n;
        if (e.final) {
          // Our close or reject went out: the stream is finished here.
          st.streams.delete(s.id);
          s.state = "closed";
          this.abandon(s);
          st.clearStream(s);
          s.ready = false;
          return used;
        }
        continue;
      }
      const data = e.payload as Uint8Array;
      const len = data.length;
      if (s.sentOff === 0) {
        // The message's first frame: it takes credit and a sequence number.
        if (len > maxData) {
          if (s.slot === "reserved") s.slot = "held";
          else if (scheduler.parked !== undefined || !this.#roomForPartial(len)) {
            // Others wait for room first, or there is none: wait in line.
            scheduler.park(s);
            return used;
          } else this.#takeSlot(s, len, "held");
          if (this.retaining) s.hold = { bytes: len, unacked: 0, done: false };
        }
        s.credit -= len;
        s.sentSeq = s.txSeq;
        s.txSeq = (s.txSeq + 1) >>> 0;
      }
      const off = s.sentOff;
      const end = Math.min(len, off + maxData);
      const f: FrameInit = {
        type: DATA,
        stream: s.id,
        seq: s.sentSeq,
        total: len,
        offset: off,
        payload: off === 0 && end === len ? data : data.subarray(off, end),
      };
      out.push(f);
      if (s.hold !== undefined) this.holds.set(f, s.hold);
      const n = end - off + FRAME_OVERHEAD;
      used += n;
      s.deficit -= n;
      s.queued -= end - off;
      st.queued -= end - off;
      if (end < len) {
        s.sentOff = end;
        continue;
      }
      s.shift();
      s.sentOff = 0;
      if (s.hold !== undefined) {
        // Every frame is handed out: the slot is free once all are acknowledged.
        const h = s.hold;
        s.hold = undefined;
        s.slot = "none";
        s.slotBytes = 0;
        h.done = true;
        if (h.unacked === 0 && !this.holds.has(f)) this.release(h);
      } else if (s.slot === "held") this.#releaseSlot(s);
    }
    if (s.wantDrain && s.queued * 2 <= st.limits.sendQueueBytes) {
      s.wantDrain = false;
      st.events.push({ type: "drain", stream: s.id, owner: s.owner });
    }
    const more = this.sendable(s);
    // A slot handed over while the stream cannot use it goes on to the next.
    if (!more && s.slot === "reserved") this.#releaseSlot(s);
    scheduler.done(s, more);
    return used;
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

/**
 * One channel of a link and its accounting: what was written to it and what
 * the peer acknowledged, the in-flight budget that keeps the pipe short, and
 * the measurements the budget is sized from (`docs/link-protocol.md`,
 * "Acknowledgements and the in-flight budget").
 *
 * **Acknowledgement.** A channel is reliable and ordered, so a cumulative
 * count says everything: each side counts the bytes of every frame but ACK
 * frames it read from the channel and sends that count back on the same
 * channel in an ACK frame (type 5, stream 0, the count modulo 2^32 in `seq`).
 * ACKs are not counted, so an ACK never calls for an ACK. An acknowledgement
 * rides with a batch that goes anyway once `ACK_RIDE` bytes were read since
 * the last, or when a PING asked for it; it goes alone only when asked. A
 * sender asks (a PING in its batch) every quarter budget while the pipe is
 * half full or more, and when its streams wait for room. The frames written
 * and not yet acknowledged are also what re-sending after the loss of a
 * channel will need.
 *
 * **Budget.** Stream frames go to a channel only while the bytes in flight on
 * it (written, not yet acknowledged) are under its budget, so a new message
 * waits behind at most the budget and one frame, wherever the bytes sit
 * (our writer, the kernel's buffers, the peer's reader). The budget is the
 * delivery rate (the median of the last three round trips, each from a write
 * to its acknowledgement) x (`GAIN` x the smallest round trip of the last
 * `MIN_RTT_WINDOW` ms + `TURN_ALLOWANCE`), clamped to a floor and a ceiling.
 * In steady state this holds the round trip near `GAIN` times its floor plus
 * the allowance: when it grows past that (a queue builds, or the path got
 * slower), the rate measured is lower and the budget shrinks within about
 * three round trips; when the path gets faster, the acknowledgements come
 * sooner, the measured rate rises and the budget grows (up to `GAIN` times
 * per round trip). It is BBR's window with a delay-based exit (as LEDBAT);
 * of BBR's probing phases it has only the probe of the smallest round trip
 * (`PROBE_RTT_AFTER`: a full channel's samples never come near it again,
 * and without the probe the budget would grow by its own queue each time
 * the smallest aged out).
 *
 * @module
 */
import { type Decoder, type Frame, FRAME_OVERHEAD, type FrameInit, FrameType } from "../frame.ts";
import type { ChannelId, Retained } from "./_state.ts";
import { SEQ_WINDOW, SeqWindow } from "./_seq.ts";

const { ACK, PING } = FrameType;
const EMPTY = new Uint8Array(0);

/** Streams of type-5 frames: what each one is (none of them is counted or numbered). */
export const ChannelFrame = {
  /** An acknowledgement: `seq` = bytes read from this channel, modulo 2^32. */
  ACK: 0,
  /** The link sequence number of the next numbered frame on this channel, in `seq`. */
  MARK: 1,
  /** The sender puts nothing more on this channel and asks for an acknowledgement (removal). */
  LEAVE: 2,
} as const;

/**
 * A sender asks for an acknowledgement (a PING) each time it has sent this
 * fraction of its budget, and when the budget is spent: the acknowledgements
 * then come back while the rest of the budget is on its way, and the pipe
 * stays full.
 */
export const ASKS_PER_BUDGET = 4;
/**
 * Bytes read since the last acknowledgement for one to ride with a batch that
 * goes anyway; fewer wait (until a PING asks). So requests and replies carry
 * an acknowledgement every few messages, before the peer's in-flight bytes
 * reach half its budget floor and it would have to ask (an ask answered when
 * nothing else goes costs a write of its own).
 */
export const ACK_RIDE: number = 4 * 1024;
/** Smallest allowed budget floor (bytes). */
export const MIN_BUDGET_FLOOR: number = 4096;
/** Default smallest in-flight budget of a channel (bytes). */
export const DEFAULT_BUDGET_FLOOR: number = 16 * 1024;
/** Default largest in-flight budget of a channel (bytes). */
export const DEFAULT_BUDGET_CEILING: number = 16 * 1024 * 1024;
/** The budget is this many times the measured bandwidth-delay product. */
export const GAIN = 2;
/**
 * Time (ms) the budget allows on top of the round trip, at the measured rate:
 * what the two ends may take to turn an acknowledgement into new bytes on the
 * wire (event loop turns, reads in slices), which a round trip measured idle
 * does not show.
 */
export const TURN_ALLOWANCE = 0.5;
/** Round trips whose delivery rates make the estimate (their median). */
const RATE_ROUNDS = 3;
/** How long the smallest round trip counts (ms). */
export const MIN_RTT_WINDOW = 10_000;
/**
 * How long (ms) the smallest round trip may go without a sample as small
 * while the channel keeps a queue before it drains that queue to measure it
 * again (a probe, see {@linkcode LinkChannel}); shorter than
 * {@linkcode MIN_RTT_WINDOW}, so a fresh sample is there before the old one
 * ages out.
 */
export const PROBE_RTT_AFTER = 8_000;
/** The first probe's {@linkcode PROBE_RTT_AFTER} (ms). */
export const PROBE_RTT_FIRST = 2_000;
/**
 * A probe holds the bytes in flight to this fraction of a bandwidth-delay
 * product (at least {@linkcode MIN_BUDGET_FLOOR}): the queue drains, and a
 * write's own time on the wire adds at most this fraction of the smallest
 * round trip to the probe's samples.
 */
export const PROBE_RTT_SHARE: number = 1 / 8;
/**
 * A probe whose smallest sample is at most this many times the smallest
 * round trip found the path unchanged (the rest is its writes' time on the
 * wire and the peer's turns): the smallest stays, and counts from now on.
 * Above, the path got longer and the probe's smallest replaces it.
 */
export const PROBE_RTT_SAME = 1.25;
/** Writes remembered while unacknowledged; beyond, the newest ones are merged. */
const MAX_RECORDS = 1024;

/** What a channel has measured, for tests, metrics and the scheduler. */
export interface ChannelStats {
  /** Bytes of frames (ACKs aside) written to the channel. */
  sent: number;
  /** Of those, bytes the peer acknowledged. */
  acked: number;
  /** Bytes written and not yet acknowledged. */
  inFlight: number;
  /** The in-flight budget now (bytes). */
  budget: number;
  /** The smallest round trip in the window (ms), or `undefined` before the first sample. */
  minRtt: number | undefined;
  /** The latest round trip (ms), or `undefined` before the first sample. */
  rtt: number | undefined;
  /** The delivery rate the budget uses (bytes per ms), 0 before the first sample. */
  rate: number;
  /** Round trips measured. */
  rounds: number;
  /** Bytes of frames (ACKs aside) read from the channel. */
  received: number;
  /** Largest frame it carries. */
  mtu: number;
  /**
   * `up` (carries data), `standby` (a backup channel while another is up:
   * keep-alive only), `suspect` (data written to it went unacknowledged too
   * long: it carries nothing new, and what it held was sent again on the
   * others), or `leaving` (being removed).
   */
  health: ChannelHealth;
  /** Whether it is a backup channel (used only while no other channel is up). */
  backup: boolean;
  /** Bytes of frames held for sending again should the channel be lost. */
  retained: number;
  /** Numbered frames read from it that had arrived before (dropped). */
  duplicates: number;
  /** Frames it carried again for another channel (lost, suspect or redundant). */
  resent: number;
}

/** The health of a channel (see {@linkcode ChannelStats.health}). */
export type ChannelHealth = "up" | "standby" | "suspect" | "leaving";

/** How a {@linkcode LinkChannel} reaches the rest of the link. */
export interface LinkChannelInit {
  /** The driver's id for the channel. */
  id: ChannelId;
  /** Largest frame. */
  mtu: number;
  /** The channel's decoder. */
  decoder: Decoder;
  /** Every frame but ACKs goes here. */
  onFrame: (f: Frame) => void;
  /** A peer's violation that breaks the link (says what the peer did). */
  lose: (why: string) => void;
  /** The current time (ms). */
  now: number;
  /** Budget floor and ceiling (bytes). */
  floor: number;
  /** See `floor`. */
  ceiling: number;
  /** The link's record of the numbers that arrived (shared by its channels). @default {a new one} */
  seq?: SeqWindow;
  /** A retained frame was acknowledged (on this channel). */
  onAcked?: (r: Retained) => void;
  /** The peer sent LEAVE on this channel. */
  onLeave?: () => void;
  /** Whether it is a backup channel. @default {false} */
  backup?: boolean;
}

/**
 * The smallest sample of a time window, kept as the best three samples spread
 * over it (Kathleen Nichols' algorithm, as BBR's filters): when the smallest
 * ages out, the next ones take its place without a scan.
 */
class WindowedMin {
  #window: number;
  #t = [0, 0, 0];
  #v = [0, 0, 0];
  #empty = true;

  constructor(window: number) {
    this.#window = window;
  }

  get value(): number | undefined {
    return this.#empty ? undefined : this.#v[0];
  }

  /** Start again from one sample (older ones no longer count). */
  reset(v: number, t: number): void {
    this.#t.fill(t);
    this.#v.fill(v);
    this.#empty = false;
  }

  update(v: number, t: number): void {
    const ts = this.#t;
    const vs = this.#v;
    const w = this.#window;
    if (this.#empty || v <= vs[0] || t - ts[2] > w) {
      ts.fill(t);
      vs.fill(v);
      this.#empty = false;
      return;
    }
    if (v <= vs[1]) {
      ts[1] = ts[2] = t;
      vs[1] = vs[2] = v;
    } else if (v <= vs[2]) {
      ts[2] = t;
      vs[2] = v;
    }
    const dt = t - ts[0];
    if (dt > w) {
      // The smallest aged out: the next ones move up.
      ts[0] = ts[1];
      vs[0] = vs[1];
      ts[1] = ts[2];
      vs[1] = vs[2];
      ts[2] = t;
      vs[2] = v;
      if (t - ts[0] > w) {
        ts[0] = ts[1];
        vs[0] = vs[1];
        ts[1] = t;
        vs[1] = v;
      }
    } else if (ts[1] === ts[0] && dt > w / 4) {
      ts[1] = ts[2] = t;
      vs[1] = vs[2] = v;
    } else if (ts[2] === ts[1] && dt > w / 2) {
      ts[2] = t;
      vs[2] = v;
    }
  }
}

/** One channel of a link. */
export class LinkChannel {
  /** The driver's id for it. */
  readonly id: ChannelId;
  /** Largest frame. */
  readonly mtu: number;
  /** Whether the driver may write to it now. */
  writable = true;
  /** Time of the last byte read (ms). */
  lastRx: number;
  /** Time of the last write (ms). */
  lastTx: number;
  /** Whether a keep-alive ping is due. */
  ping = false;
  /**
   * Whether the next batch asks for an acknowledgement (ends with a PING),
   * whatever else it carries: to measure a round trip, or to learn whether
   * old writes arrived (a link of several channels).
   */
  ask = false;
  /** Whether its rate was measured by a round that was not application limited. */
  rateKnown = false;
  /** Whether it is a backup channel (used only while no other channel is up). */
  backup: boolean;
  /** Whether its unacknowledged data was sent again elsewhere (it carries nothing new). */
  suspect = false;
  /** Whether it is being removed: this side sent LEAVE (`sent`), the peer did (`got`). */
  leave: { sent: boolean; got: boolean; since: number } | undefined;
  /** The link sequence number the peer gives the next numbered frame written to it. */
  txLs = 0;
  /** Frames it carried for another channel (stats). */
  resent = 0;
  /**
   * Bytes written before the link kept copies of what it sends (a link with
   * one channel keeps none): until they are acknowledged, losing this
   * channel loses frames that cannot be sent again.
   */
  unretainedUntil = 0;
  /** The lowest link number among the frames written before `unretainedUntil`. */
  unretainedLs: number = Infinity;
  #decoder: Decoder;
  #onFrame: (f: Frame) => void;
  #lose: (why: string) => void;
  #onAcked: (r: Retained) => void;
  #onLeave: () => void;
  #seq: SeqWindow;
  #floor: number;
  #ceiling: number;
  #now = 0;

  // Sending side.
  #sent = 0;
  #acked = 0;
  #budget: number;
  /** Unacknowledged writes, a ring: the byte count once each was written, when, its lowest link number. */
  #recEnd = new Float64Array(16);
  #recAt = new Float64Array(16);
  #recLs = new Float64Array(16);
  #recHead = 0;
  #recCount = 0;
  /**
   * The round trip under way: a write, from when it was made (and what was
   * acknowledged then) until it is acknowledged; `#roundEnd` is -1 when none is.
   */
  #round = 0;
  #roundAt = 0;
  #roundAcked = 0;
  #roundEnd = -1;
  #roundAppLimited = false;
  #minRtt = new WindowedMin(MIN_RTT_WINDOW);
  /** When a round trip last matched or lowered the smallest one (or a probe ended). */
  #minRttAt = 0;
  /**
   * The probe under way: the most it lets in flight, when the bytes in
   * flight first fell to that (-1 before), and its smallest sample so far.
   */
  #probe: { cap: number; drained: number; best: number } | undefined;
  /** Whether it probed the smallest round trip yet. */
  #probed = false;
  /** Delivery rates of the last `RATE_ROUNDS` round trips (a ring), and the median of them. */
  #rates = new Float64Array(RATE_ROUNDS);
  #rateCount = 0;
  #rate = 0;
  #rtt: number | undefined;
  #sinceAsk = 0;
  /** Where the batch's last PING ends (bytes into it), or 0. */
  #pingEnd = 0;
  /** The byte count a PING asked to have acknowledged. */
  #askAt = 0;
  /** Frames kept to send again, oldest first, with the byte count at each one's end. */
  #ret: Retained[] = [];
  #retEnd: number[] = [];
  #retHead = 0;
  #retBytes = 0;
  /** Frames of other channels it carries next (redundant copies). */
  copies: Retained[] = [];

  // Receiving side.
  #received = 0;
  #ackedRx = 0;
  #ackAsked = false;
  #rxLs = 0;
  #duplicates = 0;

  /** @param init Id, MTU, decoder, handlers, time and budget bounds. */
  constructor(init: LinkChannelInit) {
    this.id = init.id;
    this.mtu = init.mtu;
    this.#decoder = init.decoder;
    this.#onFrame = init.onFrame;
    this.#lose = init.lose;
    this.#onAcked = init.onAcked ?? (() => {});
    this.#onLeave = init.onLeave ?? (() => {});
    this.#seq = init.seq ?? new SeqWindow();
    this.backup = init.backup ?? false;
    this.lastRx = this.lastTx = init.now;
    this.#floor = Math.max(MIN_BUDGET_FLOOR, init.floor);
    this.#ceiling = Math.max(this.#floor, init.ceiling);
    this.#budget = this.#floor;
  }

  /** Bytes the budget still allows in flight (0 or less: none). */
  get room(): number {
    return this.budget - (this.#sent - this.#acked);
  }

  /** Bytes written and not yet acknowledged. */
  get inFlight(): number {
    return this.#sent - this.#acked;
  }

  /** Bytes of frames written (ACK-family frames aside). */
  get sentBytes(): number {
    return this.#sent;
  }

  /** Of those, bytes acknowledged. */
  get ackedBytes(): number {
    return this.#acked;
  }

  /** The smallest round trip (ms), or `undefined` before the first sample. */
  get minRtt(): number | undefined {
    return this.#minRtt.value;
  }

  /** The delivery rate estimate (bytes per ms), 0 before the first sample. */
  get rate(): number {
    return this.#rate;
  }

  /** The in-flight budget (bytes); lower while a probe drains the channel's queue. */
  get budget(): number {
    const p = this.#probe;
    return p === undefined ? this.#budget : Math.min(this.#budget, p.cap);
  }

  /** When the oldest unacknowledged write was made, or `undefined` when none is. */
  get oldestUnacked(): number | undefined {
    return this.#recCount > 0 ? this.#recAt[this.#recHead] : undefined;
  }

  /**
   * Whether an acknowledgement should ride with the batch that goes:
   * `ACK_RIDE` bytes were read since the last one, or a PING asked for one.
   */
  get ackDue(): boolean {
    return this.#ackAsked || this.#received - this.#ackedRx >= ACK_RIDE;
  }

  /** Whether a PING asked for an acknowledgement: it goes alone if nothing else goes. */
  get ackAsked(): boolean {
    return this.#ackAsked;
  }

  /**
   * Count stream bytes put in a batch; says when to ask for an
   * acknowledgement: every `budget / ASKS_PER_BUDGET` bytes while the bytes in
   * flight are at least half the budget (a sender that sends little needs no
   * acknowledgement soon).
   *
   * @param n The bytes.
   * @param batch The bytes of the batch so far (not yet in flight).
   * @returns Whether to put a PING after them.
   */
  countForAsk(n: number, batch: number): boolean {
    this.#sinceAsk += n;
    const budget = this.budget;
    if (this.#sinceAsk < budget / ASKS_PER_BUDGET) return false;
    if (this.#sent - this.#acked + batch < budget / 2) return false;
    return true;
  }

  /** Whether a PING asked for an acknowledgement that has not come yet. */
  get askPending(): boolean {
    return this.#acked < this.#askAt;
  }

  /**
   * A PING goes out in this batch (an ask, or a keep-alive): the ACK that
   * answers it covers at least the batch up to it.
   *
   * @param end Bytes of the batch up to the end of the PING (ACKs aside).
   */
  asked(end: number): void {
    this.#sinceAsk = 0;
    this.#pingEnd = end;
  }

  /**
   * Bytes arrived: decode them, count them, act on ACK-family frames, drop
   * numbered frames that arrived before, hand the others on.
   *
   * @param bytes The bytes.
   * @param now The current time (ms).
   * @returns 0, or the codec's error code.
   */
  read(bytes: Uint8Array, now: number): number {
    this.lastRx = now;
    this.#now = now;
    return this.#decoder.push(bytes, this.#frame);
  }

  #frame = (f: Frame): void => {
    if (f.type === ACK) {
      switch (f.stream) {
        case ChannelFrame.ACK:
          this.#ack(f.seq);
          return;
        case ChannelFrame.MARK:
          this.#rxLs = this.#seq.widen(f.seq);
          return;
        case ChannelFrame.LEAVE:
          this.#ackAsked = true;
          this.#onLeave();
          return;
      }
      return; // other streams are reserved
    }
    this.#received += FRAME_OVERHEAD + f.length;
    if (f.type === PING) {
      this.#ackAsked = true;
      this.#onFrame(f);
      return;
    }
    const ls = this.#rxLs++;
    const fresh = this.#seq.accept(ls);
    if (fresh === 1) {
      this.#onFrame(f);
    } else if (fresh === 0) {
      this.#duplicates++;
    } else {
      this.#lose(
        `frame number ${ls} on channel ${this.id} is ${SEQ_WINDOW} or more numbers past ` +
          `the lowest one missing (${this.#seq.cum})`,
      );
    }
  };

  /**
   * The ACK frame for this batch (call when {@linkcode LinkChannel.ackDue}).
   *
   * @returns The frame.
   */
  ack(): FrameInit {
    this.#ackedRx = this.#received;
    this.#ackAsked = false;
    // `seq` first: a count past 2^31 is not a small integer, and V8 would
    // widen the field of every frame object of the usual shape (measured: the
    // frame check in encodeBatch took a quarter of a bulk sender's time).
    return {
      seq: this.#received >>> 0, // modulo 2^32
      type: ACK,
      stream: 0,
      total: 0,
      offset: 0,
      payload: EMPTY,
    };
  }

  /**
   * A batch was written.
   *
   * @param bytes Its length, ACK-family frames (uncounted) aside.
   * @param now The current time (ms).
   * @param appLimited Whether the streams had nothing more they could send
   *   (the budget was not the limit), so this write says little about the
   *   path's rate.
   * @param minLs The lowest link number among its frames. @default {Infinity}
   */
  sent(bytes: number, now: number, appLimited: boolean, minLs: number = Infinity): void {
    this.lastTx = now;
    this.ping = false;
    this.ask = false;
    const n = bytes;
    if (n <= 0) return;
    if (this.#roundEnd < 0) {
      // A round trip starts with this write and ends when it is acknowledged.
      this.#roundAt = now;
      this.#roundAcked = this.#acked;
      this.#roundEnd = this.#sent + n;
      this.#roundAppLimited = false;
    }
    if (this.#pingEnd > 0) this.#askAt = this.#sent + this.#pingEnd;
    this.#pingEnd = 0;
    this.#sent += n;
    // A round trip of a probe measures the probe's cap, not the path.
    if (appLimited || this.#probe !== undefined) this.#roundAppLimited = true;
    const cap = this.#recEnd.length;
    if (this.#recCount === cap) {
      if (cap >= MAX_RECORDS) {
        // A peer that does not acknowledge: extend the newest record instead.
        const last = (this.#recHead + cap - 1) % cap;
        this.#recEnd[last] = this.#sent;
        this.#recLs[last] = Math.min(this.#recLs[last], minLs);
        return;
      }
      const end = new Float64Array(cap * 2);
      const at = new Float64Array(cap * 2);
      const ls = new Float64Array(cap * 2);
      for (let k = 0; k < cap; k++) {
        end[k] = this.#recEnd[(this.#recHead + k) % cap];
        at[k] = this.#recAt[(this.#recHead + k) % cap];
        ls[k] = this.#recLs[(this.#recHead + k) % cap];
      }
      this.#recEnd = end;
      this.#recAt = at;
      this.#recLs = ls;
      this.#recHead = 0;
    }
    const i = (this.#recHead + this.#recCount) % this.#recEnd.length;
    this.#recEnd[i] = this.#sent;
    this.#recAt[i] = now;
    this.#recLs[i] = minLs;
    this.#recCount++;
  }

  /**
   * Keep a frame written in this batch, to send it again should the channel
   * be lost.
   *
   * @param r The frame.
   * @param end The channel's byte count at its end.
   */
  retain(r: Retained, end: number): void {
    r.copies++;
    r.written++;
    this.#ret.push(r);
    this.#retEnd.push(end);
    this.#retBytes += FRAME_OVERHEAD + r.frame.payload.length;
  }

  /**
   * From now on the link keeps copies of what it writes here: what was
   * written before must be acknowledged before this channel can be lost
   * without losing frames.
   */
  startRetaining(): void {
    if (this.#acked >= this.unretainedUntil) this.unretainedLs = Infinity;
    this.unretainedUntil = this.#sent;
    // Not only the oldest write's: frames of a lost channel sent again here
    // while it was the last one carry lower numbers than writes before them.
    const cap = this.#recLs.length;
    for (let k = 0; k < this.#recCount; k++) {
      this.unretainedLs = Math.min(this.unretainedLs, this.#recLs[(this.#recHead + k) % cap]);
    }
  }

  /** Whether frames written before the link kept copies are still unacknowledged. */
  get unretained(): boolean {
    return this.#acked < this.unretainedUntil;
  }

  /**
   * The frames kept for this channel that no other channel carries and the
   * peer did not acknowledge: what to send again when it is gone. The
   * channel forgets them.
   *
   * @returns The frames, oldest first.
   */
  release(): Retained[] {
    const out: Retained[] = [];
    for (let k = this.#retHead; k < this.#ret.length; k++) {
      const r = this.#ret[k];
      r.copies--;
      r.written--;
      if (!r.acked && r.copies === 0) out.push(r);
    }
    for (const r of this.copies) if (!r.acked && r.copies === 0) out.push(r);
    this.#ret = [];
    this.#retEnd = [];
    this.#retHead = 0;
    this.#retBytes = 0;
    this.copies = [];
    return out;
  }

  /**
   * The frames kept for this channel that the peer did not acknowledge, to
   * send on other channels while they stay here too (a suspect channel).
   *
   * @returns The frames not yet sent elsewhere, oldest first.
   */
  unacked(): Retained[] {
    const out: Retained[] = [];
    for (let k = this.#retHead; k < this.#ret.length; k++) {
      const r = this.#ret[k];
      if (!r.acked && r.copies === 1) out.push(r);
    }
    return out;
  }

  /**
   * The lowest link number written here and not acknowledged (`Infinity` when none).
   *
   * @returns The number.
   */
  lowestUnacked(): number {
    let low = this.#acked < this.unretainedUntil ? this.unretainedLs : Infinity;
    for (let k = this.#retHead; k < this.#ret.length; k++) {
      const r = this.#ret[k];
      if (!r.acked && r.ls < low) low = r.ls;
    }
    return low;
  }

  /** The peer read everything up to `count` (mod 2^32). */
  #ack(count: number): void {
    const now = this.#now;
    const delta = (count - (this.#acked >>> 0)) >>> 0;
    if (delta === 0) return;
    const acked = this.#acked + delta;
    if (acked > this.#sent) {
      this.#lose(
        `it acknowledged ${acked} bytes on channel ${this.id}, more than the ${this.#sent} sent`,
      );
      return;
    }
    this.#acked = acked;
    this.suspect = false;
    // The frames kept for sending again that this covers are done.
    const ret = this.#ret;
    while (this.#retHead < ret.length && this.#retEnd[this.#retHead] <= acked) {
      const r = ret[this.#retHead];
      ret[this.#retHead] = undefined as unknown as Retained;
      this.#retHead++;
      this.#retBytes -= FRAME_OVERHEAD + r.frame.payload.length;
      r.copies--;
      r.written--;
      if (!r.acked) {
        r.acked = true;
        this.#onAcked(r);
      }
    }
    if (this.#retHead === ret.length) {
      if (this.#retHead > 0) {
        this.#ret = [];
        this.#retEnd = [];
        this.#retHead = 0;
      }
    } else if (this.#retHead >= 1024 && this.#retHead * 2 >= ret.length) {
      this.#ret = ret.slice(this.#retHead);
      this.#retEnd = this.#retEnd.slice(this.#retHead);
      this.#retHead = 0;
    }
    // The round trip of the newest write this covers whole.
    let sentAt = -1;
    const cap = this.#recEnd.length;
    while (this.#recCount > 0 && this.#recEnd[this.#recHead] <= acked) {
      sentAt = this.#recAt[this.#recHead];
      this.#recHead = (this.#recHead + 1) % cap;
      this.#recCount--;
    }
    if (sentAt >= 0) {
      const rtt = this.#rtt = now - sentAt;
      const min = this.#minRtt.value;
      this.#minRtt.update(rtt, now);
      if (min === undefined || rtt <= min) this.#minRttAt = now;
      if (this.#probe !== undefined || this.rateKnown) this.#probeRtt(sentAt, now);
    }
    if (this.#roundEnd >= 0 && acked >= this.#roundEnd) {
      // A round trip ended: the bytes acknowledged since its write was made,
      // over the time since, are a sample of the delivery rate (acknowledgements
      // that arrive late and together cannot inflate it: it starts at a write).
      // One made while the streams had too little to send measures them, not
      // the path: it counts only when it raises the estimate.
      const elapsed = now - this.#roundAt;
      if (elapsed > 0) {
        const rate = (acked - this.#roundAcked) / elapsed;
        if (!this.#roundAppLimited || rate > this.#rate) this.#sample(rate);
        if (!this.#roundAppLimited) this.rateKnown = true;
      }
      this.#round++;
      this.#roundEnd = -1;
    }
    const minRtt = this.#minRtt.value;
    if (minRtt === undefined) return;
    const bdp = this.#rate * (GAIN * minRtt + TURN_ALLOWANCE);
    this.#budget = Math.min(this.#ceiling, Math.max(this.#floor, bdp));
  }

  /**
   * Start, follow and end a probe of the smallest round trip (BBR's
   * ProbeRTT): a channel kept full keeps a queue of its own (the budget is
   * `GAIN` bandwidth-delay products), so its round trips never show the
   * path's smallest again; once the smallest is `PROBE_RTT_AFTER` old
   * (`PROBE_RTT_FIRST` the first time), the bytes in flight are held to
   * `PROBE_RTT_SHARE` of a bandwidth-delay product until the queue is gone,
   * and for two smallest round trips more, whose samples say whether the
   * path is as it was. Without it the smallest ages out, the next is one
   * measured over the queue, the budget grows by it, and the queue and the
   * round trip double every `MIN_RTT_WINDOW` (a small message waits behind
   * them).
   *
   * @param sentAt When the write this acknowledgement covers was made.
   * @param now The current time.
   */
  #probeRtt(sentAt: number, now: number): void {
    const minRtt = this.#minRtt.value!;
    const inFlight = this.#sent - this.#acked;
    let p = this.#probe;
    if (p === undefined) {
      // The first probe comes sooner: the first samples were taken while both
      // ends were starting (compiling, the other channels' handshakes).
      const after = this.#probed ? PROBE_RTT_AFTER : PROBE_RTT_FIRST;
      if (!this.rateKnown || now - this.#minRttAt < after) return;
      const cap = Math.max(MIN_BUDGET_FLOOR, this.#rate * minRtt * PROBE_RTT_SHARE);
      // Less in flight than that: no queue of its own to drain.
      if (inFlight <= cap) return;
      p = this.#probe = { cap, drained: -1, best: Infinity };
      this.#probed = true;
    }
    if (p.drained < 0) {
      if (inFlight <= p.cap) p.drained = now;
      return;
    }
    if (sentAt < p.drained + minRtt / 2) return;
    // That write went out after the queue had drained: its round trip is the
    // path's (and an acknowledgement's wait; the smallest of a few counts).
    p.best = Math.min(p.best, now - sentAt);
    if (now < p.drained + 2 * minRtt) return;
    // The smallest counts again from now on, or the probe's when the path got
    // longer (samples older than it were taken on the path as it was).
    this.#minRtt.reset(p.best <= minRtt * PROBE_RTT_SAME ? minRtt : p.best, now);
    this.#probe = undefined;
    this.#minRttAt = now;
  }

  /** A round trip's delivery rate: the estimate is the median of the last few. */
  #sample(rate: number): void {
    const r = this.#rates;
    r[this.#rateCount++ % RATE_ROUNDS] = rate;
    if (this.#rateCount < RATE_ROUNDS) {
      this.#rate = rate;
      return;
    }
    const [a, b, c] = [r[0], r[1], r[2]];
    this.#rate = Math.max(Math.min(a, b), Math.min(Math.max(a, b), c)); // median of three
  }

  /** Its health now (see {@linkcode ChannelStats.health}). */
  get health(): ChannelHealth {
    return this.leave !== undefined ? "leaving" : this.suspect ? "suspect" : "up";
  }

  /** The measurements. */
  get stats(): ChannelStats {
    return {
      sent: this.#sent,
      acked: this.#acked,
      inFlight: this.#sent - this.#acked,
      budget: this.budget,
      minRtt: this.#minRtt.value,
      rtt: this.#rtt,
      rate: this.#rate,
      rounds: this.#round,
      received: this.#received,
      mtu: this.mtu,
      health: this.health,
      backup: this.backup,
      retained: this.#retBytes,
      duplicates: this.#duplicates,
      resent: this.resent,
    };
  }
}

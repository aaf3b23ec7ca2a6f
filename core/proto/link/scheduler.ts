/**
 * Which stream sends next: deficit round robin by bytes, quiet streams first.
 *
 * - A stream that had nothing queued and gets something (a **new** stream: a
 *   control message, a reply, a small message now and then) joins the new
 *   line, which is served before the line of streams mid-transfer (the
 *   **old** line). So a small message waits for at most the frame being
 *   built, not behind a bulk transfer's queue.
 * - Each turn a stream may send frames while its deficit is positive; a turn
 *   adds {@linkcode QUANTUM} bytes to it, and every frame sent takes its
 *   bytes (payload and overhead) off. A stream with more to send after its
 *   turn goes to the back of the old line, so busy streams share bytes
 *   equally whatever their message sizes.
 * - No stream starves (the rule of FQ-CoDel's new and old flows): a new
 *   stream that used its turn, or emptied its queue, moves to the old line
 *   and stays there until its turn comes round again and it has nothing to
 *   send; only then may it be new again. So streams that keep sending small
 *   messages cannot keep jumping ahead of the old line.
 * - A turn cut short because the batch or the channel's in-flight budget is
 *   full resumes first in the next batch, after the new line if it was an
 *   old stream's. When the budget is spent, new streams may still overdraw
 *   it by a quantum (`Scheduler.takeNew`): a small message then waits behind
 *   the bytes in flight, not also for the acknowledgement that frees room.
 * - A stream whose next message needs several frames waits in a third line
 *   while too many messages are half sent ({@linkcode MAX_PARTIAL},
 *   {@linkcode MAX_PARTIAL_BYTES}) or others wait there already: every
 *   half-sent message holds a reassembly buffer at the peer. The room a
 *   finished message frees goes to the streams parked longest, in order.
 *
 * This is the seam the striping work extends (which channel carries each
 * fragment); the budget of each channel is `_channels.ts`.
 *
 * @module
 */
import { Queue } from "../_queue.ts";
import type { Stream } from "./streams.ts";

/** Bytes a stream may send per turn (frames' payload and overhead) before the next stream's turn. */
export const QUANTUM: number = 16 * 1024;
/**
 * Most messages of a link sent in part at once (the rest of each still
 * queued). A peer reassembles each of them in a buffer of its own and by
 * default allows 64 at once.
 */
export const MAX_PARTIAL = 32;
/**
 * Most bytes of messages sent in part at once (their whole lengths), unless
 * only one is: what a peer holds in reassembly beyond one message, against
 * its link budget (64 MiB by default).
 */
export const MAX_PARTIAL_BYTES: number = 4 * 1024 * 1024;

/** The lines of streams with something to send. */
export class Scheduler {
  #new = new Queue<Stream>();
  #old = new Queue<Stream>();
  #parked = new Queue<Stream>();
  #resume: Stream | undefined;
  #resumeNew = false;

  /** Streams in line (some may have nothing left to send: they leave when their turn comes). */
  get length(): number {
    return this.#new.length + this.#old.length + this.#parked.length +
      (this.#resume === undefined ? 0 : 1);
  }

  /**
   * Put a stream in line (once; a stream already in line stays where it is).
   *
   * @param s The stream.
   * @param fresh Whether it just got something after having nothing queued
   *   (it goes to the new line); otherwise, e.g. when credit came back, it
   *   goes to the old line.
   */
  add(s: Stream, fresh: boolean): void {
    if (s.ready) return;
    s.ready = true;
    s.deficit = QUANTUM;
    s.fresh = fresh;
    (fresh ? this.#new : this.#old).push(s);
  }

  /**
   * The stream whose turn it is; it leaves the line until the caller hands
   * it back with {@linkcode Scheduler.done}, {@linkcode Scheduler.interrupted}
   * or {@linkcode Scheduler.park}. `s.fresh` says whether it came from the
   * new line.
   *
   * @returns The stream, or `undefined` when every line is empty.
   */
  take(): Stream | undefined {
    let s: Stream | undefined;
    if (this.#resume !== undefined && this.#resumeNew) {
      s = this.#resume;
      this.#resume = undefined;
    } else if (this.#new.length > 0) {
      s = this.#new.shift()!;
      s.fresh = true;
    } else if (this.#resume !== undefined) {
      s = this.#resume;
      this.#resume = undefined;
    } else {
      s = this.#old.shift();
      if (s !== undefined) s.fresh = false;
    }
    return s;
  }

  /**
   * Like {@linkcode Scheduler.take}, but only a stream of the new line (or a
   * new stream's turn cut short): what may still go when the budget is spent.
   *
   * @returns The stream, or `undefined` when no new stream waits.
   */
  takeNew(): Stream | undefined {
    if (this.#resume !== undefined && this.#resumeNew) {
      const s = this.#resume;
      this.#resume = undefined;
      return s;
    }
    const s = this.#new.shift();
    if (s !== undefined) s.fresh = true;
    return s;
  }

  /**
   * Like {@linkcode Scheduler.take}, but only a stream of the old line (or an
   * old stream's turn cut short) that `quiet` does not call quiet: what a
   * channel other than the best one may carry (bulk data, never a quiet
   * stream's message). Quiet streams passed over go to the back of the old
   * line (the best channel serves them in their turn).
   *
   * @param quiet Whether a stream is quiet (its message goes on the best channel only).
   * @returns The stream, or `undefined` when no such stream waits.
   */
  takeOld(quiet: (s: Stream) => boolean): Stream | undefined {
    if (this.#resume !== undefined && !this.#resumeNew) {
      const s = this.#resume;
      if (quiet(s)) return undefined;
      this.#resume = undefined;
      return s;
    }
    for (let k = this.#old.length; k > 0; k--) {
      const s = this.#old.shift()!;
      if (!quiet(s)) {
        s.fresh = false;
        return s;
      }
      this.#old.push(s);
    }
    return undefined;
  }

  /**
   * A stream's turn is over.
   *
   * @param s The stream {@linkcode Scheduler.take} returned.
   * @param more Whether it still has something it may send.
   */
  done(s: Stream, more: boolean): void {
    if (more || s.fresh) {
      // Out of deficit with more to send, or new and now emptied: to the old
      // line (an emptied one leaves when its turn comes round and it is still empty).
      if (s.deficit <= 0) s.deficit += QUANTUM;
      s.fresh = false;
      this.#old.push(s);
      return;
    }
    s.ready = false;
  }

  /**
   * A stream's turn was cut short (the batch or the budget is full): it
   * resumes first next time (after the new line, unless it is new itself).
   *
   * @param s The stream.
   */
  interrupted(s: Stream): void {
    const prev = this.#resume;
    if (prev !== undefined && prev !== s) {
      // Another channel's batch cut a turn short meanwhile: that stream
      // waits in its line again (it must not leave every line).
      (this.#resumeNew ? this.#new : this.#old).push(prev);
    }
    this.#resume = s;
    this.#resumeNew = s.fresh;
  }

  /**
   * A stream must wait until a half-sent message completes (see
   * {@linkcode MAX_PARTIAL}).
   *
   * @param s The stream.
   */
  park(s: Stream): void {
    this.#parked.push(s);
  }

  /** The stream parked longest, if any (it stays parked). */
  get parked(): Stream | undefined {
    return this.#parked.peek();
  }

  /**
   * A half-sent message completed: the stream parked longest gets back in line.
   *
   * @returns That stream, if any was parked.
   */
  unpark(): Stream | undefined {
    const s = this.#parked.shift();
    if (s === undefined) return undefined;
    s.fresh = false;
    this.#old.push(s);
    return s;
  }

  /** Empty every line. */
  clear(): void {
    for (const q of [this.#new, this.#old, this.#parked]) {
      for (let s = q.shift(); s; s = q.shift()) s.ready = false;
    }
    if (this.#resume !== undefined) this.#resume.ready = false;
    this.#resume = undefined;
  }
}

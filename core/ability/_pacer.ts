/**
 * Frame pacing for a stream's source: frames leave at most at the stream's
 * bitrate, and while they cannot leave (no budget yet, or the session's
 * send queue is congested) only the newest frame waits: a newer frame
 * replaces it, which is dropped. So a slow path loses frames instead of
 * queueing them, and latency stays bounded. Time is passed in.
 *
 * The budget is a token bucket in bytes, refilled at `bitrate / 8` per
 * second up to a quarter second's worth; a frame may leave while the bucket
 * is not negative, and takes its size from it (a large frame leaves the
 * bucket in debt, which delays the next).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const p = new FramePacer<string>({ bitrate: 8000, now: 0 }); // 1000 bytes/s
 * assert.equal(p.offer("a", 600, 0), undefined);
 * assert.equal(p.poll(0, false), "a"); // bucket 250 -> -350
 * assert.equal(p.offer("b", 600, 10), undefined);
 * assert.equal(p.offer("c", 600, 20), "b"); // b waited, c replaces it
 * assert.equal(p.poll(20, false), undefined);
 * assert.equal(p.nextTime(20), 350);
 * assert.equal(p.poll(350, false), "c");
 * ```
 *
 * @module
 */

/** Options of a {@linkcode FramePacer}. */
export interface PacerOptions {
  /** Bits per second. */
  bitrate: number;
  /** The current time (ms). */
  now: number;
}

/** Paces frames to a bitrate, keeping only the newest waiting frame. */
export class FramePacer<T> {
  #rate: number;
  #burst: number;
  #tokens: number;
  #at: number;
  #waiting: { frame: T; size: number } | undefined;

  /** @param options Bitrate and time. */
  constructor(options: PacerOptions) {
    this.#rate = options.bitrate / 8 / 1000; // bytes per ms
    this.#burst = Math.max(1, (options.bitrate / 8) * 0.25);
    this.#tokens = this.#burst;
    this.#at = options.now;
  }

  #refill(now: number): void {
    if (now > this.#at) {
      this.#tokens = Math.min(this.#burst, this.#tokens + (now - this.#at) * this.#rate);
      this.#at = now;
    }
  }

  /**
   * A frame was written.
   *
   * @param frame The frame.
   * @param size Its size in bytes.
   * @param now The current time (ms).
   * @returns The frame it replaced (dropped), if one was waiting.
   */
  offer(frame: T, size: number, now: number): T | undefined {
    this.#refill(now);
    const dropped = this.#waiting?.frame;
    this.#waiting = { frame, size };
    return dropped;
  }

  /**
   * The frame to send now, if any.
   *
   * @param now The current time (ms).
   * @param congested Whether the session's send queue is too full to take it.
   * @returns The frame, or `undefined`.
   */
  poll(now: number, congested: boolean): T | undefined {
    this.#refill(now);
    const w = this.#waiting;
    if (w === undefined || congested || this.#tokens < 0) return undefined;
    this.#waiting = undefined;
    this.#tokens -= w.size;
    return w.frame;
  }

  /**
   * When a waiting frame may leave (if not congested then).
   *
   * @param now The current time (ms).
   * @returns A time (ms), or `undefined` when no frame waits.
   */
  nextTime(now: number): number | undefined {
    if (this.#waiting === undefined) return undefined;
    this.#refill(now);
    return this.#tokens >= 0 ? now : now + Math.ceil(-this.#tokens / this.#rate);
  }

  /** Drop the waiting frame. @returns It, if any. */
  clear(): T | undefined {
    const w = this.#waiting?.frame;
    this.#waiting = undefined;
    return w;
  }
}

/**
 * A rate limit for warning lines a peer can provoke: per kind of warning, a
 * burst of {@linkcode WARN_BURST} lines, then one per
 * {@linkcode WARN_PERIOD} ms; the next line allowed says how many were
 * suppressed. Pure: time is an argument.
 *
 * @module
 */

/** Lines of one kind allowed at once. */
export const WARN_BURST = 3;
/** The time one more line of a kind is earned after the burst, in ms. */
export const WARN_PERIOD = 60_000;
/** The most kinds tracked (kinds are names from code, not from peers). */
const MAX_KINDS = 32;

/** Options of {@linkcode WarningLimiter}. */
export interface WarningLimiterOptions {
  /** Lines of one kind allowed at once. @default {3} */
  burst?: number;
  /** The time one more line is earned, in ms. @default {60000} */
  period?: number;
}

interface Bucket {
  tokens: number;
  at: number;
  suppressed: number;
}

/**
 * A token bucket per kind of warning.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const limit = new WarningLimiter({ burst: 2, period: 1000 });
 * assert.equal(limit.allow("clash", 0), 0);
 * assert.equal(limit.allow("clash", 0), 0);
 * assert.equal(limit.allow("clash", 10), undefined); // suppressed
 * assert.equal(limit.allow("clash", 1000), 1); // allowed, one was suppressed
 * ```
 */
export class WarningLimiter {
  #burst: number;
  #period: number;
  #buckets = new Map<string, Bucket>();

  /**
   * @param options The burst and the period.
   */
  constructor(options: WarningLimiterOptions = {}) {
    this.#burst = options.burst ?? WARN_BURST;
    this.#period = options.period ?? WARN_PERIOD;
  }

  /**
   * Whether a line of this kind may be written now.
   *
   * @param kind The kind of warning (a fixed name).
   * @param now The current time, in ms.
   * @returns `undefined` when the line is suppressed; else how many lines of
   *   this kind were suppressed since the last one allowed.
   */
  allow(kind: string, now: number): number | undefined {
    let b = this.#buckets.get(kind);
    if (b === undefined) {
      if (this.#buckets.size >= MAX_KINDS) {
        this.#buckets.delete(this.#buckets.keys().next().value!);
      }
      b = { tokens: this.#burst, at: now, suppressed: 0 };
      this.#buckets.set(kind, b);
    }
    b.tokens = Math.min(this.#burst, b.tokens + Math.max(0, now - b.at) / this.#period);
    b.at = now;
    if (b.tokens < 1) {
      b.suppressed++;
      return undefined;
    }
    b.tokens--;
    const suppressed = b.suppressed;
    b.suppressed = 0;
    return suppressed;
  }
}

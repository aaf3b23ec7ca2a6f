/**
 * Link sequence numbers on the receiving side: which numbered frames of a
 * link arrived, over whichever channel, so that a frame sent again (on
 * another channel after a loss, or twice in redundant mode) is dropped
 * (`docs/link-protocol.md`, "Link sequence numbers").
 *
 * Every frame but ACK-family (type 5) and PING frames has a link sequence
 * number: the sender numbers them 0, 1, 2, ... as it first writes them, and
 * a channel numbers the frames it carries implicitly, one more than the one
 * before, unless a MARK frame (type 5, stream 1) says which number comes
 * next. Everything below `cum` arrived; above it, a bitmap of
 * {@linkcode SEQ_WINDOW} numbers says which did. A number at or beyond
 * `cum + SEQ_WINDOW` is a protocol violation (a sender never has that many
 * frames unresolved, see `_paths.ts`). The bitmap is allocated the first
 * time a frame arrives ahead of `cum`, so a link with one channel never
 * makes one.
 *
 * @module
 */

/**
 * Numbers a receiver tracks above the lowest one missing: a sender keeps
 * the frames it has not seen acknowledged below this many numbers (8 KiB of
 * bitmap per link, once frames arrive out of order).
 */
export const SEQ_WINDOW = 65536;

/** The link sequence numbers a receiver has seen. */
export class SeqWindow {
  /** Every number below this arrived. */
  cum = 0;
  #bits: Uint32Array | undefined;
  /** Bits set in `#bits` (numbers above `cum` that arrived). */
  #ahead = 0;

  /**
   * A numbered frame arrived.
   *
   * @param ls Its number.
   * @returns `1` when it is new, `0` when it arrived before (drop it), `-1`
   *   when it is beyond the window (the peer broke the protocol).
   */
  accept(ls: number): number {
    const cum = this.cum;
    if (ls === cum && this.#ahead === 0) {
      this.cum = cum + 1;
      return 1;
    }
    if (ls < cum) return 0;
    const d = ls - cum;
    if (d >= SEQ_WINDOW) return -1;
    const bits = this.#bits ??= new Uint32Array(SEQ_WINDOW / 32);
    const i = ls % SEQ_WINDOW;
    const w = i >>> 5;
    const m = 1 << (i & 31);
    if ((bits[w] & m) !== 0) return 0;
    if (d > 0) {
      bits[w] |= m;
      this.#ahead++;
      return 1;
    }
    // The lowest missing number arrived: move past it and what follows it.
    let next = cum + 1;
    while (this.#ahead > 0) {
      const j = next % SEQ_WINDOW;
      const mj = 1 << (j & 31);
      if ((bits[j >>> 5] & mj) === 0) break;
      bits[j >>> 5] &= ~mj;
      this.#ahead--;
      next++;
    }
    this.cum = next;
    return 1;
  }

  /**
   * The number a MARK frame names, from its 32 bits: the value nearest to
   * `cum` with those low bits (numbers in use span far less than 2^31).
   *
   * @param low The MARK's `seq`.
   * @returns The full number.
   */
  widen(low: number): number {
    const d = (low - this.cum) | 0; // signed difference modulo 2^32
    return this.cum + d;
  }

  /** Numbers above `cum` that arrived (frames held out of order, for tests and metrics). */
  get ahead(): number {
    return this.#ahead;
  }
}

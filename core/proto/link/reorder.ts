/**
 * The reorder buffer of a link: sequenced messages may arrive out of order
 * (over several channels) and are delivered in sequence order. It holds
 * messages that arrived ahead of the next expected one, and counts their
 * bytes, so the link can bound what a peer makes it hold.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const r = new Reorder<string>();
 * assert.equal(r.offer(1, "b", 1), "hold");
 * assert.equal(r.offer(0, "a", 1), "deliver"); // deliver "a", then drain
 * r.advance();
 * assert.equal(r.next(), "b");
 * assert.equal(r.offer(0, "a", 1), "duplicate");
 * ```
 *
 * @module
 */

interface Held<T> {
  item: T;
  bytes: number;
}

/** What {@linkcode Reorder.offer} says about a message. */
export type Offer = "deliver" | "hold" | "duplicate";

/** Messages by sequence number, delivered in order. */
export class Reorder<T> {
  #next = 0;
  #held = new Map<number, Held<T>>();
  #bytes = 0;

  /** The sequence number delivered next. */
  get expected(): number {
    return this.#next;
  }

  /** Messages held. */
  get size(): number {
    return this.#held.size;
  }

  /** Bytes held. */
  get bytes(): number {
    return this.#bytes;
  }

  /**
   * A message arrived.
   *
   * @param seq Its sequence number.
   * @param item The message.
   * @param bytes Its size, for the byte count.
   * @returns `deliver`: it is the expected one (deliver it, call
   *   {@linkcode Reorder.advance}, then take {@linkcode Reorder.next} until
   *   `undefined`); `hold`: kept for later; `duplicate`: seen before, dropped.
   */
  offer(seq: number, item: T, bytes: number): Offer {
    const ahead = (seq - this.#next) >>> 0;
    if (ahead === 0) return "deliver";
    if (ahead >= 0x80000000 || this.#held.has(seq)) return "duplicate";
    this.#held.set(seq, { item, bytes });
    this.#bytes += bytes;
    return "hold";
  }

  /** The expected message was delivered. */
  advance(): void {
    this.#next = (this.#next + 1) >>> 0;
  }

  /**
   * The next held message, if it is now the expected one; it counts as
   * delivered (the expected number advances).
   *
   * @returns The message, or `undefined`.
   */
  next(): T | undefined {
    if (this.#held.size === 0) return undefined;
    const h = this.#held.get(this.#next);
    if (h === undefined) return undefined;
    this.#held.delete(this.#next);
    this.#bytes -= h.bytes;
    this.advance();
    return h.item;
  }

  /** Drop everything held. */
  clear(): void {
    this.#held.clear();
    this.#bytes = 0;
  }
}

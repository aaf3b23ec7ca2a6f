/**
 * Copies of queued messages for a stream, in slabs used again once the
 * link has sent what they hold (`sendData` needs a copy: the caller may
 * change its buffer as soon as the call returns).
 *
 * @module
 */

/** Bytes per slab of {@linkcode SendCopies}, and how many spare slabs all connections keep. */
const SLAB = 16 * 1024;
const SPARE = 64;
const spare: Uint8Array[] = [];

/**
 * Where `sendData` copies one stream's messages: slabs of 16 KiB, used again
 * once the link has taken every message in them. The link copies a message
 * into the codec when it sends it and keeps no reference; what it still
 * holds is the stream's `bufferedAmount`, and a stream's messages leave in
 * order, so everything copied before its last `bufferedAmount` bytes is
 * free. A slab that frees up goes to a shared pool of spares.
 */
export class SendCopies {
  /** Oldest first, the last one being filled; `#ends[i]` is the copied-byte count at the end of slab i. */
  #slabs: Uint8Array[] = [];
  #ends: number[] = [];
  #used = SLAB;
  #copied = 0;

  /**
   * @param bytes The message (at most a slab).
   * @param buffered The stream's `bufferedAmount` now.
   * @returns The copy.
   */
  copy(bytes: Uint8Array, buffered: number): Uint8Array {
    const taken = this.#copied - buffered;
    const slabs = this.#slabs;
    while (slabs.length > 0 && this.#ends[0] <= taken) {
      if (slabs.length === 1) {
        this.#used = 0; // the link took all of it: fill it again
        break;
      }
      const free = slabs.shift()!;
      this.#ends.shift();
      if (spare.length < SPARE) spare.push(free);
    }
    const n = bytes.length;
    if (this.#used + n > SLAB) {
      slabs.push(spare.pop() ?? new Uint8Array(SLAB));
      this.#ends.push(this.#copied);
      this.#used = 0;
    }
    const at = this.#used;
    const c = slabs[slabs.length - 1].subarray(at, at + n);
    c.set(bytes);
    this.#used = at + n;
    this.#copied += n;
    this.#ends[slabs.length - 1] = this.#copied;
    return c;
  }

  /** Take back the last copy (`n` bytes): the link refused it. */
  undo(n: number): void {
    this.#used -= n;
    this.#copied -= n;
    this.#ends[this.#ends.length - 1] = this.#copied;
  }
}

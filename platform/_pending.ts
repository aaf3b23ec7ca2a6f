/**
 * An entry of an adapter's write queue, shared by the Deno and Bun adapters.
 *
 * @module
 */
import type { BusinessError } from "../core/errors.ts";

/**
 * Unsent bytes: a coalescing chunk (`fill` bytes of a pooled buffer), bytes
 * the handle owns, or lent bytes with the promise to settle once written.
 */
export class Pending {
  /** The bytes. */
  bytes: Uint8Array;
  /** How many of them are used (coalescing chunks). */
  fill: number;
  /** Whether the buffer returns to the adapter's pool once written. */
  pooled: boolean;
  /** Settles the lent bytes' promise once written. */
  resolve: (() => void) | undefined = undefined;
  /** Fails the lent bytes' promise if the stream closes first. */
  reject: ((e: BusinessError<unknown>) => void) | undefined = undefined;

  /**
   * @param bytes The bytes.
   * @param fill How many are used.
   * @param pooled Whether the buffer is pooled.
   */
  constructor(bytes: Uint8Array, fill: number, pooled: boolean) {
    this.bytes = bytes;
    this.fill = fill;
    this.pooled = pooled;
  }
}

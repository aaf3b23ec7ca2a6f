/**
 * The write policy the adapters share: which lent writes are copied
 * ({@linkcode SMALL_WRITE}), and the entry of the Deno and Bun adapters'
 * write queues ({@linkcode Pending}).
 *
 * @module
 */
import type { BusinessError } from "../core/errors.ts";

/**
 * Lent writes below this many bytes are copied (cheap, and the caller goes on
 * at once); larger ones are kept without a copy until written.
 */
export const SMALL_WRITE: number = 16 * 1024;

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

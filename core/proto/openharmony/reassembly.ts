/**
 * Reassembly of GATT values into messages, exactly as an OpenHarmony device
 * does it (`ConnGattTransRecv`), with one buffer per BLE connection and
 * direction, shared by both characteristics:
 *
 * - a value OpenHarmony's header check refuses is dropped (shorter than 16
 *   bytes, `size` not the bytes that follow, `total` over 40000, `size` over
 *   `total`, `offset + size` over `total`);
 * - a one-value message (`size == total`) is delivered at once, even while
 *   another message is half assembled (which stays); an empty one is dropped;
 * - a fragment whose `seq` or `total` differs from the half-assembled
 *   message's discards that message, then is kept. OpenHarmony marks an empty
 *   buffer with `seq` 0, so fragments of a message numbered 0 are not
 *   protected by this rule: a later message's fragments join them (we do the
 *   same, so that we drop and deliver what a device drops and delivers);
 * - a fragment at an offset already held is dropped; fragments are kept in
 *   offset order, so out-of-order fragments are re-ordered;
 * - once the bytes held reach `total`, the fragments must tile the message
 *   from offset 0 without gaps, or everything held is discarded; more bytes
 *   than `total` also discard everything.
 *
 * Memory: the bytes held stay below `total` (at most 40000) and the fragments
 * held are at most 40001 (one per offset), per direction of a link.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { fragment } from "./wire.ts";
 * const r = new Reassembler();
 * const writes = fragment(new Uint8Array(10).fill(7), 23, 5);
 * assert.deepEqual(r.push(writes[0]), { type: "partial" });
 * const done = r.push(writes[2]);
 * assert.equal(done.type, "partial");
 * const msg = r.push(writes[1]);
 * assert.ok(msg.type === "message" && msg.data.length === 10);
 * ```
 *
 * @module
 */
import { decodeTransHeader, HeaderSize } from "./wire.ts";

/** What one GATT value did to the reassembly buffer. */
export type ReassemblyResult =
  | {
    /** A whole message is ready. */
    type: "message";
    /** The message, a copy the caller owns. */
    data: Uint8Array;
    /** Why a half-assembled message was discarded first, if one was. */
    discarded?: string;
  }
  | {
    /** The fragment is kept; the message is not complete yet. */
    type: "partial";
    /** Why a half-assembled message was discarded first, if one was. */
    discarded?: string;
  }
  | {
    /** The value was dropped (and possibly everything held with it). */
    type: "rejected";
    /** Why, in OpenHarmony's terms. */
    reason: string;
    /** Why a half-assembled message was discarded first, if one was. */
    discarded?: string;
  };

interface Piece {
  offset: number;
  data: Uint8Array;
}

/** One reassembly buffer (one direction of one BLE connection). */
export class Reassembler {
  #seq = 0;
  #total = 0;
  #received = 0;
  #pieces: Piece[] = [];

  /** Payload bytes held for a half-assembled message. */
  get buffered(): number {
    return this.#received;
  }

  /** Fragments held for a half-assembled message. */
  get fragments(): number {
    return this.#pieces.length;
  }

  /**
   * Take one GATT value.
   *
   * @param value The value as received (header + chunk).
   * @returns A message, `partial`, or why the value was dropped.
   */
  push(value: Uint8Array): ReassemblyResult {
    const h = decodeTransHeader(value);
    if (typeof h === "string") return { type: "rejected", reason: h };
    const chunk = value.subarray(HeaderSize.TRANS);
    if (h.size === h.total) {
      if (h.total === 0) return { type: "rejected", reason: "empty message" };
      return { type: "message", data: chunk.slice() };
    }
    let discarded: string | undefined;
    if (this.#seq !== 0 && (this.#seq !== h.seq || this.#total !== h.total)) {
      discarded = this.#seq !== h.seq
        ? `fragment of message ${h.seq} discards ${this.#received} bytes of message ${this.#seq}`
        : `fragment with total ${h.total} discards ${this.#received} bytes of a message of ${this.#total}`;
      this.clear();
    }
    const pieces = this.#pieces;
    let lo = 0;
    let hi = pieces.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (pieces[mid].offset < h.offset) lo = mid + 1;
      else hi = mid;
    }
    if (lo < pieces.length && pieces[lo].offset === h.offset) {
      return with_(
        { type: "rejected", reason: `duplicate fragment at offset ${h.offset}` },
        discarded,
      );
    }
    pieces.splice(lo, 0, { offset: h.offset, data: chunk.slice() });
    this.#seq = h.seq;
    this.#received += h.size;
    this.#total = h.total;
    if (this.#received < this.#total) return with_({ type: "partial" }, discarded);
    if (this.#received > this.#total) {
      const reason = `${this.#received} bytes received for a message of ${this.#total}: ` +
        `all discarded`;
      this.clear();
      return with_({ type: "rejected", reason }, discarded);
    }
    const out = new Uint8Array(this.#total);
    let at = 0;
    for (const p of pieces) {
      if (p.offset !== at) {
        const reason = `fragments are not contiguous at offset ${at}: all discarded`;
        this.clear();
        return with_({ type: "rejected", reason }, discarded);
      }
      out.set(p.data, at);
      at += p.data.length;
    }
    this.clear();
    return with_({ type: "message", data: out }, discarded);
  }

  /** Forget the half-assembled message. */
  clear(): void {
    this.#seq = 0;
    this.#total = 0;
    this.#received = 0;
    this.#pieces = [];
  }
}

function with_<T extends ReassemblyResult>(r: T, discarded: string | undefined): T {
  if (discarded !== undefined) r.discarded = discarded;
  return r;
}

/**
 * Transfers of a session (`sendData` bytes and `sendImage` JPEGs): the
 * sender cuts one into `begin` + `chunk` messages, the receiver allocates
 * the final buffer once, at `begin`, within a named cap and a device-wide
 * budget, and fills it chunk by chunk. So a 100 MiB transfer costs the
 * receiver its 100 MiB buffer and nothing more, and never a link message
 * larger than a chunk.
 *
 * Transfers of one session go one after another: a `begin` arrives only
 * after every chunk of the transfer before it.
 *
 * @module
 */
import { CHUNK_BYTES, MAX_DATA_BYTES, MAX_IMAGE_WIRE_BYTES } from "./types.ts";
import { encodeBegin, encodeChunk, encodePiece, TransferKind } from "./wire.ts";

/** Bytes held by transfers not yet delivered, shared by every session of a device. */
export interface ReceiveBudget {
  /** The bound (bytes). */
  readonly limit: number;
  /** Bytes held now. */
  used: number;
}

/** What a `begin` or `chunk` leads to. */
export type InboundResult =
  | undefined
  | { type: "refuse"; id: number; reason: string }
  | { type: "done"; id: number; kind: number; bytes: Uint8Array }
  | { type: "error"; message: string };

/**
 * The largest transfer of a kind a peer may send.
 *
 * @param kind `TransferKind`.
 * @returns Bytes.
 */
export function maxTransfer(kind: number): number {
  return kind === TransferKind.IMAGE ? MAX_IMAGE_WIRE_BYTES : MAX_DATA_BYTES;
}

/** The receiving side of a session's transfers. */
export class Inbound {
  #budget: ReceiveBudget;
  #current: { id: number; kind: number; bytes: Uint8Array; filled: number } | undefined;
  #refused = -1;

  /** @param budget The device's receive budget. */
  constructor(budget: ReceiveBudget) {
    this.#budget = budget;
  }

  /**
   * A transfer starts.
   *
   * @param id Its id.
   * @param kind `TransferKind`.
   * @param total Its length.
   * @returns Nothing, a refusal to send back, the transfer (when empty), or a protocol error.
   */
  begin(id: number, kind: number, total: number): InboundResult {
    if (this.#current !== undefined) {
      return {
        type: "error",
        message: `transfer ${id} began before transfer ${this.#current.id} ended`,
      };
    }
    if (kind !== TransferKind.DATA && kind !== TransferKind.IMAGE) {
      return { type: "error", message: `transfer ${id} is of unknown kind ${kind}` };
    }
    const cap = maxTransfer(kind);
    if (total > cap) {
      this.#refused = id;
      return { type: "refuse", id, reason: `${total} bytes is over the ${cap}-byte limit` };
    }
    const b = this.#budget;
    if (b.used + total > b.limit) {
      this.#refused = id;
      return {
        type: "refuse",
        id,
        reason: `${total} bytes would exceed the receive budget (${b.used} of ${b.limit} in use)`,
      };
    }
    if (total === 0) return { type: "done", id, kind, bytes: new Uint8Array(0) };
    b.used += total;
    this.#current = { id, kind, bytes: new Uint8Array(total), filled: 0 };
    return undefined;
  }

  /**
   * A piece of a transfer arrived.
   *
   * @param id The transfer's id.
   * @param bytes The piece (copied).
   * @returns Nothing, the complete transfer, or a protocol error.
   */
  chunk(id: number, bytes: Uint8Array): InboundResult {
    const c = this.#current;
    if (c === undefined || c.id !== id) {
      if (id === this.#refused) return undefined;
      return { type: "error", message: `a chunk of transfer ${id}, which is not under way` };
    }
    if (c.filled + bytes.length > c.bytes.length) {
      return {
        type: "error",
        message: `transfer ${id} overflows its ${c.bytes.length} bytes`,
      };
    }
    c.bytes.set(bytes, c.filled);
    c.filled += bytes.length;
    if (c.filled < c.bytes.length) return undefined;
    this.#current = undefined;
    this.#budget.used -= c.bytes.length;
    return { type: "done", id, kind: c.kind, bytes: c.bytes };
  }

  /**
   * The sender gave a transfer up: drop it if it is the one under way.
   *
   * @param id The transfer's id.
   * @returns Whether it was under way.
   */
  cancel(id: number): boolean {
    if (this.#current?.id !== id) return false;
    this.abort();
    return true;
  }

  /** Drop the transfer under way (the session ended). */
  abort(): void {
    if (this.#current === undefined) return;
    this.#budget.used -= this.#current.bytes.length;
    this.#current = undefined;
  }

  /** Bytes held by the transfer under way. */
  get held(): number {
    return this.#current?.bytes.length ?? 0;
  }
}

/** One transfer being sent. */
export interface OutboundTransfer {
  /** Its id. */
  id: number;
  /** `TransferKind`. */
  kind: number;
  /** Its bytes. */
  bytes: Uint8Array;
  /** Settled by the peer's `ack` or `refuse`, or when the session ends. */
  settle: (error: Error | undefined) => void;
}

/**
 * The sending side of a session's transfers: the next message to send, one
 * at a time. To a peer of wire version 2 ({@linkcode Outbound.split}) a
 * piece goes as a `piece` header and then the bytes themselves, a view of
 * the caller's buffer; that view is owed from the moment the header is
 * taken, and is the next message whatever happens to its transfer.
 */
export class Outbound {
  #queue: OutboundTransfer[] = [];
  #offset = -1;
  #awaiting = new Map<number, OutboundTransfer>();
  #nextId = 1;
  #split = false;
  #owed: Uint8Array | undefined;

  /** A new transfer id. */
  nextId(): number {
    const id = this.#nextId;
    this.#nextId = (this.#nextId + 1) >>> 0 || 1;
    return id;
  }

  /**
   * Send pieces as a header and their bytes (the peer speaks wire version 2),
   * or as `chunk` copies (version 1).
   *
   * @param on Whether to split.
   */
  split(on: boolean): void {
    this.#split = on;
  }

  /**
   * Queue a transfer.
   *
   * @param t The transfer.
   */
  push(t: OutboundTransfer): void {
    this.#queue.push(t);
  }

  /** Whether a message is ready. */
  get pending(): boolean {
    return this.#owed !== undefined || this.#queue.length > 0;
  }

  /** Whether the bytes of a piece whose header was taken are still to go (nothing else may go first). */
  get owed(): boolean {
    return this.#owed !== undefined;
  }

  /**
   * The next message: the same until {@linkcode Outbound.sent} says the link
   * took it (a `begin`, `chunk` or `piece` header is a new buffer each call,
   * a piece's bytes a view of the transfer's).
   *
   * @returns The message, or `undefined` when nothing is queued.
   */
  peek(): Uint8Array | undefined {
    if (this.#owed !== undefined) return this.#owed;
    const t = this.#queue[0];
    if (t === undefined) return undefined;
    if (this.#offset < 0) return encodeBegin(t.id, t.kind, t.bytes.length);
    const end = Math.min(t.bytes.length, this.#offset + CHUNK_BYTES);
    if (this.#split) return encodePiece(t.id, end - this.#offset);
    return encodeChunk(t.id, t.bytes, { start: this.#offset, end });
  }

  /** The message from {@linkcode Outbound.peek} was taken by the link. */
  sent(): void {
    if (this.#owed !== undefined) {
      this.#owed = undefined;
      return;
    }
    const t = this.#queue[0];
    if (t === undefined) return;
    if (this.#offset < 0) this.#offset = 0;
    else {
      const end = Math.min(t.bytes.length, this.#offset + CHUNK_BYTES);
      if (this.#split) this.#owed = t.bytes.subarray(this.#offset, end);
      this.#offset = end;
    }
    if (this.#offset >= t.bytes.length) {
      this.#queue.shift();
      this.#offset = -1;
      this.#awaiting.set(t.id, t);
    }
  }

  /**
   * The peer acknowledged or refused a transfer.
   *
   * @param id The transfer.
   * @param error Why it was refused, or `undefined`.
   * @returns The transfer, or `undefined` when unknown.
   */
  settle(id: number, error: Error | undefined): OutboundTransfer | undefined {
    let t = this.#awaiting.get(id);
    if (t !== undefined) {
      this.#awaiting.delete(id);
    } else if (this.#queue[0]?.id === id && this.#offset >= 0) {
      // Refused while still being sent: stop sending it.
      t = this.#queue.shift()!;
      this.#offset = -1;
    } else {
      return undefined;
    }
    t.settle(error);
    return t;
  }

  /**
   * Give a transfer up (its sender's `AbortSignal`): it is not sent on, and
   * not settled.
   *
   * @param id The transfer.
   * @returns `undefined` when it is not queued or awaited (settled already);
   *   else whether a piece of it was sent (the peer is to be told), and
   *   whether it was the one being sent.
   */
  cancel(id: number): { started: boolean; head: boolean } | undefined {
    if (this.#awaiting.delete(id)) return { started: true, head: false };
    const at = this.#queue.findIndex((t) => t.id === id);
    if (at < 0) return undefined;
    this.#queue.splice(at, 1);
    if (at > 0) return { started: false, head: false };
    const started = this.#offset >= 0;
    this.#offset = -1;
    return { started, head: true };
  }

  /**
   * Fail every transfer (the session ended).
   *
   * @param error Why.
   */
  fail(error: Error): void {
    const all = [...this.#queue, ...this.#awaiting.values()];
    this.#queue = [];
    this.#awaiting.clear();
    this.#offset = -1;
    this.#owed = undefined;
    for (const t of all) t.settle(error);
  }
}

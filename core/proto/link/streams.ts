/**
 * A stream as the link sees it: state, owner, send queue, credit and the
 * receive-side byte count. Nothing is allocated for an idle stream beyond
 * this one small object: the send queue appears with the first queued
 * message and goes again once it is empty.
 *
 * States (`h11`-style: every transition of a stream is in `core/proto/link/mod.ts`):
 *
 * ```
 *  opening --accept--> open --closeStream--> closing --(close sent)--> closed
 *     |                 |                                               ^
 *     +--reject---------+---- peer close / link lost -------------------+
 *  incoming --accept--> open        incoming --reject--> closed
 * ```
 *
 * @module
 */

import type { Control } from "./control.ts";
import type { PartialHold } from "./_state.ts";

/** State of a stream as the link sees it. */
export type StreamState = "opening" | "incoming" | "open" | "closing" | "closed";

/** One queued message (or control message) of a stream. */
export interface Entry {
  /** Frame type. */
  type: number;
  /** The bytes; a control message is kept as such and encoded when sent. */
  payload: Uint8Array | Control;
  /** The stream is finished once this entry is sent (our close or reject). */
  final: boolean;
}

/** A message that arrived ahead of its turn, waiting in a stream's reorder buffer. */
export interface Early {
  /** Frame type. */
  type: number;
  /** DATA as an ArrayBuffer of its own; other types as a copy of their bytes. */
  data: ArrayBuffer;
}

/** A stream of a link. */
export class Stream {
  /** The stream id. */
  readonly id: number;
  /** Where it is in its life. */
  state: StreamState;
  /** Whatever the link's user attached (returned in every event of the stream). */
  owner: unknown;
  /** Payload bytes of DATA entries queued and not yet handed to a channel. */
  queued = 0;
  /** Bytes the peer still lets us send (its window minus what is in flight). */
  credit: number;
  /** Bytes delivered to the user and not yet credited back to the peer. */
  consumed = 0;
  /** Bytes the peer may still send before it must wait for credit (our window left). */
  rxLeft: number;
  /** Largest message the peer may send on this stream. */
  maxMessage: number;
  /** Sequence number of our next message on this stream. */
  txSeq = 0;
  /** Sequence number of the peer's next message on this stream. */
  rxSeq = 0;
  /** Messages that arrived ahead of `rxSeq` (allocated on first use). */
  early: Map<number, Early> | undefined;
  /** Bytes in `early`, each message counting `HELD_OVERHEAD` (`_inbound.ts`) more than its length. */
  held = 0;
  /** Whether the stream waits in one of the scheduler's lines. */
  ready = false;
  /** Whether its turn came from the scheduler's new line (quiet streams first). */
  fresh = false;
  /** Bytes it may still send in its scheduler turn (deficit round robin). */
  deficit = 0;
  /** Payload bytes of the head entry already handed to a channel (0 until its first frame). */
  sentOff = 0;
  /** Sequence number of the head entry once its first frame went out. */
  sentSeq = 0;
  /**
   * Its share of the link's half-sent messages (`MAX_PARTIAL`): `held` while
   * its head entry is a message sent in part, `reserved` when one was handed
   * to it as it left the scheduler's parked line, else `none`.
   */
  slot: "none" | "reserved" | "held" = "none";
  /** Bytes of the message its slot is for. */
  slotBytes = 0;
  /**
   * The hold of its half-sent message in a link that keeps copies (several
   * channels): the slot stays taken until every frame is acknowledged.
   */
  hold: PartialHold | undefined;
  /** Whether the user wants `drain` once the queue is back to half full. */
  wantDrain = false;
  #items: Entry[] | undefined;
  #head = 0;

  /**
   * @param id The stream id.
   * @param state Its first state.
   * @param owner The user's tag.
   * @param flow The peer's window (`credit`, 0 until known), ours (`rxLeft`)
   *   and the largest message the peer may send (`maxMessage`).
   */
  constructor(
    id: number,
    state: StreamState,
    owner: unknown,
    flow: { credit: number; rxLeft: number; maxMessage: number },
  ) {
    this.id = id;
    this.state = state;
    this.owner = owner;
    this.credit = flow.credit;
    this.rxLeft = flow.rxLeft;
    this.maxMessage = flow.maxMessage;
  }

  /** Entries queued. */
  get length(): number {
    return this.#items === undefined ? 0 : this.#items.length - this.#head;
  }

  /**
   * Queue an entry.
   *
   * @param e The entry.
   */
  push(e: Entry): void {
    (this.#items ??= []).push(e);
  }

  /**
   * The next entry, without taking it.
   *
   * @returns The entry, if any.
   */
  peek(): Entry | undefined {
    return this.#items?.[this.#head];
  }

  /**
   * Take the next entry.
   *
   * @returns The entry, if any.
   */
  shift(): Entry | undefined {
    const items = this.#items;
    if (items === undefined || this.#head >= items.length) return undefined;
    const e = items[this.#head];
    items[this.#head++] = undefined as unknown as Entry;
    if (this.#head === items.length) {
      this.#items = undefined;
      this.#head = 0;
    } else if (this.#head >= 1024 && this.#head * 2 >= items.length) {
      this.#items = items.slice(this.#head);
      this.#head = 0;
    }
    return e;
  }

  /** Drop every queued entry. */
  clear(): void {
    this.#items = undefined;
    this.#head = 0;
    this.queued = 0;
  }
}

/**
 * The receiving half of a link: frames in, events out. Every stream numbers
 * its messages by its own sequence, so each stream is put back in order on
 * its own (messages of other streams never wait behind it), and what a peer
 * makes us hold is bounded three ways:
 *
 * - per stream, by the window we granted: data beyond it, a message over the
 *   stream's size limit, data before we accepted the stream, or messages
 *   held out of order beyond {@linkcode maxHeld} (the window, and
 *   {@linkcode HELD_OVERHEAD} bytes for each of the most messages a sender
 *   within its credit can have out of order, so empty messages are not
 *   free) resets that stream only (`closed` with `LINK_CLOSED` here, a CLOSE
 *   to the peer);
 * - per link, by `budget`: bytes in reassembly and reordering beyond it close
 *   the link;
 * - frames for streams that do not exist are dropped unread.
 *
 * @module
 */
import {
  CodecErrorCode,
  codecErrorMessage,
  DisconnectReason,
  ErrorCode,
} from "../../error_codes.ts";
import { copyOut, type Frame, FrameType, type Message } from "../frame.ts";
import { decodeControl } from "./control.ts";
import { closeReason, type Outbound } from "./_outbound.ts";
import type { LinkState } from "./_state.ts";
import { SEQ_WINDOW } from "./_seq.ts";
import { Stream } from "./streams.ts";

const { DATA, CONTROL, CREDIT, PING, CLOSE } = FrameType;

/**
 * What a message held out of order costs beyond its bytes (its map entry and
 * buffer object), in the stream's window and the link's budget.
 */
export const HELD_OVERHEAD = 64;

/**
 * Most bytes a stream may hold out of order, each message counting
 * {@linkcode HELD_OVERHEAD} more than its length: its window (the data a
 * sender within its credit can have sent past a missing message) and the
 * overhead of {@linkcode SEQ_WINDOW} messages (a sender numbers no frame
 * that far past one the peer lacks, so no more of its messages can be
 * waiting behind a missing one). Credit counts only the data, so a bound of
 * the window alone reset a sender that kept to its credit: a 4 MiB window
 * of 1 KiB messages held behind a lost channel's frames costs 4.25 MiB.
 *
 * @param window The stream's receive window (bytes).
 * @returns The bound (bytes).
 */
export function maxHeld(window: number): number {
  return window + SEQ_WINDOW * HELD_OVERHEAD;
}

/** The receiving half of a link. */
export class Inbound {
  #st: LinkState;
  #out: Outbound;
  #defaultWindow: number;
  /** @internal The frame handler a decoder calls. */
  readonly onFrame = (f: Frame): void => this.#frame(f);
  #onMessage = (m: Message): void => {
    const d = m.data;
    const own = d.byteOffset === 0 && d.byteLength === d.buffer.byteLength;
    const s = this.#st.streams.get(m.stream);
    if (s === undefined) return;
    this.#arrive(s, m.type, m.seq, own ? d.buffer as ArrayBuffer : copyOut(d, 0, d.length));
  };

  /**
   * @param st The link's shared state.
   * @param out The sending half (for credit, resets and refusals).
   * @param defaultWindow The window assumed when a peer names none.
   */
  constructor(st: LinkState, out: Outbound, defaultWindow: number) {
    this.#st = st;
    this.#out = out;
    this.#defaultWindow = defaultWindow;
  }

  /**
   * Bytes the peer makes this link hold now (reassembly and reordering).
   *
   * @returns Bytes.
   */
  get held(): number {
    return this.#st.state === "closed" ? 0 : this.#st.held + this.#st.reassembler.pending;
  }

  #frame(f: Frame): void {
    const st = this.#st;
    if (st.state === "closed") return;
    const unread = this.#out.unread();
    if (unread > 0) {
      // One frame adds a few answers at most (a refusal, a reset, credit for what it released).
      st.broken(`the peer left ${unread} answers unread`);
      return;
    }
    switch (f.type) {
      case PING:
        return;
      case CREDIT: {
        const s = st.streams.get(f.stream);
        if (s !== undefined) {
          s.credit += f.seq;
          if (this.#out.sendable(s)) st.scheduler.add(s, false);
        }
        return;
      }
      case CONTROL:
        if (f.stream === 0) {
          if (decodeControl(f.payload)?.op === "bye") st.lose(`Link closed by ${st.peerId}`);
          return;
        }
    }
    const s = st.streams.get(f.stream);
    if (s === undefined) {
      // Only an open (the first message of a new stream) can create one;
      // anything else belongs to a stream that is gone: dropped unread.
      if (f.type !== CONTROL || f.seq !== 0 || f.offset !== 0 || f.length !== f.total) return;
      this.#open(f.stream, f.payload);
      return;
    }
    if (f.type === DATA) {
      if (s.state === "incoming") {
        this.#reset(s, "data before the stream was accepted");
        return;
      }
      if (f.total > s.maxMessage) {
        this.#reset(s, `a ${f.total}-byte message, over the stream's ${s.maxMessage}-byte limit`);
        return;
      }
    }
    const ahead = (f.seq - s.rxSeq) >>> 0;
    if (ahead >= 0x80000000) return; // delivered already: a duplicate
    if (f.offset === 0 && f.length === f.total) {
      if (s.early?.has(f.seq)) return;
      if (f.type === DATA && !this.#charge(s, f.length)) return;
      if (ahead === 0 && f.type !== DATA) {
        // A control or close in order: act on it in place, no copy.
        s.rxSeq = (s.rxSeq + 1) >>> 0;
        this.#deliver(s, f.type, f.payload);
        this.#drain(s);
        return;
      }
      // Each message gets an ArrayBuffer of its own: receivers hand it on.
      const at = f.payloadOffset;
      this.#arrive(s, f.type, f.seq, copyOut(f.bytes, at, at + f.length));
      return;
    }
    // A message held out of order is complete: a piece of it sent again is dropped.
    if (s.early?.has(f.seq)) return;
    const over = f.type === DATA && s.rxLeft < f.length;
    const err = st.reassembler.push(f, this.#onMessage);
    if (err === 0) {
      if (over) {
        this.#charge(s, f.length); // resets the stream
        return;
      }
      if (f.type === DATA && s.state !== "closed") s.rxLeft -= f.length;
      this.#checkBudget();
      return;
    }
    if (err === CodecErrorCode.DUPLICATE_FRAGMENT) return; // a piece sent again (another MTU)
    if (err === CodecErrorCode.LINK_LIMIT_EXCEEDED || err === CodecErrorCode.TOO_MANY_MESSAGES) {
      st.broken(codecErrorMessage(err));
      return;
    }
    const live = st.streams.get(f.stream);
    if (live !== undefined) this.#reset(live, codecErrorMessage(err));
  }

  /** Count DATA bytes against the stream's window; reset it when the peer overruns. */
  #charge(s: Stream, n: number): boolean {
    if (s.rxLeft < n) {
      this.#reset(s, `more data than the ${this.#st.limits.window}-byte window allows`);
      return false;
    }
    s.rxLeft -= n;
    return true;
  }

  /** A whole message of a stream: deliver it in the stream's order. */
  #arrive(s: Stream, type: number, seq: number, data: ArrayBuffer): void {
    if (seq !== s.rxSeq) {
      const early = s.early ??= new Map();
      if (early.has(seq)) return;
      const cost = data.byteLength + HELD_OVERHEAD;
      const max = maxHeld(this.#st.limits.window);
      if (s.held + cost > max) {
        this.#reset(s, `more messages out of order than the ${max} bytes a stream may hold`);
        return;
      }
      early.set(seq, { type, data });
      s.held += cost;
      this.#st.held += cost;
      this.#checkBudget();
      return;
    }
    s.rxSeq = (s.rxSeq + 1) >>> 0;
    this.#deliver(s, type, data);
    this.#drain(s);
  }

  /** Deliver the held messages of a stream that are now in order. */
  #drain(s: Stream): void {
    const early = s.early;
    while (early !== undefined && early.size > 0 && s.state !== "closed") {
      const next = early.get(s.rxSeq);
      if (next === undefined) return;
      early.delete(s.rxSeq);
      s.held -= next.data.byteLength + HELD_OVERHEAD;
      this.#st.held -= next.data.byteLength + HELD_OVERHEAD;
      s.rxSeq = (s.rxSeq + 1) >>> 0;
      this.#deliver(s, next.type, next.data);
    }
  }

  /** A message in the stream's order: DATA as an ArrayBuffer, others as bytes. */
  #deliver(s: Stream, type: number, data: ArrayBuffer | Uint8Array): void {
    const st = this.#st;
    switch (type) {
      case DATA: {
        if (s.state !== "open" && s.state !== "closing") return;
        st.events.push({ type: "data", stream: s.id, owner: s.owner, data: data as ArrayBuffer });
        s.consumed += data.byteLength;
        if (s.consumed * 8 >= st.limits.window) {
          this.#out.credit(s, s.consumed);
          s.consumed = 0;
        }
        return;
      }
      case CLOSE: {
        this.forget(s);
        const wasOpen = s.state === "open" || s.state === "opening";
        s.state = "closed";
        if (wasOpen) {
          const bytes = data instanceof Uint8Array ? data : new Uint8Array(data);
          st.events.push({
            type: "closed",
            stream: s.id,
            owner: s.owner,
            reason: closeReason(bytes),
          });
        }
        return;
      }
      case CONTROL:
        this.#control(s, data instanceof Uint8Array ? data : new Uint8Array(data));
        return;
    }
  }

  /** A peer's open: a new stream, or a refusal when a limit is reached. */
  #open(id: number, payload: Uint8Array): void {
    const st = this.#st;
    const c = decodeControl(payload);
    if (c?.op === "unknown") return; // a later version's operation: ignored
    const peers = (id % 2 === 1) === (st.peerId < st.localId);
    if (!peers) {
      st.broken(`open of stream ${id}, an id of this device's`);
      return;
    }
    if (c === undefined || c.op !== "open") {
      this.#out.refuse(id, ErrorCode.INTERNAL_ERROR);
      st.events.push({
        type: "protocolError",
        stream: id,
        message: `${st.peerId} sent a malformed open of connection ${id}; refused`,
      });
      return;
    }
    if (st.state !== "open" || st.streams.size >= st.limits.maxStreams) {
      this.#out.refuse(id, ErrorCode.INTERNAL_ERROR);
      st.events.push({
        type: "protocolError",
        stream: id,
        message: st.state === "open"
          ? `${st.peerId} opened more than ${st.limits.maxStreams} connections on one link; refused`
          : `${st.peerId} opened a connection while the link closes; refused`,
      });
      return;
    }
    const s = new Stream(id, "incoming", undefined, {
      credit: windowOf(c.window, this.#defaultWindow),
      rxLeft: st.limits.window,
      maxMessage: st.limits.maxMessage,
    });
    s.rxSeq = 1;
    st.streams.set(id, s);
    st.events.push({
      type: "open",
      link: st.tag,
      stream: id,
      name: c.name,
      kind: c.kind,
      bundle: c.bundle,
    });
  }

  /** A control message of an existing stream, in its order. */
  #control(s: Stream, payload: Uint8Array): void {
    const st = this.#st;
    const c = decodeControl(payload);
    if (c === undefined) {
      this.#reset(s, "a malformed control message");
      return;
    }
    switch (c.op) {
      case "open":
        st.broken(`open of stream ${s.id}, which is in use`);
        return;
      case "accept":
        if (s.state !== "opening") return;
        s.state = "open";
        s.credit = windowOf(c.window, this.#defaultWindow);
        st.events.push({ type: "opened", stream: s.id, owner: s.owner });
        if (this.#out.sendable(s)) st.scheduler.add(s, true);
        return;
      case "reject":
        if (s.state !== "opening") return;
        this.forget(s);
        s.state = "closed";
        st.events.push({ type: "rejected", stream: s.id, owner: s.owner, code: c.code });
        return;
    }
  }

  /** The peer broke a rule on one stream: reset it, tell both owners. */
  #reset(s: Stream, why: string): void {
    const st = this.#st;
    this.forget(s);
    const wasOpen = s.state === "open" || s.state === "opening" || s.state === "closing";
    if (s.state !== "closed") this.#out.reset(s.id, s.txSeq, DisconnectReason.LINK_CLOSED);
    s.state = "closed";
    st.events.push({
      type: "protocolError",
      stream: s.id,
      message: `${st.peerId} sent ${why} on connection ${s.id}; connection reset`,
    });
    if (wasOpen) {
      st.events.push({
        type: "closed",
        stream: s.id,
        owner: s.owner,
        reason: DisconnectReason.LINK_CLOSED,
      });
    }
  }

  /**
   * A stream is done: drop it, what it queued, and what it holds.
   *
   * @param s The stream.
   */
  forget(s: Stream): void {
    const st = this.#st;
    st.streams.delete(s.id);
    this.#out.abandon(s);
    st.clearStream(s);
    st.reassembler.resetStream(s.id);
    if (s.early !== undefined) {
      st.held -= s.held;
      s.held = 0;
      s.early = undefined;
    }
  }

  #checkBudget(): void {
    const st = this.#st;
    const held = this.held;
    if (held > st.limits.budget) {
      st.broken(`the peer made it hold ${held} bytes, over its budget of ${st.limits.budget}`);
    }
  }
}

function windowOf(w: number, fallback: number): number {
  return Number.isInteger(w) && w > 0 ? w : fallback;
}

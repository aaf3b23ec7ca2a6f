/**
 * The link state machine: everything between this device and one peer,
 * sans-IO. A link owns a set of channels (physical paths: TCP connections
 * today, BLE characteristics later) and multiplexes streams (logical
 * connections) over them: stream open / accept / reject / close, per-stream
 * credit flow control, a scheduler that coalesces frames of many streams into
 * one channel write, per-link message sequence numbers so messages sent over
 * several channels are merged back in order, and keep-alive with peer-lost
 * detection. `docs/link-protocol.md` specifies the messages.
 *
 * Inputs are `handle*` calls and commands (`open`, `accept`, `reject`, `send`,
 * `closeStream`, `close`, `abort`); outputs are `pollTransmit`, `pollTimeout`
 * and `pollEvent`. Time is always an argument; nothing here touches a socket
 * or a timer. Every event of a stream carries the `owner` the user attached
 * when it opened or accepted the stream, so a driver needs no lookup.
 *
 * The parts: {@linkcode Stream} (`streams.ts`: state, send queue, credit),
 * {@linkcode Scheduler} (`scheduler.ts`: which stream next), {@linkcode Reorder}
 * (`reorder.ts`: sequence order across channels), control messages
 * (`control.ts`), frames (`../frame.ts`).
 *
 * @example Two links joined in memory
 * ```ts
 * import assert from "node:assert/strict";
 * import { createCodec } from "../../../wasm/mod.ts";
 * const codec = createCodec();
 * const a = new Link({ localId: "00:00:00:00:00:01", peerId: "00:00:00:00:00:02", codec, now: 0 });
 * const b = new Link({ localId: "00:00:00:00:00:02", peerId: "00:00:00:00:00:01", codec, now: 0 });
 * a.addChannel(1, { now: 0 });
 * b.addChannel(1, { now: 0 });
 * const pump = (from: Link, to: Link) => {
 *   for (let t = from.pollTransmit(0); t; t = from.pollTransmit(0)) to.handleBytes(t.channel, t.bytes, 0);
 * };
 * const s = a.open("demo", { owner: "mine" });
 * pump(a, b);
 * const open = b.pollEvent();
 * assert.equal(open?.type, "open");
 * b.accept(s, "theirs");
 * pump(b, a);
 * assert.deepEqual(a.pollEvent(), { type: "opened", stream: s, owner: "mine" });
 * a.send(s, new Uint8Array([1, 2, 3]));
 * pump(a, b);
 * const data = b.pollEvent();
 * assert.ok(data?.type === "data" && data.data.byteLength === 3 && data.owner === "theirs");
 * a.close();
 * b.close();
 * ```
 *
 * @module
 */
import {
  type Codec,
  copyOut,
  type Decoder,
  type Frame,
  FRAME_OVERHEAD,
  type FrameInit,
  FrameType,
  type Message,
  type Reassembler,
} from "../frame.ts";
import { codecErrorMessage, DisconnectReason } from "../../error_codes.ts";
import {
  type Control,
  controlLength,
  decodeControl,
  encodeControl,
  encodeControlInto,
  ServiceKind,
} from "./control.ts";
import { Reorder } from "./reorder.ts";
import { QUANTUM, Scheduler } from "./scheduler.ts";
import { type Entry, Stream, type StreamState } from "./streams.ts";

export { ServiceKind } from "./control.ts";
export type { StreamState } from "./streams.ts";

const { DATA, CONTROL, CREDIT, PING, CLOSE } = FrameType;

/** Default keep-alive timeout: a channel silent this long is lost (ms). */
export const DEFAULT_KEEPALIVE_TIMEOUT = 5000;
/** Default receive window of a stream: bytes a peer may send before it gets credit back. */
export const DEFAULT_STREAM_WINDOW: number = 4 * 1024 * 1024;
/** Default bound of a stream's send queue, in payload bytes. */
export const DEFAULT_SEND_QUEUE_BYTES: number = 1024 * 1024;
/** Default largest batch of frames handed to a channel in one write. */
export const DEFAULT_MAX_BATCH_BYTES: number = 256 * 1024;
/** Default MTU of a channel (TCP: the largest frame). */
export const DEFAULT_MTU = 65535;
/** Default largest message a peer may send (bytes). */
export const DEFAULT_MAX_MESSAGE: number = 16 * 1024 * 1024;
/** Most messages held for reordering before the link is declared broken. */
export const MAX_REORDER = 65536;

/** Identifies a channel of a link; chosen by the driver. */
export type ChannelId = number;

/** Bytes to write to one channel. */
export interface Transmit {
  /** The channel. */
  channel: ChannelId;
  /**
   * The bytes, in the codec's scratch memory: valid until the next call
   * into the link. A driver that keeps them copies them.
   */
  bytes: Uint8Array;
}

/** What a link reports. `owner` is what the user attached to the stream. */
export type LinkEvent =
  | { type: "open"; link: unknown; stream: number; name: string; kind: number; bundle: string }
  | { type: "opened"; stream: number; owner: unknown }
  | { type: "rejected"; stream: number; owner: unknown; code: number }
  | { type: "data"; stream: number; owner: unknown; data: ArrayBuffer }
  | { type: "closed"; stream: number; owner: unknown; reason: number }
  | { type: "drain"; stream: number; owner: unknown }
  | { type: "linkClosed"; reason: number; message: string };

/** Options of a {@linkcode Link}. */
export interface LinkOptions {
  /** This device's id. */
  localId: string;
  /** The peer's id. */
  peerId: string;
  /** The framing codec. */
  codec: Codec;
  /** The current time (ms). */
  now: number;
  /** A channel silent this long is lost (ms); pings go out at a third of it. @default {5000} */
  keepAliveTimeout?: number;
  /** Receive window per stream (bytes). @default {4194304} */
  window?: number;
  /** Bound of each stream's send queue (payload bytes). @default {1048576} */
  sendQueueBytes?: number;
  /** Largest batch handed to a channel at once (bytes). @default {262144} */
  maxBatchBytes?: number;
  /** Largest message the peer may send (bytes). @default {16777216} */
  maxMessageSize?: number;
  /** Returned as `link` in `open` events (the driver's handle on this link). */
  tag?: unknown;
}

/** Options of {@linkcode Link.addChannel}. */
export interface ChannelOptions {
  /** The current time (ms). */
  now: number;
  /** Largest frame the channel carries (23..65535). @default {65535} */
  mtu?: number;
}

/** Options of {@linkcode Link.open}. */
export interface OpenOptions {
  /** Tag returned in every event of the stream. */
  owner?: unknown;
  /** What kind of service. @default {ServiceKind.LINK_ENHANCE} */
  kind?: number;
  /** The app's bundle name. @default {""} */
  bundle?: string;
}

/** A whole sequenced message waiting in the reorder buffer for its turn. */
interface Arrival {
  type: number;
  stream: number;
  data: ArrayBuffer;
}

/** A channel as the link sees it. */
interface Channel {
  id: ChannelId;
  mtu: number;
  decoder: Decoder;
  writable: boolean;
  lastRx: number;
  lastTx: number;
  ping: boolean;
}

const EMPTY = new Uint8Array(0);
const BYE = encodeControl({ op: "bye" });

/** A link to one peer. */
export class Link {
  /** This device's id. */
  readonly localId: string;
  /** The peer's id. */
  readonly peerId: string;
  /** The `tag` option: returned as `link` in `open` events. */
  tag: unknown;
  #codec: Codec;
  #keepAlive: number;
  #pingInterval: number;
  #window: number;
  #sendQueueBytes: number;
  #maxBatch: number;
  #reassembler: Reassembler;
  #channels = new Map<ChannelId, Channel>();
  #streams = new Map<number, Stream>();
  #scheduler = new Scheduler();
  #urgent: FrameInit[] = [];
  #events: LinkEvent[] = [];
  #eventHead = 0;
  #nextStream: number;
  #txSeq = 0;
  #reorder = new Reorder<Arrival>();
  #state: "open" | "closing" | "closed" = "open";
  #byeSent = false;
  #turn = 0;
  #onFrame = (f: Frame): void => this.#frame(f);
  #onMessage = (m: Message): void => {
    const d = m.data;
    const own = d.byteOffset === 0 && d.byteLength === d.buffer.byteLength;
    this.#arrive(m.type, m.stream, m.seq, own ? d.buffer as ArrayBuffer : copyOut(d, 0, d.length));
  };

  /** @param options Ids, codec, clock and limits. */
  constructor(options: LinkOptions) {
    this.localId = options.localId;
    this.peerId = options.peerId;
    this.tag = options.tag;
    this.#codec = options.codec;
    this.#keepAlive = options.keepAliveTimeout ?? DEFAULT_KEEPALIVE_TIMEOUT;
    this.#pingInterval = Math.max(1, Math.floor(this.#keepAlive / 3));
    this.#window = options.window ?? DEFAULT_STREAM_WINDOW;
    this.#sendQueueBytes = options.sendQueueBytes ?? DEFAULT_SEND_QUEUE_BYTES;
    this.#maxBatch = options.maxBatchBytes ?? DEFAULT_MAX_BATCH_BYTES;
    this.#reassembler = this.#codec.createReassembler({
      maxMessageSize: options.maxMessageSize ?? DEFAULT_MAX_MESSAGE,
    });
    // The device with the lower id opens odd stream ids, the other even ones.
    this.#nextStream = this.localId < this.peerId ? 1 : 2;
  }

  /** `open`, `closing` (graceful close under way) or `closed`. */
  get state(): "open" | "closing" | "closed" {
    return this.#state;
  }

  /** Number of channels. */
  get channels(): number {
    return this.#channels.size;
  }

  /** Number of streams not yet closed. */
  get streams(): number {
    return this.#streams.size;
  }

  /** Whether nothing waits to be transmitted. */
  get idle(): boolean {
    return this.#scheduler.length === 0 && this.#urgent.length === 0 &&
      (this.#state !== "closing" || this.#byeSent);
  }

  /** Time of the last byte received on any channel (ms), or `-Infinity`. */
  get lastReceived(): number {
    let t = -Infinity;
    for (const ch of this.#channels.values()) t = Math.max(t, ch.lastRx);
    return t;
  }

  /**
   * Add a channel (a connected, identified physical path).
   *
   * @param id The driver's id for it.
   * @param options The time and the channel's MTU.
   */
  addChannel(id: ChannelId, options: ChannelOptions): void {
    if (this.#state === "closed" || this.#channels.has(id)) return;
    const mtu = options.mtu ?? DEFAULT_MTU;
    this.#channels.set(id, {
      id,
      mtu,
      decoder: this.#codec.createDecoder({ maxFrameSize: mtu }),
      writable: true,
      lastRx: options.now,
      lastTx: options.now,
      ping: false,
    });
  }

  /**
   * Bytes arrived on a channel.
   *
   * @param id The channel.
   * @param bytes The bytes, in the order the channel delivered them.
   * @param now The current time (ms).
   */
  handleBytes(id: ChannelId, bytes: Uint8Array, now: number): void {
    const ch = this.#channels.get(id);
    if (ch === undefined || this.#state === "closed") return;
    ch.lastRx = now;
    const err = ch.decoder.push(bytes, this.#onFrame);
    if (err !== 0 && this.state !== "closed") {
      this.#lose(`Link to ${this.peerId} broken: ${codecErrorMessage(err)}`);
    }
  }

  /**
   * A channel's writability changed (the driver's write reported
   * backpressure, or drained).
   *
   * @param id The channel.
   * @param writable Whether `pollTransmit` may hand it bytes.
   */
  handleWritable(id: ChannelId, writable: boolean): void {
    const ch = this.#channels.get(id);
    if (ch !== undefined) ch.writable = writable;
  }

  /**
   * A channel closed or failed. Without retransmission over the surviving
   * channels (a later step), losing any channel closes the link.
   *
   * @param id The channel.
   * @param message Why, for the `linkClosed` event.
   */
  handleChannelClosed(id: ChannelId, message = "channel closed"): void {
    if (!this.#channels.has(id) || this.#state === "closed") return;
    this.#channels.delete(id);
    this.#lose(`Link to ${this.peerId} lost: ${message}`);
  }

  /**
   * Timers are due.
   *
   * @param now The current time (ms).
   */
  handleTimeout(now: number): void {
    if (this.#state === "closed") return;
    for (const ch of this.#channels.values()) {
      if (now - ch.lastRx >= this.#keepAlive) {
        this.#lose(`Link to ${this.peerId} lost: peer silent for ${now - ch.lastRx} ms`);
        return;
      }
      if (now - ch.lastTx >= this.#pingInterval) ch.ping = true;
    }
  }

  /**
   * When `handleTimeout` should next be called.
   *
   * @returns A time (ms), or `undefined` when no timer is needed.
   */
  pollTimeout(): number | undefined {
    if (this.#state === "closed") return undefined;
    let t = Infinity;
    for (const ch of this.#channels.values()) {
      t = Math.min(t, ch.lastRx + this.#keepAlive, ch.lastTx + this.#pingInterval);
    }
    return t === Infinity ? undefined : t;
  }

  /**
   * The next event, if any.
   *
   * @returns The event.
   */
  pollEvent(): LinkEvent | undefined {
    const events = this.#events;
    if (this.#eventHead >= events.length) return undefined;
    const e = events[this.#eventHead];
    events[this.#eventHead++] = undefined as unknown as LinkEvent;
    if (this.#eventHead === events.length) {
      events.length = 0;
      this.#eventHead = 0;
    }
    return e;
  }

  /**
   * The next batch of frames to write, coalesced from every stream with
   * something to send and credit to send it, up to `maxBatchBytes`.
   *
   * @param now The current time (ms).
   * @returns Bytes for one channel, or `undefined` when nothing is due.
   */
  pollTransmit(now: number): Transmit | undefined {
    if (this.#state === "closed") return undefined;
    if (this.#channels.size === 1) {
      const ch: Channel = this.#channels.values().next().value!;
      if (!ch.writable) return undefined;
      const frames = this.#batch(ch);
      if (frames.length === 0) return undefined;
      ch.lastTx = now;
      ch.ping = false;
      return { channel: ch.id, bytes: this.#codec.encodeBatch(frames) };
    }
    const ids = [...this.#channels.keys()];
    for (let k = 0; k < ids.length; k++) {
      const ch = this.#channels.get(ids[(this.#turn + k) % ids.length])!;
      if (!ch.writable) continue;
      const frames = this.#batch(ch);
      if (frames.length === 0) continue;
      this.#turn = (this.#turn + k + 1) % ids.length;
      ch.lastTx = now;
      ch.ping = false;
      return { channel: ch.id, bytes: this.#codec.encodeBatch(frames) };
    }
    return undefined;
  }

  /**
   * Open a stream to the peer's service `name`. Answered by an `opened` or
   * `rejected` event.
   *
   * @param name The server name.
   * @param options The owner tag, service kind and bundle name.
   * @returns The stream id.
   * @throws {RangeError} When every stream id of this side is in use.
   */
  open(name: string, options: OpenOptions = {}): number {
    let id = this.#nextStream;
    for (let tries = 0; this.#streams.has(id); tries++) {
      if (tries > 32768) throw new RangeError(`No free stream id on the link to ${this.peerId}`);
      id = nextId(id);
    }
    this.#nextStream = nextId(id);
    const s = new Stream(id, "opening", 0, options.owner);
    this.#streams.set(id, s);
    this.#enqueue(s, CONTROL, {
      op: "open",
      window: this.#window,
      kind: options.kind ?? ServiceKind.LINK_ENHANCE,
      name,
      bundle: options.bundle ?? "",
    });
    return id;
  }

  /**
   * Accept an incoming stream (after its `open` event).
   *
   * @param id The stream.
   * @param owner Tag returned in every later event of the stream.
   */
  accept(id: number, owner?: unknown): void {
    const s = this.#streams.get(id);
    if (s === undefined || s.state !== "incoming") return;
    s.state = "open";
    s.owner = owner;
    this.#enqueue(s, CONTROL, { op: "accept", window: this.#window });
  }

  /**
   * Reject an incoming stream (after its `open` event).
   *
   * @param id The stream.
   * @param code Why, for the peer's `connectResult`.
   */
  reject(id: number, code: number): void {
    const s = this.#streams.get(id);
    if (s === undefined || s.state !== "incoming") return;
    s.state = "closing";
    this.#enqueue(s, CONTROL, { op: "reject", code }, true);
  }

  /**
   * The state of a stream.
   *
   * @param id The stream.
   * @returns Its state; `closed` for an unknown id.
   */
  streamState(id: number): StreamState {
    return this.#streams.get(id)?.state ?? "closed";
  }

  /**
   * Queue a message on an open (or opening) stream. The link keeps the
   * bytes until it hands them to a channel, in order per stream, copying
   * them into the codec; from then on it holds no reference. So the bytes
   * must not change while {@linkcode Link.bufferedAmount} still counts them,
   * and may be reused once it no longer does.
   *
   * @param id The stream.
   * @param data The message.
   * @returns `false` when the stream's send queue is full (nothing queued),
   *   or the stream is closed.
   */
  send(id: number, data: Uint8Array): boolean {
    const s = this.#streams.get(id);
    if (s === undefined || (s.state !== "open" && s.state !== "opening")) return false;
    if (s.queued > 0 && s.queued + data.length > this.#sendQueueBytes) {
      s.wantDrain = true;
      return false;
    }
    s.queued += data.length;
    if (s.queued * 2 >= this.#sendQueueBytes) s.wantDrain = true;
    this.#enqueue(s, DATA, data);
    return true;
  }

  /**
   * Payload bytes queued on a stream and not yet handed to a channel.
   *
   * @param id The stream.
   * @returns Bytes.
   */
  bufferedAmount(id: number): number {
    return this.#streams.get(id)?.queued ?? 0;
  }

  /**
   * Close a stream gracefully: what was queued is sent first, then the peer
   * sees `closed` with {@linkcode DisconnectReason.PEER_DISCONNECTED}. No
   * event is reported locally.
   *
   * @param id The stream.
   */
  closeStream(id: number): void {
    const s = this.#streams.get(id);
    if (s === undefined || s.state === "closing" || s.state === "closed") return;
    if (s.state === "incoming") {
      this.reject(id, 0);
      return;
    }
    s.state = "closing";
    this.#enqueue(s, CLOSE, EMPTY, true);
  }

  /**
   * Close the link gracefully: every open stream reports `closed` with
   * {@linkcode DisconnectReason.LINK_CLOSED} and is closed, what is queued
   * is sent, then the link says goodbye. `linkClosed` follows once the
   * goodbye was handed to a channel; the driver then closes the channels.
   */
  close(): void {
    if (this.#state !== "open") return;
    for (const s of [...this.#streams.values()]) {
      if (s.state === "open" || s.state === "opening") {
        this.#events.push({
          type: "closed",
          stream: s.id,
          owner: s.owner,
          reason: DisconnectReason.LINK_CLOSED,
        });
      }
      this.closeStream(s.id);
    }
    this.#state = "closing";
    if (this.#channels.size === 0) this.#finish(DisconnectReason.LINK_CLOSED, "Link closed");
  }

  /**
   * Drop the link at once, without flushing: every stream gets `closed`
   * with {@linkcode DisconnectReason.LINK_CLOSED}.
   *
   * @param message Why.
   */
  abort(message = "Link aborted"): void {
    if (this.#state !== "closed") this.#lose(message);
  }

  // ------------------------------------------------------------ sending

  #enqueue(s: Stream, type: number, payload: Uint8Array | Control, final = false): void {
    s.push({ type, payload, final });
    if (this.#sendable(s)) this.#scheduler.add(s);
  }

  #sendable(s: Stream): boolean {
    const head = s.peek();
    if (head === undefined) return false;
    if (head.type !== DATA) return true;
    if (s.state === "opening") return false;
    const len = (head.payload as Uint8Array).length;
    return s.credit >= len || s.credit >= this.#window;
  }

  /** Encode a control message into this batch's scratch (valid until the next batch). */
  #control(c: Control): Uint8Array {
    const n = controlLength(c);
    if (this.#scratchUsed + n > this.#scratch.length) {
      // Frames of this batch keep views of the old scratch: start a new one.
      this.#scratch = new Uint8Array(Math.max(4096, 2 * n));
      this.#scratchUsed = 0;
    }
    const at = this.#scratchUsed;
    encodeControlInto(c, this.#scratch, at);
    this.#scratchUsed = at + n;
    return this.#scratch.subarray(at, at + n);
  }

  #scratch = new Uint8Array(0);
  #scratchUsed = 0;

  /** Frames for one channel: urgent ones first, then streams in turn. */
  #batch(ch: Channel): FrameInit[] {
    this.#scratchUsed = 0;
    const frames: FrameInit[] = this.#urgent;
    this.#urgent = [];
    let bytes = frames.length * FRAME_OVERHEAD;
    const scheduler = this.#scheduler;
    while (bytes < this.#maxBatch) {
      const s = scheduler.take();
      if (s === undefined) break;
      let spent = 0;
      while (spent < QUANTUM && bytes < this.#maxBatch && this.#sendable(s)) {
        const e: Entry = s.shift()!;
        const payload = e.type === CONTROL
          ? this.#control(e.payload as Control)
          : e.payload as Uint8Array;
        const len = payload.length;
        if (e.type === DATA) {
          s.credit -= len;
          s.queued -= len;
        }
        bytes += this.#fragments(frames, ch.mtu, e.type, s.id, payload);
        spent += len + FRAME_OVERHEAD;
        if (e.final) {
          // Our close or reject went out: the stream is finished here.
          this.#streams.delete(s.id);
          s.state = "closed";
          s.clear();
          break;
        }
      }
      if (s.state !== "closed") {
        if (s.wantDrain && s.queued * 2 <= this.#sendQueueBytes) {
          s.wantDrain = false;
          this.#events.push({ type: "drain", stream: s.id, owner: s.owner });
        }
        if (this.#sendable(s)) scheduler.add(s);
      }
    }
    if (this.#state === "closing" && !this.#byeSent && scheduler.length === 0) {
      let queued = false;
      for (const s of this.#streams.values()) if (s.length > 0) queued = true;
      if (!queued) {
        frames.push({
          type: CONTROL,
          stream: 0,
          seq: 0,
          total: BYE.length,
          offset: 0,
          payload: BYE,
        });
        this.#byeSent = true;
        this.#finish(DisconnectReason.LINK_CLOSED, "Link closed");
      }
    }
    if (frames.length === 0 && ch.ping) {
      frames.push({ type: PING, stream: 0, seq: 0, total: 0, offset: 0, payload: EMPTY });
    }
    return frames;
  }

  /** Append one sequenced message's fragments; returns the bytes they take. */
  #fragments(
    out: FrameInit[],
    mtu: number,
    type: number,
    stream: number,
    data: Uint8Array,
  ): number {
    const seq = this.#txSeq;
    this.#txSeq = (this.#txSeq + 1) >>> 0;
    const max = mtu - FRAME_OVERHEAD;
    const total = data.length;
    if (total <= max) {
      out.push({ type, stream, seq, total, offset: 0, payload: data });
      return total + FRAME_OVERHEAD;
    }
    for (let off = 0; off < total; off += max) {
      const end = Math.min(total, off + max);
      out.push({ type, stream, seq, total, offset: off, payload: data.subarray(off, end) });
    }
    return total + Math.ceil(total / max) * FRAME_OVERHEAD;
  }

  // ---------------------------------------------------------- receiving

  #frame(f: Frame): void {
    if (this.#state === "closed") return;
    switch (f.type) {
      case PING:
        return;
      case CREDIT: {
        const s = this.#streams.get(f.stream);
        if (s !== undefined) {
          s.credit += f.seq;
          if (this.#sendable(s)) this.#scheduler.add(s);
        }
        return;
      }
      case CONTROL:
        if (f.stream === 0) {
          this.#linkControl(f.payload);
          return;
        }
    }
    if (f.offset === 0 && f.length === f.total) {
      if (f.type !== DATA && f.seq === this.#reorder.expected) {
        // A control or close in order: act on it in place, no copy.
        this.#reorder.advance();
        this.#deliver(f.type, f.stream, f.payload);
        this.#drainReorder();
        return;
      }
      // Each message gets an ArrayBuffer of its own: receivers hand it on.
      const at = f.payloadOffset;
      this.#arrive(f.type, f.stream, f.seq, copyOut(f.bytes, at, at + f.length));
      return;
    }
    const err = this.#reassembler.push(f, this.#onMessage);
    if (err !== 0) this.#lose(`Link to ${this.peerId} broken: ${codecErrorMessage(err)}`);
  }

  #linkControl(payload: Uint8Array): void {
    if (decodeControl(payload)?.op === "bye") this.#lose(`Link closed by ${this.peerId}`);
  }

  /** A whole sequenced message: deliver it in link order. */
  #arrive(type: number, stream: number, seq: number, data: ArrayBuffer): void {
    const reorder = this.#reorder;
    const verdict = reorder.offer(seq, { type, stream, data }, data.byteLength);
    if (verdict === "duplicate") return;
    if (verdict === "hold") {
      if (reorder.size > MAX_REORDER) {
        this.#lose(`Link to ${this.peerId} broken: reorder buffer full`);
      }
      return;
    }
    reorder.advance();
    this.#deliver(type, stream, data);
    this.#drainReorder();
  }

  /** Deliver held messages that are now in order. */
  #drainReorder(): void {
    const reorder = this.#reorder;
    for (let next = reorder.next(); next; next = reorder.next()) {
      if (this.#state === "closed") return;
      this.#deliver(next.type, next.stream, next.data);
    }
  }

  /** A sequenced message in link order: DATA as an ArrayBuffer, others as bytes or a buffer. */
  #deliver(type: number, id: number, data: ArrayBuffer | Uint8Array): void {
    const s = this.#streams.get(id);
    switch (type) {
      case DATA: {
        if (s === undefined || (s.state !== "open" && s.state !== "closing")) return;
        this.#events.push({ type: "data", stream: id, owner: s.owner, data: data as ArrayBuffer });
        s.consumed += data.byteLength;
        if (s.consumed * 8 >= this.#window) {
          this.#urgent.push({
            type: CREDIT,
            stream: id,
            seq: s.consumed,
            total: 0,
            offset: 0,
            payload: EMPTY,
          });
          s.consumed = 0;
        }
        return;
      }
      case CLOSE: {
        if (s === undefined) return;
        this.#streams.delete(id);
        const wasOpen = s.state === "open" || s.state === "opening";
        s.state = "closed";
        s.clear();
        if (wasOpen) {
          this.#events.push({
            type: "closed",
            stream: id,
            owner: s.owner,
            reason: DisconnectReason.PEER_DISCONNECTED,
          });
        }
        return;
      }
      case CONTROL:
        this.#streamControl(id, s, data instanceof Uint8Array ? data : new Uint8Array(data));
        return;
    }
  }

  #streamControl(id: number, s: Stream | undefined, payload: Uint8Array): void {
    const c = decodeControl(payload);
    if (c === undefined) {
      this.#lose(`Link to ${this.peerId} broken: malformed control message on stream ${id}`);
      return;
    }
    switch (c.op) {
      case "open": {
        const theirs = (id % 2 === 1) !== (this.peerId < this.localId);
        if (s !== undefined || theirs) {
          this.#lose(`Link to ${this.peerId} broken: bad open of stream ${id}`);
          return;
        }
        this.#streams.set(id, new Stream(id, "incoming", windowOf(c.window), undefined));
        this.#events.push({
          type: "open",
          link: this.tag,
          stream: id,
          name: c.name,
          kind: c.kind,
          bundle: c.bundle,
        });
        return;
      }
      case "accept":
        if (s === undefined || s.state !== "opening") return;
        s.state = "open";
        s.credit = windowOf(c.window);
        this.#events.push({ type: "opened", stream: id, owner: s.owner });
        if (this.#sendable(s)) this.#scheduler.add(s);
        return;
      case "reject":
        if (s === undefined || s.state !== "opening") return;
        this.#streams.delete(id);
        s.state = "closed";
        s.clear();
        this.#events.push({ type: "rejected", stream: id, owner: s.owner, code: c.code });
        return;
    }
  }

  // ------------------------------------------------------------ closing

  /** The link is gone: every stream learns it, nothing more is sent. */
  #lose(message: string): void {
    for (const s of this.#streams.values()) {
      const reason = DisconnectReason.LINK_CLOSED;
      if (s.state === "opening" || s.state === "open") {
        this.#events.push({ type: "closed", stream: s.id, owner: s.owner, reason });
      }
      s.state = "closed";
      s.clear();
    }
    this.#finish(DisconnectReason.LINK_CLOSED, message);
  }

  #finish(reason: number, message: string): void {
    if (this.#state === "closed") return;
    this.#state = "closed";
    this.#streams.clear();
    this.#scheduler.clear();
    this.#urgent = [];
    this.#reorder.clear();
    this.#reassembler.close();
    this.#events.push({ type: "linkClosed", reason, message });
  }
}

/** The next stream id of the same parity, wrapping within 1..65535. */
function nextId(id: number): number {
  return id + 2 > 65535 ? (id % 2 === 1 ? 1 : 2) : id + 2;
}

function windowOf(w: number): number {
  return Number.isInteger(w) && w > 0 ? w : DEFAULT_STREAM_WINDOW;
}

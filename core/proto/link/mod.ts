/**
 * The link state machine: everything between this device and one peer,
 * sans-IO. A link owns a set of channels (physical paths: TCP connections
 * today, BLE characteristics later) and multiplexes streams (logical
 * connections) over them: stream open / accept / reject / close, per-stream
 * credit flow control, a scheduler that coalesces frames of many streams into
 * one channel write, per-stream message sequence numbers so messages sent
 * over several channels are merged back in order, limits on what a peer can
 * make it hold, and keep-alive with peer-lost detection. `docs/link-protocol.md` specifies the messages.
 *
 * Inputs are `handle*` calls and commands (`open`, `accept`, `reject`, `send`,
 * `closeStream`, `close`, `abort`); outputs are `pollTransmit`, `pollTimeout`
 * and `pollEvent`. Time is always an argument; nothing here touches a socket
 * or a timer. Every event of a stream carries the `owner` the user attached
 * when it opened or accepted the stream, so a driver needs no lookup.
 *
 * The parts: {@linkcode Stream} (`streams.ts`: state, send queue, credit,
 * reorder buffer), the scheduler (`scheduler.ts`: which stream next), the
 * sending half (`_outbound.ts`: batches), the receiving half (`_inbound.ts`:
 * each stream's order, windows and budgets), control messages
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
import { type Codec, type Decoder, type FrameInit, FrameType } from "../frame.ts";
import { codecErrorMessage, DisconnectReason, ErrorCode } from "../../error_codes.ts";
import { ServiceKind } from "./control.ts";
import { Inbound } from "./_inbound.ts";
import { Outbound } from "./_outbound.ts";
import { type ChannelId, type LinkEvent, LinkState } from "./_state.ts";
import { Stream, type StreamState } from "./streams.ts";

export { ServiceKind } from "./control.ts";
export { HELD_OVERHEAD } from "./_inbound.ts";
export { MAX_UNSENT_ANSWERS } from "./_outbound.ts";
export type { StreamState } from "./streams.ts";
export type { ChannelId, LinkEvent, LinkLimits } from "./_state.ts";

const { DATA, CLOSE } = FrameType;

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
/** Default largest message a peer may send on a stream (bytes). */
export const DEFAULT_MAX_MESSAGE: number = 16 * 1024 * 1024;
/** Default most streams open at once on one link. */
export const DEFAULT_MAX_STREAMS = 256;
/** Default most bytes a peer may make one link hold (reassembly and reordering). */
export const DEFAULT_LINK_BUDGET: number = 64 * 1024 * 1024;

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
  /** Largest message the peer may send on a stream, unless the stream says less (bytes). @default {16777216} */
  maxMessageSize?: number;
  /** Most streams open at once, both directions. @default {256} */
  maxStreams?: number;
  /** Most bytes the peer may make this link hold before it is closed. @default {67108864} */
  budget?: number;
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

/** Options of {@linkcode Link.open} (and of {@linkcode Link.accept}'s stream). */
export interface OpenOptions {
  /** Tag returned in every event of the stream. */
  owner?: unknown;
  /** What kind of service. @default {ServiceKind.LINK_ENHANCE} */
  kind?: number;
  /** The app's bundle name. @default {""} */
  bundle?: string;
  /** Largest message the peer may send on it (bytes). @default {the link's maxMessageSize} */
  maxMessage?: number;
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

/** A link to one peer. */
export class Link {
  /** This device's id. */
  readonly localId: string;
  /** The peer's id. */
  readonly peerId: string;
  #codec: Codec;
  #keepAlive: number;
  #pingInterval: number;
  #st: LinkState;
  #out: Outbound;
  #in: Inbound;
  #channels = new Map<ChannelId, Channel>();
  #eventHead = 0;
  #nextStream: number;
  #turn = 0;

  /** @param options Ids, codec, clock and limits. */
  constructor(options: LinkOptions) {
    this.localId = options.localId;
    this.peerId = options.peerId;
    this.#codec = options.codec;
    this.#keepAlive = options.keepAliveTimeout ?? DEFAULT_KEEPALIVE_TIMEOUT;
    this.#pingInterval = Math.max(1, Math.floor(this.#keepAlive / 3));
    const window = options.window ?? DEFAULT_STREAM_WINDOW;
    const maxMessage = options.maxMessageSize ?? DEFAULT_MAX_MESSAGE;
    const budget = options.budget ?? DEFAULT_LINK_BUDGET;
    const reassembler = this.#codec.createReassembler({
      maxMessageSize: maxMessage,
      maxStreamPending: Math.max(window, 1),
      maxLinkPending: budget,
    });
    this.#st = new LinkState(
      { localId: this.localId, peerId: this.peerId, tag: options.tag },
      {
        window,
        sendQueueBytes: options.sendQueueBytes ?? DEFAULT_SEND_QUEUE_BYTES,
        maxBatch: options.maxBatchBytes ?? DEFAULT_MAX_BATCH_BYTES,
        maxMessage,
        maxStreams: options.maxStreams ?? DEFAULT_MAX_STREAMS,
        budget,
      },
      reassembler,
    );
    this.#st.lose = (message) => this.#lose(message);
    this.#out = new Outbound(this.#st);
    this.#in = new Inbound(this.#st, this.#out, DEFAULT_STREAM_WINDOW);
    // The device with the lower id opens odd stream ids, the other even ones.
    this.#nextStream = this.localId < this.peerId ? 1 : 2;
  }

  /** The `tag` option: returned as `link` in `open` events. */
  get tag(): unknown {
    return this.#st.tag;
  }

  set tag(value: unknown) {
    this.#st.tag = value;
  }

  /** `open`, `closing` (graceful close under way) or `closed`. */
  get state(): "open" | "closing" | "closed" {
    return this.#st.state;
  }

  /** Number of channels. */
  get channels(): number {
    return this.#channels.size;
  }

  /** Number of streams not yet closed. */
  get streams(): number {
    return this.#st.streams.size;
  }

  /** Bytes the peer makes this link hold now (reassembly and reordering). */
  get held(): number {
    return this.#in.held;
  }

  /** Whether nothing waits to be transmitted. */
  get idle(): boolean {
    const st = this.#st;
    return st.scheduler.length === 0 && st.urgent.length === 0 &&
      (st.state !== "closing" || this.#out.byeSent);
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
    if (this.#st.state === "closed" || this.#channels.has(id)) return;
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
    if (ch === undefined || this.#st.state === "closed") return;
    ch.lastRx = now;
    const err = ch.decoder.push(bytes, this.#in.onFrame);
    if (err !== 0 && this.state !== "closed") {
      this.#st.broken(codecErrorMessage(err));
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
    if (!this.#channels.has(id) || this.#st.state === "closed") return;
    this.#channels.delete(id);
    this.#lose(`Link to ${this.peerId} lost: ${message}`);
  }

  /**
   * Timers are due.
   *
   * @param now The current time (ms).
   */
  handleTimeout(now: number): void {
    if (this.#st.state === "closed") return;
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
    if (this.#st.state === "closed") return undefined;
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
    const events = this.#st.events;
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
    if (this.#st.state === "closed") return undefined;
    if (this.#channels.size === 1) {
      const ch: Channel = this.#channels.values().next().value!;
      return ch.writable ? this.#transmit(ch, now) : undefined;
    }
    const ids = [...this.#channels.keys()];
    for (let k = 0; k < ids.length; k++) {
      const ch = this.#channels.get(ids[(this.#turn + k) % ids.length])!;
      if (!ch.writable) continue;
      const tx = this.#transmit(ch, now);
      if (tx === undefined) continue;
      this.#turn = (this.#turn + k + 1) % ids.length;
      return tx;
    }
    return undefined;
  }

  #transmit(ch: Channel, now: number): Transmit | undefined {
    const frames: FrameInit[] = this.#out.batch(ch);
    if (frames.length === 0) return undefined;
    ch.lastTx = now;
    ch.ping = false;
    const tx = { channel: ch.id, bytes: this.#codec.encodeBatch(frames) };
    if (this.#out.byeSent) this.#finish(DisconnectReason.LINK_CLOSED, "Link closed");
    return tx;
  }

  /**
   * Open a stream to the peer's service `name`. Answered by an `opened` or
   * `rejected` event.
   *
   * @param name The server name.
   * @param options The owner tag, service kind, bundle name, message limit.
   * @returns The stream id.
   * @throws {RangeError} When `maxStreams` streams are open, or every stream
   *   id of this side is in use.
   */
  open(name: string, options: OpenOptions = {}): number {
    const st = this.#st;
    if (st.streams.size >= st.limits.maxStreams) {
      throw new RangeError(
        `Cannot open a connection to ${this.peerId}: ${st.limits.maxStreams} are open on its link`,
      );
    }
    let id = this.#nextStream;
    for (let tries = 0; st.streams.has(id); tries++) {
      if (tries > 32768) throw new RangeError(`No free stream id on the link to ${this.peerId}`);
      id = nextId(id);
    }
    this.#nextStream = nextId(id);
    const s = new Stream(id, "opening", options.owner, {
      credit: 0,
      rxLeft: st.limits.window,
      maxMessage: options.maxMessage ?? st.limits.maxMessage,
    });
    st.streams.set(id, s);
    this.#out.enqueue(s, FrameType.CONTROL, {
      op: "open",
      window: st.limits.window,
      kind: options.kind ?? ServiceKind.LINK_ENHANCE,
      name,
      bundle: options.bundle ?? "",
    });
    return id;
  }

  /**
   * Accept an incoming stream (after its `open` event). When the stream is
   * gone already (the peer closed or broke it, or the link closed, in the
   * bytes that carried the open), the owner gets `closed` at once.
   *
   * @param id The stream.
   * @param owner Tag returned in every later event of the stream.
   * @param maxMessage Largest message the peer may send on it. @default {the link's maxMessageSize}
   */
  accept(id: number, owner?: unknown, maxMessage?: number): void {
    const s = this.#st.streams.get(id);
    if (s === undefined || s.state !== "incoming") {
      const reason = this.#st.state === "open"
        ? DisconnectReason.PEER_DISCONNECTED
        : DisconnectReason.LINK_CLOSED;
      this.#st.events.push({ type: "closed", stream: id, owner, reason });
      return;
    }
    s.state = "open";
    s.owner = owner;
    if (maxMessage !== undefined) s.maxMessage = maxMessage;
    this.#out.enqueue(s, FrameType.CONTROL, { op: "accept", window: this.#st.limits.window });
  }

  /**
   * Reject an incoming stream (after its `open` event).
   *
   * @param id The stream.
   * @param code Why, for the peer's `connectResult`.
   */
  reject(id: number, code: number): void {
    const s = this.#st.streams.get(id);
    if (s === undefined || s.state !== "incoming") return;
    // The stream is gone at once: what the peer sends on it meanwhile is dropped unread.
    this.#in.forget(s);
    s.state = "closed";
    this.#out.refuse(id, code);
  }

  /**
   * The state of a stream.
   *
   * @param id The stream.
   * @returns Its state; `closed` for an unknown id.
   */
  streamState(id: number): StreamState {
    return this.#st.streams.get(id)?.state ?? "closed";
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
    const s = this.#st.streams.get(id);
    if (s === undefined || (s.state !== "open" && s.state !== "opening")) return false;
    const limit = this.#st.limits.sendQueueBytes;
    if (s.queued > 0 && s.queued + data.length > limit) {
      s.wantDrain = true;
      return false;
    }
    s.queued += data.length;
    if (s.queued * 2 >= limit) s.wantDrain = true;
    this.#out.enqueue(s, DATA, data);
    return true;
  }

  /**
   * Payload bytes queued on a stream and not yet handed to a channel.
   *
   * @param id The stream.
   * @returns Bytes.
   */
  bufferedAmount(id: number): number {
    return this.#st.streams.get(id)?.queued ?? 0;
  }

  /**
   * Close a stream gracefully: what was queued is sent first, then the peer
   * sees `closed` with {@linkcode DisconnectReason.PEER_DISCONNECTED}. No
   * event is reported locally.
   *
   * @param id The stream.
   */
  closeStream(id: number): void {
    const s = this.#st.streams.get(id);
    if (s === undefined || s.state === "closing" || s.state === "closed") return;
    if (s.state === "incoming") {
      this.reject(id, ErrorCode.INTERNAL_ERROR);
      return;
    }
    s.state = "closing";
    this.#out.enqueue(s, CLOSE, new Uint8Array(0), true);
  }

  /**
   * Close the link gracefully: every open stream reports `closed` with
   * {@linkcode DisconnectReason.LINK_CLOSED} and is closed, what is queued
   * is sent, then the link says goodbye. `linkClosed` follows once the
   * goodbye was handed to a channel; the driver then closes the channels.
   */
  close(): void {
    const st = this.#st;
    if (st.state !== "open") return;
    for (const s of [...st.streams.values()]) {
      if (s.state === "open" || s.state === "opening") {
        st.events.push({
          type: "closed",
          stream: s.id,
          owner: s.owner,
          reason: DisconnectReason.LINK_CLOSED,
        });
      }
      this.closeStream(s.id);
    }
    st.state = "closing";
    if (this.#channels.size === 0) this.#finish(DisconnectReason.LINK_CLOSED, "Link closed");
  }

  /**
   * Drop the link at once, without flushing: every stream gets `closed`
   * with {@linkcode DisconnectReason.LINK_CLOSED}.
   *
   * @param message Why.
   */
  abort(message = "Link aborted"): void {
    if (this.#st.state !== "closed") this.#lose(message);
  }

  /** The link is gone: every stream learns it, nothing more is sent. */
  #lose(message: string): void {
    const st = this.#st;
    if (st.state === "closed") return;
    for (const s of st.streams.values()) {
      const reason = DisconnectReason.LINK_CLOSED;
      if (s.state === "opening" || s.state === "open") {
        st.events.push({ type: "closed", stream: s.id, owner: s.owner, reason });
      }
      s.state = "closed";
      s.clear();
    }
    this.#finish(DisconnectReason.LINK_CLOSED, message);
  }

  #finish(reason: number, message: string): void {
    const st = this.#st;
    if (st.state === "closed") return;
    st.state = "closed";
    st.streams.clear();
    st.scheduler.clear();
    st.urgent = [];
    st.held = 0;
    st.reassembler.close();
    st.events.push({ type: "linkClosed", reason, message });
  }
}

/** The next stream id of the same parity, wrapping within 1..65535. */
function nextId(id: number): number {
  return id + 2 > 65535 ? (id % 2 === 1 ? 1 : 2) : id + 2;
}

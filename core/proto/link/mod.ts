/**
 * The link state machine: everything between this device and one peer,
 * sans-IO. A link owns a set of channels (physical paths: TCP connections
 * today, BLE characteristics later) and multiplexes streams (logical
 * connections) over them: stream open / accept / reject / close, per-stream
 * credit flow control, a scheduler that serves quiet streams first and
 * coalesces frames of many streams into one channel write, an in-flight
 * budget per channel sized from link-level acknowledgements (so a small
 * message never queues behind a window of bulk data), per-stream message
 * sequence numbers so messages sent over several channels are merged back in
 * order, limits on what a peer can make it hold, and keep-alive with
 * peer-lost detection. `docs/link-protocol.md` specifies the messages.
 *
 * Inputs are `handle*` calls and commands (`open`, `accept`, `reject`, `send`,
 * `closeStream`, `close`, `abort`); outputs are `pollTransmit`, `pollTimeout`
 * and `pollEvent`. Time is always an argument; nothing here touches a socket
 * or a timer. Every event of a stream carries the `owner` the user attached
 * when it opened or accepted the stream, so a driver needs no lookup.
 *
 * The parts: {@linkcode Stream} (`streams.ts`: state, send queue, credit,
 * reorder buffer), the scheduler (`scheduler.ts`: which stream next), the
 * channels (`_channels.ts`: acknowledgements, round trips, rates and the
 * in-flight budget), the sending half (`_outbound.ts`: batches), the
 * receiving half (`_inbound.ts`: each stream's order, windows and budgets),
 * control messages (`control.ts`), frames (`../frame.ts`).
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
  FRAME_OVERHEAD,
  type FrameInit,
  FrameType,
  MAX_HOLES_CAP,
  MAX_MESSAGES_CAP,
} from "../frame.ts";
import { codecErrorMessage, DisconnectReason, ErrorCode } from "../../error_codes.ts";
import { ServiceKind } from "./control.ts";
import {
  ChannelFrame,
  type ChannelStats,
  DEFAULT_BUDGET_CEILING,
  DEFAULT_BUDGET_FLOOR,
  LinkChannel,
} from "./_channels.ts";
import { Inbound } from "./_inbound.ts";
import { type BatchPlan, DEFAULT_FRAME_SIZE, Outbound, SINGLE_PLAN } from "./_outbound.ts";
import { channelTurns, type SchedulerMode, UNMEASURED_RTT } from "./_paths.ts";
import { SEQ_WINDOW, SeqWindow } from "./_seq.ts";
import { type ChannelId, type LinkEvent, LinkState, type Retained } from "./_state.ts";
import { Stream, type StreamState } from "./streams.ts";

export { ServiceKind } from "./control.ts";
export { HELD_OVERHEAD, maxHeld } from "./_inbound.ts";
export { MAX_UNSENT_ANSWERS } from "./_outbound.ts";
export { SEQ_WINDOW } from "./_seq.ts";
export { UNMEASURED_RTT } from "./_paths.ts";
export type { SchedulerMode } from "./_paths.ts";
export type { StreamState } from "./streams.ts";
export type { ChannelId, LinkEvent, LinkLimits } from "./_state.ts";
export type { ChannelHealth, ChannelStats } from "./_channels.ts";
export { DEFAULT_BUDGET_CEILING, DEFAULT_BUDGET_FLOOR, DEFAULT_FRAME_SIZE };

const { DATA, CLOSE, ACK, PING } = FrameType;
const EMPTY = new Uint8Array(0);
const LEAVE_FRAME: FrameInit = Object.freeze({
  seq: 0,
  type: ACK,
  stream: ChannelFrame.LEAVE,
  total: 0,
  offset: 0,
  payload: EMPTY,
}) as FrameInit;

/**
 * Least time a channel's oldest unacknowledged write must wait before the
 * channel is suspect (its frames are sent again on the others), in ms; or
 * 8 smallest round trips, when that is more.
 */
export const SUSPECT_AFTER = 1000;
/** Most channels of one link. */
export const MAX_CHANNELS = 8;
/** Most frames queued for one channel as redundant copies; older ones are dropped. */
const MAX_COPIES = 4096;

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
  /**
   * The channel's measured delivery rate (bytes per ms), 0 before its first
   * sample: what a layer below may size its work by (the record layer's
   * records). @default {0}
   */
  rate?: number;
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
  /**
   * Largest payload of a DATA frame (bytes): longer messages are cut into
   * frames this size, so a message on another stream waits for at most one
   * frame of them. Smaller frames cost a header, a CRC and a reassembly step
   * each. @default {16384}
   */
  frameSize?: number;
  /**
   * Smallest in-flight budget of a channel (bytes): bytes written and not yet
   * acknowledged may always reach this. Larger keeps fast, jittery paths busy;
   * it is also the longest queue a new message can wait behind. @default {262144}
   */
  budgetFloor?: number;
  /**
   * Largest in-flight budget of a channel (bytes): bounds what the budget
   * grows to on long fast paths, and so the bytes a channel loss can leave
   * to re-send. @default {16777216}
   */
  budgetCeiling?: number;
  /** Returned as `link` in `open` events (the driver's handle on this link). */
  tag?: unknown;
  /**
   * How frames are spread over several channels: `delivery` (each goes
   * where it arrives soonest), `redundant` (also a copy on the second best
   * channel) or `backup` (one channel at a time). @default {"delivery"}
   */
  scheduler?: SchedulerMode;
}

/** Options of {@linkcode Link.addChannel}. */
export interface ChannelOptions {
  /** The current time (ms). */
  now: number;
  /** Largest frame the channel carries (23..65535). @default {65535} */
  mtu?: number;
  /** Use it only while no other channel is up (e.g. BLE beside IP). @default {false} */
  backup?: boolean;
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
  #channels = new Map<ChannelId, LinkChannel>();
  #budgetFloor: number;
  #budgetCeiling: number;
  #eventHead = 0;
  #nextStream: number;
  #mode: SchedulerMode;
  /** Link numbers of what arrived. */
  #seq = new SeqWindow();
  /** The link number of the next new numbered frame. */
  #nextLs = 0;
  /** The lowest link number the peer may not have, as last computed (see `#numbersLeft`). */
  #low = 0;
  /** The payload copies of the batch being kept (one buffer per batch). */
  #arena = new Uint8Array(0);
  #arenaUsed = 0;

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
      // Channels deliver a message's frames in any order: the most of both.
      maxMessages: MAX_MESSAGES_CAP,
      maxHoles: MAX_HOLES_CAP,
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
    this.#out = new Outbound(this.#st, options.frameSize ?? DEFAULT_FRAME_SIZE);
    this.#budgetFloor = options.budgetFloor ?? DEFAULT_BUDGET_FLOOR;
    this.#budgetCeiling = options.budgetCeiling ?? DEFAULT_BUDGET_CEILING;
    this.#in = new Inbound(this.#st, this.#out, DEFAULT_STREAM_WINDOW);
    this.#mode = options.scheduler ?? "delivery";
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
   * Add a channel (a connected, identified physical path), also while data
   * flows: from then on frames are spread over every channel, and a copy of
   * each is kept until the peer acknowledges it, so that what a lost channel
   * carried is sent again on the others. A link takes at most
   * {@linkcode MAX_CHANNELS}; more are ignored.
   *
   * @param id The driver's id for it.
   * @param options The time, the channel's MTU, and whether it is a backup.
   */
  addChannel(id: ChannelId, options: ChannelOptions): void {
    if (this.#st.state === "closed" || this.#channels.has(id)) return;
    if (this.#channels.size >= MAX_CHANNELS) return;
    const mtu = options.mtu ?? DEFAULT_MTU;
    const ch = new LinkChannel({
      id,
      mtu,
      decoder: this.#codec.createDecoder({ maxFrameSize: mtu }),
      onFrame: this.#in.onFrame,
      lose: (why) => this.#st.broken(why),
      now: options.now,
      floor: this.#budgetFloor,
      ceiling: this.#budgetCeiling,
      seq: this.#seq,
      onAcked: this.#acked,
      onLeave: () => this.#peerLeaves(id, options.now),
      backup: options.backup,
    });
    if (this.#channels.size > 0) {
      // A further channel: measure it at once (the peer answers the PING),
      // and keep copies of what goes out from now on.
      // Channels that have not measured a round trip yet do so too.
      ch.ask = true;
      for (const old of this.#channels.values()) if (old.minRtt === undefined) old.ask = true;
      if (!this.#out.retaining) {
        for (const old of this.#channels.values()) old.startRetaining();
        this.#out.retaining = true;
      }
    }
    this.#channels.set(id, ch);
  }

  /**
   * Remove a channel gracefully while data flows (make-before-break): it
   * carries nothing new; both sides say LEAVE on it and wait until what they
   * wrote to it is acknowledged; then a `channelClosed` event tells the
   * driver to close it. The last channel is not removed (close the link).
   *
   * @param id The channel.
   * @param now The current time (ms).
   * @returns Whether the channel is being removed.
   */
  removeChannel(id: ChannelId, now: number): boolean {
    const ch = this.#channels.get(id);
    if (ch === undefined || this.#st.state === "closed") return false;
    if (ch.leave !== undefined) return true;
    let others = 0;
    for (const c of this.#channels.values()) if (c !== ch && c.leave === undefined) others++;
    if (others === 0) return false;
    ch.leave = { sent: false, got: false, since: now };
    return true;
  }

  /** The peer said LEAVE on a channel: leave it too. */
  #peerLeaves(id: ChannelId, now: number): void {
    const ch = this.#channels.get(id);
    if (ch === undefined) return;
    ch.leave ??= { sent: false, got: false, since: now };
    ch.leave.got = true;
  }

  /** A kept frame was acknowledged: its half-sent message may free its slot. */
  #acked = (r: Retained): void => {
    const h = r.hold;
    if (h === undefined) return;
    h.unacked--;
    if (h.unacked === 0 && h.done) this.#out.release(h);
  };

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
    const err = ch.read(bytes, now);
    if (err !== 0 && this.state !== "closed") {
      this.#st.broken(codecErrorMessage(err));
      return;
    }
    if (ch.leave !== undefined) this.#settle(ch);
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
   * A channel closed or failed. While other channels remain, the link lives
   * on: what the channel carried and the peer did not acknowledge is sent
   * again on the others, and no stream notices. Losing the last channel
   * closes the link.
   *
   * @param id The channel.
   * @param message Why, for the `linkClosed` event.
   */
  handleChannelClosed(id: ChannelId, message = "channel closed"): void {
    const ch = this.#channels.get(id);
    if (ch === undefined || this.#st.state === "closed") return;
    this.#drop(ch, message, false);
  }

  /**
   * Give up a channel: send again what it carried that the peer did not
   * acknowledge; the link is lost with its last channel, or with a channel
   * that carried frames before copies were kept (a join less than a round
   * trip ago).
   */
  #drop(ch: LinkChannel, message: string, report: boolean): void {
    this.#channels.delete(ch.id);
    if (this.#channels.size === 0) {
      this.#lose(`Link to ${this.peerId} lost: ${message}`);
      return;
    }
    if (ch.unretained) {
      this.#lose(
        `Link to ${this.peerId} lost: ${message}, with frames written before the link kept copies`,
      );
      return;
    }
    const st = this.#st;
    for (const r of ch.release()) {
      r.copies++;
      st.resend.push(r);
    }
    if (this.#channels.size === 1) this.#out.retaining = false;
    if (report) st.events.push({ type: "channelClosed", channel: ch.id, message });
  }

  /** A leaving channel is done once both sides said LEAVE and what we wrote was acknowledged. */
  #settle(ch: LinkChannel): void {
    const l = ch.leave!;
    if (l.sent && l.got && ch.inFlight === 0 && this.#channels.get(ch.id) === ch) {
      this.#drop(ch, "removed", true);
    }
  }

  /**
   * What a channel measured: bytes sent, acknowledged and in flight, its
   * in-flight budget, round trips, delivery rate, MTU and health.
   *
   * @param id The channel.
   * @returns The figures, or `undefined` for an unknown channel.
   */
  channelStats(id: ChannelId): ChannelStats | undefined {
    const ch = this.#channels.get(id);
    if (ch === undefined) return undefined;
    const st = ch.stats;
    if (st.health === "up" && this.#channels.size > 1) {
      const turn = channelTurns(this.#channels.values(), this.#mode, 0, 0).find((t) => t.ch === ch);
      if (turn?.plan.role === "standby") st.health = "standby";
    }
    return st;
  }

  /** The ids of the link's channels, in the order they were added. */
  get channelIds(): ChannelId[] {
    return [...this.#channels.keys()];
  }

  /**
   * Timers are due.
   *
   * @param now The current time (ms).
   */
  handleTimeout(now: number): void {
    if (this.#st.state === "closed") return;
    const several = this.#channels.size > 1;
    for (const ch of [...this.#channels.values()]) {
      // Compared as pollTimeout computes them, so a due time is never missed by rounding.
      if (now >= ch.lastRx + this.#keepAlive) {
        const why = `peer silent for ${now - ch.lastRx} ms`;
        if (!several) {
          this.#lose(`Link to ${this.peerId} lost: ${why}`);
          return;
        }
        this.#drop(ch, `channel ${ch.id} lost: ${why}`, true);
        if (this.#gone()) return;
        continue;
      }
      if (ch.leave !== undefined && now >= ch.leave.since + this.#keepAlive) {
        this.#drop(ch, `channel ${ch.id} removed (its peer did not finish)`, true);
        if (this.#gone()) return;
        continue;
      }
      if (now >= ch.lastTx + this.#pingInterval) ch.ping = true;
      const ask = this.#askAt(ch);
      if (ask !== undefined && now >= ask) ch.ask = true;
      const at = this.#suspectAt(ch);
      if (at !== undefined && now >= at) this.#suspect(ch);
    }
  }

  /**
   * When to ask a channel of a link of several for an acknowledgement of its
   * oldest write (a write too small to ask for one itself), so that a
   * healthy channel is never suspect: two smallest round trips after it
   * (half of {@linkcode UNMEASURED_RTT} before it measured one).
   */
  #askAt(ch: LinkChannel): number | undefined {
    if (this.#channels.size < 2 || ch.ask || ch.askPending) return undefined;
    const oldest = ch.oldestUnacked;
    if (oldest === undefined) return undefined;
    return oldest + 2 * (ch.minRtt ?? UNMEASURED_RTT / 4);
  }

  /** Whether the link is closed (not narrowed by the checks before). */
  #gone(): boolean {
    return this.#st.state === "closed";
  }

  /** When a channel becomes suspect, if it has data in flight and others are up. */
  #suspectAt(ch: LinkChannel): number | undefined {
    if (ch.suspect || this.#channels.size < 2 || !this.#othersUp(ch)) return undefined;
    const oldest = ch.oldestUnacked;
    if (oldest === undefined) return undefined;
    return oldest + Math.max(SUSPECT_AFTER, 8 * (ch.minRtt ?? 0));
  }

  /** Whether a channel other than `ch` carries data (neither suspect nor leaving). */
  #othersUp(ch: LinkChannel): boolean {
    for (const c of this.#channels.values()) {
      if (c !== ch && !c.suspect && c.leave === undefined) return true;
    }
    return false;
  }

  /**
   * A channel's oldest write went unacknowledged too long: it carries nothing
   * new, and what it holds goes again on the others (it stays: an ACK makes
   * it healthy again).
   */
  #suspect(ch: LinkChannel): void {
    ch.suspect = true;
    for (const r of ch.unacked()) {
      r.copies++;
      this.#st.resend.push(r);
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
      t = Math.min(t, ch.lastRx + this.#keepAlive);
      // A ping already due waits for the channel to be writable, not for a timer.
      if (!ch.ping) t = Math.min(t, ch.lastTx + this.#pingInterval);
      if (ch.leave !== undefined) t = Math.min(t, ch.leave.since + this.#keepAlive);
      const at = this.#suspectAt(ch);
      if (at !== undefined) t = Math.min(t, at);
      const ask = this.#askAt(ch);
      if (ask !== undefined) t = Math.min(t, ask);
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
   * something to send and credit to send it, up to `maxBatchBytes`. With
   * several channels, the channel that delivers soonest is asked first
   * (see `_paths.ts`).
   *
   * @param now The current time (ms).
   * @returns Bytes for one channel, or `undefined` when nothing is due.
   */
  pollTransmit(now: number): Transmit | undefined {
    if (this.#st.state === "closed") return undefined;
    if (this.#channels.size === 1) {
      const ch: LinkChannel = this.#channels.values().next().value!;
      return ch.writable ? this.#transmit(ch, now, SINGLE_PLAN, undefined) : undefined;
    }
    const turns = channelTurns(
      this.#channels.values(),
      this.#mode,
      this.#st.queued,
      this.#numbersLeft(),
    );
    for (const { ch, plan, copyTo } of turns) {
      if (!ch.writable) continue;
      const tx = this.#transmit(ch, now, plan, copyTo);
      if (tx !== undefined) return tx;
    }
    return undefined;
  }

  /**
   * New link numbers a batch may use: the peer tracks {@linkcode SEQ_WINDOW}
   * numbers above the lowest it lacks, so frames unacknowledged that far back
   * hold new ones (a stall that a lost channel's timeout ends). Computed
   * again only when the cached bound comes near.
   */
  #numbersLeft(): number {
    if (this.#nextLs - this.#low < SEQ_WINDOW / 2) return SEQ_WINDOW / 2;
    let low = this.#nextLs;
    for (const ch of this.#channels.values()) low = Math.min(low, ch.lowestUnacked());
    for (const r of this.#st.resend) if (!r.acked) low = Math.min(low, r.ls);
    this.#low = low;
    return SEQ_WINDOW - (this.#nextLs - low);
  }

  #transmit(
    ch: LinkChannel,
    now: number,
    plan: BatchPlan,
    copyTo: LinkChannel | undefined,
  ): Transmit | undefined {
    const out = this.#out;
    const { frames, appLimited, resent } = out.batch(
      ch,
      this.#eventHead < this.#st.events.length,
      plan,
    );
    const leave = ch.leave !== undefined && !ch.leave.sent;
    if (frames.length === 0 && !leave) {
      if (out.holds.size > 0) this.#settleHolds();
      return undefined;
    }
    if (leave) {
      frames.push(LEAVE_FRAME);
      ch.leave!.sent = true;
    }
    // Number the frames (those sent again keep theirs), with a MARK wherever
    // the channel's own count would give the peer another number; keep
    // copies while the link has several channels.
    const retaining = out.retaining;
    let list = frames;
    let marked: FrameInit[] | undefined;
    let uncounted = 0;
    let end = ch.sentBytes;
    let minLs = Infinity;
    let k = 0;
    if (retaining) this.#arenaFor(frames, resent);
    for (let i = 0; i < frames.length; i++) {
      const f = frames[i];
      if (f.type === ACK) {
        uncounted += FRAME_OVERHEAD;
        marked?.push(f);
        continue;
      }
      end += FRAME_OVERHEAD + f.payload.length;
      if (f.type === PING) {
        marked?.push(f);
        continue;
      }
      const again = k < resent.length && resent[k].frame === f ? resent[k++] : undefined;
      const ls = again !== undefined ? again.ls : this.#nextLs++;
      if (ls !== ch.txLs) {
        marked ??= frames.slice(0, i);
        marked.push({
          seq: ls >>> 0,
          type: ACK,
          stream: ChannelFrame.MARK,
          total: 0,
          offset: 0,
          payload: EMPTY,
        });
        uncounted += FRAME_OVERHEAD;
      }
      marked?.push(f);
      ch.txLs = ls + 1;
      if (ls < minLs) minLs = ls;
      if (!retaining) {
        // A frame sent again on the last channel is kept no more: as good as
        // acknowledged (that channel's loss ends the link), so its half-sent
        // message's slot is not held for an acknowledgement that never comes.
        if (again !== undefined && !again.acked) {
          again.acked = true;
          this.#acked(again);
        }
        continue;
      }
      let r = again;
      if (r === undefined) {
        r = { ls, frame: this.#own(f), acked: false, copies: 0, written: 0, hold: undefined };
        const h = out.holds.get(f);
        if (h !== undefined) {
          r.hold = h;
          h.unacked++;
        }
        if (copyTo !== undefined) this.#copy(copyTo, r);
      }
      ch.retain(r, end);
    }
    if (marked !== undefined) list = marked;
    if (out.holds.size > 0) this.#settleHolds();
    const tx = { channel: ch.id, bytes: this.#codec.encodeBatch(list), rate: ch.rate };
    ch.sent(tx.bytes.length - uncounted, now, appLimited, minLs);
    if (out.byeSent) this.#finish(DisconnectReason.LINK_CLOSED, "Link closed");
    else if (leave) this.#settle(ch);
    return tx;
  }

  /** Half-sent messages of this batch whose frames were not kept: free their slots when due. */
  #settleHolds(): void {
    for (const h of this.#out.holds.values()) {
      if (h.done && h.unacked === 0) this.#out.release(h);
    }
    this.#out.holds.clear();
  }

  /** Room for the payloads of the new frames of a batch (not those sent again), in one buffer. */
  #arenaFor(frames: FrameInit[], resent: Retained[]): void {
    let n = 0;
    let k = 0;
    for (const f of frames) {
      if (f.type === ACK || f.type === PING) continue;
      if (k < resent.length && resent[k].frame === f) k++;
      else n += f.payload.length;
    }
    this.#arena = new Uint8Array(n);
    this.#arenaUsed = 0;
  }

  /** A frame with a copy of its payload (it outlives the caller's buffer and the codec's scratch). */
  #own(f: FrameInit): FrameInit {
    const len = f.payload.length;
    const at = this.#arenaUsed;
    const payload = this.#arena.subarray(at, at + len);
    payload.set(f.payload);
    this.#arenaUsed = at + len;
    return {
      type: f.type,
      stream: f.stream,
      seq: f.seq,
      total: f.total,
      offset: f.offset,
      payload,
    };
  }

  /** Redundant mode: queue a copy of a new frame for the second best channel. */
  #copy(to: LinkChannel, r: Retained): void {
    const q = to.copies;
    if (q.length >= MAX_COPIES) q.shift()!.copies--;
    r.copies++;
    q.push(r);
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
    this.#st.queued += data.length;
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
      st.clearStream(s);
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
    st.resend = [];
    st.queued = 0;
    st.held = 0;
    st.partial = 0;
    st.partialBytes = 0;
    st.reassembler.close();
    st.events.push({ type: "linkClosed", reason, message });
  }
}

/** The next stream id of the same parity, wrapping within 1..65535. */
function nextId(id: number): number {
  return id + 2 > 65535 ? (id % 2 === 1 ? 1 : 2) : id + 2;
}

/**
 * Two link state machines joined in memory with a virtual clock: channels
 * with latency, MTU and a byte rate, which can be cut silently or closed,
 * and sides that can be frozen. No socket, no timer (quinn's `Pair`).
 *
 * @module
 */
import { Link, type LinkEvent, type LinkOptions } from "../../core/proto/link/mod.ts";
import { type Codec, createCodec } from "../../wasm/mod.ts";
import { nativeCrc } from "../../platform/crc.ts";

/** One simulated channel. */
export interface SimChannelOptions {
  /** One-way latency (ms). @default {1} */
  latency?: number;
  /** MTU. @default {65535} */
  mtu?: number;
  /** Bytes per ms the channel carries (0 = unlimited). @default {0} */
  rate?: number;
  /**
   * With a rate, a write arrives in pieces of this many bytes, each when
   * carried (without a rate, whole). @default {16384}
   */
  segment?: number;
  /**
   * Chance that a segment is lost and sent again by the transport (TCP): it
   * and everything after it on that direction arrive `rto` ms later, in
   * order. Needs `random`. @default {0}
   */
  loss?: number;
  /** Delay of a segment lost and sent again (ms). @default {200} */
  rto?: number;
  /** Whether the channel is a backup (see `ChannelOptions.backup`). @default {false} */
  backup?: boolean;
}

interface InFlight {
  at: number;
  bytes: Uint8Array;
}

interface SimChannel {
  id: number;
  latency: number;
  rate: number;
  segment: number;
  up: boolean;
  loss: number;
  rto: number;
  toB: InFlight[];
  toA: InFlight[];
  busyA: number;
  busyB: number;
}

/** Options of a {@linkcode Pair}. */
export interface PairOptions extends Partial<Omit<LinkOptions, "localId" | "peerId" | "now">> {
  /** The channels. @default {[{}]} */
  channels?: SimChannelOptions[];
  /** Codec for both sides. @default {createCodec()} */
  codec?: Codec;
  /** Random numbers in [0, 1) for `loss` (seed it to replay a run). @default {Math.random} */
  random?: () => number;
}

/** Two links, A (`00:00:00:00:00:0A`) and B (`00:00:00:00:00:0B`), and their channels. */
export class Pair {
  /** Virtual time (ms). */
  now = 0;
  /** Side A (the lower id). */
  readonly a: Link;
  /** Side B. */
  readonly b: Link;
  /** Events A reported, in order. */
  readonly eventsA: LinkEvent[] = [];
  /** Events B reported, in order. */
  readonly eventsB: LinkEvent[] = [];
  /** Whether a side is frozen (sends and handles nothing, like SIGSTOP). */
  frozen: { a: boolean; b: boolean } = { a: false, b: false };
  #channels: SimChannel[] = [];
  /** Writes per channel (index = channel id - 1), both directions. */
  readonly writes: number[] = [];
  /** Callback run on every event, e.g. to accept opens. */
  onEvent: (side: "a" | "b", e: LinkEvent) => void = () => {};
  /**
   * Callback run on every write, with the bytes (valid during the call) and
   * the channel's rate the link gave with them (bytes per ms, 0 if unknown).
   */
  onWrite: (side: "a" | "b", channel: number, bytes: Uint8Array, rate: number) => void = () => {};

  /** @param options Channels and link options. */
  constructor(options: PairOptions = {}) {
    const codec = options.codec ?? createCodec({ crc: nativeCrc() });
    const { channels = [{}], random = Math.random, ...rest } = options;
    this.#random = random;
    const common = { ...rest, codec, now: 0 };
    this.a = new Link({ ...common, localId: "00:00:00:00:00:0A", peerId: "00:00:00:00:00:0B" });
    this.b = new Link({ ...common, localId: "00:00:00:00:00:0B", peerId: "00:00:00:00:00:0A" });
    for (const c of channels) this.addChannel(c);
  }

  #random: () => number;

  /**
   * Add a channel to both sides now (a join while data flows).
   *
   * @param c The channel.
   * @returns Its id.
   */
  addChannel(c: SimChannelOptions = {}): number {
    const id = this.#channels.length + 1;
    this.#channels.push({
      id,
      latency: c.latency ?? 1,
      rate: c.rate ?? 0,
      segment: c.segment ?? 16384,
      up: true,
      loss: c.loss ?? 0,
      rto: c.rto ?? 200,
      toB: [],
      toA: [],
      busyA: 0,
      busyB: 0,
    });
    this.writes.push(0);
    this.a.addChannel(id, { now: this.now, mtu: c.mtu, backup: c.backup });
    this.b.addChannel(id, { now: this.now, mtu: c.mtu, backup: c.backup });
    return id;
  }

  /**
   * Change the byte rate of a channel from now on (bytes already written keep
   * their times).
   *
   * @param id The channel.
   * @param rate Bytes per ms, both ways (0 = unlimited).
   */
  setRate(id: number, rate: number): void {
    this.#channels[id - 1].rate = rate;
  }

  /** Cut a channel silently: bytes in flight and later are lost, no one is told. */
  cut(id: number): void {
    const ch = this.#channels[id - 1];
    ch.up = false;
    ch.toA.length = 0;
    ch.toB.length = 0;
  }

  /** Close a channel: both sides are told at once. */
  closeChannel(id: number): void {
    this.cut(id);
    this.a.handleChannelClosed(id, "closed by test");
    this.b.handleChannelClosed(id, "closed by test");
    this.#collect();
  }

  /**
   * Run the simulation until `until` (virtual ms) or until nothing is left to
   * happen.
   *
   * @param until The end time. @default {now + 60000}
   */
  run(until: number = this.now + 60_000): void {
    for (let guard = 0; guard < 10_000_000; guard++) {
      this.#step();
      const next = this.#nextTime();
      if (next === undefined) return;
      if (next > until) {
        this.now = until;
        this.#step();
        return;
      }
      this.now = Math.max(this.now, next);
    }
    throw new Error("Pair.run did not settle");
  }

  #step(): void {
    for (let progress = true; progress;) {
      progress = false;
      for (const side of ["a", "b"] as const) {
        if (this.frozen[side]) continue;
        const link = side === "a" ? this.a : this.b;
        const t = link.pollTimeout();
        if (t !== undefined && t <= this.now) {
          link.handleTimeout(this.now);
          progress = true;
        }
        for (let tx = link.pollTransmit(this.now); tx; tx = link.pollTransmit(this.now)) {
          const ch = this.#channels[tx.channel - 1];
          progress = true;
          this.writes[ch.id - 1]++;
          this.onWrite(side, ch.id, tx.bytes, tx.rate ?? 0);
          if (!ch.up) continue;
          const busy = side === "a" ? "busyA" : "busyB";
          const queue = side === "a" ? ch.toB : ch.toA;
          let at = Math.max(this.now, ch[busy]);
          // A segment arrives after the one before it (a lost one holds the rest back).
          const push = (t: number, piece: Uint8Array) => {
            if (ch.loss > 0 && this.#random() < ch.loss) t += ch.rto;
            const last = queue.length > 0 ? queue[queue.length - 1].at : 0;
            queue.push({ at: Math.max(t, last), bytes: piece });
          };
          if (ch.rate <= 0) {
            push(at + ch.latency, tx.bytes.slice());
            continue;
          }
          // Bytes arrive as they are carried, a segment at a time, as TCP's do.
          for (let off = 0; off < tx.bytes.length; off += ch.segment) {
            const piece = tx.bytes.slice(off, off + ch.segment);
            at += piece.length / ch.rate;
            push(at + ch.latency, piece);
          }
          ch[busy] = at;
        }
      }
      for (const ch of this.#channels) {
        for (const [queue, to, side] of [[ch.toB, this.b, "b"], [ch.toA, this.a, "a"]] as const) {
          if (this.frozen[side]) continue;
          while (queue.length > 0 && queue[0].at <= this.now) {
            to.handleBytes(ch.id, queue.shift()!.bytes, this.now);
            progress = true;
          }
        }
      }
      if (this.#collect()) progress = true;
    }
  }

  #collect(): boolean {
    let any = false;
    for (const side of ["a", "b"] as const) {
      const link = side === "a" ? this.a : this.b;
      const list = side === "a" ? this.eventsA : this.eventsB;
      for (let e = link.pollEvent(); e; e = link.pollEvent()) {
        list.push(e);
        this.onEvent(side, e);
        any = true;
        if (e.type === "channelClosed") {
          // The driver closes the channel: the other side sees it close.
          this.cut(e.channel);
          (side === "a" ? this.b : this.a).handleChannelClosed(e.channel, "closed by the peer");
        }
      }
    }
    return any;
  }

  #nextTime(): number | undefined {
    let t = Infinity;
    for (const side of ["a", "b"] as const) {
      if (this.frozen[side]) continue;
      const to = (side === "a" ? this.a : this.b).pollTimeout();
      if (to !== undefined) t = Math.min(t, to);
    }
    for (const ch of this.#channels) {
      if (ch.toB.length > 0 && !this.frozen.b) t = Math.min(t, ch.toB[0].at);
      if (ch.toA.length > 0 && !this.frozen.a) t = Math.min(t, ch.toA[0].at);
    }
    return t === Infinity ? undefined : t;
  }
}

/** Accept every `open` event on both sides. */
export function acceptAll(pair: Pair): void {
  pair.onEvent = (side, e) => {
    if (e.type === "open") (side === "a" ? pair.a : pair.b).accept(e.stream);
  };
}

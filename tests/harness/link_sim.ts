/**
 * Two link state machines over channels that behave as a device driver
 * sees TCP ones, in virtual time: a write is taken whole but says "wait"
 * once the channel holds more than its send buffer (the driver then marks
 * the channel unwritable until it drains); reads come in pieces of any
 * size; a further channel joins as the handshake does it (the acceptor adds
 * it a one-way trip before the dialer); a channel is cut at any moment and
 * each side learns it when it learns it (at once, late, or only from its
 * keep-alive); a side can stall (a busy event loop) and then catches up.
 * Between events a side runs the driver's loop: every batch it transmits,
 * then every event, until neither is left. Everything random comes from the
 * seeded `rnd`, so a failing case replays.
 *
 * Used by `core/proto/link/channel_loss_test.ts`; `Pair` (`link_pair.ts`)
 * is the simpler model the other link tests use.
 *
 * @module
 */
import { Link, type LinkEvent, type LinkOptions } from "../../core/proto/link/mod.ts";
import type { Codec } from "../../wasm/mod.ts";
import type { Rand } from "./fuzz.ts";

/** A side of the simulation. */
export type Side = "a" | "b";

/** One direction of a channel. */
interface Dir {
  /** Bytes on their way, each piece with its arrival time. */
  queue: { at: number; bytes: Uint8Array }[];
  /** When the path has carried what was written so far. */
  busy: number;
  /** Bytes written and not yet carried (the send buffer), and when each piece leaves it. */
  buffered: number;
  leaves: { at: number; n: number }[];
  /** Whether the writer was told to wait. */
  blocked: boolean;
}

/** A simulated channel. */
interface SimChannel {
  id: number;
  latency: number;
  /** Bytes per ms. */
  rate: number;
  /** Send buffer: a write that leaves more than this waiting says "wait". */
  sndBuf: number;
  mtu: number | undefined;
  up: boolean;
  /** Whether each side has it (added, not yet closed). */
  has: { a: boolean; b: boolean };
  dirs: { a: Dir; b: Dir }; // keyed by the writer
}

/** What a channel is like. */
export interface SimPath {
  /** One-way latency (ms). */
  latency: number;
  /** Bytes per ms. */
  rate: number;
  /** Send buffer (bytes). */
  sndBuf: number;
  /** Largest frame (a BLE channel's is small). @default {65535} */
  mtu?: number;
}

/** Something that happens at a time. */
interface Action {
  at: number;
  run: () => void;
}

/** Options of a {@linkcode Sim}. */
export interface SimOptions extends Partial<Omit<LinkOptions, "localId" | "peerId" | "now">> {
  /** The codec. */
  codec: Codec;
  /** Randomness (read sizes, delays). */
  rnd: Rand;
}

/** Two links, A (the dialer of every channel) and B, over simulated channels. */
export class Sim {
  /** Virtual time (ms). */
  now = 0;
  /** The dialer. */
  readonly a: Link;
  /** The acceptor. */
  readonly b: Link;
  /** Until when each side is stalled. */
  readonly stalled: { a: number; b: number } = { a: 0, b: 0 };
  /** Called for every event a side polls, as a driver would handle it. */
  onEvent: (side: Side, e: LinkEvent) => void = () => {};
  /** Every event, in order, with its side and time. */
  readonly log: { side: Side; at: number; e: LinkEvent }[] = [];
  #rnd: Rand;
  #channels: SimChannel[] = [];
  #actions: Action[] = [];

  /** @param options The codec, randomness and link options. */
  constructor(options: SimOptions) {
    const { codec, rnd, ...rest } = options;
    this.#rnd = rnd;
    const common = { ...rest, codec, now: 0 };
    this.a = new Link({ ...common, localId: "00:00:00:00:00:0A", peerId: "00:00:00:00:00:0B" });
    this.b = new Link({ ...common, localId: "00:00:00:00:00:0B", peerId: "00:00:00:00:00:0A" });
  }

  /** The link of a side. */
  link(side: Side): Link {
    return side === "a" ? this.a : this.b;
  }

  /** Run `fn` at virtual time `at`. */
  at(at: number, fn: () => void): void {
    this.#actions.push({ at, run: fn });
  }

  /**
   * A channel both sides have from now (the link's first one).
   *
   * @param p The path.
   * @returns Its id.
   */
  first(p: SimPath): number {
    const ch = this.#make(p);
    ch.has.a = ch.has.b = true;
    this.a.addChannel(ch.id, { now: this.now, mtu: ch.mtu });
    this.b.addChannel(ch.id, { now: this.now, mtu: ch.mtu });
    return ch.id;
  }

  /**
   * A join dialled now: the acceptor adds the channel one latency later (when
   * it answers the handshake), the dialer one more later (when the answer
   * arrives), each only if the channel is still up and its link open.
   *
   * @param p The path.
   * @returns Its id.
   */
  join(p: SimPath): number {
    const ch = this.#make(p);
    const add = (side: Side) => {
      const link = this.link(side);
      if (!ch.up || link.state !== "open") return;
      if (side === "a" && !ch.has.b) return; // the acceptor never answered
      ch.has[side] = true;
      link.addChannel(ch.id, { now: this.now, mtu: ch.mtu });
    };
    this.at(this.now + ch.latency, () => add("b"));
    this.at(this.now + 2 * ch.latency, () => add("a"));
    return ch.id;
  }

  /**
   * Cut a channel: what is on its way is lost; each side learns it after
   * `notice[side]` ms (`Infinity`: never, its keep-alive finds out).
   *
   * @param id The channel.
   * @param notice When each side learns it.
   */
  cut(id: number, notice: { a: number; b: number }): void {
    const ch = this.#channels[id - 1];
    if (!ch.up) return;
    ch.up = false;
    for (const side of ["a", "b"] as const) {
      const d = ch.dirs[side];
      d.queue.length = 0;
      d.leaves.length = 0;
      d.buffered = 0;
      if (notice[side] !== Infinity) {
        this.at(this.now + notice[side], () => this.#closed(side, ch, "cut"));
      }
    }
  }

  /** Channels up and had by both sides. */
  get whole(): number[] {
    return this.#channels.filter((c) => c.up && c.has.a && c.has.b).map((c) => c.id);
  }

  /** Channels not yet closed at either side. */
  get open(): number[] {
    return this.#channels.filter((c) => c.has.a || c.has.b).map((c) => c.id);
  }

  /**
   * Run until `until`, or until `stop()` says so.
   *
   * @param until The end (virtual ms).
   * @param stop Checked after each step.
   */
  run(until: number, stop: () => boolean = () => false): void {
    for (let guard = 0; guard < 5_000_000; guard++) {
      this.#step();
      if (stop()) return;
      const next = this.#next();
      if (next === undefined || next > until) {
        this.now = Math.max(this.now, until);
        this.#step();
        return;
      }
      this.now = Math.max(this.now, next);
    }
    throw new Error("Sim.run did not settle");
  }

  #make(p: SimPath): SimChannel {
    const dir = (): Dir => ({ queue: [], busy: 0, buffered: 0, leaves: [], blocked: false });
    const ch: SimChannel = {
      id: this.#channels.length + 1,
      latency: p.latency,
      rate: p.rate,
      sndBuf: p.sndBuf,
      mtu: p.mtu,
      up: true,
      has: { a: false, b: false },
      dirs: { a: dir(), b: dir() },
    };
    this.#channels.push(ch);
    return ch;
  }

  /** A side learns that a channel closed (or closes it itself). */
  #closed(side: Side, ch: SimChannel, why: string): void {
    if (!ch.has[side]) return;
    ch.has[side] = false;
    this.link(side).handleChannelClosed(ch.id, why);
  }

  #step(): void {
    for (let progress = true; progress;) {
      progress = false;
      const due = this.#actions.filter((x) => x.at <= this.now);
      if (due.length > 0) {
        this.#actions = this.#actions.filter((x) => x.at > this.now);
        for (const x of due.sort((p, q) => p.at - q.at)) x.run();
        progress = true;
      }
      for (const side of ["a", "b"] as const) {
        if (this.stalled[side] > this.now) continue;
        if (this.#side(side)) progress = true;
      }
    }
  }

  /** One side's turn: reads, drained buffers, timers, then the driver's loop. */
  #side(side: Side): boolean {
    const link = this.link(side);
    const other: Side = side === "a" ? "b" : "a";
    let progress = false;
    for (const ch of this.#channels) {
      if (!ch.has[side]) continue;
      const q = ch.dirs[other].queue;
      while (q.length > 0 && q[0].at <= this.now && ch.has[side]) {
        const bytes = q.shift()!.bytes;
        // A read of any size: the piece in one to three parts.
        const cuts = [0, ...Array.from({ length: this.#rnd(3) }, () => this.#rnd(bytes.length + 1))]
          .sort((x, y) => x - y);
        cuts.push(bytes.length);
        for (let i = 0; i + 1 < cuts.length && ch.has[side]; i++) {
          if (cuts[i + 1] > cuts[i]) {
            link.handleBytes(ch.id, bytes.subarray(cuts[i], cuts[i + 1]), this.now);
          }
        }
        progress = true;
      }
      const d = ch.dirs[side];
      while (d.leaves.length > 0 && d.leaves[0].at <= this.now) {
        d.buffered -= d.leaves.shift()!.n;
        progress = true;
      }
      if (d.blocked && d.buffered <= ch.sndBuf / 2) {
        d.blocked = false;
        link.handleWritable(ch.id, true);
        progress = true;
      }
    }
    const t = link.pollTimeout();
    if (t !== undefined && t <= this.now) {
      link.handleTimeout(this.now);
      progress = true;
    }
    for (let busy = true; busy;) {
      busy = false;
      for (let tx = link.pollTransmit(this.now); tx; tx = link.pollTransmit(this.now)) {
        busy = progress = true;
        this.#write(side, this.#channels[tx.channel - 1], tx.bytes);
      }
      for (let e = link.pollEvent(); e; e = link.pollEvent()) {
        busy = progress = true;
        this.log.push({ side, at: this.now, e });
        if (e.type === "channelClosed") {
          // The driver closes it: the peer learns it a trip later.
          const ch = this.#channels[e.channel - 1];
          ch.has[side] = false;
          if (ch.up) {
            ch.up = false;
            const d = ch.dirs[side];
            this.at(this.now + ch.latency, () => this.#closed(other, ch, "closed by the peer"));
            d.queue.length = 0;
          }
        }
        this.onEvent(side, e);
      }
    }
    return progress;
  }

  /** A driver's write: taken whole; "wait" once the send buffer holds more than its size. */
  #write(side: Side, ch: SimChannel, bytes: Uint8Array): void {
    if (!ch.up || !ch.has[side]) return;
    const d = ch.dirs[side];
    let at = Math.max(this.now, d.busy);
    for (let off = 0; off < bytes.length; off += 1460) {
      const piece = bytes.slice(off, off + 1460);
      at += piece.length / ch.rate;
      d.leaves.push({ at, n: piece.length });
      d.queue.push({ at: at + ch.latency, bytes: piece });
    }
    d.busy = at;
    d.buffered += bytes.length;
    if (d.buffered > ch.sndBuf && !d.blocked) {
      d.blocked = true;
      this.link(side).handleWritable(ch.id, false);
    }
  }

  #next(): number | undefined {
    let t = Infinity;
    for (const x of this.#actions) t = Math.min(t, x.at);
    for (const side of ["a", "b"] as const) {
      const resume = this.stalled[side];
      const other: Side = side === "a" ? "b" : "a";
      let s = Infinity;
      const to = this.link(side).pollTimeout();
      if (to !== undefined) s = Math.min(s, to);
      for (const ch of this.#channels) {
        if (!ch.has[side]) continue;
        const q = ch.dirs[other].queue;
        if (q.length > 0) s = Math.min(s, q[0].at);
        const d = ch.dirs[side];
        if (d.leaves.length > 0) s = Math.min(s, d.leaves[0].at);
      }
      if (s !== Infinity) t = Math.min(t, Math.max(s, resume));
    }
    return t === Infinity ? undefined : t;
  }
}

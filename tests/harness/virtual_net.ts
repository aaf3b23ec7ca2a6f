/**
 * A virtual device network: several sans-IO endpoints joined by in-memory
 * channels with latency, on a virtual clock. The harness plays every
 * device's driver (dials, channel bytes, timers, accept decisions), so
 * protocol behaviour between devices (simultaneous dial, restart, id clash,
 * absent peers, graceful close) is tested with no socket and no real time.
 *
 * Routing: a dial to a device id reaches whichever device currently answers
 * for that id (`route`), so a test can put two runtimes behind one id.
 *
 * @module
 */
import {
  type ConnectOptions,
  Endpoint,
  type EndpointEvent,
  type EndpointOptions,
  type PeerLink,
} from "../../core/device/endpoint.ts";
import type { Codec } from "../../core/proto/frame.ts";
import type { Identity, TrustView } from "../../core/proto/handshake/secure.ts";
import { createCodec } from "../../wasm/mod.ts";
import { nativeCrc } from "../../platform/crc.ts";
import { nodeCrypto } from "../../platform/crypto.ts";

/** A device's trust store, in memory. */
export class MemoryTrust implements TrustView {
  /** Pinned keys by device id. */
  readonly pins: Map<string, Uint8Array> = new Map();
  /** Paired device ids. */
  readonly pairs: Set<string> = new Set();
  /** The pinned key of a device. */
  pinned(id: string): Uint8Array | undefined {
    return this.pins.get(id);
  }
  /** Whether a device was paired. */
  paired(id: string): boolean {
    return this.pairs.has(id);
  }
  /** Whether any device was paired. */
  anyPaired(): boolean {
    return this.pairs.size > 0;
  }
  /** Pin a key. */
  pin(id: string, key: Uint8Array): void {
    this.pins.set(id, key);
  }
  /** Trust a key as paired. */
  pair(id: string, key: Uint8Array): void {
    this.pins.set(id, key);
    this.pairs.add(id);
  }
  /** Revoked keys by device id. */
  readonly refused: Map<string, Uint8Array> = new Map();
  /** Whether a key was revoked. */
  revoked(id: string, key: Uint8Array): boolean {
    const r = this.refused.get(id);
    return r !== undefined && r.length === key.length && r.every((b, i) => b === key[i]);
  }
}

/** One device of the network. */
export class VirtualDevice {
  /** Its id. */
  readonly id: string;
  /** Its endpoint. */
  readonly ep: Endpoint;
  /** Every event it reported, in order. */
  readonly events: EndpointEvent[] = [];
  /** Whether it accepts channels. */
  listening = true;
  /** Whether it is running (a killed device does nothing more). */
  alive = true;
  /** Whether it is frozen (handles and sends nothing, like SIGSTOP). */
  frozen = false;
  /** The profile of the channels it dials to a peer (`undefined`: linkweave, with its handshake). */
  profileFor: (peer: string) => string | undefined = () => undefined;
  /** Answers incoming streams: `true` accepts, a number rejects with that code. */
  acceptor: (name: string, peer: string) => true | number = () => true;
  /** Data received per owner tag. */
  readonly received: Map<unknown, Uint8Array[]> = new Map();
  /** Its trust store (secure devices). */
  trust: MemoryTrust | undefined;

  /**
   * @param id The device id.
   * @param ep Its endpoint.
   */
  constructor(id: string, ep: Endpoint) {
    this.id = id;
    this.ep = ep;
  }

  /** Events of one type. */
  of<T extends EndpointEvent["type"]>(type: T): Extract<EndpointEvent, { type: T }>[] {
    return this.events.filter((e) => e.type === type) as Extract<EndpointEvent, { type: T }>[];
  }

  /** Warnings it gave. */
  get warnings(): string[] {
    return this.of("warn").map((e) => e.message);
  }
}

interface Pipe {
  from: VirtualDevice;
  to: VirtualDevice;
  fromId: number;
  toId: number;
  /** Bytes or the close, in order, with their arrival times. */
  queue: { at: number; bytes?: Uint8Array; close?: string }[];
  up: boolean;
  /** The other direction (set right after both are made). */
  peer?: Pipe;
}

/** Options of a {@linkcode VirtualNet}. */
export interface VirtualNetOptions {
  /** One-way latency of every channel (ms). @default {2} */
  latency?: number;
  /** Codec of every device. @default {the wasm codec} */
  codec?: Codec;
  /** Endpoint options of every device. */
  endpoint?: Partial<EndpointOptions>;
}

/** The network. */
export class VirtualNet {
  /** Virtual time (ms). */
  now = 0;
  #latency: number;
  #codec: Codec;
  #endpoint: Partial<EndpointOptions>;
  #routes = new Map<string, VirtualDevice>();
  #devices: VirtualDevice[] = [];
  #pipes = new Map<VirtualDevice, Map<number, Pipe>>();
  /** Every direction with something in flight (also after its sender closed it). */
  #flows = new Set<Pipe>();
  #nextChannel = 1;
  #nonce = 0;
  #pendingDials: { at: number; dev: VirtualDevice; peer: string; join: boolean }[] = [];
  #identities = new Map<string, Identity>();
  /** Change bytes in flight (attacks): return what arrives instead. */
  tamper: (from: VirtualDevice, to: VirtualDevice, bytes: Uint8Array) => Uint8Array = (_f, _t, b) =>
    b;

  /**
   * Secure options for a device: its identity (the same key at every restart
   * unless `newKey`), an account, a fresh trust store.
   *
   * @param id The device id.
   * @param account The account key, or none.
   * @param newKey Make a new key (another device claiming the id).
   * @returns The options, with the trust store to inspect.
   */
  secure(
    id: string,
    account: Uint8Array | undefined,
    newKey = false,
  ): { security: NonNullable<EndpointOptions["security"]>; trust: MemoryTrust } {
    const crypto = nodeCrypto();
    let identity = this.#identities.get(id);
    if (identity === undefined || newKey) {
      const k = crypto.ed25519();
      identity = { id, publicKey: k.publicKey, privateKey: k.privateKey };
      if (!newKey) this.#identities.set(id, identity);
    }
    const trust = new MemoryTrust();
    return { security: { crypto, identity, account, trust }, trust };
  }

  /** @param options Latency, codec, endpoint options. */
  constructor(options: VirtualNetOptions = {}) {
    this.#latency = options.latency ?? 2;
    this.#codec = options.codec ?? createCodec({ crc: nativeCrc() });
    this.#endpoint = options.endpoint ?? {};
  }

  /**
   * Start a device (a new runtime, with a new nonce) and route its id to it.
   *
   * @param id The device id.
   * @param options Endpoint options for this device.
   * @returns The device.
   */
  add(
    id: string,
    options: Partial<EndpointOptions> & { trust?: MemoryTrust } = {},
  ): VirtualDevice {
    const ep = new Endpoint({
      codec: this.#codec,
      ...this.#endpoint,
      ...options,
      localId: id,
      nonce: `n${++this.#nonce}`,
    });
    const dev = new VirtualDevice(id, ep);
    dev.trust = options.trust;
    this.#devices.push(dev);
    this.#pipes.set(dev, new Map());
    this.#routes.set(id, dev);
    return dev;
  }

  /**
   * Make dials to `id` reach `dev`.
   *
   * @param id The device id.
   * @param dev The device answering for it.
   */
  route(id: string, dev: VirtualDevice): void {
    this.#routes.set(id, dev);
  }

  /**
   * Kill a device like a process exit: its channels close (peers see the
   * close after the latency), it does nothing more.
   *
   * @param dev The device.
   */
  kill(dev: VirtualDevice): void {
    dev.alive = false;
    for (const p of this.#pipes.get(dev)!.values()) this.#close(p, "process exited");
  }

  /**
   * Cut a device off the network silently (power loss): nothing it sent is
   * delivered, its peers are not told.
   *
   * @param dev The device.
   */
  pull(dev: VirtualDevice): void {
    dev.alive = false;
    for (const p of this.#pipes.get(dev)!.values()) {
      p.up = false;
      p.queue.length = 0;
      p.peer!.up = false;
      p.peer!.queue.length = 0;
    }
  }

  /**
   * Ask a device to connect to a peer's service.
   *
   * @param dev The device.
   * @param peer The peer's id.
   * @param name The service name.
   * @param options Deadline and the rest; the owner is a new object by default.
   * @returns The owner tag of the request.
   */
  connect(
    dev: VirtualDevice,
    peer: string,
    name: string,
    options: Partial<ConnectOptions> = {},
  ): unknown {
    const owner = options.owner ?? { peer, name };
    dev.ep.connect(peer, name, { deadline: this.now + 10_000, ...options, owner }, this.now);
    return owner;
  }

  /**
   * Open a channel from `dev` to `target` that pairs with `code` (as the
   * driver does for `pairing.enter`).
   *
   * @param dev The device that enters the code.
   * @param target The device that shows it.
   * @param code The code typed.
   * @returns The owner tag of the attempt.
   */
  pair(dev: VirtualDevice, target: VirtualDevice, code: string): unknown {
    const owner = { pair: target.id };
    const a = this.#nextChannel++;
    const b = this.#nextChannel++;
    const ab: Pipe = { from: dev, to: target, fromId: a, toId: b, queue: [], up: true };
    const ba: Pipe = { from: target, to: dev, fromId: b, toId: a, queue: [], up: true };
    ab.peer = ba;
    ba.peer = ab;
    this.#pipes.get(dev)!.set(a, ab);
    this.#pipes.get(target)!.set(b, ba);
    target.ep.handleChannel(b, { dialer: false }, this.now);
    dev.ep.handleChannel(a, { dialer: true, pair: { code, owner } }, this.now);
    return owner;
  }

  /**
   * Run until `until`, or until nothing is left to happen.
   *
   * @param until The end time (virtual ms). @default {now + 60000}
   */
  run(until: number = this.now + 60_000): void {
    let stuck = 0;
    for (let guard = 0; guard < 1_000_000; guard++) {
      this.#step();
      const next = this.#nextTime();
      if (next === undefined) return;
      stuck = next <= this.now ? stuck + 1 : 0;
      if (stuck > 1000) throw new Error(`VirtualNet.run: stuck at ${this.now} ms`);
      if (next > until) {
        this.now = until;
        this.#step();
        return;
      }
      this.now = Math.max(this.now, next);
    }
    throw new Error("VirtualNet.run did not settle");
  }

  /**
   * Open a further channel from `dev` to `peer` that joins their open link
   * (as the driver does for `channels` above 1).
   *
   * @param dev The device that dialled the link.
   * @param peer The peer's id.
   */
  join(dev: VirtualDevice, peer: string): void {
    this.#connectNow(dev, peer, true);
  }

  /**
   * Open a channel from nowhere to `target` and write `bytes` on it (an
   * attacker's channel); what the target answers is dropped.
   *
   * @param target The device that accepts it.
   * @param bytes The first bytes.
   * @returns The target's id of the channel.
   */
  inject(target: VirtualDevice, bytes: Uint8Array): number {
    const id = this.#nextChannel++;
    target.ep.handleChannel(id, { dialer: false }, this.now);
    target.ep.handleBytes(id, bytes, this.now);
    return id;
  }

  /** The channels a device has open, counted. */
  channels(dev: VirtualDevice): number {
    return this.#pipes.get(dev)!.size;
  }

  // ------------------------------------------------------------ internals

  #step(): void {
    let rounds = 0;
    for (let progress = true; progress;) {
      if (++rounds > 100_000) throw new Error(`VirtualNet: no end to work at ${this.now} ms`);
      progress = false;
      for (const d of [...this.#pendingDials]) {
        if (d.at > this.now) continue;
        this.#pendingDials.splice(this.#pendingDials.indexOf(d), 1);
        this.#connectNow(d.dev, d.peer, d.join);
        progress = true;
      }
      for (const dev of this.#devices) {
        if (!dev.alive || dev.frozen) continue;
        const t = dev.ep.pollTimeout();
        if (t !== undefined && t <= this.now) {
          dev.ep.handleTimeout(this.now);
          progress = true;
        }
        if (this.#pump(dev)) progress = true;
      }
      for (const p of [...this.#flows]) {
        // p is the direction p.from -> p.to: deliver on the receiving side.
        const q = p.queue;
        while (q.length > 0 && q[0].at <= this.now && p.to.alive && !p.to.frozen) {
          const item = q.shift()!;
          if (item.bytes !== undefined) {
            p.to.ep.handleBytes(p.toId, item.bytes, this.now);
          } else {
            this.#pipes.get(p.to)!.delete(p.toId);
            p.to.ep.handleChannelClosed(p.toId, item.close!, this.now);
          }
          progress = true;
        }
        if (q.length === 0) this.#flows.delete(p);
      }
    }
  }

  /** Drain one device's transmits and events; returns whether anything happened. */
  #pump(dev: VirtualDevice): boolean {
    let any = false;
    for (let busy = true; busy;) {
      busy = false;
      for (let tx = dev.ep.pollTransmit(this.now); tx; tx = dev.ep.pollTransmit(this.now)) {
        busy = any = true;
        const p = this.#pipes.get(dev)!.get(tx.channel);
        if (p === undefined || !p.up) continue;
        p.queue.push({
          at: this.now + this.#latency,
          bytes: this.tamper(dev, p.to, tx.bytes.slice()),
        });
        this.#flows.add(p);
      }
      for (let e = dev.ep.pollEvent(); e; e = dev.ep.pollEvent()) {
        busy = any = true;
        dev.events.push(e);
        this.#react(dev, e);
      }
    }
    return any;
  }

  #react(dev: VirtualDevice, e: EndpointEvent): void {
    switch (e.type) {
      case "dial":
        this.#pendingDials.push({
          at: this.now + this.#latency,
          dev,
          peer: e.peer,
          join: e.join !== undefined,
        });
        return;
      case "closeChannel": {
        const p = this.#pipes.get(dev)!.get(e.channel);
        if (p !== undefined) this.#close(p, "closed by peer");
        return;
      }
      case "open": {
        const answer = dev.acceptor(e.name, e.link.peer);
        if (answer === true) dev.ep.accept(e.link, e.stream, { incoming: e.stream, dev: dev.id });
        else dev.ep.reject(e.link, e.stream, answer);
        return;
      }
      case "data": {
        const list = dev.received.get(e.owner) ?? [];
        list.push(new Uint8Array(e.data));
        dev.received.set(e.owner, list);
        return;
      }
    }
  }

  #connectNow(dev: VirtualDevice, peer: string, join = false): void {
    if (!dev.alive) return;
    const target = this.#routes.get(peer);
    if (target === undefined || !target.alive || !target.listening) {
      if (join) {
        dev.ep.handleJoinFailed(peer, this.now);
        return;
      }
      dev.ep.handleDialFailed(
        peer,
        target === undefined ? "no address known for it" : "connection refused",
        this.now,
      );
      return;
    }
    const a = this.#nextChannel++;
    const b = this.#nextChannel++;
    const ab: Pipe = { from: dev, to: target, fromId: a, toId: b, queue: [], up: true };
    const ba: Pipe = { from: target, to: dev, fromId: b, toId: a, queue: [], up: true };
    ab.peer = ba;
    ba.peer = ab;
    this.#pipes.get(dev)!.set(a, ab);
    this.#pipes.get(target)!.set(b, ba);
    const profile = dev.profileFor(peer);
    target.ep.handleChannel(b, { dialer: false, profile, peer: profile && dev.id }, this.now);
    dev.ep.handleChannel(a, { dialer: true, peer, profile, join }, this.now);
  }

  /** Close one end: the far end sees bytes already sent, then the close. */
  #close(p: Pipe, why: string): void {
    if (!this.#pipes.get(p.from)!.delete(p.fromId)) return;
    if (p.up) {
      p.queue.push({ at: this.now + this.#latency, close: why });
      this.#flows.add(p);
    }
    p.up = false;
    // Bytes on their way to the end that closed are lost.
    p.peer!.up = false;
    p.peer!.queue.length = 0;
  }

  #nextTime(): number | undefined {
    let t = Infinity;
    for (const d of this.#pendingDials) t = Math.min(t, d.at);
    for (const dev of this.#devices) {
      if (!dev.alive || dev.frozen) continue;
      const to = dev.ep.pollTimeout();
      if (to !== undefined) t = Math.min(t, to);
    }
    for (const p of this.#flows) {
      if (p.queue.length > 0 && p.to.alive && !p.to.frozen) t = Math.min(t, p.queue[0].at);
    }
    return t === Infinity ? undefined : t;
  }
}

/** The link a device has to a peer, if open. */
export function linkTo(dev: VirtualDevice, peer: string): PeerLink | undefined {
  const pl = dev.ep.links.get(peer);
  return pl?.link.state === "open" ? pl : undefined;
}

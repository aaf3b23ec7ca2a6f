/**
 * The device driver's channels (`driver.ts` owns one {@linkcode ChannelTable}):
 * the slot of each channel (its channel, the bytes that arrived before the
 * endpoint knew it, whether it is blocked or closed, where it was dialled),
 * the events a transport's channel reports, handing received bytes to the
 * endpoint a slice at a time, registering accepted and dialled channels,
 * and dialing a peer at the address the static peer list, the peer finder
 * or the remembered addresses give.
 *
 * @module
 */
import type { DeviceConfig } from "./config.ts";
import type { Channel, ChannelEvents, PeerAddress, PeerFinder, Transport } from "./channel.ts";
import type { Endpoint, PeerLink } from "./endpoint.ts";
import type { DeviceHost } from "./host.ts";
import { trace } from "../trace.ts";

/** One channel of the device, as the driver keeps it. */
export interface ChannelSlot {
  /** The channel, once the transport gave it. */
  channel: Channel | undefined;
  /** Where it was dialled, when the peer finder gave the address. */
  found?: { peer: string; address: PeerAddress };
  /** Where it was dialled (`host:port`), when this device dialled it. */
  dialled?: string;
  /** Bytes that arrived before the endpoint knew the channel. */
  early: Uint8Array[] | undefined;
  /** Its last write was not taken whole (it waits for `onDrain`). */
  blocked: boolean;
  /** It closed, or is being closed. */
  closed: boolean;
}

/** Most static peers whose failed dials are counted (all are forgotten when more come). */
const MAX_TRIES = 256;

/** Most channels of one link (the link's `MAX_CHANNELS`). */
const MAX_LINK_CHANNELS = 8;

/** The most received bytes handed to the endpoint before the driver may write again. */
const RX_SLICE = 64 * 1024;

/** Socket codes of a channel the peer's side ended abruptly: ECONNRESET, EPIPE. */
const PEER_RESET = new Set([2301104, 2301032]);

/** What {@linkcode ChannelTable} is given by its driver. */
export interface ChannelTableInit {
  /** The machine (clock). */
  host: DeviceHost;
  /** The endpoint the channels feed. */
  ep: Endpoint;
  /** The configuration (static peers). */
  config: DeviceConfig;
  /** The transports to dial over. */
  transports: readonly Transport[];
  /** Addresses remembered from earlier links. */
  remembered: ((deviceId: string) => PeerAddress | undefined) | undefined;
  /** The peer finder, once started. */
  finder(): PeerFinder | undefined;
  /** Write what the endpoint transmits and dispatch its events (the driver's flush). */
  flush(): void;
}

/** The channels of one device driver, by channel id. */
export class ChannelTable {
  /** Links whose channel the peer's side ended (see `Port.onClosed`). */
  readonly endedByPeer: WeakSet<PeerLink> = new WeakSet();
  #init: ChannelTableInit;
  #host: DeviceHost;
  #ep: Endpoint;
  #slots = new Map<number, ChannelSlot>();
  /** Per static peer of several addresses: failed dials so far (its address to dial next). */
  #tries = new Map<string, number>();
  #nextChannel = 1;
  /** Called once no channel is left (while closing). */
  #emptied: (() => void) | undefined;

  /** @param init The driver's parts it uses. */
  constructor(init: ChannelTableInit) {
    this.#init = init;
    this.#host = init.host;
    this.#ep = init.ep;
  }

  /** How many channels there are. */
  get size(): number {
    return this.#slots.size;
  }

  /**
   * @param id A channel id.
   * @returns Its slot, if it is still known.
   */
  get(id: number): ChannelSlot | undefined {
    return this.#slots.get(id);
  }

  /**
   * @param id A channel id.
   * @returns Whether it is still known.
   */
  has(id: number): boolean {
    return this.#slots.has(id);
  }

  /** Whether a channel waits for its writes to drain. */
  get blocked(): boolean {
    for (const slot of this.#slots.values()) if (slot.blocked) return true;
    return false;
  }

  /**
   * Call `fn` once no channel is left.
   *
   * @param fn The callback.
   */
  whenEmpty(fn: () => void): void {
    this.#emptied = fn;
  }

  /** Close every channel left and forget it. */
  closeAll(): void {
    for (const [id, slot] of this.#slots) {
      slot.closed = true;
      slot.channel?.close();
      this.#slots.delete(id);
    }
  }

  /**
   * Forget a channel.
   *
   * @param id The channel id.
   */
  forget(id: number): void {
    this.#slots.delete(id);
    if (this.#slots.size === 0 && this.#emptied !== undefined) {
      const done = this.#emptied;
      this.#emptied = undefined;
      done();
    }
  }

  /** @returns A new channel's id and its empty slot. */
  slot(): [number, ChannelSlot] {
    const id = this.#nextChannel++;
    const slot: ChannelSlot = { channel: undefined, early: [], blocked: false, closed: false };
    this.#slots.set(id, slot);
    return [id, slot];
  }

  /**
   * What a channel's transport reports to.
   *
   * @param id The channel id.
   * @param slot Its slot.
   * @returns The channel's events.
   */
  events(id: number, slot: ChannelSlot): ChannelEvents {
    return {
      onData: (bytes) => {
        if (slot.closed) return;
        if (slot.early !== undefined) {
          slot.early.push(bytes.slice());
          return;
        }
        this.bytes(id, bytes);
      },
      onDrain: () => {
        slot.blocked = false;
        if (slot.early !== undefined) return;
        this.#ep.handleWritable(id, true);
        this.#init.flush();
      },
      onClose: (error) => {
        if (slot.closed && !this.#slots.has(id)) return;
        slot.closed = true;
        this.forget(id);
        const code = (error as { code?: unknown } | undefined)?.code;
        if (error === undefined || PEER_RESET.has(code as number)) {
          for (const pl of this.#ep.links.values()) {
            if (pl.channels.has(id)) this.endedByPeer.add(pl);
          }
        }
        this.#ep.handleChannelClosed(id, error?.message ?? "closed by peer", this.#host.now());
        this.#init.flush();
      },
    };
  }

  /**
   * Hand received bytes to the endpoint.
   *
   * @param id The channel id.
   * @param bytes The bytes.
   */
  bytes(id: number, bytes: Uint8Array): void {
    // A large read is handed over a slice at a time, writing what the
    // endpoint has to send (credit above all) between slices, so the peer's
    // window refills while the rest is still being decoded.
    for (let off = 0; off < bytes.length; off += RX_SLICE) {
      this.#ep.handleBytes(id, bytes.subarray(off, off + RX_SLICE), this.#host.now());
      this.#init.flush();
      if (!this.#slots.has(id)) return;
    }
  }

  /** Tell the endpoint about a new channel and replay what arrived early. */
  #register(
    id: number,
    slot: ChannelSlot,
    dialer: boolean,
    peer: string | undefined,
    join = false,
  ): void {
    const info = slot.channel!.info;
    this.#ep.handleChannel(id, {
      dialer,
      peer: info.peer ?? peer,
      mtu: info.mtu,
      profile: info.profile,
      join,
    }, this.#host.now());
    const early = slot.early ?? [];
    slot.early = undefined;
    this.#init.flush();
    for (const b of early) if (this.#slots.has(id)) this.bytes(id, b);
  }

  /**
   * A transport accepted a channel: it is registered a microtask later.
   *
   * @param ch The channel.
   * @returns Its events.
   */
  accepted(ch: Channel): ChannelEvents {
    const [id, slot] = this.slot();
    slot.channel = ch;
    const events = this.events(id, slot);
    queueMicrotask(() => {
      if (!slot.closed) this.#register(id, slot, false, undefined);
    });
    return events;
  }

  /**
   * How many channels a link this device dialled should have: `channels` of
   * the configuration, or one per address known for the peer (`auto`); at
   * most the link's 8.
   *
   * @param peer The peer's device id.
   * @returns The count.
   */
  wanted(peer: string): number {
    const { channels } = this.#init.config;
    const n = channels === "auto" ? this.#addresses(peer).length : channels;
    return Math.max(1, Math.min(MAX_LINK_CHANNELS, n));
  }

  /**
   * Dial a peer (the endpoint asked): the channel is registered, or the
   * endpoint hears that the dial failed.
   *
   * @param peer The peer's device id.
   * @param join The further channel of the link to it this is (1, 2, ...),
   *   dialled at the peer's addresses round robin; a failure is reported
   *   with `handleJoinFailed` (the endpoint tries again later).
   */
  async dial(peer: string, join?: number): Promise<void> {
    const all = join === undefined ? [] : this.#addresses(peer);
    const addr = join === undefined ? this.#address(peer) : this.#joinAddress(peer, join, all);
    if (addr === undefined) {
      if (join !== undefined) return this.#joinFailed(peer);
      trace("dialFailed", { peer, message: "no address known for it" });
      this.#init.finder()?.announce();
      this.#ep.handleDialFailed(peer, "no address known for it", this.#host.now());
      this.#init.flush();
      return;
    }
    const transport = this.#init.transports.find((t) => t.kind === (addr.transport ?? "tcp"));
    if (transport === undefined) {
      if (join !== undefined) return this.#joinFailed(peer);
      this.#ep.handleDialFailed(peer, `no ${addr.transport} transport`, this.#host.now());
      this.#init.flush();
      return;
    }
    const [id, slot] = this.slot();
    slot.dialled = `${addr.host}:${addr.port}`;
    if (addr.found) slot.found = { peer, address: { host: addr.host, port: addr.port } };
    try {
      slot.channel = await transport.dial(addr, this.events(id, slot));
    } catch (e) {
      this.forget(id);
      const where = `${addr.host}:${addr.port}`;
      if (join === undefined) this.#failedAt(peer);
      if (join !== undefined) {
        trace("joinFailed", { peer, address: where, message: (e as Error).message });
        return this.#joinFailed(peer);
      }
      trace("dialFailed", { peer, address: where, message: (e as Error).message });
      this.#ep.handleDialFailed(peer, `${where}: ${(e as Error).message}`, this.#host.now());
      this.#init.flush();
      return;
    }
    if (slot.closed) {
      if (join !== undefined) return this.#joinFailed(peer);
      this.#ep.handleDialFailed(peer, "channel closed at once", this.#host.now());
      this.#init.flush();
      return;
    }
    if (this.#ep.closed) {
      slot.closed = true;
      this.forget(id);
      slot.channel.close();
      return;
    }
    this.#register(id, slot, true, peer, join !== undefined);
  }

  /**
   * Every address known for a peer: each static entry of its id (the same id
   * may be listed with several addresses), else those of the first
   * directory of the peer finder that knows it, else the remembered one.
   */
  #addresses(peer: string): (PeerAddress & { found?: boolean })[] {
    const statics = this.#init.config.peers.filter((p) => p.deviceId === peer);
    if (statics.length > 0) return statics.map((p) => ({ host: p.host, port: p.port }));
    const finder = this.#init.finder();
    const found = finder?.addresses?.(peer) ?? [];
    if (found.length > 0) return found.map((a) => ({ ...a, found: true }));
    const one = this.#address(peer);
    return one === undefined ? [] : [one];
  }

  /**
   * Where a further channel of the link to `peer` goes: the address with the
   * fewest of the link's channels, the tie going round robin from the
   * address after the first channel's (so a lost channel is replaced on its
   * own path when that path still answers, else on the next).
   */
  #joinAddress(
    peer: string,
    join: number,
    all: (PeerAddress & { found?: boolean })[],
  ): (PeerAddress & { found?: boolean }) | undefined {
    if (all.length === 0) return undefined;
    const on = new Map<string, number>();
    for (const id of this.#ep.links.get(peer)?.channels ?? []) {
      const where = this.#slots.get(id)?.dialled;
      if (where !== undefined) on.set(where, (on.get(where) ?? 0) + 1);
    }
    const start = (this.#tries.get(peer) ?? 0) + join;
    let best = all[start % all.length];
    let fewest = Infinity;
    for (let k = 0; k < all.length; k++) {
      const a = all[(start + k) % all.length];
      const n = on.get(`${a.host}:${a.port}`) ?? 0;
      if (n < fewest) [best, fewest] = [a, n];
    }
    return best;
  }

  #joinFailed(peer: string): void {
    this.#ep.handleJoinFailed(peer, this.#host.now());
    this.#init.flush();
  }

  /**
   * A dial to a static peer listed with several addresses failed: the next
   * dial takes its next address (and the further channels the ones after).
   */
  #failedAt(peer: string): void {
    if (this.#init.config.peers.filter((p) => p.deviceId === peer).length < 2) return;
    if (this.#tries.size >= MAX_TRIES && !this.#tries.has(peer)) this.#tries.clear();
    this.#tries.set(peer, (this.#tries.get(peer) ?? 0) + 1);
  }

  #address(peer: string): (PeerAddress & { found?: boolean }) | undefined {
    const statics = this.#init.config.peers.filter((p) => p.deviceId === peer);
    if (statics.length > 0) {
      const p = statics[(this.#tries.get(peer) ?? 0) % statics.length];
      return { host: p.host, port: p.port };
    }
    const found = this.#init.finder()?.lookup(peer);
    return found !== undefined ? { ...found, found: true } : this.#init.remembered?.(peer);
  }
}

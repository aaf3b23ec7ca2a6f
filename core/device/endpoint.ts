/**
 * The device endpoint, sans-IO (quinn-proto's `Endpoint` is the model):
 * everything a device decides about its peers, with no socket and no timer.
 * It runs the handshake on every new channel, applies the merge rule (one
 * link per peer; simultaneous dial, restart, id clash), keeps the peer table
 * of links, dials peers it wants to reach (asking the driver for channels,
 * retrying until each request's deadline), opens the streams of waiting
 * connect requests once their link is up, bounds half-open channels, and
 * reports everything as events.
 *
 * Inputs: `handleChannel` (a transport produced a channel, dialled or
 * accepted), `handleDialFailed`, `handleJoinFailed`, `handleBytes`,
 * `handleWritable`, `handleChannelClosed`, `handleTimeout`, and commands
 * (`connect`, `cancel`, `accept`, `reject`, `send`, `closeStream`, `close`,
 * `wantChannels`).
 *
 * Several channels: a link this device dialled asks for the channels it
 * misses (`wantChannels`, and again after losing one) as `dial` events with
 * `join`; such a channel runs a join handshake and is added to the link; the
 * acceptor adds a proven join to the link it names instead of refusing it
 * as `duplicate` (`docs/link-protocol.md` section 2, "Joins"). Outputs:
 * `pollTransmit` (bytes for a channel), `pollEvent`, `pollTimeout`. The
 * driver (`driver.ts`) polls transmits, then events, after every input, and
 * arms one timer at `pollTimeout()`.
 *
 * Stream events (`opened`, `rejected`, `data`, `closed`, `drain`) are the
 * link's own event objects, passed through: each carries the `owner` the
 * driver attached, so dispatching costs no lookup.
 *
 * @module
 */
import { ErrorCode } from "../error_codes.ts";
import type { ChannelId, Transmit } from "../proto/link/mod.ts";
import { ChannelHandshake } from "./_handshaking.ts";
import {
  type Chan,
  type ConnectOptions,
  EndpointCore,
  type EndpointEvent,
  type EndpointOptions,
  MAX_REJOIN_MS,
  type NewChannel,
  type PeerLink,
  REJOIN_MS,
  type Waiter,
} from "./_core.ts";
import { MAX_CHANNELS } from "../proto/link/mod.ts";

export {
  DEFAULT_DEVICE_BUDGET,
  DEFAULT_HANDSHAKE_TIMEOUT,
  DEFAULT_MAX_HANDSHAKES,
  DEFAULT_MAX_LINKS,
  DEFAULT_RETRY_INTERVAL,
  MAX_JOINS,
  MAX_REJOIN_MS,
  PeerLink,
  REJOIN_MS,
  WARN_INTERVAL,
} from "./_core.ts";
export type { ConnectOptions, EndpointEvent, EndpointOptions, NewChannel } from "./_core.ts";

/** The sans-IO device endpoint. */
export class Endpoint {
  /** This device's id. */
  readonly localId: string;
  /** This runtime's nonce. */
  readonly nonce: string;
  #c: EndpointCore;

  /** @param options Identity, codec and limits. */
  constructor(options: EndpointOptions) {
    this.#c = new EndpointCore(options);
    this.localId = options.localId;
    this.nonce = options.nonce;
  }

  /** Whether links are authenticated and encrypted. */
  get secure(): boolean {
    return this.#c.security !== undefined;
  }

  // ------------------------------------------------------------ getters

  /** Open links, by peer id. */
  get links(): ReadonlyMap<string, PeerLink> {
    return this.#c.links;
  }

  /** Channels that have not finished their handshake. */
  get handshakes(): number {
    return this.#c.handshaking.size;
  }

  /** Whether nothing waits to be transmitted (a driver may let the process exit). */
  get idle(): boolean {
    if (this.#c.out.length > 0 || this.#c.dirty.size > 0) return false;
    for (const pl of this.#c.links.values()) if (!pl.link.idle) return false;
    return true;
  }

  /** Whether {@linkcode Endpoint.close} was called. */
  get closed(): boolean {
    return this.#c.closed;
  }

  // ------------------------------------------------------------ inputs

  /**
   * A transport produced a channel: dialled by this device (after a `dial`
   * event) or accepted from a peer.
   *
   * @param id A channel id unique in this endpoint.
   * @param channel Who dialled it, whom it should reach, its MTU.
   * @param now The current time (ms).
   */
  handleChannel(id: ChannelId, channel: NewChannel, now: number): void {
    let join: PeerLink | undefined;
    if (channel.join && channel.dialer) {
      join = channel.peer === undefined ? undefined : this.#c.links.get(channel.peer);
      if (
        join === undefined || join.link.state !== "open" || join.joinRefused ||
        (this.#c.security !== undefined && join.keys === undefined)
      ) {
        if (join !== undefined) join.joining = Math.max(0, join.joining - 1);
        this.#c.emit({ type: "closeChannel", channel: id, why: "no open link to join" });
        return;
      }
    }
    const ch: Chan = {
      id,
      pairOwner: channel.pair?.owner,
      dialer: channel.dialer,
      expect: channel.peer,
      mtu: channel.mtu ?? 65535,
      hs: new ChannelHandshake(channel.dialer, channel.peer, {
        codec: this.#c.codec,
        localId: this.localId,
        nonce: this.nonce,
        secure: this.#c.security,
        pair: channel.pair?.code,
        offer: () => {
          const o = this.#c.offer;
          if (o === undefined || o.taken || o.deadline <= this.#c.lastNow) return undefined;
          o.taken = true;
          ch.pairOwner = o.owner;
          return o.code;
        },
        join: join === undefined ? undefined : { nonce: join.nonce, keys: join.keys },
      }),
      join,
      deadline: now + this.#c.handshakeTimeout,
      link: undefined,
      seal: undefined,
      open: undefined,
    };
    if (this.#c.closed) {
      this.#c.emit({ type: "closeChannel", channel: id, why: "device closing" });
      return;
    }
    if (channel.profile !== undefined && channel.profile !== "linkweave") {
      this.#c.channels.set(id, ch);
      this.#c.attachProfile(ch, channel.profile, channel.peer, now);
      return;
    }
    this.#c.channels.set(id, ch);
    if (this.#c.handshaking.size >= this.#c.maxHandshakes) {
      // Oldest first: a set keeps insertion order.
      const [oldest] = this.#c.handshaking;
      this.#c.drop(oldest, "too many channels in handshake", now);
    }
    this.#c.handshaking.add(ch);
    if (ch.dialer) {
      const d = ch.expect === undefined || join !== undefined
        ? undefined
        : this.#c.dials.get(ch.expect);
      if (d !== undefined) d.state = "handshake";
      this.#c.send(id, ch.hs!.start());
    }
  }

  /**
   * A dial (after a `dial` event) failed before a channel existed.
   *
   * @param peer The peer.
   * @param message Why (no address known, refused, timed out, ...).
   * @param now The current time (ms).
   */
  handleDialFailed(peer: string, message: string, now: number): void {
    this.#c.dialFailed(peer, message, now);
  }

  /**
   * Let the link to a peer (one this device dialled) have `count` channels:
   * the missing ones are asked for as `dial` events with `join`, now and
   * whenever one is lost (after a pause). Does nothing for a link the peer
   * dialled (that peer opens the further channels).
   *
   * @param peer The peer's id.
   * @param count Channels wanted, 1..8 (`MAX_CHANNELS`).
   * @param now The current time (ms).
   */
  wantChannels(peer: string, count: number, now: number): void {
    const pl = this.#c.links.get(peer);
    if (pl === undefined || !pl.dialer) return;
    pl.want = Math.max(1, Math.min(MAX_CHANNELS, Math.floor(count)));
    this.#c.wantJoins(pl, now, 0);
  }

  /**
   * A join (after a `dial` event with `join`) failed before its handshake:
   * no address, no connection. The link tries again later, waiting longer
   * each time (up to 30 s).
   *
   * @param peer The peer.
   * @param now The current time (ms).
   */
  handleJoinFailed(peer: string, now: number): void {
    const pl = this.#c.links.get(peer);
    if (pl === undefined) return;
    pl.joining = Math.max(0, pl.joining - 1);
    pl.joinBackoff = Math.min(MAX_REJOIN_MS, Math.max(REJOIN_MS, pl.joinBackoff * 2));
    this.#c.wantJoins(pl, now, pl.joinBackoff);
  }

  /**
   * Bytes arrived on a channel.
   *
   * @param id The channel.
   * @param bytes The bytes (valid during the call).
   * @param now The current time (ms).
   */
  handleBytes(id: ChannelId, bytes: Uint8Array, now: number): void {
    this.#c.lastNow = now;
    const ch = this.#c.channels.get(id);
    if (ch === undefined) return;
    if (ch.link !== undefined) {
      this.#c.linkBytes(ch, bytes, now);
      return;
    }
    const hs = ch.hs;
    if (hs === undefined) return;
    this.#c.step(ch, hs.push(bytes, now), now);
  }

  /**
   * A channel's writability changed.
   *
   * @param id The channel.
   * @param writable Whether it takes more bytes now.
   */
  handleWritable(id: ChannelId, writable: boolean): void {
    const ch = this.#c.channels.get(id);
    if (ch?.link === undefined) return;
    ch.link.link.handleWritable(id, writable);
    if (writable) this.#c.touch(ch.link);
  }

  /**
   * A channel closed or failed.
   *
   * @param id The channel.
   * @param message Why.
   * @param now The current time (ms).
   */
  handleChannelClosed(id: ChannelId, message: string, now: number): void {
    const ch = this.#c.channels.get(id);
    if (ch === undefined) return;
    this.#c.channels.delete(id);
    this.#c.handshaking.delete(ch);
    this.#c.pairingOver(ch, `the channel closed: ${message}`);
    if (ch.link !== undefined) {
      ch.link.channels.delete(id);
      ch.link.link.handleChannelClosed(id, message);
      this.#c.touch(ch.link);
      this.#c.lostChannel(ch.link, now);
    } else if (ch.join !== undefined) {
      this.handleJoinFailed(ch.join.peer, now);
    } else if (ch.dialer && ch.expect !== undefined) {
      this.handleDialFailed(ch.expect, message, now);
    }
  }

  /**
   * Timers are due.
   *
   * @param now The current time (ms).
   */
  handleTimeout(now: number): void {
    this.#c.lastNow = now;
    for (const ch of [...this.#c.handshaking]) {
      if (ch.deadline <= now) this.#c.drop(ch, "handshake timed out", now);
    }
    const offer = this.#c.offer;
    if (offer !== undefined && !offer.taken && offer.deadline <= now) {
      this.#c.offer = undefined;
      this.#c.emit({
        type: "pairingFailed",
        owner: offer.owner,
        message: "the pairing code expired",
      });
    }
    for (const w of [...this.#c.waiters.values()]) {
      if (w.deadline > now) continue;
      this.#c.waiters.delete(w.owner);
      if (w.link !== undefined) {
        w.link.link.closeStream(w.stream);
        this.#c.touch(w.link);
      }
      const why = this.#c.dials.get(w.peer)?.lastError;
      this.#c.emit({
        type: "connectFailed",
        owner: w.owner,
        code: ErrorCode.CONNECT_TIMEOUT,
        message: `Cannot connect to ${w.peer}: timed out${why ? ` (${why})` : ""}`,
      });
    }
    this.#c.pruneDials();
    for (const d of this.#c.dials.values()) {
      if (d.state === "idle" && d.retryAt <= now) {
        d.state = "dialing";
        this.#c.emit({ type: "dial", peer: d.peer });
      }
    }
    for (const pl of this.#c.links.values()) {
      if (pl.timeout !== undefined && pl.timeout <= now) {
        pl.link.handleTimeout(now);
        this.#c.touch(pl);
      }
    }
    this.#c.dialJoins(now);
  }

  // ------------------------------------------------------------ outputs

  /**
   * The next bytes to write.
   *
   * @param now The current time (ms).
   * @returns Bytes for a channel (valid until the next call into the
   *   endpoint), or `undefined` when nothing is due.
   */
  pollTransmit(now: number): Transmit | undefined {
    if (this.#c.out.length > 0) return this.#c.out.shift();
    while (this.#c.dirty.size > 0) {
      const pl: PeerLink = this.#c.dirty.values().next().value!;
      const tx = pl.link.pollTransmit(now);
      if (tx !== undefined) {
        // Sealed before the link's events are collected: its last batch (the
        // goodbye) may close the channel.
        const seal = this.#c.channels.get(tx.channel)?.seal;
        if (seal !== undefined) tx.bytes = seal.seal(tx.bytes, now, tx.rate);
      }
      this.#c.collect(pl);
      if (tx !== undefined) return tx;
      this.#c.dirty.delete(pl);
      pl.timeout = pl.link.pollTimeout();
      if (pl.link.state === "closed") this.#c.forget(pl);
    }
    return undefined;
  }

  /**
   * The next event.
   *
   * @returns The event, or `undefined`.
   */
  pollEvent(): EndpointEvent | undefined {
    const events = this.#c.events;
    if (this.#c.eventHead >= events.length) return undefined;
    const e = events[this.#c.eventHead];
    events[this.#c.eventHead++] = undefined as unknown as EndpointEvent;
    if (this.#c.eventHead === events.length) {
      events.length = 0;
      this.#c.eventHead = 0;
    }
    return e;
  }

  /**
   * When `handleTimeout` should next be called.
   *
   * @returns A time (ms), or `undefined` when no timer is needed.
   */
  pollTimeout(): number | undefined {
    let t = Infinity;
    for (const ch of this.#c.handshaking) t = Math.min(t, ch.deadline);
    if (this.#c.offer !== undefined && !this.#c.offer.taken) {
      t = Math.min(t, this.#c.offer.deadline);
    }
    for (const w of this.#c.waiters.values()) t = Math.min(t, w.deadline);
    for (const d of this.#c.dials.values()) if (d.state === "idle") t = Math.min(t, d.retryAt);
    for (const pl of this.#c.links.values()) {
      if (pl.timeout !== undefined) t = Math.min(t, pl.timeout);
      if (pl.joinAt !== undefined) t = Math.min(t, pl.joinAt);
    }
    return t === Infinity ? undefined : t;
  }

  // ------------------------------------------------------------ commands

  /**
   * Open a stream to a peer's service: through the link to it, or once a
   * link exists (dialling it until the deadline). The outcome comes as
   * `opening` then `opened`/`rejected`, or `connectFailed`.
   *
   * @param peer The peer's id.
   * @param name The service (server) name.
   * @param options Owner tag, deadline, service kind, bundle name.
   * @param now The current time (ms).
   */
  connect(peer: string, name: string, options: ConnectOptions, now: number): void {
    const w: Waiter = {
      owner: options.owner,
      peer,
      name,
      kind: options.kind ?? 0,
      bundle: options.bundle ?? "",
      maxMessage: options.maxMessage,
      deadline: options.deadline,
      link: undefined,
      stream: 0,
    };
    if (this.#c.closed || peer === this.localId) {
      this.#c.emit({
        type: "connectFailed",
        owner: w.owner,
        code: ErrorCode.INTERNAL_ERROR,
        message: this.#c.closed
          ? `Cannot connect to ${peer}: the device is closed`
          : `Cannot connect to ${peer}: that is this device's own id`,
      });
      return;
    }
    this.#c.waiters.set(w.owner, w);
    const pl = this.#c.links.get(peer);
    if (pl !== undefined && pl.link.state === "open") {
      this.#c.open(pl, w);
      return;
    }
    if (this.#c.links.size >= this.#c.maxLinks) {
      this.#c.waiters.delete(w.owner);
      this.#c.emit({
        type: "connectFailed",
        owner: w.owner,
        code: ErrorCode.INTERNAL_ERROR,
        message: `Cannot connect to ${peer}: this device has ${this.#c.maxLinks} links, its limit`,
      });
      return;
    }
    if (!this.#c.dials.has(peer)) {
      this.#c.dials.set(peer, { peer, state: "dialing", retryAt: now, lastError: undefined });
      this.#c.emit({ type: "dial", peer });
    }
  }

  /**
   * Drop the link to a peer at once (it was revoked): its connections end
   * with `LINK_CLOSED`.
   *
   * @param peer The peer's id.
   * @param message Why.
   */
  dropPeer(peer: string, message: string): void {
    const pl = this.#c.links.get(peer);
    if (pl === undefined) return;
    pl.link.abort(message);
    this.#c.touch(pl);
  }

  /**
   * Open a pairing offer: the first device that connects with the code
   * within the deadline pairs with this one (one attempt; a new offer
   * replaces an open one). The outcome comes as `paired` or `pairingFailed`.
   *
   * @param owner Tag of the outcome.
   * @param code The 6-digit code shown to the person.
   * @param deadline When the offer expires (ms).
   */
  offerPairing(owner: unknown, code: string, deadline: number): void {
    const old = this.#c.offer;
    if (old !== undefined && !old.taken) {
      this.#c.emit({
        type: "pairingFailed",
        owner: old.owner,
        message: "replaced by a newer offer",
      });
    }
    this.#c.offer = { owner, code, deadline, taken: false };
  }

  /**
   * Give up a connect request (closing its stream if it was opening), or
   * close an open stream gracefully.
   *
   * @param owner The request's owner tag.
   */
  cancel(owner: unknown): void {
    const w = this.#c.waiters.get(owner);
    if (w === undefined) return;
    this.#c.waiters.delete(owner);
    if (w.link !== undefined) this.closeStream(w.link, w.stream);
    this.#c.pruneDials();
  }

  /**
   * Accept an incoming stream (after an `incoming` event).
   *
   * @param pl Its link.
   * @param stream The stream id.
   * @param owner Tag returned in every later event of the stream.
   * @param maxMessage Largest message the peer may send on it. @default {the link's}
   */
  accept(pl: PeerLink, stream: number, owner: unknown, maxMessage?: number): void {
    pl.link.accept(stream, owner, maxMessage);
    this.#c.touch(pl);
  }

  /**
   * Refuse an incoming stream.
   *
   * @param pl Its link.
   * @param stream The stream id.
   * @param code Why, for the peer's API (e.g. 32390201).
   */
  reject(pl: PeerLink, stream: number, code: number): void {
    pl.link.reject(stream, code);
    this.#c.touch(pl);
  }

  /**
   * Queue a message on a stream (see `Link.send`).
   *
   * @param pl The link.
   * @param stream The stream id.
   * @param data The message.
   * @returns `false` when the send queue is full or the stream is closed.
   */
  send(pl: PeerLink, stream: number, data: Uint8Array): boolean {
    if (!pl.link.send(stream, data)) return false;
    this.#c.dirty.add(pl);
    return true;
  }

  /**
   * Close a stream gracefully (queued data first).
   *
   * @param pl The link.
   * @param stream The stream id.
   */
  closeStream(pl: PeerLink, stream: number): void {
    pl.link.closeStream(stream);
    this.#c.touch(pl);
  }

  /**
   * Close the device: every link closes gracefully (queued data is sent,
   * then a goodbye), connect requests fail, new channels are refused.
   *
   * @param now The current time (ms).
   */
  close(now: number): void {
    if (this.#c.closed) return;
    this.#c.closed = true;
    for (const w of [...this.#c.waiters.values()]) {
      this.#c.waiters.delete(w.owner);
      this.#c.emit({
        type: "connectFailed",
        owner: w.owner,
        code: ErrorCode.INTERNAL_ERROR,
        message: `Cannot connect to ${w.peer}: the device is closing`,
      });
    }
    this.#c.dials.clear();
    for (const ch of [...this.#c.handshaking]) this.#c.drop(ch, "device closing", now);
    for (const pl of this.#c.links.values()) {
      pl.link.close();
      this.#c.touch(pl);
    }
  }
}

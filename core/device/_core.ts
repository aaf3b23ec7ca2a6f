/**
 * The state of the device endpoint and what it does with channels and links
 * (handshakes, the merge rule, attaching channels to links, budgets): the
 * private half of `endpoint.ts`, whose class is the public face.
 *
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
 * accepted), `handleDialFailed`, `handleBytes`, `handleWritable`,
 * `handleChannelClosed`, `handleTimeout`, and commands (`connect`, `cancel`,
 * `accept`, `reject`, `send`, `closeStream`, `close`). Outputs:
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
import type { Codec } from "../proto/frame.ts";
import { decideIncoming } from "../proto/handshake/decide.ts";
import type { RefuseReason } from "../proto/handshake/hello.ts";
import type { ChannelKeys, SecureOptions } from "../proto/handshake/secure.ts";
import { equalBytes } from "../proto/handshake/crypto.ts";
import type { RecordOpener, RecordSealer } from "../proto/record.ts";
import type { ProfileFactory, ProfileLink } from "./profile.ts";
import type {
  ChannelHandshake,
  HandshakeOutcome,
  HandshakePeer,
  HandshakeResult,
} from "./_handshaking.ts";
import {
  type ChannelId,
  DEFAULT_KEEPALIVE_TIMEOUT,
  Link,
  type LinkEvent,
  type LinkOptions,
  MAX_CHANNELS,
  type Transmit,
} from "../proto/link/mod.ts";

/** Default time a new channel has to finish its handshake (ms). */
export const DEFAULT_HANDSHAKE_TIMEOUT = 5000;
/** Default most channels that have not finished their handshake; the oldest is dropped first. */
export const DEFAULT_MAX_HANDSHAKES = 64;
/** Default pause between two dial attempts to one peer (ms). */
export const DEFAULT_RETRY_INTERVAL = 300;
/** Warnings with the same key are reported at most once in this many ms. */
export const WARN_INTERVAL = 10_000;
/** Most warning lines of one kind per `WARN_INTERVAL`. */
export const WARN_LINES = 3;
/** Most warning keys remembered (the oldest are forgotten first). */
const WARN_KEYS = 256;
/** Pause before a link dials a channel to replace one it lost (ms); doubled after each failure. */
export const REJOIN_MS = 500;
/** Longest pause between two joins of one link (ms). */
export const MAX_REJOIN_MS = 30_000;

/**
 * Most joins one link accepts in its life: the joins it accepted are
 * remembered (16 bytes each) so a replayed J1 is refused, and this bounds
 * them (4 KiB a link).
 */
export const MAX_JOINS = 256;
/** Default most links (peers) at once. */
export const DEFAULT_MAX_LINKS = 64;
/** Default most bytes all peers together may make this device hold. */
export const DEFAULT_DEVICE_BUDGET: number = 256 * 1024 * 1024;

/** Options of an {@linkcode Endpoint}. */
export interface EndpointOptions {
  /** This device's id. */
  localId: string;
  /** This runtime's nonce (new at every start). */
  nonce: string;
  /** The framing codec. */
  codec: Codec;
  /** Options of every link (ids, codec and clock are filled in). */
  link?: Omit<LinkOptions, "localId" | "peerId" | "codec" | "now">;
  /** Time a new channel has to finish its handshake (ms). @default {5000} */
  handshakeTimeout?: number;
  /** Most channels in handshake at once. @default {64} */
  maxHandshakes?: number;
  /** Pause between dial attempts (ms). @default {300} */
  retryInterval?: number;
  /** Most links at once; more peers are refused (`busy`). @default {64} */
  maxLinks?: number;
  /**
   * Most bytes all links together may hold for their peers; beyond it the
   * link holding most is closed. @default {268435456}
   */
  budget?: number;
  /**
   * The authenticated handshake and encrypted records: identity, account,
   * trust and crypto. Absent: the plain, unauthenticated `hello`
   * (`security: "none"`).
   */
  security?: Omit<SecureOptions, "nonce" | "expect">;
  /** Links of other profiles, by name, for channels a transport marks with one. */
  profiles?: Readonly<Record<string, ProfileFactory>>;
}

/** What a transport says about a new channel. */
export interface NewChannel {
  /** Whether this device dialled it. */
  dialer: boolean;
  /** The peer a dialled channel is meant to reach. */
  peer?: string;
  /** Largest frame it carries. @default {65535} */
  mtu?: number;
  /** (Dialer) pair over this channel with the code the person typed; `owner` tags the outcome. */
  pair?: { code: string; owner: unknown };
  /**
   * (Dialer) the channel joins the open link to `peer` (a further channel of
   * it) instead of making a link; it is closed when there is no such link.
   */
  join?: boolean;
  /**
   * The profile the channel speaks when not linkweave's own (a key of
   * `EndpointOptions.profiles`): no handshake, and `peer` names the peer.
   */
  profile?: string;
}

/** A link and its peer, as the endpoint hands it out. */
export class PeerLink {
  /** The link state machine (the linkweave profile's `Link`, or another profile's). */
  readonly link: ProfileLink;
  /** The peer's id. */
  readonly peer: string;
  /** The peer runtime's nonce. */
  readonly nonce: string;
  /** Channels of the link. */
  readonly channels: Set<ChannelId> = new Set();
  /** @internal When the link wants `handleTimeout` (cached). */
  timeout: number | undefined;
  /** @internal The secure handshake's keys of its first channel (for joins). */
  keys: ChannelKeys | undefined;
  /** Whether this device dialled the link's first channel (then it opens the further ones). */
  dialer = false;
  /** @internal Joins accepted (secure: their J1 tokens, so a replay is refused). */
  joins: Set<string> = new Set();
  /** @internal The peer refused a join of this link (it joins no more). */
  joinRefused = false;
  /** @internal Channels this device wants the link to have (it dialled it; `wantChannels`). */
  want = 1;
  /** @internal Joins dialled and not yet joined or failed. */
  joining = 0;
  /** @internal When to dial the joins missing (ms), if any are. */
  joinAt: number | undefined;
  /** @internal Joins dialled so far (the index of the next, for the address to dial). */
  joinCount = 0;
  /** @internal The pause before the next join after one failed (ms). */
  joinBackoff = 0;

  /**
   * @param link The link.
   * @param nonce The peer runtime's nonce.
   */
  constructor(link: ProfileLink, nonce: string) {
    this.link = link;
    this.peer = link.peerId;
    this.nonce = nonce;
  }
}

/** Options of {@linkcode Endpoint.connect}. */
export interface ConnectOptions {
  /** Tag of the request and of its stream: returned in every event about them. */
  owner: unknown;
  /** Give up at this time (ms): `connectFailed` with 32390200. */
  deadline: number;
  /** Service kind (see `ServiceKind`). @default {0} */
  kind?: number;
  /** The app's bundle name. @default {""} */
  bundle?: string;
  /** Largest message the peer may send on the stream. @default {the link's} */
  maxMessage?: number;
}

/** What an endpoint reports. */
export type EndpointEvent =
  | Exclude<
    LinkEvent,
    { type: "open" } | { type: "linkClosed" } | { type: "protocolError" } | {
      type: "channelClosed";
    }
  >
  /** A peer opens a stream: answer with `accept` or `reject`. */
  | { type: "open"; link: PeerLink; stream: number; name: string; kind: number; bundle: string }
  /**
   * Dial `peer`: make a channel, then `handleChannel`, or `handleDialFailed`.
   * With `join` (1, 2, ...), a further channel of the open link to it (its
   * `NewChannel.join`), or `handleJoinFailed`.
   */
  | { type: "dial"; peer: string; join?: number }
  /** Close this channel (after writing what was transmitted to it); `why` for traces. */
  | { type: "closeChannel"; channel: ChannelId; why: string }
  /**
   * This dialled channel reached another device than `peer` (its handshake
   * proved another key for the id): the address it was dialled at should
   * not be offered for `peer` again. Comes before the channel's `closeChannel`.
   */
  | { type: "refuted"; channel: ChannelId; peer: string }
  /** A connect request got its stream: send on it once `opened`. */
  | { type: "opening"; owner: unknown; link: PeerLink; stream: number }
  /**
   * A connect request failed before its stream opened; `warned` when the
   * endpoint already reported the cause as a `warn` (a refused handshake).
   */
  | { type: "connectFailed"; owner: unknown; code: number; message: string; warned?: boolean }
  /** A link came up. */
  | { type: "linkUp"; link: PeerLink }
  /** A link went down. */
  | { type: "linkDown"; link: PeerLink; reason: number; message: string }
  /** Something the user should hear about once (rate-limited per key). */
  | { type: "warn"; message: string }
  /** Pairing succeeded: the device with this key is trusted (it was pinned as paired). */
  | { type: "paired"; owner: unknown; id: string; publicKey: Uint8Array }
  /** Pairing failed (wrong code, expired offer, no offer, ...). */
  | { type: "pairingFailed"; owner: unknown; message: string };

/** @internal */
export interface Chan {
  id: ChannelId;
  /** The pairing this channel carries (instead of a link), whoever asked for it. */
  pairOwner: unknown;
  dialer: boolean;
  expect: string | undefined;
  mtu: number;
  hs: ChannelHandshake | undefined;
  deadline: number;
  link: PeerLink | undefined;
  /** (Dialer) the link this channel joins. */
  join?: PeerLink;
  /** The record layer, once a secure handshake finished. */
  seal: RecordSealer | undefined;
  open: RecordOpener | undefined;
}

/** @internal */
export interface Dial {
  peer: string;
  /** `idle` (retry at `retryAt`), `dialing` (driver connecting), `handshake` (channel open). */
  state: "idle" | "dialing" | "handshake";
  retryAt: number;
  lastError: string | undefined;
}

/** @internal */
export interface Waiter {
  owner: unknown;
  peer: string;
  name: string;
  kind: number;
  bundle: string;
  maxMessage: number | undefined;
  deadline: number;
  link: PeerLink | undefined;
  stream: number;
}

/** The endpoint's state, and its handshake and link bookkeeping. */
export class EndpointCore {
  /** This device's id. */
  readonly localId: string;
  /** This runtime's nonce. */
  readonly nonce: string;
  codec: Codec;
  linkOptions: Omit<LinkOptions, "localId" | "peerId" | "codec" | "now">;
  keepAlive: number;
  handshakeTimeout: number;
  maxHandshakes: number;
  retry: number;
  maxLinks: number;
  budget: number;
  security: EndpointOptions["security"];
  profiles: Readonly<Record<string, ProfileFactory>>;
  channels: Map<ChannelId, Chan> = new Map();
  handshaking: Set<Chan> = new Set();
  links: Map<string, PeerLink> = new Map();
  dials: Map<string, Dial> = new Map();
  waiters: Map<unknown, Waiter> = new Map();
  dirty: Set<PeerLink> = new Set();
  out: Transmit[] = [];
  events: EndpointEvent[] = [];
  eventHead = 0;
  warned: Map<string, number> = new Map();
  closed = false;
  offer: { owner: unknown; code: string; deadline: number; taken: boolean } | undefined;

  /** @param options Identity, codec and limits. */
  constructor(options: EndpointOptions) {
    this.localId = options.localId;
    this.nonce = options.nonce;
    this.codec = options.codec;
    this.linkOptions = options.link ?? {};
    this.keepAlive = this.linkOptions.keepAliveTimeout ?? DEFAULT_KEEPALIVE_TIMEOUT;
    this.handshakeTimeout = options.handshakeTimeout ?? DEFAULT_HANDSHAKE_TIMEOUT;
    this.maxHandshakes = options.maxHandshakes ?? DEFAULT_MAX_HANDSHAKES;
    this.retry = options.retryInterval ?? DEFAULT_RETRY_INTERVAL;
    this.maxLinks = options.maxLinks ?? DEFAULT_MAX_LINKS;
    this.budget = options.budget ?? DEFAULT_DEVICE_BUDGET;
    this.security = options.security;
    this.profiles = options.profiles ?? {};
  }

  // ------------------------------------------------------------ handshake

  send(channel: ChannelId, frames: Uint8Array[]): void {
    for (const bytes of frames) this.out.push({ channel, bytes });
  }

  /** Act on one step of a channel's handshake. */
  step(ch: Chan, r: HandshakeResult, now: number): void {
    this.send(ch.id, r.send);
    switch (r.kind) {
      case "more":
        return;
      case "failed":
        this.failed(ch, r, now);
        return;
      case "decide":
        this.decide(ch, r.peer, now);
        return;
      case "join":
        this.joinRequest(ch, r, now);
        return;
      case "done":
        this.handshaking.delete(ch);
        if (ch.join === undefined) this.attach(ch, r.outcome, now);
        else if (r.outcome.peer.nonce === ch.join.nonce) this.joined(ch, ch.join, r.outcome, now);
        else this.drop(ch, "the peer of the join runs another runtime than the link's", now);
        return;
      case "paired": {
        this.security?.trust.pair(r.id, r.publicKey);
        if (!ch.dialer) this.offer = undefined;
        const owner = ch.pairOwner;
        ch.pairOwner = undefined;
        this.emit({ type: "paired", owner, id: r.id, publicKey: r.publicKey });
        this.drop(ch, "pairing done", now);
        return;
      }
    }
  }

  /** A handshake failed: say why (once), let connects that cannot succeed fail now. */
  failed(ch: Chan, r: Extract<HandshakeResult, { kind: "failed" }>, now: number): void {
    if (ch.pairOwner !== undefined) {
      // A pairing attempt: one per offer; the person makes a new code.
      if (!ch.dialer) this.offer = undefined;
      this.warn(`pairing:${r.message}`, `linkweave: ${r.message}`, now);
      this.drop(ch, r.message, now);
      return;
    }
    if (ch.join !== undefined) {
      // A further channel the peer would not take: the link keeps the ones it has.
      ch.join.joinRefused = true;
      ch.join.joining = Math.max(0, ch.join.joining - 1);
      this.warn(
        `join:${ch.join.peer}`,
        `linkweave: ${ch.join.peer} did not take a further channel of the link: ${r.message}`,
        now,
      );
      this.drop(ch, r.message, now);
      return;
    }
    const who = ch.expect ?? "a peer";
    const message = r.remote ? `${who} refused the channel: ${r.reason}` : r.message;
    const hint = r.reason === "account"
      ? " (devices must share an account: LINKWEAVE_ACCOUNT, or be paired)"
      : "";
    if (["account", "identity", "clash", "version", "frame"].includes(r.reason)) {
      this.warn(
        `handshake:${who}:${r.reason}`,
        `linkweave: ${message}${hint}`,
        now,
        `handshake:${r.reason}`,
      );
    }
    // With proven identities these cannot change by trying again; without
    // (security: none) a "clash" may be a restart whose old link is not dead yet.
    const final = this.security !== undefined &&
      (r.reason === "account" || r.reason === "identity" || r.reason === "clash");
    if (
      this.security !== undefined && ch.dialer && ch.expect !== undefined && !r.remote &&
      (r.reason === "identity" || r.reason === "clash")
    ) {
      this.emit({ type: "refuted", channel: ch.id, peer: ch.expect });
    }
    this.drop(ch, message, now);
    if (ch.dialer && ch.expect !== undefined && final) {
      // Trying again cannot help: fail the waiting connects now, without a
      // hint of which servers the peer has.
      this.dials.delete(ch.expect);
      for (const w of [...this.waiters.values()]) {
        if (w.peer !== ch.expect || w.link !== undefined) continue;
        this.waiters.delete(w.owner);
        this.emit({
          type: "connectFailed",
          owner: w.owner,
          code: ErrorCode.INTERNAL_ERROR,
          message: `Cannot connect to ${ch.expect}: ${message}${hint}`,
          warned: true,
        });
      }
    }
  }

  /** Acceptor side: a dialer is known (proven, when secure): the merge rule decides. */
  decide(ch: Chan, peer: HandshakePeer, now: number): void {
    const hs = ch.hs!;
    const refuse = (reason: RefuseReason, why: string) => {
      this.send(ch.id, hs.refuse(reason));
      this.drop(ch, why, now);
    };
    const existing = this.links.get(peer.id);
    const open = existing !== undefined && existing.link.state === "open";
    if (!open && this.links.size >= this.maxLinks && peer.id !== this.localId) {
      this.warn(
        "links",
        `linkweave: refused a link from ${peer.id}: this device has ${this.maxLinks} links, ` +
          "its limit (configure({ limits: { links } }))",
        now,
      );
      refuse("busy", "refused: busy");
      return;
    }
    const dial = this.dials.get(peer.id);
    const verdict = decideIncoming({ op: "hello", id: peer.id, nonce: peer.nonce }, {
      localId: this.localId,
      localNonce: this.nonce,
      linkNonce: open ? existing.nonce : undefined,
      linkSilentMs: open ? now - existing.link.lastReceived : undefined,
      dialing: dial !== undefined && dial.state !== "idle",
      deadMs: this.keepAlive,
      proven: peer.proven,
    });
    if (verdict !== "accept" && verdict !== "replace") {
      if (verdict === "clash") {
        this.warn(
          `clash:${peer.id}`,
          peer.id === this.localId
            ? `linkweave: device id clash: another runtime also claims this device's id ${peer.id}`
            : `linkweave: device id clash: a second runtime claims ${peer.id} while its link is alive; refused`,
          now,
        );
      }
      refuse(verdict, `refused: ${verdict}`);
      return;
    }
    if (verdict === "replace") {
      existing!.link.abort(`${peer.id} restarted`);
      this.touch(existing!);
      this.collect(existing!);
      this.forget(existing!);
    }
    this.handshaking.delete(ch);
    const { send, outcome } = hs.accept(now);
    this.send(ch.id, send);
    this.attach(ch, outcome, now);
  }

  /**
   * Acceptor: a channel asks to join an open link. Refused (`link`) when it
   * names no open link, does not prove the link's join secret (secure), or
   * repeats a join already taken (a replayed J1); `busy` when the link has
   * its most channels or took `MAX_JOINS` joins.
   */
  joinRequest(ch: Chan, r: Extract<HandshakeResult, { kind: "join" }>, now: number): void {
    const hs = ch.hs!;
    const refuse = (reason: RefuseReason, why: string) => {
      this.warn(`join:${reason}`, `linkweave: refused a channel's join: ${why}`, now);
      this.send(ch.id, hs.refuse(reason));
      this.drop(ch, `refused a join: ${why}`, now);
    };
    let pl: PeerLink | undefined;
    if (r.linkId !== undefined) {
      for (const l of this.links.values()) {
        if (l.keys !== undefined && equalBytes(l.keys.linkId, r.linkId)) pl = l;
      }
    } else if (r.peer !== undefined) {
      const l = this.links.get(r.peer.id);
      if (l !== undefined && l.nonce === r.peer.nonce && r.peer.join === this.nonce) pl = l;
    }
    if (pl === undefined || pl.link.state !== "open" || !(pl.link instanceof Link)) {
      refuse("link", "it names no open link of this device");
      return;
    }
    if (pl.channels.size >= MAX_CHANNELS || pl.joins.size >= MAX_JOINS) {
      refuse("busy", `the link to ${pl.peer} has its most channels or joins`);
      return;
    }
    if (r.token !== undefined && pl.joins.has(r.token)) {
      refuse("link", `a join of the link to ${pl.peer} was replayed`);
      return;
    }
    const got = hs.acceptJoin(pl.keys, now);
    if (got === undefined) {
      refuse("link", "it does not prove the link's secret");
      return;
    }
    pl.joins.add(r.token ?? String(pl.joins.size));
    this.handshaking.delete(ch);
    this.send(ch.id, got.send);
    this.joined(ch, pl, got.outcome, now);
  }

  /** A further channel joined a link (both sides): the link spreads its frames over it too. */
  joined(ch: Chan, pl: PeerLink, outcome: Omit<HandshakeOutcome, "peer">, now: number): void {
    ch.hs = undefined;
    if (ch.join !== undefined) {
      pl.joining = Math.max(0, pl.joining - 1);
      pl.joinBackoff = 0;
    }
    ch.join = undefined;
    if (this.links.get(pl.peer) !== pl || pl.link.state !== "open") {
      this.drop(ch, "the link it joins is gone", now);
      return;
    }
    if (outcome.records !== undefined) {
      ch.seal = outcome.records.seal;
      ch.open = outcome.records.open;
    }
    ch.link = pl;
    pl.channels.add(ch.id);
    pl.link.addChannel(ch.id, { now, mtu: ch.mtu });
    if (outcome.rest.length > 0) this.linkBytes(ch, outcome.rest, now);
    this.touch(pl);
  }

  attach(ch: Chan, outcome: HandshakeOutcome, now: number): void {
    const peer = outcome.peer;
    ch.hs = undefined;
    if (outcome.records !== undefined) {
      ch.seal = outcome.records.seal;
      ch.open = outcome.records.open;
    }
    if (peer.secure?.fresh) this.security!.trust.pin(peer.id, peer.secure.publicKey);
    let pl = this.links.get(peer.id);
    let fresh = false;
    if (pl === undefined || pl.link.state !== "open" || pl.nonce !== peer.nonce) {
      if (pl !== undefined) this.forget(pl);
      if (this.links.size >= this.maxLinks) {
        this.drop(ch, `this device has ${this.maxLinks} links, its limit`, now);
        return;
      }
      const link = new Link({
        ...this.linkOptions,
        localId: this.localId,
        peerId: peer.id,
        codec: this.codec,
        now,
      });
      pl = new PeerLink(link, peer.nonce);
      pl.keys = outcome.records?.keys;
      pl.dialer = ch.dialer;
      link.tag = pl;
      this.links.set(peer.id, pl);
      fresh = true;
    }
    ch.link = pl;
    pl.channels.add(ch.id);
    pl.link.addChannel(ch.id, { now, mtu: ch.mtu });
    if (fresh) this.emit({ type: "linkUp", link: pl });
    if (outcome.rest.length > 0) this.linkBytes(ch, outcome.rest, now);
    this.touch(pl);
    this.dials.delete(peer.id);
    for (const w of this.waiters.values()) {
      if (w.peer === peer.id && w.link === undefined) this.open(pl, w);
    }
  }

  /** A channel of another profile: no handshake; one link of that profile per peer. */
  attachProfile(ch: Chan, profile: string, peer: string | undefined, now: number): void {
    ch.hs = undefined;
    const make = this.profiles[profile];
    if (make === undefined || peer === undefined) {
      this.drop(ch, `no profile "${profile}" here, or no peer named`, now);
      return;
    }
    let pl = this.links.get(peer);
    if (pl === undefined || pl.link.state !== "open") {
      if (pl !== undefined) this.forget(pl);
      if (this.links.size >= this.maxLinks) {
        this.drop(ch, `this device has ${this.maxLinks} links, its limit`, now);
        return;
      }
      const link = make(peer, now);
      pl = new PeerLink(link, `${profile}:${now}`);
      link.tag = pl;
      this.links.set(peer, pl);
      this.emit({ type: "linkUp", link: pl });
    }
    ch.link = pl;
    pl.channels.add(ch.id);
    pl.link.addChannel(ch.id, { now, mtu: ch.mtu });
    this.touch(pl);
    this.dials.delete(peer);
    for (const w of this.waiters.values()) {
      if (w.peer === peer && w.link === undefined) this.open(pl, w);
    }
  }

  /** Bytes of a channel that carries a link: through its records (secure), then to the link. */
  linkBytes(ch: Chan, bytes: Uint8Array, now: number): void {
    const pl = ch.link!;
    const id = ch.id;
    if (ch.open !== undefined) {
      const err = ch.open.push(bytes, (plain) => pl.link.handleBytes(id, plain, now), now);
      if (err !== undefined) {
        this.warn(`records:${pl.peer}`, `linkweave: closed a channel to ${pl.peer}: ${err}`, now);
        this.closeChannel(ch, err, now);
        return;
      }
    } else {
      pl.link.handleBytes(id, bytes, now);
    }
    if (pl.link.held > 0) this.checkBudget(pl, now);
    this.touch(pl);
  }

  /** A dial failed: retry later. */
  dialFailed(peer: string, message: string, now: number): void {
    const d = this.dials.get(peer);
    if (d === undefined) return;
    d.state = "idle";
    d.retryAt = now + this.retry;
    d.lastError = message;
  }

  /** Close a channel that will not (or no longer) carry a link. */
  drop(ch: Chan, why: string, now: number): void {
    this.handshaking.delete(ch);
    ch.hs = undefined;
    if (!this.channels.delete(ch.id)) return;
    this.pairingOver(ch, why);
    this.emit({ type: "closeChannel", channel: ch.id, why });
    if (ch.dialer && ch.expect !== undefined && ch.link === undefined) {
      this.dialFailed(ch.expect, why, now);
    }
  }

  /** A pairing channel ended without pairing: its owner learns why. */
  pairingOver(ch: Chan, why: string): void {
    if (ch.pairOwner === undefined) return;
    const owner = ch.pairOwner;
    ch.pairOwner = undefined;
    this.emit({ type: "pairingFailed", owner, message: why });
  }

  /** Close a channel of a link (its records failed): the link learns it lost the channel. */
  closeChannel(ch: Chan, why: string, now: number): void {
    const pl = ch.link;
    this.channels.delete(ch.id);
    this.emit({ type: "closeChannel", channel: ch.id, why });
    if (pl !== undefined) {
      pl.channels.delete(ch.id);
      pl.link.handleChannelClosed(ch.id, why);
      this.touch(pl);
      this.lostChannel(pl, now);
    }
  }

  // ------------------------------------------------------------ links

  open(pl: PeerLink, w: Waiter): void {
    try {
      w.stream = pl.link.open(w.name, {
        owner: w.owner,
        kind: w.kind,
        bundle: w.bundle,
        maxMessage: w.maxMessage,
      });
    } catch (e) {
      this.waiters.delete(w.owner);
      this.emit({
        type: "connectFailed",
        owner: w.owner,
        code: ErrorCode.INTERNAL_ERROR,
        message: (e as Error).message,
      });
      return;
    }
    w.link = pl;
    this.emit({ type: "opening", owner: w.owner, link: pl, stream: w.stream });
    this.touch(pl);
  }

  /** All links together hold more than the device budget: close the one holding most. */
  checkBudget(pl: PeerLink, now: number): void {
    let total = 0;
    let worst = pl;
    for (const other of this.links.values()) {
      total += other.link.held;
      if (other.link.held > worst.link.held) worst = other;
    }
    if (total <= this.budget) return;
    this.warn(
      `budget:${worst.peer}`,
      `linkweave: closed the link to ${worst.peer}: its peer made it hold ${worst.link.held} ` +
        `bytes while all links held ${total}, over the device budget of ${this.budget}`,
      now,
    );
    worst.link.abort(`Link to ${worst.peer} closed: over the device budget`);
    this.touch(worst);
  }

  touch(pl: PeerLink): void {
    this.dirty.add(pl);
    this.collect(pl);
  }

  /** Move a link's events into the endpoint's queue, acting on those that concern it. */
  collect(pl: PeerLink): void {
    for (let e = pl.link.pollEvent(); e !== undefined; e = pl.link.pollEvent()) {
      switch (e.type) {
        case "open":
          // The link's event, whose `link` is this PeerLink (its tag).
          this.emit(e as Extract<EndpointEvent, { type: "open" }>);
          break;
        case "linkClosed":
          this.forget(pl);
          this.emit({ type: "linkDown", link: pl, reason: e.reason, message: e.message });
          break;
        case "opened":
        case "rejected":
        case "closed":
          this.waiters.delete(e.owner);
          this.emit(e);
          break;
        case "protocolError":
          this.warn(`protocol:${pl.peer}`, `linkweave: ${e.message}`, this.lastNow);
          break;
        case "channelClosed":
          // The link gave up one of its channels and lives on with the others.
          if (pl.channels.delete(e.channel) && this.channels.delete(e.channel)) {
            this.emit({ type: "closeChannel", channel: e.channel, why: e.message });
            this.lostChannel(pl, this.lastNow);
          }
          break;
        default:
          this.emit(e);
      }
    }
  }

  /**
   * A link this device dialled has fewer channels than it wants (one was
   * lost, or the link is new): dial the missing ones after `delay`, unless
   * the peer refused a join. The link lives on meanwhile (make-before-break).
   */
  wantJoins(pl: PeerLink, now: number, delay: number): void {
    if (!pl.dialer || pl.joinRefused || pl.link.state !== "open") return;
    if (pl.channels.size + pl.joining >= pl.want) return;
    const at = now + delay;
    if (pl.joinAt === undefined || at < pl.joinAt) pl.joinAt = at;
  }

  /** Due joins: ask the driver for the channels a link misses. */
  dialJoins(now: number): void {
    for (const pl of this.links.values()) {
      if (pl.joinAt === undefined || pl.joinAt > now) continue;
      pl.joinAt = undefined;
      if (!pl.dialer || pl.joinRefused || pl.link.state !== "open") continue;
      for (let n = pl.channels.size + pl.joining; n < pl.want; n++) {
        pl.joining++;
        this.emit({ type: "dial", peer: pl.peer, join: ++pl.joinCount });
      }
    }
  }

  /** A link lost a channel: replace it later if the link wants more. */
  lostChannel(pl: PeerLink, now: number): void {
    this.wantJoins(pl, now, Math.max(REJOIN_MS, pl.joinBackoff));
  }

  /** A link is closed: forget it and close its channels. */
  forget(pl: PeerLink): void {
    if (this.links.get(pl.peer) === pl) this.links.delete(pl.peer);
    for (const id of pl.channels) {
      const ch = this.channels.get(id);
      if (ch === undefined) continue;
      this.channels.delete(id);
      this.emit({ type: "closeChannel", channel: id, why: "link closed" });
    }
    pl.channels.clear();
    pl.timeout = undefined;
  }

  pruneDials(): void {
    for (const [peer, d] of this.dials) {
      let wanted = false;
      for (const w of this.waiters.values()) if (w.peer === peer) wanted = true;
      if (!wanted && d.state === "idle") this.dials.delete(peer);
    }
  }

  emit(e: EndpointEvent): void {
    this.events.push(e);
  }

  /** The time of the latest input (for warnings raised while collecting events). */
  lastNow = 0;

  /** Per kind of warning (the key up to its first `:`): lines in the current interval. */
  warnKinds: Map<string, { since: number; lines: number; suppressed: number }> = new Map();

  /**
   * Warn at most once per key every `WARN_INTERVAL`, and at most
   * `WARN_LINES` lines per kind (by default the key up to its first `:`:
   * `protocol`, `clash`, ...; handshake refusals by reason) in that time,
   * so many peers (or invented ids) cannot flood the log either; the next
   * line of a kind says how many were left out.
   */
  warn(key: string, message: string, now: number, kind: string = key.split(":", 1)[0]): void {
    const last = this.warned.get(key);
    if (last !== undefined && now - last < WARN_INTERVAL) return;
    let k = this.warnKinds.get(kind);
    if (k === undefined || now - k.since >= WARN_INTERVAL) {
      if (k !== undefined && k.suppressed > 0) {
        message += ` (${k.suppressed} more like it in the ${WARN_INTERVAL / 1000} s before ` +
          "were not printed)";
      }
      k = { since: now, lines: 0, suppressed: 0 };
      this.warnKinds.set(kind, k);
    }
    if (k.lines >= WARN_LINES) {
      k.suppressed++;
      return;
    }
    k.lines++;
    // Bounded by forgetting the oldest keys (a Map keeps insertion order).
    this.warned.delete(key);
    for (const old of this.warned.keys()) {
      if (this.warned.size < WARN_KEYS) break;
      this.warned.delete(old);
    }
    this.warned.set(key, now);
    this.emit({ type: "warn", message });
  }
}

/**
 * Discovery's protocol, sans-IO: feed it datagrams and timeouts, poll what to
 * send, when to wake up and what happened. The driver (`driver.ts`) is the
 * only place with sockets and timers.
 *
 * - A device announces at once, then every `interval` (default 1 s) for its
 *   first {@linkcode FAST_ANNOUNCEMENTS} announcements, then every
 *   `steadyInterval` (default 5 x `interval`, at most 10 s). Its TTL is
 *   {@linkcode TTL_FACTOR} x `steadyInterval` (15 s by default).
 * - A device that learns a new peer, sees a contender or a clash, or hears
 *   `solicit`, answers with its own announcement after a short random delay
 *   ({@linkcode ANSWER_DELAY} + up to {@linkcode ANSWER_JITTER} ms; answers
 *   due together are sent once, never sooner than {@linkcode ANSWER_GAP} ms
 *   after the previous announcement). So a newcomer learns everyone within
 *   tens of milliseconds.
 * - Closing sends a goodbye (TTL 0).
 * - Datagrams from a source outside the subnets discovery runs on are
 *   refused before they are read, and so are further addresses outside them.
 * - What the table does with an announcement is `table.ts`'s rule.
 *
 * @module
 */
import { normalizeDeviceId } from "../device/config.ts";
import { ParameterError } from "../errors.ts";
import { onLink, type Subnet } from "./subnet.ts";
import { type DiscoveredPeer, DiscoveryTable, MAX_TTL, type UpdateResult } from "./table.ts";
import {
  type AnnouncementInit,
  Capability,
  decodeAnnouncement,
  type DecodeFailure,
  encodeAnnouncement,
  type IdSeal,
  type PeerAddress,
} from "./wire.ts";

/** The default fast announcement interval, in ms. */
export const DEFAULT_INTERVAL = 1000;
/** How many announcements are sent `interval` apart before the steady rate. */
export const FAST_ANNOUNCEMENTS = 4;
/** The default steady interval, as a multiple of `interval`. */
export const STEADY_FACTOR = 5;
/** A device's TTL, as a multiple of its steady interval. */
export const TTL_FACTOR = 3;
/** The smallest delay of an answer, in ms. */
export const ANSWER_DELAY = 10;
/** The random part of an answer's delay, in ms (0 up to this). */
export const ANSWER_JITTER = 40;
/** The smallest gap between an announcement and an answer after it, in ms. */
export const ANSWER_GAP = 100;
/** How many (kind, id, nonce) reports are remembered, so each is reported once. */
export const REPORTED_LIMIT = 64;

/**
 * Why a datagram changed nothing: a {@linkcode DecodeFailure}, or
 * - `off-link`: its source is outside every subnet discovery runs on;
 * - `host-limit`: its source already vouches for the most ids it may;
 * - `full`: the table holds no ids at all.
 */
export type RefuseReason = DecodeFailure | "off-link" | "host-limit" | "full";

/** What a {@linkcode DiscoveryMachine} reports. */
export type DiscoveryEvent =
  | {
    /** A peer's established endpoint: a new id, or a contender promoted. */
    type: "learned";
    /** The peer as now known. */
    peer: DiscoveredPeer;
    /** `true` when a contender replaced the endpoint known before. */
    promoted: boolean;
  }
  | {
    /** A peer was forgotten. */
    type: "lost";
    /** Its id. */
    deviceId: string;
    /** `expired` (silent for its TTL), `goodbye`, or `evicted` (table full). */
    reason: "expired" | "goodbye" | "evicted";
  }
  | {
    /** Another endpoint claims a known id; kept, not dialled (reported once per nonce or address). */
    type: "contender";
    /** The id. */
    deviceId: string;
    /** The contender's address. */
    host: string;
    /** Its TCP port. */
    port: number;
    /** Its nonce. */
    nonce: string;
    /** `true` when it has the nonce of a known endpoint (the same runtime elsewhere). */
    sameRuntime: boolean;
    /** The endpoint dials keep going to. */
    established: DiscoveredPeer;
  }
  | {
    /** Another runtime announces this device's id (reported once per nonce). */
    type: "clash";
    /** The id. */
    deviceId: string;
    /** The other runtime's address. */
    host: string;
    /** Its TCP port. */
    port: number;
    /** Its nonce. */
    nonce: string;
  }
  | {
    /** A datagram was not taken in. */
    type: "refused";
    /** Its source address. */
    host: string;
    /** Why. */
    reason: RefuseReason;
    /** The id it announced, when it was read that far. */
    deviceId?: string;
    /** Its major version (`version`). */
    major?: number;
  };

/** Options of {@linkcode DiscoveryMachine}. */
export interface DiscoveryMachineOptions {
  /** This device's id. */
  deviceId: string;
  /** This runtime's nonce (see `randomNonce`). */
  nonce: string;
  /** This device's TCP port. */
  port: number;
  /** The fast announcement interval, in ms. @default {1000} */
  interval?: number;
  /** The steady announcement interval, in ms (at most 10000). @default {5 x interval, at most 10000} */
  steadyInterval?: number;
  /** How many peer ids are kept. @default {256} */
  maxPeers?: number;
  /** How many ids one source address may announce. @default {32} */
  maxIdsPerHost?: number;
  /** The longest a peer is remembered after it was last heard, in ms. @default {30000} */
  maxTtl?: number;
  /**
   * The subnets discovery runs on: datagrams from other sources are refused.
   * `undefined` accepts every source (tests only).
   */
  networks?: readonly Subnet[];
  /** This device's capability bits. @default {Capability.LINK_TCP} */
  capabilities?: number;
  /**
   * Further addresses of this device announced in every announcement
   * (option `ADDRESS_V4`, at most `MAX_ADDRESSES`): a device with several
   * interfaces names them all, so a peer can open a channel per path.
   * @default {[]}
   */
  addresses?: readonly PeerAddress[];
  /** A random number in [0, 1), for the answer delay. @default {Math.random} */
  random?: () => number;
  /**
   * Seal this device's id in its announcements and open peers' (devices
   * with an account): the id is then readable by the account only.
   */
  seal?: IdSeal;
}

function positiveMs(value: unknown, what: string): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1) {
    throw new ParameterError(
      `Invalid ${what} ${JSON.stringify(value)}: expected a positive integer of milliseconds`,
    );
  }
  return value;
}

/**
 * Discovery's protocol as a state machine.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const a = new DiscoveryMachine({ deviceId: "00:00:00:00:00:0A", nonce: "000000000000000a", port: 1000 }, 0);
 * const b = new DiscoveryMachine({ deviceId: "00:00:00:00:00:0B", nonce: "000000000000000b", port: 2000 }, 0);
 * a.handleTimeout(0); // the first announcement is due at once
 * b.handleDatagram(a.pollTransmit()!, "10.0.0.1", 1);
 * const ev = b.pollEvent();
 * assert.ok(ev?.type === "learned" && ev.peer.host === "10.0.0.1" && ev.peer.port === 1000);
 * ```
 */
export class DiscoveryMachine {
  #table: DiscoveryTable;
  #init: AnnouncementInit;
  #ttl: number;
  #networks: readonly Subnet[] | undefined;
  #interval: number;
  #steady: number;
  #random: () => number;
  #sent = 0;
  #nextAnnounce: number;
  #answerAt: number | undefined;
  #lastSent = -Infinity;
  #transmit: Uint8Array | undefined;
  #solicit = false;
  #events: DiscoveryEvent[] = [];
  #reported = new Set<string>();
  #closed = false;

  /**
   * @param options This device's id, nonce and port, the timing, the limits
   *   and the subnets it runs on.
   * @param now The current time, in ms: the first announcement is due then.
   * @throws {ParameterError} When an option is invalid, naming it.
   */
  constructor(options: DiscoveryMachineOptions, now: number) {
    this.#interval = positiveMs(options.interval ?? DEFAULT_INTERVAL, "interval");
    const maxSteady = MAX_TTL / TTL_FACTOR;
    this.#steady = positiveMs(
      options.steadyInterval ?? Math.min(this.#interval * STEADY_FACTOR, maxSteady),
      "steady interval",
    );
    if (this.#steady > maxSteady) {
      throw new ParameterError(
        `Invalid steady interval ${this.#steady}: expected at most ${maxSteady} ms (peers forget a device ${MAX_TTL} ms after its last announcement)`,
      );
    }
    this.#ttl = this.#steady * TTL_FACTOR;
    this.#init = {
      deviceId: normalizeDeviceId(options.deviceId),
      nonce: options.nonce,
      port: options.port,
      ttl: this.#ttl,
      capabilities: options.capabilities ?? Capability.LINK_TCP,
      addresses: options.addresses ?? [],
      seal: options.seal,
    };
    this.#seal = options.seal;
    encodeAnnouncement(this.#init); // validates nonce, port and capabilities
    this.#table = new DiscoveryTable({
      deviceId: this.#init.deviceId,
      nonce: options.nonce,
      maxPeers: options.maxPeers,
      maxIdsPerHost: options.maxIdsPerHost,
      maxTtl: options.maxTtl,
    });
    this.#networks = options.networks;
    this.#random = options.random ?? Math.random;
    this.#nextAnnounce = now;
  }

  #seal: IdSeal | undefined;

  /** The table of known peers (read it; the machine writes it). */
  get table(): DiscoveryTable {
    return this.#table;
  }

  /** The TTL this device announces, in ms (3 x the steady interval). */
  get ttl(): number {
    return this.#ttl;
  }

  #send(now: number, solicit: boolean, ttl: number = this.#ttl): void {
    // An announcement still queued that asked for answers keeps asking.
    this.#solicit = solicit || (this.#transmit !== undefined && this.#solicit);
    this.#transmit = encodeAnnouncement({ ...this.#init, solicit: this.#solicit, ttl });
    this.#lastSent = now;
    this.#answerAt = undefined; // this announcement answers everything heard before it
  }

  #answer(now: number): void {
    if (this.#answerAt !== undefined || this.#closed) return;
    const delay = ANSWER_DELAY + Math.floor(this.#random() * ANSWER_JITTER);
    this.#answerAt = Math.max(now + delay, this.#lastSent + ANSWER_GAP);
  }

  #once(key: string): boolean {
    if (this.#reported.has(key)) return false;
    if (this.#reported.size >= REPORTED_LIMIT) {
      this.#reported.delete(this.#reported.values().next().value!);
    }
    this.#reported.add(key);
    return true;
  }

  /**
   * Take in one received datagram.
   *
   * @param bytes The datagram (anything).
   * @param host Its source address.
   * @param now The current time, in ms.
   * @returns What it did to the table, or `undefined` when it was refused
   *   (a `refused` event says why) or the machine is closed.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * const m = new DiscoveryMachine({ deviceId: "00:00:00:00:00:01", nonce: "0000000000000001", port: 1 }, 0);
   * assert.equal(m.handleDatagram(new Uint8Array(3), "10.0.0.2", 0), undefined);
   * assert.deepEqual(m.pollEvent(), { type: "refused", host: "10.0.0.2", reason: "foreign" });
   * ```
   */
  handleDatagram(bytes: Uint8Array, host: string, now: number): UpdateResult | undefined {
    if (this.#closed) return undefined;
    const networks = this.#networks;
    if (networks !== undefined && !onLink(host, networks)) {
      this.#events.push({ type: "refused", host, reason: "off-link" });
      return undefined;
    }
    const r = decodeAnnouncement(bytes, this.#seal);
    if (!r.ok) {
      this.#events.push(
        r.major === undefined
          ? { type: "refused", host, reason: r.reason }
          : { type: "refused", host, reason: r.reason, major: r.major },
      );
      return undefined;
    }
    const a = r.announcement;
    if (networks !== undefined) a.addresses = a.addresses.filter((x) => onLink(x.host, networks));
    const u = this.#table.update(a, host, now);
    const { deviceId, nonce, port } = a;
    switch (u.result) {
      case "new":
        if (u.evicted !== undefined) {
          this.#events.push({ type: "lost", deviceId: u.evicted, reason: "evicted" });
        }
        this.#events.push({ type: "learned", peer: u.peer!, promoted: false });
        this.#answer(now);
        break;
      case "promoted":
        this.#events.push({ type: "learned", peer: u.peer!, promoted: true });
        this.#answer(now);
        break;
      case "contender":
      case "address": {
        const same = u.result === "address";
        if (this.#once(same ? `a/${deviceId}/${host}/${port}` : `c/${deviceId}/${nonce}`)) {
          this.#events.push({
            type: "contender",
            deviceId,
            host,
            port,
            nonce,
            sameRuntime: same,
            established: u.peer!,
          });
          this.#answer(now);
        }
        break;
      }
      case "clash":
        if (this.#once(`x/${nonce}`)) {
          this.#events.push({ type: "clash", deviceId, host, port, nonce });
          this.#answer(now);
        }
        break;
      case "gone":
        this.#events.push({ type: "lost", deviceId, reason: "goodbye" });
        break;
      case "host-limit":
      case "full":
        this.#events.push({ type: "refused", host, reason: u.result, deviceId });
        break;
    }
    if (a.solicit && u.result !== "self") this.#answer(now);
    return u.result;
  }

  /**
   * Advance time: announce when due, answer when due, expire silent peers.
   *
   * @param now The current time, in ms.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * const m = new DiscoveryMachine({ deviceId: "00:00:00:00:00:01", nonce: "0000000000000001", port: 1 }, 0);
   * m.handleTimeout(0);
   * assert.equal(m.pollTransmit()?.length, 34);
   * assert.equal(m.pollTimeout(), 1000);
   * ```
   */
  handleTimeout(now: number): void {
    if (this.#closed) return;
    if (now >= this.#nextAnnounce) {
      this.#send(now, false);
      this.#sent++;
      this.#nextAnnounce = now + (this.#sent < FAST_ANNOUNCEMENTS ? this.#interval : this.#steady);
    } else if (this.#answerAt !== undefined && now >= this.#answerAt) {
      this.#send(now, false);
    }
    for (const x of this.#table.expire(now)) {
      this.#events.push(
        x.result === "lost"
          ? { type: "lost", deviceId: x.deviceId, reason: "expired" }
          : { type: "learned", peer: x.peer!, promoted: true },
      );
    }
  }

  /**
   * Announce now, asking every device to answer at once (`solicit`): how a
   * device finds its peers fast.
   *
   * @param now The current time, in ms.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { decodeAnnouncement } from "./wire.ts";
   * const m = new DiscoveryMachine({ deviceId: "00:00:00:00:00:01", nonce: "0000000000000001", port: 1 }, 0);
   * m.announce(5);
   * const r = decodeAnnouncement(m.pollTransmit()!);
   * assert.ok(r.ok && r.announcement.solicit);
   * ```
   */
  announce(now: number): void {
    if (!this.#closed) this.#send(now, true);
  }

  /**
   * Stop: queue a goodbye (TTL 0); afterwards the machine sends and reports
   * nothing more.
   *
   * @param now The current time, in ms.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { decodeAnnouncement } from "./wire.ts";
   * const m = new DiscoveryMachine({ deviceId: "00:00:00:00:00:01", nonce: "0000000000000001", port: 1 }, 0);
   * m.close(0);
   * const r = decodeAnnouncement(m.pollTransmit()!);
   * assert.ok(r.ok && r.announcement.ttl === 0);
   * assert.equal(m.pollTimeout(), undefined);
   * ```
   */
  close(now: number): void {
    if (this.#closed) return;
    this.#transmit = undefined;
    this.#solicit = false;
    this.#send(now, false, 0);
    this.#closed = true;
    this.#events.length = 0;
  }

  /**
   * The next datagram to send to the group, once.
   *
   * @returns The bytes, or `undefined` when there is nothing to send.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * const m = new DiscoveryMachine({ deviceId: "00:00:00:00:00:01", nonce: "0000000000000001", port: 1 }, 0);
   * assert.equal(m.pollTransmit(), undefined);
   * ```
   */
  pollTransmit(): Uint8Array | undefined {
    const t = this.#transmit;
    this.#transmit = undefined;
    this.#solicit = false;
    return t;
  }

  /**
   * When {@linkcode DiscoveryMachine.handleTimeout} should be called next.
   *
   * @returns The time, in ms, or `undefined` once closed.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * const m = new DiscoveryMachine({ deviceId: "00:00:00:00:00:01", nonce: "0000000000000001", port: 1 }, 7);
   * assert.equal(m.pollTimeout(), 7);
   * ```
   */
  pollTimeout(): number | undefined {
    if (this.#closed) return undefined;
    let at = this.#nextAnnounce;
    if (this.#answerAt !== undefined && this.#answerAt < at) at = this.#answerAt;
    const exp = this.#table.nextExpiry();
    return exp !== undefined && exp < at ? exp : at;
  }

  /**
   * The next event, once.
   *
   * @returns The event, or `undefined` when there is none.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * const m = new DiscoveryMachine({ deviceId: "00:00:00:00:00:01", nonce: "0000000000000001", port: 1 }, 0);
   * assert.equal(m.pollEvent(), undefined);
   * ```
   */
  pollEvent(): DiscoveryEvent | undefined {
    return this.#events.shift();
  }
}

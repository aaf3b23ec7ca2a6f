/**
 * The peers discovery knows: pure, time is an argument, memory bounded.
 *
 * The rules, in one place (`docs/discovery.md` explains why):
 *
 * 1. **Endpoints.** What one announcement vouches for is an *endpoint*: a
 *    (nonce, source address, TCP port) triple. A device id has at most
 *    {@linkcode MAX_ENDPOINTS} endpoints; the first one learned is
 *    *established*: `lookup()` returns it, so every dial goes there. Any other
 *    is a *contender*, kept but never dialled. There is one contender per
 *    source address and port: a new nonce from there replaces it. When a
 *    new contender needs room, the contender heard least recently among those
 *    heard only once goes, else the one heard least recently.
 * 2. **No silent replacement.** A new nonce, address or port for a live id
 *    never replaces the established endpoint. A contender is promoted only
 *    when the established endpoint expires, says goodbye, or falls silent for
 *    half of its own TTL (1.5 of its announcement intervals: it missed one)
 *    while the contender announced at least twice meanwhile. Of several
 *    contenders the one heard last is promoted. So a forger that sends while
 *    the real device keeps announcing never takes over, and a restarted
 *    device is learned once its old runtime's entry falls silent, expires or
 *    says goodbye.
 * 3. **Lifetimes are capped.** An endpoint lives for its announced TTL, at
 *    most `maxTtl` ({@linkcode MAX_TTL}, 30 s) after it was last heard.
 * 4. **Bounded.** At most `maxPeers` ids. A new id when full evicts the id
 *    heard least recently among those heard only once; when every id was
 *    heard more than once, the id heard least recently. One source address
 *    vouches for at most `maxIdsPerHost` ids; more are refused.
 * 5. **Goodbyes** (TTL 0) remove only the endpoint that sent them (same
 *    nonce, address and port).
 * 6. **Refuted endpoints.** An endpoint a dial proved to be another device
 *    (its handshake showed another key for the id) is dropped, the next one
 *    of the id is dialled, and announcements of the id from that address and
 *    port are ignored for {@linkcode REFUTED_MS}; at most
 *    {@linkcode MAX_REFUTED} are remembered, the oldest forgotten first.
 *
 * @module
 */
import { isDeviceId, normalizeDeviceId } from "../device/config.ts";
import { ParameterError } from "../errors.ts";
import type { Announcement, PeerAddress } from "./wire.ts";
import { WIRE_MAJOR } from "./wire.ts";

/** How many peer ids a table holds by default. */
export const DEFAULT_MAX_PEERS = 256;
/** How many ids one source address may announce, by default. */
export const DEFAULT_MAX_IDS_PER_HOST = 32;
/** How many endpoints (established + contenders) one id keeps. */
export const MAX_ENDPOINTS = 4;
/** The longest an endpoint is remembered after it was last heard, in ms. */
export const MAX_TTL = 30_000;
/** The share of its TTL an established endpoint may stay silent before a contender may replace it. */
export const SILENCE_SHARE = 0.5;
/** How long a refuted endpoint's announcements of the id are ignored, in ms (rule 6). */
export const REFUTED_MS: number = 5 * 60_000;
/** How many refuted endpoints a table remembers (rule 6). */
export const MAX_REFUTED: number = 64;

/** A peer as discovery knows it: its established endpoint. */
export interface DiscoveredPeer {
  /** Its device id, upper-case. */
  deviceId: string;
  /** Its IP address: the source address of its announcements. */
  host: string;
  /** Its TCP port. */
  port: number;
  /** The nonce of its runtime. */
  nonce: string;
  /** The highest major wire version both speak. */
  version: number;
  /** Its capability bits. */
  capabilities: number;
  /** Further addresses it announced (on-link ones only). */
  addresses: readonly PeerAddress[];
  /** When it was first heard at this endpoint, in ms. */
  firstSeen: number;
  /** When it was last heard at this endpoint, in ms. */
  lastSeen: number;
}

/**
 * What one announcement did to a {@linkcode DiscoveryTable}:
 * - `self`: this runtime's own announcement.
 * - `clash`: this device's id with another nonce: another runtime uses it.
 * - `new`: a new id, now established (`evicted` names an id it pushed out).
 * - `refresh`: a known endpoint heard again.
 * - `contender`: a new endpoint for a live id with a nonce it does not have:
 *   another runtime (a restart, or a forger) claims the id; kept, not dialled.
 * - `address`: a new endpoint with the nonce of a live one (the same runtime
 *   from another address or port); kept, not dialled.
 * - `promoted`: the id's established endpoint changed (rule 2).
 * - `goodbye`: a contender said goodbye.
 * - `gone`: the last endpoint of an id said goodbye; the id is forgotten.
 * - `ignored`: a goodbye from an unknown endpoint, or from this id.
 * - `refuted`: an announcement of an id from an endpoint a dial proved to
 *   be another device, within {@linkcode REFUTED_MS} (rule 6).
 * - `host-limit`: a new id refused: its source already vouches for `maxIdsPerHost` ids.
 * - `full`: a new id refused: the table holds no id at all (`maxPeers` 0).
 */
export type UpdateResult =
  | "self"
  | "clash"
  | "new"
  | "refresh"
  | "contender"
  | "address"
  | "promoted"
  | "goodbye"
  | "gone"
  | "ignored"
  | "refuted"
  | "host-limit"
  | "full";

/** What {@linkcode DiscoveryTable.update} returns. */
export interface TableUpdate {
  /** What happened. */
  result: UpdateResult;
  /** The id's established endpoint after the update (for `new`, `promoted`, `refresh`, `contender`, `address`). */
  peer?: DiscoveredPeer;
  /** An id evicted to make room (`new` only). */
  evicted?: string;
}

/** What {@linkcode DiscoveryTable.expire} did to one id. */
export interface Expiry {
  /** The id. */
  deviceId: string;
  /** `lost`: no endpoint is left; `promoted`: a contender replaced the established one. */
  result: "lost" | "promoted";
  /** The new established endpoint (`promoted`). */
  peer?: DiscoveredPeer;
}

/** Options of {@linkcode DiscoveryTable}. */
export interface DiscoveryTableOptions {
  /** This device's id. */
  deviceId: string;
  /** This runtime's nonce. */
  nonce: string;
  /** How many peer ids are kept. @default {256} */
  maxPeers?: number;
  /** How many ids one source address may announce. @default {32} */
  maxIdsPerHost?: number;
  /** The longest an endpoint is remembered, in ms (at most 30000). @default {30000} */
  maxTtl?: number;
}

interface Endpoint {
  nonce: string;
  host: string;
  port: number;
  version: number;
  capabilities: number;
  addresses: readonly PeerAddress[];
  ttl: number;
  firstSeen: number;
  lastSeen: number;
  /** When it was heard before `lastSeen` (-Infinity when heard once). */
  prevSeen: number;
  heard: number;
  deadline: number;
}

interface Entry {
  deviceId: string;
  /** `[0]` is established. */
  endpoints: Endpoint[];
}

function snapshot(deviceId: string, e: Endpoint): DiscoveredPeer {
  return Object.freeze({
    deviceId,
    host: e.host,
    port: e.port,
    nonce: e.nonce,
    version: e.version,
    capabilities: e.capabilities,
    addresses: e.addresses,
    firstSeen: e.firstSeen,
    lastSeen: e.lastSeen,
  });
}

/**
 * Which one goes when room is needed (rules 1 and 4): the one heard least
 * recently among those heard only once, else the one heard least recently.
 * So a flood of single datagrams displaces only its own kind.
 */
function pickVictim(items: readonly { heard: number; lastSeen: number }[]): number {
  let once = -1;
  let any = -1;
  for (const [i, x] of items.entries()) {
    if (x.heard <= 1 && (once < 0 || x.lastSeen < items[once].lastSeen)) once = i;
    if (any < 0 || x.lastSeen < items[any].lastSeen) any = i;
  }
  return once >= 0 ? once : any;
}

function limit(value: unknown, fallback: number, max: number, what: string): number {
  const n = value ?? fallback;
  if (typeof n !== "number" || !Number.isInteger(n) || n < 0 || n > max) {
    throw new ParameterError(
      `Invalid ${what} ${JSON.stringify(value)}: expected an integer in 0..${max}`,
    );
  }
  return n;
}

/**
 * The peers discovery knows, with the rules of the module documentation.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const table = new DiscoveryTable({ deviceId: "00:00:00:00:00:01", nonce: "0000000000000001" });
 * const a = {
 *   major: 2, minor: 0, maxMajor: 2, capabilities: 1, solicit: false, addresses: [],
 *   deviceId: "00:00:00:00:00:02", nonce: "0000000000000002", port: 4000, ttl: 3000,
 * };
 * assert.equal(table.update(a, "10.0.0.2", 0).result, "new");
 * assert.equal(table.update(a, "10.0.0.2", 1000).result, "refresh");
 * assert.equal(table.lookup("00:00:00:00:00:02")?.host, "10.0.0.2");
 * assert.deepEqual(table.expire(4000), [{ deviceId: "00:00:00:00:00:02", result: "lost" }]);
 * ```
 */
export class DiscoveryTable {
  #deviceId: string;
  #nonce: string;
  #maxPeers: number;
  #maxIdsPerHost: number;
  #maxTtl: number;
  #entries = new Map<string, Entry>();
  /** `id|host|port` of refuted endpoints, with when they may be learned again. */
  #refuted = new Map<string, number>();

  /**
   * @param options This device's id and nonce, and the limits.
   */
  constructor(options: DiscoveryTableOptions) {
    this.#deviceId = normalizeDeviceId(options.deviceId);
    this.#nonce = options.nonce;
    this.#maxPeers = limit(options.maxPeers, DEFAULT_MAX_PEERS, 65535, "peer limit");
    this.#maxIdsPerHost = limit(
      options.maxIdsPerHost,
      DEFAULT_MAX_IDS_PER_HOST,
      65535,
      "limit of ids per host",
    );
    this.#maxTtl = limit(options.maxTtl, MAX_TTL, MAX_TTL, "maximum TTL");
  }

  /** How many peer ids are known. */
  get size(): number {
    return this.#entries.size;
  }

  /** The longest an endpoint is remembered, in ms. */
  get maxTtl(): number {
    return this.#maxTtl;
  }

  /**
   * Take in one announcement.
   *
   * @param a The decoded announcement (its `addresses` already filtered by the caller).
   * @param host The source address of its datagram.
   * @param now The current time, in ms.
   * @returns What it did.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * const me = { deviceId: "00:00:00:00:00:01", nonce: "0000000000000001" };
   * const table = new DiscoveryTable(me);
   * const a = { major: 2, minor: 0, maxMajor: 2, capabilities: 1, solicit: false, addresses: [], port: 1, ttl: 1000 };
   * assert.equal(table.update({ ...a, ...me }, "10.0.0.1", 0).result, "self");
   * assert.equal(table.update({ ...a, ...me, nonce: "0000000000000009" }, "10.0.0.9", 0).result, "clash");
   * ```
   */
  update(a: Announcement, host: string, now: number): TableUpdate {
    const { deviceId, nonce, port } = a;
    if (deviceId === this.#deviceId) {
      if (nonce === this.#nonce) return { result: "self" };
      return { result: a.ttl === 0 ? "ignored" : "clash" };
    }
    const refutedUntil = this.#refuted.get(`${deviceId}|${host}|${port}`);
    if (refutedUntil !== undefined) {
      if (refutedUntil > now) return { result: a.ttl === 0 ? "ignored" : "refuted" };
      this.#refuted.delete(`${deviceId}|${host}|${port}`);
    }
    const entry = this.#entries.get(deviceId);
    const at =
      entry?.endpoints.findIndex((e) => e.nonce === nonce && e.host === host && e.port === port) ??
        -1;
    if (a.ttl === 0) return this.#goodbye(entry, at);
    const ttl = Math.min(a.ttl, this.#maxTtl);
    const version = Math.min(a.maxMajor, WIRE_MAJOR);
    /** An endpoint first heard now. */
    const fresh = (): Endpoint => ({
      nonce,
      host,
      port,
      version,
      capabilities: a.capabilities,
      addresses: Object.freeze([...a.addresses]),
      ttl,
      firstSeen: now,
      lastSeen: now,
      prevSeen: -Infinity,
      heard: 1,
      deadline: now + ttl,
    });
    if (entry === undefined) {
      if (this.#hostIds(host) >= this.#maxIdsPerHost) return { result: "host-limit" };
      let evicted: string | undefined;
      if (this.#entries.size >= this.#maxPeers) {
        evicted = this.#evict();
        if (evicted === undefined) return { result: "full" };
      }
      const e = fresh();
      this.#entries.set(deviceId, { deviceId, endpoints: [e] });
      return { result: "new", peer: snapshot(deviceId, e), evicted };
    }
    const eps = entry.endpoints;
    if (at >= 0) {
      const e = eps[at];
      e.prevSeen = e.lastSeen;
      e.lastSeen = now;
      e.heard++;
      e.ttl = ttl;
      e.deadline = now + ttl;
      e.version = version;
      e.capabilities = a.capabilities;
      e.addresses = Object.freeze([...a.addresses]);
      if (at > 0 && this.#mayPromote(eps[0], e, now)) {
        eps.splice(at, 1);
        eps.unshift(e);
        return { result: "promoted", peer: snapshot(deviceId, e) };
      }
      return { result: "refresh", peer: snapshot(deviceId, eps[0]) };
    }
    const sameRuntime = eps.some((e) => e.nonce === nonce);
    // One contender per source address and port: a new runtime there replaces the old one.
    const there = eps.findIndex((e, i) => i > 0 && e.host === host && e.port === port);
    if (there > 0) eps.splice(there, 1);
    else if (eps.length >= MAX_ENDPOINTS) eps.splice(1 + pickVictim(eps.slice(1)), 1);
    eps.push(fresh());
    return { result: sameRuntime ? "address" : "contender", peer: snapshot(deviceId, eps[0]) };
  }

  /** Rule 2: the established endpoint missed an announcement, the contender made two since. */
  #mayPromote(established: Endpoint, contender: Endpoint, now: number): boolean {
    return contender.prevSeen > established.lastSeen &&
      now - established.lastSeen > established.ttl * SILENCE_SHARE;
  }

  #goodbye(entry: Entry | undefined, at: number): TableUpdate {
    if (entry === undefined || at < 0) return { result: "ignored" };
    const eps = entry.endpoints;
    eps.splice(at, 1);
    if (eps.length === 0) {
      this.#entries.delete(entry.deviceId);
      return { result: "gone" };
    }
    if (at > 0) return { result: "goodbye", peer: snapshot(entry.deviceId, eps[0]) };
    this.#promoteLatest(eps);
    return { result: "promoted", peer: snapshot(entry.deviceId, eps[0]) };
  }

  #promoteLatest(eps: Endpoint[]): void {
    let best = 0;
    for (let i = 1; i < eps.length; i++) if (eps[i].lastSeen > eps[best].lastSeen) best = i;
    eps.unshift(...eps.splice(best, 1));
  }

  #hostIds(host: string): number {
    let n = 0;
    for (const entry of this.#entries.values()) {
      if (entry.endpoints.some((e) => e.host === host)) n++;
    }
    return n;
  }

  /** Rule 4: the id heard least recently among those heard once, else among all. */
  #evict(): string | undefined {
    const entries = [...this.#entries.values()];
    const victim = entries[
      pickVictim(entries.map((entry) => ({
        heard: Math.max(...entry.endpoints.map((e) => e.heard)),
        lastSeen: Math.max(...entry.endpoints.map((e) => e.lastSeen)),
      })))
    ];
    if (victim !== undefined) this.#entries.delete(victim.deviceId);
    return victim?.deviceId;
  }

  /**
   * Remove the endpoints whose TTL ran out; promote a contender where the
   * established endpoint went (rule 2).
   *
   * @param now The current time, in ms.
   * @returns What changed, per id.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * const table = new DiscoveryTable({ deviceId: "00:00:00:00:00:01", nonce: "0000000000000001" });
   * assert.deepEqual(table.expire(0), []);
   * ```
   */
  expire(now: number): Expiry[] {
    const out: Expiry[] = [];
    for (const [deviceId, entry] of this.#entries) {
      const eps = entry.endpoints;
      const established = eps[0];
      const kept = eps.filter((e) => e.deadline > now);
      if (kept.length === eps.length) continue;
      if (kept.length === 0) {
        this.#entries.delete(deviceId);
        out.push({ deviceId, result: "lost" });
        continue;
      }
      entry.endpoints = kept;
      if (kept[0] !== established) {
        this.#promoteLatest(kept);
        out.push({ deviceId, result: "promoted", peer: snapshot(deviceId, kept[0]) });
      }
    }
    return out;
  }

  /**
   * When the next endpoint expires.
   *
   * @returns The earliest deadline, or `undefined` when nothing is known.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * const table = new DiscoveryTable({ deviceId: "00:00:00:00:00:01", nonce: "0000000000000001" });
   * assert.equal(table.nextExpiry(), undefined);
   * ```
   */
  nextExpiry(): number | undefined {
    let at: number | undefined;
    for (const entry of this.#entries.values()) {
      for (const e of entry.endpoints) if (at === undefined || e.deadline < at) at = e.deadline;
    }
    return at;
  }

  /**
   * A peer by id: its established endpoint.
   *
   * @param deviceId The id, any case.
   * @returns The peer, or `undefined` when unknown (or not a device id).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * const table = new DiscoveryTable({ deviceId: "00:00:00:00:00:01", nonce: "0000000000000001" });
   * assert.equal(table.lookup("00:00:00:00:00:02"), undefined);
   * ```
   */
  lookup(deviceId: string): DiscoveredPeer | undefined {
    if (!isDeviceId(deviceId)) return undefined;
    const entry = this.#entries.get(deviceId.toUpperCase());
    return entry === undefined ? undefined : snapshot(entry.deviceId, entry.endpoints[0]);
  }

  /**
   * Every known peer (established endpoints).
   *
   * @returns The peers, in the order they were first learned.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * const table = new DiscoveryTable({ deviceId: "00:00:00:00:00:01", nonce: "0000000000000001" });
   * assert.deepEqual(table.peers(), []);
   * ```
   */
  peers(): DiscoveredPeer[] {
    return [...this.#entries.values()].map((e) => snapshot(e.deviceId, e.endpoints[0]));
  }

  /**
   * A dial to an endpoint of an id reached another device (its handshake
   * proved another key): drop the endpoint, so the id's next endpoint is
   * dialled, and ignore its announcements of the id for a while (rule 6).
   *
   * @param deviceId The id, any case.
   * @param host The endpoint's address.
   * @param port Its TCP port.
   * @param now The current time, in ms.
   * @returns Whether the table held that endpoint.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * const table = new DiscoveryTable({ deviceId: "00:00:00:00:00:01", nonce: "0000000000000001" });
   * assert.equal(table.refute("00:00:00:00:00:02", "10.0.0.9", 4000, 0), false);
   * ```
   */
  refute(deviceId: string, host: string, port: number, now: number): boolean {
    if (!isDeviceId(deviceId)) return false;
    const id = deviceId.toUpperCase();
    const key = `${id}|${host}|${port}`;
    this.#refuted.delete(key);
    this.#refuted.set(key, now + REFUTED_MS);
    if (this.#refuted.size > MAX_REFUTED) {
      this.#refuted.delete(this.#refuted.keys().next().value!);
    }
    const entry = this.#entries.get(id);
    const at = entry?.endpoints.findIndex((e) => e.host === host && e.port === port) ?? -1;
    if (entry === undefined || at < 0) return false;
    entry.endpoints.splice(at, 1);
    if (entry.endpoints.length === 0) this.#entries.delete(id);
    return true;
  }

  /**
   * The contenders of an id: endpoints kept but not dialled (rule 1).
   *
   * @param deviceId The id, any case.
   * @returns Its contenders, or `[]`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * const table = new DiscoveryTable({ deviceId: "00:00:00:00:00:01", nonce: "0000000000000001" });
   * assert.deepEqual(table.contenders("00:00:00:00:00:02"), []);
   * ```
   */
  contenders(deviceId: string): DiscoveredPeer[] {
    if (!isDeviceId(deviceId)) return [];
    const entry = this.#entries.get(deviceId.toUpperCase());
    return entry?.endpoints.slice(1).map((e) => snapshot(entry.deviceId, e)) ?? [];
  }
}

/**
 * Multicast discovery of linkweave devices on IPv4: every device announces
 * its id and TCP port to a multicast group, and learns its peers' addresses
 * from the source of their announcements.
 *
 * Three parts, from pure to driven:
 * - The wire format: {@linkcode encodeAnnouncement} and
 *   {@linkcode decodeAnnouncement}.
 * - {@linkcode DiscoveryTable} (what is known about which peer) and
 *   {@linkcode DiscoveryMachine} (when to announce, answer and expire), both
 *   sans-IO: time is an argument, output is polled.
 * - {@linkcode startDiscovery}: the one driver, joining the machine to a UDP
 *   socket of a {@linkcode SocketPlatform} and to (unref'd) timers.
 *
 * ## Wire format, version 1
 *
 * One announcement per UDP datagram, sent to {@linkcode DISCOVERY_GROUP}
 * (`239.255.76.87`, in the administratively scoped range; `76.87` is "LW")
 * port {@linkcode DISCOVERY_PORT} (`38471`) with a multicast TTL of 1, so it
 * never leaves the link. All integers are big-endian.
 *
 * | Offset | Size | Field                                                              |
 * | -----: | ---: | ------------------------------------------------------------------ |
 * |      0 |    4 | Magic: `LWDA` (`4C 57 44 41`)                                      |
 * |      4 |    1 | Version: `1`                                                       |
 * |      5 |    1 | Flags: bit 0 `solicit` (answer now); other bits 0, ignored on read |
 * |      6 |    6 | Device id: the six bytes of `AA:BB:CC:DD:EE:FF`, in order          |
 * |     12 |    2 | TCP port of the device, 1..65535                                   |
 * |     14 |    4 | TTL in ms: forget the device this long after this datagram; 0 = goodbye |
 * |     18 |    8 | Nonce: random per runtime start, so a restart is told from a clash |
 *
 * A version-1 announcement is 26 bytes ({@linkcode ANNOUNCEMENT_SIZE}). A
 * decoder accepts longer datagrams, up to {@linkcode MAX_ANNOUNCEMENT_SIZE}
 * bytes, and ignores the bytes after offset 26 (room for later optional
 * fields); anything else (other magic or version, too short, too long, port
 * 0) is not an announcement and is dropped silently.
 *
 * ## Behaviour
 * - A device announces at once, then every `interval` (default 1 s) for its
 *   first {@linkcode FAST_ANNOUNCEMENTS} announcements, then every
 *   `steadyInterval` (default 5 × `interval`). Its TTL is 3 × `steadyInterval`
 *   (15 s by default): a peer silent that long is lost.
 * - A device that hears a new peer, a restarted one (new nonce or address),
 *   a clash, or a `solicit` flag answers with its own announcement after a
 *   short random delay ({@linkcode ANSWER_DELAY} + up to
 *   {@linkcode ANSWER_JITTER} ms; answers due together are sent once, and
 *   never sooner than {@linkcode ANSWER_GAP} ms after the previous
 *   announcement). So a newcomer learns everyone within tens of
 *   milliseconds, and `Discovery.announce()` (which sets `solicit`) finds
 *   every peer just as fast.
 * - Closing sends a goodbye (TTL 0): peers forget the device at once.
 * - Its own announcements (same id, same nonce) are ignored. The same id
 *   with another nonce is a clash: another runtime uses this device's id.
 * - Bounded: at most `maxPeers` peers (default {@linkcode DEFAULT_MAX_PEERS});
 *   a TTL is capped at {@linkcode MAX_TTL}.
 *
 * @module
 */
import type { DatagramHandle, IpEndpoint, SocketPlatform } from "../socket/platform.ts";
import type { DeviceConfig } from "../device_config.ts";
import { isDeviceId, normalizeDeviceId } from "../device_config.ts";
import { ParameterError } from "../errors.ts";

/** The multicast group of discovery: administratively scoped, "LW" in its last two bytes. */
export const DISCOVERY_GROUP = "239.255.76.87";
/** The UDP port of discovery (one above the default TCP port, 38470). */
export const DISCOVERY_PORT = 38471;
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
/** The size of a version-1 announcement, in bytes. */
export const ANNOUNCEMENT_SIZE = 26;
/** The largest datagram accepted as an announcement, in bytes. */
export const MAX_ANNOUNCEMENT_SIZE = 512;
/** The largest TTL a peer is believed, in ms (10 minutes). */
export const MAX_TTL = 600_000;
/** How many peers a table holds by default. */
export const DEFAULT_MAX_PEERS = 256;

const MAGIC = [0x4c, 0x57, 0x44, 0x41]; // "LWDA"
const VERSION = 1;
const FLAG_SOLICIT = 1;
const NONCE = /^[0-9a-f]{16}$/;
const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/** What an announcement says. */
export interface Announcement {
  /** The device id, upper-case `AA:BB:CC:DD:EE:FF`. */
  deviceId: string;
  /** The runtime's nonce: 16 lower-case hex digits, new at every start. */
  nonce: string;
  /** The device's TCP port, 1..65535. */
  port: number;
  /** How long to remember the device, in ms; 0 is a goodbye. */
  ttl: number;
  /** Whether the sender asks every device to announce itself now. */
  solicit: boolean;
}

/** What {@linkcode encodeAnnouncement} takes: `ttl` and `solicit` are optional. */
export interface AnnouncementInit {
  /** The device id (any case). */
  deviceId: string;
  /** The runtime's nonce (16 hex digits, see {@linkcode randomNonce}). */
  nonce: string;
  /** The device's TCP port, 1..65535. */
  port: number;
  /** How long to remember the device, in ms; 0 is a goodbye. @default {15000} */
  ttl?: number;
  /** Ask every device to announce itself now. @default {false} */
  solicit?: boolean;
}

/** A peer found by discovery. */
export interface DiscoveredPeer {
  /** Its device id, upper-case. */
  deviceId: string;
  /** Its IP address: the source address of its announcements. */
  host: string;
  /** Its TCP port. */
  port: number;
  /** The nonce of its runtime. */
  nonce: string;
}

/** Another runtime announcing a device id that is not its own to use. */
export interface ClashInfo {
  /** The id in dispute. */
  deviceId: string;
  /** The other runtime's address. */
  host: string;
  /** The other runtime's TCP port. */
  port: number;
}

/**
 * A random nonce: 16 lower-case hex digits (8 random bytes).
 *
 * @param random Fills a byte array with random bytes. @default {crypto.getRandomValues}
 * @returns The nonce.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.match(randomNonce(), /^[0-9a-f]{16}$/);
 * assert.equal(randomNonce((b) => b.fill(0xab)), "abababababababab");
 * ```
 */
export function randomNonce(
  random: (bytes: Uint8Array) => void = (b) => crypto.getRandomValues(b as Uint8Array<ArrayBuffer>),
): string {
  const b = new Uint8Array(8);
  random(b);
  return [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
}

/**
 * Encode an announcement (format in the module documentation).
 *
 * @param announcement The device id, nonce, TCP port, and optionally the TTL
 *   and the `solicit` flag.
 * @returns The datagram, {@linkcode ANNOUNCEMENT_SIZE} bytes.
 * @throws {ParameterError} When a field is invalid, naming it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const bytes = encodeAnnouncement({
 *   deviceId: "00:11:22:33:44:55", nonce: "0123456789abcdef", port: 38470,
 * });
 * assert.equal(bytes.length, 26);
 * assert.equal(new TextDecoder().decode(bytes.subarray(0, 4)), "LWDA");
 * ```
 */
export function encodeAnnouncement(announcement: AnnouncementInit): Uint8Array {
  const { deviceId, nonce, port } = announcement;
  const ttl = announcement.ttl ?? DEFAULT_INTERVAL * STEADY_FACTOR * TTL_FACTOR;
  const id = normalizeDeviceId(deviceId);
  if (typeof nonce !== "string" || !NONCE.test(nonce)) {
    throw new ParameterError(
      `Invalid nonce ${JSON.stringify(nonce)}: expected 16 lower-case hex digits`,
    );
  }
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new ParameterError(
      `Invalid port ${JSON.stringify(port)}: expected an integer in 1..65535`,
    );
  }
  if (!Number.isInteger(ttl) || ttl < 0 || ttl > 0xffffffff) {
    throw new ParameterError(
      `Invalid TTL ${JSON.stringify(ttl)}: expected an integer of milliseconds in 0..4294967295`,
    );
  }
  const b = new Uint8Array(ANNOUNCEMENT_SIZE);
  const v = new DataView(b.buffer);
  b.set(MAGIC, 0);
  b[4] = VERSION;
  b[5] = announcement.solicit ? FLAG_SOLICIT : 0;
  id.split(":").forEach((h, i) => (b[6 + i] = parseInt(h, 16)));
  v.setUint16(12, port);
  v.setUint32(14, ttl);
  for (let i = 0; i < 8; i++) b[18 + i] = parseInt(nonce.slice(2 * i, 2 * i + 2), 16);
  return b;
}

function hex(b: Uint8Array, start: number, end: number, sep: string): string {
  let s = "";
  for (let i = start; i < end; i++) {
    if (i > start) s += sep;
    s += b[i].toString(16).padStart(2, "0");
  }
  return s;
}

/**
 * Decode an announcement. Never throws: anything that is not a version-1
 * announcement (wrong magic or version, shorter than
 * {@linkcode ANNOUNCEMENT_SIZE} or longer than
 * {@linkcode MAX_ANNOUNCEMENT_SIZE} bytes, port 0) gives `undefined`.
 *
 * @param bytes A received datagram.
 * @returns The announcement, or `undefined`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const a = decodeAnnouncement(encodeAnnouncement({
 *   deviceId: "aa:bb:cc:dd:ee:ff", nonce: "0123456789abcdef", port: 4000, ttl: 3000,
 * }));
 * assert.deepEqual(a, {
 *   deviceId: "AA:BB:CC:DD:EE:FF", nonce: "0123456789abcdef", port: 4000, ttl: 3000,
 *   solicit: false,
 * });
 * assert.equal(decodeAnnouncement(new TextEncoder().encode("hello")), undefined);
 * ```
 */
export function decodeAnnouncement(bytes: Uint8Array): Announcement | undefined {
  if (
    !(bytes instanceof Uint8Array) || bytes.length < ANNOUNCEMENT_SIZE ||
    bytes.length > MAX_ANNOUNCEMENT_SIZE
  ) {
    return undefined;
  }
  for (let i = 0; i < 4; i++) if (bytes[i] !== MAGIC[i]) return undefined;
  if (bytes[4] !== VERSION) return undefined;
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const port = v.getUint16(12);
  if (port === 0) return undefined;
  return {
    deviceId: hex(bytes, 6, 12, ":").toUpperCase(),
    nonce: hex(bytes, 18, 26, ""),
    port,
    ttl: v.getUint32(14),
    solicit: (bytes[5] & FLAG_SOLICIT) !== 0,
  };
}

/**
 * What one announcement did to a {@linkcode DiscoveryTable}:
 * - `new`: a peer not known before.
 * - `refresh`: a known peer, unchanged; its expiry moves on.
 * - `changed`: a known id with a new nonce (its runtime restarted) or a new
 *   host or port; the entry now says so.
 * - `self`: this runtime's own announcement (same id and nonce).
 * - `clash`: this device's id with another nonce: another runtime uses it.
 * - `duplicate`: a known peer's id with a nonce it used before the current
 *   one: two live runtimes use that id. The entry keeps the current one.
 * - `gone`: a goodbye from a known peer; it was removed.
 * - `ignored`: a goodbye from an unknown runtime, or a new peer while the
 *   table is full.
 */
export type UpdateResult =
  | "new"
  | "refresh"
  | "changed"
  | "self"
  | "clash"
  | "duplicate"
  | "gone"
  | "ignored";

/** Options of {@linkcode DiscoveryTable}. */
export interface DiscoveryTableOptions {
  /** This device's id. */
  deviceId: string;
  /** This runtime's nonce. */
  nonce: string;
  /** How many peers are kept; more new ones are ignored. @default {256} */
  maxPeers?: number;
}

interface Entry {
  peer: DiscoveredPeer;
  deadline: number;
  /** Nonces this id used before the current one (the last few). */
  retired: string[];
}

const RETIRED_NONCES = 4;

/**
 * The peers discovery knows, with their expiry: pure, time is an argument.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const table = new DiscoveryTable({ deviceId: "00:00:00:00:00:01", nonce: "0000000000000001" });
 * const peer = { deviceId: "00:00:00:00:00:02", nonce: "0000000000000002", port: 4000, ttl: 3000, solicit: false };
 * assert.equal(table.update(peer, "10.0.0.2", 0), "new");
 * assert.equal(table.update(peer, "10.0.0.2", 1000), "refresh");
 * assert.equal(table.lookup("00:00:00:00:00:02")?.host, "10.0.0.2");
 * assert.deepEqual(table.expire(4000), ["00:00:00:00:00:02"]);
 * ```
 */
export class DiscoveryTable {
  #deviceId: string;
  #nonce: string;
  #maxPeers: number;
  #entries = new Map<string, Entry>();

  /**
   * @param options This device's id and nonce, and the peer limit.
   */
  constructor(options: DiscoveryTableOptions) {
    this.#deviceId = normalizeDeviceId(options.deviceId);
    this.#nonce = options.nonce;
    this.#maxPeers = options.maxPeers ?? DEFAULT_MAX_PEERS;
  }

  /** How many peers are known. */
  get size(): number {
    return this.#entries.size;
  }

  /**
   * Take in one announcement.
   *
   * @param announcement The decoded announcement.
   * @param host The source address of its datagram.
   * @param now The current time, in ms.
   * @returns What it did (see {@linkcode UpdateResult}).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * const me = { deviceId: "00:00:00:00:00:01", nonce: "0000000000000001" };
   * const table = new DiscoveryTable(me);
   * assert.equal(table.update({ ...me, port: 1, ttl: 1000, solicit: false }, "10.0.0.1", 0), "self");
   * assert.equal(
   *   table.update({ ...me, nonce: "0000000000000009", port: 1, ttl: 1000, solicit: false }, "10.0.0.9", 0),
   *   "clash",
   * );
   * ```
   */
  update(announcement: Announcement, host: string, now: number): UpdateResult {
    const { deviceId, nonce, port, ttl } = announcement;
    if (deviceId === this.#deviceId) {
      if (nonce === this.#nonce) return "self";
      return ttl === 0 ? "ignored" : "clash";
    }
    const e = this.#entries.get(deviceId);
    if (ttl === 0) {
      if (e === undefined || e.peer.nonce !== nonce) return "ignored";
      this.#entries.delete(deviceId);
      return "gone";
    }
    const deadline = now + Math.min(ttl, MAX_TTL);
    if (e === undefined) {
      if (this.#entries.size >= this.#maxPeers) return "ignored";
      this.#entries.set(deviceId, {
        peer: Object.freeze({ deviceId, host, port, nonce }),
        deadline,
        retired: [],
      });
      return "new";
    }
    if (e.peer.nonce !== nonce) {
      if (e.retired.includes(nonce)) return "duplicate";
      e.retired.push(e.peer.nonce);
      if (e.retired.length > RETIRED_NONCES) e.retired.shift();
    } else if (e.peer.host === host && e.peer.port === port) {
      e.deadline = deadline;
      return "refresh";
    }
    e.peer = Object.freeze({ deviceId, host, port, nonce });
    e.deadline = deadline;
    return "changed";
  }

  /**
   * Remove the peers whose TTL ran out.
   *
   * @param now The current time, in ms.
   * @returns The ids removed.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * const table = new DiscoveryTable({ deviceId: "00:00:00:00:00:01", nonce: "0000000000000001" });
   * assert.deepEqual(table.expire(0), []);
   * ```
   */
  expire(now: number): string[] {
    const lost: string[] = [];
    for (const [id, e] of this.#entries) {
      if (e.deadline <= now) {
        this.#entries.delete(id);
        lost.push(id);
      }
    }
    return lost;
  }

  /**
   * When the next peer expires.
   *
   * @returns The earliest deadline, or `undefined` when no peer is known.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * const table = new DiscoveryTable({ deviceId: "00:00:00:00:00:01", nonce: "0000000000000001" });
   * table.update({ deviceId: "00:00:00:00:00:02", nonce: "0000000000000002", port: 1, ttl: 500, solicit: false }, "10.0.0.2", 100);
   * assert.equal(table.nextExpiry(), 600);
   * ```
   */
  nextExpiry(): number | undefined {
    let at: number | undefined;
    for (const e of this.#entries.values()) {
      if (at === undefined || e.deadline < at) at = e.deadline;
    }
    return at;
  }

  /**
   * A peer by id.
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
    return isDeviceId(deviceId) ? this.#entries.get(deviceId.toUpperCase())?.peer : undefined;
  }

  /**
   * Every known peer.
   *
   * @returns The peers, in the order they were first seen.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * const table = new DiscoveryTable({ deviceId: "00:00:00:00:00:01", nonce: "0000000000000001" });
   * assert.deepEqual(table.peers(), []);
   * ```
   */
  peers(): DiscoveredPeer[] {
    return [...this.#entries.values()].map((e) => e.peer);
  }
}

/** What a {@linkcode DiscoveryMachine} reports. */
export type DiscoveryEvent =
  | {
    /** A new peer, or a known one whose runtime restarted or moved. */
    type: "peer";
    /** The peer as now known. */
    peer: DiscoveredPeer;
    /** `true` when the id was known before (new nonce or address). */
    changed: boolean;
  }
  | {
    /** A peer expired or said goodbye. */
    type: "lost";
    /** Its id. */
    deviceId: string;
  }
  | ({
    /** Another runtime announces this device's id (reported once per runtime). */
    type: "clash";
  } & ClashInfo)
  | ({
    /** Two other runtimes announce the same id (reported once per runtime). */
    type: "duplicate";
  } & ClashInfo);

/** Options of {@linkcode DiscoveryMachine}. */
export interface DiscoveryMachineOptions {
  /** This device's id. */
  deviceId: string;
  /** This runtime's nonce (see {@linkcode randomNonce}). */
  nonce: string;
  /** This device's TCP port. */
  port: number;
  /** The fast announcement interval, in ms. @default {1000} */
  interval?: number;
  /** The steady announcement interval, in ms. @default {5 × interval} */
  steadyInterval?: number;
  /** How many peers are kept. @default {256} */
  maxPeers?: number;
  /** A random number in [0, 1), for the answer delay. @default {Math.random} */
  random?: () => number;
}

const REPORTED_LIMIT = 64;

/**
 * Discovery's protocol, sans-IO: feed it datagrams and timeouts, poll what to
 * send, when to wake up and what happened. The driver
 * ({@linkcode startDiscovery}) is the only place with sockets and timers.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const a = new DiscoveryMachine({ deviceId: "00:00:00:00:00:0A", nonce: "000000000000000a", port: 1000 }, 0);
 * const b = new DiscoveryMachine({ deviceId: "00:00:00:00:00:0B", nonce: "000000000000000b", port: 2000 }, 0);
 * a.handleTimeout(0); // the first announcement is due at once
 * b.handleDatagram(a.pollTransmit()!, "10.0.0.1", 1);
 * assert.deepEqual(b.pollEvent(), {
 *   type: "peer", changed: false,
 *   peer: { deviceId: "00:00:00:00:00:0A", host: "10.0.0.1", port: 1000, nonce: "000000000000000a" },
 * });
 * ```
 */
export class DiscoveryMachine {
  #table: DiscoveryTable;
  #init: AnnouncementInit;
  #interval: number;
  #steady: number;
  #random: () => number;
  #sent = 0;
  #nextAnnounce: number;
  #answerAt: number | undefined;
  #lastSent = -Infinity;
  #transmit: Uint8Array | undefined;
  #events: DiscoveryEvent[] = [];
  #reported = new Set<string>();
  #closed = false;

  /**
   * @param options This device's id, nonce and port, and the timing.
   * @param now The current time, in ms: the first announcement is due then.
   * @throws {ParameterError} When an option is invalid, naming it.
   */
  constructor(options: DiscoveryMachineOptions, now: number) {
    this.#interval = positiveMs(options.interval ?? DEFAULT_INTERVAL, "interval");
    this.#steady = positiveMs(
      options.steadyInterval ?? this.#interval * STEADY_FACTOR,
      "steady interval",
    );
    this.#init = {
      deviceId: normalizeDeviceId(options.deviceId),
      nonce: options.nonce,
      port: options.port,
      ttl: Math.min(this.#steady * TTL_FACTOR, 0xffffffff),
    };
    encodeAnnouncement(this.#init); // validates nonce and port
    this.#table = new DiscoveryTable({
      deviceId: this.#init.deviceId,
      nonce: options.nonce,
      maxPeers: options.maxPeers,
    });
    this.#random = options.random ?? Math.random;
    this.#nextAnnounce = now;
  }

  /** The table of known peers (read it; the machine writes it). */
  get table(): DiscoveryTable {
    return this.#table;
  }

  /** The TTL this device announces, in ms (3 × the steady interval). */
  get ttl(): number {
    return this.#init.ttl!;
  }

  #send(now: number, solicit: boolean, ttl?: number): void {
    const solicited = solicit || (this.#transmit !== undefined && (this.#transmit[5] & 1) !== 0);
    this.#transmit = encodeAnnouncement({
      ...this.#init,
      solicit: solicited,
      ttl: ttl ?? this.ttl,
    });
    this.#lastSent = now;
    this.#answerAt = undefined; // this announcement answers everything heard before it
  }

  #answer(now: number): void {
    if (this.#answerAt !== undefined || this.#closed) return;
    const delay = ANSWER_DELAY + Math.floor(this.#random() * ANSWER_JITTER);
    this.#answerAt = Math.max(now + delay, this.#lastSent + ANSWER_GAP);
  }

  #reportOnce(type: "clash" | "duplicate", a: Announcement, host: string): boolean {
    const key = `${type}/${a.deviceId}/${a.nonce}`;
    if (this.#reported.has(key)) return false;
    if (this.#reported.size >= REPORTED_LIMIT) {
      this.#reported.delete(this.#reported.values().next().value!);
    }
    this.#reported.add(key);
    this.#events.push({ type, deviceId: a.deviceId, host, port: a.port });
    return true;
  }

  /**
   * Take in one received datagram.
   *
   * @param bytes The datagram (anything; non-announcements are dropped).
   * @param host Its source address.
   * @param now The current time, in ms.
   * @returns What it did to the table, or `undefined` when it was not an
   *   announcement (or the machine is closed).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * const m = new DiscoveryMachine({ deviceId: "00:00:00:00:00:01", nonce: "0000000000000001", port: 1 }, 0);
   * assert.equal(m.handleDatagram(new Uint8Array(3), "10.0.0.2", 0), undefined);
   * ```
   */
  handleDatagram(bytes: Uint8Array, host: string, now: number): UpdateResult | undefined {
    if (this.#closed) return undefined;
    const a = decodeAnnouncement(bytes);
    if (a === undefined) return undefined;
    const result = this.#table.update(a, host, now);
    switch (result) {
      case "new":
      case "changed":
        this.#events.push({
          type: "peer",
          peer: this.#table.lookup(a.deviceId)!,
          changed: result === "changed",
        });
        this.#answer(now);
        break;
      case "clash":
        if (this.#reportOnce("clash", a, host)) this.#answer(now);
        break;
      case "duplicate":
        this.#reportOnce("duplicate", a, host);
        break;
      case "gone":
        this.#events.push({ type: "lost", deviceId: a.deviceId });
        break;
    }
    if (a.solicit && result !== "self") this.#answer(now);
    return result;
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
   * assert.equal(m.pollTransmit()?.length, 26);
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
    for (const deviceId of this.#table.expire(now)) this.#events.push({ type: "lost", deviceId });
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
   * const m = new DiscoveryMachine({ deviceId: "00:00:00:00:00:01", nonce: "0000000000000001", port: 1 }, 0);
   * m.announce(5);
   * assert.equal(decodeAnnouncement(m.pollTransmit()!)?.solicit, true);
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
   * const m = new DiscoveryMachine({ deviceId: "00:00:00:00:00:01", nonce: "0000000000000001", port: 1 }, 0);
   * m.close(0);
   * assert.equal(decodeAnnouncement(m.pollTransmit()!)?.ttl, 0);
   * assert.equal(m.pollTimeout(), undefined);
   * ```
   */
  close(now: number): void {
    if (this.#closed) return;
    this.#transmit = undefined;
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

function positiveMs(value: unknown, what: string): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1) {
    throw new ParameterError(
      `Invalid ${what} ${JSON.stringify(value)}: expected a positive integer of milliseconds`,
    );
  }
  return value;
}

/** Options of {@linkcode startDiscovery}. */
export interface DiscoveryOptions {
  /** The sockets to use (`autoSocketPlatform()` for the current runtime). */
  platform: SocketPlatform;
  /** This device's id. */
  deviceId: string;
  /** This runtime's nonce (see {@linkcode randomNonce}). */
  nonce: string;
  /**
   * The device's TCP listen address: an IPv4 address announces on that
   * interface; `0.0.0.0` (or `::`) on the default multicast interface.
   */
  bind: string;
  /** The device's TCP port, announced to peers. */
  port: number;
  /** The multicast group. @default {"239.255.76.87"} */
  group?: string;
  /** The UDP port of discovery. @default {38471} */
  discoveryPort?: number;
  /** The fast announcement interval, in ms (the first 4 announcements). @default {1000} */
  interval?: number;
  /** The steady announcement interval, in ms. @default {5 × interval} */
  steadyInterval?: number;
  /** How many peers are kept. @default {256} */
  maxPeers?: number;
  /** A new peer, or a known one that restarted or moved. */
  onPeer(peer: DiscoveredPeer): void;
  /** A peer expired (silent for its TTL) or said goodbye. */
  onPeerLost?(deviceId: string): void;
  /** Another runtime announces this device's id; reported once per runtime. */
  onClash(info: ClashInfo): void;
  /** Two other runtimes announce the same id; reported once per runtime. */
  onDuplicate?(info: ClashInfo): void;
  /** A send or receive failed; discovery keeps going. */
  onError?(error: unknown): void;
}

/** A running discovery. */
export interface Discovery {
  /** This device's id. */
  readonly deviceId: string;
  /** This runtime's nonce. */
  readonly nonce: string;
  /**
   * A peer by id.
   *
   * @param deviceId The id, any case.
   * @returns The peer, or `undefined` when unknown.
   */
  lookup(deviceId: string): DiscoveredPeer | undefined;
  /**
   * Every known peer.
   *
   * @returns The peers.
   */
  peers(): DiscoveredPeer[];
  /** Announce now, asking every device to answer at once. */
  announce(): void;
  /**
   * Say goodbye and close the sockets; idempotent.
   *
   * @returns When the sockets are closed.
   */
  close(): Promise<void>;
}

function isLoopback(address: string): boolean {
  const a = address.toLowerCase();
  return a === "localhost" || a === "::1" || /^(::ffff:)?127\./.test(a);
}

function isWildcard(address: string): boolean {
  return address === "0.0.0.0" || address === "::";
}

/**
 * Whether a device with this configuration runs discovery: `discovery` is
 * `auto` and the device listens on an IPv4 address that is not loopback, or
 * on every interface (`0.0.0.0` or `::`). Discovery runs over IPv4 only, so
 * a specific IPv6 address or a host name gives `false` too.
 *
 * @param config The device configuration (its `discovery` and `bind`).
 * @returns Whether to call {@linkcode startDiscovery}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.ok(shouldDiscover({ discovery: "auto", bind: "0.0.0.0" }));
 * assert.ok(shouldDiscover({ discovery: "auto", bind: "192.168.1.20" }));
 * assert.ok(!shouldDiscover({ discovery: "auto", bind: "127.0.0.1" }));
 * assert.ok(!shouldDiscover({ discovery: "off", bind: "0.0.0.0" }));
 * ```
 */
export function shouldDiscover(config: Pick<DeviceConfig, "discovery" | "bind">): boolean {
  const { discovery, bind } = config;
  return discovery === "auto" && !isLoopback(bind) && (isWildcard(bind) || IPV4.test(bind));
}

function unrefTimer(t: unknown): void {
  if (typeof t === "number") {
    (globalThis as { Deno?: { unrefTimer?(id: number): void } }).Deno?.unrefTimer?.(t);
  } else (t as { unref?(): void } | undefined)?.unref?.();
}

function unrefHandle(h: DatagramHandle): void {
  (h as DatagramHandle & { unref?(): void }).unref?.();
}

/**
 * Start discovery: bind UDP `discoveryPort` on every address (with
 * `SO_REUSEADDR`, so several devices on one host share it), join `group` on
 * the interface of `bind`, announce this device and report its peers. Its
 * timers and sockets are unref'd: discovery alone never keeps the process
 * alive. When `bind` is a specific address, announcements are sent from a
 * second socket bound to it, which makes the kernel send them on that
 * interface (and gives peers that source address).
 *
 * @param options The platform, this device, the network and the callbacks.
 * @returns The running discovery.
 * @throws {ParameterError} When an option is invalid (`bind` must be an IPv4
 *   address, `0.0.0.0` or `::`).
 * @throws {BusinessError} When a socket cannot be bound or the group joined
 *   (code `2301000 + errno`).
 *
 * @example
 * ```ts
 * import { autoSocketPlatform } from "../../platform/auto.ts";
 * const found: string[] = [];
 * const discovery = await startDiscovery({
 *   platform: autoSocketPlatform(),
 *   deviceId: "02:00:00:00:00:01",
 *   nonce: randomNonce(),
 *   bind: "127.0.0.1", // loopback: for the example only (see shouldDiscover)
 *   port: 38470,
 *   discoveryPort: 40000 + Math.floor(Math.random() * 20000),
 *   onPeer: (peer) => found.push(`${peer.deviceId} at ${peer.host} port ${peer.port}`),
 *   onClash: (info) => found.push(`another runtime uses our id at ${info.host}`),
 * });
 * discovery.announce(); // peers answer at once
 * await discovery.close();
 * ```
 */
export async function startDiscovery(options: DiscoveryOptions): Promise<Discovery> {
  const { platform, bind } = options;
  const group = options.group ?? DISCOVERY_GROUP;
  const discoveryPort = options.discoveryPort ?? DISCOVERY_PORT;
  if (typeof bind !== "string" || !(isWildcard(bind) || IPV4.test(bind))) {
    throw new ParameterError(
      `Cannot start discovery: bind address ${
        JSON.stringify(bind)
      } is not an IPv4 address, "0.0.0.0" or "::"`,
    );
  }
  if (!IPV4.test(group) || !/^2(2[4-9]|3\d)\./.test(group)) {
    throw new ParameterError(
      `Cannot start discovery: group ${JSON.stringify(group)} is not an IPv4 multicast address`,
    );
  }
  if (!Number.isInteger(discoveryPort) || discoveryPort < 1 || discoveryPort > 65535) {
    throw new ParameterError(
      `Cannot start discovery: invalid discovery port ${
        JSON.stringify(discoveryPort)
      }: expected an integer in 1..65535`,
    );
  }
  const now = () => performance.now();
  const machine = new DiscoveryMachine({
    deviceId: options.deviceId,
    nonce: options.nonce,
    port: options.port,
    interval: options.interval,
    steadyInterval: options.steadyInterval,
    maxPeers: options.maxPeers,
  }, now());
  const specific = !isWildcard(bind);
  const dest: IpEndpoint = { address: group, port: discoveryPort, family: "IPv4" };
  const report = (e: unknown) => {
    try {
      options.onError?.(e);
    } catch { /* a throwing listener does not stop discovery */ }
  };

  let closed = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let timerAt: number | undefined;
  let sender: DatagramHandle | undefined;

  const call = <T>(f: ((x: T) => void) | undefined, x: T) => {
    try {
      f?.(x);
    } catch (e) {
      report(e);
    }
  };
  const pump = () => {
    for (let bytes = machine.pollTransmit(); bytes !== undefined; bytes = machine.pollTransmit()) {
      sender?.send(bytes, dest)?.catch(report);
    }
    for (let ev = machine.pollEvent(); ev !== undefined; ev = machine.pollEvent()) {
      if (ev.type === "peer") call(options.onPeer, ev.peer);
      else if (ev.type === "lost") call(options.onPeerLost, ev.deviceId);
      else {
        const info: ClashInfo = { deviceId: ev.deviceId, host: ev.host, port: ev.port };
        call(ev.type === "clash" ? options.onClash : options.onDuplicate, info);
      }
    }
    if (closed) return;
    const at = machine.pollTimeout();
    if (at === timerAt) return;
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    timerAt = at;
    if (at === undefined) return;
    timer = setTimeout(() => {
      timer = undefined;
      timerAt = undefined;
      if (closed) return;
      machine.handleTimeout(now());
      pump();
    }, Math.max(0, Math.ceil(at - now())));
    unrefTimer(timer);
  };

  const receiver = await platform.udpBind({
    local: { address: "0.0.0.0", port: discoveryPort, family: "IPv4" },
    reuseAddress: true,
  }, {
    onMessage(bytes, from) {
      if (closed || from.family !== "IPv4") return;
      machine.handleDatagram(bytes, from.address, now());
      pump();
    },
    onError: report,
  });
  unrefHandle(receiver);
  try {
    receiver.addMembership(group, specific ? bind : undefined);
    if (specific) {
      sender = await platform.udpBind({
        local: { address: bind, port: 0, family: "IPv4" },
      }, { onMessage() {}, onError: report });
      unrefHandle(sender);
    } else {
      sender = receiver;
    }
    sender.setOption("multicastTTL", 1);
    sender.setOption("multicastLoopback", true);
  } catch (e) {
    await receiver.close();
    await sender?.close();
    throw e;
  }
  machine.handleTimeout(now());
  pump();

  let closing: Promise<void> | undefined;
  return {
    deviceId: normalizeDeviceId(options.deviceId),
    nonce: options.nonce,
    lookup: (deviceId) => machine.table.lookup(deviceId),
    peers: () => machine.table.peers(),
    announce() {
      if (closed) return;
      machine.announce(now());
      pump();
    },
    close() {
      closing ??= (async () => {
        machine.close(now());
        const bye = machine.pollTransmit();
        closed = true;
        if (timer !== undefined) clearTimeout(timer);
        timer = undefined;
        if (bye !== undefined) {
          try {
            await sender!.send(bye, dest);
          } catch { /* best effort */ }
        }
        if (sender !== receiver) await sender!.close();
        await receiver.close();
      })();
      return closing;
    },
  };
}

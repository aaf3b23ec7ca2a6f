/**
 * The discovery datagram, version 2.0: one announcement per UDP datagram,
 * sent to the group {@linkcode DISCOVERY_GROUP} port
 * {@linkcode DISCOVERY_PORT} with a multicast TTL of 1. All integers are
 * big-endian. `docs/discovery.md` specifies it field by field; in short:
 *
 * | Offset | Size | Field                                                          |
 * | -----: | ---: | -------------------------------------------------------------- |
 * |      0 |    4 | Magic `LWDA` (`4C 57 44 41`)                                   |
 * |      4 |    1 | Major version of this datagram: `2`                            |
 * |      5 |    1 | Minor version: `0` (a newer minor only adds options and bits)  |
 * |      6 |    1 | Highest major version the sender speaks (>= byte 4)            |
 * |      7 |    1 | Flags: bit 0 `solicit` (answer now); other bits reserved       |
 * |      8 |    4 | Capability bits ({@linkcode Capability})                       |
 * |     12 |    8 | Nonce: random per runtime start                                |
 * |     20 |    4 | TTL in ms: forget the sender this long after; 0 = goodbye      |
 * |     24 |    2 | TCP port of the sender's link listener, 1..65535               |
 * |     26 |    … | Options: type (1 byte), length (1 byte), value                 |
 *
 * Options ({@linkcode OptionType}): the device id in the clear, or sealed
 * (`SEALED_ID`, for devices with an account: only account members can read
 * it, and it looks different in every datagram, so an observer cannot
 * follow a device across restarts); further addresses of the device; and
 * a number reserved for an account tag. An option whose type has bit 7 set
 * is critical: a receiver that does not know it ignores the announcement;
 * other unknown options are skipped.
 *
 * @module
 */
import { normalizeDeviceId } from "../device/config.ts";
import { ParameterError } from "../errors.ts";
import { formatIPv4, isUnicastIPv4, parseIPv4 } from "./subnet.ts";

/** The multicast group of discovery: administratively scoped, "LW" in its last two bytes. */
export const DISCOVERY_GROUP = "239.255.76.87";
/** The UDP port of discovery (one above the default TCP port, 38470). */
export const DISCOVERY_PORT = 38471;
/** The major version this code speaks (and the only one it decodes). */
export const WIRE_MAJOR = 2;
/** The minor version this code sends. */
export const WIRE_MINOR = 0;
/** The size of the fixed header, in bytes. */
export const HEADER_SIZE = 26;
/** The largest datagram accepted as an announcement, in bytes. */
export const MAX_ANNOUNCEMENT_SIZE = 512;
/** The most further addresses one announcement carries. */
export const MAX_ADDRESSES = 8;
/** The TTL an announcement carries unless told otherwise, in ms (3 x the default steady interval). */
export const DEFAULT_TTL = 15_000;

/**
 * Capability bits (bytes 8..11). A receiver ignores bits it does not know;
 * two devices use the bits both set.
 */
export const Capability = {
  /** The device accepts linkweave links over TCP on the announced port(s). Set by 2.0 devices. */
  LINK_TCP: 0x1,
} as const;

/**
 * Option types. Bit 7 set marks an option as critical (see the module
 * documentation).
 */
export const OptionType = {
  /** 6 bytes: the device id, `AA:BB:CC:DD:EE:FF` in order. Exactly once in 2.0. */
  DEVICE_ID: 0x01,
  /** 6 bytes: a further IPv4 address (4) and TCP port (2) of the device; up to 8. */
  ADDRESS_V4: 0x02,
  /** 18 bytes: a further IPv6 address (16) and TCP port (2). Reserved: 2.0 skips it. */
  ADDRESS_V6: 0x03,
  /**
   * The device id sealed with the account's discovery key (see {@linkcode IdSeal}):
   * fresh random bytes in every datagram, readable only by account members.
   */
  SEALED_ID: 0x04,
  /** Reserved for the trust issue: an account tag over every byte before it (last option). */
  ACCOUNT_TAG: 0x05,
} as const;

/** The bit of an option type that makes it critical. */
export const CRITICAL_OPTION = 0x80;

const MAGIC = [0x4c, 0x57, 0x44, 0x41]; // "LWDA"
const FLAG_SOLICIT = 1;
const NONCE = /^[0-9a-f]{16}$/;

/** A TCP address of a device. */
export interface PeerAddress {
  /** Host name or IP address. */
  host: string;
  /** TCP port. */
  port: number;
}

/**
 * Seals and opens device ids with an account's discovery key (an AEAD with
 * a random nonce per datagram, made by the platform): what makes an
 * announcement readable by the account only, and different every time.
 */
export interface IdSeal {
  /**
   * Seal a device id.
   *
   * @param id The id's 6 bytes.
   * @param aad The datagram before the option (bound to it).
   * @returns The sealed bytes (at most 255).
   */
  seal(id: Uint8Array, aad: Uint8Array): Uint8Array;
  /**
   * Open a sealed id.
   *
   * @param sealed The option's value.
   * @param aad The datagram before the option.
   * @returns The id's 6 bytes, or `undefined` (another account, or forged).
   */
  open(sealed: Uint8Array, aad: Uint8Array): Uint8Array | undefined;
}

/** What an announcement says. */
export interface Announcement {
  /** The datagram's major version (always {@linkcode WIRE_MAJOR} once decoded). */
  major: number;
  /** The datagram's minor version. */
  minor: number;
  /** The highest major version the sender speaks. */
  maxMajor: number;
  /** Capability bits ({@linkcode Capability}). */
  capabilities: number;
  /** Whether the sender asks every device to announce itself now. */
  solicit: boolean;
  /** The device id, upper-case `AA:BB:CC:DD:EE:FF`. */
  deviceId: string;
  /** The runtime's nonce: 16 lower-case hex digits, new at every start. */
  nonce: string;
  /** How long to remember the device, in ms; 0 is a goodbye. */
  ttl: number;
  /** The TCP port at the datagram's source address. */
  port: number;
  /** Further addresses the device announced (option `ADDRESS_V4`). */
  addresses: PeerAddress[];
}

/** What {@linkcode encodeAnnouncement} takes. */
export interface AnnouncementInit {
  /** The device id (any case). */
  deviceId: string;
  /** The runtime's nonce (16 lower-case hex digits, see {@linkcode randomNonce}). */
  nonce: string;
  /** The TCP port, 1..65535. */
  port: number;
  /** How long to remember the device, in ms; 0 is a goodbye. @default {15000} */
  ttl?: number;
  /** Ask every device to announce itself now. @default {false} */
  solicit?: boolean;
  /** Capability bits. @default {Capability.LINK_TCP} */
  capabilities?: number;
  /** Further IPv4 addresses of the device. @default {[]} */
  addresses?: readonly PeerAddress[];
  /** Seal the device id (devices with an account); absent: the id goes in the clear. */
  seal?: IdSeal;
}

/**
 * Why a datagram is not an announcement this code uses:
 * - `foreign`: not a linkweave discovery datagram (other magic, too short).
 * - `version`: another major version (`major` says which).
 * - `malformed`: the magic and version are right but a field is not.
 * - `critical`: a critical option this version does not know.
 * - `anonymous`: no device id (a later version's rotating identifier only).
 */
export type DecodeFailure = "foreign" | "version" | "malformed" | "critical" | "anonymous";

/** The result of {@linkcode decodeAnnouncement}. */
export type DecodeResult =
  | {
    /** A usable announcement. */
    ok: true;
    /** What it says. */
    announcement: Announcement;
  }
  | {
    /** Not usable. */
    ok: false;
    /** Why. */
    reason: DecodeFailure;
    /** The major version, when `reason` is `version`. */
    major?: number;
  };

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

function checkPort(port: unknown, what: string): number {
  if (typeof port !== "number" || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new ParameterError(
      `Invalid ${what} ${JSON.stringify(port)}: expected an integer in 1..65535`,
    );
  }
  return port;
}

/**
 * Encode an announcement (format in the module documentation).
 *
 * @param init The device id, nonce and TCP port; optionally the TTL, the
 *   `solicit` flag, capabilities and further addresses.
 * @returns The datagram.
 * @throws {ParameterError} When a field is invalid, naming it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const bytes = encodeAnnouncement({
 *   deviceId: "00:11:22:33:44:55", nonce: "0123456789abcdef", port: 38470,
 * });
 * assert.equal(bytes.length, 34);
 * assert.equal(new TextDecoder().decode(bytes.subarray(0, 4)), "LWDA");
 * ```
 */
export function encodeAnnouncement(init: AnnouncementInit): Uint8Array {
  const id = normalizeDeviceId(init.deviceId);
  const { nonce } = init;
  if (typeof nonce !== "string" || !NONCE.test(nonce)) {
    throw new ParameterError(
      `Invalid nonce ${JSON.stringify(nonce)}: expected 16 lower-case hex digits`,
    );
  }
  const port = checkPort(init.port, "port");
  const ttl = init.ttl ?? DEFAULT_TTL;
  if (!Number.isInteger(ttl) || ttl < 0 || ttl > 0xffffffff) {
    throw new ParameterError(
      `Invalid TTL ${JSON.stringify(ttl)}: expected an integer of milliseconds in 0..4294967295`,
    );
  }
  const caps = init.capabilities ?? Capability.LINK_TCP;
  if (!Number.isInteger(caps) || caps < 0 || caps > 0xffffffff) {
    throw new ParameterError(
      `Invalid capabilities ${JSON.stringify(caps)}: expected a 32-bit unsigned integer`,
    );
  }
  const addresses = init.addresses ?? [];
  if (addresses.length > MAX_ADDRESSES) {
    throw new ParameterError(
      `Invalid addresses: ${addresses.length} given, at most ${MAX_ADDRESSES} fit`,
    );
  }
  const idBytes = new Uint8Array(id.split(":").map((h) => parseInt(h, 16)));
  const head = new Uint8Array(HEADER_SIZE);
  let idOption = new Uint8Array(8);
  const b0 = new Uint8Array(HEADER_SIZE + 8 * addresses.length + 300);
  const v = new DataView(b0.buffer);
  const b = b0;
  b.set(MAGIC, 0);
  b[4] = WIRE_MAJOR;
  b[5] = WIRE_MINOR;
  b[6] = WIRE_MAJOR;
  b[7] = init.solicit ? FLAG_SOLICIT : 0;
  v.setUint32(8, caps);
  for (let i = 0; i < 8; i++) b[12 + i] = parseInt(nonce.slice(2 * i, 2 * i + 2), 16);
  v.setUint32(20, ttl);
  v.setUint16(24, port);
  head.set(b.subarray(0, HEADER_SIZE));
  if (init.seal !== undefined) {
    const sealed = init.seal.seal(idBytes, head);
    idOption = new Uint8Array(2 + sealed.length);
    idOption[0] = OptionType.SEALED_ID;
    idOption[1] = sealed.length;
    idOption.set(sealed, 2);
  } else {
    idOption[0] = OptionType.DEVICE_ID;
    idOption[1] = 6;
    idOption.set(idBytes, 2);
  }
  let at = HEADER_SIZE;
  b.set(idOption, at);
  at += idOption.length;
  for (const a of addresses) {
    if (!isUnicastIPv4(a?.host)) {
      throw new ParameterError(
        `Invalid address ${JSON.stringify(a?.host)}: expected a unicast IPv4 address`,
      );
    }
    b[at] = OptionType.ADDRESS_V4;
    b[at + 1] = 6;
    v.setUint32(at + 2, parseIPv4(a.host)!);
    v.setUint16(at + 6, checkPort(a.port, "address port"));
    at += 8;
  }
  return b.slice(0, at);
}

function hex(b: Uint8Array, start: number, end: number, sep: string): string {
  let s = "";
  for (let i = start; i < end; i++) {
    if (i > start) s += sep;
    s += b[i].toString(16).padStart(2, "0");
  }
  return s;
}

const FOREIGN: DecodeResult = Object.freeze({ ok: false, reason: "foreign" });
const MALFORMED: DecodeResult = Object.freeze({ ok: false, reason: "malformed" });

/**
 * Decode a datagram. Never throws, whatever the bytes: a datagram that is
 * not a usable version-2 announcement gives `ok: false` and the reason.
 * A sealed id is read with `seal` (this device's account); without it, or
 * from another account, the announcement is `anonymous`. With a seal, a
 * clear id is ignored too (anyone can write one).
 *
 * @param bytes A received datagram.
 * @param seal This device's account's id seal, if it has one.
 * @returns The announcement, or why there is none.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const r = decodeAnnouncement(encodeAnnouncement({
 *   deviceId: "aa:bb:cc:dd:ee:ff", nonce: "0123456789abcdef", port: 4000, ttl: 3000,
 * }));
 * assert.ok(r.ok && r.announcement.deviceId === "AA:BB:CC:DD:EE:FF");
 * assert.deepEqual(decodeAnnouncement(new TextEncoder().encode("hello")), { ok: false, reason: "foreign" });
 * ```
 */
export function decodeAnnouncement(bytes: Uint8Array, seal?: IdSeal): DecodeResult {
  if (!(bytes instanceof Uint8Array) || bytes.length < 5) return FOREIGN;
  for (let i = 0; i < 4; i++) if (bytes[i] !== MAGIC[i]) return FOREIGN;
  const major = bytes[4];
  if (major !== WIRE_MAJOR) return { ok: false, reason: "version", major };
  if (bytes.length < HEADER_SIZE || bytes.length > MAX_ANNOUNCEMENT_SIZE) return MALFORMED;
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const maxMajor = bytes[6];
  const port = v.getUint16(24);
  if (maxMajor < major || port === 0) return MALFORMED;
  let deviceId: string | undefined;
  const addresses: PeerAddress[] = [];
  for (let at = HEADER_SIZE; at < bytes.length;) {
    if (at + 2 > bytes.length) return MALFORMED;
    const type = bytes[at];
    const length = bytes[at + 1];
    const value = at + 2;
    at = value + length;
    if (at > bytes.length) return MALFORMED;
    if (type === OptionType.DEVICE_ID) {
      if (length !== 6 || deviceId !== undefined) return MALFORMED;
      // A device with an account reads sealed ids only: anyone can write a clear one.
      if (seal === undefined) deviceId = hex(bytes, value, value + 6, ":").toUpperCase();
    } else if (type === OptionType.SEALED_ID) {
      if (deviceId !== undefined || seal === undefined) continue;
      const id = seal.open(bytes.subarray(value, at), bytes.subarray(0, HEADER_SIZE));
      if (id !== undefined && id.length === 6) deviceId = hex(id, 0, 6, ":").toUpperCase();
    } else if (type === OptionType.ADDRESS_V4) {
      if (length !== 6 || addresses.length === MAX_ADDRESSES) return MALFORMED;
      const host = formatIPv4(v.getUint32(value));
      const p = v.getUint16(value + 4);
      if (!isUnicastIPv4(host) || p === 0) return MALFORMED;
      addresses.push({ host, port: p });
    } else if ((type & CRITICAL_OPTION) !== 0) {
      return { ok: false, reason: "critical" };
    }
    // Any other option (ADDRESS_V6, the reserved trust options, later ones) is skipped.
  }
  if (deviceId === undefined) return { ok: false, reason: "anonymous" };
  return {
    ok: true,
    announcement: {
      major,
      minor: bytes[5],
      maxMajor,
      capabilities: v.getUint32(8),
      solicit: (bytes[7] & FLAG_SOLICIT) !== 0,
      deviceId,
      nonce: hex(bytes, 12, 20, ""),
      ttl: v.getUint32(20),
      port,
      addresses,
    },
  };
}

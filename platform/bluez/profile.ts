/**
 * GATT profiles: which service and characteristics a BLE link uses, and how
 * they form channels. The transport is the same for every profile; only this
 * layout differs:
 * - {@linkcode linkweaveProfile}: linkweave's own service with N channels,
 *   each a pair of characteristics (the central writes without response to
 *   one, the peripheral notifies on the other);
 * - {@linkcode OPENHARMONY_PROFILE}: OpenHarmony's softbus service
 *   `11C8B310-80E4-4276-AFC0-F81590B2177F` with characteristics 2B00 and
 *   2B01, each used both ways (written by the central, notified by the
 *   peripheral), as `openharmony-gatt.md` describes.
 *
 * @module
 */
import { ParameterError } from "../../core/errors.ts";

/** A characteristic a profile serves, with its BlueZ flags. */
export interface CharacteristicSpec {
  /** The UUID (lower case, 128-bit form). */
  uuid: string;
  /** BlueZ `Flags` (`read`, `write`, `write-without-response`, `notify`, `indicate`). */
  flags: string[];
}

/** One duplex channel: the central writes to `write`, the peripheral notifies on `notify`. */
export interface ChannelSpec {
  /** UUID of the characteristic the central writes (without response). */
  write: string;
  /** UUID of the characteristic the peripheral notifies. */
  notify: string;
}

/** A GATT layout. */
export interface GattProfile {
  /** A short name, for messages (`linkweave`, `openharmony`). */
  name: string;
  /** The primary service's UUID (lower case, 128-bit form). */
  service: string;
  /** The characteristics it serves. */
  characteristics: CharacteristicSpec[];
  /** The channels, in order. */
  channels: ChannelSpec[];
}

/** The Bluetooth base UUID's tail, for 16-bit UUIDs. */
const BASE = "-0000-1000-8000-00805f9b34fb";

/**
 * A UUID in BlueZ's form: lower-case, 128-bit (16- and 32-bit ones expanded).
 *
 * @param uuid `2B00`, `0x2b00`, or a 128-bit UUID.
 * @returns The normalized UUID.
 * @throws {ParameterError} When it is not a UUID.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.equal(normalizeUuid("2B00"), "00002b00-0000-1000-8000-00805f9b34fb");
 * ```
 */
export function normalizeUuid(uuid: string): string {
  const u = uuid.trim().toLowerCase().replace(/^0x/, "");
  if (/^[0-9a-f]{4}$/.test(u)) return `0000${u}${BASE}`;
  if (/^[0-9a-f]{8}$/.test(u)) return `${u}${BASE}`;
  if (/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(u)) return u;
  throw new ParameterError(`Invalid UUID "${uuid}": expected 16, 32 or 128 bits`);
}

/** linkweave's GATT service. */
export const LINKWEAVE_SERVICE = "6c776b00-5c5a-4a1c-9f3e-6c696e6b7765";

/** Most channels {@linkcode linkweaveProfile} makes (characteristic pairs). */
export const MAX_LINKWEAVE_CHANNELS = 8;

/**
 * linkweave's own profile with `channels` characteristic pairs. Channel `i`
 * uses `6c776b<2i+1>…` (central writes without response) and `6c776b<2i+2>…`
 * (peripheral notifies).
 *
 * @param channels How many pairs, 1..8. @default {2}
 * @returns The profile.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const p = linkweaveProfile(3);
 * assert.equal(p.channels.length, 3);
 * assert.equal(p.characteristics.length, 6);
 * ```
 */
export function linkweaveProfile(channels = 2): GattProfile {
  if (!Number.isInteger(channels) || channels < 1 || channels > MAX_LINKWEAVE_CHANNELS) {
    throw new ParameterError(
      `Invalid channel count "${channels}": expected an integer in 1..${MAX_LINKWEAVE_CHANNELS}`,
    );
  }
  const uuid = (n: number) =>
    `6c776b${n.toString(16).padStart(2, "0")}-5c5a-4a1c-9f3e-6c696e6b7765`;
  const characteristics: CharacteristicSpec[] = [];
  const specs: ChannelSpec[] = [];
  for (let i = 0; i < channels; i++) {
    const write = uuid(2 * i + 1);
    const notify = uuid(2 * i + 2);
    characteristics.push(
      { uuid: write, flags: ["write-without-response"] },
      { uuid: notify, flags: ["notify"] },
    );
    specs.push({ write, notify });
  }
  return { name: "linkweave", service: LINKWEAVE_SERVICE, characteristics, channels: specs };
}

/** OpenHarmony's softbus GATT service. */
export const OPENHARMONY_SERVICE = "11c8b310-80e4-4276-afc0-f81590b2177f";

const OH_FLAGS = ["read", "write", "write-without-response", "notify", "indicate"];

/**
 * OpenHarmony's profile: characteristics 2B00 ("net", channel 0) and 2B01
 * ("conn", channel 1), each written by the central and notified by the
 * peripheral, with every property OpenHarmony sets.
 */
export const OPENHARMONY_PROFILE: GattProfile = {
  name: "openharmony",
  service: OPENHARMONY_SERVICE,
  characteristics: [
    { uuid: normalizeUuid("2B00"), flags: OH_FLAGS },
    { uuid: normalizeUuid("2B01"), flags: OH_FLAGS },
  ],
  channels: [
    { write: normalizeUuid("2B00"), notify: normalizeUuid("2B00") },
    { write: normalizeUuid("2B01"), notify: normalizeUuid("2B01") },
  ],
};

/**
 * Check a profile: UUIDs in BlueZ's form, every channel's characteristics
 * served with the flags it needs.
 *
 * @param p The profile.
 * @throws {ParameterError} When it is inconsistent.
 */
export function checkProfile(p: GattProfile): void {
  const fail = (why: string) => {
    throw new ParameterError(`Invalid GATT profile "${p.name}": ${why}`);
  };
  if (normalizeUuid(p.service) !== p.service) fail(`service UUID "${p.service}" is not normalized`);
  const chars = new Map(p.characteristics.map((c) => [c.uuid, c]));
  if (chars.size !== p.characteristics.length) fail("a characteristic is listed twice");
  if (p.channels.length === 0) fail("it has no channel");
  for (const c of p.characteristics) {
    if (normalizeUuid(c.uuid) !== c.uuid) fail(`UUID "${c.uuid}" is not normalized`);
  }
  for (const [i, ch] of p.channels.entries()) {
    if (!chars.get(ch.write)?.flags.includes("write-without-response")) {
      fail(`channel ${i}: "${ch.write}" is not served with write-without-response`);
    }
    if (!chars.get(ch.notify)?.flags.includes("notify")) {
      fail(`channel ${i}: "${ch.notify}" is not served with notify`);
    }
  }
}

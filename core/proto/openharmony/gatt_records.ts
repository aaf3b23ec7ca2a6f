/**
 * The bytes of an `openharmony` channel: how one BLE connection to
 * OpenHarmony's GATT service (two characteristics, 2B00 and 2B01, each used
 * both ways) travels as one byte stream between the BLE transport
 * (`platform/ble_transport.ts`) and the profile's link
 * ({@linkcode OhProfileLink}). Every GATT value keeps its characteristic, and
 * the transport tells the link its GATT role and the ATT MTU in the same
 * stream:
 *
 * ```
 * record = type (u8) || length (u16, big-endian) || body (length bytes)
 * type 0x00  one GATT value on 2B00            (both ways)
 * type 0x01  one GATT value on 2B01            (both ways)
 * type 0x10  the connection is up: role (u8: 1 GATT client, 2 GATT server,
 *            as OpenHarmony's basic info numbers them) || ATT MTU (u16 BE)
 *                                               (transport -> link, first record, once)
 * type 0x11  the ATT MTU changed: ATT MTU (u16 BE)  (transport -> link)
 * ```
 *
 * Records of an unknown type are skipped (both ends are ours, so a newer
 * transport may add some). A reader holds at most one incomplete record,
 * {@linkcode MAX_RECORD_BYTES}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const bytes = encodeValueRecord("2B01", new Uint8Array([1, 2]));
 * assert.deepEqual([...bytes], [0x01, 0x00, 0x02, 1, 2]);
 * const got: GattRecord[] = [];
 * const reader = new GattRecordReader();
 * reader.push(bytes.subarray(0, 2), (r) => got.push(r));
 * reader.push(bytes.subarray(2), (r) => got.push(r));
 * assert.equal(got.length, 1);
 * assert.ok(got[0].type === "value" && got[0].char === "2B01");
 * ```
 *
 * @module
 */
import type { OhCharacteristic } from "./wire.ts";

/** Record types. */
export const RecordType = {
  /** A GATT value on 2B00. */
  NET: 0x00,
  /** A GATT value on 2B01. */
  CONN: 0x01,
  /** The BLE connection is up: our GATT role and the ATT MTU. */
  UP: 0x10,
  /** The ATT MTU changed. */
  MTU: 0x11,
} as const;

/** Bytes before a record's body. */
export const RECORD_HEADER = 3;
/** The largest record: the most a reader holds for an incomplete one. */
export const MAX_RECORD_BYTES: number = RECORD_HEADER + 0xffff;

/** Our GATT role, as OpenHarmony's basic info numbers it: 1 client, 2 server. */
export type GattRole = 1 | 2;

/** One record, decoded. */
export type GattRecord =
  /** A GATT value (valid during the callback only). */
  | { type: "value"; char: OhCharacteristic; value: Uint8Array }
  /** The connection is up. */
  | { type: "up"; role: GattRole; mtu: number }
  /** The ATT MTU changed. */
  | { type: "mtu"; mtu: number };

function record(type: number, body: Uint8Array): Uint8Array {
  if (body.length > 0xffff) throw new RangeError(`A record body holds at most 65535 bytes`);
  const out = new Uint8Array(RECORD_HEADER + body.length);
  out[0] = type;
  out[1] = body.length >> 8;
  out[2] = body.length & 0xff;
  out.set(body, RECORD_HEADER);
  return out;
}

function u16(n: number): Uint8Array {
  if (!Number.isInteger(n) || n < 0 || n > 0xffff) throw new RangeError(`Invalid ATT MTU ${n}`);
  return new Uint8Array([n >> 8, n & 0xff]);
}

/**
 * A GATT value as a record.
 *
 * @param char Its characteristic.
 * @param value The value (at most 65535 bytes).
 * @returns The record.
 */
export function encodeValueRecord(char: OhCharacteristic, value: Uint8Array): Uint8Array {
  return record(char === "2B00" ? RecordType.NET : RecordType.CONN, value);
}

/**
 * The record that starts a channel.
 *
 * @param role Our GATT role: 1 client (we connected), 2 server.
 * @param mtu The ATT MTU (23 until an exchange says more).
 * @returns The record.
 */
export function encodeUpRecord(role: GattRole, mtu: number): Uint8Array {
  const body = new Uint8Array(3);
  body[0] = role;
  body.set(u16(mtu), 1);
  return record(RecordType.UP, body);
}

/**
 * The record of a changed ATT MTU.
 *
 * @param mtu The ATT MTU.
 * @returns The record.
 */
export function encodeMtuRecord(mtu: number): Uint8Array {
  return record(RecordType.MTU, u16(mtu));
}

/** Reads records from a byte stream cut anywhere. */
export class GattRecordReader {
  #head = new Uint8Array(RECORD_HEADER);
  #headLen = 0;
  #body: Uint8Array | undefined;
  #bodyLen = 0;
  #problem: string | undefined;

  /** Bytes held for an incomplete record (at most {@linkcode MAX_RECORD_BYTES}). */
  get buffered(): number {
    return this.#headLen + this.#bodyLen;
  }

  /** Why the stream broke (a malformed known record), once it did; nothing is read after. */
  get problem(): string | undefined {
    return this.#problem;
  }

  /**
   * Read bytes; each complete record goes to `onRecord` at once.
   *
   * @param bytes The bytes (valid during the call).
   * @param onRecord Called per record (its value is valid during the call).
   */
  push(bytes: Uint8Array, onRecord: (r: GattRecord) => void): void {
    let i = 0;
    while (i < bytes.length && this.#problem === undefined) {
      if (this.#body === undefined) {
        const take = Math.min(RECORD_HEADER - this.#headLen, bytes.length - i);
        this.#head.set(bytes.subarray(i, i + take), this.#headLen);
        this.#headLen += take;
        i += take;
        if (this.#headLen < RECORD_HEADER) return;
        const len = (this.#head[1] << 8) | this.#head[2];
        // A whole body in this chunk is handed over without a copy.
        if (bytes.length - i >= len) {
          this.#emit(this.#head[0], bytes.subarray(i, i + len), onRecord);
          i += len;
          this.#headLen = 0;
          continue;
        }
        this.#body = new Uint8Array(len);
        this.#bodyLen = 0;
      }
      const body = this.#body;
      const take = Math.min(body.length - this.#bodyLen, bytes.length - i);
      body.set(bytes.subarray(i, i + take), this.#bodyLen);
      this.#bodyLen += take;
      i += take;
      if (this.#bodyLen < body.length) return;
      this.#body = undefined;
      this.#bodyLen = 0;
      this.#headLen = 0;
      this.#emit(this.#head[0], body, onRecord);
    }
  }

  #emit(type: number, body: Uint8Array, onRecord: (r: GattRecord) => void): void {
    switch (type) {
      case RecordType.NET:
      case RecordType.CONN:
        onRecord({ type: "value", char: type === RecordType.NET ? "2B00" : "2B01", value: body });
        return;
      case RecordType.UP:
        if (body.length !== 3 || (body[0] !== 1 && body[0] !== 2)) {
          this.#problem = "a malformed up record";
          return;
        }
        onRecord({ type: "up", role: body[0] as GattRole, mtu: (body[1] << 8) | body[2] });
        return;
      case RecordType.MTU:
        if (body.length !== 2) {
          this.#problem = "a malformed MTU record";
          return;
        }
        onRecord({ type: "mtu", mtu: (body[0] << 8) | body[1] });
        return;
      default:
        return; // a newer transport's record
    }
  }
}

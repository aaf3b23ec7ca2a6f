/**
 * Control messages of a link, typed, and their bytes: one module encodes and
 * decodes every one of them (`docs/link-protocol.md` section 3).
 *
 * A control message is the payload of a CONTROL frame. Byte 0 is the
 * operation; the fields follow in network byte order. Strings are UTF-8 with a
 * 16-bit length. A decoder ignores bytes after the fields it knows (room for
 * later versions) and reports an operation it does not know as `unknown`, so
 * newer peers can add operations without breaking older ones.
 *
 * | op | name   | stream | fields                                               |
 * | -- | ------ | ------ | ---------------------------------------------------- |
 * | 1  | open   | s      | window u32, kind u8, name str16, bundle str16        |
 * | 2  | accept | s      | window u32                                           |
 * | 3  | reject | s      | code i32                                             |
 * | 4  | bye    | 0      | (none)                                               |
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const bytes = encodeControl({ op: "open", window: 65536, kind: 0, name: "demo", bundle: "" });
 * assert.deepEqual(decodeControl(bytes), {
 *   op: "open", window: 65536, kind: 0, name: "demo", bundle: "",
 * });
 * assert.equal(decodeControl(new Uint8Array([1, 0])), undefined); // truncated
 * ```
 *
 * @module
 */

/** What kind of service an `open` asks for. */
export const ServiceKind = {
  /** A `linkEnhance` connection to a named server. */
  LINK_ENHANCE: 0,
  /** An `abilityConnectionManager` session with a peer ability. */
  ABILITY: 1,
} as const;

/** Open a stream to the peer's service `name` (of app `bundle`). */
export interface OpenControl {
  /** The operation. */
  op: "open";
  /** The opener's receive window for the stream (bytes). */
  window: number;
  /** A value of {@linkcode ServiceKind}. */
  kind: number;
  /** The server (or ability) name, at most 65535 UTF-8 bytes. */
  name: string;
  /** The app's bundle name, or "" when none. */
  bundle: string;
}

/** The peer accepted a stream. */
export interface AcceptControl {
  /** The operation. */
  op: "accept";
  /** The acceptor's receive window for the stream (bytes). */
  window: number;
}

/** The peer refused a stream. */
export interface RejectControl {
  /** The operation. */
  op: "reject";
  /** Why: the code the opener's API reports (e.g. 32390201). */
  code: number;
}

/** The link closes gracefully. */
export interface ByeControl {
  /** The operation. */
  op: "bye";
}

/** An operation this version does not know (ignored). */
export interface UnknownControl {
  /** The operation. */
  op: "unknown";
  /** Its number. */
  code: number;
}

/** Every control message. */
export type Control = OpenControl | AcceptControl | RejectControl | ByeControl;

import { utf8Length, writeUtf8 } from "../../_utf8.ts";

const OPS = { open: 1, accept: 2, reject: 3, bye: 4 } as const;
const fromUtf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * The bytes of a control message, in a new buffer.
 *
 * @param c The message.
 * @returns Its payload bytes.
 * @throws {RangeError} When a string is longer than 65535 UTF-8 bytes.
 */
export function encodeControl(c: Control): Uint8Array {
  const out = new Uint8Array(controlLength(c));
  encodeControlInto(c, out, 0);
  return out;
}

/**
 * The length of a control message's bytes.
 *
 * @param c The message.
 * @returns Bytes.
 * @throws {RangeError} When a string is longer than 65535 UTF-8 bytes.
 */
export function controlLength(c: Control): number {
  switch (c.op) {
    case "open":
      return 10 + str16(c.name) + str16(c.bundle);
    case "accept":
    case "reject":
      return 5;
    case "bye":
      return 1;
  }
}

/**
 * Write a control message into a buffer the caller owns (no allocation).
 *
 * @param c The message.
 * @param out The buffer, with {@linkcode controlLength} bytes free at `at`.
 * @param at Where to start.
 * @returns The bytes written.
 */
export function encodeControlInto(c: Control, out: Uint8Array, at: number): number {
  switch (c.op) {
    case "open": {
      const n = str16(c.name);
      const b = str16(c.bundle);
      out[at] = OPS.open;
      u32(out, at + 1, c.window);
      out[at + 5] = c.kind;
      u16(out, at + 6, n);
      writeUtf8(c.name, out, at + 8);
      u16(out, at + 8 + n, b);
      writeUtf8(c.bundle, out, at + 10 + n);
      return 10 + n + b;
    }
    case "accept":
      out[at] = OPS.accept;
      u32(out, at + 1, c.window);
      return 5;
    case "reject":
      out[at] = OPS.reject;
      u32(out, at + 1, c.code >>> 0);
      return 5;
    case "bye":
      out[at] = OPS.bye;
      return 1;
  }
}

function str16(s: string): number {
  const n = utf8Length(s);
  if (n > 0xffff) throw new RangeError(`Control string too long: ${n} bytes`);
  return n;
}

function u32(out: Uint8Array, at: number, v: number): void {
  out[at] = v >>> 24;
  out[at + 1] = v >>> 16;
  out[at + 2] = v >>> 8;
  out[at + 3] = v;
}

function u16(out: Uint8Array, at: number, v: number): void {
  out[at] = v >>> 8;
  out[at + 1] = v;
}

/**
 * Read a control message.
 *
 * @param bytes The payload of a CONTROL frame.
 * @returns The message; `{ op: "unknown" }` for an operation this version
 *   does not know; `undefined` when the bytes are malformed (truncated, bad
 *   UTF-8), which is a protocol error.
 */
export function decodeControl(bytes: Uint8Array): Control | UnknownControl | undefined {
  if (bytes.length === 0) return undefined;
  switch (bytes[0]) {
    case OPS.open: {
      if (bytes.length < 8) return undefined;
      const window = getU32(bytes, 1);
      const kind = bytes[5];
      const nameLen = (bytes[6] << 8) | bytes[7];
      if (bytes.length < 10 + nameLen) return undefined;
      const bundleLen = (bytes[8 + nameLen] << 8) | bytes[9 + nameLen];
      if (bytes.length < 10 + nameLen + bundleLen) return undefined;
      const name = text(bytes.subarray(8, 8 + nameLen));
      const bundle = text(bytes.subarray(10 + nameLen, 10 + nameLen + bundleLen));
      if (name === undefined || bundle === undefined) return undefined;
      return { op: "open", window, kind, name, bundle };
    }
    case OPS.accept:
      return bytes.length < 5 ? undefined : { op: "accept", window: getU32(bytes, 1) };
    case OPS.reject:
      return bytes.length < 5 ? undefined : { op: "reject", code: getU32(bytes, 1) | 0 };
    case OPS.bye:
      return { op: "bye" };
    default:
      return { op: "unknown", code: bytes[0] };
  }
}

function getU32(b: Uint8Array, at: number): number {
  return ((b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]) >>> 0;
}

function text(b: Uint8Array): string | undefined {
  if (b.length === 0) return "";
  try {
    return fromUtf8.decode(b);
  } catch {
    return undefined;
  }
}

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

const OPS = { open: 1, accept: 2, reject: 3, bye: 4 } as const;
const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * The bytes of a control message.
 *
 * @param c The message.
 * @returns Its payload bytes (a new buffer).
 * @throws {RangeError} When a string is longer than 65535 UTF-8 bytes.
 */
export function encodeControl(c: Control): Uint8Array {
  switch (c.op) {
    case "open": {
      const name = str(c.name);
      const bundle = str(c.bundle);
      const out = new Uint8Array(1 + 4 + 1 + 2 + name.length + 2 + bundle.length);
      const dv = new DataView(out.buffer);
      out[0] = OPS.open;
      dv.setUint32(1, c.window);
      out[5] = c.kind;
      dv.setUint16(6, name.length);
      out.set(name, 8);
      dv.setUint16(8 + name.length, bundle.length);
      out.set(bundle, 10 + name.length);
      return out;
    }
    case "accept": {
      const out = new Uint8Array(5);
      out[0] = OPS.accept;
      new DataView(out.buffer).setUint32(1, c.window);
      return out;
    }
    case "reject": {
      const out = new Uint8Array(5);
      out[0] = OPS.reject;
      new DataView(out.buffer).setInt32(1, c.code);
      return out;
    }
    case "bye":
      return new Uint8Array([OPS.bye]);
  }
}

function str(s: string): Uint8Array {
  const b = utf8.encode(s);
  if (b.length > 0xffff) throw new RangeError(`Control string too long: ${b.length} bytes`);
  return b;
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
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (bytes[0]) {
    case OPS.open: {
      if (bytes.length < 8) return undefined;
      const window = dv.getUint32(1);
      const kind = bytes[5];
      const nameLen = dv.getUint16(6);
      if (bytes.length < 10 + nameLen) return undefined;
      const bundleLen = dv.getUint16(8 + nameLen);
      if (bytes.length < 10 + nameLen + bundleLen) return undefined;
      const name = text(bytes.subarray(8, 8 + nameLen));
      const bundle = text(bytes.subarray(10 + nameLen, 10 + nameLen + bundleLen));
      if (name === undefined || bundle === undefined) return undefined;
      return { op: "open", window, kind, name, bundle };
    }
    case OPS.accept:
      return bytes.length < 5 ? undefined : { op: "accept", window: dv.getUint32(1) };
    case OPS.reject:
      return bytes.length < 5 ? undefined : { op: "reject", code: dv.getInt32(1) };
    case OPS.bye:
      return { op: "bye" };
    default:
      return { op: "unknown", code: bytes[0] };
  }
}

function text(b: Uint8Array): string | undefined {
  try {
    return fromUtf8.decode(b);
  } catch {
    return undefined;
  }
}

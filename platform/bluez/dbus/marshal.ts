/**
 * D-Bus values to bytes and back, in either byte order, with the
 * specification's alignment. Pure: no I/O.
 *
 * Values in JavaScript:
 * - `y n q i u d`: `number`; `x t`: `bigint` (a safe-integer `number` is
 *   accepted when encoding); `b`: `boolean`; `s o g`: `string`;
 * - `h`: the index of a file descriptor in the message's `fds` list (a
 *   `number`): the descriptors themselves travel beside the bytes;
 * - `v`: a {@linkcode Variant} (signature and value);
 * - `ay`: a `Uint8Array` (a `number[]` is accepted when encoding);
 * - `a{..}`: a `Map` (a plain object is accepted when encoding a dict with
 *   string keys); other arrays: an `Array`; structs: an `Array` of fields.
 *
 * @module
 */
import { ParameterError } from "../../../core/errors.ts";
import {
  type DBusType,
  isObjectPath,
  parseSignature,
  parseSingleType,
  signatureProblem,
} from "./signature.ts";

/** Longest array body the specification allows, in bytes. */
export const MAX_ARRAY_BYTES: number = 64 * 1024 * 1024;

/** Deepest nesting of containers, variants included, when decoding. */
export const MAX_VALUE_DEPTH = 64;

/**
 * A D-Bus variant: a value with its own signature.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const v = new Variant("as", ["a", "b"]);
 * assert.equal(v.signature, "as");
 * ```
 */
export class Variant<T = unknown> {
  /** The value's signature (one complete type). */
  readonly signature: string;
  /** The value. */
  readonly value: T;

  /**
   * @param signature One complete type.
   * @param value A value of that type.
   */
  constructor(signature: string, value: T) {
    this.signature = signature;
    this.value = value;
  }
}

/** Byte order of a message: `l` little endian, `B` big endian. */
export type Endian = "l" | "B";

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

function bad(type: DBusType, value: unknown, why = ""): ParameterError {
  let shown: string;
  try {
    shown = typeof value === "bigint" ? `${value}n` : JSON.stringify(value) ?? String(value);
  } catch {
    shown = String(value);
  }
  if (shown.length > 60) shown = `${shown.slice(0, 57)}...`;
  return new ParameterError(
    `Cannot encode D-Bus value ${shown} as "${type.signature}"${why === "" ? "" : `: ${why}`}`,
  );
}

/**
 * Appends values to a growing buffer. Offsets for alignment count from
 * `base` (the start of the message).
 */
export class Writer {
  #buf: Uint8Array;
  #view: DataView;
  #pos = 0;
  #le: boolean;

  /**
   * @param endian The byte order. @default {"l"}
   * @param capacity The initial buffer size. @default {256}
   */
  constructor(endian: Endian = "l", capacity = 256) {
    this.#buf = new Uint8Array(capacity);
    this.#view = new DataView(this.#buf.buffer);
    this.#le = endian === "l";
  }

  /** The number of bytes written. */
  get length(): number {
    return this.#pos;
  }

  /** Forget what was written (keeps the buffer). */
  reset(endian: Endian = "l"): void {
    this.#pos = 0;
    this.#le = endian === "l";
  }

  /** The written bytes, as a view of the internal buffer (valid until the next write). */
  view(): Uint8Array {
    return this.#buf.subarray(0, this.#pos);
  }

  #ensure(n: number): void {
    const need = this.#pos + n;
    if (need <= this.#buf.length) return;
    let size = this.#buf.length * 2;
    while (size < need) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.#buf.subarray(0, this.#pos));
    this.#buf = next;
    this.#view = new DataView(next.buffer);
  }

  /** Pad with zeros to a multiple of `n`. */
  align(n: number): void {
    const pad = (n - (this.#pos % n)) % n;
    if (pad === 0) return;
    this.#ensure(pad);
    this.#buf.fill(0, this.#pos, this.#pos + pad);
    this.#pos += pad;
  }

  /** Write one byte. */
  u8(v: number): void {
    this.#ensure(1);
    this.#buf[this.#pos++] = v;
  }

  /** Write a 32-bit unsigned integer, aligned. */
  u32(v: number): void {
    this.align(4);
    this.#ensure(4);
    this.#view.setUint32(this.#pos, v, this.#le);
    this.#pos += 4;
  }

  /** Overwrite a 32-bit unsigned integer at `at`. */
  patchU32(at: number, v: number): void {
    this.#view.setUint32(at, v, this.#le);
  }

  /** Write raw bytes. */
  bytes(b: Uint8Array): void {
    this.#ensure(b.length);
    this.#buf.set(b, this.#pos);
    this.#pos += b.length;
  }

  #string(s: string): void {
    this.align(4);
    if (s.length <= 64) {
      // ASCII fast path: no encoder call.
      this.#ensure(4 + s.length + 1);
      const at = this.#pos + 4;
      let i = 0;
      for (; i < s.length; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80 || c === 0) break;
        this.#buf[at + i] = c;
      }
      if (i === s.length) {
        this.#view.setUint32(this.#pos, i, this.#le);
        this.#buf[at + i] = 0;
        this.#pos = at + i + 1;
        return;
      }
    }
    // UTF-8 takes at most 3 bytes per UTF-16 code unit.
    this.#ensure(4 + s.length * 3 + 1);
    const at = this.#pos;
    const { written } = encoder.encodeInto(s, this.#buf.subarray(at + 4));
    if (this.#buf.subarray(at + 4, at + 4 + written).includes(0)) {
      throw new ParameterError(`Cannot encode D-Bus string "${s}": it contains a NUL character`);
    }
    this.#view.setUint32(at, written, this.#le);
    this.#buf[at + 4 + written] = 0;
    this.#pos = at + 4 + written + 1;
  }

  #signature(s: string): void {
    const problem = signatureProblem(s);
    if (problem !== undefined) {
      throw new ParameterError(`Cannot encode D-Bus signature "${s}": ${problem}`);
    }
    this.#ensure(s.length + 2);
    this.#buf[this.#pos++] = s.length;
    for (let i = 0; i < s.length; i++) this.#buf[this.#pos++] = s.charCodeAt(i);
    this.#buf[this.#pos++] = 0;
  }

  /**
   * Write one value of a type.
   *
   * @param type The type.
   * @param value The value.
   * @throws {ParameterError} When the value does not fit the type.
   */
  value(type: DBusType, value: unknown): void {
    const le = this.#le;
    switch (type.code) {
      case "y": {
        if (!isInt(value, 0, 0xff)) throw bad(type, value, "expected an integer in 0..255");
        this.u8(value);
        return;
      }
      case "b": {
        if (typeof value !== "boolean") throw bad(type, value, "expected a boolean");
        this.u32(value ? 1 : 0);
        return;
      }
      case "n":
      case "q": {
        const signed = type.code === "n";
        if (!isInt(value, signed ? -0x8000 : 0, signed ? 0x7fff : 0xffff)) {
          throw bad(type, value, `expected a ${signed ? "signed" : "unsigned"} 16-bit integer`);
        }
        this.align(2);
        this.#ensure(2);
        if (signed) this.#view.setInt16(this.#pos, value, le);
        else this.#view.setUint16(this.#pos, value, le);
        this.#pos += 2;
        return;
      }
      case "i":
      case "u":
      case "h": {
        const signed = type.code === "i";
        if (!isInt(value, signed ? -0x80000000 : 0, signed ? 0x7fffffff : 0xffffffff)) {
          throw bad(type, value, `expected a ${signed ? "signed" : "unsigned"} 32-bit integer`);
        }
        this.align(4);
        this.#ensure(4);
        if (signed) this.#view.setInt32(this.#pos, value, le);
        else this.#view.setUint32(this.#pos, value, le);
        this.#pos += 4;
        return;
      }
      case "x":
      case "t": {
        const signed = type.code === "x";
        let big: bigint;
        if (typeof value === "bigint") big = value;
        else if (typeof value === "number" && Number.isSafeInteger(value)) big = BigInt(value);
        else throw bad(type, value, "expected a bigint or a safe integer");
        const ok = signed
          ? big >= -(1n << 63n) && big < (1n << 63n)
          : big >= 0n && big < (1n << 64n);
        if (!ok) throw bad(type, value, `out of range of a 64-bit integer`);
        this.align(8);
        this.#ensure(8);
        if (signed) this.#view.setBigInt64(this.#pos, big, le);
        else this.#view.setBigUint64(this.#pos, big, le);
        this.#pos += 8;
        return;
      }
      case "d": {
        if (typeof value !== "number") throw bad(type, value, "expected a number");
        this.align(8);
        this.#ensure(8);
        this.#view.setFloat64(this.#pos, value, le);
        this.#pos += 8;
        return;
      }
      case "s": {
        if (typeof value !== "string") throw bad(type, value, "expected a string");
        this.#string(value);
        return;
      }
      case "o": {
        if (typeof value !== "string" || !isObjectPath(value)) {
          throw bad(type, value, "expected an object path");
        }
        this.#string(value);
        return;
      }
      case "g": {
        if (typeof value !== "string") throw bad(type, value, "expected a signature string");
        this.#signature(value);
        return;
      }
      case "v": {
        if (!(value instanceof Variant)) throw bad(type, value, "expected a Variant");
        let inner: DBusType;
        try {
          inner = parseSingleType(value.signature);
        } catch (e) {
          throw bad(type, value, `variant signature "${value.signature}": ${(e as Error).message}`);
        }
        this.#signature(value.signature);
        this.value(inner, value.value);
        return;
      }
      case "(": {
        const fields = type.fields!;
        if (!Array.isArray(value) || value.length !== fields.length) {
          throw bad(type, value, `expected an array of ${fields.length} fields`);
        }
        this.align(8);
        for (let i = 0; i < fields.length; i++) this.value(fields[i], value[i]);
        return;
      }
      case "a": {
        this.#array(type, value);
        return;
      }
    }
    throw bad(type, value, "unknown type");
  }

  #array(type: DBusType, value: unknown): void {
    const elem = type.elem!;
    this.align(4);
    const lenAt = this.#pos;
    this.u32(0);
    this.align(elem.align);
    const start = this.#pos;
    if (elem.code === "y" && (value instanceof Uint8Array)) {
      this.bytes(value);
    } else if (elem.code === "{") {
      const [kt, vt] = elem.fields!;
      const entries = value instanceof Map
        ? value.entries()
        : value !== null && typeof value === "object" && !Array.isArray(value) &&
            (kt.code === "s" || kt.code === "o" || kt.code === "g")
        ? Object.entries(value)
        : undefined;
      if (entries === undefined) throw bad(type, value, "expected a Map");
      for (const [k, v] of entries) {
        this.align(8);
        this.value(kt, k);
        this.value(vt, v);
      }
    } else {
      if (!Array.isArray(value)) throw bad(type, value, "expected an array");
      for (const v of value) this.value(elem, v);
    }
    const len = this.#pos - start;
    if (len > MAX_ARRAY_BYTES) {
      throw new ParameterError(
        `Cannot encode D-Bus array "${type.signature}": ${len} bytes exceed ${MAX_ARRAY_BYTES}`,
      );
    }
    this.#view.setUint32(lenAt, len, this.#le);
  }

  /**
   * Write values of a signature.
   *
   * @param signature The signature.
   * @param values One value per complete type.
   * @throws {ParameterError} When the signature is invalid or a value does not fit.
   */
  values(signature: string, values: readonly unknown[]): void {
    let types: readonly DBusType[];
    try {
      types = parseSignature(signature);
    } catch (e) {
      throw new ParameterError(
        `Cannot encode D-Bus values: signature "${signature}" is invalid: ${(e as Error).message}`,
      );
    }
    if (types.length !== values.length) {
      throw new ParameterError(
        `Cannot encode D-Bus values: signature "${signature}" needs ${types.length} values, got ${values.length}`,
      );
    }
    for (let i = 0; i < types.length; i++) this.value(types[i], values[i]);
  }
}

function isInt(v: unknown, min: number, max: number): v is number {
  return typeof v === "number" && Number.isInteger(v) && v >= min && v <= max;
}

/** Why bytes could not be decoded: the peer sent something invalid. */
export class DecodeError extends Error {
  /**
   * @param message What was wrong.
   */
  constructor(message: string) {
    super(message);
    this.name = "DecodeError";
  }
}

/** Options of the {@linkcode Reader}. */
export interface ReaderOptions {
  /** The byte order. @default {"l"} */
  endian?: Endian;
  /** The first byte to read. @default {0} */
  start?: number;
  /** One past the last byte to read. @default {the length} */
  end?: number;
  /** The offset alignment counts from. @default {0} */
  base?: number;
  /** How many values may be decoded in all. @default {Infinity} */
  maxValues?: number;
  /** How many file descriptors came with the bytes. @default {Infinity} */
  fds?: number;
}

/**
 * Reads values from bytes. Every length is checked against what remains, so
 * no input makes it read out of bounds, loop without progress, or allocate
 * more than a small multiple of the input; `maxValues` bounds the number of
 * JavaScript values one input can produce.
 */
export class Reader {
  #buf: Uint8Array;
  #view: DataView;
  #pos: number;
  #end: number;
  #base: number;
  #le: boolean;
  #values = 0;
  #maxValues: number;
  #fds: number;

  /**
   * @param buf The bytes.
   * @param options `endian`, `start` (first byte to read), `end`, `base`
   *   (the offset alignment counts from), `maxValues`, and `fds` (how many
   *   descriptors came with the bytes: every `h` must index one of them).
   */
  constructor(buf: Uint8Array, options: ReaderOptions = {}) {
    this.#buf = buf;
    this.#view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    this.#pos = options.start ?? 0;
    this.#end = options.end ?? buf.length;
    this.#base = options.base ?? 0;
    this.#le = (options.endian ?? "l") === "l";
    this.#maxValues = options.maxValues ?? Infinity;
    this.#fds = options.fds ?? Infinity;
  }

  /** The read position. */
  get pos(): number {
    return this.#pos;
  }

  /** Whether every byte up to the end was read. */
  get done(): boolean {
    return this.#pos === this.#end;
  }

  #need(n: number): void {
    if (this.#pos + n > this.#end) throw new DecodeError("a value runs past the end of its data");
  }

  /** Skip padding to a multiple of `n`; padding must be zero. */
  align(n: number): void {
    const rel = this.#pos - this.#base;
    const pad = (n - (rel % n)) % n;
    if (pad === 0) return;
    this.#need(pad);
    for (let i = 0; i < pad; i++) {
      if (this.#buf[this.#pos + i] !== 0) throw new DecodeError("padding is not zero");
    }
    this.#pos += pad;
  }

  /** Read one byte. */
  u8(): number {
    this.#need(1);
    return this.#buf[this.#pos++];
  }

  /** Read an aligned 32-bit unsigned integer. */
  u32(): number {
    this.align(4);
    this.#need(4);
    const v = this.#view.getUint32(this.#pos, this.#le);
    this.#pos += 4;
    return v;
  }

  #text(len: number): string {
    this.#need(len + 1);
    const at = this.#pos;
    if (this.#buf[at + len] !== 0) throw new DecodeError("a string is not NUL-terminated");
    let ascii = true;
    for (let i = at; i < at + len; i++) {
      const c = this.#buf[i];
      if (c === 0) throw new DecodeError("a string contains a NUL byte");
      if (c >= 0x80) ascii = false;
    }
    let s: string;
    if (ascii && len <= 64) {
      s = "";
      for (let i = at; i < at + len; i++) s += String.fromCharCode(this.#buf[i]);
    } else {
      try {
        s = decoder.decode(this.#buf.subarray(at, at + len));
      } catch {
        throw new DecodeError("a string is not valid UTF-8");
      }
    }
    this.#pos = at + len + 1;
    return s;
  }

  /** Read a signature (`g`), validated. */
  signature(): string {
    const len = this.u8();
    const s = this.#text(len);
    const problem = signatureProblem(s);
    if (problem !== undefined) throw new DecodeError(`signature "${s}" is invalid: ${problem}`);
    return s;
  }

  #count(): void {
    if (++this.#values > this.#maxValues) {
      throw new DecodeError(`a message holds more than ${this.#maxValues} values`);
    }
  }

  /**
   * Read one value of a type.
   *
   * @param type The type.
   * @param depth How deeply nested this value is.
   * @returns The value.
   * @throws {DecodeError} When the bytes are not a valid value of the type.
   */
  value(type: DBusType, depth = 0): unknown {
    this.#count();
    const le = this.#le;
    switch (type.code) {
      case "y":
        return this.u8();
      case "b": {
        const v = this.u32();
        if (v > 1) throw new DecodeError(`boolean value ${v} is not 0 or 1`);
        return v === 1;
      }
      case "n":
      case "q": {
        this.align(2);
        this.#need(2);
        const v = type.code === "n"
          ? this.#view.getInt16(this.#pos, le)
          : this.#view.getUint16(this.#pos, le);
        this.#pos += 2;
        return v;
      }
      case "i": {
        this.align(4);
        this.#need(4);
        const v = this.#view.getInt32(this.#pos, le);
        this.#pos += 4;
        return v;
      }
      case "u":
        return this.u32();
      case "h": {
        const v = this.u32();
        if (v >= this.#fds) throw new DecodeError(`file descriptor index ${v} is out of range`);
        return v;
      }
      case "x":
      case "t": {
        this.align(8);
        this.#need(8);
        const v = type.code === "x"
          ? this.#view.getBigInt64(this.#pos, le)
          : this.#view.getBigUint64(this.#pos, le);
        this.#pos += 8;
        return v;
      }
      case "d": {
        this.align(8);
        this.#need(8);
        const v = this.#view.getFloat64(this.#pos, le);
        this.#pos += 8;
        return v;
      }
      case "s":
        return this.#text(this.u32());
      case "o": {
        const s = this.#text(this.u32());
        if (!isObjectPath(s)) throw new DecodeError(`"${s}" is not a valid object path`);
        return s;
      }
      case "g":
        return this.signature();
      case "v": {
        if (depth + 1 > MAX_VALUE_DEPTH) {
          throw new DecodeError(`values nest deeper than ${MAX_VALUE_DEPTH}`);
        }
        const sig = this.signature();
        let inner: DBusType;
        try {
          inner = parseSingleType(sig);
        } catch (e) {
          throw new DecodeError(`variant signature "${sig}" is invalid: ${(e as Error).message}`);
        }
        return new Variant(sig, this.value(inner, depth + 1));
      }
      case "(": {
        if (depth + 1 > MAX_VALUE_DEPTH) {
          throw new DecodeError(`values nest deeper than ${MAX_VALUE_DEPTH}`);
        }
        this.align(8);
        const fields = type.fields!;
        const out = new Array(fields.length);
        for (let i = 0; i < fields.length; i++) out[i] = this.value(fields[i], depth + 1);
        return out;
      }
      case "a":
        return this.#array(type, depth);
    }
    throw new DecodeError(`unknown type "${type.signature}"`);
  }

  #array(type: DBusType, depth: number): unknown {
    if (depth + 1 > MAX_VALUE_DEPTH) {
      throw new DecodeError(`values nest deeper than ${MAX_VALUE_DEPTH}`);
    }
    const len = this.u32();
    if (len > MAX_ARRAY_BYTES) {
      throw new DecodeError(`array of ${len} bytes exceeds ${MAX_ARRAY_BYTES}`);
    }
    const elem = type.elem!;
    this.align(elem.align);
    this.#need(len);
    const end = this.#pos + len;
    if (elem.code === "y") {
      // A plain Uint8Array copy (the input may be a Node Buffer, whose
      // slice() would be a Buffer sharing memory).
      const out = new Uint8Array(len);
      out.set(this.#buf.subarray(this.#pos, end));
      this.#pos = end;
      return out;
    }
    if (elem.code === "{") {
      const [kt, vt] = elem.fields!;
      const map = new Map<unknown, unknown>();
      while (this.#pos < end) {
        this.#count();
        this.align(8);
        const k = this.value(kt, depth + 2);
        map.set(k, this.value(vt, depth + 2));
      }
      if (this.#pos !== end) throw new DecodeError("an array's elements overrun its length");
      return map;
    }
    const out: unknown[] = [];
    while (this.#pos < end) out.push(this.value(elem, depth + 1));
    if (this.#pos !== end) throw new DecodeError("an array's elements overrun its length");
    return out;
  }

  /**
   * Read values of a signature.
   *
   * @param signature The signature (already validated).
   * @returns One value per complete type.
   */
  values(signature: string): unknown[] {
    let types: readonly DBusType[];
    try {
      types = parseSignature(signature);
    } catch (e) {
      throw new DecodeError(`signature "${signature}" is invalid: ${(e as Error).message}`);
    }
    const out = new Array(types.length);
    for (let i = 0; i < types.length; i++) out[i] = this.value(types[i]);
    return out;
  }
}

/**
 * Encode values to standalone bytes (alignment counted from the first byte).
 *
 * @param signature The signature.
 * @param values One value per complete type.
 * @param endian The byte order. @default {"l"}
 * @returns The bytes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const bytes = encodeValues("yu", [1, 2]);
 * assert.deepEqual([...bytes], [1, 0, 0, 0, 2, 0, 0, 0]);
 * assert.deepEqual(decodeValues("yu", bytes), [1, 2]);
 * ```
 */
export function encodeValues(
  signature: string,
  values: readonly unknown[],
  endian: Endian = "l",
): Uint8Array {
  const w = new Writer(endian);
  w.values(signature, values);
  return w.view().slice();
}

/**
 * Decode standalone bytes (alignment counted from the first byte); every byte
 * must be used.
 *
 * @param signature The signature.
 * @param bytes The bytes.
 * @param endian The byte order. @default {"l"}
 * @returns One value per complete type.
 * @throws {DecodeError} When the bytes are invalid.
 */
export function decodeValues(
  signature: string,
  bytes: Uint8Array,
  endian: Endian = "l",
): unknown[] {
  const r = new Reader(bytes, { endian });
  const out = r.values(signature);
  if (!r.done) throw new DecodeError("bytes remain after the last value");
  return out;
}

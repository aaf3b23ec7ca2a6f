/**
 * JSON as OpenHarmony's cJSON reads it (`cJSON_ParseWithLength`), so that we
 * accept and refuse the same payloads a device does. Internal.
 *
 * Where cJSON differs from `JSON.parse`, and we follow cJSON:
 * - any byte up to 0x20 counts as whitespace between tokens;
 * - numbers are what `strtod` reads from the run of `0-9 + - e E .` (`+1`,
 *   `.5`, `1.` and `01` are numbers);
 * - raw control characters inside strings are kept;
 * - whatever follows the first complete value is ignored (a trailing NUL, as
 *   in basic info and reference-count messages, or anything else);
 * - a repeated key keeps its first value (cJSON looks keys up front to back);
 * - nesting deeper than 1000 fails (`CJSON_NESTING_LIMIT`).
 *
 * @module
 */
import { utf8Length } from "../../_utf8.ts";

/** A parsed JSON value. */
export type JsonValue = null | boolean | number | string | JsonValue[] | {
  [key: string]: JsonValue;
};

/** A JSON object. */
export type JsonObject = { [key: string]: JsonValue };

const NESTING_LIMIT = 1000;
const utf8 = new TextDecoder();
const NUMBER = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?/;

class Parser {
  pos = 0;
  constructor(readonly b: Uint8Array) {}

  skip(): void {
    const b = this.b;
    while (this.pos < b.length && b[this.pos] <= 0x20) this.pos++;
  }

  value(depth: number): JsonValue | undefined {
    const b = this.b;
    if (this.pos >= b.length) return undefined;
    const c = b[this.pos];
    if (c === 0x7b) return this.object(depth + 1);
    if (c === 0x5b) return this.array(depth + 1);
    if (c === 0x22) return this.string();
    if (this.literal("null")) return null;
    if (this.literal("false")) return false;
    if (this.literal("true")) return true;
    if (c === 0x2d || c === 0x2b || c === 0x2e || (c >= 0x30 && c <= 0x39)) return this.number();
    return undefined;
  }

  literal(word: string): boolean {
    const b = this.b;
    if (this.pos + word.length > b.length) return false;
    for (let i = 0; i < word.length; i++) {
      if (b[this.pos + i] !== word.charCodeAt(i)) return false;
    }
    this.pos += word.length;
    return true;
  }

  number(): number | undefined {
    const b = this.b;
    let end = this.pos;
    let run = "";
    while (end < b.length && end - this.pos < 63) {
      const c = b[end];
      if (
        (c >= 0x30 && c <= 0x39) || c === 0x2b || c === 0x2d || c === 0x2e || c === 0x45 ||
        c === 0x65
      ) {
        run += String.fromCharCode(c);
        end++;
      } else break;
    }
    const m = NUMBER.exec(run);
    if (m === null) return undefined;
    this.pos += m[0].length;
    return Number(m[0]);
  }

  string(): string | undefined {
    const b = this.b;
    let i = this.pos + 1;
    const parts: string[] = [];
    let start = i;
    while (i < b.length && b[i] !== 0x22) {
      if (b[i] !== 0x5c) {
        i++;
        continue;
      }
      if (i + 1 >= b.length) return undefined;
      parts.push(utf8.decode(b.subarray(start, i)));
      const e = b[i + 1];
      i += 2;
      switch (e) {
        case 0x62:
          parts.push("\b");
          break;
        case 0x66:
          parts.push("\f");
          break;
        case 0x6e:
          parts.push("\n");
          break;
        case 0x72:
          parts.push("\r");
          break;
        case 0x74:
          parts.push("\t");
          break;
        case 0x22:
        case 0x5c:
        case 0x2f:
          parts.push(String.fromCharCode(e));
          break;
        case 0x75: {
          const first = hex4(b, i);
          if (first < 0 || (first >= 0xdc00 && first <= 0xdfff)) return undefined;
          i += 4;
          if (first >= 0xd800 && first <= 0xdbff) {
            if (b[i] !== 0x5c || b[i + 1] !== 0x75) return undefined;
            const second = hex4(b, i + 2);
            if (second < 0xdc00 || second > 0xdfff) return undefined;
            i += 6;
            parts.push(String.fromCharCode(first, second));
          } else {
            parts.push(String.fromCharCode(first));
          }
          break;
        }
        default:
          return undefined;
      }
      start = i;
    }
    if (i >= b.length) return undefined;
    parts.push(utf8.decode(b.subarray(start, i)));
    this.pos = i + 1;
    return parts.join("");
  }

  array(depth: number): JsonValue[] | undefined {
    if (depth > NESTING_LIMIT) return undefined;
    const out: JsonValue[] = [];
    this.pos++;
    this.skip();
    if (this.b[this.pos] === 0x5d) {
      this.pos++;
      return out;
    }
    for (;;) {
      this.skip();
      const v = this.value(depth);
      if (v === undefined) return undefined;
      out.push(v);
      this.skip();
      const c = this.b[this.pos];
      this.pos++;
      if (c === 0x5d) return out;
      if (c !== 0x2c) return undefined;
    }
  }

  object(depth: number): JsonObject | undefined {
    if (depth > NESTING_LIMIT) return undefined;
    const out: JsonObject = {};
    this.pos++;
    this.skip();
    if (this.b[this.pos] === 0x7d) {
      this.pos++;
      return out;
    }
    for (;;) {
      this.skip();
      if (this.b[this.pos] !== 0x22) return undefined;
      const key = this.string();
      if (key === undefined) return undefined;
      this.skip();
      if (this.b[this.pos] !== 0x3a) return undefined;
      this.pos++;
      this.skip();
      const v = this.value(depth);
      if (v === undefined) return undefined;
      if (!Object.hasOwn(out, key)) {
        Object.defineProperty(out, key, {
          value: v,
          enumerable: true,
          writable: true,
          configurable: true,
        });
      }
      this.skip();
      const c = this.b[this.pos];
      this.pos++;
      if (c === 0x7d) return out;
      if (c !== 0x2c) return undefined;
    }
  }
}

function hex4(b: Uint8Array, at: number): number {
  if (at + 4 > b.length) return -1;
  let n = 0;
  for (let k = 0; k < 4; k++) {
    const c = b[at + k];
    const d = c >= 0x30 && c <= 0x39
      ? c - 0x30
      : c >= 0x41 && c <= 0x46
      ? c - 0x37
      : c >= 0x61 && c <= 0x66
      ? c - 0x57
      : -1;
    if (d < 0) return -1;
    n = n * 16 + d;
  }
  return n;
}

/**
 * Parse the first JSON value in `bytes` as cJSON does.
 *
 * @param bytes The payload.
 * @returns The value, or `undefined` when cJSON would fail.
 */
export function parseJson(bytes: Uint8Array): JsonValue | undefined {
  const p = new Parser(bytes);
  p.skip();
  return p.value(0);
}

/**
 * Parse a JSON object as cJSON does.
 *
 * @param bytes The payload.
 * @returns The object, or `undefined` when the payload is not one.
 */
export function parseObject(bytes: Uint8Array): JsonObject | undefined {
  const v = parseJson(bytes);
  return typeof v === "object" && v !== null && !Array.isArray(v) ? v : undefined;
}

/** `(int32_t)double` as an ARM64 device computes it (saturating; NaN is 0). */
export function toInt32(x: number): number {
  if (Number.isNaN(x)) return 0;
  if (x >= 2147483647) return 2147483647;
  if (x <= -2147483648) return -2147483648;
  return Math.trunc(x);
}

/**
 * `GetJsonObjectNumberItem`: a number not below 0, as an int32.
 *
 * @param o The object.
 * @param key The key.
 * @returns The number, or `undefined`.
 */
export function unsignedItem(o: JsonObject, key: string): number | undefined {
  const v = o[key];
  return typeof v === "number" && v >= 0 ? toInt32(v) : undefined;
}

/**
 * `GetJsonObjectSignedNumberItem`: any number, as an int32.
 *
 * @param o The object.
 * @param key The key.
 * @returns The number, or `undefined`.
 */
export function signedItem(o: JsonObject, key: string): number | undefined {
  const v = o[key];
  return typeof v === "number" ? toInt32(v) : undefined;
}

/**
 * `GetJsonObjectStringItem`: a string shorter than `size` UTF-8 bytes, cut at
 * its first NUL as C reads it.
 *
 * @param o The object.
 * @param key The key.
 * @param size The C buffer size (the string must be at most `size - 1` bytes).
 * @returns The string, or `undefined`.
 */
export function stringItem(o: JsonObject, key: string, size: number): string | undefined {
  const v = o[key];
  if (typeof v !== "string") return undefined;
  const nul = v.indexOf("\0");
  const s = nul >= 0 ? v.slice(0, nul) : v;
  return utf8Length(s) < size ? s : undefined;
}

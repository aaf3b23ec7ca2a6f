/**
 * UTF-8 without allocating: the length of a string, and writing it into a
 * buffer the caller owns. Used where strings are encoded often (control
 * messages, name checks).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.equal(utf8Length("é€😀"), 2 + 3 + 4);
 * const out = new Uint8Array(2);
 * writeUtf8("é", out, 0);
 * assert.deepEqual([...out], [0xc3, 0xa9]);
 * ```
 *
 * @module
 */

/**
 * UTF-8 length of a string, without encoding it (lone surrogates count as
 * U+FFFD, as `TextEncoder` writes them).
 *
 * @param s The string.
 * @returns Its length in UTF-8 bytes.
 */
export function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n += 4;
        i++;
      } else n += 3;
    } else n += 3;
  }
  return n;
}

/**
 * Write a string as UTF-8, as `TextEncoder` would, into `out` at `at`.
 *
 * @param s The string.
 * @param out The buffer (room for {@linkcode utf8Length} bytes at `at`).
 * @param at Where to start.
 */
export function writeUtf8(s: string, out: Uint8Array, at: number): void {
  let p = at;
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i);
    if (c < 0x80) {
      out[p++] = c;
      continue;
    }
    if (c < 0x800) {
      out[p++] = 0xc0 | (c >> 6);
      out[p++] = 0x80 | (c & 63);
      continue;
    }
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
        i++;
        out[p++] = 0xf0 | (c >> 18);
        out[p++] = 0x80 | ((c >> 12) & 63);
        out[p++] = 0x80 | ((c >> 6) & 63);
        out[p++] = 0x80 | (c & 63);
        continue;
      }
    }
    if (c >= 0xd800 && c <= 0xdfff) c = 0xfffd;
    out[p++] = 0xe0 | (c >> 12);
    out[p++] = 0x80 | ((c >> 6) & 63);
    out[p++] = 0x80 | (c & 63);
  }
}

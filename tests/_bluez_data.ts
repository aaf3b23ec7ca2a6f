/**
 * Deterministic test data for the BLE tests: values of pseudo-random sizes
 * and bytes, and a digest of a sequence of values (order and boundaries
 * included).
 *
 * @module
 */

/**
 * `n` values of 1..`max` bytes, the same for the same seed.
 *
 * @param seed The seed.
 * @param n How many.
 * @param max The largest size.
 * @returns The values.
 */
export function values(seed: number, n: number, max: number): Uint8Array[] {
  let s = (seed * 2654435761) >>> 0 || 1;
  const next = () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
  const out: Uint8Array[] = [];
  for (let i = 0; i < n; i++) {
    const v = new Uint8Array(1 + (next() % max));
    for (let k = 0; k < v.length; k++) v[k] = next() & 0xff;
    out.push(v);
  }
  return out;
}

/**
 * FNV-1a over each value's length and bytes, in order.
 *
 * @param vs The values.
 * @returns The digest, in hex.
 */
export function digest(vs: readonly Uint8Array[]): string {
  let h = 0x811c9dc5;
  const mix = (b: number) => {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  };
  for (const v of vs) {
    mix(v.length & 0xff);
    mix(v.length >> 8);
    for (const b of v) mix(b);
  }
  return h.toString(16).padStart(8, "0");
}

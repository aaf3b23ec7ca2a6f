/**
 * The runtime's native CRC-32 (IEEE, as zlib): `Bun.hash.crc32` on Bun,
 * `crc32` from `node:zlib` on Deno, Bun and Node >= 20.15. Several times
 * faster than any CRC in WebAssembly, which has no carry-less multiply
 * (`docs/spec.md` section 6); the root modules hand the fastest one to the
 * codec.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const digits = new TextEncoder().encode("123456789");
 * for (const source of nativeCrcSources()) assert.equal(source.crc32(digits), 0xcbf43926);
 * ```
 *
 * @module
 */
import * as zlib from "node:zlib";
import type { CrcSource } from "../core/proto/frame.ts";

interface BunHash {
  hash?: { crc32?: (data: Uint8Array, seed?: number) => number };
}

let sources: readonly CrcSource[] | undefined;

/**
 * The native CRC-32 sources of this runtime, fastest first.
 *
 * @returns The sources (possibly none).
 */
export function nativeCrcSources(): readonly CrcSource[] {
  if (sources !== undefined) return sources;
  const out: CrcSource[] = [];
  const bun = (globalThis as { Bun?: BunHash }).Bun;
  const bunCrc = bun?.hash?.crc32;
  if (typeof bunCrc === "function") {
    const hash = bun!.hash!;
    out.push({
      name: "bun",
      crc32: (data: Uint8Array, seed = 0): number => hash.crc32!(data, seed) >>> 0,
    });
  }
  const z = zlib as unknown as { crc32?: (data: Uint8Array, value?: number) => number };
  if (typeof z.crc32 === "function") {
    const fn = z.crc32;
    out.push({
      name: "node:zlib",
      crc32: (data: Uint8Array, seed = 0): number => fn(data, seed) >>> 0,
    });
  }
  sources = Object.freeze(out);
  return sources;
}

/**
 * The fastest native CRC-32 source, if the runtime has one.
 *
 * @returns The source, or `undefined` (use the codec's wasm CRC).
 */
export function nativeCrc(): CrcSource | undefined {
  return nativeCrcSources()[0];
}

/**
 * What the fuzz tests of the parsers that read peer bytes share: a run of
 * cases for a bounded time (`LINKWEAVE_FUZZ_MS`, 400 ms by default), each
 * with its own seed, which a failure names (`LINKWEAVE_FUZZ_SEED=<seed>`
 * replays it as the first case); mutations of valid inputs; random chunking.
 *
 * @module
 */
import assert from "node:assert/strict";
import process from "node:process";
import { prng } from "./framing.ts";

/** A random integer in `[0, n)`. */
export type Rand = (n: number) => number;

/** The seed of the first case (random unless `LINKWEAVE_FUZZ_SEED` is set). */
export const FUZZ_SEED: number = Number(
  process.env.LINKWEAVE_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31),
) >>> 0;
/** How long each fuzz target runs, ms (`LINKWEAVE_FUZZ_MS`). */
export const FUZZ_MS: number = Number(process.env.LINKWEAVE_FUZZ_MS ?? 400);

/**
 * Run `body` with a new seed per case until the time is spent (and at least
 * `min` cases ran); a failing case names its seed.
 *
 * @param name The target, for the message.
 * @param body One case.
 * @param min The fewest cases. @default {20}
 * @returns The number of cases run.
 */
export function fuzz(name: string, body: (rnd: Rand) => void, min = 20): number {
  const start = Date.now();
  let n = 0;
  for (; Date.now() - start < FUZZ_MS || n < min; n++) {
    const seed = (FUZZ_SEED + n * 0x9e3779b1) >>> 0;
    try {
      body(prng(seed));
    } catch (e) {
      assert.fail(
        `${name}: case ${n} failed; LINKWEAVE_FUZZ_SEED=${seed} replays it: ${
          (e as Error).stack ?? e
        }`,
      );
    }
  }
  return n;
}

/** Values that sit on the edges of the fields a parser reads. */
const EDGES = [0, 1, 2, 4, 5, 8, 17, 18, 22, 255, 256, 1024, 1025, 4096, 65535, 65536, 0x7fffffff];

/**
 * A mutation of `base`: bit flips, byte sets, 16- and 32-bit edge values,
 * inserts, cuts, or noise.
 *
 * @param rnd The randomness.
 * @param base The valid input.
 * @returns A new array.
 */
export function mutate(rnd: Rand, base: Uint8Array): Uint8Array {
  let b = base.slice();
  for (let k = 1 + rnd(4); k > 0; k--) {
    switch (rnd(7)) {
      case 0:
        if (b.length > 0) b[rnd(b.length)] ^= 1 << rnd(8);
        break;
      case 1:
        if (b.length > 0) b[rnd(b.length)] = rnd(256);
        break;
      case 2:
        if (b.length >= 4) {
          const v = new DataView(b.buffer, b.byteOffset, b.length);
          const at = rnd(b.length - 3);
          const x = EDGES[rnd(EDGES.length)] + rnd(3) - 1;
          if (rnd(2) === 0) v.setUint16(at, x & 0xffff);
          else v.setUint32(at, x >>> 0);
        }
        break;
      case 3: {
        const at = rnd(b.length + 1);
        const ins = Uint8Array.from({ length: 1 + rnd(8) }, () => rnd(256));
        const out = new Uint8Array(b.length + ins.length);
        out.set(b.subarray(0, at));
        out.set(ins, at);
        out.set(b.subarray(at), at + ins.length);
        b = out;
        break;
      }
      case 4:
        b = b.slice(0, rnd(b.length + 1));
        break;
      case 5:
        break; // unchanged this round
      default:
        b = Uint8Array.from({ length: rnd(64) }, () => rnd(256));
    }
  }
  return b;
}

/**
 * Split bytes at random places (single bytes to large pieces).
 *
 * @param rnd The randomness.
 * @param bytes The bytes.
 * @returns Views of `bytes`, in order.
 */
export function chunks(rnd: Rand, bytes: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let p = 0; p < bytes.length;) {
    const n = [1, 3, 18, 22, 100, 1500, 70_000][rnd(7)];
    out.push(bytes.subarray(p, p + n));
    p += n;
  }
  return out;
}

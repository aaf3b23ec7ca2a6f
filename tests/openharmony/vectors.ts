/**
 * OpenHarmony's own bytes (`tests/vectors/openharmony-gatt-vectors.json`, a
 * copy of `../shared/reference/openharmony-gatt-vectors.json`), typed for the
 * tests, and small helpers shared by the OpenHarmony profile's tests.
 *
 * @module
 */
import raw from "../vectors/openharmony-gatt-vectors.json" with { type: "json" };

/** One message OpenHarmony emitted or was fed. */
export interface VectorMessage {
  tag?: string;
  ohSide?: "server" | "client";
  char: "2B00" | "2B01";
  gattOp?: string;
  module?: number;
  writeCount?: number;
  messageHex: string;
  decoded: Record<string, unknown>;
  writes: string[];
}

/** One step of a transcript. */
export interface Step {
  t: number;
  actor: "peer" | "app" | "clock";
  action: string;
  mtu?: number;
  char?: "2B00" | "2B01";
  messageHex?: string;
  decoded?: Record<string, unknown>;
  writes?: string[];
  oh: VectorMessage[];
  app: Record<string, unknown>[];
  linkDrops: { ohSide: string }[];
}

/** A whole conversation at one MTU. */
export interface Transcript {
  scenario: string;
  mtu: number;
  ohRole: "server" | "client" | "client+server";
  about: string;
  steps: Step[];
  golden: Record<string, VectorMessage>;
}

/** The vectors file. */
export interface Vectors {
  identities: {
    oh: {
      udid: string;
      networkId: string;
      devtype: number;
      bundleName: string;
      serverOrConnectionName: string;
    };
    peer: { udid: string; mac: string; devtype: number };
  };
  constants: Record<string, number>;
  golden: Record<string, Record<string, VectorMessage>>;
  transcripts: Transcript[];
}

/** The vectors. */
export const vectors: Vectors = raw as unknown as Vectors;

/** Every MTU the vectors cover. */
export const MTUS: number[] = Object.keys(vectors.golden).map(Number);

/**
 * Bytes from hex.
 *
 * @param hex Hex digits.
 * @returns The bytes.
 */
export function fromHex(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length >> 1);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}

/**
 * Hex from bytes.
 *
 * @param b The bytes.
 * @returns Lower-case hex.
 */
export function hex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/**
 * A small seeded PRNG (mulberry32), so a failing fuzz case can be replayed.
 *
 * @param seed The seed.
 * @returns A function giving floats in [0, 1).
 */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

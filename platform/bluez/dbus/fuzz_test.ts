/**
 * Fuzzing of the D-Bus codec: random types and values round-trip in both
 * byte orders, and random or mutated messages never make the reader throw
 * anything but its own errors, loop, or hold more than it was given. Each
 * test prints its seed when it fails; `LINKWEAVE_FUZZ_SEED=<n>` replays one.
 */
import assert from "node:assert/strict";
import process from "node:process";
import { describe, it } from "node:test";
import { DecodeError, decodeValues, encodeValues, type Endian, Variant } from "./marshal.ts";
import { encodeMessage, type MessageInit, MessageReader, MessageType } from "./message.ts";
import { parseSignature } from "./signature.ts";

/** Iterations per test: bounded work, not a timed test. */
const ROUNDS = 1500;

function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 0x100000000;
  };
}

function seedOf(): number {
  const env = process.env.LINKWEAVE_FUZZ_SEED;
  return env !== undefined ? Number(env) : Math.floor(Math.random() * 0xffffffff);
}

class Gen {
  r: () => number;
  constructor(seed: number) {
    this.r = rng(seed);
  }
  int(n: number): number {
    return Math.floor(this.r() * n);
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)];
  }
  signature(depth = 0): string {
    const basic = "ybnqiuxtdsog";
    const k = depth > 3 ? 0 : this.int(10);
    if (k < 5) return this.pick([...basic]);
    if (k === 5) return "v";
    if (k === 6) return `a${this.signature(depth + 1)}`;
    if (k === 7) return `a{${this.pick([...basic])}${this.signature(depth + 1)}}`;
    if (k === 8) return "ay";
    const n = 1 + this.int(3);
    return `(${Array.from({ length: n }, () => this.signature(depth + 1)).join("")})`;
  }
  text(): string {
    const chars = ["a", "Z", "_", "é", "✓", "🙂", " ", "/"];
    return Array.from({ length: this.int(8) }, () => this.pick(chars)).join("");
  }
  value(sig: string, depth = 0): unknown {
    switch (sig[0]) {
      case "y":
        return this.int(256);
      case "b":
        return this.r() < 0.5;
      case "n":
        return this.int(65536) - 32768;
      case "q":
        return this.int(65536);
      case "i":
        return this.int(0x100000000) - 0x80000000;
      case "u":
      case "h":
        return this.int(0x100000000);
      case "x":
        return BigInt(this.int(0x100000000) - 0x80000000) * BigInt(this.int(0x100000000));
      case "t":
        return BigInt(this.int(0x100000000)) * BigInt(this.int(0x100000000));
      case "d":
        return this.pick([0, -1.5, 1e300, Number.MIN_VALUE, this.r()]);
      case "s":
        return this.text();
      case "o":
        return this.pick(["/", "/org/bluez", "/a/b_1/C2"]);
      case "g":
        return this.signature(2);
      case "v": {
        const inner = this.signature(depth + 2);
        return new Variant(inner, this.value(inner, depth + 1));
      }
      case "a": {
        const n = this.int(4);
        if (sig === "ay") return new Uint8Array(Array.from({ length: n * 3 }, () => this.int(256)));
        if (sig[1] === "{") {
          const key = sig[2];
          const valueSig = sig.slice(3, -1);
          const m = new Map();
          for (let i = 0; i < n; i++) m.set(this.value(key), this.value(valueSig, depth + 1));
          return m;
        }
        return Array.from({ length: n }, () => this.value(sig.slice(1), depth + 1));
      }
      case "(":
        return splitStruct(sig).map((f) => this.value(f, depth + 1));
    }
    throw new Error(`no generator for "${sig}"`);
  }
}

/** The field signatures of a struct signature. */
function splitStruct(sig: string): string[] {
  return parseSignature(sig)[0].fields!.map((f) => f.signature);
}

function message(g: Gen, serial: number): Uint8Array {
  const sig = Array.from({ length: 1 + g.int(3) }, () => g.signature()).join("");
  const types = [
    MessageType.METHOD_CALL,
    MessageType.METHOD_RETURN,
    MessageType.ERROR,
    MessageType.SIGNAL,
  ];
  const type = g.pick(types);
  const m: MessageInit = {
    type,
    serial,
    path: "/org/linkweave/x",
    interface: "org.linkweave.Fuzz",
    member: "M",
    replySerial: 1,
    errorName: "org.linkweave.Error.X",
    destination: ":1.7",
    signature: sig,
    body: [],
  };
  m.body = parseSignature(sig).map((t) => g.value(t.signature));
  return encodeMessage(m, undefined, g.r() < 0.5 ? "l" : "B").slice();
}

/** Feed bytes in random chunks; only the reader's own errors are allowed. */
function feed(g: Gen, bytes: Uint8Array, fds: number[]): void {
  const r = new MessageReader({ maxMessageBytes: 1 << 16, maxValues: 5000 });
  let at = 0;
  let steps = 0;
  while (at < bytes.length) {
    const n = 1 + g.int(64);
    r.push(bytes.slice(at, at + n), at === 0 ? fds : []);
    at += n;
    for (;;) {
      if (++steps > 100_000) throw new Error("the reader does not make progress");
      try {
        if (r.next() === undefined) break;
      } catch (e) {
        if (!(e instanceof DecodeError)) throw e;
        if (e.name === "DecodeError") return; // stream failed: the connection would close
      }
    }
    assert.ok(r.buffered <= bytes.length, "the reader holds more than it was given");
  }
}

describe("D-Bus codec fuzzing", () => {
  it("round-trips random types and values in both byte orders", () => {
    const seed = seedOf();
    const g = new Gen(seed);
    for (let i = 0; i < ROUNDS; i++) {
      const sig = g.signature();
      const value = g.value(sig);
      const endian: Endian = g.r() < 0.5 ? "l" : "B";
      try {
        assert.deepEqual(decodeValues(sig, encodeValues(sig, [value], endian), endian), [value]);
      } catch (e) {
        throw new Error(`seed ${seed}, round ${i}, "${sig}": ${(e as Error).message}`);
      }
    }
  });

  it("survives mutated messages (byte flips, truncation, insertion, splices)", () => {
    const seed = seedOf();
    const g = new Gen(seed);
    for (let i = 0; i < ROUNDS; i++) {
      const b = message(g, 1 + i);
      const kind = g.int(5);
      let m: Uint8Array;
      if (kind === 0) {
        m = b.slice();
        for (let k = 0; k < 1 + g.int(4); k++) m[g.int(m.length)] = g.int(256);
      } else if (kind === 1) {
        m = b.slice(0, g.int(b.length));
      } else if (kind === 2) {
        const at = g.int(b.length);
        const junk = Array.from({ length: 1 + g.int(16) }, () => g.int(256));
        m = new Uint8Array([...b.subarray(0, at), ...junk, ...b.subarray(at)]);
      } else if (kind === 3) {
        // A length field (body, fields, or one inside) set to something large.
        m = b.slice();
        const at = g.pick([4, 12, 16 + 4 * g.int(8)]);
        new DataView(m.buffer).setUint32(Math.min(at, m.length - 4), g.int(0x100000000), true);
      } else {
        const other = message(g, 5000 + i);
        m = new Uint8Array([...b.subarray(0, g.int(b.length)), ...other]);
      }
      try {
        feed(g, m, g.r() < 0.2 ? [g.int(1000)] : []);
      } catch (e) {
        throw new Error(`seed ${seed}, round ${i}: ${(e as Error).stack}`);
      }
    }
  });

  it("survives random bytes behind a valid header", () => {
    const seed = seedOf();
    const g = new Gen(seed);
    for (let i = 0; i < ROUNDS; i++) {
      const n = 16 + g.int(400);
      const m = new Uint8Array(n);
      for (let k = 0; k < n; k++) m[k] = g.int(256);
      m[0] = g.r() < 0.5 ? 0x6c : 0x42;
      m[1] = 1 + g.int(4);
      m[3] = 1;
      try {
        feed(g, m, []);
      } catch (e) {
        throw new Error(`seed ${seed}, round ${i}: ${(e as Error).stack}`);
      }
    }
  });
});

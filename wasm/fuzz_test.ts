import { test } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { type Codec, CodecErrorCode, createCodec, type FrameInit, wasmMemoryBytes } from "./mod.ts";
import { prng, randomBytes } from "../tests/harness/framing.ts";
import { nativeCrc } from "../platform/crc.ts";
import { MAX_FRAME_TYPE } from "../core/proto/frame.ts";

const SEED = Number(process.env.LINKWEAVE_FUZZ_SEED ?? 20260801) >>> 0;
/** Bytes fed to each decoder per run. */
const BUDGET = 1_500_000;
const CODES = new Set<number>(Object.values(CodecErrorCode));

/** Everything a codec did with one input, as comparable text. */
function run(codec: Codec, chunks: Uint8Array[], maxFrameSize: number): string[] {
  const log: string[] = [];
  const decoder = codec.createDecoder({ maxFrameSize });
  const r = codec.createReassembler({
    maxMessages: 8,
    maxHoles: 4,
    maxMessageSize: 50_000,
    maxStreamPending: 60_000,
    maxLinkPending: 100_000,
  });
  let n = 0;
  try {
    for (const chunk of chunks) {
      const code = decoder.push(chunk, (f) => {
        const rc = r.push(
          f,
          (m) => log.push(`m ${m.stream}/${m.seq} ${m.data.length} ${codec.crc32(m.data)}`),
        );
        log.push(`f ${f.type} ${f.stream} ${f.seq} ${f.total} ${f.offset} ${f.length} ${rc}`);
        if (rc !== 0) assert.ok(CODES.has(rc), `reassembler code ${rc}`);
        if (++n % 97 === 0) r.resetStream(f.stream);
      });
      if (code !== 0) {
        assert.ok(CODES.has(code), `decoder code ${code}`);
        log.push(`error ${code}`);
        break;
      }
    }
    log.push(`end ${decoder.buffered} ${r.pending} ${r.messages}`);
  } finally {
    r.close();
  }
  return log;
}

/** A stream of valid frames: fragments of random messages, some shuffled. */
function validStream(rnd: (n: number) => number, size: number, codec: Codec): Uint8Array {
  const parts: Uint8Array[] = [];
  let length = 0;
  let seq = 0;
  while (length < size) {
    const mtu = [23, 40, 247, 1500, 65535][rnd(5)];
    const total = Math.min([0, 1, 10, 100, 3000, 40_000, 70_000][rnd(7)], mtu < 100 ? 500 : 1e6);
    const data = randomBytes(rnd, total);
    const wire = codec.encodeMessage(data, {
      type: rnd(MAX_FRAME_TYPE + 1),
      stream: rnd(4),
      seq: rnd(4) === 0 ? seq : ++seq,
      mtu,
      start: rnd(3) === 0 ? Math.min(total, rnd(total + 1)) : 0,
    }).slice();
    parts.push(wire);
    length += wire.length;
  }
  const out = new Uint8Array(length);
  let p = 0;
  for (const part of parts) {
    out.set(part, p);
    p += part.length;
  }
  return out;
}

function mutate(rnd: (n: number) => number, bytes: Uint8Array): Uint8Array {
  const out = bytes.slice();
  const kind = rnd(4);
  if (kind === 0) return out; // intact
  const flips = 1 + rnd(3);
  for (let i = 0; i < flips; i++) {
    const at = rnd(out.length);
    if (kind === 1) out[at] ^= 1 << rnd(8);
    else if (kind === 2) out[at] = rnd(256);
    else out.fill(rnd(256), at, Math.min(out.length, at + rnd(40)));
  }
  return out;
}

function chunked(rnd: (n: number) => number, bytes: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let p = 0; p < bytes.length;) {
    const n = [1, 7, 18, 100, 1500, 70_000][rnd(6)];
    out.push(bytes.subarray(p, p + n));
    p += n;
  }
  return out;
}

test(`fuzz: wasm and reference codecs agree on random and mutated input (seed ${SEED})`, () => {
  const rnd = prng(SEED);
  const memory = wasmMemoryBytes();
  const wasm = createCodec({ engine: "wasm", crc: nativeCrc() });
  const wasmCrc = createCodec({ engine: "wasm", crc: "wasm" });
  const ref = createCodec({ engine: "reference", crc: nativeCrc() });
  let fed = 0;
  let runs = 0;
  let frames = 0;
  let errors = 0;
  while (fed < BUDGET) {
    const input = rnd(5) === 0
      ? randomBytes(rnd, 1 + rnd(3000))
      : mutate(rnd, validStream(rnd, 1 + rnd(20_000), ref));
    const chunks = chunked(rnd, input);
    const maxFrameSize = [65535, 1500, 23 + rnd(100)][rnd(3)];
    let want: string[];
    try {
      want = run(ref, chunks, maxFrameSize);
      const a = run(wasm, chunks, maxFrameSize);
      const b = run(wasmCrc, chunks, maxFrameSize);
      assert.deepEqual(a, want);
      assert.deepEqual(b, want);
    } catch (e) {
      throw new Error(
        `Fuzz run ${runs} failed with LINKWEAVE_FUZZ_SEED=${SEED}: ${(e as Error).message}`,
        { cause: e },
      );
    }
    fed += input.length;
    frames += want.filter((l) => l.startsWith("f")).length;
    errors += want.filter((l) => l.startsWith("error")).length;
    runs++;
  }
  assert.ok(
    frames > 1000 && errors > 5,
    `the fuzz input was too tame (${frames} frames, ${errors} errors)`,
  );
  assert.equal(wasmMemoryBytes(), memory, `wasm memory grew (LINKWEAVE_FUZZ_SEED=${SEED})`);
});

test(`fuzz: reassemblers agree on random fragments (seed ${SEED})`, () => {
  const rnd = prng(SEED ^ 0x5a5a5a5a);
  const memory = wasmMemoryBytes();
  const codecs = [createCodec({ engine: "reference" }), createCodec({ engine: "wasm" })];
  let accepted = 0;
  let completed = 0;
  for (let round = 0; round < 40; round++) {
    const limits = {
      maxMessages: 1 + rnd(8),
      maxHoles: 1 + rnd(6),
      maxMessageSize: rnd(3000),
      maxStreamPending: rnd(5000),
      maxLinkPending: rnd(9000),
    };
    const frags: FrameInit[] = [];
    for (let i = 0; i < 2000; i++) {
      const total = rnd(4) === 0 ? 0 : rnd(4000);
      const offset = rnd(total + 2);
      const len = rnd(4) === 0 ? total - offset : rnd(300);
      frags.push({
        type: rnd(2),
        stream: rnd(3),
        seq: rnd(6),
        total: rnd(10) === 0 ? total + 1 : total,
        offset,
        payload: randomBytes(rnd, Math.max(0, len)),
      });
    }
    const resets = Array.from({ length: 10 }, () => rnd(3));
    const logs = codecs.map((codec) => {
      const r = codec.createReassembler(limits);
      const log: string[] = [];
      for (const [i, f] of frags.entries()) {
        const code = r.push(f, (m) => log.push(`m ${m.stream}/${m.seq} ${codec.crc32(m.data)}`));
        log.push(`${code}`);
        if (i % 300 === 299) r.resetStream(resets[(i / 300) | 0]);
        if (i % 900 === 899) r.reset();
      }
      log.push(`${r.pending} ${r.messages} ${r.streamPending(0)}`);
      r.close();
      return log;
    });
    assert.deepEqual(logs[1], logs[0], `LINKWEAVE_FUZZ_SEED=${SEED}`);
    accepted += logs[0].filter((l) => l === "0").length;
    completed += logs[0].filter((l) => l.startsWith("m")).length;
  }
  assert.ok(
    accepted > 1000 && completed > 100,
    `too few accepted fragments (${accepted}, ${completed})`,
  );
  assert.equal(wasmMemoryBytes(), memory);
});

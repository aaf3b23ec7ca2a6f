/**
 * Framing benchmark: wasm codec vs the plain-TS reference codec, and every
 * CRC-32 source, measured side by side in one run. Writes
 * `bench/results/framing-<runtime>.json`.
 *
 *   deno run -A bench/framing_bench.ts
 *   bun bench/framing_bench.ts
 *
 * @module
 */
import { rate, report, type Row, row } from "./_report.ts";
import {
  type Codec,
  crcSources,
  createCodec,
  type Frame,
  type FrameInit,
  FrameType,
  type Message,
} from "../wasm/mod.ts";

const GB = 1e9;
const MS = Number(Deno_or_env("LINKWEAVE_BENCH_MS") ?? 1000);

function Deno_or_env(name: string): string | undefined {
  const g = globalThis as { process?: { env: Record<string, string | undefined> } };
  return g.process?.env[name];
}

function random(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x;
  }
  return out;
}

const rows: Row[] = [];
const sources = crcSources();
const byName = new Map(sources.map((s) => [s.name, s]));
const reference = byName.get("reference")!;
const defaultSource = sources[0];

// ------------------------------------------------------------------ CRC-32
const big = random(64 * 1024 * 1024, 7);
const small = random(1024, 9).subarray(0); // 1 KiB
let sink = 0;
const crcRate = (name: string, data: Uint8Array, calls: number): number => {
  const s = byName.get(name as never)!;
  return rate(() => {
    for (let i = 0; i < calls; i++) sink ^= s.crc32(data);
  }, { unitsPerCall: data.length * calls, ms: MS, warmupMs: 200 }) / GB;
};
const big64: Record<string, number> = {};
const small1k: Record<string, number> = {};
for (const s of sources) {
  big64[s.name] = crcRate(s.name, big, 1);
  small1k[s.name] = crcRate(s.name, small, 1024);
}
for (const s of sources) {
  if (s.name === "reference") continue;
  const isDefault = s === defaultSource;
  const target = s.name === "wasm"
    ? { on: "value" as const, min: 1.5 }
    : isDefault
    ? { on: "value" as const, min: 10 }
    : undefined;
  rows.push(row({
    name: `crc32 64 MiB, ${s.name}${isDefault ? " (default)" : ""}`,
    value: big64[s.name],
    unit: "GB/s",
    baseline: "TS reference slicing-by-8",
    baselineValue: big64.reference,
  }, { target }));
}
for (const s of sources) {
  if (s.name === "reference") continue;
  rows.push(row({
    name: `crc32 1 KiB, ${s.name}${s === defaultSource ? " (default)" : ""}`,
    value: small1k[s.name],
    unit: "GB/s",
    baseline: "TS reference slicing-by-8",
    baselineValue: small1k.reference,
  }));
}

// ------------------------------------------------- encode + decode + verify
const BATCH = 64;
const PAYLOAD = 1024;
const payloads = Array.from({ length: BATCH }, (_, i) => random(PAYLOAD, 100 + i));
const batchFrames: FrameInit[] = payloads.map((payload, i) => ({
  type: FrameType.DATA,
  stream: 1 + (i & 3),
  seq: i,
  total: PAYLOAD,
  offset: 0,
  payload,
}));

function roundTrip(codec: Codec): () => void {
  const decoder = codec.createDecoder();
  let frames = 0;
  const onFrame = (f: Frame) => {
    frames++;
    sink ^= f.length;
  };
  return () => {
    const wire = codec.encodeBatch(batchFrames);
    const input = codec.inputBuffer(); // as a socket would read into it
    input.set(wire);
    const code = decoder.push(input.subarray(0, wire.length), onFrame);
    if (code !== 0 || frames % BATCH !== 0) throw new Error(`Round trip failed with code ${code}`);
  };
}
const rtRate = (codec: Codec) => rate(roundTrip(codec), { unitsPerCall: BATCH, ms: MS });
// Alternate to even out drift; keep the best of three.
const rtWasm: number[] = [];
const rtRef: number[] = [];
const rtWasmCrc: number[] = [];
const wasmCodec = createCodec({ engine: "wasm" });
const refCodec = createCodec({ engine: "reference" });
const wasmWasmCrc = createCodec({ engine: "wasm", crc: "wasm" });
for (let r = 0; r < 3; r++) {
  rtWasm.push(rtRate(wasmCodec));
  rtRef.push(rtRate(refCodec));
  rtWasmCrc.push(rtRate(wasmWasmCrc));
}
const best = (xs: number[]) => Math.max(...xs);
rows.push(row({
  name: `encode+decode+verify 1 KiB x64, wasm (${defaultSource.name} crc)`,
  value: best(rtWasm),
  unit: "frames/s",
  baseline: `TS reference (${defaultSource.name} crc)`,
  baselineValue: best(rtRef),
}, { target: { on: "value", min: 2_000_000 } }));
rows.push(row({
  name: `encode+decode+verify 1 KiB x64, wasm/ref ratio`,
  value: best(rtWasm),
  unit: "frames/s",
  baseline: `TS reference (${defaultSource.name} crc)`,
  baselineValue: best(rtRef),
}, { target: { on: "ratio", min: 1.0 } }));
rows.push(row({
  name: `encode+decode+verify 1 KiB x64, wasm (wasm crc)`,
  value: best(rtWasmCrc),
  unit: "frames/s",
  baseline: `TS reference (${defaultSource.name} crc)`,
  baselineValue: best(rtRef),
}));

// ------------------------------------------------------------ reassembly
const MESSAGES = 16;
const MSG_SIZE = 64 * 1024;
const FRAG = 1024;
const CHANNELS = 4;
function arrivals(seed: number): FrameInit[] {
  let x = seed;
  const rnd = (n: number) => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) % n;
  };
  const queues: FrameInit[][] = Array.from({ length: CHANNELS }, () => []);
  for (let m = 0; m < MESSAGES; m++) {
    const data = random(MSG_SIZE, 1000 + m);
    for (let off = 0; off < MSG_SIZE; off += FRAG) {
      queues[rnd(CHANNELS)].push({
        type: FrameType.DATA,
        stream: 1 + (m & 3),
        seq: m,
        total: MSG_SIZE,
        offset: off,
        payload: data.subarray(off, off + FRAG),
      });
    }
  }
  // Each channel delivers in order; the channels interleave at random.
  const out: FrameInit[] = [];
  const heads = new Array(CHANNELS).fill(0);
  while (out.length < MESSAGES * (MSG_SIZE / FRAG)) {
    const c = rnd(CHANNELS);
    if (heads[c] < queues[c].length) out.push(queues[c][heads[c]++]);
  }
  return out;
}
const order = arrivals(12345);
function reassembly(codec: Codec): () => void {
  const ra = codec.createReassembler({ maxHoles: 63 });
  let done = 0;
  const onMessage = (m: Message) => {
    done++;
    sink ^= m.data.length;
  };
  return () => {
    for (let i = 0; i < order.length; i++) {
      const code = ra.push(order[i], onMessage);
      if (code !== 0) throw new Error(`Reassembly failed with code ${code}`);
    }
    if (done % MESSAGES !== 0) throw new Error("Reassembly lost a message");
  };
}
const raWasm: number[] = [];
const raRef: number[] = [];
for (let r = 0; r < 3; r++) {
  raWasm.push(rate(reassembly(wasmCodec), { unitsPerCall: MESSAGES * MSG_SIZE, ms: MS }) / 1e6);
  raRef.push(rate(reassembly(refCodec), { unitsPerCall: MESSAGES * MSG_SIZE, ms: MS }) / 1e6);
}
rows.push(row({
  name: "reassembly 64 KiB msgs, 1 KiB frags, 4 channels, wasm",
  value: best(raWasm),
  unit: "MB/s",
  baseline: "TS reference",
  baselineValue: best(raRef),
}, { target: { on: "ratio", min: 1.0 } }));

const path = report("framing", rows);
console.log(
  `\nCRC-32 sources here: ${sources.map((s) => s.name).join(", ")}; default ${defaultSource.name}`,
);
console.log(`Wrote ${path}${sink === 0.5 ? "" : ""}`);
void reference;

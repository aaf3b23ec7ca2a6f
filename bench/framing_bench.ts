/**
 * Framing benchmark: wasm codec vs the plain-TS reference codec, and every
 * CRC-32 source, measured side by side in one run. Writes
 * `bench/results/framing-<runtime>.json`.
 *
 *   deno run -A bench/framing_bench.ts
 *   bun bench/framing_bench.ts
 *
 * Method: every figure and its baseline are measured in the same process,
 * alternating (A, B, B, A, ...) over `LINKWEAVE_BENCH_REPS` repetitions
 * (default 7) of `LINKWEAVE_BENCH_MS` milliseconds each (default 300), after
 * a warm-up. A row's value and baseline are the medians of their
 * repetitions; `range` and `baselineRange` keep the slowest and fastest
 * repetition, and `ratioRange` the spread of the per-repetition ratios. This
 * machine is shared and moves 2x within a second, so single figures mislead.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { loadavg } from "node:os";
import { rate, report, type Row, row, type Target } from "./_report.ts";
import { nativeCrcSources } from "../platform/crc.ts";
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
const env = (name: string): string | undefined =>
  (globalThis as { process?: { env: Record<string, string | undefined> } }).process?.env[name];
const MS = Number(env("LINKWEAVE_BENCH_MS") ?? 300);
const REPS = Math.max(1, Number(env("LINKWEAVE_BENCH_REPS") ?? 7));

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

/** A row with the spread of its repetitions. */
interface RangedRow extends Row {
  /** Repetitions behind the medians. */
  reps: number;
  /** Slowest and fastest repetition of the value. */
  range: [number, number];
  /** Slowest and fastest repetition of the baseline. */
  baselineRange: [number, number];
  /** Lowest and highest ratio of one repetition's value to the same repetition's baseline. */
  ratioRange: [number, number];
  /** The 1-minute load average after the measurement (about 1 is this benchmark alone). */
  load: number;
  /**
   * 64 MiB rows: how fast one core reads memory here (GB/s, median of the
   * same repetitions), a ceiling no checksum over 64 MiB can pass.
   */
  memoryRead?: number;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const spread = (xs: number[]): [number, number] => [Math.min(...xs), Math.max(...xs)];

/**
 * Measure several workloads in alternation: `REPS` repetitions, the order
 * reversed every other repetition. Returns each workload's rates.
 */
function alternate(fns: (() => number)[]): number[][] {
  const out: number[][] = fns.map(() => []);
  for (let r = 0; r < REPS; r++) {
    const order = fns.map((_, i) => i);
    if (r % 2 === 1) order.reverse();
    for (const i of order) out[i].push(fns[i]());
  }
  return out;
}

function ranged(
  fields: { name: string; unit: string; baseline: string },
  values: number[],
  baselines: number[],
  target?: Target,
): RangedRow {
  const r = row(
    { ...fields, value: median(values), baselineValue: median(baselines) },
    { target },
  );
  return {
    ...r,
    reps: values.length,
    range: spread(values),
    baselineRange: spread(baselines),
    ratioRange: spread(values.map((v, i) => Math.round((v / baselines[i]) * 1000) / 1000)),
    load: Math.round(loadavg()[0] * 100) / 100,
  };
}

const rows: RangedRow[] = [];
if (loadavg()[0] > 1.5) {
  console.log(
    `Load average ${
      loadavg()[0].toFixed(2)
    }: other processes share the cores, figures will be low.`,
  );
}
const sources = [...nativeCrcSources(), ...crcSources()];
const defaultSource = sources[0];
let sink = 0;

// ------------------------------------------------------------------ CRC-32
const big = random(64 * 1024 * 1024, 7);
const small = random(1024, 9);
const crcRate = (s: (typeof sources)[number], data: Uint8Array, calls: number) => (): number =>
  rate(() => {
    for (let i = 0; i < calls; i++) sink ^= s.crc32(data);
  }, { unitsPerCall: data.length * calls, ms: MS, warmupMs: 0 }) / GB;
for (const s of sources) {
  // Warm-up: let the JIT and the wasm tiers settle.
  crcRate(s, big, 1)();
  crcRate(s, small, 1024)();
}
// The ceiling for the 64 MiB rows: memcmp of two 64 MiB buffers, counted as
// bytes read (both), measured in the same alternation.
const bigCopy = Buffer.from(big);
const bigView = Buffer.from(big.buffer, big.byteOffset, big.length);
const memoryRate = (): number =>
  rate(() => {
    sink ^= Buffer.compare(bigView, bigCopy);
  }, { unitsPerCall: 2 * big.length, ms: MS, warmupMs: 0 }) / GB;
memoryRate();
const [memory64, ...big64] = alternate([memoryRate, ...sources.map((s) => crcRate(s, big, 1))]);
const small1k = alternate(sources.map((s) => crcRate(s, small, 1024)));
const refIndex = sources.findIndex((s) => s.name === "reference");
for (const [label, results] of [["64 MiB", big64], ["1 KiB", small1k]] as const) {
  sources.forEach((s, i) => {
    if (i === refIndex) return;
    const isDefault = s === defaultSource;
    const target: Target | undefined = label === "1 KiB"
      ? undefined
      : s.name === "wasm"
      ? { on: "value", min: 1.5 }
      : isDefault
      ? { on: "value", min: 10 }
      : undefined;
    const r = ranged(
      {
        name: `crc32 ${label}, ${s.name}${isDefault ? " (default)" : ""}`,
        unit: "GB/s",
        baseline: "TS reference slicing-by-8",
      },
      results[i],
      results[refIndex],
      target,
    );
    rows.push(label === "64 MiB" ? { ...r, memoryRead: median(memory64) } : r);
  });
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
const rtRate = (codec: Codec) => {
  const fn = roundTrip(codec);
  rate(fn, { unitsPerCall: BATCH, ms: 0, warmupMs: 200 });
  return () => rate(fn, { unitsPerCall: BATCH, ms: MS, warmupMs: 0 });
};
const [rtWasm, rtRef, rtWasmCrc] = alternate([
  rtRate(createCodec({ engine: "wasm", crc: defaultSource })),
  rtRate(createCodec({ engine: "reference", crc: defaultSource })),
  rtRate(createCodec({ engine: "wasm", crc: "wasm" })),
]);
const rtFields = (name: string) => ({
  name: `encode+decode+verify 1 KiB x64, ${name}`,
  unit: "frames/s",
  baseline: `TS reference (${defaultSource.name} crc)`,
});
rows.push(
  ranged(rtFields(`wasm (${defaultSource.name} crc)`), rtWasm, rtRef, {
    on: "value",
    min: 2_000_000,
  }),
);
rows.push(ranged(rtFields("wasm/ref ratio"), rtWasm, rtRef, { on: "ratio", min: 1.0 }));
rows.push(ranged(rtFields("wasm (wasm crc)"), rtWasmCrc, rtRef));

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
const raRate = (codec: Codec) => {
  const fn = reassembly(codec);
  rate(fn, { unitsPerCall: MESSAGES * MSG_SIZE, ms: 0, warmupMs: 200 });
  return () => rate(fn, { unitsPerCall: MESSAGES * MSG_SIZE, ms: MS, warmupMs: 0 }) / 1e6;
};
const [raWasm, raRef] = alternate([
  raRate(createCodec({ engine: "wasm", crc: defaultSource })),
  raRate(createCodec({ engine: "reference", crc: defaultSource })),
]);
rows.push(ranged(
  {
    name: "reassembly 64 KiB msgs, 1 KiB frags, 4 channels, wasm",
    unit: "MB/s",
    baseline: "TS reference",
  },
  raWasm,
  raRef,
  { on: "ratio", min: 1.0 },
));

const path = report("framing", rows);
const fmt = (n: number) => n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2);
console.log(
  `\nMedians of ${REPS} alternating repetitions of ${MS} ms; ranges (slowest-fastest); load ${
    loadavg()[0].toFixed(2)
  }:`,
);
for (const r of rows) {
  console.log(
    `  ${r.name.padEnd(52)} ${fmt(r.range[0])}-${fmt(r.range[1])} vs ${fmt(r.baselineRange[0])}-${
      fmt(r.baselineRange[1])
    }, ratio x${r.ratioRange[0].toFixed(2)}-x${r.ratioRange[1].toFixed(2)}`,
  );
}
console.log(
  `\nCRC-32 sources here: ${sources.map((s) => s.name).join(", ")}; default ${defaultSource.name}`,
);
console.log(
  `Memory read by one core (memcmp of two 64 MiB buffers), the ceiling of the 64 MiB rows: ${
    fmt(median(memory64))
  } GB/s (${fmt(Math.min(...memory64))}-${fmt(Math.max(...memory64))})`,
);
console.log(`Wrote ${path}${sink === 0.5 ? "" : ""}`);

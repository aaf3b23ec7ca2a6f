/**
 * Link benchmark: `linkEnhance` between two devices in two processes (this
 * one sends, a child of the same runtime receives), each figure beside its
 * baseline measured in the same run against the same child:
 *
 * 1. 1 KiB `sendData` messages/s over one connection, vs the runtime's raw
 *    TCP API doing one 1 KiB write per message (`bench/_raw.ts`).
 * 2. 100 connections over one link, every one saturating: total payload
 *    MB/s (vs row 1's single connection) and fairness, Jain's index over the
 *    bytes each connection delivered in a fixed window (vs yamux's).
 * 3. Round-trip time of a 1 KiB echo, p50 and p99, idle and while another
 *    connection saturates the same link; vs the raw API's 1 KiB ping-pong,
 *    idle and while another raw connection saturates loopback; vs yamux
 *    under the same load (a yamux stream saturating, the round trips on a
 *    second stream of the same session); and vs today's code (`--today REV`,
 *    by default {@linkcode TODAY}: the link before the in-flight budget,
 *    checked out with `git archive` into a temporary directory), idle and
 *    loaded, with the bulk rate the load carried while the round trips ran.
 *    Both links run row 3 in a sender and a receiver process of their own,
 *    sharing no heap with each other or the baselines. `--today none`
 *    leaves today's code out.
 * 4. The same 100-stream workload through `@chainsafe/libp2p-yamux` over a
 *    `node:net` connection (`bench/_yamux.ts`).
 * 5. Memory per idle connection (both ends, fresh processes, after GC): RSS
 *    and JS heap in use per further connection (from 1000 to 4000), vs a
 *    raw TCP connection pair and vs a yamux stream; and RSS per connection
 *    of the first 1000.
 * 6. Encryption: rows 1 and 2 (1 KiB messages/s; 100 saturating connections,
 *    MB/s) on an encrypted link (the default, `security: "account"`, which
 *    every other row runs with) vs a plaintext one (`security: "none"`, a
 *    receiver process of its own), alternating; and the time a fresh device
 *    takes to open its first connection (TCP connect, handshake, open),
 *    p50 and p99, encrypted vs plaintext.
 *
 * Every measurement runs `--reps` times (default 3), alternating ours and
 * the baseline, and the median is reported. `--rows 1,2,3,5` measures some
 * rows only (2 and 4 share their runs). Results: `bench/results/link-<runtime>.json`.
 *
 * Run: `npm run bench:link` (Deno, then Bun), or `deno run -A
 * bench/link_bench.ts` / `bun bench/link_bench.ts`; then `deno run -A
 * bench/_link_table.ts` writes the table `docs/_bench_link_table.md`. A run
 * exits 1 if a part failed (e.g. a connection was disconnected), after
 * writing the rows it has.
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, rmSync } from "node:fs";
import * as net from "node:net";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { setImmediate } from "node:timers";
import { fileURLToPath, pathToFileURL } from "node:url";
import { report, type Row, row, type Target } from "./_report.ts";
import { type Child, collect, serveRole, sleep, spawnRole } from "./_ctl.ts";
import { RAW_NAME, rawConnect, rawListen, type RawSocket } from "./_raw.ts";
import { drained, messageBytes, yamuxOver, type YamuxStream } from "./_yamux.ts";
import { type Connection, createDevice, type Device } from "../link_enhance.ts";

const SCRIPT = fileURLToPath(import.meta.url);
const ROOT = fileURLToPath(new URL("../", import.meta.url));
const SENDER = "02:00:00:00:BE:01";
const RECEIVER = "02:00:00:00:BE:02";
/** Row 3's linkweave pairs run as devices of their own (see {@linkcode lwSender}). */
const ROW3_SENDER = "02:00:00:00:BE:03";
const ROW3_RECEIVER = "02:00:00:00:BE:04";
/** Row 6's plaintext pair, and the prefix of its fresh devices. */
const PLAIN_SENDER = "02:00:00:00:BE:05";
const PLAIN_RECEIVER = "02:00:00:00:BE:06";
const FRESH = "02:00:00:00:C0:";
const HANDSHAKES = 40;
/**
 * The commit before the in-flight budget and the link acknowledgement
 * (issue 19): what row 3 calls today's code.
 */
const TODAY = "e4a0b5a9060b97556b6b07ca3f5659f8e0b021f6";
/** First byte of a stream of the yamux round-trip server: what the stream is for. */
const ROLE_ECHO = 0x65;
const ROLE_SINK = 0x73;
const MSG = 1024;
/** Messages per row-1 run (about half a second to a second each). */
const ROW1_MSGS = 200_000;
const ROW1_BYTES = ROW1_MSGS * MSG;
const MUX_CONNS = 100;
const MUX_WARM_MS = 500;
const MUX_WINDOW_MS = 1500;
/** How long round trips are timed, idle and under load (ms). */
const RTT_MS = 1000;
const RTT_LOADED_MS = 2000;
/** Round trips not timed first, idle and under load (the load warmed up already). */
const RTT_SKIP = 50;
const RTT_LOADED_SKIP = 5;
const LOAD_WARM_MS = 200;
const IDLE_CONNS = 1000;
const IDLE_WARM = 20;
/** Connections opened after the first {@linkcode IDLE_CONNS}: their cost is row 5's figure. */
const IDLE_MORE = 3 * IDLE_CONNS;
const QUEUE_FULL = 32390300;

function flag(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

function payload(): Uint8Array {
  const b = new Uint8Array(MSG);
  for (let i = 0; i < MSG; i++) b[i] = i & 0xff;
  return b;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

/** Jain's fairness index: 1 when every share is equal, 1/n when one takes all. */
function jain(xs: number[]): number {
  const sum = xs.reduce((a, b) => a + b, 0);
  const sq = xs.reduce((a, b) => a + b * b, 0);
  return sq === 0 ? 0 : (sum * sum) / (xs.length * sq);
}

function codeOf(e: unknown): number | undefined {
  return (e as { code?: number })?.code;
}

const macrotask = () => new Promise<void>((r) => setImmediate(r));

/** `p`, or a rejection after `ms` saying what did not happen. */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing after ${ms} ms`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

// ------------------------------------------------------------ linkweave

/** Waits for a connection's `drain`; `release` frees a waiter for good. */
function pacer(c: Connection): { wait(): Promise<void>; release(): void } {
  let wake: (() => void) | undefined;
  let released = false;
  c.on("drain", () => {
    const w = wake;
    wake = undefined;
    w?.();
  });
  return {
    wait: () => released ? Promise.resolve() : new Promise<void>((r) => (wake = r)),
    release() {
      released = true;
      wake?.();
    },
  };
}

/** Send 1 KiB messages until `stop()` says so, waiting for `drain` when the queue is full. */
function saturate(
  c: Connection,
  msg: ArrayBuffer,
): { stop(): void; done: Promise<void>; sent(): number } {
  const p = pacer(c);
  let stopped = false;
  let sent = 0;
  const done = (async () => {
    while (!stopped) {
      try {
        c.sendData(msg);
        sent++;
      } catch (e) {
        if (codeOf(e) !== QUEUE_FULL) throw e;
        await p.wait();
      }
    }
  })();
  return {
    stop() {
      stopped = true;
      p.release();
    },
    done,
    sent: () => sent,
  };
}

/** Set when a connection reports `disconnected` (the link broke): the run is void. */
let broken: string | undefined;

function checkLink(what: string): void {
  if (broken === undefined) return;
  const why = broken;
  broken = undefined;
  throw new Error(`${what}: a linkweave connection was disconnected (${why})`);
}

function connectTo(dev: Device, name: string, peer = RECEIVER): Promise<Connection> {
  const c = dev.createConnection(peer, name);
  c.on("disconnected", (reason) => broken ??= `reason ${reason}, server "${name}"`);
  return new Promise((resolve, reject) => {
    c.on(
      "connectResult",
      (r) =>
        r.success
          ? resolve(c)
          : reject(new Error(`connect to "${name}" of ${peer} failed: ${r.reason}`)),
    );
    c.connect();
  });
}

// ------------------------------------------------------------ the receiver

interface PeerPorts {
  lw: number;
  rawSink: number;
  rawEcho: number;
  yamux: number;
  yamuxRtt: number;
}

/**
 * The receiving end: linkweave servers (`sink`, `echo`, `mux`) on a device
 * made by `create` (this tree's `createDevice`, or today's), and, unless
 * `linkOnly`, the raw and yamux baselines.
 */
async function peerRole(
  create: typeof createDevice,
  options: { deviceId: string; linkOnly: boolean; security?: "none" },
): Promise<void> {
  const dev = create({
    deviceId: options.deviceId,
    port: 0,
    bind: "127.0.0.1",
    discovery: "off",
    ...(options.security === undefined ? {} : { security: options.security }),
  });
  const rt = await dev.runtime();
  let lastRx = performance.now();
  const counters: Record<string, Set<{ bytes: number }>> = { mux: new Set(), yamux: new Set() };
  const ack = new Uint8Array([107]);

  const sink = dev.createServer("sink");
  sink.on("connectionAccepted", (c) => {
    let n = 0;
    c.on("dataReceived", (b) => {
      lastRx = performance.now();
      n += b.byteLength;
      if (n === ROW1_BYTES) c.sendData(ack.slice().buffer);
    });
  });
  sink.start();
  const echo = dev.createServer("echo");
  echo.on("connectionAccepted", (c) => c.on("dataReceived", (b) => c.sendData(b)));
  echo.start();
  const mux = dev.createServer("mux");
  mux.on("connectionAccepted", (c) => {
    const k = { bytes: 0 };
    counters.mux.add(k);
    c.on("dataReceived", (b) => {
      lastRx = performance.now();
      k.bytes += b.byteLength;
    });
  });
  mux.start();

  const handlers = {
    reset: ({ kind }: { kind: string }) => counters[kind].clear(),
    cpu: () => cpuMs(),
    /** Bytes each connection of `kind` delivered in a window of `ms` after `warm` ms. */
    async window({ kind, warm, ms }: { kind: string; warm: number; ms: number }) {
      await sleep(warm);
      const start = new Map([...counters[kind]].map((k) => [k, k.bytes]));
      const t0 = performance.now();
      await sleep(ms);
      const elapsed = performance.now() - t0;
      return { elapsed, bytes: [...start].map(([k, b]) => k.bytes - b) };
    },
    /** Resolve once nothing arrived for `ms`. */
    async quiet({ ms }: { ms: number }) {
      const deadline = performance.now() + 20_000;
      while (performance.now() - lastRx < ms) {
        if (performance.now() > deadline) throw new Error("receiver never went quiet");
        await sleep(20);
      }
    },
  };
  if (options.linkOnly) {
    serveRole({ lw: rt.port }, handlers);
    return;
  }

  const rawSink = await rawListen((s) => {
    let n = 0;
    return (b) => {
      lastRx = performance.now();
      n += b.length;
      if (n === ROW1_BYTES) void s.write(ack);
    };
  });
  const rawEcho = await rawListen((s) => (b) => s.write(b));

  // Row 3's yamux: each stream's first byte says whether it echoes or sinks.
  const yRtt = net.createServer((socket) => {
    const m = yamuxOver(socket, false);
    m.addEventListener("stream", (evt) => {
      const s = (evt as CustomEvent<YamuxStream>).detail;
      let role = 0;
      s.addEventListener("message", (e) => {
        lastRx = performance.now();
        let data = (e as unknown as { data: Uint8Array }).data;
        if (role === 0) {
          role = data.subarray(0, 1)[0];
          data = data.subarray(1);
        }
        if (role === ROLE_ECHO && data.byteLength > 0) s.send(data);
      });
    });
  });
  await new Promise<void>((r) => yRtt.listen(0, "127.0.0.1", () => r()));

  const yServer = net.createServer((socket) => {
    const m = yamuxOver(socket, false);
    m.addEventListener("stream", (evt) => {
      const s = (evt as CustomEvent<YamuxStream>).detail;
      const k = { bytes: 0 };
      counters.yamux.add(k);
      s.addEventListener("message", (e) => {
        lastRx = performance.now();
        k.bytes += messageBytes(e);
      });
    });
  });
  await new Promise<void>((r) => yServer.listen(0, "127.0.0.1", () => r()));

  const ports: PeerPorts = {
    lw: rt.port,
    rawSink: rawSink.port,
    rawEcho: rawEcho.port,
    yamux: (yServer.address() as net.AddressInfo).port,
    yamuxRtt: (yRtt.address() as net.AddressInfo).port,
  };
  serveRole(ports, handlers);
}

// ------------------------------------------------------------ row 1

/** CPU time this process used so far (user + system), in ms. */
function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/** Share of one core each process used while `fn` ran. */
async function busy<T>(peer: Child, fn: () => Promise<T>): Promise<[T, number, number]> {
  const [s0, r0, t0] = [cpuMs(), await peer.call("cpu"), performance.now()];
  const v = await fn();
  const [s1, r1, t1] = [cpuMs(), await peer.call("cpu"), performance.now()];
  return [v, (s1 - s0) / (t1 - t0), (r1 - r0) / (t1 - t0)];
}

async function lwThroughput(dev: Device, peerId = RECEIVER): Promise<number> {
  const c = await connectTo(dev, "sink", peerId);
  const p = pacer(c);
  const done = new Promise<void>((r) => c.on("dataReceived", () => r()));
  const msg = payload().buffer as ArrayBuffer;
  const t0 = performance.now();
  for (let i = 0; i < ROW1_MSGS;) {
    try {
      c.sendData(msg);
      i++;
    } catch (e) {
      if (codeOf(e) !== QUEUE_FULL) throw e;
      await p.wait();
    }
  }
  await within(done, 30_000, "1 KiB messages over one connection").finally(() =>
    checkLink("1 KiB messages over one connection")
  );
  const v = ROW1_MSGS / ((performance.now() - t0) / 1000);
  c.close();
  return v;
}

async function rawThroughput(port: number): Promise<number> {
  let got: () => void = () => {};
  const done = new Promise<void>((r) => (got = r));
  const s = await rawConnect(port, () => got());
  const msg = payload();
  const t0 = performance.now();
  for (let i = 0; i < ROW1_MSGS; i++) {
    const w = s.write(msg);
    if (w) await w;
  }
  await done;
  const v = ROW1_MSGS / ((performance.now() - t0) / 1000);
  s.close();
  return v;
}

// ------------------------------------------------------------ rows 2 and 4

interface MuxRun {
  mbps: number;
  jain: number;
  n: number;
}

function muxResult(w: { elapsed: number; bytes: number[] }): MuxRun {
  const total = w.bytes.reduce((a, b) => a + b, 0);
  return { mbps: total / 1e6 / (w.elapsed / 1000), jain: jain(w.bytes), n: w.bytes.length };
}

async function lwMux(dev: Device, peer: Child, peerId = RECEIVER): Promise<MuxRun> {
  await peer.call("reset", { kind: "mux" });
  const conns = await Promise.all(
    Array.from({ length: MUX_CONNS }, () => connectTo(dev, "mux", peerId)),
  );
  const msg = payload().buffer as ArrayBuffer;
  const pumps = conns.map((c) => saturate(c, msg));
  const w = await peer.call("window", { kind: "mux", warm: MUX_WARM_MS, ms: MUX_WINDOW_MS });
  for (const p of pumps) p.stop();
  await Promise.all(pumps.map((p) => p.done));
  for (const c of conns) c.close();
  await peer.call("quiet", { ms: 200 });
  checkLink(`${MUX_CONNS} connections over one link`);
  return muxResult(w);
}

async function yamuxMux(port: number, peer: Child): Promise<MuxRun> {
  await peer.call("reset", { kind: "yamux" });
  const socket = net.connect({ host: "127.0.0.1", port });
  await new Promise((r) => socket.once("connect", r));
  const m = yamuxOver(socket, true);
  const streams = await Promise.all(Array.from({ length: MUX_CONNS }, () => m.createStream()));
  const msg = payload();
  let stopped = false;
  const pumps = streams.map(async (s) => {
    while (!stopped) {
      if (!s.send(msg)) await drained(s);
    }
  });
  const w = await peer.call("window", { kind: "yamux", warm: MUX_WARM_MS, ms: MUX_WINDOW_MS });
  stopped = true;
  socket.destroy();
  await Promise.all(pumps);
  await peer.call("quiet", { ms: 200 });
  return muxResult(w);
}

// ------------------------------------------------------------ row 3

/** Round-trip times (us) and the payload rate the load carried meanwhile (MB/s). */
interface RttRun {
  samples: number[];
  load: number;
  /** CPU time per MB the load carried, sender and receiver (us), when measured. */
  cpu?: [number, number];
}

/** A linkweave device and the child it talks to (this tree's, or today's code). */
interface LwPair {
  dev: Device;
  peer: Child;
  peerId: string;
}

async function lwRtt(p: LwPair, loaded: boolean): Promise<RttRun> {
  const { dev, peer, peerId } = p;
  const echo = await connectTo(dev, "echo", peerId);
  let load: ReturnType<typeof saturate> | undefined;
  let loadConn: Connection | undefined;
  if (loaded) {
    loadConn = await connectTo(dev, "sink", peerId);
    load = saturate(loadConn, payload().buffer as ArrayBuffer);
    await sleep(LOAD_WARM_MS);
  }
  let got: () => void = () => {};
  echo.on("dataReceived", () => got());
  const msg = payload().buffer as ArrayBuffer;
  const samples: number[] = [];
  const [sent0, t0, cpu0] = [load?.sent() ?? 0, performance.now(), await cpuBoth(peer)];
  const [ms, skip] = loaded ? [RTT_LOADED_MS, RTT_LOADED_SKIP] : [RTT_MS, RTT_SKIP];
  for (let i = 0; performance.now() < t0 + ms; i++) {
    const t = performance.now();
    const back = new Promise<void>((r) => (got = r));
    echo.sendData(msg);
    await within(back, 5000, "echo").finally(() =>
      checkLink(`round trips${loaded ? " under load" : ""}`)
    );
    if (i >= skip) samples.push((performance.now() - t) * 1000);
  }
  const rate = ((load?.sent() ?? 0) - sent0) * MSG / 1e3 / (performance.now() - t0);
  const cpu1 = await cpuBoth(peer);
  const mb = ((load?.sent() ?? 0) - sent0) * MSG / 1e6;
  const cpu: [number, number] = [(cpu1[0] - cpu0[0]) * 1000 / mb, (cpu1[1] - cpu0[1]) * 1000 / mb];
  load?.stop();
  await load?.done;
  loadConn?.close();
  echo.close();
  await peer.call("quiet", { ms: 200 });
  return { samples, load: rate, cpu: loaded ? cpu : undefined };
}

/** CPU time (ms) this process and the peer used so far. */
async function cpuBoth(peer: Child): Promise<[number, number]> {
  return [cpuMs(), await peer.call("cpu")];
}

/** Writes between two turns of the event loop in the raw load (see {@linkcode rawRtt}). */
const RAW_LOAD_BURST = 16;

async function rawRtt(ports: PeerPorts, peer: Child, loaded: boolean): Promise<RttRun> {
  let n = 0;
  let got: () => void = () => {};
  const s = await rawConnect(ports.rawEcho, (b) => {
    n += b.length;
    if (n >= MSG) {
      n -= MSG;
      got();
    }
  });
  let stopped = false;
  let sent = 0;
  let loadDone: Promise<void> = Promise.resolve();
  let loadSock: RawSocket | undefined;
  if (loaded) {
    const l = loadSock = await rawConnect(ports.rawSink, () => {});
    const msg = payload();
    loadDone = (async () => {
      // Neither Bun's writes nor Deno's awaited ones give other work a turn
      // while the kernel keeps up: yield to the event loop every 16 writes
      // (the 16 KiB a linkweave stream sends per scheduler turn), else the
      // pings on this thread starve (Deno: ~10 ms p50 with a turn every 64).
      for (let i = 1; !stopped; i++) {
        const w = l.write(msg);
        if (w) await w;
        sent++;
        if (i % RAW_LOAD_BURST === 0) await macrotask();
      }
    })();
    await sleep(LOAD_WARM_MS);
  }
  const msg = payload();
  const samples: number[] = [];
  const [sent0, t0] = [sent, performance.now()];
  const [ms, skip] = loaded ? [RTT_LOADED_MS, RTT_LOADED_SKIP] : [RTT_MS, RTT_SKIP];
  for (let i = 0; performance.now() < t0 + ms; i++) {
    const t = performance.now();
    const back = new Promise<void>((r) => (got = r));
    const w = s.write(msg);
    if (w) await w;
    await within(back, 5000, "raw echo");
    if (i >= skip) samples.push((performance.now() - t) * 1000);
  }
  const rate = (sent - sent0) * MSG / 1e3 / (performance.now() - t0);
  stopped = true;
  await loadDone;
  loadSock?.close();
  s.close();
  await peer.call("quiet", { ms: 200 });
  return { samples, load: rate };
}

async function yamuxRtt(port: number, peer: Child, loaded: boolean): Promise<RttRun> {
  const socket = net.connect({ host: "127.0.0.1", port });
  await new Promise((r) => socket.once("connect", r));
  const m = yamuxOver(socket, true);
  const echo = await m.createStream();
  let n = 0;
  let got: () => void = () => {};
  echo.addEventListener("message", (e) => {
    n += messageBytes(e);
    if (n >= MSG) {
      n -= MSG;
      got();
    }
  });
  echo.send(new Uint8Array([ROLE_ECHO]));
  let stopped = false;
  let sent = 0;
  let loadDone: Promise<void> = Promise.resolve();
  if (loaded) {
    const load = await m.createStream();
    load.send(new Uint8Array([ROLE_SINK]));
    const msg = payload();
    loadDone = (async () => {
      while (!stopped) {
        if (!load.send(msg)) await drained(load);
        sent++;
      }
    })();
    await sleep(LOAD_WARM_MS);
  }
  const msg = payload();
  const samples: number[] = [];
  const [sent0, t0] = [sent, performance.now()];
  const [ms, skip] = loaded ? [RTT_LOADED_MS, RTT_LOADED_SKIP] : [RTT_MS, RTT_SKIP];
  for (let i = 0; performance.now() < t0 + ms; i++) {
    const t = performance.now();
    const back = new Promise<void>((r) => (got = r));
    if (!echo.send(msg)) await drained(echo);
    await within(back, 5000, "yamux echo");
    if (i >= skip) samples.push((performance.now() - t) * 1000);
  }
  const rate = (sent - sent0) * MSG / 1e3 / (performance.now() - t0);
  stopped = true;
  socket.destroy();
  await loadDone;
  await peer.call("quiet", { ms: 200 });
  return { samples, load: rate };
}

/**
 * A tree of `rev` (checked out with `git archive`) in a temporary directory,
 * kept for later runs; `undefined` when git cannot give it.
 */
function todayTree(rev: string): string | undefined {
  const dir = join(tmpdir(), `linkweave-bench-${rev}`);
  if (existsSync(join(dir, "link_enhance.ts"))) return dir;
  mkdirSync(dir, { recursive: true });
  const r = spawnSync("sh", ["-c", 'git -C "$0" archive "$1" | tar -x -C "$2"', ROOT, rev, dir], {
    stdio: ["ignore", "ignore", "inherit"],
  });
  if (r.status === 0 && existsSync(join(dir, "link_enhance.ts"))) return dir;
  rmSync(dir, { recursive: true, force: true });
  return undefined;
}

/**
 * A linkweave pair for row 3 in processes of its own: a sender child (the
 * link of the tree at `dir`: this one, or today's code) that spawns its own
 * receiver and answers `rtt` with {@linkcode lwRtt}. So the two links share
 * no heap (and no V8 object shapes) with each other or with the baselines.
 *
 * @param dir The tree.
 * @returns The sender.
 */
function lwSender(dir: string): Promise<Child> {
  return spawnRole(SCRIPT, "lw-sender", { args: [dir] });
}

/** The role of {@linkcode lwSender}. */
async function lwSenderRole(dir: string): Promise<void> {
  const mod = await import(pathToFileURL(join(dir, "link_enhance.ts")).href);
  const peer = await spawnRole(SCRIPT, "lw-peer", { args: [dir] });
  const dev: Device = (mod.createDevice as typeof createDevice)({
    deviceId: ROW3_SENDER,
    port: 0,
    bind: "127.0.0.1",
    discovery: "off",
    peers: [`${ROW3_RECEIVER}@127.0.0.1:${peer.ready.lw}`],
  });
  await dev.runtime();
  (await connectTo(dev, "echo", ROW3_RECEIVER)).close();
  const pair: LwPair = { dev, peer, peerId: ROW3_RECEIVER };
  serveRole(null, { rtt: ({ loaded }) => lwRtt(pair, loaded) });
}

// ------------------------------------------------------------ row 5

/** The receiving end for the memory row: holds every connection it accepts. */
async function memPeerRole(): Promise<void> {
  const dev = createDevice({
    deviceId: RECEIVER,
    port: 0,
    bind: "127.0.0.1",
    discovery: "off",
    limits: { streamsPerLink: 5 * IDLE_CONNS },
  });
  const rt = await dev.runtime();
  const held: unknown[] = [];
  const idle = dev.createServer("idle");
  idle.on("connectionAccepted", (c) => {
    c.on("dataReceived", () => {});
    held.push(c);
  });
  idle.start();
  const raw = await rawListen((s) => {
    held.push(s);
    return () => {};
  });
  const yServer = net.createServer((socket) => {
    const m = yamuxOver(socket, false);
    held.push(m);
    m.addEventListener("stream", (evt) => {
      const s = (evt as CustomEvent<YamuxStream>).detail;
      s.addEventListener("message", () => {});
      held.push(s);
    });
  });
  await new Promise<void>((r) => yServer.listen(0, "127.0.0.1", () => r()));
  serveRole({
    lw: rt.port,
    raw: raw.port,
    yamux: (yServer.address() as net.AddressInfo).port,
  }, {
    count: () => held.length,
    rss: rss,
    heap: () => process.memoryUsage().heapUsed,
  });
}

async function rss(): Promise<number> {
  for (let i = 0; i < 3; i++) {
    collect();
    await sleep(50);
  }
  return process.memoryUsage().rss;
}

/** The opening end for the memory row. */
function memClientRole(): void {
  const held: unknown[] = [];
  let dev: Device | undefined;
  let mux: ReturnType<typeof yamuxOver> | undefined;
  serveRole(null, {
    rss: rss,
    heap: () => process.memoryUsage().heapUsed,
    async open({ kind, count, ports }) {
      if (kind === "lw") {
        dev ??= createDevice({
          deviceId: SENDER,
          port: 0,
          bind: "127.0.0.1",
          discovery: "off",
          peers: [`${RECEIVER}@127.0.0.1:${ports.lw}`],
          limits: { connections: 10_000, streamsPerLink: 5 * IDLE_CONNS },
        });
        const d = dev;
        const conns = await Promise.all(
          Array.from({ length: count }, () => connectTo(d, "idle")),
        );
        for (const c of conns) c.on("dataReceived", () => {});
        held.push(...conns);
      } else if (kind === "raw") {
        for (let i = 0; i < count; i++) held.push(await rawConnect(ports.raw, () => {}));
      } else {
        if (mux === undefined) {
          const socket = net.connect({ host: "127.0.0.1", port: ports.yamux });
          await new Promise((r) => socket.once("connect", r));
          held.push(socket);
          mux = yamuxOver(socket, true);
        }
        const m = mux;
        const streams = await Promise.all(Array.from({ length: count }, () => m.createStream()));
        for (const s of streams) {
          s.addEventListener("message", () => {});
          // A yamux stream opens (SYN) with its first frame.
          s.send(new Uint8Array([0]));
        }
        held.push(...streams);
      }
    },
  });
}

/** Row 5's figures of one run, bytes per connection, both ends. */
interface MemRun {
  /** RSS per connection over the further {@linkcode IDLE_MORE}. */
  rss: number;
  /** JavaScript heap in use, likewise. */
  heap: number;
  /** RSS per connection over the first {@linkcode IDLE_CONNS}. */
  rssFirst: number;
}

/**
 * Bytes per idle connection, both ends, in fresh processes: of RSS, and of
 * the JavaScript heap in use (what the objects of a connection hold). The
 * figure is the cost of each further connection: the growth from
 * {@linkcode IDLE_CONNS} to {@linkcode IDLE_CONNS} + {@linkcode IDLE_MORE}
 * connections, so that the one-time growth of the first burst (allocator
 * arenas and heap pages the runtime keeps, by every kind alike) is left out;
 * that first burst's average is returned beside it.
 */
async function memoryPerConnection(kind: "lw" | "raw" | "yamux"): Promise<MemRun> {
  const peer = await spawnRole(SCRIPT, "mem-peer", { gc: true });
  const client = await spawnRole(SCRIPT, "mem-client", { gc: true });
  const ports = peer.ready;
  // Each side holds one object per connection (yamux: one more for the session).
  const extra = kind === "yamux" ? 1 : 0;
  const until = async (n: number) => {
    const deadline = performance.now() + 20_000;
    while (await peer.call("count") < n + extra) {
      if (performance.now() > deadline) throw new Error(`${kind}: peer never saw ${n}`);
      await sleep(20);
    }
  };
  await client.call("open", { kind, count: IDLE_WARM, ports });
  await until(IDLE_WARM);
  const [c0, p0] = [await client.call("rss"), await peer.call("rss")];
  await client.call("open", { kind, count: IDLE_CONNS, ports });
  await until(IDLE_WARM + IDLE_CONNS);
  await sleep(100);
  const [c1, p1] = [await client.call("rss"), await peer.call("rss")];
  const [hc1, hp1] = [await client.call("heap"), await peer.call("heap")];
  await client.call("open", { kind, count: IDLE_MORE, ports });
  await until(IDLE_WARM + IDLE_CONNS + IDLE_MORE);
  await sleep(100);
  const [c2, p2] = [await client.call("rss"), await peer.call("rss")];
  const [hc2, hp2] = [await client.call("heap"), await peer.call("heap")];
  await client.close();
  await peer.close();
  return {
    rss: (c2 - c1 + p2 - p1) / IDLE_MORE,
    heap: (hc2 - hc1 + hp2 - hp1) / IDLE_MORE,
    rssFirst: (c1 - c0 + p1 - p0) / IDLE_CONNS,
  };
}

// ------------------------------------------------------------ row 6

/**
 * Milliseconds a fresh device (a new id, so a new link) takes from started
 * to its first connection open: TCP connect, handshake, stream open.
 */
async function freshConnect(
  n: number,
  peerId: string,
  port: number,
  security: "account" | "none",
): Promise<number> {
  const id = FRESH + n.toString(16).padStart(2, "0").toUpperCase();
  const dev = createDevice({
    deviceId: id,
    port: 0,
    bind: "127.0.0.1",
    discovery: "off",
    security,
    peers: [`${peerId}@127.0.0.1:${port}`],
  });
  await dev.runtime();
  const t0 = performance.now();
  const c = await connectTo(dev, "echo", peerId);
  const ms = performance.now() - t0;
  c.close();
  await dev.close();
  return ms;
}

// ------------------------------------------------------------ main

async function main(): Promise<void> {
  const reps = Number(flag("--reps") ?? 3);
  const only = flag("--rows")?.split(",");
  const wanted = (r: string) => only === undefined || only.includes(r);
  const rows: Row[] = [];
  const log = (s: string) => console.log(`  ${s}`);
  const fmt = (xs: number[], d = 0) => xs.map((x) => x.toFixed(d)).join(", ");
  const failures: string[] = [];
  /** Run one part; a failure is reported and the other parts still run. */
  const part = async (what: string, fn: () => Promise<void>) => {
    try {
      await fn();
    } catch (e) {
      failures.push(`${what}: ${(e as Error).message}`);
      log(`FAILED ${what}: ${(e as Error).message}`);
    }
  };

  const peer = await spawnRole(SCRIPT, "peer");
  const ports = peer.ready as PeerPorts;
  const dev = createDevice({
    deviceId: SENDER,
    port: 0,
    bind: "127.0.0.1",
    discovery: "off",
    peers: [`${RECEIVER}@127.0.0.1:${ports.lw}`],
    limits: { connections: 1000 },
  });
  await dev.runtime();
  // Bring the link up and warm both ends' code paths.
  (await connectTo(dev, "echo")).close();

  let single = NaN;
  if (wanted("1") || wanted("2")) {
    await part("row 1", async () => {
      await rawThroughput(ports.rawSink);
      await lwThroughput(dev);
      const raw: number[] = [];
      const ours: number[] = [];
      const cpu = { raw: [] as string[], ours: [] as string[] };
      const pct = (x: number) => `${Math.round(x * 100)}%`;
      for (let i = 0; i < reps; i++) {
        const [r, rs, rr] = await busy(peer, () => rawThroughput(ports.rawSink));
        const [o, os, or] = await busy(peer, () => lwThroughput(dev));
        raw.push(r);
        ours.push(o);
        cpu.raw.push(`${pct(rs)}/${pct(rr)}`);
        cpu.ours.push(`${pct(os)}/${pct(or)}`);
      }
      log(`1 KiB messages/s, raw ${RAW_NAME}: ${fmt(raw)}; linkweave: ${fmt(ours)}`);
      log(
        `  CPU of one core, sender/receiver: raw ${cpu.raw.join(", ")}; ` +
          `linkweave ${cpu.ours.join(", ")}`,
      );
      single = median(ours);
      if (wanted("1")) {
        rows.push(row({
          name: "1 KiB sendData, one connection",
          value: single,
          unit: "msg/s",
          baseline: `raw ${RAW_NAME}, 1 KiB writes`,
          baselineValue: median(raw),
        }, { target: { on: "ratio", min: 1.0 } }));
      }
    });
  }

  if (wanted("2") || wanted("4")) {
    await part("rows 2 and 4", async () => {
      await lwMux(dev, peer);
      await yamuxMux(ports.yamux, peer);
      const ours: MuxRun[] = [];
      const ya: MuxRun[] = [];
      for (let i = 0; i < reps; i++) {
        ours.push(await lwMux(dev, peer));
        ya.push(await yamuxMux(ports.yamux, peer));
      }
      for (const [name, runs] of [["linkweave", ours], ["yamux", ya]] as const) {
        log(
          `${MUX_CONNS} streams, ${name}: MB/s ${fmt(runs.map((r) => r.mbps), 1)}; ` +
            `Jain ${fmt(runs.map((r) => r.jain), 3)}; streams seen ${fmt(runs.map((r) => r.n))}`,
        );
      }
      const mbps = median(ours.map((r) => r.mbps));
      const yMbps = median(ya.map((r) => r.mbps));
      if (wanted("2")) {
        rows.push(row({
          name: `${MUX_CONNS} connections over one link, total`,
          value: mbps,
          unit: "MB/s",
          baseline: "linkweave, one connection",
          baselineValue: single * MSG / 1e6,
        }));
        rows.push(row({
          name: `${MUX_CONNS} connections over one link, Jain's index`,
          value: median(ours.map((r) => r.jain)),
          unit: "index",
          baseline: `yamux, ${MUX_CONNS} streams`,
          baselineValue: median(ya.map((r) => r.jain)),
        }, { target: { on: "value", min: 0.95 } }));
      }
      if (wanted("4")) {
        rows.push(row({
          name: `${MUX_CONNS} streams x 1 KiB messages, total`,
          value: mbps,
          unit: "MB/s",
          baseline: "libp2p-yamux 8.0.1, node:net",
          baselineValue: yMbps,
        }, { target: { on: "ratio", min: 1.0 } }));
      }
    });
  }

  if (wanted("3")) {
    const rev = flag("--today") ?? TODAY;
    let today: Child | undefined;
    if (rev !== "none") {
      const dir = todayTree(rev);
      if (dir !== undefined) today = await lwSender(dir);
      else console.log(`  today's code (${rev}) is not available from git: its rows are left out`);
    }
    const ours = await lwSender(ROOT);
    const todayName = `linkweave at ${rev.slice(0, 7)} (today's code)`;
    for (const loaded of [false, true]) {
      await part(`row 3${loaded ? " under load" : ""}`, async () => {
        const systems: [string, () => Promise<RttRun>][] = [
          ["raw", () => rawRtt(ports, peer, loaded)],
          ["linkweave", () => ours.call("rtt", { loaded })],
        ];
        if (loaded) systems.push(["yamux", () => yamuxRtt(ports.yamuxRtt, peer, loaded)]);
        if (today !== undefined) systems.push(["today", () => today.call("rtt", { loaded })]);
        for (const [, run] of systems) await run(); // warm-up
        const runs = new Map<string, RttRun[]>(systems.map(([name]) => [name, []]));
        const load0 = loadavg()[0];
        for (let i = 0; i < reps; i++) {
          for (const [name, run] of systems) runs.get(name)!.push(await run());
        }
        const load = Math.round(Math.max(load0, loadavg()[0]) * 100) / 100;
        const when = loaded ? "under load" : "idle";
        const p = (name: string, q: number) => runs.get(name)!.map((r) => percentile(r.samples, q));
        const rates = (name: string) => runs.get(name)!.map((r) => r.load);
        for (const [name] of systems) {
          const load = loaded ? `; load carried (MB/s): ${fmt(rates(name))}` : "";
          const cpu = runs.get(name)!.flatMap((r) => r.cpu === undefined ? [] : [r.cpu]);
          const perMb = cpu.length === 0
            ? ""
            : `; CPU per MB sender/receiver (us): ${
              cpu.map(([a, b]) => `${a.toFixed(0)}/${b.toFixed(0)}`).join(", ")
            }`;
          const n = runs.get(name)!.map((r) => r.samples.length);
          log(
            `RTT ${when}, ${name}: p50 (us) ${fmt(p(name, 50))}; p99 ${fmt(p(name, 99))}` +
              `; round trips timed ${fmt(n)}${load}${perMb}`,
          );
        }
        log(`load average (1 min) while measuring: ${load}`);
        const span = (xs: number[]): [number, number] => [Math.min(...xs), Math.max(...xs)];
        const add = (
          name: string,
          ours: number[],
          base: { label: string; values: number[] },
          options: { lowerIsBetter?: boolean; target?: Target; unit?: string } = {},
        ) =>
          rows.push({
            ...row({
              name,
              value: median(ours),
              unit: options.unit ?? "us",
              baseline: base.label,
              baselineValue: median(base.values),
            }, { lowerIsBetter: options.lowerIsBetter ?? true, target: options.target }),
            range: span(ours),
            baselineRange: span(base.values),
            reps,
            load,
          } as Row);
        const raw = `raw ${RAW_NAME}${loaded ? ", loaded" : ""}`;
        if (!loaded) {
          for (const q of [50, 99]) {
            add(`1 KiB round trip p${q}, idle: linkweave`, p("linkweave", q), {
              label: raw,
              values: p("raw", q),
            });
          }
          if (today !== undefined) {
            add("1 KiB round trip p50, idle: linkweave", p("linkweave", 50), {
              label: todayName,
              values: p("today", 50),
            }, { target: { on: "ratio", min: 0.909 } });
          }
          return;
        }
        for (const q of [50, 99]) {
          add(`1 KiB round trip p${q}, under load: linkweave`, p("linkweave", q), {
            label: raw,
            values: p("raw", q),
          }, { target: q === 99 ? { on: "ratio", min: 0.5 } : undefined });
          add(`1 KiB round trip p${q}, under load: linkweave`, p("linkweave", q), {
            label: "yamux, loaded",
            values: p("yamux", q),
          }, { target: q === 99 ? { on: "ratio", min: 1.0 } : undefined });
        }
        if (today !== undefined) {
          add("1 KiB round trip p99, under load: linkweave", p("linkweave", 99), {
            label: todayName,
            values: p("today", 99),
          });
          add("bulk carried while round trips run: linkweave", rates("linkweave"), {
            label: todayName,
            values: rates("today"),
          }, { lowerIsBetter: false, unit: "MB/s", target: { on: "ratio", min: 0.9 } });
        }
      });
    }
    await today?.close();
    await ours.close();
  }

  if (wanted("6")) {
    await part("row 6", async () => {
      const plainPeer = await spawnRole(SCRIPT, "plain-peer");
      const plainPort = (plainPeer.ready as { lw: number }).lw;
      const plain = createDevice({
        deviceId: PLAIN_SENDER,
        port: 0,
        bind: "127.0.0.1",
        discovery: "off",
        security: "none",
        peers: [`${PLAIN_RECEIVER}@127.0.0.1:${plainPort}`],
        limits: { connections: 1000 },
      });
      try {
        await plain.runtime();
        log(`security of the other rows: ${dev.config().security}`);
        if (dev.config().security !== "account") {
          throw new Error('the encrypted device does not run with security "account"');
        }
        (await connectTo(plain, "echo", PLAIN_RECEIVER)).close();
        await lwThroughput(plain, PLAIN_RECEIVER);
        const msgs = { enc: [] as number[], plain: [] as number[] };
        const mbps = { enc: [] as number[], plain: [] as number[] };
        for (let i = 0; i < reps; i++) {
          msgs.enc.push(await lwThroughput(dev));
          msgs.plain.push(await lwThroughput(plain, PLAIN_RECEIVER));
          mbps.enc.push((await lwMux(dev, peer)).mbps);
          mbps.plain.push((await lwMux(plain, plainPeer, PLAIN_RECEIVER)).mbps);
        }
        log(`1 KiB messages/s, encrypted ${fmt(msgs.enc)}; plaintext ${fmt(msgs.plain)}`);
        log(
          `${MUX_CONNS} connections, MB/s, encrypted ${fmt(mbps.enc, 1)}; ` +
            `plaintext ${fmt(mbps.plain, 1)}`,
        );
        const hs = { enc: [] as number[], plain: [] as number[] };
        for (let i = 0; i < HANDSHAKES; i++) {
          hs.enc.push(await freshConnect(2 * i, RECEIVER, ports.lw, "account"));
          hs.plain.push(await freshConnect(2 * i + 1, PLAIN_RECEIVER, plainPort, "none"));
        }
        const us = (xs: number[], p: number) => percentile(xs, p) * 1000;
        log(
          `first connection of a fresh device, ms: encrypted p50 ${
            (us(hs.enc, 50) / 1000).toFixed(2)
          } p99 ${(us(hs.enc, 99) / 1000).toFixed(2)}; plaintext p50 ${
            (us(hs.plain, 50) / 1000).toFixed(2)
          } p99 ${(us(hs.plain, 99) / 1000).toFixed(2)}`,
        );
        const enough: Target = { on: "ratio", min: 0.8 };
        rows.push(row({
          name: "1 KiB sendData, one connection, encrypted",
          value: median(msgs.enc),
          unit: "msg/s",
          baseline: "the same, plaintext (security none)",
          baselineValue: median(msgs.plain),
        }, { target: enough }));
        rows.push(row({
          name: `${MUX_CONNS} connections over one link, total, encrypted`,
          value: median(mbps.enc),
          unit: "MB/s",
          baseline: "the same, plaintext (security none)",
          baselineValue: median(mbps.plain),
        }, { target: enough }));
        for (const p of [50, 99]) {
          rows.push(row({
            name: `first connection of a fresh device p${p}, encrypted`,
            value: us(hs.enc, p),
            unit: "us",
            baseline: "the same, plaintext (security none)",
            baselineValue: us(hs.plain, p),
          }, { lowerIsBetter: true }));
        }
      } finally {
        await plain.close();
        await plainPeer.close();
      }
    });
  }

  await dev.close();
  await peer.close();

  if (wanted("5")) {
    await part("row 5", async () => {
      type Kind = "lw" | "raw" | "yamux";
      const m: Record<Kind, number[]> = { lw: [], raw: [], yamux: [] };
      const h: Record<Kind, number[]> = { lw: [], raw: [], yamux: [] };
      const f: Record<Kind, number[]> = { lw: [], raw: [], yamux: [] };
      for (let i = 0; i < reps; i++) {
        for (const kind of ["raw", "lw", "yamux"] as const) {
          const got = await memoryPerConnection(kind);
          m[kind].push(got.rss);
          h[kind].push(got.heap);
          f[kind].push(got.rssFirst);
        }
      }
      log(
        `RSS bytes per further idle connection (both ends): raw ${fmt(m.raw)}; ` +
          `linkweave ${fmt(m.lw)}; yamux ${fmt(m.yamux)}`,
      );
      log(
        `RSS bytes per connection of the first ${IDLE_CONNS} (both ends): raw ${fmt(f.raw)}; ` +
          `linkweave ${fmt(f.lw)}; yamux ${fmt(f.yamux)}`,
      );
      log(
        `heap bytes per idle connection (both ends): raw ${fmt(h.raw)}; linkweave ${fmt(h.lw)}; ` +
          `yamux ${fmt(h.yamux)}`,
      );
      // Issue 11's target: at most 4 KiB for both ends together.
      const small: Target = { on: "value", max: 4096 };
      for (const [what, v] of [["memory", m], ["JS heap", h]] as const) {
        rows.push(row({
          name: `${what} per idle connection, both ends`,
          value: median(v.lw),
          unit: "bytes",
          baseline: `raw ${RAW_NAME} connection pair`,
          baselineValue: median(v.raw),
        }, { lowerIsBetter: true, target: small }));
        rows.push(row({
          name: `${what} per idle connection, both ends`,
          value: median(v.lw),
          unit: "bytes",
          baseline: "yamux stream, node:net",
          baselineValue: median(v.yamux),
        }, { lowerIsBetter: true, target: small }));
      }
      rows.push(row({
        name: `memory per connection of the first ${IDLE_CONNS}, both ends`,
        value: median(f.lw),
        unit: "bytes",
        baseline: `raw ${RAW_NAME} connection pair`,
        baselineValue: median(f.raw),
      }, { lowerIsBetter: true }));
    });
  }

  console.log(report("link", rows));
  if (failures.length > 0) {
    console.log(`\nFailed:\n${failures.map((f) => `  - ${f}`).join("\n")}`);
  }
  process.exit(failures.length > 0 ? 1 : 0);
}

const role = process.argv[2];
if (role === "peer") await peerRole(createDevice, { deviceId: RECEIVER, linkOnly: false });
else if (role === "lw-sender") await lwSenderRole(process.argv[3]);
else if (role === "lw-peer") {
  const mod = await import(pathToFileURL(join(process.argv[3], "link_enhance.ts")).href);
  await peerRole(mod.createDevice, { deviceId: ROW3_RECEIVER, linkOnly: true });
} else if (role === "plain-peer") {
  await peerRole(createDevice, { deviceId: PLAIN_RECEIVER, linkOnly: true, security: "none" });
} else if (role === "mem-peer") await memPeerRole();
else if (role === "mem-client") memClientRole();
else await main();

/**
 * Socket benchmark: linkweave's `socket` beside the same runtime's raw API,
 * in the same run, against the same receiver in a separate process (a plain
 * `node:net` / `node:dgram` sink running on this runtime).
 *
 * Run: `deno run -A bench/socket_bench.ts`, `bun bench/socket_bench.ts`, and
 * `deno run -A bench/socket_bench.ts --node` (bundles this file with esbuild
 * into `bench/`, runs the bundle on Node, removes it). `--rows tcp64,udp`
 * measures some rows only (`tcp64`, `tcp1k`, `udp`), `--pairs N` sets the
 * number of measured pairs (default 5).
 *
 * @module
 */
import { spawn, spawnSync } from "node:child_process";
import * as dgram from "node:dgram";
import { rmSync } from "node:fs";
import * as net from "node:net";
import { dirname, join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { report, type Row, row } from "./_report.ts";
import { RUNTIME } from "../tests/harness/env.ts";
import { constructTCPSocketInstance, constructUDPSocketInstance } from "../socket.ts";

/** Bytes per TCP run (a run of 64 KiB sends lasts about 0.15 s on loopback). */
const TOTAL = 512 * 1024 * 1024;
const DATAGRAMS = 100_000;

type Sender = (port: number, size: number) => Promise<number>;

function flag(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function main() {
  const script = fileURLToPath(import.meta.url);
  const args = RUNTIME === "deno" ? ["run", "-A", script, "recv"] : [script, "recv"];
  const child = spawn(process.execPath, args, { stdio: ["pipe", "pipe", "inherit"] });
  const ports = await new Promise<{ tcp: number; udp: number }>((resolve) => {
    let buf = "";
    child.stdout!.on("data", (b: Uint8Array) => {
      buf += new TextDecoder().decode(b);
      if (buf.includes("\n")) resolve(JSON.parse(buf.split("\n")[0]));
    });
  });
  const only = flag("--rows")?.split(",");
  const pairs = Number(flag("--pairs") ?? 5);
  const wanted = (r: string) => only === undefined || only.includes(r);
  const rows: Row[] = [];
  const target = { on: "ratio" as const, min: 0.9 };
  // One discarded warm-up run of each side, then `pairs` runs of each,
  // alternating (raw, ours, raw, ...) so that a drift in machine load hits
  // both; the best run of each side (noise only ever slows a run down).
  // Printed too, to judge a change on a loaded machine: the sender process's
  // CPU time (user + system) per run, raw / ours (the same work on both sides).
  const cpu = async (f: () => Promise<number>): Promise<[number, number]> => {
    const c0 = process.cpuUsage();
    const v = await f();
    const c = process.cpuUsage(c0);
    return [v, c.user + c.system];
  };
  const median = (xs: number[]) => xs.sort((x, y) => x - y)[xs.length >> 1];
  const best = async (raw: () => Promise<number>, ours: () => Promise<number>) => {
    await raw();
    await ours();
    const b = [0, 0];
    const ratios: number[] = [];
    const cpuRatios: number[] = [];
    for (let i = 0; i < pairs; i++) {
      const [r, rc] = await cpu(raw);
      const [o, oc] = await cpu(ours);
      b[0] = Math.max(b[0], r);
      b[1] = Math.max(b[1], o);
      ratios.push(o / r);
      cpuRatios.push(rc / oc);
    }
    const f = (xs: number[]) => xs.map((x) => x.toFixed(2)).join(" ");
    console.log(
      `  pair ratios ${f(ratios)} (median ${median(ratios).toFixed(2)}); CPU raw/ours ${
        f(cpuRatios)
      } (median ${median(cpuRatios).toFixed(2)})`,
    );
    return b;
  };
  for (const size of [65536, 1024]) {
    if (!wanted(size === 65536 ? "tcp64" : "tcp1k")) continue;
    const [raw, ours] = await best(
      () => RAW_TCP[RUNTIME](ports.tcp, size),
      () => oursTcp(ports.tcp, size),
    );
    rows.push(row({
      name: `TCP loopback, ${size === 65536 ? "64 KiB" : "1 KiB"} sends, separate receiver`,
      value: ours,
      unit: "MB/s",
      baseline: `raw ${RAW_NAME[RUNTIME]}`,
      baselineValue: raw,
    }, { target }));
  }
  if (wanted("udp")) {
    const [rawU, oursU] = await best(
      () => RAW_UDP[RUNTIME](ports.udp, 1024),
      () => oursUdp(ports.udp, 1024),
    );
    rows.push(row({
      name: "UDP loopback, 1 KiB datagrams sent",
      value: oursU,
      unit: "dgram/s",
      baseline: `raw ${RAW_UDP_NAME[RUNTIME]}`,
      baselineValue: rawU,
    }, { target }));
  }
  child.stdin!.end();
  console.log(report("socket", rows));
  process.exit(0);
}

/**
 * Bundle this file for Node next to itself (so that the results land in
 * `bench/results/`), run it there with the same arguments, and remove it.
 */
function onNode(): never {
  const here = fileURLToPath(import.meta.url);
  const out = join(dirname(here), ".socket_bench-node.mjs");
  const esbuild = join(dirname(here), "..", "node_modules", ".bin", "esbuild");
  let status = 1;
  const b = spawnSync(esbuild, [
    "--bundle",
    "--platform=node",
    "--format=esm",
    "--log-level=warning",
    here,
    `--outfile=${out}`,
  ], { stdio: "inherit" });
  if (b.status === 0) {
    const args = process.argv.slice(2).filter((a) => a !== "--node");
    status = spawnSync("node", [out, ...args], { stdio: "inherit" }).status ?? 1;
  }
  rmSync(out, { force: true });
  process.exit(status);
}

function chunk(size: number): Uint8Array {
  const c = new Uint8Array(size);
  for (let i = 0; i < size; i++) c[i] = i & 0xff;
  return c;
}

const mbps = (t0: number) => TOTAL / 1e6 / ((performance.now() - t0) / 1000);

async function oursTcp(port: number, size: number): Promise<number> {
  const tcp = constructTCPSocketInstance();
  const done = new Promise<void>((r) => tcp.on("message", () => r()));
  await tcp.connect({ address: { address: "127.0.0.1", port } });
  const data = chunk(size).buffer as ArrayBuffer;
  const t0 = performance.now();
  for (let sent = 0; sent < TOTAL; sent += size) await tcp.send({ data });
  await done;
  const v = mbps(t0);
  await tcp.close();
  return v;
}

const RAW_NAME = { deno: "Deno.connect", bun: "Bun.connect", node: "node:net" };
const RAW_UDP_NAME = { deno: "node:dgram (Deno)", bun: "Bun.udpSocket", node: "node:dgram" };

const RAW_TCP: Record<"deno" | "bun" | "node", Sender> = {
  async deno(port, size) {
    const D = (globalThis as unknown as {
      Deno: {
        connect(o: { hostname: string; port: number }): Promise<{
          write(b: Uint8Array): Promise<number>;
          read(b: Uint8Array): Promise<number | null>;
          close(): void;
        }>;
      };
    }).Deno;
    const conn = await D.connect({ hostname: "127.0.0.1", port });
    const data = chunk(size);
    const done = conn.read(new Uint8Array(1));
    const t0 = performance.now();
    for (let sent = 0; sent < TOTAL; sent += size) {
      let off = 0;
      while (off < size) off += await conn.write(data.subarray(off));
    }
    await done;
    const v = mbps(t0);
    conn.close();
    return v;
  },
  async bun(port, size) {
    type S = { write(b: Uint8Array): number; end(): void };
    let wake: () => void = () => {};
    let finished: () => void = () => {};
    const done = new Promise<void>((r) => (finished = r));
    const B = (globalThis as unknown as {
      Bun: { connect(o: unknown): Promise<S> };
    }).Bun;
    const s = await B.connect({
      hostname: "127.0.0.1",
      port,
      socket: { data: () => finished(), drain: () => wake(), close() {} },
    });
    const data = chunk(size);
    const t0 = performance.now();
    for (let sent = 0; sent < TOTAL; sent += size) {
      let off = 0;
      while (off < size) {
        const n = s.write(data.subarray(off));
        if (n > 0) off += n;
        if (off < size) await new Promise<void>((r) => (wake = r));
      }
    }
    await done;
    const v = mbps(t0);
    s.end();
    return v;
  },
  async node(port, size) {
    const s = net.connect({ host: "127.0.0.1", port });
    await new Promise((r) => s.once("connect", r));
    const done = new Promise((r) => s.once("data", r));
    const data = chunk(size);
    const t0 = performance.now();
    for (let sent = 0; sent < TOTAL; sent += size) {
      if (!s.write(data)) await new Promise((r) => s.once("drain", r));
    }
    await done;
    const v = mbps(t0);
    s.destroy();
    return v;
  },
};

async function oursUdp(port: number, size: number): Promise<number> {
  const udp = constructUDPSocketInstance();
  await udp.bind({ address: "127.0.0.1", port: 0 });
  const data = chunk(size).buffer as ArrayBuffer;
  const address = { address: "127.0.0.1", port };
  const t0 = performance.now();
  for (let i = 0; i < DATAGRAMS; i++) await udp.send({ data, address });
  const v = DATAGRAMS / ((performance.now() - t0) / 1000);
  await udp.close();
  return v;
}

async function dgramRaw(port: number, size: number): Promise<number> {
  const s = dgram.createSocket("udp4");
  await new Promise<void>((r) => s.bind(0, "127.0.0.1", () => r()));
  const data = chunk(size);
  const t0 = performance.now();
  for (let i = 0; i < DATAGRAMS; i++) {
    await new Promise<void>((r, j) => s.send(data, port, "127.0.0.1", (e) => (e ? j(e) : r())));
  }
  const v = DATAGRAMS / ((performance.now() - t0) / 1000);
  s.close();
  return v;
}

const RAW_UDP: Record<"deno" | "bun" | "node", Sender> = {
  deno: dgramRaw,
  node: dgramRaw,
  async bun(port, size) {
    type U = { send(d: Uint8Array, p: number, a: string): boolean; close(): void };
    let wake: () => void = () => {};
    const B = (globalThis as unknown as { Bun: { udpSocket(o: unknown): Promise<U> } }).Bun;
    const s = await B.udpSocket({
      hostname: "127.0.0.1",
      port: 0,
      socket: { data() {}, drain: () => wake() },
    });
    const data = chunk(size);
    const t0 = performance.now();
    for (let i = 0; i < DATAGRAMS; i++) {
      while (!s.send(data, port, "127.0.0.1")) await new Promise<void>((r) => (wake = r));
    }
    const v = DATAGRAMS / ((performance.now() - t0) / 1000);
    s.close();
    return v;
  },
};

if (process.argv.includes("--node")) {
  onNode();
} else if (process.argv.includes("recv")) {
  const server = net.createServer((s) => {
    let n = 0;
    s.on("data", (b: Uint8Array) => {
      n += b.byteLength;
      if (n >= TOTAL) s.write("k");
    });
    s.on("error", () => {});
  });
  server.listen(0, "127.0.0.1", () => {
    const u = dgram.createSocket("udp4");
    u.on("message", () => {});
    u.bind(0, "127.0.0.1", () => {
      const tcp = (server.address() as net.AddressInfo).port;
      console.log(JSON.stringify({ tcp, udp: u.address().port }));
    });
  });
  process.stdin.on("data", () => {});
  process.stdin.on("end", () => process.exit(0));
} else {
  await main();
}

/**
 * Multipath benchmark (issue 14), on the lab of `scripts/netlab.ts`: client,
 * router and server namespaces joined by shaped paths. For each topology,
 *
 * - 2 x 10 Mbit/s 20 ms,
 * - 4 x 10 Mbit/s 20 ms,
 * - 10 Mbit/s 20 ms + 2 Mbit/s 80 ms (RTTs),
 *
 * it measures side by side, alternating and repeated, client to server with
 * iperf3 (payload Mbit/s at the receiver over the whole run):
 *
 * 1. one TCP connection over the best single path (highest rate);
 * 2. N parallel TCP connections, one per path (their sum);
 * 3. kernel MPTCP (`mptcpize run iperf3`, server announcing every path);
 * 4. our link over N channels, once `bench/_multipath_link.ts` fills its slot.
 *
 * The router's queue counters say which paths each run used; a kernel MPTCP
 * or linkweave run that leaves a path idle is reported as a failure. On the unequal
 * topology it also measures the p99 of 1 KiB request/response round trips on
 * a separate plain TCP connection over the fast path while N parallel TCP
 * connections saturate every path, beside the same connection idle (and our
 * link's round trips under its own load, once that slot is filled).
 *
 * Rows (`bench/results/multipath-<runtime>.json`) keep medians, with the
 * slowest and fastest repetition in `range` / `baselineRange`. Flags:
 * `--seconds N` per run (default 10), `--reps N` (default 3), `--topologies
 * 2x10,4x10,10+2`, `--no-latency`, `--prefix P` (the lab's names start with
 * it; default `nlb`). A run of some topologies, or without the latency rows,
 * replaces only the rows it measured in the results file. Needs root and
 * Debian's iproute2, iptables, python3-minimal, iputils-ping, iperf3 and
 * mptcpize; without them it prints what to install and exits 0.
 *
 * Run: `npm run bench:multipath` (Deno, then Bun), or `deno run -A
 * bench/multipath_bench.ts --reps 1 --seconds 5`; then `deno run -A
 * scripts/bench_chart.ts bench/results/multipath-deno.json
 * docs/multichannel-throughput.svg` draws the chart.
 *
 * @module
 */
import * as net from "node:net";
import { loadavg } from "node:os";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { report, type Row, row, type Target } from "./_report.ts";
import { serveRole, sleep, spawnRole } from "./_ctl.ts";
import { linkRoundTrips, linkThroughput } from "./_multipath_link.ts";
import { missing } from "../tests/harness/env.ts";
import { type Lab, LAB_NEEDS, type Shape, type Side, up } from "../scripts/netlab.ts";
import { type ChildProcess, spawn } from "node:child_process";

const SCRIPT = fileURLToPath(import.meta.url);
// `--prefix` names the lab (namespaces `<prefix><tag>-c|r|s`), so runs of several people never meet.
const PREFIX = flag("--prefix") ?? "nlb";
const PLAIN_PORT = 5201;
const MPTCP_PORT = 5300;
const ECHO_PORT = 5400;
const MSG = 1024;
const IDLE_MS = 3000;
const LOAD_WARM_MS = 2000;
const OURS = "linkweave, one channel per path";

interface Topology {
  key: string;
  label: string;
  paths: Shape[];
}

const TOPOLOGIES: Topology[] = [
  {
    key: "2x10",
    label: "2 x 10 Mbit/s 20 ms",
    paths: [{ rateMbit: 10, rttMs: 20 }, { rateMbit: 10, rttMs: 20 }],
  },
  {
    key: "4x10",
    label: "4 x 10 Mbit/s 20 ms",
    paths: Array.from({ length: 4 }, () => ({ rateMbit: 10, rttMs: 20 })),
  },
  {
    key: "10+2",
    label: "10 Mbit/s 20 ms + 2 Mbit/s 80 ms",
    paths: [{ rateMbit: 10, rttMs: 20 }, { rateMbit: 2, rttMs: 80 }],
  },
];

/** A row with the spread of its repetitions (as `bench/framing_bench.ts` keeps them). */
interface RangedRow extends Row {
  /** Repetitions behind the medians. */
  reps: number;
  /** Slowest and fastest repetition of the value. */
  range: [number, number];
  /** Slowest and fastest repetition of the baseline. */
  baselineRange: [number, number];
  /** The 1-minute load average after the topology's runs. */
  load: number;
  /** Per path, Mbit/s the router forwarded to the server in the value's runs (medians). */
  paths?: number[];
}

/** What one run of a system measured. */
interface Run {
  /** Payload Mbit/s at the receiver. */
  mbit: number;
  /** Per path, Mbit/s the router forwarded towards the server (headers included). */
  paths: number[];
}

function unequal(topology: Topology): boolean {
  const [first] = topology.paths;
  return topology.paths.some((p) => p.rateMbit !== first.rateMbit || p.rttMs !== first.rttMs);
}

function flag(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const spread = (xs: number[]): [number, number] => [Math.min(...xs), Math.max(...xs)];

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

function ranged(
  fields: { name: string; unit: string; baseline: string },
  values: number[],
  baselines: number[],
  options: { lowerIsBetter?: boolean; target?: Target; paths?: number[] } = {},
): RangedRow {
  const r = row(
    { ...fields, value: median(values), baselineValue: median(baselines) },
    { lowerIsBetter: options.lowerIsBetter, target: options.target },
  );
  const out: RangedRow = {
    ...r,
    reps: values.length,
    range: spread(values),
    baselineRange: spread(baselines),
    load: Math.round(loadavg()[0] * 100) / 100,
  };
  if (options.paths !== undefined) out.paths = options.paths.map((m) => Math.round(m * 100) / 100);
  return out;
}

// ---------------------------------------------------------------------------
// Child roles, run in the lab's namespaces: a 1 KiB echo server and a client
// timing round trips over one connection.

function roles(role: string): void {
  if (role === "echo") {
    serveRole({}, {
      listen: ({ address, port }: { address: string; port: number }) =>
        new Promise<void>((resolve, reject) => {
          const server = net.createServer((s) => {
            s.setNoDelay(true);
            s.on("data", (d: Uint8Array) => s.write(d));
            s.on("error", () => {});
          });
          server.on("error", reject);
          server.listen(port, address, () => resolve());
        }),
    });
    return;
  }
  let sock: net.Socket | undefined;
  let got = 0;
  let want = 0;
  let wake: (() => void) | undefined;
  serveRole({}, {
    connect: ({ address, port }: { address: string; port: number }) =>
      new Promise<void>((resolve, reject) => {
        const s = net.connect({ host: address, port }, () => resolve());
        s.setNoDelay(true);
        s.on("error", reject);
        s.on("data", (d: Uint8Array) => {
          got += d.byteLength;
          if (got >= want) wake?.();
        });
        sock = s;
      }),
    measure: async ({ ms }: { ms: number }) => {
      const msg = new Uint8Array(MSG).fill(7);
      const out: number[] = [];
      const end = performance.now() + ms;
      while (performance.now() < end) {
        const t0 = performance.now();
        want += MSG;
        const arrived = new Promise<void>((r) => (wake = r));
        sock!.write(msg);
        if (got < want) await arrived;
        out.push(performance.now() - t0);
      }
      return out;
    },
  });
}

// ---------------------------------------------------------------------------
// Processes in the lab.

interface Started {
  proc: ChildProcess;
  out: () => string;
  exit: Promise<number | null>;
}

function inLab(lab: Lab, side: Side, argv: string[]): Started {
  const [cmd, ...args] = lab.command(side, argv);
  const proc = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  proc.stdout!.on("data", (b: Uint8Array) => (out += new TextDecoder().decode(b)));
  proc.stderr!.on("data", (b: Uint8Array) => (out += new TextDecoder().decode(b)));
  const exit = new Promise<number | null>((r) => proc.on("close", (code) => r(code)));
  return { proc, out: () => out, exit };
}

async function waitOutput(p: Started, text: string, ms: number): Promise<void> {
  const until = Date.now() + ms;
  while (!p.out().includes(text)) {
    if (Date.now() > until || p.proc.exitCode !== null) {
      throw new Error(`Cannot start "${p.proc.spawnargs.join(" ")}": ${p.out()}`);
    }
    await sleep(20);
  }
}

/** Run iperf3 clients at once; each one's received Mbit/s. */
async function iperf(lab: Lab, clients: string[][]): Promise<number[]> {
  const runs = clients.map((argv) => inLab(lab, "client", argv));
  return await Promise.all(runs.map(async (p) => {
    const code = await p.exit;
    let doc: { error?: string; end?: { sum_received?: { bits_per_second: number } } };
    try {
      doc = JSON.parse(p.out());
    } catch {
      throw new Error(`iperf3 said: ${p.out().slice(0, 500)}`);
    }
    if (code !== 0 || doc.end?.sum_received === undefined) {
      throw new Error(`iperf3 failed (${code}): ${doc.error ?? p.out().slice(0, 500)}`);
    }
    return doc.end.sum_received.bits_per_second / 1e6;
  }));
}

async function pingMin(lab: Lab, address: string): Promise<number | undefined> {
  const p = inLab(lab, "client", ["ping", "-n", "-q", "-c", "5", "-i", "0.2", address]);
  await p.exit;
  const m = /= ([\d.]+)\//.exec(p.out());
  return m === null ? undefined : Number(m[1]);
}

// ---------------------------------------------------------------------------

interface System {
  name: string;
  run(lab: Lab, seconds: number): Promise<number>;
}

function best(lab: Lab): number {
  const paths = lab.paths;
  return paths.reduce(
    (b, p) =>
      p.rateMbit > paths[b].rateMbit ||
        (p.rateMbit === paths[b].rateMbit && p.rttMs < paths[b].rttMs)
        ? p.index
        : b,
    0,
  );
}

function plainClient(lab: Lab, index: number, seconds: number): string[] {
  const p = lab.paths[index];
  return [
    "iperf3",
    "-J",
    "-t",
    String(seconds),
    "-c",
    p.serverAddress,
    "-p",
    `${PLAIN_PORT + index}`,
  ];
}

function systems(): System[] {
  const list: System[] = [
    {
      name: "single TCP, best path",
      run: async (lab, seconds) => (await iperf(lab, [plainClient(lab, best(lab), seconds)]))[0],
    },
    {
      name: "parallel TCP, one per path, sum",
      run: async (lab, seconds) => {
        const all = await iperf(lab, lab.paths.map((p) => plainClient(lab, p.index, seconds)));
        return all.reduce((a, b) => a + b, 0);
      },
    },
    {
      name: "kernel MPTCP",
      run: async (lab, seconds) => {
        const to = lab.paths[best(lab)].serverAddress;
        const argv = ["iperf3", "-J", "-t", String(seconds), "-c", to, "-p", `${MPTCP_PORT}`];
        return (await iperf(lab, [["mptcpize", "run", ...argv]]))[0];
      },
    },
  ];
  if (linkThroughput !== undefined) {
    const measure = linkThroughput;
    list.push({
      name: OURS,
      run: (lab, seconds) => measure(lab, { seconds }),
    });
  }
  return list;
}

async function measured(
  lab: Lab,
  system: System,
  seconds: number,
): Promise<Run> {
  const before = lab.counters();
  const t0 = performance.now();
  const mbit = await system.run(lab, seconds);
  const elapsed = (performance.now() - t0) / 1000;
  const after = lab.counters();
  const paths = after.map((c, i) =>
    ((c.toServerBytes - before[i].toServerBytes) * 8) / elapsed / 1e6
  );
  return { mbit, paths };
}

async function throughput(
  lab: Lab,
  topology: Topology,
  options: { seconds: number; reps: number },
  problems: string[],
): Promise<RangedRow[]> {
  const list = systems();
  const runs = new Map<string, Run[]>(list.map((s) => [s.name, []]));
  for (let rep = 0; rep < options.reps; rep++) {
    const order = rep % 2 === 0 ? list : [...list].reverse();
    for (const system of order) {
      const r = await measured(lab, system, options.seconds);
      runs.get(system.name)!.push(r);
      console.log(
        `  ${topology.label}, rep ${rep + 1}: ${system.name.padEnd(34)} ${
          r.mbit.toFixed(2).padStart(6)
        } Mbit/s  (per path ${r.paths.map((m) => m.toFixed(2)).join(" / ")})`,
      );
      if (system.name === "kernel MPTCP" || system.name === OURS) {
        for (const p of lab.paths) {
          // A path MPTCP (or our link) uses carries far more than a quarter of its rate.
          if (r.paths[p.index] < p.rateMbit / 4) {
            problems.push(
              `${topology.label}: ${system.name} left path ${p.index} idle (${
                r.paths[p.index].toFixed(2)
              } Mbit/s)`,
            );
          }
        }
      }
      await sleep(1000);
    }
  }
  const values = (name: string) => runs.get(name)!.map((r) => r.mbit);
  const pathMedians = (name: string) =>
    lab.paths.map((p) => median(runs.get(name)!.map((r) => r.paths[p.index])));
  const [single, sum, mptcp, ours] = list.map((s) => s.name);
  const named = (system: string, baseline: string) => ({
    name: `${topology.label}: ${system}`,
    unit: "Mbit/s",
    baseline,
  });
  const rows: RangedRow[] = [
    ranged(named(sum, single), values(sum), values(single), { paths: pathMedians(sum) }),
    ranged(named(mptcp, sum), values(mptcp), values(sum), { paths: pathMedians(mptcp) }),
    ranged(named(mptcp, single), values(mptcp), values(single), { paths: pathMedians(mptcp) }),
  ];
  if (ours !== undefined) {
    const paths = pathMedians(ours);
    const vs = (baseline: string, min?: number) =>
      ranged(named(ours, baseline), values(ours), values(baseline), {
        paths,
        ...(min === undefined ? {} : { target: { on: "ratio" as const, min } }),
      });
    rows.push(
      ...(unequal(topology)
        ? [vs(single, 1.0), vs(mptcp, 0.95), vs(sum)]
        : [vs(sum, 0.97), vs(mptcp, 1.0), vs(single)]),
    );
  }
  return rows;
}

async function latency(
  lab: Lab,
  topology: Topology,
  options: { seconds: number; reps: number },
): Promise<RangedRow[]> {
  const fast = best(lab);
  const path = lab.paths[fast];
  const slowRtt = Math.max(...lab.paths.map((p) => p.rttMs));
  const echo = await spawnRole(SCRIPT, "echo", { prefix: lab.command("server", []) });
  const rtt = await spawnRole(SCRIPT, "rtt", { prefix: lab.command("client", []) });
  const idle: number[] = [];
  const loaded: number[] = [];
  const ours: number[] = [];
  try {
    await echo.call("listen", { address: path.serverAddress, port: ECHO_PORT });
    await rtt.call("connect", { address: path.serverAddress, port: ECHO_PORT });
    for (let rep = 0; rep < options.reps; rep++) {
      const quiet: number[] = await rtt.call("measure", { ms: IDLE_MS });
      const load = iperf(
        lab,
        lab.paths.map((p) =>
          plainClient(lab, p.index, Math.ceil(options.seconds + LOAD_WARM_MS / 1000 + 1))
        ),
      );
      await sleep(LOAD_WARM_MS);
      const busy: number[] = await rtt.call("measure", { ms: options.seconds * 1000 });
      const carried = await load;
      idle.push(percentile(quiet, 99));
      loaded.push(percentile(busy, 99));
      console.log(
        `  ${topology.label}, rep ${
          rep + 1
        }: plain TCP 1 KiB round trip on path ${fast}: p50/p99 idle ${
          percentile(quiet, 50).toFixed(1)
        }/${percentile(quiet, 99).toFixed(1)} ms, under load ${percentile(busy, 50).toFixed(1)}/${
          percentile(busy, 99).toFixed(1)
        } ms (${busy.length} round trips; load ${
          carried.map((m) => m.toFixed(2)).join(" + ")
        } Mbit/s)`,
      );
      if (linkRoundTrips !== undefined) {
        const samples = await linkRoundTrips(lab, { seconds: options.seconds });
        ours.push(percentile(samples, 99));
        console.log(
          `  ${topology.label}, rep ${rep + 1}: linkweave 1 KiB round trip under load: p50/p99 ${
            percentile(samples, 50).toFixed(1)
          }/${percentile(samples, 99).toFixed(1)} ms (${samples.length} round trips)`,
        );
      }
      await sleep(1000);
    }
  } finally {
    await rtt.close();
    await echo.close();
  }
  const plainName = "plain TCP on the fast path, parallel TCP saturating every path";
  const rows = [
    ranged(
      {
        name: `${topology.label}: 1 KiB round trip p99 under bulk load, ${plainName}`,
        unit: "ms",
        baseline: "the same connection idle",
      },
      loaded,
      idle,
      { lowerIsBetter: true },
    ),
  ];
  if (ours.length > 0) {
    rows.push(ranged(
      {
        name:
          `${topology.label}: 1 KiB round trip p99 under bulk load, linkweave, one channel per path`,
        unit: "ms",
        baseline: plainName,
      },
      ours,
      loaded,
      { lowerIsBetter: true, target: { on: "value", max: slowRtt * 1.5 } },
    ));
  }
  return rows;
}

async function main(): Promise<number> {
  const gap = missing({
    root: true,
    commands: { ...LAB_NEEDS, ping: "iputils-ping", iperf3: "iperf3", mptcpize: "mptcpize" },
  });
  if (gap !== undefined) {
    console.log(`skip: bench:multipath ${gap}`);
    return 0;
  }
  const seconds = Number(flag("--seconds") ?? 10);
  const reps = Math.max(1, Number(flag("--reps") ?? 3));
  const keys = (flag("--topologies") ?? TOPOLOGIES.map((t) => t.key).join(",")).split(",");
  const chosen = TOPOLOGIES.filter((t) => keys.includes(t.key));
  if (chosen.length === 0) {
    console.error(`Cannot find topologies "${keys}": choose from ${TOPOLOGIES.map((t) => t.key)}`);
    return 2;
  }
  if (linkThroughput === undefined) {
    console.log("Our link's slot (bench/_multipath_link.ts) is empty: baselines only.");
  }
  const rows: RangedRow[] = [];
  const problems: string[] = [];
  let current: Lab | undefined;
  const stop = () => {
    current?.down();
    process.exit(130);
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
  for (const topology of chosen) {
    console.log(`\n## ${topology.label}`);
    const lab = await up(topology.paths, { prefix: PREFIX });
    current = lab;
    const servers: Started[] = [];
    try {
      for (const p of lab.paths) {
        const rtt = await pingMin(lab, p.serverAddress);
        console.log(
          `  path ${p.index}: ${p.rateMbit} Mbit/s, RTT ${p.rttMs} ms configured, ${
            rtt?.toFixed(2) ?? "no"
          } ms measured (ping, idle)`,
        );
        if (rtt === undefined || rtt < p.rttMs) {
          problems.push(`${topology.label}: path ${p.index} RTT ${rtt}`);
        }
      }
      for (const p of lab.paths) {
        const port = `${PLAIN_PORT + p.index}`;
        servers.push(
          inLab(lab, "server", ["iperf3", "-s", "--forceflush", "-B", p.serverAddress, "-p", port]),
        );
      }
      const mp = ["mptcpize", "run", "iperf3", "-s", "--forceflush", "-p", `${MPTCP_PORT}`];
      servers.push(inLab(lab, "server", mp));
      for (const s of servers) await waitOutput(s, "listening", 10_000);
      rows.push(...await throughput(lab, topology, { seconds, reps }, problems));
      if (unequal(topology) && !process.argv.includes("--no-latency")) {
        rows.push(...await latency(lab, topology, { seconds, reps }));
      }
    } catch (e) {
      problems.push(`${topology.label}: ${e instanceof Error ? e.message : e}`);
    } finally {
      for (const s of servers) s.proc.kill("SIGKILL");
      lab.down();
      current = undefined;
    }
  }
  // A run of some topologies (or without the latency rows) keeps the other rows of the file.
  const some = chosen.length < TOPOLOGIES.length || process.argv.includes("--no-latency");
  if (rows.length > 0) report("multipath", rows, { merge: some });
  for (const p of problems) console.error(`Problem: ${p}`);
  return problems.length === 0 ? 0 : 1;
}

const role = process.argv[2];
if (role === "echo" || role === "rtt") {
  roles(role);
} else {
  process.exit(await main());
}

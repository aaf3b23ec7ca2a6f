/**
 * D-Bus benchmark: method round-trip latency of linkweave's D-Bus client
 * beside `dbus-next` (0.10.2), on the same private `dbus-daemon`, against the
 * same peers, alternating.
 *
 * Rows (lower is better; the ratio is dbus-next / ours):
 * - a call to the bus itself (`org.freedesktop.DBus.GetId`);
 * - a GATT-shaped call to a service in another process
 *   (`WriteValue(ay, a{sv})` with 20 bytes and `{type: "command"}`), served
 *   by linkweave's client running on the same runtime;
 * - ours twice on Deno and Bun: the default transport (the runtime's own
 *   Unix socket; the row with the target) and the descriptor-passing
 *   one (`unixFds: true`: the socket driven through the C library, whose
 *   readiness costs a thread hop per wake-up; no target: dbus-next cannot
 *   pass descriptors on these runtimes at all).
 *
 * Run: `deno run -A bench/dbus_bench.ts`, `bun bench/dbus_bench.ts`, and
 * `deno run -A bench/dbus_bench.ts --node` (bundles this file for Node, runs
 * it, removes the bundle); `npm run bench:bluez` runs all three. Needs
 * `dbus-daemon` (Debian `dbus`). `--calls N` per sample (default 2000),
 * `--pairs N` alternations (default 7).
 *
 * @module
 */
import { spawn, spawnSync } from "node:child_process";
import { rmSync } from "node:fs";
import { dirname, join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { report, type Row, row } from "./_report.ts";
import { RUNTIME } from "../tests/harness/env.ts";
import { startBus } from "../tests/harness/dbus.ts";
import { connectBus, type DBusConnection, Variant } from "../platform/bluez/dbus/mod.ts";

const IFACE = "org.bluez.GattCharacteristic1";
const PATH = "/org/linkweave/bench/char0";
const NAME = "org.linkweave.Bench";

function flag(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

/** One way of making the two calls, timed per call in microseconds. */
interface Client {
  getId(): Promise<unknown>;
  write(): Promise<unknown>;
  close(): void;
}

const DATA = new Uint8Array(20).map((_, i) => i);

async function ours(address: string, unixFds: boolean): Promise<Client> {
  const bus: DBusConnection = await connectBus({ address, unixFds });
  const options = new Map([["type", new Variant("s", "command")]]);
  return {
    getId: () =>
      bus.call({
        destination: "org.freedesktop.DBus",
        path: "/org/freedesktop/DBus",
        interface: "org.freedesktop.DBus",
        member: "GetId",
      }),
    write: () =>
      bus.call({
        destination: NAME,
        path: PATH,
        interface: IFACE,
        member: "WriteValue",
        signature: "aya{sv}",
        body: [DATA, options],
      }),
    close: () => bus.close(),
  };
}

interface DbusNext {
  sessionBus(o: { busAddress: string }): {
    getProxyObject(
      name: string,
      path: string,
    ): Promise<{ getInterface(n: string): Record<string, (...a: unknown[]) => Promise<unknown>> }>;
    disconnect(): void;
  };
  Variant: new (sig: string, value: unknown) => unknown;
}

async function dbusNext(address: string): Promise<Client> {
  const spec = "dbus-next";
  const mod = (await import(spec)) as { default?: DbusNext } & DbusNext;
  const dbus = mod.default ?? mod;
  const bus = dbus.sessionBus({ busAddress: address });
  const driver = (await bus.getProxyObject("org.freedesktop.DBus", "/org/freedesktop/DBus"))
    .getInterface("org.freedesktop.DBus");
  const chr = (await bus.getProxyObject(NAME, PATH)).getInterface(IFACE);
  const { Buffer } = await import("node:buffer");
  const data = Buffer.from(DATA);
  const options = { type: new dbus.Variant("s", "command") };
  return {
    getId: () => driver.GetId(),
    write: () => chr.WriteValue(data, options),
    close: () => bus.disconnect(),
  };
}

/** Mean microseconds per call over `n` sequential calls. */
async function time(call: () => Promise<unknown>, n: number): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await call();
  return ((performance.now() - t0) / n) * 1000;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

async function main(): Promise<void> {
  const calls = flag("--calls", 2000);
  const pairs = flag("--pairs", 7);
  const bus = await startBus({ prefix: "lw-dbus-bench-" });
  const script = fileURLToPath(import.meta.url);
  const args = RUNTIME === "deno" ? ["run", "-A", script, "serve"] : [script, "serve"];
  const server = spawn(process.execPath, args, {
    stdio: ["pipe", "pipe", "inherit"],
    env: { ...process.env, LW_BENCH_BUS: bus.address },
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.stdout!.on("data", (b: Uint8Array) => {
        if (new TextDecoder().decode(b).includes("ready")) resolve();
      });
      server.on("exit", (c) => reject(new Error(`the bench server exited with ${c}`)));
    });
    const variants: [string, Client][] = [["ours", await ours(bus.address, false)]];
    const ffi = RUNTIME !== "node";
    if (ffi) variants.push(["ours, unixFds (FFI)", await ours(bus.address, true)]);
    const baseline = await dbusNext(bus.address);
    const rows: Row[] = [];
    for (
      const [what, pick] of [["GetId to the bus", "getId"], [
        "WriteValue(ay, a{sv}) to a peer",
        "write",
      ]] as const
    ) {
      const samples = new Map<string, number[]>();
      // Warm-up, then alternate: baseline, each variant, baseline, ...
      for (const [, c] of variants) await time(c[pick], 300);
      await time(baseline[pick], 300);
      for (let p = 0; p < pairs; p++) {
        const b = await time(baseline[pick], calls);
        samples.set("dbus-next", [...(samples.get("dbus-next") ?? []), b]);
        for (const [name, c] of variants) {
          samples.set(name, [...(samples.get(name) ?? []), await time(c[pick], calls)]);
        }
      }
      const base = median(samples.get("dbus-next")!);
      for (const [name] of variants) {
        const v = median(samples.get(name)!);
        const fds = name !== "ours";
        rows.push(row(
          {
            name: `D-Bus round trip, ${what}${
              fds ? " (unixFds: socket through FFI, passes fds)" : " (default: runtime socket)"
            }`,
            value: Math.round(v * 10) / 10,
            unit: "us/call",
            baseline: "dbus-next 0.10.2, same bus",
            baselineValue: Math.round(base * 10) / 10,
          },
          fds ? { lowerIsBetter: true } : { lowerIsBetter: true, target: { on: "ratio", min: 1 } },
        ));
        console.log(
          `  ${name} ${what}: ${
            samples.get(name)!.map((x) => x.toFixed(0)).join(" ")
          } us; dbus-next ${samples.get("dbus-next")!.map((x) => x.toFixed(0)).join(" ")} us`,
        );
      }
    }
    for (const [, c] of variants) c.close();
    baseline.close();
    console.log(report("dbus", rows));
  } finally {
    server.stdin!.end();
    server.kill();
    await bus.stop();
  }
  process.exit(0);
}

/** The peer: answers WriteValue on `org.linkweave.Bench` until stdin closes. */
async function serve(): Promise<void> {
  const bus = await connectBus({ address: process.env.LW_BENCH_BUS! });
  bus.export(PATH, {
    name: IFACE,
    methods: { WriteValue: { in: "aya{sv}", handler: () => {} } },
  });
  await bus.requestName(NAME);
  console.log("ready");
  process.stdin.on("data", () => {});
  process.stdin.on("end", () => {
    bus.close();
    process.exit(0);
  });
}

/** Bundle this file for Node next to itself, run it with the same arguments, remove it. */
function onNode(): never {
  const here = fileURLToPath(import.meta.url);
  const out = join(dirname(here), ".dbus_bench-node.mjs");
  const esbuild = join(dirname(here), "..", "node_modules", ".bin", "esbuild");
  let status = 1;
  const b = spawnSync(esbuild, [
    "--bundle",
    "--platform=node",
    "--format=esm",
    "--log-level=warning",
    "--external:dbus-next",
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

if (process.argv.includes("--node")) onNode();
else if (process.argv.includes("serve")) await serve();
else await main();

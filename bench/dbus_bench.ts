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
 * GATT rows, over the air mock (`tests/harness/bluez_air.py`, python-dbusmock)
 * between emulated adapters at ATT MTU 517, values of 514 bytes, a central
 * and a peripheral in this process: GATT values per second and MB/s,
 * central to peripheral (writes without response) and back (notifications),
 * - on the D-Bus path (`WriteValue`, `PropertiesChanged`), the writes beside
 *   `dbus-next` making the same `WriteValue` calls on the same link with the
 *   same window (8 in flight), the notifications beside those D-Bus writes;
 * - on the fd path (BlueZ's `AcquireWrite`/`AcquireNotify` sockets; Deno and
 *   Bun), beside the D-Bus path of the same direction;
 * - with 4 characteristic pairs at once, beside 1 pair on the same path.
 * Each figure is the median of `--pairs` samples, all configurations
 * alternating; a sample sends `--values N` values per pair (default 1000 on
 * D-Bus, 5 x that on the fd path). Higher is better.
 *
 * Run: `deno run -A bench/dbus_bench.ts`, `bun bench/dbus_bench.ts`, and
 * `deno run -A bench/dbus_bench.ts --node` (bundles this file for Node, runs
 * it, removes the bundle); `npm run bench:bluez` runs all three. Needs
 * `dbus-daemon` (Debian `dbus`) and, for the GATT rows, `python3-dbusmock`.
 * `--calls N` per sample (default 2000), `--pairs N` alternations (default
 * 7), `--no-rtt` / `--no-gatt` to leave a part out.
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
import {
  type Bluez,
  type GattChannel,
  type GattLink,
  linkweaveProfile,
  openBluez,
} from "../platform/bluez/mod.ts";
import { type FakeBluez, startBluez } from "../tests/harness/bluez.ts";

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
  const rows: Row[] = [];
  if (!process.argv.includes("--no-rtt")) rows.push(...await roundTrips());
  if (!process.argv.includes("--no-gatt")) rows.push(...await gatt());
  console.log(report("dbus", rows));
  process.exit(0);
}

async function roundTrips(): Promise<Row[]> {
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
    return rows;
  } finally {
    server.stdin!.end();
    server.kill();
    await bus.stop();
  }
}

/** A central's link and the peripheral's end of it. */
interface Pair {
  central: GattLink;
  peripheral: GattLink;
  /** The mirror of the first write characteristic, under the central's device. */
  writePath: string;
}

/** Values counted per channel by the receiving side, and who waits for a total. */
class Counter {
  n = 0;
  #want = Infinity;
  #done: () => void = () => {};
  count(): void {
    if (++this.n >= this.#want) this.#done();
  }
  until(want: number): Promise<void> {
    this.#want = want;
    return this.n >= want ? Promise.resolve() : new Promise((r) => (this.#done = r));
  }
}

async function pairOf(
  central: Bluez,
  peripheral: Bluez,
  names: [string, string],
  address: string,
  channels: number,
  fd: boolean,
): Promise<Pair> {
  const profile = linkweaveProfile(channels);
  const server = await peripheral.adapter(names[1]).serve(profile, { fdPath: fd });
  const theirs = new Promise<GattLink>((r) => server.on("connection", r));
  const link = await central.adapter(names[0]).connect(address, profile, { fdPath: fd });
  const other = await theirs;
  // The central subscribed: wait until the peripheral's channels can notify.
  while (other.channels.some((c) => c.path === "none")) {
    await new Promise((r) => setTimeout(r, 10));
  }
  const dev = `/org/bluez/${names[0]}/dev_${address.replaceAll(":", "_")}`;
  return { central: link, peripheral: other, writePath: `${dev}/service0010/char0011` };
}

/** Send `n` values on each channel, waiting for `drain` when told to. */
async function pump(channels: readonly GattChannel[], n: number, value: Uint8Array) {
  await Promise.all(channels.map(async (ch) => {
    for (let i = 0; i < n; i++) {
      if (!ch.write(value)) {
        await new Promise<void>((r) => {
          ch.on("drain", () => {
            ch.off("drain");
            r();
          });
        });
      }
    }
  }));
}

async function gatt(): Promise<Row[]> {
  const pairs = flag("--pairs", 5);
  const values = flag("--values", 1000);
  const fd = RUNTIME !== "node";
  const adapters: [string, string, string][] = Array.from({ length: 8 }, (_, i) => [
    `hci${i}`,
    `00:00:00:BE:00:0${i}`,
    `bench${i}`,
  ]);
  const fake: FakeBluez = await startBluez({ adapters, mtu: 517 });
  const central = await openBluez({ address: fake.bus.address });
  const peripheral = await openBluez({ address: fake.bus.address });
  const next = await dbusNextBus(fake.bus.address);
  try {
    const make = (i: number, channels: number, useFd: boolean) =>
      pairOf(
        central,
        peripheral,
        [`hci${2 * i}`, `hci${2 * i + 1}`],
        adapters[2 * i + 1][1],
        channels,
        useFd,
      );
    const links: Record<string, Pair> = {
      "dbus-1": await make(0, 1, false),
      "dbus-4": await make(1, 4, false),
    };
    if (fd) {
      links["fd-1"] = await make(2, 1, true);
      links["fd-4"] = await make(3, 4, true);
    }
    const value = new Uint8Array(links["dbus-1"].central.mtu - 3).fill(0x5a);
    // Receivers count every value of a link's channels.
    const counters = new Map<GattLink, Counter>();
    for (const p of Object.values(links)) {
      for (const side of [p.central, p.peripheral]) {
        const c = new Counter();
        counters.set(side, c);
        for (const ch of side.channels) ch.on("data", () => c.count());
      }
    }
    /** Values per second from `from` to `to` of a link, `n` per channel. */
    const measure = async (from: GattLink, to: GattLink, n: number): Promise<number> => {
      const c = counters.get(to)!;
      const start = c.n;
      const done = c.until(start + n * from.channels.length);
      const t0 = performance.now();
      await pump(from.channels, n, value);
      await done;
      return (n * from.channels.length) / ((performance.now() - t0) / 1000);
    };
    const viaDbusNext = async (p: Pair, n: number): Promise<number> => {
      const c = counters.get(p.peripheral)!;
      const done = c.until(c.n + n);
      const t0 = performance.now();
      let sent = 0;
      await Promise.all(Array.from({ length: 8 }, async () => {
        while (sent < n) {
          sent++;
          await next.write(p.writePath, value);
        }
      }));
      await done;
      return n / ((performance.now() - t0) / 1000);
    };
    type Case = { key: string; run: () => Promise<number> };
    const cases: Case[] = [];
    for (const [name, p] of Object.entries(links)) {
      const n = name.startsWith("fd") ? values * 5 : values;
      cases.push({ key: `${name} write`, run: () => measure(p.central, p.peripheral, n) });
      cases.push({ key: `${name} notify`, run: () => measure(p.peripheral, p.central, n) });
    }
    cases.push({ key: "dbus-next write", run: () => viaDbusNext(links["dbus-1"], values) });
    const samples = new Map<string, number[]>();
    for (const c of cases) await c.run(); // warm-up
    for (let i = 0; i < pairs; i++) {
      for (const c of cases) samples.set(c.key, [...(samples.get(c.key) ?? []), await c.run()]);
    }
    const m = (key: string) => median(samples.get(key)!);
    for (const [key, xs] of samples) {
      console.log(`  ${key}: ${xs.map((x) => x.toFixed(0)).join(" ")} values/s`);
    }
    const rows: Row[] = [];
    const add = (name: string, key: string, baseline: string, baseKey: string) => {
      const v = m(key);
      const b = m(baseKey);
      rows.push(
        row({
          name: `${name} (values/s)`,
          value: Math.round(v),
          unit: "values/s",
          baseline,
          baselineValue: Math.round(b),
        }),
        row({
          name: `${name} (MB/s)`,
          value: Math.round((v * value.length) / 1e4) / 100,
          unit: "MB/s",
          baseline,
          baselineValue: Math.round((b * value.length) / 1e4) / 100,
        }),
      );
    };
    const size = `${value.length}-byte values, air mock`;
    add(
      `GATT writes, D-Bus path (WriteValue), 1 pair, ${size}`,
      "dbus-1 write",
      "dbus-next 0.10.2 WriteValue, same link, 8 in flight",
      "dbus-next write",
    );
    add(
      `GATT notifications, D-Bus path (PropertiesChanged), 1 pair, ${size}`,
      "dbus-1 notify",
      "D-Bus writes the other way, same link",
      "dbus-1 write",
    );
    add(
      `GATT writes, D-Bus path, 4 pairs, ${size}`,
      "dbus-4 write",
      "D-Bus writes, 1 pair",
      "dbus-1 write",
    );
    add(
      `GATT notifications, D-Bus path, 4 pairs, ${size}`,
      "dbus-4 notify",
      "D-Bus notifications, 1 pair",
      "dbus-1 notify",
    );
    if (fd) {
      add(
        `GATT writes, fd path (AcquireWrite socket), 1 pair, ${size}`,
        "fd-1 write",
        "D-Bus writes (WriteValue), 1 pair",
        "dbus-1 write",
      );
      add(
        `GATT notifications, fd path (AcquireNotify socket), 1 pair, ${size}`,
        "fd-1 notify",
        "D-Bus notifications, 1 pair",
        "dbus-1 notify",
      );
      add(
        `GATT writes, fd path, 4 pairs, ${size}`,
        "fd-4 write",
        "fd writes, 1 pair",
        "fd-1 write",
      );
      add(
        `GATT notifications, fd path, 4 pairs, ${size}`,
        "fd-4 notify",
        "fd notifications, 1 pair",
        "fd-1 notify",
      );
    }
    return rows;
  } finally {
    next.close();
    await central.close();
    await peripheral.close();
    await fake.stop();
  }
}

/** dbus-next, for `WriteValue` calls on a characteristic of the air mock. */
async function dbusNextBus(
  address: string,
): Promise<{ write(path: string, v: Uint8Array): Promise<unknown>; close(): void }> {
  const spec = "dbus-next";
  const mod = (await import(spec)) as { default?: DbusNext } & DbusNext;
  const dbus = mod.default ?? mod;
  const bus = dbus.sessionBus({ busAddress: address });
  const { Buffer } = await import("node:buffer");
  const options = { type: new dbus.Variant("s", "command") };
  const chars = new Map<string, Record<string, (...a: unknown[]) => Promise<unknown>>>();
  return {
    async write(path, v) {
      let c = chars.get(path);
      if (c === undefined) {
        c = (await bus.getProxyObject("org.bluez", path)).getInterface(IFACE);
        chars.set(path, c);
      }
      return await c.WriteValue(Buffer.from(v), options);
    },
    close: () => bus.disconnect(),
  };
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

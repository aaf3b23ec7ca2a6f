/**
 * The network lab: a client, a router and a server network namespace joined
 * by 1..8 paths (2..4 in the benchmarks), each a pair of veth links through
 * the router, rate-limited on the router with `tc ... tbf` in both directions
 * and given a round-trip time by a small userspace delayer (this kernel has no
 * netem; see `scripts/_netlab_delay.ts`). Used by the multi-channel tests,
 * `bench/multipath_bench.ts`, and by hand:
 *
 * ```sh
 * deno run -A scripts/netlab.ts up --paths 10:20,2:80   # rate Mbit/s : RTT ms per path
 * deno run -A scripts/netlab.ts status
 * deno run -A scripts/netlab.ts shape nl1a2b 1 --rate 5 --rtt 40
 * deno run -A scripts/netlab.ts cut nl1a2b 1            # --down to down it instead
 * deno run -A scripts/netlab.ts down                    # every lab named nl..., or one by name
 * ```
 *
 * Path `i` (from 0) is its own network: the client has `10.<100+i>.1.2/24`
 * on device `c<i>`, the router `10.<100+i>.1.1` on `rc<i>` and `10.<100+i>.2.1`
 * on `rs<i>`, the server `10.<100+i>.2.2/24` on `s<i>`. A packet sent from a
 * path's address, or to a path's address on the other side, takes that path;
 * the router forwards only within a path (a packet between paths is answered
 * "unreachable"), so every subflow or channel uses exactly one path.
 *
 * Shaping sits on the router, where it drops packets as a real bottleneck
 * does (on the sender's own device the kernel would throttle the socket
 * instead): `rs<i>` shapes client-to-server traffic, `rc<i>` the way back,
 * each `tbf` with a 50 kB queue by default. Half of the RTT is added in each
 * direction by the delayer, which the router's firewall feeds through
 * iptables `NFQUEUE` (queue `2i` from the client, `2i+1` from the server).
 *
 * With `mptcp` (the default) the server announces its other paths' addresses
 * (`ip mptcp endpoint ... signal`) and both ends allow one subflow per path,
 * so a kernel MPTCP connection to path 0 opens a subflow on every path.
 *
 * Everything a lab creates is named `<prefix><tag>`: the namespaces
 * `<name>-c`, `<name>-r`, `<name>-s` and the directory
 * `<tmpdir>/<name>.netlab` (its record `lab.json`, the delayer and its log).
 * The record is written before anything else, so `down()` also removes what
 * a crashed run left behind, and never anything it did not create. Addresses
 * exist only inside the lab's namespaces. Needs root, iproute2, iptables and
 * `/usr/bin/python3` ({@linkcode LAB_NEEDS}).
 *
 * @module
 */
import { spawn, spawnSync } from "node:child_process";
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { DELAY_PY } from "./_netlab_delay.ts";

/** The commands a lab needs, each with the Debian package that provides it. */
export const LAB_NEEDS: Record<string, string> = {
  ip: "iproute2",
  tc: "iproute2",
  iptables: "iptables",
  "/usr/bin/python3": "python3-minimal",
};

/** The prefix of every name a lab creates, unless told otherwise. */
export const DEFAULT_PREFIX = "nl";

/** The most paths a lab may have. */
export const MAX_PATHS = 8;

const PYTHON = "/usr/bin/python3";

/** A path's shape. */
export interface Shape {
  /** The rate limit, in Mbit/s, in each direction. */
  rateMbit: number;
  /** The round-trip time the path adds, in ms (half in each direction). */
  rttMs: number;
  /** The bottleneck queue, in bytes (`tbf limit`). @default {50000} */
  limitBytes?: number;
}

/** One path of a lab. */
export interface LabPath extends Required<Shape> {
  /** Its index, from 0. */
  index: number;
  /** The client's address on it. */
  clientAddress: string;
  /** The server's address on it. */
  serverAddress: string;
  /** The client's device (in the client namespace). */
  clientDevice: string;
  /** The server's device (in the server namespace). */
  serverDevice: string;
  /** How it was cut, if it was. */
  cut: "delete" | "down" | false;
}

/** Where a command runs. */
export type Side = "client" | "router" | "server";

/** A lab's record, `lab.json` in its directory. */
export interface LabRecord {
  /** Its name, `<prefix><tag>`. */
  name: string;
  /** Its directory. */
  dir: string;
  /** Its namespaces. */
  namespaces: Record<Side, string>;
  /** The delayer's process id, once it runs. */
  delayer?: number;
  /** Whether kernel MPTCP endpoints and limits are set. */
  mptcp: boolean;
  /** Its paths. */
  paths: LabPath[];
}

/** Byte counters of one path, from its two `tbf` queues on the router. */
export interface PathCounters {
  /** Bytes sent on towards the server. */
  toServerBytes: number;
  /** Packets dropped on the way to the server (queue full). */
  toServerDrops: number;
  /** Times the limiter held back a packet on the way to the server. */
  toServerOverlimits: number;
  /** Bytes sent on towards the client. */
  toClientBytes: number;
  /** Packets dropped on the way to the client. */
  toClientDrops: number;
}

/** Options of {@linkcode up}. */
export interface UpOptions {
  /** The start of every name the lab creates (a few lowercase letters). @default {"nl"} */
  prefix?: string;
  /** Configure kernel MPTCP endpoints and limits. @default {true} */
  mptcp?: boolean;
  /** How long to wait for the delayer to start, in ms. @default {10000} */
  timeoutMs?: number;
}

/** Options of {@linkcode Lab.cut}. */
export interface CutOptions {
  /** Delete the path's client-side veth pair, or set both router devices down. @default {"delete"} */
  how?: "delete" | "down";
}

/**
 * Run a command, throwing with its stderr when it fails.
 *
 * @param argv The command and its arguments.
 * @returns Its stdout.
 */
function sh(argv: string[]): string {
  const r = spawnSync(argv[0], argv.slice(1), { encoding: "utf8" });
  if (r.status !== 0) {
    throw new Error(`Cannot run "${argv.join(" ")}": ${r.error?.message ?? r.stderr.trim()}`);
  }
  return r.stdout;
}

function labDir(name: string): string {
  return join(tmpdir(), `${name}.netlab`);
}

function burstBytes(rateMbit: number): number {
  // At least two full frames, else about 4 ms at the rate.
  return Math.max(3200, Math.round((rateMbit * 1e6) / 8 * 0.004));
}

function tbf(shape: Required<Shape>): string[] {
  return [
    "tbf",
    "rate",
    `${Math.round(shape.rateMbit * 1000)}kbit`,
    "burst",
    String(burstBytes(shape.rateMbit)),
    "limit",
    String(shape.limitBytes),
  ];
}

function checkShape(shape: Partial<Shape>): void {
  const { rateMbit, rttMs, limitBytes } = shape;
  if (rateMbit !== undefined && !(rateMbit > 0 && rateMbit <= 10_000)) {
    throw new RangeError(`Cannot shape a path: rate "${rateMbit}" Mbit/s is not in (0, 10000]`);
  }
  if (rttMs !== undefined && !(rttMs >= 0 && rttMs <= 10_000)) {
    throw new RangeError(`Cannot shape a path: RTT "${rttMs}" ms is not in [0, 10000]`);
  }
  if (limitBytes !== undefined && !(Number.isInteger(limitBytes) && limitBytes >= 3000)) {
    throw new RangeError(`Cannot shape a path: limit "${limitBytes}" bytes is below 3000`);
  }
}

function pidRuns(pid: number | undefined, dir: string): boolean {
  if (pid === undefined) return false;
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(dir);
  } catch {
    return false;
  }
}

/** Whether a process exists and is not a zombie. */
function exists(pid: number | undefined): boolean {
  try {
    return pid !== undefined && !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

function namespaceExists(ns: string): boolean {
  return existsSync(`/run/netns/${ns}`);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function save(record: LabRecord): void {
  writeFileSync(join(record.dir, "lab.json"), JSON.stringify(record, null, 2) + "\n");
}

function writeDelays(record: LabRecord): void {
  const lines = record.paths.flatMap((p) => [
    `${2 * p.index} ${p.rttMs / 2}`,
    `${2 * p.index + 1} ${p.rttMs / 2}`,
  ]);
  writeFileSync(join(record.dir, "delays.tmp"), lines.join("\n") + "\n");
  renameSync(join(record.dir, "delays.tmp"), join(record.dir, "delays"));
}

/** How many times the delayer has read its delays. */
function loads(record: LabRecord): number {
  try {
    return Number(readFileSync(join(record.dir, "ready"), "utf8").trim()) || 0;
  } catch {
    return 0;
  }
}

async function waitLoads(record: LabRecord, count: number, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (loads(record) < count) {
    if (!exists(record.delayer)) {
      const file = join(record.dir, "delayer.log");
      const log = existsSync(file) ? readFileSync(file, "utf8").trim() : "";
      throw new Error(`Cannot delay the paths of lab "${record.name}": the delayer ended: ${log}`);
    }
    if (Date.now() > until) {
      throw new Error(
        `Cannot delay the paths of lab "${record.name}": no answer in ${timeoutMs} ms`,
      );
    }
    await sleep(10);
  }
}

/** Start the delayer in the router namespace and wait until it holds every queue. */
async function startDelayer(record: LabRecord, timeoutMs: number): Promise<void> {
  writeFileSync(join(record.dir, "delay.py"), DELAY_PY);
  writeFileSync(join(record.dir, "netns"), `/run/netns/${record.namespaces.router}\n`);
  writeDelays(record);
  const log = openSync(join(record.dir, "delayer.log"), "a");
  const child = spawn(
    "ip",
    ["netns", "exec", record.namespaces.router, PYTHON, join(record.dir, "delay.py"), record.dir],
    { detached: true, stdio: ["ignore", log, log] },
  );
  closeSync(log);
  child.on("error", () => {});
  child.unref();
  record.delayer = child.pid;
  save(record);
  await waitLoads(record, 1, timeoutMs);
}

/** A running lab: its namespaces and paths, and the controls of its paths. */
export class Lab {
  #record: LabRecord;

  /**
   * A handle on a lab's record (see {@linkcode up} and {@linkcode attach}).
   *
   * @param record The record.
   */
  constructor(record: LabRecord) {
    this.#record = record;
  }

  /** Its name, `<prefix><tag>`; every name it created starts with it. */
  get name(): string {
    return this.#record.name;
  }

  /** Its directory (record, delayer, log). */
  get dir(): string {
    return this.#record.dir;
  }

  /** Its namespaces. */
  get namespaces(): Record<Side, string> {
    return { ...this.#record.namespaces };
  }

  /** Its paths as they are now. */
  get paths(): LabPath[] {
    return this.#record.paths.map((p) => ({ ...p }));
  }

  /** The record, as `lab.json` holds it. */
  toJSON(): LabRecord {
    return structuredClone(this.#record);
  }

  /**
   * The command line that runs `argv` in one of the lab's namespaces.
   *
   * @param side Which namespace.
   * @param argv The command and its arguments.
   * @returns `ip netns exec <namespace> ...argv`.
   */
  command(side: Side, argv: string[]): string[] {
    return ["ip", "netns", "exec", this.#record.namespaces[side], ...argv];
  }

  /**
   * Run a command in one of the lab's namespaces and wait for it.
   *
   * @param side Which namespace.
   * @param argv The command and its arguments.
   * @returns Its stdout.
   */
  run(side: Side, argv: string[]): string {
    return sh(this.command(side, argv));
  }

  #path(index: number): LabPath {
    const path = this.#record.paths[index];
    if (path === undefined) {
      throw new RangeError(`Cannot find path "${index}" in lab "${this.name}"`);
    }
    return path;
  }

  /**
   * Change a path's rate, RTT or queue while traffic flows. Resolves once the
   * new shape is in force.
   *
   * @param index The path.
   * @param shape What to change.
   * @param options `timeoutMs`: how long to wait for the delayer (default 5000).
   */
  async shape(
    index: number,
    shape: Partial<Shape>,
    options: { timeoutMs?: number } = {},
  ): Promise<void> {
    checkShape(shape);
    const path = this.#path(index);
    const next = { ...path, ...shape };
    if (
      (next.rateMbit !== path.rateMbit || next.limitBytes !== path.limitBytes) &&
      path.cut !== "delete"
    ) {
      for (const dev of [`rs${index}`, `rc${index}`]) {
        this.run("router", ["tc", "qdisc", "change", "dev", dev, "root", ...tbf(next)]);
      }
    }
    const rttChanged = next.rttMs !== path.rttMs;
    Object.assign(path, next);
    save(this.#record);
    if (rttChanged) {
      const count = loads(this.#record) + 1;
      writeDelays(this.#record);
      process.kill(this.#record.delayer!, "SIGHUP");
      await waitLoads(this.#record, count, options.timeoutMs ?? 5000);
    }
  }

  /**
   * Cut a path while traffic flows: delete its client-side veth pair (the
   * client's device and its addresses vanish, as when an interface is
   * unplugged), or set both of its router devices down.
   *
   * @param index The path.
   * @param options `how`.
   */
  cut(index: number, options: CutOptions = {}): void {
    const how = options.how ?? "delete";
    const path = this.#path(index);
    if (path.cut === "delete") return;
    if (how === "delete") {
      this.run("router", ["ip", "link", "del", `rc${index}`]);
    } else {
      for (const dev of [`rc${index}`, `rs${index}`]) {
        this.run("router", ["ip", "link", "set", dev, "down"]);
      }
    }
    path.cut = how;
    save(this.#record);
  }

  /**
   * Bring back a path cut with `how: "down"`.
   *
   * @param index The path.
   */
  restore(index: number): void {
    const path = this.#path(index);
    if (path.cut === "delete") {
      throw new Error(`Cannot restore path "${index}" of lab "${this.name}": it was deleted`);
    }
    for (const dev of [`rc${index}`, `rs${index}`]) {
      this.run("router", ["ip", "link", "set", dev, "up"]);
    }
    routerRoutes(this, index);
    path.cut = false;
    save(this.#record);
  }

  /**
   * The byte and drop counters of every path's two `tbf` queues (zeros for a
   * deleted device). Differences of two readings tell which paths a transfer used.
   *
   * @returns One entry per path.
   */
  counters(): PathCounters[] {
    type Stats = { dev: string; kind: string; bytes?: number; drops?: number; overlimits?: number };
    const stats: Stats[] = JSON.parse(this.run("router", ["tc", "-s", "-j", "qdisc", "show"]));
    const of = (dev: string) => stats.find((s) => s.dev === dev && s.kind === "tbf");
    return this.#record.paths.map((p) => {
      const up = of(`rs${p.index}`);
      const down = of(`rc${p.index}`);
      return {
        toServerBytes: up?.bytes ?? 0,
        toServerDrops: up?.drops ?? 0,
        toServerOverlimits: up?.overlimits ?? 0,
        toClientBytes: down?.bytes ?? 0,
        toClientDrops: down?.drops ?? 0,
      };
    });
  }

  /** Whether the delayer still runs. */
  delayerRuns(): boolean {
    return pidRuns(this.#record.delayer, this.dir);
  }

  /** Remove everything the lab created: its processes, namespaces and directory. */
  down(): void {
    removeLab(this.#record);
  }
}

/** Every process still running in the lab's namespaces, the delayer first, is ended. */
function removeLab(record: LabRecord): void {
  const victims = new Set<number>();
  if (pidRuns(record.delayer, record.dir)) victims.add(record.delayer!);
  for (const ns of Object.values(record.namespaces)) {
    if (!namespaceExists(ns)) continue;
    const r = spawnSync("ip", ["netns", "pids", ns], { encoding: "utf8" });
    for (const pid of (r.stdout ?? "").split(/\s+/).filter((s) => s)) victims.add(Number(pid));
  }
  for (const pid of victims) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
  for (const ns of Object.values(record.namespaces)) {
    if (namespaceExists(ns)) spawnSync("ip", ["netns", "del", ns]);
  }
  rmSync(record.dir, { recursive: true, force: true });
}

/**
 * Build a lab: namespaces, paths, shaping, the delayer and (by default) MPTCP
 * endpoints. On failure, whatever was built is removed again.
 *
 * @param paths One shape per path (1..8 paths).
 * @param options `prefix`, `mptcp`, `timeoutMs`.
 * @returns The lab; call `down()` when done.
 */
export async function up(paths: Shape[], options: UpOptions = {}): Promise<Lab> {
  const prefix = options.prefix ?? DEFAULT_PREFIX;
  if (!/^[a-z][a-z0-9]{0,7}$/.test(prefix)) {
    throw new RangeError(`Cannot build a lab: prefix "${prefix}" is not 1-8 lowercase letters`);
  }
  if (paths.length < 1 || paths.length > MAX_PATHS) {
    throw new RangeError(`Cannot build a lab with "${paths.length}" paths: give 1..${MAX_PATHS}`);
  }
  for (const p of paths) checkShape(p);
  let name: string;
  do {
    const tag = (process.pid % 1296).toString(36) + Math.floor(Math.random() * 46656).toString(36);
    name = `${prefix}${tag}`;
  } while (existsSync(labDir(name)) || namespaceExists(`${name}-r`));
  const dir = labDir(name);
  const record: LabRecord = {
    name,
    dir,
    namespaces: { client: `${name}-c`, router: `${name}-r`, server: `${name}-s` },
    mptcp: options.mptcp ?? true,
    paths: paths.map((p, i) => ({
      index: i,
      rateMbit: p.rateMbit,
      rttMs: p.rttMs,
      limitBytes: p.limitBytes ?? 50_000,
      clientAddress: `10.${100 + i}.1.2`,
      serverAddress: `10.${100 + i}.2.2`,
      clientDevice: `c${i}`,
      serverDevice: `s${i}`,
      cut: false,
    })),
  };
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const lab = new Lab(record);
  save(record);
  try {
    build(lab, record);
    await startDelayer(record, options.timeoutMs ?? 10_000);
    for (const p of record.paths) {
      for (
        const [dev, queue] of [[`rc${p.index}`, 2 * p.index], [`rs${p.index}`, 2 * p.index + 1]]
      ) {
        lab.run("router", [
          "iptables",
          "-t",
          "mangle",
          "-A",
          "FORWARD",
          "-i",
          String(dev),
          "-j",
          "NFQUEUE",
          "--queue-num",
          String(queue),
        ]);
      }
    }
  } catch (e) {
    lab.down();
    throw e;
  }
  return lab;
}

/** The router's tables of path `i` (again after its devices were down, which flushes them). */
function routerRoutes(lab: Lab, i: number): void {
  for (const [to, out, table] of [[".2.0/24", `rs${i}`, 100 + i], [".1.0/24", `rc${i}`, 200 + i]]) {
    const t = String(table);
    lab.run("router", [
      "ip",
      "route",
      "replace",
      `10.${100 + i}${to}`,
      "dev",
      String(out),
      "table",
      t,
    ]);
    lab.run("router", ["ip", "route", "replace", "unreachable", "default", "table", t]);
  }
}

function build(lab: Lab, record: LabRecord): void {
  const { client: C, router: R, server: S } = record.namespaces;
  for (const side of ["client", "router", "server"] as const) {
    sh(["ip", "netns", "add", record.namespaces[side]]);
    lab.run(side, ["ip", "link", "set", "lo", "up"]);
    for (const key of ["all", "default"]) {
      lab.run(side, ["sysctl", "-qw", `net.ipv4.conf.${key}.rp_filter=0`]);
    }
  }
  lab.run("router", ["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
  for (const p of record.paths) {
    const i = p.index;
    const net = `10.${100 + i}`;
    const table = String(100 + i);
    sh([
      "ip",
      "-n",
      R,
      "link",
      "add",
      `rc${i}`,
      "type",
      "veth",
      "peer",
      "name",
      `c${i}`,
      "netns",
      C,
    ]);
    sh([
      "ip",
      "-n",
      R,
      "link",
      "add",
      `rs${i}`,
      "type",
      "veth",
      "peer",
      "name",
      `s${i}`,
      "netns",
      S,
    ]);
    for (
      const [ns, dev, addr] of [
        [C, `c${i}`, `${net}.1.2`],
        [R, `rc${i}`, `${net}.1.1`],
        [R, `rs${i}`, `${net}.2.1`],
        [S, `s${i}`, `${net}.2.2`],
      ]
    ) {
      sh(["ip", "-n", ns, "addr", "add", `${addr}/24`, "dev", dev]);
      sh(["ip", "-n", ns, "link", "set", dev, "up"]);
    }
    // Ends: the far side of a path through its router address; a packet from a
    // path's address leaves by that path.
    sh(["ip", "-n", C, "route", "add", `${net}.2.0/24`, "via", `${net}.1.1`, "dev", `c${i}`]);
    sh(["ip", "-n", C, "route", "add", "default", "via", `${net}.1.1`, "table", table]);
    sh(["ip", "-n", C, "rule", "add", "from", `${net}.1.2`, "table", table]);
    sh(["ip", "-n", S, "route", "add", `${net}.1.0/24`, "via", `${net}.2.1`, "dev", `s${i}`]);
    sh(["ip", "-n", S, "route", "add", "default", "via", `${net}.2.1`, "table", table]);
    sh(["ip", "-n", S, "rule", "add", "from", `${net}.2.2`, "table", table]);
    // Router: forward only within a path.
    routerRoutes(lab, i);
    sh(["ip", "-n", R, "rule", "add", "iif", `rc${i}`, "table", String(100 + i)]);
    sh(["ip", "-n", R, "rule", "add", "iif", `rs${i}`, "table", String(200 + i)]);
    for (const dev of [`rs${i}`, `rc${i}`]) {
      lab.run("router", ["tc", "qdisc", "add", "dev", dev, "root", ...tbf(p)]);
    }
  }
  if (record.mptcp) {
    const extra = String(record.paths.length - 1);
    for (const p of record.paths.slice(1)) {
      sh([
        "ip",
        "-n",
        S,
        "mptcp",
        "endpoint",
        "add",
        p.serverAddress,
        "dev",
        p.serverDevice,
        "signal",
      ]);
    }
    sh(["ip", "-n", S, "mptcp", "limits", "set", "subflows", extra, "add_addr_accepted", "0"]);
    sh(["ip", "-n", C, "mptcp", "limits", "set", "subflows", extra, "add_addr_accepted", extra]);
  }
}

function records(prefix: string): LabRecord[] {
  const out: LabRecord[] = [];
  const pattern = new RegExp(`^${prefix}[a-z0-9]*\\.netlab$`);
  for (const entry of readdirSync(tmpdir())) {
    if (!pattern.test(entry)) continue;
    try {
      out.push(JSON.parse(readFileSync(join(tmpdir(), entry, "lab.json"), "utf8")));
    } catch {
      // a directory without a readable record: removed by down() below
    }
  }
  return out;
}

/**
 * A handle on a lab another process built (e.g. `netlab.ts up`).
 *
 * @param name The lab's name.
 * @returns The lab.
 */
export function attach(name: string): Lab {
  const file = join(labDir(name), "lab.json");
  if (!existsSync(file)) throw new Error(`Cannot find lab "${name}": no ${file}`);
  return new Lab(JSON.parse(readFileSync(file, "utf8")));
}

/**
 * Every lab whose name starts with `prefix`, from the records.
 *
 * @param prefix The start of the names.
 * @returns The labs.
 */
export function labs(prefix: string = DEFAULT_PREFIX): Lab[] {
  return records(prefix).map((r) => new Lab(r));
}

/**
 * Remove every lab whose name starts with `prefix` (a lab's full name removes
 * that one), also what a crashed run left: processes in its namespaces, the
 * namespaces `<name>-c|-r|-s`, and `<tmpdir>/<name>.netlab`.
 *
 * @param prefix A prefix or a lab's name.
 * @returns The names of the labs removed.
 */
export function down(prefix: string = DEFAULT_PREFIX): string[] {
  if (!/^[a-z][a-z0-9]*$/.test(prefix)) {
    throw new RangeError(`Cannot remove labs: prefix "${prefix}" is not lowercase letters`);
  }
  const names = new Set<string>();
  for (const r of records(prefix)) {
    removeLab(r);
    names.add(r.name);
  }
  const nsPattern = new RegExp(`^(${prefix}[a-z0-9]*)-[crs]$`);
  const listed = spawnSync("ip", ["netns", "list"], { encoding: "utf8" }).stdout ?? "";
  for (const line of listed.split("\n")) {
    const m = nsPattern.exec(line.split(" ")[0]);
    if (m === null) continue;
    const name = m[1];
    removeLab({
      name,
      dir: labDir(name),
      namespaces: { client: `${name}-c`, router: `${name}-r`, server: `${name}-s` },
      mptcp: false,
      paths: [],
    });
    names.add(name);
  }
  const dirPattern = new RegExp(`^(${prefix}[a-z0-9]*)\\.netlab$`);
  for (const entry of readdirSync(tmpdir())) {
    const m = dirPattern.exec(entry);
    if (m === null) continue;
    rmSync(join(tmpdir(), entry), { recursive: true, force: true });
    names.add(m[1]);
  }
  return [...names].sort();
}

/**
 * Parse `rate:rtt[:limit],...` (Mbit/s, ms, bytes), e.g. `10:20,2:80`.
 *
 * @param text The paths.
 * @returns Their shapes.
 */
export function parsePaths(text: string): Shape[] {
  return text.split(",").map((part) => {
    const [rate, rtt, limit] = part.split(":").map(Number);
    if (!(rate > 0) || !(rtt >= 0)) {
      throw new RangeError(`Cannot read path "${part}": write rate:rtt, e.g. 10:20`);
    }
    return limit === undefined ? { rateMbit: rate, rttMs: rtt } : {
      rateMbit: rate,
      rttMs: rtt,
      limitBytes: limit,
    };
  });
}

function option(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

async function main(args: string[]): Promise<number> {
  const [cmd, ...rest] = args;
  const prefix = option(rest, "--prefix") ?? DEFAULT_PREFIX;
  if (cmd === "up") {
    const lab = await up(parsePaths(option(rest, "--paths") ?? "10:20,10:20"), {
      prefix,
      mptcp: !rest.includes("--no-mptcp"),
    });
    console.log(JSON.stringify(lab, null, 2));
  } else if (cmd === "down") {
    const name = rest.find((a) => !a.startsWith("--")) ?? prefix;
    console.log(JSON.stringify({ removed: down(name) }));
  } else if (cmd === "status") {
    const out = labs(rest.find((a) => !a.startsWith("--")) ?? prefix).map((lab) => {
      const alive = namespaceExists(lab.namespaces.router);
      return {
        ...lab.toJSON(),
        delayerRuns: lab.delayerRuns(),
        counters: alive ? lab.counters() : null,
      };
    });
    console.log(JSON.stringify(out, null, 2));
  } else if (cmd === "shape" && rest.length >= 2) {
    const rate = option(rest, "--rate");
    const rtt = option(rest, "--rtt");
    const limit = option(rest, "--limit");
    await attach(rest[0]).shape(Number(rest[1]), {
      ...(rate === undefined ? {} : { rateMbit: Number(rate) }),
      ...(rtt === undefined ? {} : { rttMs: Number(rtt) }),
      ...(limit === undefined ? {} : { limitBytes: Number(limit) }),
    });
  } else if (cmd === "cut" && rest.length >= 2) {
    attach(rest[0]).cut(Number(rest[1]), { how: rest.includes("--down") ? "down" : "delete" });
  } else if (cmd === "restore" && rest.length >= 2) {
    attach(rest[0]).restore(Number(rest[1]));
  } else {
    console.error(
      "Usage: netlab.ts up [--paths 10:20,2:80] [--prefix nl] [--no-mptcp]\n" +
        "       netlab.ts status [prefix] | down [name|prefix]\n" +
        "       netlab.ts shape NAME PATH [--rate MBIT] [--rtt MS] [--limit BYTES]\n" +
        "       netlab.ts cut NAME PATH [--down] | restore NAME PATH",
    );
    return 2;
  }
  return 0;
}

// Deno and Bun say whether this is the entry module; on Node (bundled, maybe
// into a test) the entry's file name tells.
const isMain = (import.meta as { main?: boolean }).main ??
  /(^|\/)netlab\.(ts|mjs|js)$/.test(process.argv[1] ?? "");
if (isMain) {
  main(process.argv.slice(2)).then((code) => process.exit(code), (e) => {
    console.error(e instanceof Error ? e.message : String(e));
    process.exit(1);
  });
}

/**
 * `npm start`: the linkEnhance demo. Starts two devices as two processes on
 * loopback (the server device on Bun and the client device on Deno when Bun
 * is available), connects a client to two named servers with several
 * logical connections over one link of 2 channels (two TCP connections;
 * `LINKWEAVE_CHANNELS` sets another count), shows a live report (connections,
 * messages/s, MB/s, round-trip latency), then a summary with each channel
 * of the link as `device.linkStats()` shows it, and exits 0; or
 * non-zero with the reason when anything fails.
 *
 * The report refreshes in place when stdout is a terminal and prints plain
 * lines otherwise (CI logs). The devices are `examples/demo_device.ts`; they
 * report as JSON lines on stdout and exit when their stdin closes, so they
 * never outlive this process.
 *
 * Usage: `deno run -A scripts/start.ts [--seconds S] [--bulk N]
 * [--server deno|bun] [--client deno|bun] [--plain]`
 * (`LINKWEAVE_DEMO_SECONDS` also sets the duration; default 6 s).
 *
 * @module
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import { ROOT } from "./_files.ts";

const SERVER_ID = "02:00:00:00:00:01";
const CLIENT_ID = "02:00:00:00:00:02";
const DEVICE = "examples/demo_device.ts";
const BIN = join(ROOT, "node_modules", ".bin");

// ---------------------------------------------------------------- options

type Runtime = "deno" | "bun";

function usage(message: string): never {
  console.error(`${message}
usage: deno run -A scripts/start.ts [--seconds S] [--bulk N] [--server deno|bun] [--client deno|bun] [--plain]`);
  process.exit(2);
}

function runtimeWorks(rt: Runtime): boolean {
  const bin = join(BIN, rt);
  if (!existsSync(bin)) return false;
  return spawnSync(bin, ["--version"], { stdio: "ignore", timeout: 10_000 }).status === 0;
}

let parsed;
try {
  parsed = parseArgs({
    args: process.argv.slice(2),
    options: {
      seconds: { type: "string", default: process.env.LINKWEAVE_DEMO_SECONDS ?? "6" },
      bulk: { type: "string", default: "4" },
      server: { type: "string" },
      client: { type: "string", default: "deno" },
      plain: { type: "boolean", default: false },
    },
  }).values;
} catch (e) {
  usage((e as Error).message);
}
const SECONDS = Number(parsed.seconds);
const BULK = Number(parsed.bulk);
if (!(SECONDS >= 1 && SECONDS <= 60)) {
  usage(`Invalid --seconds "${parsed.seconds}": expected 1..60`);
}
if (!(Number.isInteger(BULK) && BULK >= 1 && BULK <= 64)) {
  usage(`Invalid --bulk "${parsed.bulk}": expected an integer in 1..64`);
}
const IDLE = Math.min(1, Math.max(0.5, SECONDS * 0.2));
let note = "";
const pick = (value: string | undefined, fallback: Runtime): Runtime => {
  const rt = value ?? fallback;
  if (rt !== "deno" && rt !== "bun") usage(`Invalid runtime "${rt}": expected deno or bun`);
  return rt;
};
let serverRt = pick(parsed.server, "bun");
const clientRt = pick(parsed.client, "deno");
if (!runtimeWorks("deno")) {
  console.error(`Cannot run ${join(BIN, "deno")}: run "npm ci" first`);
  process.exit(1);
}
if ((serverRt === "bun" || clientRt === "bun") && !runtimeWorks("bun")) {
  if (parsed.server === "bun" || clientRt === "bun") {
    console.error(`Cannot run ${join(BIN, "bun")}: run "npm ci" first, or use --server deno`);
    process.exit(1);
  }
  serverRt = "deno";
  note = "Bun is not available here: both devices run on Deno";
}

// ---------------------------------------------------------------- output

// In place on a terminal wide enough for the table, else plain lines.
const TTY = process.stdout.isTTY === true && !parsed.plain && (process.stdout.columns ?? 80) >= 80;
const COLOR = TTY && process.env.NO_COLOR === undefined;
const paint = (code: string) => (s: string) => COLOR ? `\x1b[${code}m${s}\x1b[0m` : s;
const bold = paint("1");
const dim = paint("2");
const red = paint("31");
const green = paint("32");
const cyan = paint("36");
const yellow = paint("33");

function out(line = ""): void {
  process.stdout.write(`${line}\n`);
}

const int = (n: number) => Math.round(n).toLocaleString("en-US");
const mb = (bytesPerSecond: number) => (bytesPerSecond / 1e6).toFixed(1);
function ms(v: number | undefined): string {
  if (v === undefined) return "-";
  return `${v < 1 ? v.toFixed(3) : v < 10 ? v.toFixed(2) : v.toFixed(1)} ms`;
}
function percentile(sorted: number[], q: number): number | undefined {
  if (sorted.length === 0) return undefined;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}
function bytes(n: number): string {
  return n >= 1e9 ? `${(n / 1e9).toFixed(2)} GB` : `${(n / 1e6).toFixed(1)} MB`;
}

// ---------------------------------------------------------------- devices

type Message = Record<string, unknown> & { type: string };

/** A device process: its JSON messages, its stderr, its exit. */
class Device {
  readonly role: "server" | "client";
  readonly runtime: Runtime;
  readonly proc: ChildProcess;
  stderr = "";
  exit: { code: number | null; signal: string | null } | undefined;
  /** Set once we expect it to exit. */
  ending = false;
  #waiters: { type: string; resolve: (m: Message) => void }[] = [];
  #inbox: Message[] = [];
  #onMessage: (m: Message) => void;
  #onExit: (d: Device) => void;

  constructor(
    role: "server" | "client",
    runtime: Runtime,
    args: string[],
    handlers: { onMessage: (m: Message) => void; onExit: (d: Device) => void },
  ) {
    this.role = role;
    this.runtime = runtime;
    this.#onMessage = handlers.onMessage;
    this.#onExit = handlers.onExit;
    const cmd = runtime === "deno" ? ["run", "-A", DEVICE] : [DEVICE];
    this.proc = spawn(join(BIN, runtime), [...cmd, role, ...args], {
      cwd: ROOT,
      stdio: ["pipe", "pipe", "pipe"],
      // The demo link has 2 channels (two TCP connections on loopback) unless told otherwise.
      env: {
        ...process.env,
        NO_COLOR: "1",
        LINKWEAVE_CHANNELS: process.env.LINKWEAVE_CHANNELS ?? "2",
      },
    });
    let buffered = "";
    const decoder = new TextDecoder();
    this.proc.stdout!.on("data", (chunk: Uint8Array) => {
      buffered += decoder.decode(chunk, { stream: true });
      let nl;
      while ((nl = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        this.#line(line);
      }
    });
    const errors = new TextDecoder();
    this.proc.stderr!.on("data", (chunk: Uint8Array) => {
      this.stderr += errors.decode(chunk, { stream: true });
    });
    this.proc.stdin!.on("error", () => {});
    this.proc.on("error", (e) => {
      this.stderr += `${e.message}\n`;
    });
    this.proc.on("close", (code, signal) => {
      this.exit = { code, signal };
      this.#onExit(this);
    });
  }

  get name(): string {
    return `${this.role} device (${this.runtime}, pid ${this.proc.pid ?? "?"})`;
  }

  #line(line: string): void {
    let m: Message;
    try {
      m = JSON.parse(line);
    } catch {
      this.stderr += `${line}\n`;
      return;
    }
    const i = this.#waiters.findIndex((w) => w.type === m.type);
    if (i >= 0) this.#waiters.splice(i, 1)[0].resolve(m);
    else if (m.type !== "stats") this.#inbox.push(m);
    this.#onMessage(m);
  }

  /** The next message of a type (also one that arrived before the call). */
  next(type: string): Promise<Message> {
    const i = this.#inbox.findIndex((m) => m.type === type);
    if (i >= 0) return Promise.resolve(this.#inbox.splice(i, 1)[0]);
    return new Promise((resolve) => this.#waiters.push({ type, resolve }));
  }

  /** Let it shut down: it exits when its stdin ends. */
  end(): void {
    this.ending = true;
    this.proc.stdin!.end();
  }

  kill(): void {
    if (this.exit === undefined && this.proc.exitCode === null) {
      try {
        this.proc.kill("SIGKILL");
      } catch { /* already gone */ }
    }
  }

  exited(): Promise<void> {
    return this.exit !== undefined
      ? Promise.resolve()
      : new Promise((r) => this.proc.once("close", () => r()));
  }
}

// ---------------------------------------------------------------- state

interface Conn {
  server: string;
  rx: number;
  bytes: number;
  errors: number;
  open: boolean;
}
interface ServerStats {
  t: number;
  links: number;
  channels: number;
  /** The link's channels as the server's `device.linkStats()` shows them. */
  paths?: { kind: string; remote: string; rtt?: number; received: number }[];
  conns: Conn[];
}
interface ClientStats {
  t: number;
  phase?: string;
  sent: number[];
  pings: number;
  pongs: number;
  rtt: { idle: number[]; load: number[] };
}

const devices: Device[] = [];
const history: ServerStats[] = [];
let finalServer: ServerStats | undefined;
let lastClient: ClientStats | undefined;
let doneClient: (ClientStats & { loadMs: number }) | undefined;
const rttAll = { idle: [] as number[], load: [] as number[] };
let rttWindow: number[] = [];
let failed = false;
let cursorHidden = false;

function restoreCursor(): void {
  if (cursorHidden) process.stdout.write("\x1b[?25h");
  cursorHidden = false;
}

function tail(text: string, lines = 15): string {
  return text.trimEnd().split("\n").slice(-lines).map((l) => `    ${l}`).join("\n");
}

/** Stop everything and exit non-zero with the reason. */
function fail(message: string): never {
  if (!failed) {
    failed = true;
    stopLive();
    restoreCursor();
    for (const d of devices) d.kill();
    out();
    out(`${red(bold("✗ linkweave demo failed:"))} ${message}`);
    for (const d of devices) {
      if (d.stderr.trim() !== "") out(`  ${d.name} said:\n${dim(tail(d.stderr))}`);
    }
  }
  process.exit(1);
}

process.on("exit", () => {
  restoreCursor();
  for (const d of devices) d.kill();
});
/** Ctrl-C (which also reaches the devices) or SIGTERM: stop everything, exit 130. */
function interrupted(): never {
  if (!failed) {
    failed = true;
    stopLive();
    for (const d of devices) d.kill();
    out(`\n${yellow("Interrupted")}: both devices stopped`);
  }
  process.exit(130);
}
process.on("SIGINT", interrupted);
process.on("SIGTERM", interrupted);

function onMessage(d: Device) {
  return (m: Message) => {
    if (m.type === "error") fail(`${d.name}: ${m.message}`);
    if (d.role === "server" && (m.type === "stats" || m.type === "final")) {
      const s = m as unknown as ServerStats;
      history.push(s);
      if (history.length > 20) history.shift();
      if (m.type === "final") finalServer = s;
    }
    if (d.role === "client" && (m.type === "stats" || m.type === "done")) {
      const c = m as unknown as ClientStats;
      lastClient = c;
      if (m.type === "done") {
        d.ending = true;
        doneClient = m as unknown as ClientStats & { loadMs: number };
      }
      rttAll.idle.push(...c.rtt.idle);
      rttAll.load.push(...c.rtt.load);
      const window = [...c.rtt.idle, ...c.rtt.load];
      if (m.type === "done") freezeLive();
      else if (window.length > 0) rttWindow = window.sort((a, b) => a - b);
    }
  };
}

function onExit(d: Device): void {
  if (failed) return;
  const { code, signal } = d.exit!;
  if (signal === "SIGINT") interrupted();
  if (!d.ending || code !== 0) {
    const how = signal !== null ? `was killed by ${signal}` : `exited with code ${code}`;
    fail(`the ${d.name} ${how}${d.ending ? "" : " before the demo ended"}`);
  }
}

function startDevice(role: "server" | "client", rt: Runtime, args: string[]): Device {
  const d: Device = new Device(role, rt, args, {
    onMessage: (m) => onMessage(d)(m),
    onExit,
  });
  devices.push(d);
  return d;
}

async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms / 1000} s ${what}`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } catch (e) {
    fail((e as Error).message);
  } finally {
    clearTimeout(timer);
  }
}

// ---------------------------------------------------------------- live report

interface Row {
  label: string;
  server: string;
  rate: number;
  byteRate: number;
  total: number;
}

/** What the live report shows at one moment. */
interface Snapshot {
  rows: Row[];
  open: number;
  links: number;
  channels: number;
  p50?: number;
  p99?: number;
}

/** Per-connection rates over the last half second or so, from the server's counters. */
function snapshot(): Snapshot {
  const now = history.at(-1);
  if (now === undefined) return { rows: [], open: 0, links: 0, channels: 0 };
  const then = history.findLast((s) => s.t <= now.t - 400) ?? history[0];
  const dt = (now.t - then.t) / 1000;
  let bulk = 0;
  const rows = now.conns.map((c, i) => {
    const before = then.conns[i];
    const rate = dt > 0 && before !== undefined ? (c.rx - before.rx) / dt : 0;
    const byteRate = dt > 0 && before !== undefined ? (c.bytes - before.bytes) / dt : 0;
    const label = c.server === "bulk" ? `bulk #${++bulk}` : "probe";
    return { label, server: c.server, rate, byteRate, total: c.rx };
  });
  return {
    rows,
    open: now.conns.filter((c) => c.open).length,
    links: now.links,
    channels: now.channels,
    p50: percentile(rttWindow, 0.5),
    p99: percentile(rttWindow, 0.99),
  };
}

let liveTimer: ReturnType<typeof setInterval> | undefined;
let liveLines = 0;
let liveT0 = 0;
/** The last rates, kept once the load stops; the totals still grow to the end. */
let frozen: Snapshot | undefined;

function progress(elapsed: number): string {
  const width = 28;
  const done = Math.max(0, Math.min(width, Math.round((elapsed / SECONDS) * width)));
  return `${cyan("━".repeat(done))}${dim("─".repeat(width - done))}`;
}

function renderTty(): void {
  const elapsed = Math.min(SECONDS, (performance.now() - liveT0) / 1000);
  const phase = frozen !== undefined
    ? green("done")
    : lastClient?.phase === "load"
    ? bold("under load")
    : "idle: pings only";
  const totals = history.at(-1)?.conns ?? [];
  const s = frozen === undefined ? snapshot() : {
    ...frozen,
    rows: frozen.rows.map((r, i) => ({ ...r, total: totals[i]?.rx ?? r.total })),
  };
  const sum = (k: "rate" | "byteRate" | "total") => s.rows.reduce((a, r) => a + r[k], 0);
  const C = [12, 8, 12, 9, 13, 11, 11];
  const lines = [
    `  ${progress(elapsed)} ${elapsed.toFixed(1).padStart(4)} s of ${SECONDS} s   ${phase}`,
    "",
    dim(
      `  ${"connection".padEnd(C[0])}${"server".padEnd(C[1])}${"messages/s".padStart(C[2])}${
        "MB/s".padStart(C[3])
      }${"messages".padStart(C[4])}${"RTT p50".padStart(C[5])}${"RTT p99".padStart(C[6])}`,
    ),
    ...s.rows.map((r) =>
      `  ${r.label.padEnd(C[0])}${dim(`"${r.server}"`.padEnd(C[1]))}${
        bold(int(r.rate).padStart(C[2]))
      }${mb(r.byteRate).padStart(C[3])}${int(r.total).padStart(C[4])}${
        r.label === "probe" ? `${ms(s.p50).padStart(C[5])}${ms(s.p99).padStart(C[6])}` : ""
      }`
    ),
    `  ${"total".padEnd(C[0] + C[1])}${bold(int(sum("rate")).padStart(C[2]))}${
      bold(mb(sum("byteRate")).padStart(C[3]))
    }${int(sum("total")).padStart(C[4])}`,
    "",
    dim(
      `  ${s.open} logical connections, multiplexed over ${s.links} link ` +
        `(${s.channels} TCP connection${s.channels === 1 ? "" : "s"})`,
    ),
  ];
  let text = liveLines > 0 ? `\x1b[${liveLines}F` : "";
  for (const l of lines) text += `${l}\x1b[K\n`;
  for (let i = lines.length; i < liveLines; i++) text += "\x1b[K\n";
  liveLines = Math.max(liveLines, lines.length);
  process.stdout.write(text);
}

function renderPlain(): void {
  const elapsed = (performance.now() - liveT0) / 1000;
  const s = snapshot();
  const rate = s.rows.reduce((a, r) => a + r.rate, 0);
  const byteRate = s.rows.reduce((a, r) => a + r.byteRate, 0);
  out(
    `  ${elapsed.toFixed(1).padStart(4)} s  ${lastClient?.phase ?? "idle"}  connections ${s.open}` +
      `  messages/s ${int(rate)}  MB/s ${mb(byteRate)}  RTT p50 ${ms(s.p50)}  p99 ${ms(s.p99)}`,
  );
}

function startLive(): void {
  liveT0 = performance.now();
  if (TTY) {
    process.stdout.write("\x1b[?25l");
    cursorHidden = true;
  }
  liveTimer = setInterval(TTY ? renderTty : renderPlain, TTY ? 500 : 1000);
}

/** The load stopped: keep its last rates for the final frame. */
function freezeLive(): void {
  if (frozen === undefined) frozen = snapshot();
  clearInterval(liveTimer);
  liveTimer = undefined;
}

/** Draw the final frame (on a terminal) and give the cursor back. */
function stopLive(): void {
  clearInterval(liveTimer);
  liveTimer = undefined;
  if (TTY && liveT0 > 0) renderTty();
  liveT0 = 0;
  restoreCursor();
}

// ---------------------------------------------------------------- main

const deadline = setTimeout(
  () => fail(`the demo did not finish within ${SECONDS + 12} s`),
  (SECONDS + 12) * 1000,
);

out(`${bold("linkweave")} ${dim("·")} linkEnhance between two devices, two processes, one link`);
out(dim(
  `  ${BULK} bulk connections stream 1 KiB messages to server "bulk"; a probe sends\n` +
    `  timestamped pings to server "echo", which echoes them: all over one TCP link`,
));
if (note !== "") out(yellow(`  ${note}`));
out();

const server = startDevice("server", serverRt, ["--id", SERVER_ID, "--seconds", String(SECONDS)]);
const sr = await within(server.next("ready"), 15_000, `waiting for the ${server.name} to start`);
out(
  `  ${cyan("server")}  ${bold(String(sr.deviceId))}  ${String(sr.runtime).padEnd(11)} ` +
    `listening on ${sr.host}:${sr.port}  ${dim(`pid ${sr.pid}`)}`,
);

const peer = `${sr.deviceId}@${sr.host}:${sr.port}`;
const client = startDevice("client", clientRt, [
  ...["--id", CLIENT_ID, "--peer", peer, "--seconds", String(SECONDS)],
  ...["--idle", String(IDLE), "--bulk", String(BULK)],
]);
const cr = await within(client.next("ready"), 15_000, `waiting for the ${client.name} to start`);
out(
  `  ${cyan("client")}  ${bold(String(cr.deviceId))}  ${String(cr.runtime).padEnd(11)} ` +
    `listening on ${cr.host}:${cr.port}  ${dim(`pid ${cr.pid}`)}`,
);
const cc = await within(client.next("connected"), 8_000, `connecting to ${peer}`);
out(
  `  ${green("✓")} connected ${cc.connections} connections by name in ${
    ms(cc.ms as number)
  }, over ${cc.links} link`,
);
out();

startLive();
await within(client.next("done"), (SECONDS + 6) * 1000, "waiting for the client to finish");
await within(client.exited(), 5_000, `waiting for the ${client.name} to exit`);
// The client disconnected gracefully: the server sees every message, then `disconnected`.
await within(
  (async () => {
    while (history.at(-1)?.conns.some((c) => c.open) !== false) {
      await new Promise((r) => setTimeout(r, 20));
    }
  })(),
  5_000,
  "waiting for the server to see every connection close",
);
server.end();
await within(server.next("final"), 5_000, `waiting for the ${server.name} to report`);
await within(server.exited(), 5_000, `waiting for the ${server.name} to exit`);
stopLive();
clearTimeout(deadline);

// ---------------------------------------------------------------- summary

const fin = finalServer!;
const done = doneClient!;
const bulkConns = fin.conns.filter((c) => c.server === "bulk");
const received = bulkConns.reduce((a, c) => a + c.rx, 0);
const receivedBytes = bulkConns.reduce((a, c) => a + c.bytes, 0);
const sent = done.sent.reduce((a, n) => a + n, 0);
const errors = fin.conns.reduce((a, c) => a + c.errors, 0);
const loadS = done.loadMs / 1000;
const jain = (() => {
  const xs = bulkConns.map((c) => c.rx);
  const s = xs.reduce((a, x) => a + x, 0);
  const s2 = xs.reduce((a, x) => a + x * x, 0);
  return s2 === 0 ? 0 : (s * s) / (xs.length * s2);
})();
const idleSorted = rttAll.idle.sort((a, b) => a - b);
const loadSorted = rttAll.load.sort((a, b) => a - b);

out();
out(bold("Summary"));
out(
  `  devices      ${server.runtime} server ${SERVER_ID} ← ${client.runtime} client ${CLIENT_ID}, ` +
    `on loopback`,
);
const links = frozen?.links ?? 1;
const channels = frozen?.channels ?? 1;
out(
  `  connections  ${fin.conns.length} logical connections by name, over ${links} link ` +
    `(${channels} TCP connection${channels === 1 ? "" : "s"})`,
);
// The channels, from the last report that still saw the link.
const paths = [...history, fin].reverse().find((s) => (s.paths?.length ?? 0) > 0)?.paths ?? [];
for (const [i, p] of paths.entries()) {
  out(
    `  ${i === 0 ? "channels   " : "           "}  #${i + 1} ${p.kind} from ${p.remote}, ` +
      `RTT ${ms(p.rtt)}, ${bytes(p.received)} received`,
  );
}
out(
  `  delivered    ${int(received)} bulk messages (${bytes(receivedBytes)}) in ${
    loadS.toFixed(1)
  } s, ${errors === 0 && received === sent ? "in order and intact" : red("WITH ERRORS")}`,
);
out(
  `  throughput   ${bold(`${int(received / loadS)} messages/s`)}, ${
    bold(`${mb(receivedBytes / loadS)} MB/s`)
  } (1 KiB messages)`,
);
out(`  fairness     Jain's index ${jain.toFixed(4)} over ${bulkConns.length} bulk connections`);
out(
  `  latency      RTT idle p50 ${ms(percentile(idleSorted, 0.5))} p99 ${
    ms(percentile(idleSorted, 0.99))
  }; under load p50 ${ms(percentile(loadSorted, 0.5))} p99 ${ms(percentile(loadSorted, 0.99))} (${
    int(done.pongs)
  } pings)`,
);
out();

if (received !== sent) {
  fail(`the client sent ${int(sent)} bulk messages but the server got ${int(received)}`);
}
if (errors > 0) fail(`the server saw ${errors} messages out of order, malformed or not echoed`);
if (done.pongs !== done.pings) {
  fail(`the probe sent ${int(done.pings)} pings but got ${int(done.pongs)} back`);
}
if (received === 0) fail("no message got through");
out(`${green(bold("✓"))} both devices exited cleanly`);
process.exit(0);

/**
 * `linkweave bench [DEVICE]`: round trips and throughput both ways to a
 * peer's bench server (`linkweave.bench`, which `bench --serve`, `serve`,
 * `receive` and `monitor` run), or to a second device in this process when
 * no DEVICE is given.
 *
 * The bench protocol, over one linkEnhance connection; the first byte of
 * each message says what it is:
 * - `0` data: counted by the receiver and dropped;
 * - `2` echo: sent back as it came (round trips);
 * - `1` control, a JSON object after the byte: `{"op":"report"}` is answered
 *   with `{"op":"report","received":N}` (data bytes since the previous
 *   report); `{"op":"source","ms":T,"size":S}` makes the server send
 *   S-byte data messages for T ms, then `{"op":"sourced","sent":N}`.
 *
 * @module
 */
import type { Connection, Device } from "../link_enhance.ts";
import { createDevice } from "../link_enhance.ts";
import { intOption, parseArgs, positionals, secondsOption, UsageError } from "./_args.ts";
import {
  connectTo,
  DEVICE_HELP,
  DEVICE_OPTIONS,
  drained,
  HIGH_WATER,
  onInterrupt,
  startDevice,
} from "./_device.ts";
import { formatBytes, formatMs, formatRate, Progress } from "./_progress.ts";
import { meters } from "./_snapshot.ts";
import type { Command, Io } from "./mod.ts";

/** The bench server's name. */
export const BENCH_NAME = "linkweave.bench";

const DATA = 0;
const CONTROL = 1;
const ECHO = 2;

const HELP = `Usage: linkweave bench [options] [DEVICE]

Measures the link to DEVICE: the time to connect, round trips of small
messages, and throughput each way with messages of --size bytes, keeping the
connection's send queue full (flow control by "drain"). The peer must answer
bench: \`linkweave bench --serve\`, or any of \`linkweave serve\`, \`receive\`,
\`monitor\` running there. Without DEVICE, a second device in this process is
the peer (over loopback TCP): what this machine's stack does by itself.

Progress goes to standard error; the summary table to standard output:
  measure    value       detail
  connect    4.1 ms      connection opened (link set up too if there was none)
  rtt p50    0.31 ms     200 round trips of 64 B (min .., p90 .., p99 .., max ..)
  upload     48.2 MB/s   145 MB in 3.00 s
  download   51.0 MB/s   153 MB in 3.00 s

Options:
  --serve          answer benchmarks (server "linkweave.bench") until interrupted
  --seconds S      length of each throughput phase (0.2..600, default 3)
  --pings N        round trips to measure (1..100000, default 200)
  --size N         bytes per data message (1..1024, default 1024)
  --json           the results as one JSON line instead of the table:
                     {"peer","name","size","connectMs","rtt":{"n","min","p50","p90","p99",
                      "max","mean"},"upload":{"bytes","ms","rate"},"download":{...}}
                   (times in ms, rates in bytes/s)
${DEVICE_HELP}
Exit codes: 0 done, 1 the connect or a phase failed (the peer went away, or
counted other bytes than were sent), 2 wrong usage.
`;

/** A running bench server. */
export interface BenchServer {
  /** Stop answering. */
  close(): void;
}

/**
 * Answer benchmarks on a device (the server {@linkcode BENCH_NAME}).
 *
 * @param device The device.
 * @param io Where to warn when it cannot start.
 * @returns The server, or `undefined` when it could not start (a warning says why).
 */
export function startBenchServer(device: Device, io: Io): BenchServer | undefined {
  const conns = new Set<Connection>();
  try {
    const server = device.createServer(BENCH_NAME);
    server.on("connectionAccepted", (conn) => {
      conns.add(conn);
      serveBench(conn);
    });
    server.start();
    return {
      close: () => {
        for (const c of conns) c.close();
        server.close();
      },
    };
  } catch (e) {
    io.stderr(`linkweave: not answering bench: ${(e as Error).message}\n`);
    return undefined;
  }
}

function control(obj: Record<string, unknown>): ArrayBuffer {
  const json = new TextEncoder().encode(JSON.stringify(obj));
  const out = new Uint8Array(json.length + 1);
  out[0] = CONTROL;
  out.set(json, 1);
  return out.buffer;
}

function parseControl(data: ArrayBuffer): Record<string, unknown> | undefined {
  try {
    const v = JSON.parse(new TextDecoder().decode(new Uint8Array(data, 1)));
    return typeof v === "object" && v !== null ? v : undefined;
  } catch {
    return undefined;
  }
}

/** The server side of one bench connection. */
function serveBench(conn: Connection): void {
  const peer = conn.getPeerDeviceId();
  const meter = meters.open(conn, { peer, name: BENCH_NAME, role: "server", use: "bench" });
  let received = 0;
  let sourcing = false;
  conn.on("disconnected", () => {
    meter.closed = true;
    sourcing = false;
    conn.close();
  });
  conn.on("dataReceived", (data) => {
    meter.received += data.byteLength;
    const kind = new Uint8Array(data)[0];
    if (kind === DATA) {
      received += data.byteLength;
    } else if (kind === ECHO) {
      trySend(data);
    } else if (kind === CONTROL) {
      const c = parseControl(data);
      if (c?.op === "report") {
        trySend(control({ op: "report", received }));
        received = 0;
      } else if (c?.op === "source" && !sourcing) {
        const ms = Math.min(600_000, Math.max(0, Number(c.ms) || 0));
        const size = Math.min(1024, Math.max(1, Math.floor(Number(c.size) || 1024)));
        sourcing = true;
        void source(ms, size).finally(() => sourcing = false);
      }
    }
  });
  const trySend = (data: ArrayBuffer) => {
    try {
      conn.sendData(data);
      meter.sent += data.byteLength;
    } catch {
      // The queue is full or the connection went away: a bench client waits for what it asked.
    }
  };
  const source = async (ms: number, size: number) => {
    const buf = new Uint8Array(size).buffer; // kind 0: data
    let sent = 0;
    const end = performance.now() + ms;
    while (sourcing && performance.now() < end) {
      if (conn.bufferedAmount >= HIGH_WATER) {
        await drained(conn);
        continue;
      }
      try {
        conn.sendData(buf);
      } catch {
        return;
      }
      sent += size;
      meter.sent += size;
    }
    trySend(control({ op: "sourced", sent }));
  };
}

/** The results of a run. */
interface Results {
  peer: string;
  name: string;
  size: number;
  connectMs: number;
  rtt: { n: number; min: number; p50: number; p90: number; p99: number; max: number; mean: number };
  upload: { bytes: number; ms: number; rate: number };
  download: { bytes: number; ms: number; rate: number };
}

/** Messages of one connection as a queue the client awaits. */
class Inbox {
  #waiting: ((data: ArrayBuffer) => void) | undefined;
  #gone: ((e: Error) => void) | undefined;
  /** Data bytes received (kind 0). */
  data = 0;
  /** Set on the first data message. */
  firstData: number | undefined;
  #error: Error | undefined;

  constructor(conn: Connection, onBytes: (n: number) => void) {
    conn.on("dataReceived", (d) => {
      onBytes(d.byteLength);
      if (new Uint8Array(d)[0] === DATA) {
        this.firstData ??= performance.now();
        this.data += d.byteLength;
        return;
      }
      const w = this.#waiting;
      this.#waiting = undefined;
      w?.(d);
    });
    conn.on("disconnected", (reason) => {
      this.#error = new Error(`The bench peer disconnected (${reason})`);
      this.#gone?.(this.#error);
    });
  }

  /** The next message that is not data. */
  next(timeout: number): Promise<ArrayBuffer> {
    if (this.#error !== undefined) return Promise.reject(this.#error);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("The bench peer did not answer")), timeout);
      this.#waiting = (d) => {
        clearTimeout(timer);
        resolve(d);
      };
      this.#gone = (e) => {
        clearTimeout(timer);
        reject(e);
      };
    });
  }
}

function percentile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

async function measure(
  conn: Connection,
  io: Io,
  options: { pings: number; ms: number; size: number; progress: boolean; connectMs: number },
): Promise<Results> {
  const peer = conn.getPeerDeviceId();
  const meter = meters.open(conn, { peer, name: BENCH_NAME, role: "client", use: "bench" });
  const inbox = new Inbox(conn, (n) => meter.received += n);
  const answerWithin = Math.max(10_000, options.ms * 4);
  try {
    // Round trips: one 64-byte echo at a time.
    const ping = new Uint8Array(64);
    ping[0] = ECHO;
    const times: number[] = [];
    const rttProgress = new Progress(io, { label: "rtt", enabled: options.progress });
    for (let i = 0; i < options.pings; i++) {
      new DataView(ping.buffer).setUint32(1, i);
      const t = performance.now();
      conn.sendData(ping.buffer);
      meter.sent += ping.length;
      const back = new Uint8Array(await inbox.next(answerWithin));
      if (back[0] !== ECHO || new DataView(back.buffer).getUint32(1) !== i) {
        throw new Error(`Round trip ${i} came back as another message`);
      }
      times.push(performance.now() - t);
      rttProgress.update(i * 64);
    }
    rttProgress.finish(options.pings * 64);
    const sorted = [...times].sort((a, b) => a - b);
    const rtt = {
      n: sorted.length,
      min: sorted[0],
      p50: percentile(sorted, 0.5),
      p90: percentile(sorted, 0.9),
      p99: percentile(sorted, 0.99),
      max: sorted[sorted.length - 1],
      mean: times.reduce((a, b) => a + b, 0) / times.length,
    };

    // Upload: keep the send queue full for the phase, then ask what arrived.
    const buf = new Uint8Array(options.size).buffer; // kind 0: data
    const up = new Progress(io, { label: "upload", enabled: options.progress });
    let sent = 0;
    const t0 = performance.now();
    while (performance.now() - t0 < options.ms) {
      if (conn.bufferedAmount >= HIGH_WATER) {
        up.update(sent - conn.bufferedAmount);
        await drained(conn);
        continue;
      }
      conn.sendData(buf);
      sent += options.size;
      meter.sent += options.size;
    }
    conn.sendData(control({ op: "report" }));
    const report = parseControl(await inbox.next(answerWithin));
    const upMs = performance.now() - t0;
    up.finish(sent);
    if (report?.op !== "report" || report.received !== sent) {
      throw new Error(
        `Upload: the peer counted ${report?.received} bytes of the ${sent} sent`,
      );
    }

    // Download: the peer sends for the phase, then says how much.
    const down = new Progress(io, { label: "download", enabled: options.progress });
    const t1 = performance.now();
    conn.sendData(control({ op: "source", ms: options.ms, size: options.size }));
    const ticker = setInterval(() => down.update(inbox.data), 250);
    let sourced;
    try {
      sourced = parseControl(await inbox.next(answerWithin));
    } finally {
      clearInterval(ticker);
    }
    const downMs = performance.now() - t1;
    down.finish(inbox.data);
    if (sourced?.op !== "sourced" || sourced.sent !== inbox.data) {
      throw new Error(
        `Download: ${inbox.data} bytes arrived of the ${sourced?.sent} the peer sent`,
      );
    }
    return {
      peer,
      name: BENCH_NAME,
      size: options.size,
      connectMs: options.connectMs,
      rtt,
      upload: { bytes: sent, ms: upMs, rate: sent / (upMs / 1000) },
      download: { bytes: inbox.data, ms: downMs, rate: inbox.data / (downMs / 1000) },
    };
  } finally {
    meter.closed = true;
  }
}

function table(r: Results): string {
  const rows: [string, string, string][] = [
    ["measure", "value", "detail"],
    ["connect", formatMs(r.connectMs), "connection opened (link set up too if there was none)"],
    [
      "rtt p50",
      formatMs(r.rtt.p50),
      `${r.rtt.n} round trips of 64 B (min ${formatMs(r.rtt.min)}, p90 ${
        formatMs(r.rtt.p90)
      }, p99 ${formatMs(r.rtt.p99)}, max ${formatMs(r.rtt.max)})`,
    ],
    [
      "upload",
      formatRate(r.upload.rate),
      `${formatBytes(r.upload.bytes)} in ${(r.upload.ms / 1000).toFixed(2)} s`,
    ],
    [
      "download",
      formatRate(r.download.rate),
      `${formatBytes(r.download.bytes)} in ${(r.download.ms / 1000).toFixed(2)} s`,
    ],
  ];
  const w0 = Math.max(...rows.map((x) => x[0].length));
  const w1 = Math.max(...rows.map((x) => x[1].length));
  return `linkweave bench: ${r.peer} ("${r.name}"), ${r.size}-byte messages\n` +
    rows.map((x) => `  ${x[0].padEnd(w0)}  ${x[1].padEnd(w1)}  ${x[2]}`).join("\n") + "\n";
}

async function run(args: string[], io: Io): Promise<number> {
  const p = parseArgs(args, {
    ...DEVICE_OPTIONS,
    serve: {},
    seconds: { value: true },
    pings: { value: true },
    size: { value: true },
    json: {},
  });
  const [target] = positionals(p, ["DEVICE?"]);
  const ms = secondsOption(p, "seconds", { min: 0.2, max: 600, default: 3 });
  const pings = intOption(p, "pings", { min: 1, max: 100_000, default: 200 });
  const size = intOption(p, "size", { min: 1, max: 1024, default: 1024 });
  if (p.flags.has("serve")) {
    if (target !== undefined) throw new UsageError("--serve takes no DEVICE");
    const { device } = await startDevice(p, io, "bench");
    const server = startBenchServer(device, io);
    if (server === undefined) {
      await device.close();
      return 1;
    }
    io.stderr(`linkweave bench: answering benchmarks ("${BENCH_NAME}")\n`);
    await new Promise<void>((resolve) => onInterrupt(resolve));
    server.close();
    await device.close();
    return 0;
  }
  // Without a target, a second device of this process is the peer.
  let local: Device | undefined;
  let peer = target;
  const extra: { peers?: string[]; discovery?: "off" } = {};
  if (peer === undefined) {
    local = createDevice({ port: 0, bind: "127.0.0.1", discovery: "off" });
    const rt = await local.runtime();
    startBenchServer(local, io);
    peer = rt.deviceId;
    extra.peers = [...(p.values.get("peer") ?? []), `${rt.deviceId}@127.0.0.1:${rt.port}`];
    extra.discovery = "off";
  }
  const { device } = await startDevice(p, io, "bench", extra);
  try {
    const t0 = performance.now();
    const conn = await connectTo(device, { peer, name: BENCH_NAME });
    const connectMs = performance.now() - t0;
    try {
      const r = await measure(conn, io, { pings, ms, size, progress: true, connectMs });
      io.stdout(p.flags.has("json") ? `${JSON.stringify(r)}\n` : table(r));
    } finally {
      conn.close();
    }
    return 0;
  } finally {
    await device.close();
    await local?.close();
  }
}

/** The `bench` command. */
export const benchCommand: Command = {
  name: "bench",
  summary: "measure round trips and throughput to a peer (or this machine's own stack)",
  help: HELP,
  run,
};

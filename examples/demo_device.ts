/**
 * One device of the `npm start` demo (`scripts/start.ts` runs two of them as
 * separate processes). It reports to its parent as JSON lines on stdout and
 * shuts down when its stdin ends, so it never outlives the parent.
 *
 * - `server`: listens on an ephemeral loopback port, starts two linkEnhance
 *   servers, `bulk` (counts messages and checks their order) and `echo`
 *   (sends every message back), and reports what it received.
 * - `client --peer ID@127.0.0.1:PORT`: connects `--bulk N` connections to
 *   `bulk` and one probe to `echo`, all multiplexed over one link, pings
 *   through the probe and reports round-trip times, for `--seconds S`: at
 *   idle first (`--idle S`), then with the bulk senders busy (paced by
 *   `bufferedAmount` and `drain`).
 *
 * Run by hand:
 * ```sh
 * deno run -A examples/demo_device.ts server
 * bun examples/demo_device.ts client --peer 02:00:00:00:00:01@127.0.0.1:PORT --seconds 5
 * ```
 *
 * @module
 */
import process from "node:process";
import { setTimeout as later } from "node:timers";
import { type Connection, createDevice, MAX_SEND_DATA } from "../link_enhance.ts";
import { ErrorCode, errorMessage } from "../core/error_codes.ts";

/** The server device's id unless `--id` says otherwise. */
const SERVER_ID = "02:00:00:00:00:01";
/** The client device's id unless `--id` says otherwise. */
const CLIENT_ID = "02:00:00:00:00:02";
/** How often a device reports (ms). */
const REPORT_MS = 500;
/** How often the probe pings (ms). */
const PING_MS = 2;
/** A bulk sender refills its queue up to this many bytes, then waits for `drain`. */
const HIGH_WATER = 512 * 1024;

type Json = Record<string, unknown>;

function emit(message: Json): void {
  process.stdout.write(`${JSON.stringify(message)}\n`);
}

function fail(message: string): never {
  emit({ type: "error", message });
  process.exit(1);
}

function runtime(): string {
  const g = globalThis as { Deno?: { version: { deno: string } }; Bun?: { version: string } };
  if (g.Bun !== undefined) return `bun ${g.Bun.version}`;
  if (g.Deno !== undefined) return `deno ${g.Deno.version.deno}`;
  return `node ${process.versions.node}`;
}

function option(args: string[], name: string, fallback: string): string {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : fallback;
}

/** Call `fn` once stdin ends (the parent closed it or died). */
function onStdinEnd(fn: () => void): void {
  let called = false;
  const once = () => {
    if (!called) (called = true, fn());
  };
  process.stdin.on("end", once);
  process.stdin.on("close", once);
  process.stdin.on("error", once);
  process.stdin.on("data", () => {});
  process.stdin.resume();
}

/** Exit with code 3 if still running after `ms` (a parent that hangs cannot keep us). */
function watchdog(ms: number): void {
  later(() => {
    emit({ type: "error", message: `gave up after ${ms} ms` });
    process.exit(3);
  }, ms).unref();
}

// ---------------------------------------------------------------- server

interface Accepted {
  server: string;
  rx: number;
  bytes: number;
  errors: number;
  open: boolean;
}

async function server(args: string[]): Promise<void> {
  const deviceId = option(args, "id", SERVER_ID);
  const dev = createDevice({ deviceId, port: 0, bind: "127.0.0.1", discovery: "off" });
  const device = await dev.runtime();
  const accepted: Accepted[] = [];
  const t0 = performance.now();

  const report = (type: string) => {
    let channels = 0;
    const links = device.links();
    for (const n of links.values()) channels += n;
    // Each channel of the link and what it measured (device.linkStats()).
    const paths = dev.linkStats().flatMap((l) =>
      l.channels.map((c) => ({
        kind: c.kind,
        remote: c.remote,
        rtt: c.minRtt,
        received: c.received,
      }))
    );
    emit({ type, t: performance.now() - t0, links: links.size, channels, paths, conns: accepted });
  };

  const bulk = dev.createServer("bulk");
  bulk.on("connectionAccepted", (conn) => {
    const a: Accepted = { server: "bulk", rx: 0, bytes: 0, errors: 0, open: true };
    accepted.push(a);
    let expect = 0;
    conn.on("dataReceived", (data) => {
      // Every bulk message is 1 KiB and starts with its sequence number.
      if (data.byteLength !== MAX_SEND_DATA || new DataView(data).getUint32(0) !== expect) {
        a.errors++;
      }
      expect = (expect + 1) >>> 0;
      a.rx++;
      a.bytes += data.byteLength;
    });
    conn.on("disconnected", () => {
      a.open = false;
      report("stats");
    });
  });

  const echo = dev.createServer("echo");
  echo.on("connectionAccepted", (conn) => {
    const a: Accepted = { server: "echo", rx: 0, bytes: 0, errors: 0, open: true };
    accepted.push(a);
    conn.on("dataReceived", (data) => {
      a.rx++;
      a.bytes += data.byteLength;
      try {
        conn.sendData(data);
      } catch {
        a.errors++;
      }
    });
    conn.on("disconnected", () => {
      a.open = false;
      report("stats");
    });
  });

  bulk.start();
  echo.start();
  emit({
    type: "ready",
    role: "server",
    deviceId: device.deviceId,
    host: device.bind,
    port: device.port,
    runtime: runtime(),
    pid: process.pid,
  });
  const timer = setInterval(() => report("stats"), REPORT_MS);
  onStdinEnd(async () => {
    clearInterval(timer);
    report("final");
    bulk.close();
    echo.close();
    await dev.close();
    process.exit(0);
  });
}

// ---------------------------------------------------------------- client

async function client(args: string[]): Promise<void> {
  const deviceId = option(args, "id", CLIENT_ID);
  const peer = option(args, "peer", "");
  const seconds = Number(option(args, "seconds", "6"));
  const nBulk = Number(option(args, "bulk", "4"));
  const idle = Number(option(args, "idle", "1"));
  const serverId = peer.split("@")[0];
  if (!peer.includes("@")) fail(`expected --peer ID@HOST:PORT, got "${peer}"`);
  const dev = createDevice({
    deviceId,
    port: 0,
    bind: "127.0.0.1",
    discovery: "off",
    peers: [peer],
    limits: { connections: nBulk + 1 },
    connectTimeout: 5000,
  });
  const device = await dev.runtime();
  emit({
    type: "ready",
    role: "client",
    deviceId: device.deviceId,
    host: device.bind,
    port: device.port,
    runtime: runtime(),
    pid: process.pid,
  });
  let stopping = false;
  onStdinEnd(() => process.exit(stopping ? 0 : 1));

  // Connect every connection by name; they share one link to the server device.
  const connectT0 = performance.now();
  const open = (name: string, label: string) =>
    new Promise<Connection>((resolve) => {
      const conn = dev.createConnection(serverId, name);
      conn.on("connectResult", (r) => {
        if (r.success) resolve(conn);
        else {
          fail(
            `connectResult failed for ${label} (server "${name}" on ${serverId}): ` +
              `reason ${r.reason} (${errorMessage(r.reason)})`,
          );
        }
      });
      conn.on("disconnected", (reason) => {
        if (!stopping) fail(`${label} was disconnected by the peer (reason ${reason})`);
      });
      conn.connect();
    });
  const labels = Array.from({ length: nBulk }, (_, i) => `bulk #${i + 1}`);
  const conns = await Promise.all(labels.map((l) => open("bulk", l)));
  const probe = await open("echo", "the probe");
  emit({
    type: "connected",
    ms: performance.now() - connectT0,
    connections: conns.length + 1,
    links: device.links().size,
  });

  // The probe: timestamped pings, echoed by the server; the round trip is
  // measured here, and filed under "idle" or "load" by when the ping left.
  let pings = 0;
  let pongs = 0;
  let loadT0 = Infinity;
  let rtt = { idle: [] as number[], load: [] as number[] };
  const ping = new ArrayBuffer(16);
  const pingView = new DataView(ping);
  probe.on("dataReceived", (data) => {
    const t = new DataView(data).getFloat64(0);
    pongs++;
    (t < loadT0 ? rtt.idle : rtt.load).push(Math.round((performance.now() - t) * 1000) / 1000);
  });
  const pinger = setInterval(() => {
    pingView.setFloat64(0, performance.now());
    pingView.setUint32(8, pings);
    probe.sendData(ping);
    pings++;
  }, PING_MS);

  // Bulk senders: 1 KiB messages numbered per connection, paced by the send queue.
  const sent = conns.map(() => 0);
  const message = new ArrayBuffer(MAX_SEND_DATA);
  const view = new DataView(message);
  new Uint8Array(message).fill(0x5a);
  const pump = (i: number) => {
    const conn = conns[i];
    while (!stopping && conn.bufferedAmount < HIGH_WATER) {
      view.setUint32(0, sent[i] >>> 0);
      try {
        conn.sendData(message);
      } catch (e) {
        if ((e as { code?: number }).code === ErrorCode.INTERNAL_ERROR) return; // full: "drain"
        throw e;
      }
      sent[i]++;
    }
  };

  const t0 = performance.now();
  let phase = "idle";
  const take = () => {
    const out = rtt;
    rtt = { idle: [], load: [] };
    return out;
  };
  const reporter = setInterval(() => {
    emit({ type: "stats", t: performance.now() - t0, phase, sent, pings, pongs, rtt: take() });
  }, REPORT_MS);
  await new Promise((r) => setTimeout(r, idle * 1000));
  phase = "load";
  loadT0 = performance.now();
  conns.forEach((conn, i) => {
    conn.on("drain", () => pump(i));
    pump(i);
  });

  await new Promise((r) => setTimeout(r, Math.max(0, seconds - idle) * 1000));
  stopping = true;
  const loadMs = performance.now() - loadT0;
  clearInterval(pinger);
  clearInterval(reporter);
  // Let the queues empty and the last pongs come back, then close gracefully:
  // the server sees `disconnected` only after every message sent before it.
  const until = performance.now() + 3000;
  while (
    performance.now() < until &&
    (pongs < pings || conns.some((c) => c.bufferedAmount > 0))
  ) await new Promise((r) => setTimeout(r, 10));
  emit({ type: "done", t: performance.now() - t0, loadMs, sent, pings, pongs, rtt: take() });
  for (const c of [...conns, probe]) c.disconnect();
  await new Promise((r) => setTimeout(r, 50));
  await dev.close();
  process.exit(0);
}

const [role, ...rest] = process.argv.slice(2);
watchdog(Number(option(rest, "seconds", "6")) * 1000 + 15_000);
if (role === "server") await server(rest);
else if (role === "client") await client(rest);
else {fail(
    `usage: demo_device.ts server | client --peer ID@HOST:PORT [--seconds S] [--idle S] [--bulk N]`,
  );}

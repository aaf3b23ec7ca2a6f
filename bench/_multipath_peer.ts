/**
 * A device process for the multipath lab (`bench/_multipath_link.ts` and
 * `tests/multipath_lab_test.ts`): a device configured only by `LINKWEAVE_*`
 * (id, port, bind, peers, channels, account), started in one of the lab's
 * namespaces with the runtime being measured. It prints one JSON object per
 * line on stdout and runs until killed.
 *
 * `receiver` (argv[2]) serves `sink` (counts and hashes what arrives) and
 * `echo` (sends every message back), then prints `{"ready":id}`. Every
 * `LW_MP_REPORT_MS` (default 200) it prints
 * `{"progress":bytes,"channels":[...]}` (the link's channels from
 * `device.linkStats()`: kind, far end, bytes each way, health, latest and
 * smallest round trip, bytes in flight, budget, rate); after
 * `LW_MP_BYTES` bytes arrived, `{"done":bytes,"sha256":hex,"ms":n}`; and,
 * `LW_MP_SECONDS` after the first byte, `{"window":bytes,"ms":n}`.
 *
 * `sender` connects to `sink` of `LW_MP_PEER` and sends 1 KiB messages on
 * that one connection: `LW_MP_BYTES` of them (each message starts with its
 * index, so reordering changes the hash), then `{"sent":bytes,"sha256":hex}`;
 * or, without `LW_MP_BYTES`, as fast as the link takes them until killed.
 * With `LW_MP_RTT_SECONDS` it also opens a connection to `echo` and, after
 * `LW_MP_WARM_MS` (default 2000), times 1 KiB round trips on it for that
 * long, then prints `{"rtts":[ms,...]}`. It prints `{"channels":[...]}`
 * every `LW_MP_REPORT_MS` and `{"disconnected":reason}` if a connection
 * breaks.
 *
 * @module
 */
import { createHash } from "node:crypto";
import process from "node:process";
import { type Connection, createDevice, type Device } from "../link_enhance.ts";

const MSG = 1024;
const QUEUE_FULL = 32390300;

const env = process.env;
const REPORT_MS = Number(env.LW_MP_REPORT_MS ?? 200);

function say(what: unknown): void {
  console.log(JSON.stringify(what));
}

/** The channels of every link, with what shows which path each used. */
function channels(dev: Device): unknown[] {
  return dev.linkStats().flatMap((l) =>
    l.channels.map((c) => ({
      peer: l.peer,
      kind: c.kind,
      remote: c.remote,
      sent: c.sent,
      received: c.received,
      health: c.health,
      rtt: c.rtt,
      minRtt: c.minRtt,
      inFlight: c.inFlight,
      budget: Math.round(c.budget),
      rate: Math.round(c.rate),
    }))
  );
}

/** Message `i` of a transfer: its index, then bytes that differ from one message to the next. */
function message(i: number): Uint8Array {
  const m = new Uint8Array(MSG);
  new DataView(m.buffer).setUint32(0, i);
  let x = (i * 2654435761 + 1) >>> 0;
  for (let k = 4; k < MSG; k++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    m[k] = x & 0xff;
  }
  return m;
}

function receiver(): void {
  const dev = createDevice();
  const want = env.LW_MP_BYTES === undefined ? undefined : Number(env.LW_MP_BYTES);
  const windowMs = env.LW_MP_SECONDS === undefined ? undefined : Number(env.LW_MP_SECONDS) * 1000;
  const hash = createHash("sha256");
  let bytes = 0;
  let first: number | undefined;
  const sink = dev.createServer("sink");
  sink.on("connectionAccepted", (c) => {
    c.on("dataReceived", (b) => {
      if (first === undefined) {
        first = performance.now();
        if (windowMs !== undefined) {
          setTimeout(() => say({ window: bytes, ms: performance.now() - first! }), windowMs);
        }
      }
      const had = bytes;
      bytes += b.byteLength;
      if (want !== undefined && had < want) {
        hash.update(new Uint8Array(b));
        if (bytes >= want) {
          say({ done: bytes, sha256: hash.digest("hex"), ms: performance.now() - first });
        }
      }
    });
  });
  sink.start();
  const echo = dev.createServer("echo");
  echo.on("connectionAccepted", (c) => c.on("dataReceived", (b) => c.sendData(b)));
  echo.start();
  dev.runtime().then((rt) => {
    say({ ready: rt.deviceId, port: rt.port });
    setInterval(() => say({ progress: bytes, channels: channels(dev) }), REPORT_MS);
  });
}

function connect(dev: Device, peer: string, name: string): Promise<Connection> {
  const c = dev.createConnection(peer, name);
  c.on("disconnected", (reason) => say({ disconnected: reason, server: name }));
  return new Promise((resolve, reject) => {
    c.on(
      "connectResult",
      (r) =>
        r.success
          ? resolve(c)
          : reject(new Error(`Cannot connect to "${name}" of ${peer}: ${r.reason}`)),
    );
    c.connect();
  });
}

/** Send `send(i)` for i = 0.. until it returns false, waiting for `drain` when the queue is full. */
async function pump(c: Connection, send: (i: number) => ArrayBuffer | undefined): Promise<void> {
  let wake: (() => void) | undefined;
  c.on("drain", () => {
    const w = wake;
    wake = undefined;
    w?.();
  });
  for (let i = 0;; i++) {
    const data = send(i);
    if (data === undefined) return;
    for (;;) {
      try {
        c.sendData(data);
        break;
      } catch (e) {
        if ((e as { code?: number }).code !== QUEUE_FULL) throw e;
        await new Promise<void>((r) => (wake = r));
      }
    }
  }
}

async function roundTrips(c: Connection, ms: number): Promise<number[]> {
  const msg = new Uint8Array(MSG).fill(7);
  let got = 0;
  let wake: (() => void) | undefined;
  c.on("dataReceived", (b) => {
    got += b.byteLength;
    wake?.();
  });
  const out: number[] = [];
  const end = performance.now() + ms;
  let want = 0;
  while (performance.now() < end) {
    const t0 = performance.now();
    want += MSG;
    const back = new Promise<void>((r) => (wake = r));
    c.sendData(msg.slice().buffer);
    while (got < want) await back;
    out.push(performance.now() - t0);
  }
  return out;
}

async function sender(): Promise<void> {
  const dev = createDevice();
  const peer = env.LW_MP_PEER;
  if (peer === undefined) throw new Error("Cannot send: LW_MP_PEER names no peer");
  await dev.runtime();
  setInterval(() => say({ channels: channels(dev) }), REPORT_MS);
  const bulk = await connect(dev, peer, "sink");
  const rttSeconds = env.LW_MP_RTT_SECONDS;
  if (rttSeconds !== undefined) {
    const echo = await connect(dev, peer, "echo");
    const warm = Number(env.LW_MP_WARM_MS ?? 2000);
    setTimeout(async () => {
      say({ rtts: await roundTrips(echo, Number(rttSeconds) * 1000) });
    }, warm);
  }
  if (env.LW_MP_BYTES !== undefined) {
    const count = Math.ceil(Number(env.LW_MP_BYTES) / MSG);
    const hash = createHash("sha256");
    await pump(bulk, (i) => {
      if (i === count) return undefined;
      const m = message(i);
      hash.update(m);
      return m.buffer as ArrayBuffer;
    });
    say({ sent: count * MSG, sha256: hash.digest("hex") });
  } else {
    const m = message(0).buffer as ArrayBuffer;
    await pump(bulk, () => m);
  }
}

const role = process.argv[2];
if (role === "receiver") {
  receiver();
} else if (role === "sender") {
  sender().catch((e) => {
    say({ error: e instanceof Error ? e.message : String(e) });
    process.exit(1);
  });
} else {
  console.error(
    "Usage: _multipath_peer.ts receiver|sender (configured by LINKWEAVE_* and LW_MP_*)",
  );
  process.exit(2);
}

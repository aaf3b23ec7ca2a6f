/**
 * The legitimate client of `tests/hostile/link_test.ts`: it keeps using the
 * victim (`LW_VICTIM`, reached through `LINKWEAVE_PEERS`) while the test
 * attacks it, and prints one line per round:
 * `{"round":n,"start":ms,"end":ms,"fresh":"ok"|why,"kept":"ok"|why}` (times
 * from `Date.now()`).
 *
 * - `kept`: a connection made once at start (device `LW_ID:00:00`) sends a
 *   message and waits for its echo, every round: the established link lives.
 * - `fresh`: every round a new device (`LW_ID:<n>`: a new TCP connection, a
 *   handshake, a new link) connects, gets an echo and closes: the victim
 *   still accepts.
 *
 * A round starts every `LW_EVERY` ms (default 100); each step gives up after
 * `LW_TIMEOUT` ms (default 4000). It prints `{"ready":true}` once the kept
 * connection is up, and runs until killed.
 *
 * @module
 */
import process from "node:process";
import { type Connection, createDevice, type Device } from "../../link_enhance.ts";

const victim = process.env.LW_VICTIM!;
const base = process.env.LW_ID ?? "02:C1:1E:00";
const every = Number(process.env.LW_EVERY ?? 100);
const timeout = Number(process.env.LW_TIMEOUT ?? 4000);
const out = (o: Record<string, unknown>) => console.log(JSON.stringify(o));
const hex = (n: number) => n.toString(16).padStart(2, "0").toUpperCase();

function device(n: number): Device {
  return createDevice({
    deviceId: `${base}:${hex(n >> 8)}:${hex(n & 255)}`,
    port: 0,
    discovery: "off",
    connectTimeout: timeout,
  });
}

/** Connect to the victim's echo server: the connection, or why not. */
function connect(dev: Device): Promise<Connection | string> {
  const conn = dev.createConnection(victim, "echo");
  return new Promise((resolve) => {
    conn.on("connectResult", (r) => resolve(r.success ? conn : `refused ${r.reason}`));
    conn.connect();
  });
}

/** Send a message and wait for its echo: "ok", or why not. */
function echo(conn: Connection, text: string): Promise<string> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve("no echo"), timeout);
    const done = (why: string) => {
      clearTimeout(timer);
      conn.off("dataReceived");
      conn.off("disconnected");
      resolve(why);
    };
    conn.on("dataReceived", (d) => {
      const got = new TextDecoder().decode(d);
      if (got === text) done("ok");
    });
    conn.on("disconnected", (reason) => done(`disconnected ${reason}`));
    try {
      conn.sendData(new TextEncoder().encode(text).buffer as ArrayBuffer);
    } catch (e) {
      done(`send failed: ${(e as Error).message}`);
    }
  });
}

const keptDevice = device(0);
let kept: Connection | string = "not connected";
for (let tries = 0; tries < 20 && typeof kept === "string"; tries++) {
  kept = await connect(keptDevice);
}
if (typeof kept === "string") {
  out({ failed: kept });
  process.exit(1);
}
out({ ready: true });
for (let n = 1;; n++) {
  const started = Date.now();
  const dev = device(n);
  const conn = await connect(dev);
  const fresh = typeof conn === "string" ? conn : await echo(conn, `fresh ${n}`);
  const k = typeof kept === "string" ? kept : await echo(kept, `kept ${n}`);
  out({ round: n, start: started, end: Date.now(), fresh, kept: k });
  if (typeof conn !== "string") conn.close();
  void dev.close();
  await new Promise((r) => setTimeout(r, Math.max(0, every - (Date.now() - started))));
}

/**
 * Latency under load over real loopback TCP, two devices in one process: a
 * small message does not queue behind a busy connection's bulk data on the
 * same link, and the bulk connection keeps delivering meanwhile. A property
 * in bytes, not a time: the bulk bytes that reach the peer between a round
 * trip's request and its arrival are the bytes it queued behind.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { freePort } from "./_script.ts";
import { type Connection, createDevice, type Device } from "../link_enhance.ts";
import { DEFAULT_STREAM_WINDOW } from "../core/proto/link/mod.ts";
import { within } from "./harness/within.ts";

const A = "02:00:00:00:0C:01";
const B = "02:00:00:00:0C:02";
const QUEUE_FULL = 32390300;
const ROUND_TRIPS = 40;

const devices: Device[] = [];
after(async () => {
  await Promise.all(devices.map((d) => d.close()));
});

function connect(dev: Device, name: string): Promise<Connection> {
  const c = dev.createConnection(A, name);
  return new Promise((resolve, reject) => {
    c.on("connectResult", (r) => r.success ? resolve(c) : reject(new Error(`${r.reason}`)));
    c.connect();
  });
}

describe("latency under load over loopback TCP", () => {
  it("completes round trips while a bulk connection keeps delivering, each queued behind far less than a window", async () => {
    const [pa, pb] = [await freePort(), await freePort()];
    const common = { bind: "127.0.0.1", discovery: "off" as const };
    const a = createDevice({ ...common, deviceId: A, port: pa, peers: [`${B}@127.0.0.1:${pb}`] });
    const b = createDevice({ ...common, deviceId: B, port: pb, peers: [`${A}@127.0.0.1:${pa}`] });
    devices.push(a, b);
    await Promise.all([a.runtime(), b.runtime()]);

    let sunk = 0; // bulk bytes that reached A
    const sink = a.createServer("sink");
    sink.on("connectionAccepted", (c) => c.on("dataReceived", (d) => (sunk += d.byteLength)));
    sink.start();
    const atEcho: number[] = []; // `sunk` when each request reached A
    const echo = a.createServer("echo");
    echo.on("connectionAccepted", (c) =>
      c.on("dataReceived", (d) => {
        atEcho.push(sunk);
        c.sendData(d);
      }));
    echo.start();

    const bulk = await connect(b, "sink");
    const ping = await connect(b, "echo");
    let stopped = false;
    let wake: () => void = () => {};
    bulk.on("drain", () => wake());
    const msg = new Uint8Array(1024).fill(7).buffer;
    const load = (async () => {
      while (!stopped) {
        try {
          bulk.sendData(msg);
        } catch (e) {
          if ((e as { code?: number }).code !== QUEUE_FULL) throw e;
          await new Promise<void>((r) => (wake = r));
        }
      }
    })();
    // Let the bulk connection fill the link first.
    await within(
      (async () => {
        while (sunk < 16 * 1024 * 1024) await new Promise((r) => setTimeout(r, 5));
      })(),
      20_000,
      "bulk warm-up",
    );

    let back: () => void = () => {};
    ping.on("dataReceived", () => back());
    const waited: number[] = [];
    const progress: number[] = []; // bulk bytes delivered over each tenth of the round trips
    let mark = sunk;
    for (let i = 0; i < ROUND_TRIPS; i++) {
      const before = sunk;
      const reply = new Promise<void>((r) => (back = r));
      ping.sendData(new Uint8Array(1024).fill(i).buffer);
      await within(reply, 10_000, `round trip ${i}`);
      waited.push(atEcho[i] - before);
      if ((i + 1) % (ROUND_TRIPS / 10) === 0) {
        progress.push(sunk - mark);
        mark = sunk;
      }
    }
    stopped = true;
    wake();
    await load;

    assert.equal(atEcho.length, ROUND_TRIPS);
    assert.ok(
      progress.every((n) => n > 0),
      `the bulk connection kept delivering (bytes per ${
        ROUND_TRIPS / 10
      } round trips: ${progress})`,
    );
    // A request waits behind the bytes in flight, far less than a stream's window.
    waited.sort((x, y) => x - y);
    const median = waited[waited.length >> 1];
    assert.ok(
      median < DEFAULT_STREAM_WINDOW / 2,
      `a request queued behind ${median} B of bulk data (median; all: ${waited})`,
    );
  });
});

/**
 * linkEnhance between two devices in one process, over real loopback TCP:
 * every documented call, event, limit and error code.
 */
import { BusinessError } from "../core/errors.ts";
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { freePort } from "./_script.ts";
import { createDevice, type Device } from "../link_enhance.ts";
import type { Connection, ConnectResult } from "../link_enhance.ts";
import { DisconnectReason, ErrorCode } from "../core/error_codes.ts";

const A = "02:00:00:00:0A:01";
const B = "02:00:00:00:0B:02";

const devices: Device[] = [];
after(async () => {
  await Promise.all(devices.map((d) => d.close()));
});

async function pair(
  extra: { limits?: { servers?: number; connections?: number }; connectTimeout?: number } = {},
): Promise<[Device, Device]> {
  const [pa, pb] = [await freePort(), await freePort()];
  const common = { bind: "127.0.0.1", discovery: "off" as const, ...extra };
  const a = createDevice({ ...common, deviceId: A, port: pa, peers: [`${B}@127.0.0.1:${pb}`] });
  const b = createDevice({ ...common, deviceId: B, port: pb, peers: [`${A}@127.0.0.1:${pa}`] });
  devices.push(a, b);
  await Promise.all([a.runtime(), b.runtime()]);
  return [a, b];
}

function result(conn: Connection): Promise<ConnectResult> {
  return new Promise((resolve) => conn.on("connectResult", resolve));
}

function code(fn: () => unknown): number {
  try {
    fn();
  } catch (e) {
    return (e as { code: number }).code;
  }
  return 0;
}

function wait<T>(fn: (resolve: (v: T) => void) => void, ms = 5000): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
    fn((v) => {
      clearTimeout(t);
      resolve(v);
    });
  });
}

/**
 * A `dataReceived` listener for 1 KiB messages numbered at bytes 0 and 1020:
 * records in `errors` any that is out of order or damaged, calls `done` after
 * the `count`th.
 */
function numbered(count: number, errors: string[], done: () => void): (d: ArrayBuffer) => void {
  let next = 0;
  return (d) => {
    const v = new DataView(d);
    const seq = v.getUint32(0);
    if (seq !== next || d.byteLength !== 1024 || v.getUint32(1020) !== seq) {
      errors.push(`got ${seq} (${d.byteLength} B) expecting ${next}`);
    }
    next = seq + 1;
    if (next === count) done();
  };
}

async function connected(a: Device, b: Device, name = "demo") {
  const server = a.createServer(name);
  const accepted = wait<Connection>((r) => server.on("connectionAccepted", r));
  server.start();
  const client = b.createConnection(A, name);
  const res = result(client);
  client.connect();
  assert.deepEqual(await res, { deviceId: A, success: true, reason: 0 });
  return { server, client, peer: await accepted };
}

describe("linkEnhance", () => {
  it("connects by name and carries data both ways, in order and intact", async () => {
    const [a, b] = await pair();
    const { server, client, peer } = await connected(a, b, "Demo");
    assert.equal(client.getPeerDeviceId(), A);
    assert.equal(peer.getPeerDeviceId(), B);
    const toServer: number[] = [];
    const toClient: number[] = [];
    const n = 300;
    const done = Promise.all([
      wait<void>((r) =>
        peer.on("dataReceived", (d) => {
          const v = new Uint8Array(d);
          assert.equal(v.length, 1 + (v[0] % 200) * 5);
          toServer.push(v[0]);
          if (toServer.length === n) r();
        })
      ),
      wait<void>((r) =>
        client.on("dataReceived", (d) => {
          toClient.push(new Uint8Array(d)[0]);
          if (toClient.length === n) r();
        })
      ),
    ]);
    for (let i = 0; i < n; i++) {
      const m = new Uint8Array(1 + ((i & 0xff) % 200) * 5).fill(i & 0xff);
      client.sendData(m.buffer);
      peer.sendData(m.slice().buffer);
    }
    await done;
    const expect = Array.from({ length: n }, (_, i) => i & 0xff);
    assert.deepEqual(toServer, expect);
    assert.deepEqual(toClient, expect);
    assert.equal(JSON.parse(JSON.stringify(client)).deviceId, A);
    client.close();
    server.close();
  });

  it("reports 32390201 for a server that is not started, and after stop()", async () => {
    const [a, b] = await pair();
    const c1 = b.createConnection(A, "nobody");
    const r1 = result(c1);
    c1.connect();
    assert.deepEqual(await r1, { deviceId: "", success: false, reason: 32390201 });
    const server = a.createServer("later");
    server.start();
    server.stop();
    const c2 = b.createConnection(A, "LATER");
    const r2 = result(c2);
    c2.connect();
    assert.equal((await r2).reason, ErrorCode.PEER_SERVER_NOT_STARTED);
    server.start();
    const r3 = result(c2);
    c2.connect();
    assert.equal((await r3).success, true, "name match is case-insensitive; stop/start works");
    c2.close();
    server.close();
  });

  it("reports 32390200 after the connect timeout for an unknown device", async () => {
    const [, b] = await pair({ connectTimeout: 400 });
    const conn = b.createConnection("02:00:00:00:00:99", "demo");
    const r = result(conn);
    const t0 = performance.now();
    conn.connect();
    assert.deepEqual(await r, { deviceId: "", success: false, reason: 32390200 });
    const took = performance.now() - t0;
    assert.ok(took >= 350 && took < 3000, `${took} ms`);
  });

  it("validates names, ids, data and event types with 32390206", async () => {
    const [a, b] = await pair();
    assert.equal(code(() => a.createServer("")), 32390206);
    assert.equal(code(() => a.createServer("x".repeat(256))), 32390206);
    assert.equal(code(() => a.createServer("é".repeat(128))), 32390206, "256 UTF-8 bytes");
    assert.equal(code(() => a.createServer(42 as unknown as string)), 32390206);
    assert.equal(code(() => b.createConnection("00-11-22-33-44-55", "demo")), 32390206);
    assert.equal(code(() => b.createConnection(A, "")), 32390206);
    const conn = b.createConnection(A.toLowerCase(), "x".repeat(255));
    assert.equal(conn.getPeerDeviceId(), "", "no id obtained before connecting");
    assert.equal(code(() => conn.on("nope" as "drain", () => {})), 32390206);
    assert.equal(code(() => conn.on("dataReceived", 5 as unknown as () => void)), 32390206);
    assert.equal(code(() => conn.off("dataReceived", 5 as unknown as () => void)), 32390206);
    assert.equal(code(() => conn.sendData(new ArrayBuffer(1))), 32390205, "before connect");
    // Parameter errors are BusinessErrors too, and TypeErrors.
    let thrown: unknown;
    try {
      a.createServer("");
    } catch (e) {
      thrown = e;
    }
    assert.ok(thrown instanceof BusinessError && thrown instanceof TypeError);
    const { client, server } = await connected(a, b);
    assert.equal(client.getPeerDeviceId(), A);
    assert.equal(code(() => client.sendData(new ArrayBuffer(0))), 32390206);
    assert.equal(code(() => client.sendData(new ArrayBuffer(1025))), 32390206);
    assert.equal(code(() => client.sendData("hi" as unknown as ArrayBuffer)), 32390206);
    // OpenHarmony takes an ArrayBuffer only: views are 32390206.
    const view = new Uint8Array(4) as unknown as ArrayBuffer;
    assert.equal(code(() => client.sendData(view)), 32390206);
    const dv = new DataView(new ArrayBuffer(4)) as unknown as ArrayBuffer;
    assert.equal(code(() => client.sendData(dv)), 32390206);
    const detached = new ArrayBuffer(8);
    structuredClone(detached, { transfer: [detached] });
    assert.equal(code(() => client.sendData(detached)), 32390206, "a detached buffer");
    assert.equal(code(() => client.sendData(new ArrayBuffer(1024))), 0);
    client.close();
    assert.equal(code(() => client.sendData(new ArrayBuffer(1))), 32390300, "after close");
    assert.equal(code(() => client.connect()), 32390300, "after close");
    server.close();
  });

  it("rejects a duplicate server name (case-insensitive) with 32390203 until closed", async () => {
    const [a] = await pair();
    const s = a.createServer("Dup");
    assert.equal(code(() => a.createServer("dup")), 32390203);
    s.close();
    a.createServer("DUP").close();
  });

  it("limits started servers to 10 (32390202) and client connections to 10 (32390204)", async () => {
    const [a, b] = await pair();
    const servers = Array.from({ length: 11 }, (_, i) => a.createServer(`s${i}`));
    for (let i = 0; i < 10; i++) servers[i].start();
    assert.equal(code(() => servers[10].start()), 32390202);
    servers[0].stop();
    servers[10].start();
    const conns: Connection[] = [];
    const results: Promise<ConnectResult>[] = [];
    for (let i = 0; i < 10; i++) {
      const c = b.createConnection(A, `s${i + 1}`);
      results.push(result(c));
      c.connect();
      conns.push(c);
    }
    const extra = b.createConnection(A, "s1");
    assert.equal(code(() => extra.connect()), 32390204);
    assert.ok((await Promise.all(results)).every((r) => r.success));
    // Accepted connections do not count: A can still open 10 of its own.
    const back = b.createServer("back");
    back.start();
    const mine = Array.from({ length: 10 }, () => a.createConnection(B, "back"));
    const ok = await Promise.all(mine.map((c) => {
      const r = result(c);
      c.connect();
      return r;
    }));
    assert.ok(ok.every((r) => r.success));
    conns[0].disconnect();
    extra.connect();
    assert.equal((await result(extra)).success, true, "a slot is free after disconnect()");
    for (const c of [...conns, ...mine, extra]) c.close();
    for (const s of [...servers, back]) s.close();
  });

  it("raises the limits with configure({ limits })", async () => {
    const [a, b] = await pair({ limits: { servers: 12, connections: 30 } });
    for (let i = 0; i < 12; i++) a.createServer(`x${i}`).start();
    const results = Array.from({ length: 30 }, (_, i) => {
      const c = b.createConnection(A, `x${i % 12}`);
      const r = result(c);
      c.connect();
      return r;
    });
    assert.ok((await Promise.all(results)).every((r) => r.success));
  });

  it("keeps one callback per event, as OpenHarmony: on replaces, off(type, anyFn) clears", async () => {
    const [a, b] = await pair();
    const { client, peer, server } = await connected(a, b);
    const seen: string[] = [];
    const one = () => seen.push("one");
    const two = () => seen.push("two");
    peer.on("dataReceived", one);
    peer.on("dataReceived", one);
    const got = wait<void>((r) =>
      peer.on("dataReceived", () => {
        seen.push("three");
        r();
      })
    );
    client.sendData(new ArrayBuffer(1));
    await got;
    assert.deepEqual(seen, ["three"], "only the last callback is kept");
    peer.on("dataReceived", two);
    // The seed examples unsubscribe with a fresh arrow function: that clears it.
    peer.off("dataReceived", () => {});
    client.sendData(new ArrayBuffer(1));
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(seen, ["three"]);
    client.close();
    server.close();
  });

  it("start() on a started server is 32390203, and stop() clears both server callbacks", async () => {
    const [a, b] = await pair();
    const s = a.createServer("again");
    let accepted = 0;
    s.on("connectionAccepted", () => accepted++);
    s.start();
    assert.equal(code(() => s.start()), 32390203);
    s.stop();
    s.start();
    const c = b.createConnection(A, "again");
    const r = result(c);
    c.connect();
    assert.equal((await r).success, true);
    await new Promise((res) => setTimeout(res, 50));
    assert.equal(accepted, 0, "the callback was cleared by stop()");
    c.close();
    s.close();
  });

  it("flushes data sent before disconnect(); the peer sees disconnected after it", async () => {
    const [a, b] = await pair();
    const { client, peer, server } = await connected(a, b);
    const log: string[] = [];
    let localEvents = 0;
    client.on("disconnected", () => localEvents++);
    const ended = wait<void>((r) => {
      peer.on("dataReceived", (d) => log.push(`data ${d.byteLength}`));
      peer.on("disconnected", (reason) => {
        log.push(`disconnected ${reason}`);
        r();
      });
    });
    for (let i = 1; i <= 100; i++) client.sendData(new ArrayBuffer(i));
    client.disconnect();
    await ended;
    assert.equal(log.length, 101);
    assert.equal(log[99], "data 100");
    assert.equal(log[100], `disconnected ${DisconnectReason.PEER_DISCONNECTED}`);
    assert.equal(localEvents, 0, "no disconnected event on the side that disconnected");
    assert.equal(code(() => client.sendData(new ArrayBuffer(1))), 32390205);
    // The same object connects again.
    const again = result(client);
    client.connect();
    assert.equal((await again).success, true);
    client.close();
    server.close();
  });

  it("tells the client when the server side disconnects", async () => {
    const [a, b] = await pair();
    const { client, peer, server } = await connected(a, b);
    const reason = wait<number>((r) => client.on("disconnected", r));
    peer.sendData(new ArrayBuffer(10));
    peer.disconnect();
    assert.equal(await reason, DisconnectReason.PEER_DISCONNECTED);
    client.close();
    server.close();
  });

  it("closes every connection gracefully when the peer device shuts down", async () => {
    const [a, b] = await pair();
    const { client, server } = await connected(a, b);
    const reason = wait<number>((r) => client.on("disconnected", r));
    await a.close();
    // A device that shuts down disconnects its connections (a killed one
    // gives LINK_CLOSED: see link_enhance_process_test.ts).
    assert.equal(await reason, DisconnectReason.PEER_DISCONNECTED);
    server.close();
    client.close();
  });

  it("bounds the send queue: 32390300 when full, bufferedAmount, then drain", async () => {
    const [a, b] = await pair();
    const { client, server, peer } = await connected(a, b);
    let received = 0;
    peer.on("dataReceived", () => received++);
    let sent = 0;
    let err = 0;
    const chunk = new ArrayBuffer(1024);
    while (err === 0) {
      err = code(() => client.sendData(chunk));
      if (err === 0) sent++;
    }
    assert.equal(err, 32390300);
    assert.ok(client.bufferedAmount > 0 && client.bufferedAmount <= 1024 * 1024);
    await wait<void>((r) => client.on("drain", () => r()));
    assert.ok(
      client.bufferedAmount <= 512 * 1024,
      "drain comes once the queue is half full or less",
    );
    await wait<void>((r) => {
      const t = setInterval(() => received === sent && (clearInterval(t), r()), 10);
    });
    assert.equal(received, sent, "every accepted message arrived");
    client.close();
    server.close();
  });

  it("copies what sendData takes: one reused buffer, filled to 32390300 again and again, arrives intact", async () => {
    const [a, b] = await pair();
    const { client, server, peer } = await connected(a, b);
    const COUNT = 4000;
    const errors: string[] = [];
    const all = wait<void>((r) => peer.on("dataReceived", numbered(COUNT, errors, r)), 60_000);
    const m = new DataView(new ArrayBuffer(1024));
    let seq = 0;
    let fulls = 0;
    const pump = () => {
      while (seq < COUNT) {
        m.setUint32(0, seq);
        m.setUint32(1020, seq);
        if (code(() => client.sendData(m.buffer)) !== 0) {
          fulls++;
          return;
        }
        seq++;
      }
    };
    client.on("drain", pump);
    pump();
    await all;
    assert.deepEqual(errors.slice(0, 5), []);
    assert.ok(fulls >= 2, `the queue filled up ${fulls} times`);
    client.close();
    server.close();
  });

  it("carries 16 busy connections paced by drain, every message intact and in order", async () => {
    const [a, b] = await pair({ limits: { connections: 16 } });
    const server = a.createServer("bulk");
    const COUNT = 3000;
    const errors: string[] = [];
    let finished = 0;
    const allIn = wait<void>((r) =>
      server.on("connectionAccepted", (c) => {
        c.on("dataReceived", numbered(COUNT, errors, () => ++finished === 16 && r()));
      }), 60_000);
    server.start();
    const conns = Array.from({ length: 16 }, () => b.createConnection(A, "bulk"));
    await Promise.all(conns.map((c) => {
      let seq = 0;
      const pump = () => {
        while (seq < COUNT && c.bufferedAmount < 256 * 1024) {
          const m = new DataView(new ArrayBuffer(1024));
          m.setUint32(0, seq);
          m.setUint32(1020, seq);
          c.sendData(m.buffer);
          seq++;
        }
      };
      c.on("drain", pump);
      const r = result(c);
      c.connect();
      return r.then((res) => {
        assert.ok(res.success);
        pump();
        const t = setInterval(() => seq < COUNT ? pump() : clearInterval(t), 5);
      });
    }));
    await allIn;
    assert.deepEqual(errors.slice(0, 5), []);
    for (const c of conns) c.close();
    server.close();
  });

  it("lists each link with its channels and what they measured (linkStats)", async () => {
    const [a, b] = await pair();
    assert.deepEqual(a.linkStats(), []);
    const server = b.createServer("stats");
    server.start();
    const got = wait<number>((resolve) => {
      let n = 0;
      server.on("connectionAccepted", (c) => {
        c.on("dataReceived", (d) => {
          n += d.byteLength;
          if (n >= 100 * 1024) resolve(n);
        });
      });
    });
    const c = a.createConnection(B, "stats");
    const r = result(c);
    c.connect();
    assert.ok((await r).success);
    for (let i = 0; i < 100; i++) c.sendData(new Uint8Array(1024).buffer);
    await got;
    await new Promise((r) => setTimeout(r, 50));
    const stats = a.linkStats();
    assert.equal(stats.length, 1);
    assert.equal(stats[0].peer, B);
    assert.equal(stats[0].channels.length, 1);
    const ch = stats[0].channels[0];
    assert.equal(ch.kind, "tcp");
    assert.equal(ch.mtu, 65535);
    assert.match(ch.remote, /127\.0\.0\.1/);
    assert.equal(ch.health, "up");
    assert.ok(ch.sent >= 100 * 1024 && ch.received > 0, `sent ${ch.sent}, received ${ch.received}`);
    assert.ok(typeof ch.rtt === "number" && ch.rtt >= 0, `rtt ${ch.rtt}`);
    assert.ok(ch.rate > 0 && ch.budget > 0 && ch.inFlight >= 0, JSON.stringify(ch));
    c.close();
    server.close();
  });

  it("keeps one link with one channel when both devices connect at once", async () => {
    const [a, b] = await pair();
    const sa = a.createServer("m");
    const sb = b.createServer("m");
    sa.start();
    sb.start();
    const ca = a.createConnection(B, "m");
    const cb = b.createConnection(A, "m");
    const rs = [result(ca), result(cb)];
    ca.connect();
    cb.connect();
    assert.ok((await Promise.all(rs)).every((r) => r.success));
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual([...(await a.runtime()).links()], [[B, 1]]);
    assert.deepEqual([...(await b.runtime()).links()], [[A, 1]]);
    for (const x of [ca, cb, sa, sb]) x.close();
  });
});

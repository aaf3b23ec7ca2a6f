/**
 * A link of several channels between two real devices on loopback
 * (`channels: 2`), secure and plain: the dialer joins a second TCP channel
 * to the link once it is up, both carry a multi-megabyte transfer, losing
 * one mid-transfer costs nothing (every message arrives, intact, in order,
 * and no `disconnected`), and losing the last one ends the link.
 *
 * The dialer reaches the acceptor through a TCP relay of the test's own,
 * so the test can cut one channel from outside (both of its relayed
 * sockets destroyed, as a dying path would) without any hook in the code.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { createDevice, type Device } from "../link_enhance.ts";
import type { Connection, ConnectResult } from "../link_enhance.ts";

const A = "02:00:00:00:3C:01";
const B = "02:00:00:00:3C:02";

const state = mkdtempSync(join(tmpdir(), "lw-mpwire-"));
const savedState = process.env.XDG_STATE_HOME;
process.env.XDG_STATE_HOME = state;
const devices: Device[] = [];
const relays: Relay[] = [];
after(async () => {
  await Promise.all(devices.map((d) => d.close()));
  for (const r of relays) r.close();
  if (savedState === undefined) delete process.env.XDG_STATE_HOME;
  else process.env.XDG_STATE_HOME = savedState;
  rmSync(state, { recursive: true, force: true });
});

/** A TCP relay to `port` on loopback: each connection it takes is one channel. */
interface Relay {
  port: number;
  /** The relayed connections, in the order they came: [from the dialer, to the acceptor]. */
  pairs: [Socket, Socket][];
  /** Cut one relayed connection (both its sockets), as a path that dies. */
  cut(i: number): void;
  close(): void;
}

async function relay(port: number): Promise<Relay> {
  const pairs: [Socket, Socket][] = [];
  const server: Server = createServer((inbound) => {
    const outbound = createConnection({ host: "127.0.0.1", port });
    pairs.push([inbound, outbound]);
    inbound.pipe(outbound);
    outbound.pipe(inbound);
    const end = () => {
      inbound.destroy();
      outbound.destroy();
    };
    inbound.on("error", end);
    outbound.on("error", end);
    inbound.on("close", end);
    outbound.on("close", end);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const r: Relay = {
    port: (server.address() as { port: number }).port,
    pairs,
    cut(i) {
      for (const s of pairs[i]) s.destroy();
    },
    close() {
      for (const p of pairs) for (const s of p) s.destroy();
      server.close();
    },
  };
  relays.push(r);
  return r;
}

function wait<T>(
  fn: (resolve: (v: T) => void) => void,
  ms = 20_000,
  state: () => string = () => "",
): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`timed out after ${ms} ms ${state()}`)), ms);
    fn((v) => {
      clearTimeout(t);
      resolve(v);
    });
  });
}

function until(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  return wait<void>((resolve) => {
    const t = setInterval(() => {
      if (!cond()) return;
      clearInterval(t);
      resolve();
    }, 10);
  }, ms).catch(() => {
    throw new Error(`timed out waiting for ${what}`);
  });
}

/** Two devices, B dialling A through a relay, links of 2 channels. */
async function pair(security: "account" | "none") {
  const common = {
    port: 0,
    bind: "127.0.0.1",
    discovery: "off" as const,
    security,
    channels: 2,
    connectTimeout: 8000,
    ...(security === "account" ? { account: "mpwire-channels" } : {}),
  };
  const a = createDevice({ ...common, deviceId: A });
  devices.push(a);
  const r = await relay((await a.runtime()).port);
  const b = createDevice({ ...common, deviceId: B, peers: [`${A}@127.0.0.1:${r.port}`] });
  devices.push(b);
  await b.runtime();
  const server = a.createServer("bulk");
  const accepted = wait<Connection>((resolve) => server.on("connectionAccepted", resolve));
  server.start();
  const client = b.createConnection(A, "bulk");
  const res = wait<ConnectResult>((resolve) => client.on("connectResult", resolve));
  client.connect();
  assert.deepEqual(await res, { deviceId: A, success: true, reason: 0 });
  return { a, b, r, client, peer: await accepted };
}

const COUNT = 6000; // 1 KiB messages: 6 MB

/**
 * Send `COUNT` numbered 1 KiB messages from `client` to `peer`, paced by
 * `drain`; `at(n)` runs once `n` have arrived. Resolves with what went
 * wrong (out of order, damaged), once all arrived.
 */
function transfer(
  client: Connection,
  peer: Connection,
  at: (received: number) => void,
  devices: Device[] = [],
): Promise<string[]> {
  const errors: string[] = [];
  let next = 0;
  const done = wait<void>(
    (resolve) =>
      peer.on("dataReceived", (d) => {
        const v = new DataView(d);
        const seq = v.getUint32(0);
        if (seq !== next || d.byteLength !== 1024 || v.getUint32(1020) !== seq) {
          errors.push(`got ${seq} (${d.byteLength} B) expecting ${next}`);
        }
        next = seq + 1;
        at(next);
        if (next === COUNT) resolve();
      }),
    60_000,
    () =>
      // What a rare stall (issue 14) looked like, for whoever reads the failure.
      JSON.stringify({ sent: seq, received: next, links: devices.map((d) => d.linkStats()) }),
  );
  let seq = 0;
  const pump = () => {
    while (seq < COUNT) {
      const m = new DataView(new ArrayBuffer(1024));
      m.setUint32(0, seq);
      m.setUint32(1020, seq);
      try {
        client.sendData(m.buffer);
      } catch (e) {
        // The queue is full (32390300): `drain` comes when it has room.
        if ((e as { code?: number }).code !== 32390300) throw e;
        return;
      }
      seq++;
    }
  };
  client.on("drain", pump);
  pump();
  return done.then(() => errors);
}

for (const security of ["account", "none"] as const) {
  describe(`a link of 2 channels on loopback (security: ${security})`, () => {
    it("joins a second channel; both carry a transfer; linkStats shows them", async () => {
      const { a, b, r, client, peer } = await pair(security);
      await until(() => b.linkStats()[0]?.channels.length === 2, "the second channel");
      await until(() => a.linkStats()[0]?.channels.length === 2, "the second channel at A");
      assert.equal(r.pairs.length, 2, "two TCP connections through the relay");
      for (const d of [a, b]) {
        const links = d.linkStats();
        assert.equal(links.length, 1, "one link");
        assert.deepEqual(links[0].channels.map((c) => c.kind), ["tcp", "tcp"]);
      }
      const errors = await transfer(client, peer, () => {}, [a, b]);
      assert.deepEqual(errors.slice(0, 5), []);
      const sent = b.linkStats()[0].channels.map((c) => c.sent);
      assert.ok(sent.every((n) => n > 0), `both channels carried bytes: ${sent}`);
      client.close();
    });

    it("loses a channel mid-transfer without a message lost or a disconnect, replaces it; losing all ends the link", async () => {
      const { a, b, r, client, peer } = await pair(security);
      await until(() => b.linkStats()[0]?.channels.length === 2, "the second channel");
      await until(() => a.linkStats()[0]?.channels.length === 2, "the second channel at A");
      const disconnects: string[] = [];
      let fail: (e: Error) => void = () => {};
      const failed = new Promise<never>((_, reject) => fail = reject);
      failed.catch(() => {}); // raced below; the last channel's end disconnects later on purpose
      const disconnected = (who: string) => (reason: number) => {
        disconnects.push(`${who}: ${reason}`);
        fail(new Error(`${who} disconnected (${reason}) with a channel left`));
      };
      client.on("disconnected", disconnected("client"));
      peer.on("disconnected", disconnected("peer"));
      let cut = false;
      const errors = await Promise.race([
        transfer(client, peer, (n) => {
          if (n === COUNT / 4 && !cut) {
            cut = true;
            r.cut(0); // the link's first channel
          }
        }, [a, b]),
        failed,
      ]);
      assert.ok(cut);
      assert.deepEqual(errors.slice(0, 5), []);
      assert.deepEqual(disconnects, [], "no disconnected while a channel is left");
      // The dialer replaces the lost channel (a new join, after a pause).
      await until(
        () => r.pairs.length === 3 && b.linkStats()[0]?.channels.length === 2,
        "a channel to replace the lost one",
      );
      assert.equal(a.linkStats().length, 1, "the link lives on at A");
      fail = () => {};
      const gone = wait<void>((resolve) => peer.on("disconnected", () => resolve()));
      for (let i = 0; i < r.pairs.length; i++) r.cut(i); // every channel: the link ends
      await gone;
      await until(() => b.linkStats().length === 0, "the link to end at B");
    });
  });
}

describe("channels: auto", () => {
  it("opens one channel per address of a peer listed with two, and replaces one on its path", async () => {
    const common = {
      port: 0,
      bind: "127.0.0.1",
      discovery: "off" as const,
      security: "none" as const,
    };
    const a = createDevice({ ...common, deviceId: A });
    devices.push(a);
    const port = (await a.runtime()).port;
    const [r1, r2] = [await relay(port), await relay(port)];
    const b = createDevice({
      ...common,
      deviceId: B,
      peers: [`${A}@127.0.0.1:${r1.port}`, `${A}@127.0.0.1:${r2.port}`],
    });
    devices.push(b);
    a.createServer("svc").start();
    const client = b.createConnection(A, "svc");
    const res = wait<ConnectResult>((resolve) => client.on("connectResult", resolve));
    client.connect();
    assert.equal((await res).success, true);
    await until(() => b.linkStats()[0]?.channels.length === 2, "the second channel");
    assert.deepEqual([r1.pairs.length, r2.pairs.length], [1, 1], "one channel through each");
    // The channel through the second address is lost: its replacement goes there again.
    r2.cut(0);
    await until(
      () => r2.pairs.length === 2 && b.linkStats()[0]?.channels.length === 2,
      "the lost channel replaced",
    );
    assert.equal(r1.pairs.length, 1, "not a second channel to the first address");
    client.close();
  });
});

describe("a static peer listed with several addresses", () => {
  it("is dialled at its next address when the first does not answer", async () => {
    const common = {
      port: 0,
      bind: "127.0.0.1",
      discovery: "off" as const,
      security: "none" as const,
      channels: 1,
    };
    const a = createDevice({ ...common, deviceId: A });
    devices.push(a);
    const port = (await a.runtime()).port;
    // A port nobody listens on: take one, then free it.
    const dead = await relay(1);
    dead.close();
    const b = createDevice({
      ...common,
      deviceId: B,
      peers: [`${A}@127.0.0.1:${dead.port}`, `${A}@127.0.0.1:${port}`],
    });
    devices.push(b);
    a.createServer("svc").start();
    const client = b.createConnection(A, "svc");
    const res = wait<ConnectResult>((resolve) => client.on("connectResult", resolve));
    client.connect();
    assert.deepEqual(await res, { deviceId: A, success: true, reason: 0 });
    client.close();
  });
});

/**
 * linkEnhance between separate processes on loopback: the documentation's
 * examples run as devices, process lifetime, and peers that freeze, die and
 * come back.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { type Child, freePort, start } from "./_script.ts";
import { createDevice, type Device } from "../link_enhance.ts";
import type { Connection, ConnectResult } from "../link_enhance.ts";
import { DisconnectReason } from "../core/error_codes.ts";

const SERVER_ID = "00:11:22:33:44:55";
const children: Child[] = [];
const devices: Device[] = [];

after(async () => {
  for (const c of children) c.kill();
  await Promise.all(devices.map((d) => d.close()));
});

function spawn(module: string, env: Record<string, string>): Child {
  const c = start(module, { LINKWEAVE_DISCOVERY: "off", ...env });
  children.push(c);
  return c;
}

function traces(c: Child): Record<string, unknown>[] {
  return c.err.split("\n").filter((l) => l.startsWith('{"linkweave"')).map((l) => JSON.parse(l));
}

async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, rej) => t = setTimeout(() => rej(new Error(`${what}: ${ms} ms`)), ms)),
    ]);
  } finally {
    clearTimeout(t);
  }
}

describe("linkEnhance seed examples as two processes", { timeout: 60_000 }, () => {
  it("the server example receives the sendData example's byte before disconnected", async () => {
    const port = await freePort();
    const server = spawn("examples/link_enhance_server.ts", {
      LINKWEAVE_DEVICE_ID: SERVER_ID,
      LINKWEAVE_PORT: String(port),
      LINKWEAVE_TRACE: "1",
    });
    await server.waitFor(/start sever name = demo/);
    const client = spawn("examples/link_enhance_send_data.ts", {
      LINKWEAVE_DEVICE_ID: "02:00:00:00:00:C1",
      LINKWEAVE_PEERS: `${SERVER_ID}@127.0.0.1:${port}`,
      LINKWEAVE_PORT: "0",
    });
    // The client connects, sends, disconnects, and its process then exits by
    // itself (nothing keeps it alive once the byte is flushed).
    assert.equal(await within(client.exited, 20_000, "client exit"), 0, client.err);
    assert.match(client.out, /clientConnectResultCallback result = true/);
    assert.match(client.out, /sendData data connection peerDeviceId=00:11:22:33:44:55/);
    await server.waitFor(/"linkweave":"disconnected"/);
    // The API's events, in order (the device's own traces say more in between).
    const api = ["connectionAccepted", "dataReceived", "disconnected"];
    const events = traces(server).map((t) => t.linkweave).filter((e) => api.includes(String(e)));
    assert.deepEqual(events, api);
    assert.ok(traces(server).some((t) => t.linkweave === "linkUp"), "the link is traced too");
    const [, data, gone] = traces(server).filter((t) => api.includes(String(t.linkweave)));
    assert.equal(data.bytes, 1);
    assert.equal(gone.reason, DisconnectReason.PEER_DISCONNECTED);
    assert.match(server.out, /serverOnCallback = \{"deviceId":"02:00:00:00:00:C1","name":"demo"/);
    // A started server keeps its process alive.
    assert.equal(server.proc.exitCode, null);
    server.kill();
  });

  it("the connect example against a device that does not exist gets 32390200", async () => {
    const client = spawn("examples/link_enhance_connect.ts", {
      LINKWEAVE_DEVICE_ID: "02:00:00:00:00:C2",
      LINKWEAVE_PORT: "0",
      LINKWEAVE_CONNECT_TIMEOUT: "1500",
      LINKWEAVE_TRACE: "1",
    });
    assert.equal(await within(client.exited, 20_000, "client exit"), 0, client.err);
    assert.match(client.out, /clientConnectResultCallback result = false/);
    const all = traces(client);
    const result = all.find((t) => t.linkweave === "connectResult")!;
    assert.deepEqual(
      { success: result.success, reason: result.reason, deviceId: result.deviceId },
      { success: false, reason: 32390200, deviceId: "" },
    );
    // The trace says why: nobody knows where that device is.
    const failed = all.find((t) => t.linkweave === "connectFailed")!;
    assert.match(String(failed.message), /timed out \(no address known for it\)/);
  });
});

describe(
  "linkEnhance with a peer process that freezes, dies and restarts",
  { timeout: 60_000 },
  () => {
    const PEER = "02:00:00:00:00:E1";
    const KEEPALIVE = 2000;

    async function peer(port: number): Promise<Child> {
      const c = spawn("tests/_link_peer.ts", {
        LINKWEAVE_DEVICE_ID: PEER,
        LINKWEAVE_PORT: String(port),
        LINKWEAVE_KEEPALIVE_TIMEOUT: String(KEEPALIVE),
      });
      await c.waitFor(/"ready"/);
      return c;
    }

    function connect(conn: Connection): Promise<ConnectResult> {
      return new Promise((resolve) => {
        const cb = (r: ConnectResult) => {
          conn.off("connectResult", cb);
          resolve(r);
        };
        conn.on("connectResult", cb);
        conn.connect();
      });
    }

    function echo(conn: Connection): Promise<number> {
      return new Promise((resolve) => {
        const cb = (d: ArrayBuffer) => {
          conn.off("dataReceived", cb);
          resolve(d.byteLength);
        };
        conn.on("dataReceived", cb);
        conn.sendData(new ArrayBuffer(700));
      });
    }

    it("detects SIGSTOP and SIGKILL, then reconnects the same Connection", async () => {
      const port = await freePort();
      const local = createDevice({
        deviceId: "02:00:00:00:00:E0",
        port: 0,
        discovery: "off",
        keepAliveTimeout: KEEPALIVE,
        connectTimeout: 5000,
        peers: [`${PEER}@127.0.0.1:${port}`],
      });
      devices.push(local);
      const conn = local.createConnection(PEER, "echo");

      // Frozen: nothing arrives any more, the keep-alive notices.
      let p = await peer(port);
      assert.equal((await connect(conn)).success, true);
      assert.equal(await echo(conn), 700);
      const lost = new Promise<number>((r) => conn.on("disconnected", r));
      const t0 = performance.now();
      p.proc.kill("SIGSTOP");
      assert.equal(
        await within(lost, KEEPALIVE + 3000, "frozen peer"),
        DisconnectReason.LINK_CLOSED,
      );
      const took = performance.now() - t0;
      assert.ok(took <= KEEPALIVE + 1000, `frozen peer detected after ${took.toFixed(0)} ms`);
      conn.off("disconnected");
      p.kill();
      await p.exited;

      // Killed: the kernel closes its sockets, the link goes at once.
      p = await peer(port);
      assert.equal((await connect(conn)).success, true, "same object after a loss");
      const lost2 = new Promise<number>((r) => conn.on("disconnected", r));
      const t1 = performance.now();
      p.kill();
      assert.equal(
        await within(lost2, KEEPALIVE + 3000, "killed peer"),
        DisconnectReason.LINK_CLOSED,
      );
      assert.ok(
        performance.now() - t1 < KEEPALIVE,
        "a killed peer is noticed before the keep-alive",
      );
      conn.off("disconnected");
      await p.exited;

      // Restarted with the same id and port: the same object connects again.
      p = await peer(port);
      assert.equal((await connect(conn)).success, true, "reconnect after restart");
      assert.equal(await echo(conn), 700);
      conn.close();
      p.kill();
    });
  },
);

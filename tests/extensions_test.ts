/**
 * linkweave's TypeScript extensions (`docs/link-enhance.md`,
 * `docs/ability-connection.md`, `docs/socket.md`, "AbortSignal and await
 * using"): an `AbortSignal` on linkEnhance's `connect`, on
 * abilityConnectionManager's `connect` and `sendData`, and on the sockets'
 * `connect`, aborted before, during and after the call; and
 * `Symbol.asyncDispose` (`await using`) on devices, servers, connections and
 * sockets. Devices run in this process on loopback with discovery off.
 *
 * @module
 */
import assert from "node:assert/strict";
import * as net from "node:net";
import { after, before, describe, it } from "node:test";
import { createDevice, type Device } from "../device.ts";
import {
  AbilityConstant,
  type ConnectOptions,
  type EventCallbackInfo,
  type PeerInfo,
  UIAbility,
} from "../ability_connection_manager.ts";
import type { ConnectResult, Server } from "../link_enhance.ts";
import * as socket from "../socket.ts";

const X = "02:00:00:00:E7:01";
const Y = "02:00:00:00:E7:02";
const NOBODY = "02:00:00:00:E7:EE";

/** Resolves with the next value `on(type, cb)` reports. */
function next<T>(on: (cb: (v: T) => void) => void): Promise<T> {
  return new Promise((resolve) => on(resolve));
}

/** Rejects after `ms` (a bound on the wait, not a speed figure). */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: nothing after ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Whether a TCP connect to `port` on loopback is refused. */
function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: "127.0.0.1", port });
    s.on("connect", () => {
      s.destroy();
      resolve(false);
    });
    s.on("error", () => resolve(true));
  });
}

describe("linkEnhance: AbortSignal on connect, await using", { timeout: 30_000 }, () => {
  let x: Device;
  let y: Device;
  let server: Server;

  before(async () => {
    x = createDevice({ deviceId: X, port: 0, discovery: "off" });
    const { port } = await x.runtime();
    y = createDevice({
      deviceId: Y,
      port: 0,
      discovery: "off",
      connectTimeout: 20_000,
      peers: [`${X}@127.0.0.1:${port}`],
    });
    server = x.createServer("ext");
    server.on("connectionAccepted", (c) => c.on("dataReceived", () => {}));
    server.start();
  });

  after(async () => {
    server.close();
    await y.close();
    await x.close();
  });

  it("a signal aborted before connect() throws its reason and starts nothing", async () => {
    const conn = y.createConnection(X, "ext");
    const results: ConnectResult[] = [];
    conn.on("connectResult", (r) => results.push(r));
    const stop = new Error("stopped by the caller");
    assert.throws(() => conn.connect({ signal: AbortSignal.abort(stop) }), (e) => e === stop);
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(results, []);
    // Nothing started: the same connection connects afterwards.
    const ok = next<ConnectResult>((cb) => conn.on("connectResult", cb));
    conn.connect();
    assert.equal((await within(ok, 10_000, "connect")).success, true);
    conn.close();
  });

  it("aborted while connecting: connectResult fails at once (32390300; 32390200 for a timeout)", async () => {
    // Nobody answers for NOBODY: the device would wait its 20 s connect timeout.
    const conn = y.createConnection(NOBODY, "ext");
    const ac = new AbortController();
    const failed = next<ConnectResult>((cb) => conn.on("connectResult", cb));
    conn.connect({ signal: ac.signal });
    setTimeout(() => ac.abort(), 50);
    assert.deepEqual(await within(failed, 5000, "aborted connect"), {
      deviceId: "",
      success: false,
      reason: 32390300,
    });
    const timedOut = next<ConnectResult>((cb) => conn.on("connectResult", cb));
    conn.connect({ signal: AbortSignal.timeout(100) });
    assert.deepEqual(await within(timedOut, 5000, "timed-out connect"), {
      deviceId: "",
      success: false,
      reason: 32390200,
    });
    conn.close();
  });

  it("a signal aborted once connected changes nothing", async () => {
    const conn = y.createConnection(X, "ext");
    const ac = new AbortController();
    const result = next<ConnectResult>((cb) => conn.on("connectResult", cb));
    conn.connect({ signal: ac.signal });
    assert.equal((await within(result, 10_000, "connect")).success, true);
    let gone = false;
    conn.on("disconnected", () => gone = true);
    ac.abort();
    conn.sendData(new ArrayBuffer(8)); // throws unless still connected
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(gone, false);
    assert.equal(conn.toJSON().state, "connected");
    conn.close();
  });

  it("connect() rejects malformed options with 32390206", () => {
    const conn = y.createConnection(X, "ext");
    assert.throws(() => conn.connect({ signal: "soon" as never }), { code: 32390206 });
    assert.throws(() => conn.connect(7 as never), { code: 32390206 });
    conn.close();
  });

  it("await using closes a server and a connection at the end of the scope", async () => {
    const accepted = next<{ on(t: "disconnected", cb: (r: number) => void): void }>((cb) =>
      server.on("connectionAccepted", cb)
    );
    {
      await using scoped = x.createServer("ext-scoped");
      scoped.start();
      await using conn = y.createConnection(X, "ext");
      const result = next<ConnectResult>((cb) => conn.on("connectResult", cb));
      conn.connect();
      assert.equal((await within(result, 10_000, "connect")).success, true);
    }
    // The peer sees the connection end; the server's name is free again.
    const peer = await within(accepted, 5000, "accepted");
    await within(next<number>((cb) => peer.on("disconnected", cb)), 10_000, "disconnected");
    x.createServer("ext-scoped").close();
  });

  it("await using closes a device: its listener is gone", async () => {
    let port = 0;
    {
      await using d = createDevice({ deviceId: "02:00:00:00:E7:03", port: 0, discovery: "off" });
      port = (await d.runtime()).port;
      assert.equal(await refused(port), false);
    }
    assert.equal(await refused(port), true);
  });
});

const BUNDLE = { bundleName: "com.example.ext", moduleName: "entry", abilityName: "EntryAbility" };
const SILENT = { ...BUNDLE, abilityName: "SilentAbility" };

/** Y's ability: accepts every request with a data session. */
class Sink extends UIAbility {
  device!: Device;
  received: number[] = [];
  onCollaborate(want: Record<string, unknown>): number {
    const p = want["ohos.extra.param.key.supportCollaborateIndex"] as Record<string, unknown>;
    const m = this.device.abilityConnectionManager;
    const id = m.createAbilityConnectionSession("ext", this.context, p["PeerInfo"] as PeerInfo, {
      needSendData: true,
    } as ConnectOptions);
    m.on("receiveData", id, (info: EventCallbackInfo) => {
      this.received.push(info.data!.byteLength);
    });
    void m.acceptConnect(id, p["ohos.dms.collabToken"] as string);
    return AbilityConstant.CollaborateResult.ACCEPT;
  }
}

/** Y's other ability: hears requests and never answers them. */
class Silent extends UIAbility {
  asked = 0;
  onCollaborate(): number {
    this.asked++;
    return AbilityConstant.CollaborateResult.ACCEPT;
  }
}

describe("abilityConnectionManager: AbortSignal on connect and sendData", {
  timeout: 60_000,
}, () => {
  let a: Device;
  let b: Device;
  const caller = new UIAbility();
  const sink = new Sink();
  const silent = new Silent();
  let session = 0;

  before(async () => {
    b = createDevice({ deviceId: "02:00:00:00:E7:0B", port: 0, discovery: "off" });
    const { port } = await b.runtime();
    a = createDevice({
      deviceId: "02:00:00:00:E7:0A",
      port: 0,
      discovery: "off",
      peers: [`02:00:00:00:E7:0B@127.0.0.1:${port}`],
    });
    sink.device = b;
    await b.abilityConnectionManager.registerAbility(sink, BUNDLE);
    await b.abilityConnectionManager.registerAbility(silent, SILENT);
    await a.abilityConnectionManager.registerAbility(caller, BUNDLE);
  });

  after(async () => {
    await a.close();
    await b.close();
  });

  const peer = (info: typeof BUNDLE): PeerInfo => ({
    deviceId: "02:00:00:00:E7:0B",
    ...info,
    serviceName: "ext",
  });

  it("connect: aborted before, it rejects with the reason and asks nothing", async () => {
    const m = a.abilityConnectionManager;
    const id = m.createAbilityConnectionSession("ext", caller.context, peer(SILENT), {});
    const stop = new Error("not now");
    await assert.rejects(m.connect(id, { signal: AbortSignal.abort(stop) }), (e) => e === stop);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(silent.asked, 0);
    assert.throws(() => m.connect(id, { signal: {} as never }), { code: 401 });
    m.destroyAbilityConnectionSession(id);
  });

  it("connect: aborted while the peer thinks, it rejects with the reason; the session can connect again", async () => {
    const m = a.abilityConnectionManager;
    const id = m.createAbilityConnectionSession("ext", caller.context, peer(SILENT), {});
    const ac = new AbortController();
    const pending = m.connect(id, { signal: ac.signal });
    const stop = new Error("gave up");
    const asked = silent.asked;
    const start = Date.now();
    while (silent.asked === asked && Date.now() - start < 5000) {
      await new Promise((r) => setTimeout(r, 5));
    }
    assert.equal(silent.asked, asked + 1, "the peer's onCollaborate was called");
    ac.abort(stop);
    await assert.rejects(within(pending, 2000, "aborted connect"), (e) => e === stop);
    // The attempt ended: the session is idle, and asks again when told to.
    await assert.rejects(
      within(m.connect(id, { signal: AbortSignal.timeout(300) }), 5000, "second connect"),
      { name: "TimeoutError" },
    );
    assert.equal(silent.asked, asked + 2);
    m.destroyAbilityConnectionSession(id);
    // Another session to an ability that answers connects as usual.
    session = m.createAbilityConnectionSession("ext", caller.context, peer(BUNDLE), {
      needSendData: true,
    });
    const r = await within(
      m.connect(session, { signal: AbortSignal.timeout(10_000) }),
      10_000,
      "connect",
    );
    assert.equal(r.isConnected, true);
  });

  it("sendData: aborted before, it rejects with the reason and sends nothing", async () => {
    const m = a.abilityConnectionManager;
    const before = sink.received.length;
    const stop = new Error("no");
    await assert.rejects(
      m.sendData(session, new ArrayBuffer(1000), { signal: AbortSignal.abort(stop) }),
      (e) => e === stop,
    );
    assert.throws(() => m.sendData(session, new ArrayBuffer(1), 1 as never), { code: 401 });
    await m.sendData(session, new ArrayBuffer(3));
    assert.deepEqual(sink.received.slice(before), [3]);
  });

  it("sendData: aborted under way, the peer drops what it holds and the session goes on", async () => {
    const m = a.abilityConnectionManager;
    const held = b.abilityConnectionManager;
    const before = sink.received.length;
    const ac = new AbortController();
    const stop = new Error("enough");
    const big = m.sendData(session, new ArrayBuffer(64 * 1024 * 1024), { signal: ac.signal });
    // Once the peer holds part of it (it allocated the transfer at its begin).
    const start = Date.now();
    while (held.receiving === 0 && Date.now() - start < 10_000) {
      await new Promise((r) => setTimeout(r, 1));
    }
    assert.ok(held.receiving > 0, "the transfer began");
    ac.abort(stop);
    await assert.rejects(big, (e) => e === stop);
    // The peer was told: it frees the transfer's buffer, and delivers nothing of it.
    const freed = Date.now();
    while (held.receiving > 0 && Date.now() - freed < 10_000) {
      await new Promise((r) => setTimeout(r, 5));
    }
    assert.equal(held.receiving, 0, "the peer freed the aborted transfer");
    await within(m.sendData(session, new ArrayBuffer(5)), 10_000, "next sendData");
    assert.deepEqual(sink.received.slice(before), [5]);
  });

  it("sendData: aborted while queued behind another, only that one is dropped", async () => {
    const m = a.abilityConnectionManager;
    const before = sink.received.length;
    const first = m.sendData(session, new ArrayBuffer(4 * 1024 * 1024));
    const ac = new AbortController();
    const second = m.sendData(session, new ArrayBuffer(7), { signal: ac.signal });
    ac.abort();
    await assert.rejects(second, { name: "AbortError" });
    await within(first, 20_000, "first sendData");
    await within(m.sendData(session, new ArrayBuffer(9)), 10_000, "third sendData");
    assert.deepEqual(sink.received.slice(before), [4 * 1024 * 1024, 9]);
  });
});

describe("socket: AbortSignal on connect, await using", { timeout: 30_000 }, () => {
  it("TCP connect: aborted before, it rejects with the reason; the socket connects afterwards", async () => {
    await using server = socket.constructTCPSocketServerInstance();
    await server.listen({ address: "127.0.0.1", port: 0 });
    const port = (await server.getLocalAddress()).port!;
    await using tcp = socket.constructTCPSocketInstance();
    const stop = new Error("later");
    const address = { address: "127.0.0.1", port };
    await assert.rejects(
      tcp.connect({ address, signal: AbortSignal.abort(stop) }),
      (e) => e === stop,
    );
    assert.equal((await tcp.getState()).isConnected, false);
    await assert.rejects(tcp.connect({ address, signal: 3 as never }), { code: 401 });
    // Aborted once connected, the signal changes nothing.
    const ac = new AbortController();
    await tcp.connect({ address, signal: ac.signal });
    ac.abort();
    assert.equal((await tcp.getState()).isConnected, true);
    await tcp.send({ data: "still here" });
  });

  it("Unix-domain connect: aborted before, it rejects with the reason", async () => {
    await using local = socket.constructLocalSocketInstance();
    const stop = new Error("not this one");
    await assert.rejects(
      local.connect({
        address: { address: "/tmp/pkg-ext-none.sock" },
        signal: AbortSignal.abort(stop),
      }),
      (e) => e === stop,
    );
    assert.equal((await local.getState()).isConnected, false);
  });

  it("TCP connect: aborted while connecting, it rejects with the reason and closes the late socket", async () => {
    let open: ((h: unknown) => void) | undefined;
    let closed = false;
    // A platform whose connect completes only when the test says so.
    const platform = {
      tcpConnect: () => new Promise((resolve) => open = resolve),
    } as unknown as socket.SocketPlatform;
    const tcp = socket.constructTCPSocketInstance({ platform });
    const ac = new AbortController();
    const stop = new Error("too slow");
    const connecting = tcp.connect({
      address: { address: "127.0.0.1", port: 9 },
      timeout: 20_000,
      signal: ac.signal,
    });
    await new Promise((r) => setTimeout(r, 10));
    ac.abort(stop);
    await assert.rejects(within(connecting, 2000, "aborted connect"), (e) => e === stop);
    assert.equal((await tcp.getState()).isConnected, false);
    open!({ close: () => (closed = true, Promise.resolve()) });
    await new Promise((r) => setTimeout(r, 10));
    assert.equal(closed, true, "the socket that connected late was closed");
    await tcp.close();
  });

  it("await using closes TCP servers and clients, and UDP sockets", async () => {
    let port = 0;
    let udpSocket: socket.UDPSocket | undefined;
    let client: socket.TCPSocket | undefined;
    {
      await using server = socket.constructTCPSocketServerInstance();
      await server.listen({ address: "127.0.0.1", port: 0 });
      port = (await server.getLocalAddress()).port!;
      await using tcp = socket.constructTCPSocketInstance();
      await tcp.connect({ address: { address: "127.0.0.1", port } });
      client = tcp;
      await using udp = socket.constructUDPSocketInstance();
      await udp.bind({ address: "127.0.0.1", port: 0 });
      udpSocket = udp;
    }
    assert.equal((await udpSocket!.getState()).isClose, true);
    assert.equal((await client!.getState()).isClose, true);
    assert.equal(await refused(port), true);
  });
});

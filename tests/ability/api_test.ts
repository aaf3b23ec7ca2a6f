/**
 * abilityConnectionManager's argument rules and listener rule, with two
 * devices in this process: 401 thrown synchronously for a bad argument, also
 * by promise-returning calls; runtime failures reject with 401; ids from
 * 100 (sessions) and 1000 (streams); one callback per session and event;
 * stream errors 32300001..32300004; `terminateSelf` ends the ability's
 * sessions with `PEER_APP_EXIT` on the peer.
 *
 * @module
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { createDevice, type Device } from "../../device.ts";
import {
  AbilityConstant,
  CollaborateEventType,
  type ConnectOptions,
  DisconnectReason,
  type EventCallbackInfo,
  MAX_DATA_BYTES,
  type PeerInfo,
  StreamRole,
  surface,
  UIAbility,
} from "../../ability_connection_manager.ts";
import { createPixelMapSync } from "../../image.ts";

const A = "02:00:00:00:AC:01";
const B = "02:00:00:00:AC:02";
const BUNDLE = { bundleName: "com.example.api", moduleName: "entry", abilityName: "EntryAbility" };
const PEER: PeerInfo = { deviceId: B, ...BUNDLE };

/** B's ability: accepts with the options it is offered, sink-capable. */
class Sink extends UIAbility {
  device!: Device;
  sessions: number[] = [];
  onCollaborate(want: Record<string, unknown>): number {
    const p = want["ohos.extra.param.key.supportCollaborateIndex"] as Record<string, unknown>;
    const o = p["ConnectOption"] as ConnectOptions;
    const m = this.device.abilityConnectionManager;
    const id = m.createAbilityConnectionSession("api", this.context, p["PeerInfo"] as PeerInfo, {
      needSendData: true,
      needReceiveStream: o.needSendStream,
    });
    this.sessions.push(id);
    void m.acceptConnect(id, p["ohos.dms.collabToken"] as string);
    return AbilityConstant.CollaborateResult.ACCEPT;
  }
}

describe("abilityConnectionManager: arguments, listeners, streams", { timeout: 30_000 }, () => {
  let a: Device;
  let b: Device;
  const source = new UIAbility();
  const sink = new Sink();

  before(async () => {
    b = createDevice({ deviceId: B, port: 0, discovery: "off" });
    const port = (await b.runtime()).port;
    a = createDevice({ deviceId: A, port: 0, discovery: "off", peers: [`${B}@127.0.0.1:${port}`] });
    sink.device = b;
    await b.abilityConnectionManager.registerAbility(sink, BUNDLE);
    await a.abilityConnectionManager.registerAbility(source, BUNDLE);
  });

  after(async () => {
    await a.close();
    await b.close();
  });

  it("session ids start at 100; bad arguments throw 401 synchronously", async () => {
    const m = a.abilityConnectionManager;
    const ctx = source.context;
    const id = m.createAbilityConnectionSession("api", ctx, PEER, {});
    assert.equal(id, 100);
    assert.equal(m.createAbilityConnectionSession("api", ctx, PEER, {}), 101);
    const bad: [string, () => unknown][] = [
      [
        "serviceName not a string",
        () => m.createAbilityConnectionSession(1 as never, ctx, PEER, {}),
      ],
      [
        "serviceName over 256 characters",
        () => m.createAbilityConnectionSession("x".repeat(257), ctx, PEER, {}),
      ],
      [
        "context not a registered ability's",
        () => m.createAbilityConnectionSession("api", {} as never, PEER, {}),
      ],
      [
        "peerInfo without abilityName",
        () => m.createAbilityConnectionSession("api", ctx, { ...PEER, abilityName: "" }, {}),
      ],
      [
        "peerInfo.deviceId not a network id",
        () => m.createAbilityConnectionSession("api", ctx, { ...PEER, deviceId: "phone" }, {}),
      ],
      [
        "options not an object",
        () => m.createAbilityConnectionSession("api", ctx, PEER, null as never),
      ],
      ["both stream directions", () =>
        m.createAbilityConnectionSession("api", ctx, PEER, {
          needSendStream: true,
          needReceiveStream: true,
        })],
      [
        "parameters not strings",
        () => m.createAbilityConnectionSession("api", ctx, PEER, { parameters: { a: 1 } as never }),
      ],
      ["connect(1.5)", () => m.connect(1.5)],
      ["connect('100')", () => m.connect("100" as never)],
      ["sendMessage over 1024 bytes", () => m.sendMessage(id, "é".repeat(513))],
      ["sendMessage(id, 42)", () => m.sendMessage(id, 42 as never)],
      ["sendData(Uint8Array)", () => m.sendData(id, new Uint8Array(4) as never)],
      ["sendData over 100 MiB", () => m.sendData(id, new ArrayBuffer(MAX_DATA_BYTES + 1))],
      ["sendImage(not a PixelMap)", () => m.sendImage(id, {} as never)],
      ["acceptConnect(id, 7)", () => m.acceptConnect(id, 7 as never)],
      ["reject(unknown token)", () => m.reject("nope", "why")],
      ["on(unknown type)", () => m.on("dataReceived" as never, id, () => {})],
      ["on(unknown session)", () => m.on("connect", 999, () => {})],
      ["on(no callback)", () => m.on("connect", id, undefined as never)],
      ["off(unknown session)", () => m.off("connect", 999)],
      ["disconnect(unknown session)", () => m.disconnect(999)],
      ["destroy(unknown session)", () => m.destroyAbilityConnectionSession(999)],
      ["getPeerInfoById('x')", () => m.getPeerInfoById("x" as never)],
      ["createStream role 2", () => m.createStream(id, { name: "s", role: 2 })],
      ["getSurfaceId(unknown stream)", () => m.getSurfaceId(5, { width: 1, height: 1 })],
    ];
    for (const [what, f] of bad) {
      assert.throws(f, (e: { code?: number }) => e.code === 401, what);
    }
    // 1024 UTF-8 bytes is allowed (the documented 1 KB): it rejects only
    // because the session is not connected.
    await assert.rejects(m.sendMessage(id, "é".repeat(512)), /is not connected/);
    assert.equal(m.getPeerInfoById(999), undefined);
    m.destroyAbilityConnectionSession(id);
    m.destroyAbilityConnectionSession(101);
  });

  it("runtime failures reject with 401", async () => {
    const m = a.abilityConnectionManager;
    const id = m.createAbilityConnectionSession("api", source.context, PEER, {});
    await assert.rejects(m.sendMessage(id, "x"), { code: 401 });
    await assert.rejects(m.sendData(id, new ArrayBuffer(1)), { code: 401 }); // no needSendData
    await assert.rejects(m.connect(999), { code: 401 });
    await assert.rejects(m.acceptConnect(id, "no such token"), { code: 401 });
    m.destroyAbilityConnectionSession(id);
  });

  it("one callback per session and event: on replaces, off clears whatever is passed", async () => {
    const m = a.abilityConnectionManager;
    const id = m.createAbilityConnectionSession("api", source.context, PEER, {
      needSendData: true,
    });
    assert.equal((await m.connect(id)).isConnected, true);
    const bid = sink.sessions.at(-1)!;
    const first: string[] = [];
    const second: string[] = [];
    m.on("receiveMessage", id, (i) => first.push(i.msg!));
    m.on("receiveMessage", id, (i) => second.push(i.msg!));
    const bm = b.abilityConnectionManager;
    await bm.sendMessage(bid, "one");
    await waitFor(() => second.length === 1);
    m.off("receiveMessage", id, () => {});
    await bm.sendMessage(bid, "two");
    const last = new Promise<EventCallbackInfo>((r) => m.on("receiveData", id, r));
    await bm.sendData(bid, new ArrayBuffer(3));
    await last;
    assert.deepEqual({ first, second }, { first: [], second: ["one"] });
    m.destroyAbilityConnectionSession(id);
  });

  it("streams: ids from 1000, 32300001..32300004, roles and surfaces checked", async () => {
    const m = a.abilityConnectionManager;
    assert.throws(
      () => m.createStream(100, { name: "s", role: StreamRole.SOURCE, bitrate: 1000 }),
      { code: 32300003 },
    );
    assert.throws(
      () =>
        m.createStream(100, { name: "s", role: StreamRole.SOURCE, colorSpaceConversionTarget: 16 }),
      { code: 32300004 },
    );
    const id = m.createAbilityConnectionSession("api", source.context, PEER, {
      needSendStream: true,
    });
    assert.equal((await m.connect(id)).isConnected, true);
    await assert.rejects(m.createStream(id, { name: "s", role: StreamRole.SINK }), { code: 401 });
    const streamId = await m.createStream(id, { name: "s", role: StreamRole.SOURCE });
    assert.ok(streamId >= 1000);
    await assert.rejects(m.createStream(id, { name: "s", role: StreamRole.SOURCE }), {
      code: 32300001,
    });
    const display = surface.createSurface();
    assert.throws(() => m.setSurfaceId(streamId, display.surfaceId, { width: 8, height: 8 }), {
      code: 401,
    });
    assert.throws(() => m.startStream(streamId), { code: 401 }, "no surface yet");
    assert.throws(() => m.getSurfaceId(streamId, { width: 8, height: 8, rotation: 45 }), {
      code: 401,
    });
    const surfaceId = m.getSurfaceId(streamId, { width: 8, height: 8 });
    assert.throws(() => m.startStream(streamId), { code: 32300002 });
    assert.throws(() => surface.getProducer("no-such-surface"), { code: 401 });
    surface.getProducer(surfaceId).writeFrame(new Uint8Array(10)); // not started: dropped
    assert.deepEqual(m.streamStats(streamId), { sent: 0, dropped: 1, received: 0 });
    m.destroyStream(streamId);
    assert.throws(() => surface.getProducer(surfaceId), { code: 401 });
    assert.throws(() => m.startStream(streamId), { code: 401 });
    display.release();
    m.destroyAbilityConnectionSession(id);
  });

  it("a transfer over the receiver's budget is refused: the promise rejects, collaborateEvent says SEND_FAILURE", async () => {
    const m = a.abilityConnectionManager;
    const ids = ["b1", "b2", "b3"].map((n) =>
      m.createAbilityConnectionSession(`api-${n}`, source.context, PEER, { needSendData: true })
    );
    for (const id of ids) assert.equal((await m.connect(id)).isConnected, true);
    const events: { eventType: number; eventMsg?: string }[] = [];
    for (const id of ids) m.on("collaborateEvent", id, (e) => events.push(e));
    // Three 100 MiB transfers at once: the peer's 256 MiB budget takes two.
    const data = new ArrayBuffer(MAX_DATA_BYTES);
    const results = await Promise.allSettled(ids.map((id) => m.sendData(id, data)));
    const refused = results.filter((r) => r.status === "rejected");
    assert.equal(refused.length, 1, JSON.stringify(results.map((r) => r.status)));
    assert.match(String((refused[0] as PromiseRejectedResult).reason.message), /receive budget/);
    await waitFor(() => events.length === 1);
    assert.equal(events[0].eventType, CollaborateEventType.SEND_FAILURE);
    for (const id of ids) m.destroyAbilityConnectionSession(id);
  });

  it("images: quality and PixelMap checked", () => {
    const m = a.abilityConnectionManager;
    const pm = createPixelMapSync(new ArrayBuffer(16), { size: { width: 2, height: 2 } });
    assert.throws(() => m.sendImage(100, pm, 101), { code: 401 });
    assert.throws(() => m.sendImage(100, pm, 1.5), { code: 401 });
    void pm.release();
    assert.throws(() => m.sendImage(100, pm), { code: 401 });
  });

  it("registering twice is refused; terminateSelf ends the sessions with PEER_APP_EXIT", async () => {
    await assert.rejects(
      async () => await a.abilityConnectionManager.registerAbility(new UIAbility(), BUNDLE),
      { code: 401 },
    );
    const extra = new UIAbility();
    const info = { ...BUNDLE, abilityName: "Second" };
    await a.abilityConnectionManager.registerAbility(extra, info);
    const m = a.abilityConnectionManager;
    const id = m.createAbilityConnectionSession("api-t", extra.context, PEER, {});
    assert.equal((await m.connect(id)).isConnected, true);
    const bid = sink.sessions.at(-1)!;
    const gone = new Promise<EventCallbackInfo>((r) =>
      b.abilityConnectionManager.on("disconnect", bid, r)
    );
    await extra.context.terminateSelf();
    assert.deepEqual(await gone, { sessionId: bid, reason: DisconnectReason.PEER_APP_EXIT });
    assert.equal(m.getPeerInfoById(id), undefined);
    assert.throws(
      () => m.createAbilityConnectionSession("api", extra.context, PEER, {}),
      { code: 401 },
      "a terminated ability's context is no longer valid",
    );
  });
});

async function waitFor(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 250 && !cond(); i++) await new Promise((r) => setTimeout(r, 20));
  assert.ok(cond());
}

/**
 * A peer that breaks the session protocol: it talks to device B's ability
 * on raw streams of the link (the device driver's own `Port`), sending what
 * no linkweave device sends. What it breaks ends that session only: B's
 * application sees `disconnect` on it, another session on the same link
 * goes on, and what B holds stays within its limits.
 *
 * @module
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { createDevice, type Device } from "../../device.ts";
import { type DeviceDriver, Port } from "../../core/device/driver.ts";
import { ServiceKind } from "../../core/proto/link/control.ts";
import {
  AbilityConstant,
  ConnectErrorCode,
  DisconnectReason,
  type EventCallbackInfo,
  MAX_DATA_BYTES,
  type PeerInfo,
  UIAbility,
} from "../../ability_connection_manager.ts";
import {
  decodeMessage,
  encodeAck,
  encodeBegin,
  encodeChunk,
  encodeHello,
  encodePiece,
  type Hello,
  type SessionMessage,
  TransferKind,
  WIRE_VERSION,
} from "../../core/ability/wire.ts";

const A = "02:00:00:00:AD:01";
const B = "02:00:00:00:AD:02";
const INFO = { bundleName: "com.example.h", moduleName: "entry", abilityName: "EntryAbility" };

/**
 * A raw stream to B's ability service, recording what B sends: each message
 * decoded, except the bytes after a `piece` header, recorded bare (wire
 * version 2).
 */
class RawPort extends Port {
  got: (SessionMessage | Uint8Array)[] = [];
  #bare = false;
  opened: Promise<void>;
  closed: Promise<boolean>;
  #open!: () => void;
  #close!: (byPeer: boolean) => void;
  constructor() {
    super();
    this.opened = new Promise((r) => this.#open = r);
    this.closed = new Promise((r) => this.#close = r);
  }
  override onOpened(): void {
    this.#open();
  }
  override onData(data: ArrayBuffer): void {
    if (this.#bare) {
      this.#bare = false;
      this.got.push(new Uint8Array(data));
      return;
    }
    const m = decodeMessage(new Uint8Array(data));
    if (m !== undefined) this.got.push(m);
    this.#bare = m?.type === "piece";
  }
  override onClosed(_reason: number, byPeer: boolean): void {
    this.#close(byPeer);
  }
}

function hello(token: string, serviceName = "h", wire?: number): Hello {
  return {
    ...(wire === undefined ? {} : { wire }),
    token,
    caller: { ...INFO },
    callee: { ...INFO },
    serviceName,
    options: {
      needSendData: true,
      needSendStream: false,
      needReceiveStream: false,
      startOptions: 0,
      parameters: {},
    },
  };
}

async function waitFor(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 250 && !cond(); i++) await new Promise((r) => setTimeout(r, 20));
  assert.ok(cond(), what);
}

/** What a promise gives, failing after the 5 s of {@linkcode waitFor} instead of hanging. */
async function settled<T>(p: Promise<T>, what: string): Promise<T> {
  let out: { v: T } | undefined;
  let error: { e: unknown } | undefined;
  p.then((v) => out = { v }, (e) => error = { e });
  await waitFor(() => out !== undefined || error !== undefined, what);
  if (error !== undefined) throw error.e;
  return out!.v;
}

describe("abilityConnectionManager against a peer that breaks the protocol", {
  timeout: 30_000,
}, () => {
  let a: Device;
  let b: Device;
  let driver: DeviceDriver;
  const sessions: number[] = [];
  const gone: EventCallbackInfo[] = [];

  before(async () => {
    b = createDevice({ deviceId: B, port: 0, discovery: "off" });
    const port = (await b.runtime()).port;
    a = createDevice({ deviceId: A, port: 0, discovery: "off", peers: [`${B}@127.0.0.1:${port}`] });
    driver = await a.runtime() as DeviceDriver;
    const m = b.abilityConnectionManager;
    class Sink extends UIAbility {
      onCollaborate(want: Record<string, unknown>): number {
        const p = want["ohos.extra.param.key.supportCollaborateIndex"] as Record<string, unknown>;
        const id = m.createAbilityConnectionSession(
          (p["PeerInfo"] as PeerInfo).serviceName!,
          this.context,
          p["PeerInfo"] as PeerInfo,
          { needSendData: true },
        );
        sessions.push(id);
        m.on("disconnect", id, (i) => gone.push(i));
        void m.acceptConnect(id, p["ohos.dms.collabToken"] as string);
        return AbilityConstant.CollaborateResult.ACCEPT;
      }
    }
    await m.registerAbility(new Sink(), INFO);
  });

  after(async () => {
    await a.close();
    await b.close();
  });

  function open(): RawPort {
    const p = new RawPort();
    driver.connect(B, "h", p, { kind: ServiceKind.ABILITY, bundle: INFO.bundleName });
    return p;
  }

  it("a first message that is not a request is answered SYSTEM_INTERNAL_ERROR and closed", async () => {
    const p = open();
    await p.opened;
    p.send(new Uint8Array([3, 0x68, 0x69])); // a text before any request
    assert.equal(await p.closed, true);
    assert.deepEqual(p.got, [{
      type: "result",
      result: { errorCode: ConnectErrorCode.SYSTEM_INTERNAL_ERROR, reason: "" },
    }]);
  });

  it("a transfer over the cap is refused, a stray chunk ends that session only", async () => {
    const bad = open();
    await bad.opened;
    bad.send(encodeHello(hello("1".repeat(48), "h1")));
    await waitFor(() => bad.got.length === 1, "an answer");
    assert.deepEqual(bad.got[0], { type: "result", result: { wire: WIRE_VERSION } });
    const good = open();
    await good.opened;
    good.send(encodeHello(hello("2".repeat(48), "h2")));
    await waitFor(() => good.got.length === 1, "an answer");
    assert.equal(sessions.length, 2);

    bad.send(encodeBegin(1, TransferKind.DATA, MAX_DATA_BYTES + 1));
    await waitFor(() => bad.got.length === 2, "a refusal");
    assert.equal((bad.got[1] as SessionMessage).type, "refuse");
    assert.equal(b.abilityConnectionManager.receiving, 0, "nothing allocated for it");

    // A chunk of a transfer that never began: a protocol error.
    const chunk = new Uint8Array(10);
    chunk[0] = 5;
    chunk[4] = 9;
    bad.send(chunk);
    await waitFor(() => gone.length === 1, "the session's end");
    assert.deepEqual(gone[0], {
      sessionId: sessions[0],
      reason: DisconnectReason.NETWORK_DISCONNECTED,
    });
    await bad.closed;
    // The other session on the same link goes on.
    good.send(new Uint8Array([3, 0x6f, 0x6b]));
    const got = new Promise<EventCallbackInfo>((r) =>
      b.abilityConnectionManager.on("receiveMessage", sessions[1], r)
    );
    assert.equal((await got).msg, "ok");
    assert.deepEqual(a.links(), [B], "the link stays");
  });

  /** A session with a raw peer speaking `wire` (absent: version 1); B's session id. */
  async function accepted(name: string, wire?: number): Promise<{ p: RawPort; id: number }> {
    const p = open();
    await p.opened;
    const before = sessions.length;
    p.send(encodeHello(hello(name.padEnd(48, "0"), name, wire)));
    await waitFor(() => p.got.length === 1 && sessions.length === before + 1, "an answer");
    assert.deepEqual(p.got.shift(), { type: "result", result: { wire: WIRE_VERSION } });
    return { p, id: sessions[before] };
  }

  /** Bytes that differ from one position to the next. */
  function pattern(n: number): Uint8Array {
    return new Uint8Array(n).map((_, i) => (i * 31 + (i >> 11)) & 255);
  }

  it("a version 1 peer gets chunks (bytes behind a header); a version 2 peer bare pieces", async () => {
    const m = b.abilityConnectionManager;
    const data = pattern(300_000);
    for (const wire of [undefined, 2]) {
      const { p, id } = await accepted(`w${wire ?? 1}`, wire);
      const sent = m.sendData(id, data.slice().buffer);
      await waitFor(() => {
        const last = p.got.at(-1);
        return last instanceof Uint8Array
          ? p.got.length > 1
          : last?.type === "chunk" && p.got.length === 4;
      }, "the transfer");
      await new Promise((r) => setTimeout(r, 50));
      const types = p.got.map((x) => x instanceof Uint8Array ? `${x.length} bytes` : x.type);
      const pieces = (x: number) => [`piece`, `${x} bytes`];
      assert.deepEqual(
        types,
        wire === undefined
          ? ["begin", "chunk", "chunk", "chunk"]
          : ["begin", ...pieces(131072), ...pieces(131072), ...pieces(300_000 - 262_144)],
      );
      const bytes = p.got.flatMap((x) =>
        x instanceof Uint8Array ? [...x] : x.type === "chunk" ? [...x.bytes] : []
      );
      assert.deepEqual(new Uint8Array(bytes), data);
      const begin = p.got[0] as { id: number };
      p.send(encodeAck(begin.id));
      await settled(sent, "sendData resolved");
      p.close();
    }
  });

  it("nothing goes between a piece and its bytes, though the link's queue fills between them", async () => {
    const m = b.abilityConnectionManager;
    const { p, id } = await accepted("order", 2);
    const data = pattern(4 * 1024 * 1024 + 5);
    const sent = m.sendData(id, data.slice().buffer);
    // Queued while the transfer waits for the link: texts go first, but never
    // between a piece header and its bytes.
    const texts = ["one", "two", "three"];
    for (const t of texts) await m.sendMessage(id, t);
    await waitFor(
      () => p.got.filter((x) => x instanceof Uint8Array).length === 33,
      "every piece",
    );
    const got: string[] = [];
    const bytes = new Uint8Array(data.length);
    let filled = 0;
    for (let i = 0; i < p.got.length; i++) {
      const x = p.got[i];
      assert.ok(!(x instanceof Uint8Array), `message ${i}: bytes without a piece header`);
      if (x.type === "message") got.push(x.text);
      if (x.type !== "piece") continue;
      const body = p.got[++i];
      assert.ok(body instanceof Uint8Array, `message ${i}: not the bytes of the piece before`);
      assert.equal(body.length, x.length, `message ${i}: the piece's length`);
      bytes.set(body, filled);
      filled += body.length;
    }
    assert.deepEqual(got, texts, "the texts, in order");
    assert.equal(filled, data.length);
    assert.ok(bytes.every((v, i) => v === data[i]), "the bytes, in order");
    p.send(encodeAck((p.got[0] as { id: number }).id));
    await settled(sent, "sendData resolved");
    p.close();
  });

  it("a version 1 peer's chunks are received", async () => {
    const m = b.abilityConnectionManager;
    const { p, id } = await accepted("recv1");
    const data = pattern(200_000);
    const received = new Promise<EventCallbackInfo>((r) => m.on("receiveData", id, r));
    p.send(encodeBegin(3, TransferKind.DATA, data.length));
    for (let off = 0; off < data.length; off += 65_536) {
      p.send(encodeChunk(3, data, { start: off, end: Math.min(data.length, off + 65_536) }));
    }
    assert.deepEqual(new Uint8Array((await settled(received, "receiveData")).data!), data);
    await waitFor(() => p.got.length === 1, "an acknowledgement");
    assert.deepEqual(p.got[0], { type: "ack", id: 3 });
    p.close();
  });

  it("a version 2 peer's pieces are received; a piece of the wrong length ends that session", async () => {
    const m = b.abilityConnectionManager;
    const { p, id } = await accepted("recv", 2);
    const data = pattern(200_000);
    const received = new Promise<EventCallbackInfo>((r) => m.on("receiveData", id, r));
    p.send(encodeBegin(7, TransferKind.DATA, data.length));
    for (let off = 0; off < data.length; off += 65_536) {
      const piece = data.slice(off, off + 65_536);
      p.send(encodePiece(7, piece.length));
      p.send(piece);
    }
    assert.deepEqual(new Uint8Array((await settled(received, "receiveData")).data!), data);
    await waitFor(() => p.got.length === 1, "an acknowledgement");
    assert.deepEqual(p.got[0], { type: "ack", id: 7 });

    const ends = gone.length;
    p.send(encodeBegin(8, TransferKind.DATA, 100));
    p.send(encodePiece(8, 100));
    p.send(new Uint8Array(99));
    await waitFor(() => gone.length === ends + 1, "the session's end");
    assert.deepEqual(gone.at(-1), { sessionId: id, reason: DisconnectReason.NETWORK_DISCONNECTED });
    await p.closed;
  });
});

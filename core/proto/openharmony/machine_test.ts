import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DisconnectReason, ErrorCode } from "../../error_codes.ts";
import { advance, events } from "../../../tests/openharmony/harness.ts";
import { deliver, replies, ScriptedPeer } from "../../../tests/openharmony/peer.ts";
import { GeneralIds, OH_CONTROL_BACKLOG_BYTES, OhLink, type OhLinkOptions } from "./machine.ts";
import { encodeBasicInfo, FIRST_GENERAL_ID, MsgType, SoftbusError } from "./wire.ts";

const BUNDLE = "com.example.demo";
const DEVID = "B0A4D0000000000000000000000000000000000000000000000000000000000F";
const US = FIRST_GENERAL_ID;
const THEM = 0x2c000009;

function link(role: "server" | "client", options: Partial<OhLinkOptions> = {}): OhLink {
  return new OhLink({ role, bundleName: BUNDLE, now: 0, mtu: 185, devid: DEVID, ...options });
}

/** A server link that has exchanged basic info with a scripted client. */
function readyServer(info: Parameters<ScriptedPeer["basicInfo"]>[0] = {}, options = {}) {
  const peer = new ScriptedPeer();
  const l = link("server", options);
  deliver(l, 0, peer.basicInfo(info));
  replies(l, 0);
  return { l, peer };
}

/** A client link that has exchanged basic info with a scripted server. */
function readyClient(info: Parameters<ScriptedPeer["basicInfo"]>[0] = {}, options = {}) {
  const peer = new ScriptedPeer();
  const l = link("client", options);
  replies(l, 0);
  deliver(l, 0, peer.basicInfo({ type: 2, ...info }));
  assert.deepEqual(replies(l, 0), []);
  return { l, peer };
}

/** A client connection of ours, opened and acknowledged. */
function openedClient(l: OhLink, peer: ScriptedPeer, now = 0): number {
  const s = l.open("demo", { now, owner: "mine" });
  replies(l, now);
  deliver(l, now, peer.ack(THEM, s));
  assert.deepEqual(events(l), [{ type: "opened", stream: s, owner: "mine" }]);
  return s;
}

describe("openharmony link: basic info", () => {
  it("as client, sends basic info first: type 1, our id, remote disconnect + networkId", () => {
    const l = link("client", { devtype: 0x0c });
    const [bi] = replies(l, 0);
    assert.equal(bi.char, "2B00");
    assert.deepEqual(bi.json, { devid: DEVID, type: 1, devtype: 12, FEATURE_SUPPORT: 10 });
    assert.deepEqual(replies(link("client", { requestNetworkId: false }), 0)[0].json, {
      devid: DEVID,
      type: 1,
      devtype: 0,
      FEATURE_SUPPORT: 2,
    });
  });

  it("as server, answers only the client's, echoing its feature bits with remote disconnect", () => {
    const peer = new ScriptedPeer();
    const l = link("server");
    assert.deepEqual(replies(l, 0), []);
    deliver(l, 0, peer.basicInfo({ features: 13 }));
    assert.deepEqual(replies(l, 0)[0].json, {
      devid: DEVID,
      type: 2,
      devtype: 0,
      FEATURE_SUPPORT: 15,
    });
    const l2 = link("server");
    deliver(l2, 0, new ScriptedPeer().basicInfo({ features: 0 }));
    assert.equal((replies(l2, 0)[0].json as { FEATURE_SUPPORT: number }).FEATURE_SUPPORT, 2);
  });

  it("leaves our devid out for a peer claiming devtype 255", () => {
    const l = link("server");
    deliver(l, 0, new ScriptedPeer().basicInfo({ devtype: 255 }));
    assert.deepEqual(replies(l, 0)[0].json, { type: 2, devtype: 0, FEATURE_SUPPORT: 2 });
  });

  it("drops the link at once on basic info OpenHarmony refuses", () => {
    const bad = [
      Uint8Array.of(1, 0, 0, 0),
      encodeBasicInfo({ type: 1, devtype: 1, features: 2 }).map((b, i) => i === 0 ? 2 : b),
      Uint8Array.of(1, 0, 0, 0, ...new TextEncoder().encode('{"devid":"x"}')),
      Uint8Array.of(1, 0, 0, 0, ...new TextEncoder().encode("not json")),
    ];
    for (const role of ["server", "client"] as const) {
      for (const m of bad) {
        const l = link(role);
        replies(l, 0);
        deliver(l, 0, new ScriptedPeer().writes("2B00", m));
        assert.deepEqual(replies(l, 0), []);
        const ev = events(l);
        assert.equal(ev.at(-1)?.type, "linkClosed", `${role} ${m}`);
        assert.equal(l.state, "closed");
      }
    }
  });

  it("ignores 2B00 after basic info, and keeps the peer's info", () => {
    const { l, peer } = readyServer({ devid: "PEER", features: 10 });
    deliver(l, 1, peer.basicInfo({ devid: "OTHER" }));
    assert.deepEqual(replies(l, 1), []);
    assert.deepEqual(l.peer, { devid: "PEER", type: 1, devtype: 14, features: 10 });
    assert.equal(l.state, "open");
  });
});

describe("openharmony link: timers", () => {
  it("as server drops a client that neither exchanges the MTU nor writes within 10 s", () => {
    const l = link("server", { mtu: undefined });
    assert.equal(l.pollTimeout(), 10000);
    advance(l, 9999);
    assert.equal(l.state, "open");
    advance(l, 10000);
    assert.match((events(l).at(-1) as { message: string }).message, /No ATT MTU exchange/);
  });

  it("as server gives basic info 5 s from the MTU exchange", () => {
    const l = link("server", { mtu: undefined });
    l.handleMtu(247, 3000);
    assert.equal(l.mtu, 247);
    assert.equal(l.pollTimeout(), 8000);
    advance(l, 8000);
    assert.match((events(l).at(-1) as { message: string }).message, /No basic info within 5000/);
  });

  it("as client drops the link when the server's basic info does not come in 5 s", () => {
    const l = link("client");
    const s = l.open("demo", { now: 0 });
    replies(l, 0);
    advance(l, 5000);
    assert.deepEqual(events(l).map((e) => e.type), ["closed", "linkClosed"]);
    assert.equal(l.streamState(s), "closed");
  });

  it("drops a link on which no connection was ever opened after 60 s without traffic", () => {
    const { l, peer } = readyServer();
    deliver(l, 30000, peer.rc(1, 1));
    advance(l, 89999);
    assert.equal(l.state, "open");
    advance(l, 90000);
    assert.match((events(l).at(-1) as { message: string }).message, /idle/);
  });

  it("keeps a link once a connection was opened on it, however quiet", () => {
    const { l, peer } = readyServer();
    deliver(l, 0, peer.rc(1, 1), peer.handshake(THEM));
    const open = events(l)[0];
    assert.ok(open.type === "open");
    l.accept(open.stream);
    replies(l, 0);
    l.closeStream(open.stream, 1);
    replies(l, 1);
    assert.equal(l.pollTimeout(), undefined);
    advance(l, 600000);
    assert.equal(l.state, "open");
  });
});

describe("openharmony link: connecting", () => {
  it("takes a reference, then HANDSHAKEs with our bundle name; the ACK opens", () => {
    const { l, peer } = readyClient();
    const s = l.open("Demo", { now: 0, owner: "c1" });
    assert.equal(s, US);
    const [rc, hs] = replies(l, 0);
    assert.deepEqual(rc.control?.json, {
      KEY_METHOD: 1,
      KEY_DELTA: 1,
      KEY_REF_NUM: 1,
      KEY_CHALLENGE: 0,
    });
    assert.deepEqual(hs.general?.json, { name: "Demo", ability: 2, bundle_name: BUNDLE });
    assert.equal(hs.general?.localId, US);
    assert.equal(hs.general?.peerId, 0);
    assert.equal(l.streamState(s), "opening");
    deliver(l, 0, peer.ack(THEM, s));
    assert.deepEqual(events(l), [{ type: "opened", stream: s, owner: "c1" }]);
    l.send(s, Uint8Array.of(7));
    const [normal] = replies(l, 0);
    assert.equal(normal.general?.localId, US);
    assert.equal(normal.general?.peerId, THEM);
  });

  it("refuses other service kinds: this profile carries linkEnhance connections only", () => {
    const { l } = readyClient();
    const s = l.open("ability", { kind: 1, owner: "x" });
    assert.deepEqual(events(l), [{
      type: "rejected",
      stream: s,
      owner: "x",
      code: ErrorCode.CAPABILITY_NOT_SUPPORTED,
    }]);
    assert.deepEqual(replies(l, 0), []);
    assert.equal(l.streams, 0);
  });

  it("waits for basic info before the reference and the HANDSHAKE", () => {
    const peer = new ScriptedPeer();
    const l = link("client");
    l.open("demo", { now: 0 });
    assert.deepEqual(replies(l, 0).map((m) => m.char), ["2B00"]);
    deliver(l, 10, peer.basicInfo({ type: 2 }));
    assert.deepEqual(replies(l, 10).map((m) => m.general?.msgTypeName ?? "rc"), [
      "rc",
      "HANDSHAKE",
    ]);
  });

  it("times out after 10 s: RESET with peer id 0, connect timeout, reference released 100 ms later", () => {
    const { l } = readyClient();
    const s = l.open("demo", { now: 1000 });
    replies(l, 1000);
    advance(l, 10999);
    assert.deepEqual(events(l), []);
    advance(l, 11000);
    assert.deepEqual(events(l), [{
      type: "rejected",
      stream: s,
      owner: undefined,
      code: ErrorCode.CONNECT_TIMEOUT,
    }]);
    const [reset] = replies(l, 11000);
    assert.equal(reset.general?.msgTypeName, "RESET");
    assert.equal(reset.general?.peerId, 0);
    advance(l, 11100);
    const [rc] = replies(l, 11100);
    assert.deepEqual(rc.control?.json, {
      KEY_METHOD: 1,
      KEY_DELTA: -1,
      KEY_REF_NUM: 0,
      KEY_CHALLENGE: 0,
    });
    advance(l, 16599);
    assert.equal(l.state, "open");
    advance(l, 16600);
    assert.equal(l.state, "closed");
  });

  it("reports an error ACK with the app's code and lets go of the link even without RESET", () => {
    const { l, peer } = readyClient();
    const s = l.open("nosuch", { now: 0 });
    replies(l, 0);
    deliver(l, 1, peer.ack(THEM, s, SoftbusError.SERVER_NOT_OPENED));
    assert.deepEqual(events(l), [{
      type: "rejected",
      stream: s,
      owner: undefined,
      code: ErrorCode.PEER_SERVER_NOT_STARTED,
    }]);
    assert.equal(l.streamState(s), "closed");
    assert.equal(l.references, 1);
    advance(l, 10000);
    assert.equal(l.references, 0);
    assert.equal(replies(l, 10000)[0].control?.json !== undefined, true);
  });

  it("maps other ACK errors to the codes an OpenHarmony app sees", () => {
    for (
      const [err, code] of [
        [SoftbusError.CONNECT_TIMEOUT, ErrorCode.CONNECT_TIMEOUT],
        [SoftbusError.CREATE_CLIENT_MAX, ErrorCode.CONNECTION_LIMIT],
        [-1, ErrorCode.INTERNAL_ERROR],
      ]
    ) {
      const { l, peer } = readyClient();
      const s = l.open("demo", { now: 0 });
      replies(l, 0);
      deliver(l, 0, peer.ack(THEM, s, err));
      assert.deepEqual(events(l), [{ type: "rejected", stream: s, owner: undefined, code }]);
    }
  });

  it("reports a RESET before the ACK as a failed connect and releases at once", () => {
    const { l, peer } = readyClient();
    const s = l.open("demo", { now: 0 });
    replies(l, 0);
    deliver(l, 5, peer.reset(THEM, s));
    const code = ErrorCode.INTERNAL_ERROR;
    assert.deepEqual(events(l), [{ type: "rejected", stream: s, owner: undefined, code }]);
    assert.equal(replies(l, 5)[0].control?.json !== undefined, true);
    assert.equal(l.references, 0);
  });

  it("takes a new reference to resume a link that was closing", () => {
    const { l, peer } = readyClient();
    const s = openedClient(l, peer);
    l.closeStream(s, 0);
    advance(l, 100);
    replies(l, 100);
    const s2 = l.open("demo", { now: 200 });
    const kinds = replies(l, 200).map((m) => m.general?.msgTypeName ?? m.control?.json);
    assert.deepEqual(kinds, [
      { KEY_METHOD: 1, KEY_DELTA: 1, KEY_REF_NUM: 1, KEY_CHALLENGE: 0 },
      "HANDSHAKE",
    ]);
    advance(l, 10000);
    assert.equal(l.state, "open");
    assert.equal(l.streamState(s2), "opening");
  });
});

describe("openharmony link: incoming connections", () => {
  it("answers an accepted HANDSHAKE with ACK err 0, ids swapped", () => {
    const { l, peer } = readyServer();
    deliver(l, 0, peer.handshake(THEM, "DEMO", "COM.example.DEMO"));
    const [open] = events(l);
    assert.deepEqual(open, {
      type: "open",
      link: undefined,
      stream: US,
      name: "DEMO",
      kind: 0,
      bundle: "COM.example.DEMO",
    });
    l.accept(US);
    const [ack] = replies(l, 0);
    assert.deepEqual(ack.general, {
      msgType: 1,
      msgTypeName: "HANDSHAKE_ACK",
      localId: US,
      peerId: THEM,
      headLen: 16,
      jsonText: '{"err":0,"ability":2}',
      nulTerminated: false,
      json: { err: 0, ability: 2 },
    });
    assert.equal(l.streamState(US), "open");
  });

  it("refuses another app's bundle name with an error ACK and RESET, without asking", () => {
    const { l, peer } = readyServer();
    deliver(l, 0, peer.handshake(THEM, "demo", "com.other.app"));
    assert.deepEqual(events(l), []);
    const [ack, reset] = replies(l, 0);
    assert.equal((ack.general?.json as { err: number }).err, SoftbusError.SERVER_NOT_OPENED);
    assert.equal(reset.general?.msgTypeName, "RESET");
    assert.equal(l.streams, 0);
  });

  it("leaves the bundle name to the app layer when told not to match it", () => {
    const { l, peer } = readyServer({}, { matchBundle: false });
    deliver(l, 0, peer.handshake(THEM, "demo", "com.other.app"));
    assert.deepEqual(events(l), [{
      type: "open",
      link: undefined,
      stream: US,
      name: "demo",
      kind: 0,
      bundle: "com.other.app",
    }]);
    assert.deepEqual(replies(l, 0), []);
  });

  it("sends the bundle name given to open, else its own", () => {
    const { l } = readyClient();
    l.open("demo", { bundle: "com.other.app" });
    l.open("demo");
    const bundles = replies(l, 0).flatMap((m) =>
      m.general?.msgTypeName === "HANDSHAKE"
        ? [(m.general.json as { bundle_name: string }).bundle_name]
        : []
    );
    assert.deepEqual(bundles, ["com.other.app", BUNDLE]);
    assert.throws(() => l.open("demo", { bundle: "" }), TypeError);
  });

  it("rejects with the softbus error that gives the peer's app our code", () => {
    for (
      const [code, err] of [
        [ErrorCode.PEER_SERVER_NOT_STARTED, SoftbusError.SERVER_NOT_OPENED],
        [ErrorCode.INTERNAL_ERROR, SoftbusError.CONN_FAIL],
      ]
    ) {
      const { l, peer } = readyServer();
      deliver(l, 0, peer.handshake(THEM));
      l.reject(US, code);
      const [ack, reset] = replies(l, 0);
      assert.equal((ack.general?.json as { err: number }).err, err);
      assert.equal(reset.general?.msgTypeName, "RESET");
    }
  });

  it("cannot answer a HANDSHAKE before basic info and drops the link 200 ms later", () => {
    const peer = new ScriptedPeer();
    const l = link("server");
    deliver(l, 0, peer.handshake(THEM));
    assert.deepEqual(events(l), []);
    assert.deepEqual(replies(l, 0), []);
    advance(l, 199);
    assert.equal(l.state, "open");
    advance(l, 200);
    assert.equal(l.state, "closed");
  });

  it("answers a HANDSHAKE whose ConnPktHead has a wrong magic and len, as OpenHarmony does", () => {
    const { l, peer } = readyServer();
    const out = peer.handshake(THEM);
    const w = out.writes[0];
    w[16] ^= 0xff; // magic
    w[16 + 20] ^= 0x10; // len
    deliver(l, 0, out);
    assert.equal(events(l)[0]?.type, "open");
  });

  it("drops messages OpenHarmony drops and keeps the link", () => {
    const { l, peer } = readyServer();
    const head = (type: number, headLen: number, body = "{}") => {
      const out = peer.general(type, THEM, 0, new TextEncoder().encode(body));
      new DataView(out.writes[0].buffer).setUint32(16 + 24 + 12, headLen, true);
      return out;
    };
    deliver(
      l,
      0,
      peer.writes("2B01", new Uint8Array(24)),
      peer.writes("2B01", new Uint8Array(10)),
      head(MsgType.MAX, 16),
      head(5, 16),
      head(MsgType.HANDSHAKE, 200),
      head(MsgType.HANDSHAKE, 16, '{"name":"demo","ability":-1,"bundle_name":"com.example.demo"}'),
      head(MsgType.HANDSHAKE, 16, `{"name":"${"x".repeat(256)}","ability":2,"bundle_name":"b"}`),
    );
    assert.deepEqual(events(l), []);
    assert.deepEqual(replies(l, 0), []);
    assert.equal(l.state, "open");
  });

  it("leaves HANDSHAKEs beyond the connection limit unanswered", () => {
    const { l, peer } = readyServer({}, { maxConnections: 3 });
    for (let k = 0; k < 5; k++) deliver(l, 0, peer.handshake(THEM + k));
    assert.equal(events(l).length, 3);
    assert.equal(l.streams, 3);
    assert.throws(() => l.open("demo", { now: 0 }), RangeError);
  });
});

describe("openharmony link: data", () => {
  function opened() {
    const { l, peer } = readyServer();
    deliver(l, 0, peer.handshake(THEM));
    events(l);
    l.accept(US, "srv");
    replies(l, 0);
    return { l, peer };
  }

  it("delivers 1..1024 bytes and drops empty and larger payloads, the link stays", () => {
    const { l, peer } = opened();
    for (const n of [0, 1, 1024, 1025, 40000 - 40]) {
      deliver(l, 0, peer.normal(THEM, US, new Uint8Array(n).fill(n & 0xff)));
    }
    const got = events(l).map((e) => e.type === "data" ? e.data.byteLength : e.type);
    assert.deepEqual(got, [1, 1024]);
    assert.equal(l.state, "open");
  });

  it("routes by the receiver's id only, as OpenHarmony does", () => {
    const { l, peer } = opened();
    deliver(
      l,
      0,
      peer.normal(12345, US, Uint8Array.of(1)),
      peer.normal(THEM, US + 1, Uint8Array.of(2)),
    );
    assert.deepEqual(events(l).map((e) => e.type === "data" ? [...new Uint8Array(e.data)] : e), [[
      1,
    ]]);
  });

  it("refuses to send an empty message or one over 1024 bytes", () => {
    const { l } = opened();
    assert.throws(() => l.send(US, new Uint8Array(0)), RangeError);
    assert.throws(() => l.send(US, new Uint8Array(1025)), RangeError);
    assert.equal(l.send(US, new Uint8Array(1024)), true);
    assert.equal(l.send(US + 1, new Uint8Array(1)), false);
  });

  it("bounds each connection's send queue and reports drain", () => {
    const { l } = opened();
    let queued = 0;
    while (l.send(US, new Uint8Array(1024))) queued++;
    assert.equal(queued, 64);
    assert.equal(l.bufferedAmount(US), 64 * 1024);
    replies(l, 0);
    assert.deepEqual(events(l), [{ type: "drain", stream: US, owner: "srv" }]);
    assert.equal(l.bufferedAmount(US), 0);
  });

  it("cuts each message into values of MTU - 19 bytes at the MTU of the time it goes out", () => {
    const { l } = opened();
    l.send(US, new Uint8Array(100));
    l.send(US, new Uint8Array(100));
    assert.equal(l.pollTransmit(0)?.bytes.length, 16 + 140);
    l.handleMtu(23, 0);
    const sizes: number[] = [];
    for (let t = l.pollTransmit(0); t; t = l.pollTransmit(0)) sizes.push(t.bytes.length);
    assert.equal(sizes.length, 35);
    assert.deepEqual(new Set(sizes), new Set([20]));
  });

  it("closes a connection with RESET after what was queued; the peer's RESET reports closed", () => {
    const { l, peer } = opened();
    l.send(US, Uint8Array.of(1));
    l.closeStream(US, 0);
    assert.deepEqual(
      replies(l, 0).map((m) => m.general?.msgTypeName),
      ["NORMAL", "RESET"],
    );
    assert.deepEqual(events(l), []);
    deliver(l, 0, peer.handshake(THEM + 1));
    const [open] = events(l);
    assert.ok(open.type === "open");
    l.accept(open.stream, "second");
    deliver(l, 0, peer.reset(THEM + 1, open.stream));
    assert.deepEqual(events(l), [{
      type: "closed",
      stream: open.stream,
      owner: "second",
      reason: DisconnectReason.PEER_DISCONNECTED,
    }]);
  });
});

describe("openharmony link: reference counting", () => {
  it("drops the link at once when the peer's release brings our count to 0", () => {
    const { l, peer } = readyServer();
    deliver(l, 0, peer.rc(1, 1));
    assert.deepEqual(replies(l, 0), []);
    deliver(l, 0, peer.rc(-1, 0));
    assert.equal(l.state, "closed");
  });

  it("answers a release with its own count while it still holds a reference", () => {
    const { l, peer } = readyServer();
    deliver(l, 0, peer.rc(1, 1));
    const s = openedClient(l, peer);
    assert.equal(l.references, 2);
    deliver(l, 0, peer.rc(-1, 0));
    assert.deepEqual(replies(l, 0)[0].control?.json, {
      KEY_METHOD: 1,
      KEY_DELTA: 0,
      KEY_REF_NUM: 1,
      KEY_CHALLENGE: 0,
    });
    assert.equal(l.state, "open");
    assert.equal(l.streamState(s), "open");
  });

  it("with a peer that lacks remote disconnect, drops 200 ms after the last release, silently", () => {
    const { l, peer } = readyClient({ features: 0 });
    const s = openedClient(l, peer);
    l.closeStream(s, 0);
    replies(l, 0);
    advance(l, 100);
    assert.deepEqual(replies(l, 100), []);
    advance(l, 299);
    assert.equal(l.state, "open");
    advance(l, 300);
    assert.equal(l.state, "closed");
  });

  it("stays when the peer takes a reference while we wait for it to close", () => {
    const { l, peer } = readyClient();
    const s = openedClient(l, peer);
    l.closeStream(s, 0);
    advance(l, 100);
    replies(l, 100);
    deliver(l, 200, peer.rc(1, 1));
    advance(l, 60000);
    assert.equal(l.state, "open");
  });
});

describe("openharmony link: bounds", () => {
  it("queues at most 64 KiB of control messages for a flooding peer while nothing is sent", () => {
    const { l, peer } = readyServer();
    deliver(l, 0, peer.rc(1, 1));
    l.open("demo", { now: 0 });
    for (let k = 0; k < 5000; k++) deliver(l, 0, peer.rc(0, 0));
    assert.ok(l.backlog <= OH_CONTROL_BACKLOG_BYTES, `${l.backlog}`);
    assert.ok(l.backlog > OH_CONTROL_BACKLOG_BYTES - 200);
    assert.equal(l.state, "open");
    replies(l, 0);
    assert.equal(l.backlog, 0);
    deliver(l, 0, peer.rc(0, 0));
    assert.equal(replies(l, 0).length, 1);
  });
});

describe("openharmony link: closing and merging", () => {
  it("close() resets every connection, then reports linkClosed once flushed", () => {
    const { l, peer } = readyServer();
    deliver(l, 0, peer.handshake(THEM));
    l.accept(events(l)[0].type === "open" ? US : 0);
    const mine = l.open("demo", { now: 0 });
    replies(l, 0);
    l.close(0);
    assert.equal(l.state, "closing");
    assert.deepEqual(events(l), []);
    const resets = replies(l, 0).filter((m) => m.general?.msgTypeName === "RESET");
    assert.deepEqual(resets.map((m) => m.general?.localId).sort(), [US, mine].sort());
    assert.deepEqual(events(l), [{
      type: "linkClosed",
      reason: DisconnectReason.LINK_CLOSED,
      message: "Link closed",
    }]);
  });

  it("abort() and a lost BLE connection close every connection with -425918060", () => {
    const { l, peer } = readyServer();
    deliver(l, 0, peer.handshake(THEM));
    l.accept(US);
    l.handleDisconnected("out of range");
    const ev = events(l);
    assert.deepEqual(ev.slice(1), [
      { type: "closed", stream: US, owner: undefined, reason: DisconnectReason.LINK_CLOSED },
      { type: "linkClosed", reason: DisconnectReason.LINK_CLOSED, message: "out of range" },
    ]);
  });

  it("reports a MERGE, releases a reference, and moves the connection to the other link", () => {
    const ids = new GeneralIds();
    const p1 = new ScriptedPeer();
    const l1 = link("server", { ids });
    deliver(l1, 0, p1.basicInfo(), p1.rc(1, 1), p1.handshake(0x2c000001));
    l1.accept(events(l1)[0].type === "open" ? US : 0, "moving");
    replies(l1, 0);
    const p2 = new ScriptedPeer();
    const l2 = link("server", { ids });
    deliver(l2, 0, p2.basicInfo(), p2.rc(1, 1), p2.handshake(0x2c000002));
    const [open2] = events(l2);
    assert.ok(open2.type === "open" && open2.stream === US + 1);
    l2.accept(open2.stream);
    replies(l2, 0);
    deliver(l1, 0, p1.merge(0x2c000001, US, US + 1));
    assert.deepEqual(events(l1), [{ type: "merge", stream: US, owner: "moving", into: US + 1 }]);
    assert.equal(replies(l1, 0)[0].control?.json !== undefined, true);
    const moved = l1.release(US);
    assert.ok(moved !== undefined);
    l2.adopt(moved);
    deliver(l2, 1, p2.normal(0x2c000001, US, Uint8Array.of(9)));
    assert.deepEqual(events(l2).map((e) => e.type === "data" ? [e.stream, e.owner] : e), [[
      US,
      "moving",
    ]]);
    assert.equal(l2.send(US, Uint8Array.of(1)), true);
    assert.equal(replies(l2, 1)[0].general?.peerId, 0x2c000001);
    assert.throws(() => l2.adopt(moved), RangeError);
  });

  it("numbers general ids from 0x2C000001, skipping ids in use", () => {
    const ids = new GeneralIds();
    const a = ids.allocate();
    const b = ids.allocate();
    assert.deepEqual([a, b], [0x2c000001, 0x2c000002]);
    for (let k = 0; k < 65533; k++) ids.allocate();
    ids.release(a);
    assert.equal(ids.allocate(), 0x2c000000);
    assert.equal(ids.allocate(), a);
    assert.throws(() => ids.allocate(), RangeError);
  });
});

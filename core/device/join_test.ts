/**
 * Further channels joining an open link, on the virtual network: secure
 * (J1/J2 under the link's join secret) and plain (a `hello` naming the
 * link's nonce pair). A legit join adds a channel both sides use; a forged
 * join, a join proving another link's secret and a replayed J1 are refused,
 * and the link keeps working.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { FRAME_OVERHEAD, FrameType, HEADER_LENGTH } from "../proto/frame.ts";
import { JoinHandshake } from "../proto/handshake/join.ts";
import { encodeHello } from "../proto/handshake/hello.ts";
import { createCodec } from "../../wasm/mod.ts";
import { nodeCrypto } from "../../platform/crypto.ts";
import { linkTo, type VirtualDevice, VirtualNet } from "../../tests/harness/virtual_net.ts";

const A = "02:00:00:00:00:0A";
const B = "02:00:00:00:00:0B";
const C = "02:00:00:00:00:0C";
const ACCOUNT = new Uint8Array(32).fill(7);
const codec = createCodec();

function device(net: VirtualNet, id: string, secure: boolean): VirtualDevice {
  if (!secure) return net.add(id);
  const s = net.secure(id, ACCOUNT);
  return net.add(id, { security: s.security, trust: s.trust });
}

/** `from` connects to `to`'s service and the link comes up. */
function linked(net: VirtualNet, from: VirtualDevice, to: string): void {
  net.connect(from, to, "svc");
  net.run(net.now + 500);
  assert.equal(from.of("opened").length, 1);
}

/** A handshake payload in its CONTROL frame. */
function frame(payload: Uint8Array): Uint8Array {
  return codec.encodeBatch([
    { type: FrameType.CONTROL, stream: 0, seq: 0, total: payload.length, offset: 0, payload },
  ]).slice();
}

/** Send `n` messages on the open stream of `from`; check `to` got them all, in order. */
function carries(net: VirtualNet, from: VirtualDevice, to: VirtualDevice, n: number): void {
  const { link, stream } = from.of("opening").at(-1)!;
  const before = [...to.received.values()].at(-1)?.length ?? 0;
  for (let i = 0; i < n; i++) assert.ok(from.ep.send(link, stream, new Uint8Array(1000).fill(i)));
  net.run(net.now + 2000);
  const got = [...to.received.values()].at(-1)!.slice(before);
  assert.equal(got.length, n);
  got.forEach((m, i) => assert.equal(m[0], i & 0xff));
}

/** Bytes of a J1 (its payload is 97 bytes) in its frame. */
const J1_FRAME = 97 + FRAME_OVERHEAD;

for (const secure of [true, false]) {
  describe(`a further channel joins an open link (${secure ? "secure" : "plain"})`, () => {
    it("both sides add it, use it, and lose it without closing the link", () => {
      const net = new VirtualNet();
      const a = device(net, A, secure);
      const b = device(net, B, secure);
      linked(net, b, A);
      net.join(b, A);
      net.run(net.now + 500);
      const pa = linkTo(a, B)!;
      const pb = linkTo(b, A)!;
      assert.equal(pa.channels.size, 2, "the acceptor added the channel");
      assert.equal(pb.channels.size, 2, "the dialer added the channel");
      assert.equal(a.of("linkUp").length, 1, "no second link");
      carries(net, b, a, 400);
      for (const id of pb.channels) {
        assert.ok(pb.link.channelStats!(id)!.sent > 0, `channel ${id} carried bytes`);
      }
      // Losing the first channel: the link lives on with the joined one.
      const [first] = pb.channels;
      b.ep.handleChannelClosed(first, "cut", net.now);
      net.run(net.now + 6000);
      assert.equal(linkTo(b, A), pb, "the dialer's link lives on");
      assert.equal(linkTo(a, B), pa, "the acceptor's link lives on");
      assert.equal(b.of("linkDown").length, 0);
      carries(net, b, a, 50);
    });

    it("a channel that stays unwritable past a keep-alive ping holds up no work", () => {
      const net = new VirtualNet();
      const a = device(net, A, secure);
      const b = device(net, B, secure);
      linked(net, b, A);
      net.join(b, A);
      net.run(net.now + 500);
      const { link, stream } = b.of("opening").at(-1)!;
      const [first] = linkTo(b, A)!.channels;
      // The driver's write reported backpressure: nothing goes on that
      // channel for longer than the keep-alive ping interval (5000 / 3 ms).
      b.ep.handleWritable(first, false);
      for (let i = 0; i < 200; i++) {
        assert.ok(b.ep.send(link, stream, new Uint8Array(1000).fill(i)));
      }
      net.run(net.now + 2500); // throws when some work never ends
      b.ep.handleWritable(first, true);
      net.run(net.now + 2000);
      const got = [...a.received.values()].at(-1)!;
      assert.equal(got.length, 200);
      got.forEach((m, i) => assert.equal(m[0], i & 0xff));
      assert.equal(linkTo(b, A)!.channels.size, 2, "both channels stay");
    });

    it("a join for no open link is refused; the dialer joins no more", () => {
      const net = new VirtualNet();
      const a = device(net, A, secure);
      const b = device(net, B, secure);
      linked(net, b, A);
      // A forgets the link (as after a restart the dialer has not noticed yet).
      a.ep.dropPeer(B, "test");
      net.join(b, A);
      net.run(net.now + 200);
      assert.ok(
        a.warnings.some((w) => /refused a channel's join/.test(w)) ||
          b.warnings.some((w) => /did not take a further channel/.test(w)),
        [...a.warnings, ...b.warnings].join("; "),
      );
      assert.equal(linkTo(a, B)?.channels.size ?? 0, 0);
    });
  });
}

describe("secure joins an attacker makes", () => {
  /** A and B linked; C linked to A too; the J1 of a legit join of B recorded. */
  function setup() {
    const net = new VirtualNet();
    const a = device(net, A, true);
    const b = device(net, B, true);
    const c = device(net, C, true);
    linked(net, b, A);
    linked(net, c, A);
    const seen: Uint8Array[] = [];
    net.tamper = (from, to, bytes) => {
      if (from === b && to === a) seen.push(bytes.slice());
      return bytes;
    };
    net.join(b, A);
    net.run(net.now + 500);
    net.tamper = (_f, _t, bytes) => bytes;
    assert.equal(linkTo(a, B)!.channels.size, 2, "the legit join was taken");
    // The first bytes B sent after the join: its J1 frame.
    const j1 = seen.find((f) => f.length === J1_FRAME && f[HEADER_LENGTH] === 0x14)!;
    return { net, a, b, c, j1 };
  }

  function refused(net: VirtualNet, a: VirtualDevice, bytes: Uint8Array, why: RegExp): void {
    const before = linkTo(a, B)!.channels.size;
    const id = net.inject(a, bytes);
    net.run(net.now + 100);
    assert.ok(
      a.of("closeChannel").some((e) => e.channel === id),
      "the attacker's channel is closed",
    );
    assert.equal(linkTo(a, B)!.channels.size, before, "no channel joined");
    assert.ok(a.warnings.some((w) => why.test(w)), a.warnings.join("; "));
  }

  it("refuses a replayed J1", () => {
    const { net, a, b, j1 } = setup();
    assert.ok(j1 !== undefined, "recorded a J1");
    refused(net, a, j1, /replayed/);
    carries(net, b, a, 100);
  });

  it("refuses a forged J1 (its proof changed)", () => {
    const { net, a, b, j1 } = setup();
    // Its random part changed, the proof kept (framed again, so the frame's CRC holds).
    const payload = j1.slice(HEADER_LENGTH, HEADER_LENGTH + 97);
    payload[60] ^= 0x55;
    refused(net, a, frame(payload), /does not prove the link's secret/);
    carries(net, b, a, 100);
  });

  it("refuses a join that proves another link's secret", () => {
    const { net, a, b, c } = setup();
    const ofB = linkTo(a, B)!.keys!;
    const ofC = linkTo(c, A)!.keys!;
    // C knows its own link's secret and names B's link.
    const j1 = new JoinHandshake("dialer", nodeCrypto(), {
      joinSecret: ofC.joinSecret,
      linkId: ofB.linkId,
      cipher: ofC.tx.cipher,
    }).start();
    refused(net, a, frame(j1), /does not prove the link's secret/);
    carries(net, b, a, 100);
  });

  it("refuses a J1 naming no link", () => {
    const { net, a, b } = setup();
    const j1 = new JoinHandshake("dialer", nodeCrypto(), {
      joinSecret: new Uint8Array(32).fill(9),
      linkId: new Uint8Array(16).fill(9),
      cipher: 1,
    }).start();
    refused(net, a, frame(j1), /names no open link/);
    carries(net, b, a, 100);
  });
});

describe("plain joins", () => {
  it("a hello naming the wrong nonce pair is refused", () => {
    const net = new VirtualNet();
    const a = device(net, A, false);
    const b = device(net, B, false);
    linked(net, b, A);
    const wrong = encodeHello(codec, { op: "hello", id: B, nonce: b.ep.nonce, join: "other" });
    const id = net.inject(a, wrong);
    net.run(net.now + 100);
    assert.ok(a.of("closeChannel").some((e) => e.channel === id));
    assert.equal(linkTo(a, B)!.channels.size, 1);
    assert.ok(a.warnings.some((w) => /names no open link/.test(w)), a.warnings.join("; "));
    const right = encodeHello(codec, { op: "hello", id: B, nonce: b.ep.nonce, join: a.ep.nonce });
    net.inject(a, right);
    net.run(net.now + 10);
    assert.equal(linkTo(a, B)!.channels.size, 2, "the right nonce pair joins");
  });
});

describe("a link that wants more channels", () => {
  it("joins them when it comes up and replaces a lost one, the link never down", () => {
    const net = new VirtualNet();
    const a = device(net, A, true);
    const b = device(net, B, true);
    linked(net, b, A);
    b.ep.wantChannels(A, 3, net.now);
    net.run(net.now + 500);
    const pb = linkTo(b, A)!;
    assert.equal(pb.channels.size, 3, "two joins");
    assert.equal(linkTo(a, B)!.channels.size, 3);
    // A channel lost: another takes its place after a pause, the link never down.
    const [, second] = pb.channels;
    b.ep.handleChannelClosed(second, "cut", net.now);
    net.run(net.now + 100);
    assert.equal(pb.channels.size, 2, "not at once");
    net.run(net.now + 2000);
    assert.equal(pb.channels.size, 3, "replaced");
    assert.equal(linkTo(b, A), pb);
    assert.equal(b.of("linkDown").length, 0);
    carries(net, b, a, 100);
  });

  it("stops asking once the peer refused a join; the link keeps its channels", () => {
    const net = new VirtualNet();
    const a = device(net, A, true);
    const b = device(net, B, true);
    linked(net, b, A);
    // Every J1 arrives changed: A refuses it (it does not prove the link's secret).
    net.tamper = (from, _to, bytes) => {
      if (from !== b || bytes.length !== J1_FRAME || bytes[HEADER_LENGTH] !== 0x14) return bytes;
      const changed = bytes.slice();
      changed[HEADER_LENGTH + 60] ^= 1;
      return frame(changed.slice(HEADER_LENGTH, HEADER_LENGTH + 97));
    };
    b.ep.wantChannels(A, 2, net.now);
    net.run(net.now + 5000);
    const joins = () => b.of("dial").filter((e) => e.join !== undefined).length;
    assert.equal(joins(), 1, "one join, refused, not tried again");
    assert.ok(b.warnings.some((w) => /did not take a further channel/.test(w)), b.warnings.join());
    assert.equal(linkTo(b, A)!.channels.size, 1);
    net.tamper = (_f, _t, bytes) => bytes;
    b.ep.wantChannels(A, 3, net.now); // asked again: still no join
    net.run(net.now + 5000);
    carries(net, b, a, 50);
    assert.equal(joins(), 1);
  });

  it("a link the peer dialled opens no channel of its own", () => {
    const net = new VirtualNet();
    const a = device(net, A, false);
    const b = device(net, B, false);
    linked(net, b, A);
    a.ep.wantChannels(B, 3, net.now);
    net.run(net.now + 500);
    assert.equal(linkTo(a, B)!.channels.size, 1);
  });
});

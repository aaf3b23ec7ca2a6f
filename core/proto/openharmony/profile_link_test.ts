/**
 * The `openharmony` profile behind the endpoint's link interface: its channel
 * records, and linkEnhance's flows (connect, data, refusal, close, link loss)
 * between two endpoints on a virtual network, in virtual time.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ErrorCode } from "../../error_codes.ts";
import { DisconnectReason } from "../../error_codes.ts";
import { VirtualNet } from "../../../tests/harness/virtual_net.ts";
import {
  encodeMtuRecord,
  encodeUpRecord,
  encodeValueRecord,
  type GattRecord,
  GattRecordReader,
  MAX_RECORD_BYTES,
} from "./gatt_records.ts";
import { OhProfileLink, ProfileIds } from "./profile_link.ts";
import { decodeTransHeader, type TransHeader } from "./wire.ts";

const A = "00:00:00:00:00:0A";
const B = "00:00:00:00:00:0B";
const BUNDLE = "com.example.demo";

function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2 ** 32;
  };
}

describe("openharmony channel records", () => {
  it("come out whole and in order however the stream is cut", () => {
    const random = rng(7);
    const sent: GattRecord[] = [];
    const parts: Uint8Array[] = [encodeUpRecord(2, 185)];
    sent.push({ type: "up", role: 2, mtu: 185 });
    for (let i = 0; i < 200; i++) {
      const kind = random();
      if (kind < 0.05) {
        const mtu = 23 + Math.floor(random() * 500);
        parts.push(encodeMtuRecord(mtu));
        sent.push({ type: "mtu", mtu });
      } else {
        const value = Uint8Array.from(
          { length: Math.floor(random() * 600) },
          () => Math.floor(random() * 256),
        );
        const char = kind < 0.5 ? "2B00" : "2B01";
        parts.push(encodeValueRecord(char, value));
        sent.push({ type: "value", char, value });
      }
    }
    const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      all.set(p, at);
      at += p.length;
    }
    for (let trial = 0; trial < 20; trial++) {
      const got: GattRecord[] = [];
      const reader = new GattRecordReader();
      for (let i = 0; i < all.length;) {
        const n = 1 + Math.floor(random() * (trial < 10 ? 7 : 900));
        reader.push(all.subarray(i, i + n), (r) => {
          got.push(r.type === "value" ? { ...r, value: r.value.slice() } : r);
          assert.ok(reader.buffered <= MAX_RECORD_BYTES);
        });
        i += n;
      }
      assert.deepEqual(got, sent);
      assert.equal(reader.buffered, 0);
    }
  });

  it("skip unknown types and stop at a malformed known one", () => {
    const got: GattRecord[] = [];
    const reader = new GattRecordReader();
    reader.push(new Uint8Array([0x7f, 0, 2, 9, 9, 0x11, 0, 2, 0, 185]), (r) => got.push(r));
    assert.deepEqual(got, [{ type: "mtu", mtu: 185 }]);
    reader.push(new Uint8Array([0x10, 0, 3, 7, 0, 23, 0x00, 0, 1, 5]), (r) => got.push(r));
    assert.equal(got.length, 1, "nothing after a bad up record");
    assert.match(reader.problem ?? "", /malformed up record/);
  });

  it("refuse bodies and MTUs that do not fit", () => {
    assert.throws(() => encodeValueRecord("2B01", new Uint8Array(65536)), RangeError);
    assert.throws(() => encodeUpRecord(1, 70000), RangeError);
  });
});

/** A profile link whose channel says it is up as soon as it is added (what the transport does). */
function factory(role: (peer: string) => 1 | 2, log: OhProfileLink[]) {
  const ids = new ProfileIds();
  return (peer: string, _now: number) => {
    const link = new OhProfileLink({ peerId: peer, bundleName: BUNDLE, ids });
    const add = link.addChannel.bind(link);
    link.addChannel = (id, o) => {
      add(id, o);
      link.handleBytes(id, encodeUpRecord(role(peer), 185), o.now);
    };
    log.push(link);
    return link;
  };
}

function pair(latency = 2) {
  const links: OhProfileLink[] = [];
  // A dials B: A is the GATT client.
  const profiles = { openharmony: factory((peer) => (peer === B ? 1 : 2), links) };
  const net = new VirtualNet({ latency, endpoint: { profiles } });
  const a = net.add(A);
  const b = net.add(B);
  a.profileFor = () => "openharmony";
  return { net, a, b, links };
}

describe("the openharmony profile in the endpoint", () => {
  it("connects, carries data both ways, and closes as OpenHarmony does", () => {
    const { net, a, b, links } = pair();
    const req = net.connect(a, B, "demo");
    net.run(net.now + 1000);
    assert.equal(links.length, 2, "one link per side, no linkweave handshake");
    assert.equal(a.of("opened").length, 1);
    assert.equal(a.of("opened")[0].owner, req);
    const open = b.of("open")[0];
    assert.equal(open.name, "demo");
    assert.equal(open.bundle, BUNDLE, "the device's bundle name went in the HANDSHAKE");
    const { link, stream } = a.of("opening")[0];
    assert.ok(stream >= 0x2c000001, "streams are OpenHarmony's general ids");
    assert.ok(a.ep.send(link, stream, new Uint8Array([1, 2, 3])));
    net.run(net.now + 100);
    assert.deepEqual([...b.received.values()][0], [new Uint8Array([1, 2, 3])]);
    // The server answers on the accepted stream.
    const back = b.ep.links.get(A)!;
    assert.ok(b.ep.send(back, open.stream, new Uint8Array(1024).fill(7)));
    net.run(net.now + 100);
    assert.deepEqual(a.received.get(req), [new Uint8Array(1024).fill(7)]);
    // A closes its connection: B's side ends with "peer closed", then the
    // reference count closes the BLE link after OpenHarmony's delays.
    a.ep.closeStream(link, stream);
    net.run(net.now + 500);
    const closed = b.of("closed");
    assert.equal(closed.length, 1);
    assert.equal(closed[0].reason, DisconnectReason.PEER_DISCONNECTED);
    net.run(net.now + 7000);
    assert.equal(a.ep.links.size, 0, "the last reference closed the link");
    assert.equal(b.ep.links.size, 0);
    assert.deepEqual(a.warnings, []);
  });

  it("a peer without the server refuses with OpenHarmony's code", () => {
    const { net, a, b } = pair();
    b.acceptor = () => ErrorCode.PEER_SERVER_NOT_STARTED;
    const req = net.connect(a, B, "nobody");
    net.run(net.now + 1000);
    assert.deepEqual(
      a.of("rejected").map((e) => [e.owner, e.code]),
      [[req, ErrorCode.PEER_SERVER_NOT_STARTED]],
    );
  });

  it("a lost BLE connection ends every connection with the link-closed reason", () => {
    const { net, a, b } = pair();
    const req = net.connect(a, B, "demo");
    net.run(net.now + 1000);
    assert.equal(a.of("opened").length, 1);
    net.kill(b);
    net.run(net.now + 100);
    const closed = a.of("closed");
    assert.deepEqual(closed.map((e) => [e.owner, e.reason]), [[req, DisconnectReason.LINK_CLOSED]]);
    assert.equal(a.of("linkDown").length, 1);
  });

  it("connections opened before the BLE connection is up go out once it is", () => {
    const link = new OhProfileLink({ peerId: B, bundleName: BUNDLE });
    link.addChannel(1, { now: 0 });
    const s1 = link.open("one", { owner: "o1" });
    const s2 = link.open("two", { owner: "o2" });
    assert.notEqual(s1, s2);
    assert.equal(link.streams, 2);
    assert.equal(link.pollTransmit(0), undefined, "nothing before the up record");
    link.handleBytes(1, encodeUpRecord(1, 185), 0);
    assert.equal(link.machine?.role, "client");
    assert.equal(link.machine?.mtu, 185);
    assert.equal(link.machine?.streamState(s1), "opening");
    assert.equal(link.machine?.streamState(s2), "opening");
    // Basic info first, on 2B00.
    const t = link.pollTransmit(0)!;
    const got: GattRecord[] = [];
    new GattRecordReader().push(t.bytes, (r) => got.push(r));
    assert.ok(got[0].type === "value" && got[0].char === "2B00");
    const head = decodeTransHeader((got[0] as { value: Uint8Array }).value) as TransHeader;
    assert.equal(head.seq, 0);
  });

  it("closing before the BLE connection is up ends the waiting connections", () => {
    const link = new OhProfileLink({ peerId: B, bundleName: BUNDLE });
    link.addChannel(1, { now: 0 });
    const s = link.open("one", { owner: "o1" });
    link.close();
    assert.deepEqual(link.pollEvent(), {
      type: "closed",
      stream: s,
      owner: "o1",
      reason: DisconnectReason.LINK_CLOSED,
    });
    assert.equal(link.pollEvent()?.type, "linkClosed");
    assert.equal(link.state, "closed");
  });

  it("bad channel bytes drop the link; an MTU record reaches the machine", () => {
    const link = new OhProfileLink({ peerId: B, bundleName: BUNDLE });
    link.addChannel(1, { now: 0 });
    link.handleBytes(1, encodeUpRecord(2, 23), 0);
    link.handleBytes(1, encodeMtuRecord(247), 1);
    assert.equal(link.machine?.mtu, 247);
    const other = new OhProfileLink({ peerId: B, bundleName: BUNDLE });
    other.addChannel(1, { now: 0 });
    other.handleBytes(1, encodeValueRecord("2B01", new Uint8Array(20)), 0);
    assert.equal(other.state, "closed");
    const e = other.pollEvent();
    assert.ok(e?.type === "linkClosed" && /before the connection was up/.test(e.message));
  });

  it("a second channel for the same peer carries nothing", () => {
    const link = new OhProfileLink({ peerId: B, bundleName: BUNDLE });
    link.addChannel(1, { now: 0 });
    link.handleBytes(1, encodeUpRecord(1, 185), 0);
    link.addChannel(2, { now: 0 });
    link.handleBytes(2, encodeUpRecord(2, 185), 0);
    assert.equal(link.machine?.role, "client");
    link.handleChannelClosed(2, "gone");
    assert.equal(link.state, "open");
    const t = link.pollTransmit(0);
    assert.equal(t?.channel, 1);
    const rec: GattRecord[] = [];
    new GattRecordReader().push(t!.bytes, (r) => rec.push(r));
    assert.ok(rec[0].type === "value" && rec[0].char === "2B00", "basic info, on channel 1");
    assert.equal(link.pollTransmit(0), undefined);
  });
});

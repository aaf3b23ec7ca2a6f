import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DisconnectReason, ErrorCode } from "../../error_codes.ts";
import { acceptAll, Pair } from "../../../tests/harness/link_pair.ts";
import { type Codec, createCodec } from "../../../wasm/mod.ts";
import { FRAME_OVERHEAD, FrameType } from "../frame.ts";
import { nativeCrc } from "../../../platform/crc.ts";
import type { LinkEvent } from "./mod.ts";
import { encodeControl } from "./control.ts";

function bytes(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed * 7) & 0xff;
  return b;
}

function data(events: LinkEvent[], stream?: number): Uint8Array[] {
  return events.flatMap((e) =>
    e.type === "data" && (stream === undefined || e.stream === stream)
      ? [new Uint8Array(e.data)]
      : []
  );
}

/** Bytes of the DATA frames in a write (an acknowledgement may ride along). */
function dataBytes(codec: Codec, bytes: Uint8Array): number {
  let n = 0;
  codec.createDecoder().push(bytes, (f) => {
    if (f.type === FrameType.DATA) n += f.length + FRAME_OVERHEAD;
  });
  return n;
}

function openPair(pair: Pair, name = "demo"): number {
  acceptAll(pair);
  const s = pair.a.open(name);
  pair.run(pair.now + 100);
  assert.ok(pair.eventsA.some((e) => e.type === "opened" && e.stream === s));
  return s;
}

for (const engine of ["wasm", "reference"] as const) {
  describe(`link (${engine} codec)`, () => {
    const codec = createCodec({ engine, crc: nativeCrc() });

    it("opens a stream by name, both sides send, data arrives in order and intact", () => {
      const pair = new Pair({ codec, channels: [{ mtu: 64, latency: 3 }] });
      acceptAll(pair);
      const s = pair.a.open("Demo");
      pair.run(pair.now + 50);
      assert.deepEqual(pair.eventsB[0], {
        type: "open",
        link: undefined,
        stream: s,
        name: "Demo",
        kind: 0,
        bundle: "",
      });
      assert.deepEqual(pair.eventsA[0], { type: "opened", stream: s, owner: undefined });
      const sent: Uint8Array[] = [];
      for (let i = 0; i < 50; i++) {
        sent.push(bytes(i * 37, i));
        assert.ok(pair.a.send(s, sent[i]));
        assert.ok(pair.b.send(s, sent[i]));
      }
      pair.run(pair.now + 1000);
      assert.deepEqual(data(pair.eventsB, s), sent);
      assert.deepEqual(data(pair.eventsA, s), sent);
    });

    it("gives the lower id odd stream ids and the higher id even ones", () => {
      const pair = new Pair({ codec });
      acceptAll(pair);
      const a1 = pair.a.open("x");
      const b1 = pair.b.open("x");
      const a2 = pair.a.open("y");
      pair.run(pair.now + 50);
      assert.deepEqual([a1, a2, b1], [1, 3, 2]);
      assert.equal(pair.a.streams, 3);
      assert.equal(pair.b.streams, 3);
    });

    it("reports a rejected open with the peer's code", () => {
      const pair = new Pair({ codec });
      pair.onEvent = (side, e) => {
        if (side === "b" && e.type === "open") {
          pair.b.reject(e.stream, ErrorCode.PEER_SERVER_NOT_STARTED);
        }
      };
      const s = pair.a.open("nobody");
      pair.run(pair.now + 50);
      assert.deepEqual(pair.eventsA, [{
        type: "rejected",
        stream: s,
        owner: undefined,
        code: 32390201,
      }]);
      assert.equal(pair.a.streams, 0);
      assert.equal(pair.b.streams, 0);
    });

    it("closes gracefully: queued data reaches the peer before it sees closed", () => {
      const pair = new Pair({ codec, channels: [{ latency: 5, rate: 100 }] });
      const s = openPair(pair);
      for (let i = 0; i < 20; i++) pair.a.send(s, bytes(1024, i));
      pair.a.closeStream(s);
      assert.equal(pair.a.send(s, bytes(1, 0)), false, "no send after close");
      pair.run(pair.now + 2000);
      const got = pair.eventsB.filter((e) => "stream" in e && e.stream === s && e.type !== "open");
      assert.equal(got.length, 21);
      assert.deepEqual(got[20], {
        type: "closed",
        owner: undefined,
        stream: s,
        reason: DisconnectReason.PEER_DISCONNECTED,
      });
      assert.ok(!pair.eventsA.some((e) => e.type === "closed"), "no local closed event");
      assert.equal(pair.a.streams, 0);
      assert.equal(pair.b.streams, 0);
    });

    it("bounds the send queue, reports bufferedAmount and emits drain", () => {
      const pair = new Pair({
        codec,
        window: 4096,
        sendQueueBytes: 8192,
        channels: [{ rate: 10, latency: 2 }],
      });
      const s = openPair(pair);
      let accepted = 0;
      while (pair.a.send(s, bytes(1024, accepted))) accepted++;
      assert.equal(accepted, 8);
      assert.equal(pair.a.bufferedAmount(s), 8192);
      pair.run(pair.now + 10_000);
      assert.equal(pair.a.bufferedAmount(s), 0);
      assert.ok(pair.eventsA.some((e) => e.type === "drain" && e.stream === s));
      assert.equal(data(pair.eventsB, s).length, 8);
    });

    it("never lets a sender run more than a window ahead of the receiver", () => {
      const pair = new Pair({ codec, window: 4096, channels: [{ latency: 50 }] });
      const s = openPair(pair);
      for (let i = 0; i < 64; i++) pair.a.send(s, bytes(512, i));
      const tx = pair.a.pollTransmit(pair.now);
      assert.ok(tx !== undefined);
      const sent = dataBytes(codec, tx.bytes);
      assert.ok(sent <= 4096 + 8 * 22, `first batch ${sent} B of data frames`);
      assert.equal(pair.a.pollTransmit(pair.now), undefined, "blocked on credit");
    });

    it("coalesces messages of many streams into one write", () => {
      const pair = new Pair({ codec });
      acceptAll(pair);
      const streams = Array.from({ length: 10 }, (_, i) => pair.a.open(`s${i}`));
      pair.run(pair.now + 50);
      for (const s of streams) for (let i = 0; i < 10; i++) pair.a.send(s, bytes(100, i));
      const tx = pair.a.pollTransmit(pair.now);
      assert.equal(dataBytes(codec, tx!.bytes), 100 * (100 + 22));
      assert.equal(pair.a.pollTransmit(pair.now), undefined);
    });

    it("shares a slow channel fairly between busy streams", () => {
      const pair = new Pair({ codec, channels: [{ rate: 100, latency: 1 }], maxBatchBytes: 8192 });
      acceptAll(pair);
      const streams = Array.from({ length: 5 }, (_, i) => pair.a.open(`s${i}`));
      pair.run(pair.now + 50);
      for (const s of streams) for (let i = 0; i < 400; i++) pair.a.send(s, bytes(1024, i));
      pair.run(pair.now + 2000);
      const counts = streams.map((s) => data(pair.eventsB, s).length);
      const sum = counts.reduce((x, y) => x + y, 0);
      const jain = sum ** 2 / (counts.length * counts.reduce((x, y) => x + y * y, 0));
      assert.ok(sum > 50, `${sum} messages`);
      assert.ok(jain >= 0.95, `Jain ${jain} for ${counts}`);
    });

    it("stripes over two channels of different latency and merges back in order", () => {
      const pair = new Pair({
        codec,
        maxBatchBytes: 2048,
        channels: [{ latency: 1, mtu: 300, rate: 100 }, { latency: 40, mtu: 1500, rate: 100 }],
      });
      const s = openPair(pair);
      const sent = Array.from({ length: 200 }, (_, i) => bytes(200 + (i % 7) * 300, i));
      for (const m of sent) pair.a.send(s, m);
      const before = [...pair.writes];
      pair.run(pair.now + 20_000);
      assert.deepEqual(data(pair.eventsB, s), sent);
      assert.ok(pair.writes.every((w, i) => w - before[i] > 10), `writes ${pair.writes}`);
    });

    it("sends everything on the faster channel when it alone drains the backlog soonest", () => {
      const pair = new Pair({ codec, channels: [{ latency: 1 }, { latency: 40 }] });
      const s = openPair(pair);
      const sent = Array.from({ length: 200 }, (_, i) => bytes(200 + (i % 7) * 300, i));
      for (const m of sent) pair.a.send(s, m);
      pair.run(pair.now + 2000);
      assert.deepEqual(data(pair.eventsB, s), sent);
      assert.ok(
        pair.a.channelStats(2)!.sent < 200,
        `slow channel carried ${pair.a.channelStats(2)!.sent} B`,
      );
    });

    it("keeps an idle link alive with pings", () => {
      const pair = new Pair({ codec, keepAliveTimeout: 5000 });
      openPair(pair);
      pair.run(pair.now + 60_000);
      assert.equal(pair.a.state, "open");
      assert.equal(pair.b.state, "open");
    });

    it("detects a frozen peer within the keep-alive timeout", () => {
      const pair = new Pair({ codec, keepAliveTimeout: 5000 });
      const s = openPair(pair);
      const frozenAt = pair.now;
      pair.frozen.b = true;
      pair.a.send(s, bytes(10, 1));
      pair.run(pair.now + 20_000);
      const closedAt = pair.now;
      assert.equal(pair.a.state, "closed");
      const closed = pair.eventsA.find((e) => e.type === "closed");
      assert.deepEqual(closed, {
        type: "closed",
        stream: s,
        owner: undefined,
        reason: DisconnectReason.LINK_CLOSED,
      });
      const lost = pair.eventsA.at(-1);
      assert.ok(lost?.type === "linkClosed" && /silent/.test(lost.message), JSON.stringify(lost));
      assert.ok(closedAt - frozenAt <= 20_000);
    });

    it("detects a silently cut channel on both sides within the keep-alive timeout", () => {
      const pair = new Pair({ codec, keepAliveTimeout: 3000 });
      openPair(pair);
      const cutAt = pair.now;
      pair.cut(1);
      let lostA = -1;
      let lostB = -1;
      pair.onEvent = (side, e) => {
        if (e.type === "linkClosed") side === "a" ? lostA = pair.now : lostB = pair.now;
      };
      pair.run(pair.now + 10_000);
      assert.ok(lostA > cutAt && lostA - cutAt <= 3000, `A after ${lostA - cutAt} ms`);
      assert.ok(lostB > cutAt && lostB - cutAt <= 3000, `B after ${lostB - cutAt} ms`);
    });

    it("survives the loss of a channel, and closes with the last one, reporting every stream", () => {
      const pair = new Pair({ codec, channels: [{}, {}] });
      const s1 = openPair(pair, "one");
      const s2 = pair.b.open("two");
      pair.run(pair.now + 50);
      pair.closeChannel(2);
      pair.run(pair.now + 50);
      for (const link of [pair.a, pair.b]) assert.equal(link.state, "open");
      assert.ok(!pair.eventsA.some((e) => e.type === "closed"));
      pair.closeChannel(1);
      for (const events of [pair.eventsA, pair.eventsB]) {
        const closed = events.flatMap((e) => e.type === "closed" ? [e.stream] : []).sort();
        assert.deepEqual(closed, [s1, s2].sort());
        assert.equal(events.at(-1)?.type, "linkClosed");
      }
    });

    it("closes the whole link gracefully", () => {
      const pair = new Pair({ codec });
      const s = openPair(pair);
      pair.a.send(s, bytes(3000, 1));
      pair.a.close();
      pair.run(pair.now + 1000);
      assert.equal(data(pair.eventsB, s).length, 1);
      assert.equal(pair.a.state, "closed");
      assert.equal(pair.b.state, "closed");
      assert.equal(pair.eventsB.at(-1)?.type, "linkClosed");
      // The side that closed hears that its stream ended with the link.
      const closed = pair.eventsA.filter((e) => e.type === "closed");
      assert.deepEqual(closed, [{
        type: "closed",
        stream: s,
        owner: undefined,
        reason: DisconnectReason.LINK_CLOSED,
      }]);
    });

    it("breaks the link on garbage and on a bad open, never throwing", () => {
      const pair = new Pair({ codec });
      pair.a.handleBytes(
        1,
        new Uint8Array([1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 5]),
        0,
      );
      pair.a.handleBytes(1, bytes(100, 3), 0);
      assert.equal(pair.a.state, "closed");
      // Said first as a protocol error of the link (stream 0), which the device logs.
      const said = pair.a.pollEvent();
      assert.ok(said?.type === "protocolError" && said.stream === 0, JSON.stringify(said));
      const e = pair.a.pollEvent();
      assert.ok(e?.type === "linkClosed" && /broken/.test(e.message));
      assert.equal(e.message, said.message);
      // An open with the wrong parity (A may only open odd ids; B sees one).
      const other = new Pair({ codec });
      const enc = codec.encodeBatch([{
        type: 1,
        stream: 2,
        seq: 0,
        total: 2,
        offset: 0,
        payload: new Uint8Array([99, 0]),
      }]).slice();
      other.b.handleBytes(1, enc, 0);
      assert.equal(other.b.state, "open", "an unknown control operation is ignored");
      const open = encodeControl({ op: "open", window: 1, kind: 0, name: "x", bundle: "" });
      other.b.handleBytes(
        1,
        codec.encodeBatch([{
          type: 1,
          stream: 2,
          seq: 0,
          total: open.length,
          offset: 0,
          payload: open,
        }])
          .slice(),
        0,
      );
      assert.equal(other.b.state, "closed");
    });
  });
}

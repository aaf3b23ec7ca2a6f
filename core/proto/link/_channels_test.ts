import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createCodec } from "../../../wasm/mod.ts";
import { nativeCrc } from "../../../platform/crc.ts";
import { FRAME_OVERHEAD, FrameType } from "../frame.ts";
import { LinkChannel } from "./_channels.ts";

const codec = createCodec({ crc: nativeCrc() });

function channel(lost: string[] = []): LinkChannel {
  return new LinkChannel({
    id: 1,
    mtu: 65535,
    decoder: codec.createDecoder(),
    onFrame: () => {},
    lose: (why) => lost.push(why),
    now: 0,
    floor: 64 * 1024,
    ceiling: 1024 * 1024,
  });
}

/** The bytes of an ACK frame for `count`. */
function ack(count: number): Uint8Array {
  return codec.encodeBatch([{
    type: FrameType.ACK,
    stream: 0,
    seq: count % 2 ** 32,
    total: 0,
    offset: 0,
    payload: new Uint8Array(0),
  }]).slice();
}

describe("link channel accounting", () => {
  it("takes an ask as answered once the acknowledgement covers the PING, not the whole batch", () => {
    const ch = channel();
    ch.asked(10_000); // a PING ends 10 000 bytes into a 50 000-byte batch
    ch.sent(50_000, 0, false);
    assert.equal(ch.askPending, true);
    ch.read(ack(10_000), 1); // the peer read up to the PING's slice and answered
    assert.equal(ch.askPending, false);
    assert.equal(ch.stats.inFlight, 40_000);
  });

  it("counts the lowest number of every unacknowledged write made before copies were kept", () => {
    // Alone, the channel wrote new frames (numbers 100..) and then a lost channel's frames again
    // (numbers 40..): once copies are kept (a join), the lowest number not known to have arrived
    // is 40, or the link would number frames SEQ_WINDOW past one the peer lacks.
    const ch = channel();
    ch.sent(1000, 0, false, 100);
    ch.sent(1000, 1, false, 40);
    ch.sent(1000, 2, false, 120);
    ch.startRetaining();
    assert.equal(ch.unretained, true);
    assert.equal(ch.lowestUnacked(), 40);
    ch.read(ack(3000), 3);
    assert.equal(ch.unretained, false);
    assert.equal(ch.lowestUnacked(), Infinity);
  });

  it("measures round trips and the delivery rate from acknowledgements, and sizes the budget", () => {
    const ch = channel();
    // A path of 100 bytes per ms with 10 ms of round trip, kept full.
    let t = 0;
    let acked = 0;
    for (let i = 0; i < 200; i++) {
      if (t >= 10) {
        acked += 1000;
        ch.read(ack(acked), t);
      }
      ch.sent(1000, t, false); // each acknowledgement lets the next write go
      t += 10;
    }
    const st = ch.stats;
    assert.equal(st.minRtt, 10);
    assert.ok(Math.abs(st.rate - 100) < 1, `rate ${st.rate}`);
    assert.equal(st.budget, 64 * 1024, "below the floor: the floor");
  });

  it("counts acknowledgements modulo 2^32 and breaks the link on one beyond what was sent", () => {
    const lost: string[] = [];
    const ch = channel(lost);
    ch.sent(2 ** 31, 0, false);
    ch.read(ack(2 ** 31), 1);
    ch.sent(2 ** 31 + 5000, 1, false);
    ch.read(ack(2 ** 32), 2); // seq 0: the count wrapped
    assert.equal(ch.stats.acked, 2 ** 32);
    const big = 2 ** 32 + 5000;
    ch.read(ack(big), 3); // seq 5000
    assert.equal(ch.stats.acked, big);
    assert.deepEqual(lost, []);
    ch.read(ack(big + 1), 4);
    assert.equal(lost.length, 1);
    assert.match(
      lost[0],
      /acknowledged 4294972297 bytes on channel 1, more than the 4294972296 sent/,
    );
  });

  it("counts what it reads, ACKs aside, and owes an acknowledgement a PING asked for", () => {
    const ch = channel();
    const ping = codec.encodeBatch([{
      type: FrameType.PING,
      stream: 0,
      seq: 0,
      total: 0,
      offset: 0,
      payload: new Uint8Array(0),
    }]).slice();
    ch.read(ack(0), 0);
    assert.equal(ch.ackDue, false, "an ACK calls for no ACK");
    ch.read(ping, 0);
    assert.equal(ch.stats.received, FRAME_OVERHEAD);
    assert.equal(ch.ackDue, true);
    assert.equal(ch.ackAsked, true);
    assert.equal(ch.ack().seq, FRAME_OVERHEAD);
    assert.equal(ch.ackAsked, false);
  });
});

/**
 * What a hostile peer can make a link hold, and what it can break: frames
 * crafted by hand (not by a well-behaved link) are fed to a victim link.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createCodec } from "../../../wasm/mod.ts";
import { nativeCrc } from "../../../platform/crc.ts";
import { DisconnectReason, ErrorCode } from "../../error_codes.ts";
import { type FrameInit, FrameType } from "../frame.ts";
import { decodeControl, encodeControl } from "./control.ts";
import {
  HELD_OVERHEAD,
  Link,
  type LinkEvent,
  type LinkOptions,
  MAX_UNSENT_ANSWERS,
  maxHeld,
  SEQ_WINDOW,
} from "./mod.ts";

const codec = createCodec({ crc: nativeCrc() });
const VICTIM = "00:00:00:00:00:0B";
const ATTACKER = "00:00:00:00:00:0A"; // lower id: opens odd stream ids
const { DATA, CONTROL } = FrameType;

/** A victim link and a hand that writes raw frames to it. */
function victim(options: Partial<LinkOptions> & { accept?: boolean } = {}) {
  const link = new Link({ localId: VICTIM, peerId: ATTACKER, codec, now: 0, ...options });
  link.addChannel(1, { now: 0 });
  const events: LinkEvent[] = [];
  const sent: FrameInit[] = [];
  const feed = (frames: FrameInit[]) => {
    link.handleBytes(1, codec.encodeBatch(frames).slice(), 0);
    for (let e = link.pollEvent(); e; e = link.pollEvent()) {
      events.push(e);
      if (e.type === "open" && options.accept !== false) {
        link.accept(e.stream, `owner ${e.stream}`, options.maxMessageSize);
      }
    }
    // What the victim answers (accepts, credit, resets, refusals).
    for (let t = link.pollTransmit(0); t; t = link.pollTransmit(0)) {
      codec.createDecoder().push(t.bytes, (f) => sent.push({ ...f, payload: f.payload.slice() }));
    }
    for (let e = link.pollEvent(); e; e = link.pollEvent()) events.push(e);
  };
  const open = (stream: number, name = "svc") => {
    const payload = encodeControl({ op: "open", window: 1 << 20, kind: 0, name, bundle: "" });
    feed([{ type: CONTROL, stream, seq: 0, total: payload.length, offset: 0, payload }]);
  };
  return { link, events, sent, feed, open };
}

function data(stream: number, seq: number, bytes: number, offset = 0, total = bytes): FrameInit {
  return { type: DATA, stream, seq, total, offset, payload: new Uint8Array(bytes).fill(seq) };
}

describe("link limits against a hostile peer", () => {
  it("resets a stream that gets data before it was accepted; the link and other streams live", () => {
    const v = victim({ accept: false });
    v.open(1);
    v.open(3);
    v.link.accept(3, "three");
    v.feed([data(1, 1, 1024)]);
    assert.ok(
      v.events.some((e) =>
        e.type === "protocolError" && /before the stream was accepted/.test(e.message)
      ),
    );
    assert.equal(v.link.streamState(1), "closed");
    assert.equal(v.link.state, "open");
    assert.ok(v.sent.some((f) => f.type === FrameType.CLOSE && f.stream === 1), "reset sent");
    v.feed([data(3, 1, 100)]);
    assert.ok(v.events.some((e) => e.type === "data" && e.stream === 3));
  });

  it("counts messages held out of order against the window, so they cannot pile up", () => {
    const v = victim({ window: 64 * 1024 });
    v.open(1);
    // Seq 1 never comes: everything after it waits in the reorder buffer.
    const frames: FrameInit[] = [];
    for (let seq = 2; seq <= 200; seq++) frames.push(data(1, seq, 16 * 1024));
    v.feed(frames);
    assert.ok(v.link.held <= 64 * 1024, `held ${v.link.held}`);
    assert.ok(v.events.some((e) => e.type === "closed" && e.stream === 1));
    assert.equal(v.link.held, 0, "a reset stream holds nothing");
    assert.equal(v.link.state, "open");
  });

  it("bounds a stream's reorder buffer even for empty messages", () => {
    // Empty DATA, CONTROL and CLOSE messages ahead of the expected one cost no window bytes; each
    // held one still costs memory, so each counts HELD_OVERHEAD bytes more than its length, and
    // a stream holds at most maxHeld(window): its window and the overhead of SEQ_WINDOW messages.
    for (const type of [DATA, CONTROL, FrameType.CLOSE]) {
      const v = victim({ window: 64 * 1024 });
      v.open(1);
      let peak = 0;
      for (let seq = 2; seq < 2 + SEQ_WINDOW + 4096 && v.link.streamState(1) !== "closed";) {
        const frames: FrameInit[] = [];
        for (const end = seq + 4096; seq < end; seq++) {
          frames.push({ type, stream: 1, seq, total: 0, offset: 0, payload: new Uint8Array(0) });
        }
        v.feed(frames);
        peak = Math.max(peak, v.link.held);
      }
      assert.ok(
        v.events.some((e) => e.type === "protocolError" && /out of order/.test(e.message)),
        `type ${type}: ${JSON.stringify(v.events.map((e) => e.type))}`,
      );
      assert.ok(peak <= maxHeld(64 * 1024), `type ${type}: held ${peak}`);
      assert.equal(v.link.streamState(1), "closed");
      assert.equal(v.link.held, 0, "a reset stream holds nothing");
      assert.equal(v.link.state, "open");
    }
  });

  it("counts each held message's overhead against the link budget", () => {
    const v = victim({ budget: 256 * 1024 });
    for (let i = 0; i < 16; i++) v.open(1 + 2 * i);
    for (let i = 0; i < 16 && v.link.state === "open"; i++) {
      const frames: FrameInit[] = [];
      for (let seq = 2; seq < 2 + 1024; seq++) frames.push(data(1 + 2 * i, seq, 0));
      v.feed(frames);
      assert.ok(v.link.held <= 256 * 1024 + HELD_OVERHEAD, `held ${v.link.held}`);
    }
    assert.equal(v.link.state, "closed", "16 streams x 1024 empty messages x 64 B > 256 KiB");
  });

  it("closes the link of a peer that leaves its answers unread, before they pile up", () => {
    const v = victim({ maxStreams: 8 });
    v.link.handleWritable(1, false); // the peer reads nothing: our answers wait
    const frames: FrameInit[] = [];
    for (let i = 0; i < 20_000; i++) {
      const payload = encodeControl({
        op: "open",
        window: 1 << 20,
        kind: 0,
        name: "x",
        bundle: "",
      });
      const stream = 1 + 2 * (i % 30_000);
      frames.push({ type: CONTROL, stream, seq: 0, total: payload.length, offset: 0, payload });
    }
    v.feed(frames);
    const gone = v.events.find((e) => e.type === "linkClosed");
    assert.ok(gone?.type === "linkClosed" && /unread/.test(gone.message), JSON.stringify(gone));
    assert.ok(
      v.events.filter((e) => e.type === "protocolError" && e.stream !== 0).length <=
        MAX_UNSENT_ANSWERS + 1,
      "no more refusals than the bound (and the one that broke it)",
    );
  });

  it("tells the owner of a stream the peer closed or broke before it was accepted", () => {
    const v = victim({ accept: false });
    const close = (stream: number): FrameInit => ({
      type: FrameType.CLOSE,
      stream,
      seq: 1,
      total: 0,
      offset: 0,
      payload: new Uint8Array(0),
    });
    const payload = encodeControl({
      op: "open",
      window: 1 << 20,
      kind: 0,
      name: "svc",
      bundle: "",
    });
    const open = (stream: number): FrameInit => ({
      type: CONTROL,
      stream,
      seq: 0,
      total: payload.length,
      offset: 0,
      payload,
    });
    // In one read: 1 opened and closed, 3 opened and sent data before the accept (a reset),
    // 5 opened, closed and opened again.
    v.feed([open(1), close(1), open(3), data(3, 1, 10), open(5), close(5), open(5)]);
    const opens = v.events.filter((e) => e.type === "open");
    assert.deepEqual(opens.map((e) => e.type === "open" && e.stream), [1, 3, 5, 5]);
    for (const [i, e] of opens.entries()) {
      if (e.type === "open") v.link.accept(e.stream, `owner ${i}`);
    }
    const closed = [];
    for (let e = v.link.pollEvent(); e; e = v.link.pollEvent()) {
      if (e.type === "closed") closed.push(e);
    }
    assert.deepEqual(closed.map((e) => e.owner), ["owner 0", "owner 1", "owner 3"]);
    assert.equal(v.link.streamState(5), "open", "the second open of 5 is the one accepted");
    // On a closed link, too.
    const w = victim({ accept: false });
    w.feed([open(1)]);
    w.link.abort();
    w.link.accept(1, "late");
    const events = [];
    for (let e = w.link.pollEvent(); e; e = w.link.pollEvent()) events.push(e);
    assert.deepEqual(events.at(-1), {
      type: "closed",
      stream: 1,
      owner: "late",
      reason: DisconnectReason.LINK_CLOSED,
    });
  });

  it("drops data for a stream the user rejected, also before the rejection went out", () => {
    const v = victim({ accept: false });
    v.open(1);
    v.link.handleWritable(1, false); // the peer reads nothing: the rejection waits
    v.link.reject(1, ErrorCode.PEER_SERVER_NOT_STARTED);
    v.feed([data(1, 1, 100), { ...data(1, 2, 0), type: FrameType.CLOSE }]);
    assert.deepEqual(v.events.filter((e) => e.type !== "open"), [], "no event for it");
    v.link.handleWritable(1, true);
    v.feed([]);
    const rejects = v.sent.filter((f) => f.stream === 1);
    assert.equal(rejects.length, 1);
    assert.deepEqual(decodeControl(rejects[0].payload), {
      op: "reject",
      code: ErrorCode.PEER_SERVER_NOT_STARTED,
    });
  });

  it("drops data for streams that were never opened, holding nothing", () => {
    const v = victim();
    const frames: FrameInit[] = [];
    for (let i = 0; i < 100; i++) frames.push(data(1 + 2 * i, 1, 4096));
    for (let i = 0; i < 50; i++) frames.push(data(1001, 1, 60_000, i * 60_000, 16 * 1024 * 1024));
    v.feed(frames);
    assert.equal(v.link.held, 0);
    assert.equal(v.link.state, "open");
    assert.equal(v.events.length, 0);
  });

  it("refuses a message over the stream's size limit at its first fragment", () => {
    const v = victim({ maxMessageSize: 1024 });
    v.open(1);
    v.feed([data(1, 1, 60_000, 0, 2 * 1024 * 1024)]);
    assert.equal(v.link.held, 0);
    assert.ok(v.events.some((e) => e.type === "closed" && e.stream === 1));
    assert.ok(
      v.events.some((e) => e.type === "protocolError" && /2097152-byte message/.test(e.message)),
    );
    // A message within the limit on another stream still arrives.
    v.open(3);
    v.feed([data(3, 1, 1024)]);
    assert.ok(
      v.events.some((e) => e.type === "data" && e.stream === 3 && e.data.byteLength === 1024),
    );
  });

  it("closes the link when its streams together hold more than its budget", () => {
    const v = victim({ window: 1 << 20, budget: 4 << 20 });
    for (let i = 0; i < 8; i++) v.open(1 + 2 * i);
    // Each stream holds 720 KiB out of order (within its 1 MiB window).
    for (let i = 0; i < 8 && v.link.state === "open"; i++) {
      const frames: FrameInit[] = [];
      for (let seq = 2; seq < 14; seq++) frames.push(data(1 + 2 * i, seq, 60 * 1024));
      v.feed(frames);
    }
    assert.equal(v.link.state, "closed");
    const gone = v.events.find((e) => e.type === "linkClosed");
    assert.ok(gone?.type === "linkClosed" && /over its budget of 4194304/.test(gone.message));
    // Said as a protocol error too, which the device logs.
    assert.ok(
      v.events.some((e) =>
        e.type === "protocolError" && e.stream === 0 && /over its budget of 4194304/.test(e.message)
      ),
    );
    assert.ok(
      v.events.filter((e) => e.type === "closed").every((e) =>
        e.type === "closed" && e.reason === DisconnectReason.LINK_CLOSED
      ),
    );
  });

  it("refuses opens beyond the stream limit with a reject, keeping the link", () => {
    const v = victim({ maxStreams: 8 });
    for (let i = 0; i < 12; i++) v.open(1 + 2 * i);
    assert.equal(v.link.streams, 8);
    const rejects = v.sent.filter((f) =>
      f.type === CONTROL && decodeControl(f.payload)?.op === "reject"
    );
    assert.equal(rejects.length, 4);
    assert.deepEqual(decodeControl(rejects[0].payload), {
      op: "reject",
      code: ErrorCode.INTERNAL_ERROR,
    });
    assert.equal(v.link.state, "open");
    assert.throws(() => v.link.open("mine"), RangeError, "our own open beyond the limit");
  });

  it("puts each stream back in order on its own: one stream's gap never holds up another", () => {
    const v = victim();
    v.open(1);
    v.open(3);
    v.feed([data(1, 2, 10), data(3, 1, 20)]); // stream 1 waits for its seq 1; stream 3 does not
    const got = () => v.events.filter((e) => e.type === "data").map((e) => e.stream);
    assert.deepEqual(got(), [3]);
    v.feed([data(1, 1, 30)]);
    assert.deepEqual(got(), [3, 1, 1]);
    assert.equal(v.link.held, 0);
  });

  it("breaks the link on an acknowledgement of bytes it never sent; a PING gets one at once", () => {
    const v = victim();
    v.open(1);
    // A PING asks for an acknowledgement: it goes out even with nothing else to send.
    v.sent.length = 0;
    v.feed([{
      type: FrameType.PING,
      stream: 0,
      seq: 0,
      total: 0,
      offset: 0,
      payload: new Uint8Array(0),
    }]);
    const ack = v.sent.find((f) => f.type === FrameType.ACK);
    assert.ok(ack !== undefined, "acknowledged");
    assert.equal(ack.seq, v.link.channelStats(1)!.received);
    // The victim sent an accept and this acknowledgement (which is not counted).
    const sent = v.link.channelStats(1)!.sent;
    v.feed([{
      type: FrameType.ACK,
      stream: 0,
      seq: sent,
      total: 0,
      offset: 0,
      payload: new Uint8Array(0),
    }]);
    assert.equal(v.link.state, "open");
    assert.equal(v.link.channelStats(1)!.acked, sent);
    v.feed([{
      type: FrameType.ACK,
      stream: 0,
      seq: sent + 1,
      total: 0,
      offset: 0,
      payload: new Uint8Array(0),
    }]);
    assert.equal(v.link.state, "closed");
    const gone = v.events.find((e) => e.type === "linkClosed");
    assert.ok(
      gone?.type === "linkClosed" &&
        /acknowledged \d+ bytes on channel 1, more than the \d+ sent/.test(gone.message),
      JSON.stringify(gone),
    );
  });
});

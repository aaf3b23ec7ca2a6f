/**
 * Latency under load, in virtual time: the in-flight budget keeps the pipe
 * short, quiet streams go first, bulk messages are cut into frames, the
 * budget follows the path's rate, no stream starves, and acknowledgements
 * ride along with other frames.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { acceptAll, Pair } from "../../../tests/harness/link_pair.ts";
import { createCodec } from "../../../wasm/mod.ts";
import { nativeCrc } from "../../../platform/crc.ts";
import { FRAME_OVERHEAD, FrameType } from "../frame.ts";
import { DEFAULT_FRAME_SIZE } from "./mod.ts";
import { ASKS_PER_BUDGET } from "./_channels.ts";

const codec = createCodec({ crc: nativeCrc() });

function bytes(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 13 + seed) & 0xff;
  return b;
}

/** A pair with streams opened from A, kept full by `fill` whenever they drain. */
function setup(
  channel: { rate: number; latency: number },
  options: { window?: number; budget?: number } = {},
) {
  const pair = new Pair({ codec, channels: [channel], ...options });
  const fillers = new Map<number, () => void>();
  /** Per stream: payload bytes and messages B got, and when each message arrived. */
  const got = new Map<number, { bytes: number; arrivals: number[] }>();
  pair.onEvent = (side, e) => {
    if (e.type === "open") (side === "a" ? pair.a : pair.b).accept(e.stream);
    if (side === "a" && e.type === "drain") fillers.get(e.stream)?.();
    if (side === "b" && e.type === "data") {
      const g = got.get(e.stream) ?? { bytes: 0, arrivals: [] };
      got.set(e.stream, g);
      g.bytes += e.data.byteLength;
      g.arrivals.push(pair.now);
    }
  };
  const open = (name: string) => {
    const s = pair.a.open(name);
    pair.run(pair.now + 4 * channel.latency + 10);
    assert.equal(pair.a.streamState(s), "open");
    return s;
  };
  /** Keep a stream's send queue full of `size`-byte messages. */
  const saturate = (s: number, size: number) => {
    const fill = () => {
      while (pair.a.send(s, bytes(size, s)));
    };
    fillers.set(s, fill);
    fill();
  };
  const delivered = (s: number) => got.get(s)?.bytes ?? 0;
  const arrivals = (s: number) => got.get(s)?.arrivals ?? [];
  return { pair, open, saturate, delivered, arrivals };
}

describe("latency under load (virtual time)", () => {
  it("keeps a 1 KiB message's queueing delay under one frame plus the in-flight budget while a stream saturates the channel", () => {
    const rate = 10_000; // bytes per ms: 10 MB/s
    const latency = 5;
    const { pair, open, saturate, delivered, arrivals } = setup({ rate, latency });
    const bulk = open("bulk");
    const quiet = open("quiet");
    saturate(bulk, 64 * 1024); // cut into frames of DEFAULT_FRAME_SIZE
    pair.run(pair.now + 1000);
    const start = { t: pair.now, bytes: delivered(bulk) };
    for (let k = 0; k < 20; k++) {
      const { budget, inFlight } = pair.a.channelStats(1)!;
      assert.ok(inFlight > budget / 2, `the bulk stream keeps the pipe busy (${inFlight} B)`);
      const sentAt = pair.now;
      assert.ok(pair.a.send(quiet, bytes(1024, k)));
      pair.run(pair.now + 200);
      const arrived = arrivals(quiet)[k];
      assert.ok(arrived !== undefined, `message ${k} arrived`);
      const queueing = arrived - sentAt - latency - (1024 + FRAME_OVERHEAD) / rate;
      const bound = (budget + DEFAULT_FRAME_SIZE + FRAME_OVERHEAD) / rate;
      assert.ok(
        queueing <= bound,
        `message ${k} queued ${queueing.toFixed(2)} ms; one frame plus the ${budget} B budget ` +
          `take ${bound.toFixed(2)} ms`,
      );
      pair.run(pair.now + 13 * (k % 4)); // send at different phases
    }
    // Meanwhile the bulk stream kept the channel busy.
    const carried = (delivered(bulk) - start.bytes) / (pair.now - start.t);
    assert.ok(carried > 0.85 * rate, `bulk carried ${carried.toFixed(0)} B/ms of ${rate}`);
    // And the budget is about the path's bandwidth-delay product, not a stream window.
    const { budget, minRtt } = pair.a.channelStats(1)!;
    assert.ok(budget < 4 * rate * minRtt!, `budget ${budget} B, BDP ${rate * minRtt!} B`);
  });

  it("gives each write the channel's measured rate, for the record layer to size its records by", () => {
    const { pair, open, saturate } = setup({ rate: 5_000, latency: 10 });
    const rates: number[] = [];
    pair.onWrite = (side, _, __, rate) => {
      if (side === "a") rates.push(rate);
    };
    const bulk = open("bulk");
    assert.equal(rates[0], 0, "no rate before the first round trip");
    saturate(bulk, 16 * 1024);
    pair.run(pair.now + 1500);
    const last = rates[rates.length - 1];
    assert.equal(last, pair.a.channelStats(1)!.rate);
    assert.ok(Math.abs(last / 5_000 - 1) < 0.2, `rate given with the writes ${last} of 5000`);
  });

  it("follows a change of the path's rate within a few round trips", () => {
    const { pair, open, saturate } = setup({ rate: 5_000, latency: 10 });
    const bulk = open("bulk");
    saturate(bulk, 16 * 1024);
    pair.run(pair.now + 1500);
    const before = pair.a.channelStats(1)!;
    const rtt = before.minRtt!;
    assert.ok(Math.abs(before.rate / 5_000 - 1) < 0.2, `rate estimate ${before.rate} of 5000`);
    /** Run until the rate estimate is within 20% of `rate`; returns the round trips it took. */
    const settle = (rate: number) => {
      const from = pair.a.channelStats(1)!.rounds;
      for (let n = 0; n < 400; n++) {
        pair.run(pair.now + rtt / 4);
        const st = pair.a.channelStats(1)!;
        if (Math.abs(st.rate / rate - 1) < 0.2) return st.rounds - from;
      }
      return Infinity;
    };
    pair.setRate(1, 20_000); // four times faster
    const up = settle(20_000);
    assert.ok(up <= 10, `the estimate took ${up} round trips to follow the faster path`);
    pair.run(pair.now + 10 * rtt);
    const faster = pair.a.channelStats(1)!;
    assert.ok(
      faster.budget > 2.5 * before.budget,
      `budget ${before.budget} B -> ${faster.budget} B`,
    );
    pair.setRate(1, 2_500); // eight times slower
    const down = settle(2_500);
    assert.ok(down <= 6, `the estimate took ${down} round trips to follow the slower path`);
    pair.run(pair.now + 20 * rtt);
    const slower = pair.a.channelStats(1)!;
    assert.ok(
      slower.budget < faster.budget / 4,
      `budget ${faster.budget} B -> ${slower.budget} B`,
    );
    // Delay-based: with the budget back down, the round trip is back near its floor.
    assert.ok(slower.rtt! < 4 * slower.minRtt!, `rtt ${slower.rtt} ms, floor ${slower.minRtt} ms`);
  });

  it("starves no stream: 100 busy streams of mixed message sizes share by bytes", () => {
    const { pair, open, saturate, delivered } = setup({ rate: 20_000, latency: 2 });
    const streams = Array.from({ length: 100 }, (_, i) => open(`s${i}`));
    const sizes = [1024, 16 * 1024, 100 * 1024]; // the largest are sent in several frames
    streams.forEach((s, i) => saturate(s, sizes[i % 3]));
    pair.run(pair.now + 500);
    const from = streams.map(delivered);
    pair.run(pair.now + 3000);
    const shares = streams.map((s, i) => delivered(s) - from[i]);
    const mean = shares.reduce((a, b) => a + b, 0) / shares.length;
    const jain = shares.reduce((a, b) => a + b, 0) ** 2 /
      (shares.length * shares.reduce((a, b) => a + b * b, 0));
    const least = Math.min(...shares);
    assert.ok(least > 0.5 * mean, `least ${least} B against a mean of ${mean.toFixed(0)} B`);
    assert.ok(jain > 0.95, `Jain's index ${jain.toFixed(3)}`);
    assert.equal(pair.a.state, "open");
  });

  it("lets streams that send again and again go first only once per round: busy ones still get their share", () => {
    const { pair, open, saturate, delivered, arrivals } = setup({ rate: 10_000, latency: 2 });
    const busy = Array.from({ length: 4 }, (_, i) => open(`busy${i}`));
    const chatty = Array.from({ length: 40 }, (_, i) => open(`chatty${i}`));
    busy.forEach((s) => saturate(s, 16 * 1024));
    // Each chatty stream sends 8 KiB again as soon as its last message arrived.
    const onEvent = pair.onEvent;
    pair.onEvent = (side, e) => {
      onEvent(side, e);
      if (side === "b" && e.type === "data" && chatty.includes(e.stream)) {
        pair.a.send(e.stream, bytes(8 * 1024, e.stream));
      }
    };
    for (const s of chatty) pair.a.send(s, bytes(8 * 1024, s));
    pair.run(pair.now + 500);
    const from = busy.map(delivered);
    pair.run(pair.now + 2000);
    const shares = busy.map((s, i) => delivered(s) - from[i]);
    const total = 2000 * 10_000;
    for (const share of shares) {
      assert.ok(share > total / (busy.length + chatty.length) / 2, `busy streams got ${shares}`);
    }
    assert.ok(chatty.every((s) => arrivals(s).length > 10), "chatty streams got through too");
  });

  it("cuts bulk messages into frames: a small message overtakes them, and the peer never holds more half-sent messages than it allows", () => {
    // 80 messages of two frames each: in reassembly at once, over the peer's 64.
    const many = setup({ rate: 5_000, latency: 1 });
    const big = Array.from({ length: 80 }, (_, i) => many.open(`big${i}`));
    const quiet = many.open("quiet");
    for (const s of big) assert.ok(many.pair.a.send(s, bytes(20 * 1024, s)));
    many.pair.run(many.pair.now + 5);
    many.pair.a.send(quiet, bytes(100, 1));
    many.pair.run(many.pair.now + 60_000);
    assert.equal(many.pair.b.state, "open");
    for (const s of big) assert.equal(many.delivered(s), 20 * 1024, `stream ${s}`);
    const firstBig = Math.min(...big.map((s) => many.arrivals(s)[0]));
    assert.ok(many.arrivals(quiet)[0] < firstBig, "the small message overtook them");
    // 20 messages of 1 MiB: all half sent at once, over the peer's 8 MiB budget.
    const large = setup({ rate: 50_000, latency: 1 }, { budget: 8 * 1024 * 1024 });
    const streams = Array.from({ length: 20 }, (_, i) => large.open(`large${i}`));
    for (const s of streams) assert.ok(large.pair.a.send(s, bytes(1024 * 1024, s)));
    large.pair.run(large.pair.now + 60_000);
    assert.equal(large.pair.b.state, "open");
    for (const s of streams) assert.equal(large.delivered(s), 1024 * 1024, `stream ${s}`);
  });

  it("never waits for the keep-alive to be acknowledged: a small budget, large frames, small reads", () => {
    for (const frameSize of [16 * 1024, 4096]) {
      const pair = new Pair({
        codec,
        frameSize,
        budgetFloor: 16 * 1024,
        budgetCeiling: 16 * 1024,
        channels: [{ rate: 2_000, latency: 2, segment: 1500 }],
      });
      acceptAll(pair);
      const s = pair.a.open("bulk");
      pair.run(pair.now + 50);
      let got = 0;
      pair.onEvent = (side, e) => {
        if (side === "b" && e.type === "data") got += e.data.byteLength;
        if (side === "a" && e.type === "drain") { while (pair.a.send(s, bytes(40_000, 1))); }
      };
      while (pair.a.send(s, bytes(40_000, 1)));
      const t0 = pair.now;
      pair.run(pair.now + 3000); // less than two keep-alive intervals
      // A 16 KiB budget over a 4 ms round trip carries at most 4 KB/ms; the path 2 KB/ms.
      const carried = got / (pair.now - t0);
      assert.ok(carried > 1_000, `frames of ${frameSize} B: carried ${carried.toFixed(0)} B/ms`);
    }
  });

  it("acknowledges with the frames that go anyway, and seldom: requests and replies need no other write", () => {
    const pair = new Pair({ codec, channels: [{ latency: 3 }] });
    acceptAll(pair);
    const s = pair.a.open("echo");
    pair.run(pair.now + 50);
    let round = 0;
    pair.onEvent = (side, e) => {
      if (side === "b" && e.type === "data") pair.b.send(e.stream, new Uint8Array(e.data));
      if (side === "a" && e.type === "data" && ++round < 100) pair.a.send(s, bytes(1024, round));
    };
    const writes = { a: 0, b: 0 };
    let acks = 0;
    pair.onWrite = (side, _, data) => {
      writes[side]++;
      codec.createDecoder().push(data, (f) => {
        if (f.type === FrameType.ACK) acks++;
      });
    };
    pair.a.send(s, bytes(1024, 0));
    pair.run(pair.now + 1000); // less than a keep-alive interval
    assert.equal(round, 100);
    assert.deepEqual(
      writes,
      { a: 100, b: 100 },
      "one write per message, none for acknowledgements",
    );
    assert.ok(acks <= 200 / 3, `${acks} acknowledgements for 200 messages`);
    for (const link of [pair.a, pair.b]) {
      const { inFlight, budget } = link.channelStats(1)!;
      assert.ok(inFlight <= budget, `${inFlight} B in flight, budget ${budget} B`);
    }
    assert.ok(pair.a.channelStats(1)!.minRtt! >= 6, "round trips were measured");
  });

  it("acknowledges a one-way transfer once per read at most, and a few times per budget", () => {
    const { pair, open, saturate } = setup({ rate: 20_000, latency: 2 });
    const bulk = open("bulk");
    const count = { reads: 0, acks: 0 };
    pair.onWrite = (side, _, data) => {
      if (side === "a") count.reads += Math.ceil(data.length / 16384); // the segments B reads
      else {
        codec.createDecoder().push(data, (f) => {
          if (f.type === FrameType.ACK) count.acks++;
        });
      }
    };
    saturate(bulk, 4096);
    pair.run(pair.now + 2000);
    const { received } = pair.b.channelStats(1)!;
    const { budget } = pair.a.channelStats(1)!;
    assert.ok(count.acks <= count.reads, `${count.acks} acknowledgements for ${count.reads} reads`);
    const flights = received / budget;
    assert.ok(
      count.acks <= 1.5 * (ASKS_PER_BUDGET + 1) * flights,
      `${count.acks} acknowledgements for ${flights.toFixed(1)} budgets of bytes`,
    );
  });
});

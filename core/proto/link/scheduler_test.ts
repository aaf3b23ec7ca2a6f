import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { QUANTUM, Scheduler } from "./scheduler.ts";
import { Stream } from "./streams.ts";

const FLOW = { credit: 0, rxLeft: 0, maxMessage: 0 };

describe("scheduler", () => {
  const streams = (n: number) =>
    Array.from({ length: n }, (_, i) => new Stream(i + 1, "open", undefined, FLOW));

  it("serves the new line before the old one, each stream once, and forgets them when cleared", () => {
    const sch = new Scheduler();
    const [a, b, c] = streams(3);
    sch.add(a, false);
    sch.add(b, true);
    sch.add(a, true); // already in line: stays where it is
    sch.add(c, false);
    assert.equal(sch.length, 3);
    assert.equal(sch.take(), b, "new first");
    assert.equal(b.fresh, true);
    assert.equal(sch.take(), a);
    assert.equal(a.fresh, false);
    sch.done(a, true); // more to send: back of the old line
    assert.deepEqual([sch.take(), sch.take()], [c, a]);
    sch.done(c, false);
    assert.equal(c.ready, false, "an old stream with nothing left leaves");
    sch.add(c, true);
    sch.clear();
    assert.equal(c.ready, false);
    assert.equal(sch.take(), undefined);
  });

  it("gives a turn QUANTUM bytes more and keeps an unused deficit", () => {
    const sch = new Scheduler();
    const [a] = streams(1);
    sch.add(a, true);
    assert.equal(sch.take(), a);
    assert.equal(a.deficit, QUANTUM);
    a.deficit -= QUANTUM + 100; // the last frame went over
    sch.done(a, true);
    assert.equal(a.deficit, QUANTUM - 100);
  });

  it("keeps a new stream that emptied in the old line until its turn there comes", () => {
    const sch = new Scheduler();
    const [bulk, quiet] = streams(2);
    sch.add(bulk, false);
    sch.add(quiet, true);
    assert.equal(sch.take(), quiet);
    sch.done(quiet, false); // sent its message: moves to the old line, still in line
    assert.equal(quiet.ready, true);
    sch.add(quiet, true); // a new message at once is not new: it waits its turn
    assert.equal(sch.take(), bulk);
    sch.done(bulk, true);
    assert.equal(sch.take(), quiet);
    sch.done(quiet, false); // its old turn with nothing more: it leaves
    assert.equal(quiet.ready, false);
    sch.add(quiet, true); // quiet for a whole round: new again
    assert.equal(sch.take(), quiet);
    assert.equal(quiet.fresh, true);
  });

  it("resumes a turn cut short first, after the new line unless it was new", () => {
    const sch = new Scheduler();
    const [a, b, c] = streams(3);
    sch.add(a, false);
    sch.add(c, false);
    assert.equal(sch.take(), a);
    sch.interrupted(a);
    sch.add(b, true);
    assert.deepEqual([sch.take(), sch.take(), sch.take()], [b, a, c]);
    const later = new Scheduler();
    const [d, e] = streams(2);
    later.add(d, true);
    assert.equal(later.take(), d);
    later.interrupted(d);
    later.add(e, true);
    assert.equal(later.take(), d, "a new stream cut short goes on first");
  });

  it("parks a stream until a half-sent message completes", () => {
    const sch = new Scheduler();
    const [a, b] = streams(2);
    sch.add(a, false);
    sch.add(b, false);
    sch.park(sch.take()!);
    assert.equal(sch.length, 2);
    assert.equal(sch.take(), b);
    sch.done(b, false);
    assert.equal(sch.take(), undefined);
    sch.unpark();
    assert.equal(sch.take(), a);
  });
});

describe("stream send queue", () => {
  it("is allocated with the first entry and released when empty", () => {
    const s = new Stream(1, "open", "owner", FLOW);
    assert.equal(s.length, 0);
    assert.equal(s.peek(), undefined);
    const e = (n: number) => ({ type: 0, payload: new Uint8Array(n), final: false });
    for (let i = 0; i < 3000; i++) s.push(e(i));
    for (let i = 0; i < 2999; i++) assert.equal((s.shift()!.payload as Uint8Array).length, i);
    assert.equal(s.length, 1);
    assert.equal((s.shift()!.payload as Uint8Array).length, 2999);
    assert.equal(s.shift(), undefined);
    assert.equal(s.length, 0);
  });
});

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Scheduler } from "./scheduler.ts";
import { Stream } from "./streams.ts";

const FLOW = { credit: 0, rxLeft: 0, maxMessage: 0 };

describe("scheduler", () => {
  it("serves streams in turn, once each, and forgets them when cleared", () => {
    const sch = new Scheduler();
    const [a, b, c] = [1, 2, 3].map((id) => new Stream(id, "open", undefined, FLOW));
    sch.add(a);
    sch.add(b);
    sch.add(a); // already in line: stays where it is
    sch.add(c);
    assert.equal(sch.length, 3);
    assert.equal(sch.take(), a);
    sch.add(a); // back of the line
    assert.deepEqual([sch.take(), sch.take(), sch.take()], [b, c, a]);
    assert.equal(sch.take(), undefined);
    sch.add(b);
    sch.clear();
    assert.equal(b.ready, false);
    assert.equal(sch.take(), undefined);
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

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Reorder } from "./reorder.ts";

/** Offer messages in some order; return the order they are delivered in. */
function run(order: number[], start = 0): number[] {
  const r = new Reorder<number>();
  for (let i = 0; i < start; i++) r.advance();
  const out: number[] = [];
  for (const seq of order) {
    if (r.offer(seq, seq, 10) !== "deliver") continue;
    out.push(seq);
    r.advance();
    for (let n = r.next(); n !== undefined; n = r.next()) out.push(n);
  }
  assert.equal(r.bytes, 10 * r.size);
  return out;
}

describe("reorder buffer", () => {
  it("delivers in sequence order whatever the arrival order", () => {
    assert.deepEqual(run([0, 1, 2, 3]), [0, 1, 2, 3]);
    assert.deepEqual(run([3, 1, 2, 0]), [0, 1, 2, 3]);
    assert.deepEqual(run([2, 0, 4, 1, 3]), [0, 1, 2, 3, 4]);
  });

  it("drops duplicates, held or already delivered, and counts held bytes", () => {
    const r = new Reorder<string>();
    assert.equal(r.offer(2, "c", 5), "hold");
    assert.equal(r.offer(2, "c", 5), "duplicate");
    assert.equal(r.bytes, 5);
    assert.equal(r.offer(0, "a", 5), "deliver");
    r.advance();
    assert.equal(r.offer(0, "a", 5), "duplicate");
    assert.equal(r.next(), undefined, "1 has not arrived");
    assert.equal(r.offer(1, "b", 5), "deliver");
    r.advance();
    assert.equal(r.next(), "c");
    assert.equal(r.bytes, 0);
    assert.equal(r.size, 0);
  });

  it("wraps around 2^32", () => {
    assert.deepEqual(run([0xffffffff, 0, 0xfffffffe, 1], 0xfffffffe), [
      0xfffffffe,
      0xffffffff,
      0,
      1,
    ]);
  });
});

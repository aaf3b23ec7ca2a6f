import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { SEQ_WINDOW, SeqWindow } from "./_seq.ts";
import { fuzz } from "../../../tests/harness/fuzz.ts";

describe("link sequence numbers (receiver)", () => {
  it("takes each number once, in any order, and drops a second copy", () => {
    fuzz("seq window", (rnd) => {
      const w = new SeqWindow();
      const n = 1 + rnd(3000);
      // Every number once, some twice, shuffled within a bounded distance.
      const order: number[] = [];
      for (let i = 0; i < n; i++) {
        order.push(i);
        if (rnd(5) === 0) order.push(i);
      }
      for (let i = order.length - 1; i > 0; i--) {
        const j = Math.max(0, i - rnd(200));
        [order[i], order[j]] = [order[j], order[i]];
      }
      const seen = new Set<number>();
      for (const ls of order) {
        const got = w.accept(ls);
        assert.equal(got, seen.has(ls) ? 0 : 1, `number ${ls}`);
        seen.add(ls);
      }
      assert.equal(w.cum, n);
      assert.equal(w.ahead, 0);
    });
  });

  it("refuses a number a whole window past the lowest one missing", () => {
    const w = new SeqWindow();
    assert.equal(w.accept(SEQ_WINDOW - 1), 1);
    assert.equal(w.accept(SEQ_WINDOW), -1);
    assert.equal(w.accept(0), 1);
    assert.equal(w.accept(SEQ_WINDOW), 1);
  });

  it("widens a MARK's 32 bits to the number nearest the lowest one missing", () => {
    const w = new SeqWindow();
    for (let i = 0; i < 10; i++) w.accept(i);
    assert.equal(w.widen(12), 12);
    assert.equal(w.widen(0xffffffff), -1); // below every number in use: an old one
    w.cum = 2 ** 32 + 5; // past 2^32 numbers, MARKs carry the low 32 bits
    assert.equal(w.widen(3), 2 ** 32 + 3);
    assert.equal(w.widen(7), 2 ** 32 + 7);
    assert.equal(w.widen(0xfffffffe), 2 ** 32 - 2);
  });
});

import { test } from "node:test";
import assert from "node:assert/strict";
import { SendCopies } from "./_copies.ts";

test("SendCopies never hands out bytes the link still holds, also when the link refuses a copy", () => {
  // A model of one stream as the link treats it: a queue of at most 64 KiB
  // that refuses a message when full, taken from the front in bursts;
  // bufferedAmount is what the queue holds. Each copy is checked when taken,
  // so a slab used again too early shows as changed bytes.
  let x = 12345;
  const rand = (n: number) => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) % n;
  };
  const CAP = 64 * 1024;
  const copies = new SendCopies();
  const queue: { view: Uint8Array; fill: number }[] = [];
  let buffered = 0;
  let taken = 0;
  let refused = 0;
  for (let step = 0; step < 50_000; step++) {
    if (rand(40) !== 0) {
      const fill = step & 0xff;
      const n = 1 + rand(1024);
      const view = copies.copy(new Uint8Array(n).fill(fill), buffered);
      assert.ok(view.length === n && view.every((b) => b === fill));
      if (buffered + n > CAP) {
        copies.undo(n);
        refused++;
      } else {
        queue.push({ view, fill });
        buffered += n;
      }
    } else {
      for (let k = rand(queue.length + 1); k > 0; k--) {
        const { view, fill } = queue.shift()!;
        assert.ok(view.every((b) => b === fill), `message ${taken} changed while queued`);
        buffered -= view.length;
        taken++;
      }
    }
  }
  assert.ok(taken > 5_000 && refused > 5_000, `${taken} taken, ${refused} refused`);
});

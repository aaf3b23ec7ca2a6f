import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { FramePacer } from "./_pacer.ts";

describe("frame pacing", () => {
  it("sends at most the bitrate over time", () => {
    const p = new FramePacer<number>({ bitrate: 80_000, now: 0 }); // 10 000 bytes/s
    let sent = 0;
    let dropped = 0;
    for (let t = 0, n = 0; t < 10_000; t += 10, n++) {
      if (p.offer(n, 1000, t) !== undefined) dropped++;
      if (p.poll(t, false) !== undefined) sent++;
    }
    // 10 s at 10 000 bytes/s is 100 frames of 1000 bytes (plus the first burst).
    assert.ok(sent >= 99 && sent <= 103, `${sent} sent`);
    assert.equal(sent + dropped, 1000 - (p.clear() === undefined ? 0 : 1));
  });

  it("keeps only the newest frame while congested, and sends it once the path clears", () => {
    const p = new FramePacer<string>({ bitrate: 10_000_000, now: 0 });
    assert.equal(p.offer("a", 100, 0), undefined);
    assert.equal(p.poll(0, true), undefined);
    assert.equal(p.offer("b", 100, 1), "a");
    assert.equal(p.offer("c", 100, 2), "b");
    assert.equal(p.poll(3, false), "c");
    assert.equal(p.nextTime(3), undefined);
  });
});

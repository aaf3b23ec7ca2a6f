import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { WARN_BURST, WARN_PERIOD, WarningLimiter } from "./rate_limit.ts";

describe("WarningLimiter (virtual clock)", () => {
  it("allows a burst, then one line per period, counting what it suppressed", () => {
    const limit = new WarningLimiter();
    const allowed: Array<[number, number]> = [];
    for (let now = 0; now < 5 * WARN_PERIOD; now += 100) {
      const s = limit.allow("clash", now);
      if (s !== undefined) allowed.push([now, s]);
    }
    assert.deepEqual(allowed.slice(0, WARN_BURST), [[0, 0], [100, 0], [200, 0]]);
    // then one per period, each saying how many were dropped since the last
    assert.equal(allowed.length, WARN_BURST + 4);
    for (const [at, suppressed] of allowed.slice(WARN_BURST)) {
      assert.ok(suppressed > 500, `at ${at}: ${suppressed} suppressed`);
    }
  });

  it("counts each kind on its own", () => {
    const limit = new WarningLimiter({ burst: 1, period: 1000 });
    assert.equal(limit.allow("clash", 0), 0);
    assert.equal(limit.allow("version", 0), 0);
    assert.equal(limit.allow("clash", 1), undefined);
    assert.equal(limit.allow("version", 1), undefined);
    assert.equal(limit.allow("clash", 1001), 1);
  });
});

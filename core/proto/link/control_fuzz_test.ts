/**
 * Fuzzing of the link's control decoder with random bytes and mutations of
 * every control message: it never throws, reads only what it may, and what
 * it reads encodes back to bytes it reads the same way.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { fuzz, FUZZ_SEED, mutate, type Rand } from "../../../tests/harness/fuzz.ts";
import { type Control, decodeControl, encodeControl } from "./control.ts";

const NAMES = ["", "echo", "é".repeat(40), "x".repeat(300), "\u{1F600}", "a\u0000b"];

function randomControl(rnd: Rand): Control {
  switch (rnd(4)) {
    case 0:
      return {
        op: "open",
        window: [0, 1, 65536, 0xffffffff][rnd(4)],
        kind: rnd(256),
        name: NAMES[rnd(NAMES.length)],
        bundle: NAMES[rnd(NAMES.length)],
      };
    case 1:
      return { op: "accept", window: [0, 1, 1 << 22, 0xffffffff][rnd(4)] };
    case 2:
      return { op: "reject", code: [0, 32390201, -1, -0x80000000, 0x7fffffff][rnd(5)] };
    default:
      return { op: "bye" };
  }
}

describe("fuzz: link control messages", () => {
  it(`decodeControl never throws and reads back what it read (seed ${FUZZ_SEED})`, () => {
    const seen = new Map<string, number>();
    const cases = fuzz("decodeControl", (rnd) => {
      const bytes = rnd(4) === 0
        ? Uint8Array.from({ length: rnd(40) }, () => rnd(256))
        : mutate(rnd, encodeControl(randomControl(rnd)));
      const c = decodeControl(bytes);
      const kind = c === undefined ? "malformed" : c.op;
      seen.set(kind, (seen.get(kind) ?? 0) + 1);
      if (c === undefined) return;
      assert.ok(bytes.length > 0);
      if (c.op === "unknown") {
        assert.ok(c.code === bytes[0] && (c.code === 0 || c.code > 4), `unknown op ${c.code}`);
        return;
      }
      switch (c.op) {
        case "open":
          assert.ok(Number.isInteger(c.window) && c.window >= 0 && c.window <= 0xffffffff);
          assert.ok(Number.isInteger(c.kind) && c.kind >= 0 && c.kind <= 255);
          assert.ok(typeof c.name === "string" && typeof c.bundle === "string");
          break;
        case "accept":
          assert.ok(Number.isInteger(c.window) && c.window >= 0 && c.window <= 0xffffffff);
          break;
        case "reject":
          assert.ok(Number.isInteger(c.code) && c.code >= -(2 ** 31) && c.code < 2 ** 31);
          break;
      }
      // What was read is what its own encoding says, which is no longer than the input
      // (a decoder ignores bytes after the fields it knows).
      const again = encodeControl(c);
      assert.ok(again.length <= bytes.length, `${again.length} > ${bytes.length}`);
      assert.deepEqual([...again], [...bytes.subarray(0, again.length)]);
      assert.deepEqual(decodeControl(again), c);
    });
    assert.ok(cases >= 20);
    for (const kind of ["malformed", "unknown", "open", "accept", "reject", "bye"]) {
      assert.ok((seen.get(kind) ?? 0) > 0, `no ${kind} case in ${cases}: ${[...seen]}`);
    }
  });
});

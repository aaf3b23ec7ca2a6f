import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { type Control, decodeControl, encodeControl, ServiceKind } from "./control.ts";

describe("link control messages", () => {
  it("round-trips every operation, with non-ASCII names", () => {
    const all: Control[] = [
      { op: "open", window: 4194304, kind: ServiceKind.LINK_ENHANCE, name: "démo", bundle: "" },
      { op: "open", window: 1, kind: ServiceKind.ABILITY, name: "x".repeat(300), bundle: "com.a" },
      { op: "accept", window: 0xffffffff },
      { op: "reject", code: 32390201 },
      { op: "reject", code: -425918060 },
      { op: "bye" },
    ];
    for (const c of all) assert.deepEqual(decodeControl(encodeControl(c)), c);
  });

  it("has the documented bytes", () => {
    const open = encodeControl({
      op: "open",
      window: 0x01020304,
      kind: 1,
      name: "ab",
      bundle: "c",
    });
    assert.deepEqual([...open], [1, 1, 2, 3, 4, 1, 0, 2, 97, 98, 0, 1, 99]);
    assert.deepEqual([...encodeControl({ op: "accept", window: 5 })], [2, 0, 0, 0, 5]);
    assert.deepEqual([...encodeControl({ op: "reject", code: -1 })], [3, 255, 255, 255, 255]);
    assert.deepEqual([...encodeControl({ op: "bye" })], [4]);
  });

  it("refuses every truncation and bad UTF-8, ignores unknown operations and trailing bytes", () => {
    const open = encodeControl({ op: "open", window: 9, kind: 0, name: "name", bundle: "b" });
    for (let n = 0; n < open.length; n++) {
      assert.equal(decodeControl(open.subarray(0, n)), undefined, `prefix of ${n} bytes`);
    }
    const longer = new Uint8Array([...open, 7, 7, 7]);
    assert.deepEqual(decodeControl(longer), decodeControl(open));
    assert.equal(decodeControl(new Uint8Array([1, 0, 0, 0, 1, 0, 0, 1, 0xff, 0, 0])), undefined);
    assert.deepEqual(decodeControl(new Uint8Array([200, 1, 2])), { op: "unknown", code: 200 });
  });

  it("writes names as TextEncoder does, surrogates included", () => {
    const names = ["", "a", "é", "€", "😀", "\ud800", "x\udc00y", "\ud83d\ude00\ud83d", "日本語"];
    for (const name of names) {
      const bytes = encodeControl({ op: "open", window: 1, kind: 0, name, bundle: name });
      const want = new TextEncoder().encode(name);
      assert.deepEqual([...bytes.subarray(8, 8 + want.length)], [...want], JSON.stringify(name));
      assert.equal(bytes.length, 10 + 2 * want.length);
    }
  });

  it("never throws on random bytes", () => {
    let x = 12345;
    const rnd = () => (x = (x * 1103515245 + 12345) >>> 0) >>> 24;
    for (let i = 0; i < 20000; i++) {
      const b = new Uint8Array(rnd() % 40);
      for (let j = 0; j < b.length; j++) b[j] = rnd();
      if (b.length > 0 && rnd() < 128) b[0] = 1 + (rnd() % 4);
      decodeControl(b);
    }
  });
});

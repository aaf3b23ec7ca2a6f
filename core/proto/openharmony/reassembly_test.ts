import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Reassembler, type ReassemblyResult } from "./reassembly.ts";
import { fragment, fragmentAt } from "./wire.ts";

function msg(n: number, seed = 1): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (i * 7 + seed) & 0xff);
}

function value(seq: number, size: number, offset: number, total: number, extra = 0): Uint8Array {
  const w = new Uint8Array(16 + size + extra);
  const v = new DataView(w.buffer);
  v.setUint32(0, seq);
  v.setUint32(4, size);
  v.setUint32(8, offset);
  v.setUint32(12, total);
  return w;
}

function message(r: ReassemblyResult): Uint8Array {
  assert.equal(r.type, "message", JSON.stringify(r));
  return (r as { data: Uint8Array }).data;
}

describe("openharmony reassembly (ConnGattTransRecv)", () => {
  it("joins fragments, in order or not", () => {
    const m = msg(100);
    const ws = fragment(m, 23, 9);
    const r = new Reassembler();
    const order = [3, 0, 24, 1];
    for (let i = 2; i < 24; i++) if (i !== 3) order.push(i);
    assert.equal(order.length, ws.length);
    let out: Uint8Array | undefined;
    for (const i of order) {
      const res = r.push(ws[i]);
      if (res.type === "message") out = res.data;
      else assert.equal(res.type, "partial");
    }
    assert.deepEqual(out, m);
    assert.equal(r.buffered, 0);
  });

  it("drops values its header check refuses", () => {
    const r = new Reassembler();
    const reasons = [
      r.push(new Uint8Array(15)),
      r.push(value(1, 4, 0, 8, 1)), // size is not the bytes after the header
      r.push(value(1, 4, 0, 40001)),
      r.push(value(1, 9, 0, 8)),
      r.push(value(1, 4, 5, 8)),
    ].map((x) => x.type === "rejected" ? x.reason : x.type);
    assert.equal(reasons.length, 5);
    for (const reason of reasons) assert.notEqual(reason, "partial");
    assert.match(reasons[0], /shorter than the 16-byte header/);
    assert.match(reasons[2], /exceeds 40000/);
    assert.equal(r.buffered, 0);
  });

  it("drops an empty message but accepts one of 40000 bytes", () => {
    const r = new Reassembler();
    assert.deepEqual(r.push(value(1, 0, 0, 0)), { type: "rejected", reason: "empty message" });
    const big = msg(40000);
    let out: Uint8Array | undefined;
    for (const w of fragment(big, 512, 3)) {
      const res = r.push(w);
      if (res.type === "message") out = res.data;
    }
    assert.deepEqual(out, big);
  });

  it("delivers a one-value message while another is half assembled, which stays", () => {
    const r = new Reassembler();
    const a = fragment(msg(10, 1), 23, 5);
    r.push(a[0]);
    assert.deepEqual(message(r.push(fragment(msg(3, 2), 23, 6)[0])), msg(3, 2));
    r.push(a[1]);
    assert.deepEqual(message(r.push(a[2])), msg(10, 1));
  });

  it("discards a half-assembled message when a fragment of another arrives", () => {
    const r = new Reassembler();
    const a = fragment(msg(10, 1), 23, 5);
    const b = fragment(msg(10, 2), 23, 6);
    r.push(a[0]);
    r.push(a[1]);
    const res = r.push(b[0]);
    assert.equal(res.type, "partial");
    assert.match(
      (res as { discarded: string }).discarded,
      /message 6 discards 8 bytes of message 5/,
    );
    r.push(b[1]);
    assert.deepEqual(message(r.push(b[2])), msg(10, 2));
  });

  it("lets a later message's fragments join those of a message numbered 0, as OpenHarmony does", () => {
    // OpenHarmony marks an empty buffer with seq 0, so message 0 is not told apart.
    const r = new Reassembler();
    const a = fragment(msg(8, 1), 23, 0);
    const b = fragment(msg(8, 2), 23, 7);
    assert.equal(r.push(a[0]).type, "partial");
    const res = r.push(b[1]);
    assert.equal(res.type, "message");
    assert.equal(res.discarded, undefined);
    assert.deepEqual(
      message(res),
      Uint8Array.of(...msg(8, 1).subarray(0, 4), ...msg(8, 2).subarray(4)),
    );
  });

  it("drops a duplicate fragment and discards everything on overlap or a gap", () => {
    const r = new Reassembler();
    const m = msg(12);
    const ws = fragment(m, 23, 4);
    r.push(ws[0]);
    assert.match((r.push(ws[0]) as { reason: string }).reason, /duplicate fragment at offset 0/);
    // offsets 0 and 2 with sizes 4 and 8 reach total 12 but overlap: all discarded.
    const overlap = fragmentAt(m, m.subarray(2, 10), 2, 4);
    assert.match((r.push(overlap) as { reason: string }).reason, /not contiguous/);
    assert.equal(r.buffered, 0);
    // More bytes than total: all discarded.
    r.push(ws[0]);
    r.push(fragmentAt(m, m.subarray(3, 8), 3, 4));
    assert.match(
      (r.push(fragmentAt(m, m.subarray(9, 12), 9, 4)) as { reason: string }).reason,
      /12 bytes received|all discarded/,
    );
  });

  it("holds fewer bytes than the total and at most one fragment per offset", () => {
    const r = new Reassembler();
    // Zero-byte fragments at every offset are kept (OpenHarmony keeps them too).
    for (let off = 0; off <= 100; off++) r.push(value(3, 0, off, 100));
    assert.equal(r.fragments, 101);
    assert.equal(r.buffered, 0);
    assert.equal(r.push(value(3, 0, 50, 100)).type, "rejected");
    assert.equal(r.fragments, 101);
  });
});

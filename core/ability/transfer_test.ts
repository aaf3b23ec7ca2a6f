import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Inbound, Outbound, type ReceiveBudget } from "./_transfer.ts";
import { CHUNK_BYTES, MAX_DATA_BYTES } from "./types.ts";
import { decodeMessage, TransferKind } from "./wire.ts";

function budget(limit = 1 << 30): ReceiveBudget {
  return { limit, used: 0 };
}

describe("transfers", () => {
  it("the sender cuts a transfer into begin and chunks the receiver fills in place", () => {
    const bytes = new Uint8Array(CHUNK_BYTES * 2 + 17).map((_, i) => i * 7);
    const out = new Outbound();
    let settled: Error | undefined | null = null;
    out.push({ id: out.nextId(), kind: TransferKind.DATA, bytes, settle: (e) => settled = e });
    const b = budget();
    const inbound = new Inbound(b);
    let done: Uint8Array | undefined;
    let messages = 0;
    for (let m = out.peek(); m !== undefined; m = out.peek()) {
      messages++;
      assert.ok(m.length <= CHUNK_BYTES + 5, "no message larger than a chunk");
      out.sent();
      const d = decodeMessage(m)!;
      const r = d.type === "begin"
        ? inbound.begin(d.id, d.kind, d.total)
        : d.type === "chunk"
        ? inbound.chunk(d.id, d.bytes)
        : undefined;
      if (r?.type === "done") done = r.bytes;
      else assert.equal(r, undefined);
      if (d.type === "begin") assert.equal(b.used, bytes.length, "the buffer is counted once");
    }
    assert.equal(messages, 1 + 3);
    assert.deepEqual(done, bytes);
    assert.equal(b.used, 0, "delivered: no longer counted");
    assert.equal(settled, null, "settled only by the peer's answer");
    assert.equal(out.settle(1, undefined)?.id, 1);
    assert.equal(settled, undefined);
  });

  it("the receiver refuses what is over the cap or the budget, and skips its chunks", () => {
    const b = budget(1000);
    const inbound = new Inbound(b);
    const over = inbound.begin(1, TransferKind.DATA, MAX_DATA_BYTES + 1);
    assert.equal(over?.type, "refuse");
    assert.equal(inbound.chunk(1, new Uint8Array(10)), undefined, "chunks of a refused transfer");
    assert.equal(inbound.begin(2, TransferKind.DATA, 1001)?.type, "refuse");
    assert.equal(inbound.begin(3, TransferKind.DATA, 600), undefined);
    assert.equal(b.used, 600);
    const r = inbound.begin(4, TransferKind.DATA, 10);
    assert.equal(r?.type, "error", "a transfer begins before the last ended");
    inbound.abort();
    assert.equal(b.used, 0);
  });

  it("a peer overflowing a transfer, or chunking an unknown one, is a protocol error", () => {
    const inbound = new Inbound(budget());
    assert.equal(inbound.chunk(9, new Uint8Array(1))?.type, "error");
    assert.equal(inbound.begin(1, 9, 10)?.type, "error", "unknown kind");
    assert.equal(inbound.begin(2, TransferKind.DATA, 10), undefined);
    assert.equal(inbound.chunk(2, new Uint8Array(11))?.type, "error");
  });

  it("a transfer refused while being sent stops, and the rest fail when the session ends", () => {
    const out = new Outbound();
    const results: (string | undefined)[] = [];
    const settle = (e: Error | undefined) => results.push(e?.message);
    out.push({ id: out.nextId(), kind: 1, bytes: new Uint8Array(CHUNK_BYTES * 3), settle });
    out.push({ id: out.nextId(), kind: 1, bytes: new Uint8Array(5), settle });
    out.peek();
    out.sent(); // begin of 1
    out.peek();
    out.sent(); // first chunk of 1
    out.settle(1, new Error("refused"));
    assert.equal(decodeMessage(out.peek()!)?.type, "begin", "transfer 2 goes next");
    assert.equal((decodeMessage(out.peek()!) as { id: number }).id, 2);
    out.fail(new Error("gone"));
    assert.deepEqual(results, ["refused", "gone"]);
    assert.equal(out.peek(), undefined);
  });
});

describe("transfers to a wire version 2 peer", () => {
  it("each piece is a header, then the transfer's own bytes (a view, not a copy)", () => {
    const bytes = new Uint8Array(CHUNK_BYTES + 10).map((_, i) => i * 3);
    const out = new Outbound();
    out.split(true);
    out.push({ id: out.nextId(), kind: TransferKind.DATA, bytes, settle: () => {} });
    const seen: string[] = [];
    for (let m = out.peek(); m !== undefined; m = out.peek()) {
      assert.deepEqual(out.peek(), m, "the same message until it is taken");
      if (out.owed) {
        assert.equal(m.buffer, bytes.buffer, "the caller's buffer");
        seen.push(`${m.length} bytes at ${m.byteOffset}`);
      } else {
        const d = decodeMessage(m)!;
        seen.push(d.type === "piece" ? `piece ${d.length}` : d.type);
      }
      out.sent();
    }
    assert.deepEqual(seen, [
      "begin",
      `piece ${CHUNK_BYTES}`,
      `${CHUNK_BYTES} bytes at 0`,
      "piece 10",
      `10 bytes at ${CHUNK_BYTES}`,
    ]);
  });

  it("the bytes of a piece whose header went still go when its transfer is given up or refused", () => {
    for (const end of ["cancel", "refuse"] as const) {
      const out = new Outbound();
      out.split(true);
      const first = new Uint8Array(CHUNK_BYTES * 2);
      out.push({ id: out.nextId(), kind: TransferKind.DATA, bytes: first, settle: () => {} });
      out.push({
        id: out.nextId(),
        kind: TransferKind.DATA,
        bytes: new Uint8Array(3),
        settle: () => {},
      });
      out.sent(); // begin of 1
      out.sent(); // the first piece's header
      if (end === "cancel") assert.deepEqual(out.cancel(1), { started: true, head: true });
      else assert.equal(out.settle(1, new Error("refused"))?.id, 1);
      assert.ok(out.owed, `${end}: the bytes are owed`);
      assert.equal(out.peek()!.length, CHUNK_BYTES);
      out.sent();
      assert.equal(decodeMessage(out.peek()!)?.type, "begin", `${end}: then transfer 2`);
      out.fail(new Error("gone"));
      assert.equal(out.peek(), undefined);
    }
  });
});

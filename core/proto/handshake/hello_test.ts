import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createCodec } from "../../../wasm/mod.ts";
import { FrameType } from "../frame.ts";
import { encodeHello, type Hello, HelloReader, MAX_HELLO, PROTOCOL_VERSION } from "./hello.ts";

const codec = createCodec();
const A = "00:00:00:00:00:0A";

function frame(type: number, stream: number, payload: Uint8Array): Uint8Array {
  return codec.encodeBatch([{ type, stream, seq: 0, total: payload.length, offset: 0, payload }])
    .slice();
}
const json = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));

describe("handshake messages", () => {
  it("reads a hello split at every byte, and hands back the bytes after it", () => {
    const hello: Hello = { op: "refuse", id: A.toLowerCase(), nonce: "n", reason: "clash" };
    const link = frame(FrameType.PING, 0, new Uint8Array(0));
    const wire = new Uint8Array([...encodeHello(codec, hello), ...link]);
    for (let cut = 1; cut < wire.length; cut++) {
      const r = new HelloReader(codec);
      let got = r.push(wire.subarray(0, cut));
      // Once the hello is read, later bytes belong to the link, not the reader.
      let after = got === undefined ? new Uint8Array(0) : wire.subarray(cut);
      if (got === undefined) got = r.push(wire.subarray(cut));
      assert.ok(got !== undefined && "hello" in got, `cut at ${cut}`);
      assert.deepEqual(got.hello, { op: "refuse", id: A, nonce: "n", reason: "clash" });
      after = new Uint8Array([...got.rest, ...after]);
      assert.deepEqual([...after], [...link], `cut at ${cut}`);
    }
  });

  it("refuses another protocol version, saying which", () => {
    const r = new HelloReader(codec);
    const got = r.push(frame(1, 0, json({ v: 1, op: "hello", id: A, nonce: "n" })));
    assert.ok(got !== undefined && "error" in got);
    assert.equal(got.version, 1);
    assert.match(got.error, /version 1 \(this device speaks 3\)/);
    assert.equal(PROTOCOL_VERSION, 3);
  });

  it("refuses what is not a handshake", () => {
    const cases: [string, Uint8Array][] = [
      ["http", new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n")],
      ["data frame", frame(0, 0, json({ v: PROTOCOL_VERSION, op: "hello", id: A, nonce: "n" }))],
      ["stream 1", frame(1, 1, json({ v: PROTOCOL_VERSION, op: "hello", id: A, nonce: "n" }))],
      ["not json", frame(1, 0, new Uint8Array([1, 2, 3]))],
      ["bad id", frame(1, 0, json({ v: PROTOCOL_VERSION, op: "hello", id: "nope", nonce: "n" }))],
      ["bad op", frame(1, 0, json({ v: PROTOCOL_VERSION, op: "hi", id: A, nonce: "n" }))],
      ["too big", frame(1, 0, new Uint8Array(MAX_HELLO + 1))],
    ];
    for (const [what, bytes] of cases) {
      const got = new HelloReader(codec).push(bytes);
      assert.ok(got !== undefined && "error" in got, what);
    }
  });
});

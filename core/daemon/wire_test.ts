import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  ATTACH_MAJOR,
  ATTACH_MINOR,
  AttachDecoder,
  type AttachMessage,
  AttachProtocolError,
  encodeAttach,
  MAX_ATTACH_MESSAGE,
} from "./wire.ts";

const target = { peer: "02:00:00:00:00:01", name: "demo", bundle: "com.example" };

const FROM_APP: AttachMessage[] = [
  { type: "hello", major: ATTACH_MAJOR, minor: ATTACH_MINOR, caps: 0, pid: 42 },
  { type: "serve", kind: 1, names: ["a\u0000b\u0000c", "x"] },
  { type: "connect", handle: 3, kind: 0, timeout: 10_000, maxMessage: 4096, ...target },
  { type: "accept", handle: 2 },
  { type: "reject", handle: 4, code: 32390201 },
  { type: "data", handle: 3, bytes: new Uint8Array([1, 2, 3]) },
  { type: "close", handle: 3 },
  { type: "pair", request: 1, op: "offer", timeout: 120_000 },
  { type: "pair", request: 2, op: "enter", target: "127.0.0.1:38470", code: "123456" },
];

const FROM_DAEMON: AttachMessage[] = [
  {
    type: "welcome",
    major: ATTACH_MAJOR,
    minor: ATTACH_MINOR,
    caps: 0,
    deviceId: "02:00:00:00:00:0D",
    nonce: "abc",
    port: 38470,
    bind: "127.0.0.1",
    pid: 7,
  },
  { type: "open", handle: 2, kind: 1, ...target },
  { type: "opened", handle: 3 },
  { type: "rejected", handle: 5, code: 32390201 },
  { type: "failed", handle: 7, code: 32390300, message: "no route" },
  { type: "deliver", handle: 2, bytes: new Uint8Array([9]) },
  { type: "closed", handle: 2, reason: -425918059, byPeer: true },
  { type: "sent", handle: 3, bytes: 1000, buffered: 24 },
  { type: "state", links: [["02:00:00:00:00:01", 1]], known: ["02:00:00:00:00:01"] },
  { type: "listenerFailed", message: "gone" },
  { type: "error", message: "bye" },
  { type: "pairing", request: 1, offer: "654321" },
  {
    type: "pairing",
    request: 1,
    paired: { id: "02:00:00:00:00:0B", key: "a2V5", how: "paired", since: 5, address: "h:1" },
  },
  { type: "pairing", request: 2, failed: { code: 32390300, message: "wrong code" } },
];

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

describe("attach protocol", () => {
  it("every message survives encoding, whole or a byte at a time", () => {
    for (const [from, list] of [["app", FROM_APP], ["daemon", FROM_DAEMON]] as const) {
      const bytes = concat(list.map(encodeAttach));
      assert.deepEqual(new AttachDecoder(from).push(bytes), list);
      const d = new AttachDecoder(from);
      const got: AttachMessage[] = [];
      for (const b of bytes) got.push(...d.push(new Uint8Array([b])));
      assert.deepEqual(got, list);
      assert.equal(d.pending, 0);
    }
  });

  it("a message of the other direction is a protocol error", () => {
    assert.throws(
      () => new AttachDecoder("daemon").push(encodeAttach(FROM_APP[0])),
      AttachProtocolError,
    );
    assert.throws(
      () => new AttachDecoder("app").push(encodeAttach(FROM_DAEMON[0])),
      AttachProtocolError,
    );
  });

  it("a length over the limit or zero is refused before any body is held", () => {
    const d = new AttachDecoder("app");
    assert.throws(
      () => d.push(new Uint8Array([0xff, 0xff, 0xff, 0xff])),
      /a message of 4294967295 bytes \(attach messages are 1\.\.\d+ bytes\)/,
    );
    assert.equal(d.pending, 4);
    const big = new Uint8Array(4);
    new DataView(big.buffer).setUint32(0, MAX_ATTACH_MESSAGE + 1);
    assert.throws(() => new AttachDecoder("app").push(big), AttachProtocolError);
    assert.throws(() => new AttachDecoder("app").push(new Uint8Array(4)), /a message of 0 bytes/);
  });

  it("a length alone makes the decoder hold nothing more; the buffer grows with the bytes", () => {
    const d = new AttachDecoder("app");
    const data = encodeAttach({
      type: "data",
      handle: 1,
      bytes: new Uint8Array(MAX_ATTACH_MESSAGE - 5),
    });
    assert.deepEqual(d.push(data.subarray(0, 6)), []);
    assert.ok(d.pending <= 64 * 1024 + 4, `${d.pending} bytes held for 6 received`);
    assert.deepEqual(d.push(data.subarray(6, 1_000_000)), []);
    assert.ok(d.pending < 2 * 1_000_000, `${d.pending} bytes held for 1 MB received`);
    const [m] = d.push(data.subarray(1_000_000));
    assert.equal(m.type, "data");
    assert.equal((m as { bytes: Uint8Array }).bytes.length, MAX_ATTACH_MESSAGE - 5);
    assert.equal(d.pending, 0);
  });

  it("malformed bodies are protocol errors: bad magic, unknown type, truncated, bad JSON", () => {
    const hello = encodeAttach(FROM_APP[0]);
    const badMagic = hello.slice();
    badMagic[5] = 0x58;
    const unknown = new Uint8Array([0, 0, 0, 1, 60]);
    const truncated = new Uint8Array([0, 0, 0, 3, 3, 0, 0]); // connect without its fields
    const badJson = concat([new Uint8Array([0, 0, 0, 4, 2, 0, 1]), new TextEncoder().encode("[")]);
    badJson[3] = badJson.length - 4;
    const pair = (body: unknown) => {
      const b = concat([
        new Uint8Array([0, 0, 0, 0, 8, 0, 0, 0, 1]),
        new TextEncoder().encode(
          JSON.stringify(body),
        ),
      ]);
      b[3] = b.length - 4;
      return b;
    };
    const badPairs = [
      pair({ op: "offer", timeout: 0 }),
      pair({ op: "enter", target: "h:1" }),
      pair({ op: "revoke" }),
    ];
    for (const bytes of [badMagic, unknown, truncated, badJson, ...badPairs]) {
      assert.throws(
        () => new AttachDecoder("app").push(bytes),
        /a malformed or unexpected message \(type \d+, \d+ bytes\)/,
      );
    }
  });
});

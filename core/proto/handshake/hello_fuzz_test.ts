/**
 * Fuzzing of the handshake reader, the first parser a stranger's bytes
 * reach: valid hellos, hellos with fuzzed JSON, mutated and random bytes,
 * split anywhere. It never throws, never waits for more than one handshake
 * frame's bytes, and what it accepts is well formed.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createCodec } from "../../../wasm/mod.ts";
import { nativeCrc } from "../../../platform/crc.ts";
import { chunks, fuzz, FUZZ_SEED, mutate, type Rand } from "../../../tests/harness/fuzz.ts";
import { FRAME_OVERHEAD, FrameType } from "../frame.ts";
import { isDeviceId } from "../../device/config.ts";
import { encodeHello, type Hello, HelloReader, MAX_HELLO, PROTOCOL_VERSION } from "./hello.ts";

const codecs = [createCodec({ crc: nativeCrc() }), createCodec({ engine: "reference" })];
const OPS = ["hello", "welcome", "refuse"] as const;
const REASONS = ["duplicate", "self", "clash", "version", "busy"];

const hex2 = (n: number) => n.toString(16).padStart(2, "0");

function randomId(rnd: Rand): string {
  return Array.from({ length: 6 }, () => hex2(rnd(256))).join(":");
}

function anyValue(rnd: Rand): unknown {
  switch (rnd(12)) {
    case 0:
      return null;
    case 1:
      return rnd(2) === 0;
    case 2:
      return [0, 1, 2, 3, -1, 2.5, 1e300, PROTOCOL_VERSION][rnd(8)];
    case 3:
      return "x".repeat([0, 1, 63, 64, 65, 5000][rnd(6)]);
    case 4:
      return randomId(rnd);
    case 5:
      return randomId(rnd).replaceAll(":", "-");
    case 6:
      return OPS[rnd(3)];
    case 7:
      return REASONS[rnd(5)];
    case 8:
      return [anyValue(rnd)];
    case 9:
      return { id: randomId(rnd) };
    case 10:
      return "\u0000\ud800é";
    default:
      return undefined;
  }
}

/** A handshake-like JSON object: mostly right fields, some wrong. */
function fuzzedBody(rnd: Rand): Record<string, unknown> {
  const body: Record<string, unknown> = {
    v: rnd(4) === 0 ? anyValue(rnd) : PROTOCOL_VERSION,
    op: rnd(4) === 0 ? anyValue(rnd) : OPS[rnd(3)],
    id: rnd(4) === 0 ? anyValue(rnd) : randomId(rnd),
    nonce: rnd(4) === 0 ? anyValue(rnd) : "n".repeat(rnd(70)),
  };
  if (rnd(2) === 0) body.reason = rnd(2) === 0 ? REASONS[rnd(5)] : anyValue(rnd);
  if (rnd(4) === 0) body[["__proto__", "constructor", "extra", "v"][rnd(4)]] = anyValue(rnd);
  return body;
}

function frame(
  codec: (typeof codecs)[number],
  type: number,
  stream: number,
  payload: Uint8Array,
): Uint8Array {
  return codec.encodeBatch([{ type, stream, seq: 0, total: payload.length, offset: 0, payload }])
    .slice();
}

describe("fuzz: the handshake reader", () => {
  it(`never throws, never holds more than one handshake frame, accepts only well-formed hellos (seed ${FUZZ_SEED})`, () => {
    let accepted = 0;
    let refused = 0;
    const cases = fuzz("HelloReader", (rnd) => {
      const codec = codecs[rnd(2)];
      let input: Uint8Array;
      let want: Hello | undefined;
      switch (rnd(5)) {
        case 0: {
          const op = OPS[rnd(3)];
          want = { op, id: randomId(rnd), nonce: "n".repeat(rnd(65)) };
          if (op === "refuse" && rnd(2) === 0) want.reason = REASONS[rnd(5)] as Hello["reason"];
          input = encodeHello(codec, want);
          break;
        }
        case 1:
          input = frame(
            codec,
            rnd(4) === 0 ? rnd(5) : FrameType.CONTROL,
            rnd(4) === 0 ? rnd(3) : 0,
            new TextEncoder().encode(JSON.stringify(fuzzedBody(rnd))),
          );
          break;
        case 2: {
          // JSON text cut or spliced: not always an object.
          const text = JSON.stringify(fuzzedBody(rnd));
          const cut = text.slice(0, rnd(text.length + 1)) + ["", "}", "]", '"', "{}"][rnd(5)];
          input = frame(codec, FrameType.CONTROL, 0, new TextEncoder().encode(cut));
          break;
        }
        case 3:
          input = mutate(rnd, encodeHello(codec, { op: "hello", id: randomId(rnd), nonce: "n" }));
          break;
        default:
          input = Uint8Array.from({ length: rnd(6000) }, () => rnd(256));
          if (input.length > 0 && rnd(2) === 0) input[0] = 1; // our version: a header is read
      }
      // What follows the handshake belongs to the link.
      const tail = Uint8Array.from({ length: rnd(3) === 0 ? rnd(300) : 0 }, () => rnd(256));
      const wire = new Uint8Array(input.length + tail.length);
      wire.set(input);
      wire.set(tail, input.length);
      const reader = new HelloReader(codec);
      let pushed = 0;
      let got: ReturnType<HelloReader["push"]>;
      for (const chunk of chunks(rnd, wire)) {
        got = reader.push(chunk);
        pushed += chunk.length;
        if (got !== undefined) break;
        // Still waiting: the bytes so far cannot hold a whole handshake frame yet.
        assert.ok(pushed < FRAME_OVERHEAD + MAX_HELLO, `waits after ${pushed} bytes`);
      }
      if (got === undefined) return;
      if ("error" in got) {
        refused++;
        assert.ok(typeof got.error === "string" && got.error.length > 0);
        if (got.version !== undefined) {
          assert.ok(Number.isInteger(got.version) && got.version !== PROTOCOL_VERSION);
        }
        assert.equal(want, undefined, `a valid hello was refused: ${got.error}`);
        return;
      }
      accepted++;
      const { hello, rest } = got;
      assert.ok(OPS.includes(hello.op), hello.op);
      assert.ok(isDeviceId(hello.id) && hello.id === hello.id.toUpperCase(), hello.id);
      assert.ok(typeof hello.nonce === "string" && hello.nonce.length <= 64);
      assert.ok(hello.reason === undefined || REASONS.includes(hello.reason), String(hello.reason));
      assert.deepEqual(
        Object.keys(hello).sort(),
        ["id", "nonce", "op", ...hello.reason ? ["reason"] : []].sort(),
      );
      // The rest is exactly what followed the first frame, up to what was pushed.
      const first = FRAME_OVERHEAD + ((wire[16] << 8) | wire[17]);
      assert.deepEqual([...rest], [...wire.subarray(first, pushed)]);
      if (want !== undefined) assert.deepEqual(hello, { ...want, id: want.id.toUpperCase() });
    });
    assert.ok(
      cases >= 20 && accepted > 0 && refused > 0,
      `${cases} cases, ${accepted} accepted, ${refused} refused`,
    );
  });
});

import { describe, it, test } from "node:test";
import assert from "node:assert/strict";
import {
  type Codec,
  CodecErrorCode,
  crc32,
  crcSources as wasmCrcSources,
  createCodec,
  DEFAULT_REASSEMBLY_LIMITS as DEFAULT_LIMITS,
  type FrameInit,
  FrameType,
  maxPayload,
  type Message,
  wasmMemoryBytes,
} from "./mod.ts";
import {
  cut,
  decodeAll,
  encodeCopy,
  hex,
  prng,
  randomBytes,
  reassembleAll,
  unhex,
} from "../tests/harness/framing.ts";
import vectors from "../tests/vectors/frames.json" with { type: "json" };
import { copyOut } from "../core/proto/frame.ts";
import { nativeCrc, nativeCrcSources } from "../platform/crc.ts";

/** Every CRC-32 source here: the runtime's native ones first, then wasm and reference. */
const crcSources = () => [...nativeCrcSources(), ...wasmCrcSources()];

const enc = new TextEncoder();
const DIGITS = enc.encode("123456789");

/** Every engine with the native CRC source, plus each with its own CRC. */
function codecs(): [string, Codec][] {
  return [
    ["wasm", createCodec({ engine: "wasm", crc: nativeCrc() })],
    ["wasm+wasm-crc", createCodec({ engine: "wasm", crc: "wasm" })],
    ["reference", createCodec({ engine: "reference", crc: nativeCrc() })],
    ["reference+reference-crc", createCodec({ engine: "reference", crc: "reference" })],
  ];
}

describe("crc32", () => {
  test("wasm and reference sources exist, every source gives 0xCBF43926", () => {
    assert.deepEqual(wasmCrcSources().map((s) => s.name), ["wasm", "reference"]);
    const names = crcSources().map((s) => s.name);
    assert.ok(names.includes("wasm") && names.includes("reference"));
    assert.equal(names.at(-1), "reference");
    for (const s of crcSources()) assert.equal(s.crc32(DIGITS), 0xcbf43926, s.name);
    assert.equal(crc32(DIGITS), 0xcbf43926);
    assert.equal(crc32(new Uint8Array(0)), 0);
  });

  test("the runtime's native sources come first", () => {
    const names = crcSources().map((s) => s.name);
    if ("Bun" in globalThis) assert.equal(names[0], "bun");
    else assert.equal(names[0], "node:zlib");
    for (const c of codecs()) assert.equal(c[1].crc32(DIGITS), 0xcbf43926);
  });

  test("every source agrees on random sizes, seeds and unaligned views", () => {
    const rnd = prng(1);
    const data = randomBytes(rnd, 300_000); // larger than the wasm CRC scratch
    const wasmInput = createCodec().inputBuffer();
    const ref = crcSources().at(-1)!;
    const sizes = [0, 1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 63, 64, 65, 255, 1024, 4099, 65536, 65537];
    for (const size of [...sizes, 200_000, 300_000 - 3]) {
      const off = rnd(4);
      const view = data.subarray(off, off + Math.min(size, data.length - off));
      const want = ref.crc32(view);
      for (const s of crcSources()) {
        assert.equal(s.crc32(view), want, `${s.name} size ${size} offset ${off}`);
        // Continuation: crc(a ++ b) = crc(b, crc(a)).
        const k = rnd(view.length + 1);
        assert.equal(s.crc32(view.subarray(k), s.crc32(view.subarray(0, k))), want, s.name);
        // An unaligned view of wasm memory.
        if (view.length <= wasmInput.length - 8) {
          const w = wasmInput.subarray(1 + off, 1 + off + view.length);
          w.set(view);
          assert.equal(s.crc32(w), want, `${s.name} on wasm memory`);
        }
      }
    }
    // Seeds from any source continue in any other.
    for (const a of crcSources()) {
      for (const b of crcSources()) {
        assert.equal(b.crc32(DIGITS.subarray(4), a.crc32(DIGITS.subarray(0, 4))), 0xcbf43926);
      }
    }
  });

  test("the wasm CRC agrees at every boundary of its kernels (1 KiB and 16 KiB lane runs)", () => {
    // The wasm CRC runs 16-lane SIMD over runs of 16 KiB, then of 1 KiB, then
    // slicing-by-16 and single bytes: cover every length around those sizes.
    const source = (name: string) => crcSources().find((s) => s.name === name)!;
    const wasm = source("wasm");
    const ref = source("reference");
    const rnd = prng(7);
    const patterns = [randomBytes(rnd, 70_000), new Uint8Array(70_000), new Uint8Array(70_000)];
    patterns[2].fill(0xff);
    const lengths = new Set<number>();
    for (let n = 0; n <= 1100; n++) lengths.add(n);
    for (let k = 1; k <= 4; k++) {
      for (let d = -17; d <= 17; d++) lengths.add(k * 16384 + d);
      for (let d = -1; d <= 1; d++) lengths.add(k * 16384 + 1024 * k + d);
    }
    for (let k = 2; k <= 17; k++) for (const d of [-1, 0, 1, 15, 16]) lengths.add(k * 1024 + d);
    for (const data of patterns) {
      for (const n of lengths) {
        const view = data.subarray(3, 3 + n);
        const seed = rnd(2) === 0 ? 0 : (rnd(0x10000) * 0x10000 + rnd(0x10000)) >>> 0;
        assert.equal(wasm.crc32(view, seed), ref.crc32(view, seed), `length ${n} seed ${seed}`);
      }
    }
  });
});

test("copyOut() copies a range of a view into an ArrayBuffer of its own", () => {
  const backing = new Uint8Array(64).map((_, i) => i);
  const view = backing.subarray(8, 40);
  const out = copyOut(view, 4, 12);
  assert.ok(out instanceof ArrayBuffer);
  assert.notEqual(out, backing.buffer);
  assert.deepEqual([...new Uint8Array(out)], [12, 13, 14, 15, 16, 17, 18, 19]);
  backing.fill(0);
  assert.equal(new Uint8Array(out)[0], 12);
  assert.equal(copyOut(view, 5, 5).byteLength, 0);
});

describe("maxPayload()", () => {
  test("maxPayload() returns mtu - 22 and rejects MTUs outside 23..65535", () => {
    assert.equal(maxPayload(23), 1);
    assert.equal(maxPayload(65535), 65513);
    for (const bad of [22, 0, -1, 65536, 1.5, NaN]) {
      assert.throws(() => maxPayload(bad), { name: "ParameterError", code: 401 });
    }
    const codec = createCodec();
    assert.throws(
      () => codec.encodeMessage(new Uint8Array(10), { type: 0, stream: 0, seq: 0, mtu: 22 }),
      { name: "ParameterError", message: 'Invalid MTU "22": expected an integer in 23..65535' },
    );
  });
});

describe("golden vectors (tests/vectors/frames.json)", () => {
  for (const [name, codec] of codecs()) {
    test(`${name} encodes and decodes every golden frame`, () => {
      for (const v of vectors.frames) {
        const frame: FrameInit = {
          type: v.type,
          stream: v.stream,
          seq: v.seq,
          total: v.total,
          offset: v.offset,
          payload: unhex(v.payloadHex),
        };
        assert.equal(hex(codec.encodeBatch([frame])), v.hex, v.name);
        const { frames, code } = decodeAll(codec.createDecoder(), [unhex(v.hex)]);
        assert.equal(code, 0, v.name);
        assert.equal(frames.length, 1);
        assert.deepEqual({ ...frames[0], payload: hex(frames[0].payload) }, {
          ...frame,
          length: frame.payload.length,
          payload: v.payloadHex,
        });
      }
      // All golden frames back to back, in one batch.
      const all = codec.encodeBatch(vectors.frames.map((v) => ({
        type: v.type,
        stream: v.stream,
        seq: v.seq,
        total: v.total,
        offset: v.offset,
        payload: unhex(v.payloadHex),
      })));
      assert.equal(hex(all), vectors.frames.map((v) => v.hex).join(""));
    });

    test(`${name} rejects every invalid golden frame with its code`, () => {
      for (const v of vectors.invalid) {
        const want = CodecErrorCode[v.error as keyof typeof CodecErrorCode];
        const good = unhex(vectors.frames[0].hex);
        const bytes = new Uint8Array(good.length + unhex(v.hex).length);
        bytes.set(good);
        bytes.set(unhex(v.hex), good.length);
        const decoder = codec.createDecoder();
        const { frames, code } = decodeAll(decoder, [bytes]);
        assert.equal(code, want, v.name);
        assert.equal(frames.length, 1, `the valid frame before "${v.name}" is delivered`);
        assert.equal(decoder.error, want);
        assert.equal(decoder.push(good, () => assert.fail("dead decoder")), want);
      }
    });
  }
});

describe("encodeMessage() and encodeBatch()", () => {
  const MTUS = [23, 24, 247, 1500, 65535];
  test("encodeMessage() chunks at every MTU and engines agree byte for byte", () => {
    const rnd = prng(2);
    const [, wasm] = codecs()[0];
    const others = codecs().slice(1);
    for (const mtu of MTUS) {
      const p = mtu - 22;
      for (const n of new Set([0, 1, p - 1, p, p + 1, 3 * p + 5, 40_000])) {
        if (mtu === 23 && n > 5000) continue;
        const data = randomBytes(rnd, n);
        const o = { type: FrameType.DATA, stream: 9, seq: n, mtu };
        const wire = encodeCopy(wasm, data, o);
        const count = n === 0 ? 1 : Math.ceil(n / p);
        assert.equal(wire.length, n + 22 * count, `mtu ${mtu} n ${n}`);
        for (const [name, c] of others) {
          assert.equal(hex(encodeCopy(c, data, o)), hex(wire), `${name} mtu ${mtu} n ${n}`);
        }
        const { frames, code } = decodeAll(wasm.createDecoder({ maxFrameSize: mtu }), [wire]);
        assert.equal(code, 0);
        assert.equal(frames.length, count);
        frames.forEach((f, i) => {
          assert.equal(f.length, i < count - 1 ? p : n - p * (count - 1));
          assert.ok(f.length + 22 <= mtu);
          assert.equal(f.offset, i * p);
          assert.equal(f.total, n);
        });
        const r = wasm.createReassembler();
        const { messages, codes } = reassembleAll(r, frames);
        assert.ok(codes.every((c) => c === 0));
        assert.equal(messages.length, 1);
        assert.deepEqual(messages[0].data, data);
        r.close();
      }
    }
  });

  test("encodeMessage() of a maximum-size message round-trips on every engine", () => {
    const data = randomBytes(prng(3), DEFAULT_LIMITS.maxMessageSize);
    let first: string | undefined;
    for (const [name, codec] of codecs().filter(([n]) => !n.includes("+"))) {
      for (const mtu of [1500, 65535]) {
        const wire = encodeCopy(codec, data, { type: 0, stream: 1, seq: 2, mtu });
        if (mtu === 65535) {
          const h = String(crc32(wire));
          first ??= h;
          assert.equal(h, first, name);
        }
        const r = codec.createReassembler();
        const got: Message[] = [];
        let bad = 0;
        const code = codec.createDecoder().push(wire, (f) => {
          bad ||= r.push(f, (m) => got.push(m));
        });
        assert.equal(code, 0);
        assert.equal(bad, 0);
        assert.equal(got.length, 1);
        assert.equal(crc32(got[0].data), crc32(data));
        const tooBig = new Uint8Array(DEFAULT_LIMITS.maxMessageSize + 1);
        const w2 = codec.encodeMessage(tooBig, { type: 0, stream: 1, seq: 3, mtu, end: 10 });
        assert.equal(
          codec.createDecoder().push(w2, (f) => {
            assert.equal(r.push(f, () => {}), CodecErrorCode.MESSAGE_TOO_LARGE);
          }),
          0,
        );
        r.close();
      }
    }
  });

  test("encodeMessage() ranges with different MTUs cover a message", () => {
    const data = randomBytes(prng(4), 10_000);
    for (const [name, codec] of codecs()) {
      const parts = [
        encodeCopy(codec, data, { type: 1, stream: 2, seq: 3, mtu: 100, start: 0, end: 3000 }),
        encodeCopy(codec, data, { type: 1, stream: 2, seq: 3, mtu: 1500, start: 3000, end: 3001 }),
        encodeCopy(codec, data, { type: 1, stream: 2, seq: 3, mtu: 23, start: 3001, end: 3100 }),
        encodeCopy(codec, data, { type: 1, stream: 2, seq: 3, mtu: 65535, start: 3100 }),
      ];
      const r = codec.createReassembler();
      const got: Message[] = [];
      for (const part of parts.reverse()) {
        decodeAll(codec.createDecoder(), [part]).frames.forEach((f) =>
          assert.equal(r.push(f, (m) => got.push(m)), 0)
        );
      }
      assert.equal(got.length, 1, name);
      assert.deepEqual(got[0].data, data);
      assert.equal(r.pending, 0);
      r.close();
    }
  });

  test("encodeBatch() agrees across engines for huge batches", () => {
    const rnd = prng(5);
    const frames: FrameInit[] = [];
    for (let i = 0; i < 5000; i++) {
      const len = i % 100 === 0 ? 60_000 : rnd(300);
      frames.push({
        type: rnd(5),
        stream: rnd(65536),
        seq: rnd(2 ** 32),
        total: len + rnd(10),
        offset: 0,
        payload: randomBytes(rnd, len),
      });
      if (len === 0) frames[i].total = 0;
    }
    const want = hex(createCodec({ engine: "reference" }).encodeBatch(frames));
    for (const [name, codec] of codecs()) assert.equal(hex(codec.encodeBatch(frames)), want, name);
    assert.equal(hex(createCodec().encodeBatch([])), "");
  });

  test("repeated and changing batch layouts encode, verify and catch corruption alike", () => {
    // The wasm codec reuses its views of frame i while frame i keeps its place:
    // same layouts, then layouts whose frames move or change length.
    const rnd = prng(11);
    const wasm = createCodec({ engine: "wasm" });
    const ref = createCodec({ engine: "reference" });
    const decoder = wasm.createDecoder();
    const k = [1024, 1024, 1024];
    const sizeSets = [k, k, [1000, 1024, 1048], [1024, 1000], k, [5, 5, 5, 5, 5, 5]];
    for (let round = 0; round < 4; round++) {
      for (const sizes of sizeSets) {
        const frames: FrameInit[] = sizes.map((n, i) => ({
          type: FrameType.DATA,
          stream: i,
          seq: round,
          total: n,
          offset: 0,
          payload: randomBytes(rnd, n),
        }));
        const wire = wasm.encodeBatch(frames).slice();
        assert.equal(hex(wire), hex(ref.encodeBatch(frames)));
        const input = wasm.inputBuffer();
        input.set(wire);
        let n = 0;
        assert.equal(decoder.push(input.subarray(0, wire.length), () => n++), 0);
        assert.equal(n, sizes.length);
        // The same layout with one payload byte flipped: the CRC must catch it.
        const bad = wire.slice();
        bad[wire.length - 5] ^= 0x40; // the last payload byte
        input.set(bad);
        const d = wasm.createDecoder();
        assert.equal(d.push(input.subarray(0, bad.length), () => {}), CodecErrorCode.BAD_CRC);
      }
    }
  });

  test("encodeBatch() rejects invalid fields with a ParameterError", () => {
    const base = { type: 0, stream: 0, seq: 0, total: 1, offset: 0, payload: new Uint8Array(1) };
    const bad: FrameInit[] = [
      { ...base, type: 6 },
      { ...base, stream: 65536 },
      { ...base, seq: -1 },
      { ...base, offset: 1 },
      { ...base, payload: new Uint8Array(0) },
      { ...base, total: 70000, payload: new Uint8Array(65514) },
    ];
    for (const [name, codec] of codecs()) {
      for (const f of bad) assert.throws(() => codec.encodeBatch([f]), TypeError, name);
    }
  });
});

describe("Decoder", () => {
  const rnd = prng(6);
  const frames: FrameInit[] = [];
  for (let i = 0; i < 6; i++) {
    const len = [0, 1, 5, 40, 2, 17][i];
    frames.push({
      type: i % 5,
      stream: i,
      seq: 100 + i,
      total: len,
      offset: 0,
      payload: randomBytes(rnd, len),
    });
  }
  const wire = createCodec({ engine: "reference" }).encodeBatch(frames).slice();
  const expected = decodeAll(createCodec({ engine: "reference" }).createDecoder(), [wire]);
  assert.equal(expected.frames.length, 6);

  for (const [name, codec] of codecs()) {
    it(`${name} decodes the same frames at every split point`, () => {
      for (let i = 0; i <= wire.length; i++) {
        for (let j = i; j <= wire.length; j += 7) {
          const got = decodeAll(codec.createDecoder(), cut(wire, [i, j]));
          assert.deepEqual(got, expected, `split at ${i}, ${j}`);
        }
      }
    });

    it(`${name} decodes one byte at a time and many frames per chunk`, () => {
      const bytes = Array.from(wire, (_, i) => wire.subarray(i, i + 1));
      const decoder = codec.createDecoder();
      assert.deepEqual(decodeAll(decoder, bytes), expected);
      assert.equal(decoder.buffered, 0);
      const many = new Uint8Array(wire.length * 50);
      for (let k = 0; k < 50; k++) many.set(wire, k * wire.length);
      const got = decodeAll(codec.createDecoder(), cut(many, [3, 1000, 1001, 2500]));
      assert.equal(got.code, 0);
      assert.equal(got.frames.length, 300);
      // In place, from the codec's input buffer.
      const input = codec.inputBuffer();
      input.set(many, 5);
      const got2 = decodeAll(codec.createDecoder(), [input.subarray(5, 5 + many.length)]);
      assert.deepEqual(got2, got);
      // Partly in place: a frame split between an outside chunk and the input buffer.
      const d = codec.createDecoder();
      const a = decodeAll(d, [wire.subarray(0, 30)]);
      input.set(wire.subarray(30), 0);
      const b = decodeAll(d, [input.subarray(0, wire.length - 30)]);
      assert.deepEqual([...a.frames, ...b.frames], expected.frames);
    });

    it(`${name} checks the header as soon as it arrives`, () => {
      const big = createCodec().encodeBatch([
        { type: 0, stream: 1, seq: 1, total: 1000, offset: 0, payload: new Uint8Array(1000) },
      ]).slice();
      for (const max of [23, 1021]) {
        const d = codec.createDecoder({ maxFrameSize: max });
        assert.equal(d.push(big.subarray(0, 17), () => {}), 0);
        assert.equal(d.push(big.subarray(17, 18), () => {}), CodecErrorCode.BAD_LENGTH);
      }
      const ok = codec.createDecoder({ maxFrameSize: 1022 });
      assert.equal(decodeAll(ok, [big]).frames.length, 1);
      assert.throws(() => codec.createDecoder({ maxFrameSize: 22 }), TypeError);
      assert.throws(() => codec.createDecoder({ maxFrameSize: 65536 }), TypeError);
    });
  }

  it("a wasm decoder refuses to be re-entered from a frame callback", () => {
    const codec = createCodec();
    const outer = codec.createDecoder();
    const inner = codec.createDecoder();
    assert.throws(
      () => outer.push(wire, () => inner.push(wire, () => {})),
      /Cannot push to a wasm decoder from inside a frame callback/,
    );
    assert.equal(decodeAll(codec.createDecoder(), [wire]).frames.length, 6);
  });
});

describe("Reassembler", () => {
  /** Fragments of `data` for message (stream, seq), cut at MTU boundaries of several channels. */
  function fragments(
    codec: Codec,
    data: Uint8Array,
    stream: number,
    seq: number,
    rnd: (n: number) => number,
  ): FrameInit[] {
    const mtus = [23 + rnd(40), 100 + rnd(100), 247, 600];
    const out: FrameInit[] = [];
    let start = 0;
    while (start < data.length || (data.length === 0 && out.length === 0)) {
      const mtu = mtus[rnd(4)];
      const end = Math.min(data.length, start + (mtu - 22) * (1 + rnd(3)));
      const wire = codec.encodeMessage(data, { type: 0, stream, seq, mtu, start, end }).slice();
      out.push(...decodeAll(codec.createDecoder(), [wire]).frames);
      start = end;
      if (data.length === 0) break;
    }
    return out;
  }

  for (const [name, codec] of codecs()) {
    it(`${name} rebuilds shuffled cross-channel fragments of interleaved streams`, () => {
      const rnd = prng(7);
      const want = new Map<string, Uint8Array>();
      const all: FrameInit[] = [];
      for (let m = 0; m < 40; m++) {
        const stream = rnd(4);
        const data = randomBytes(rnd, [0, 1, 500, 3000, 6000][rnd(5)]);
        want.set(`${stream}/${m}`, data);
        all.push(...fragments(codec, data, stream, m, rnd));
      }
      for (let i = all.length - 1; i > 0; i--) {
        const j = rnd(i + 1);
        [all[i], all[j]] = [all[j], all[i]];
      }
      const r = codec.createReassembler({ maxHoles: 63, maxMessages: 64 });
      const { messages, codes } = reassembleAll(r, all);
      assert.deepEqual(codes.filter((c) => c !== 0), []);
      assert.equal(messages.length, 40);
      for (const msg of messages) assert.deepEqual(msg.data, want.get(`${msg.stream}/${msg.seq}`));
      assert.equal(r.pending, 0);
      assert.equal(r.messages, 0);
      r.close();
    });

    it(`${name} rejects bad fragments with their exact codes and keeps accepted bytes`, () => {
      const data = Uint8Array.from({ length: 100 }, (_, i) => i);
      const frag = (offset: number, len: number, o: Partial<FrameInit> = {}): FrameInit => ({
        type: 0,
        stream: 1,
        seq: 1,
        total: 100,
        offset,
        payload: data.subarray(offset, offset + len),
        ...o,
      });
      const r = codec.createReassembler({
        maxMessages: 3,
        maxHoles: 2,
        maxStreamPending: 250,
        maxLinkPending: 350,
        maxMessageSize: 200,
      });
      const got: Message[] = [];
      const push = (f: FrameInit) => r.push(f, (m) => got.push(m));
      assert.equal(push(frag(10, 10)), 0);
      assert.equal(r.pending, 100);
      assert.equal(r.streamPending(1), 100);
      assert.equal(push(frag(10, 10)), CodecErrorCode.DUPLICATE_FRAGMENT);
      assert.equal(push(frag(12, 3)), CodecErrorCode.DUPLICATE_FRAGMENT);
      assert.equal(push(frag(5, 10)), CodecErrorCode.OVERLAPPING_FRAGMENT);
      assert.equal(push(frag(15, 10)), CodecErrorCode.OVERLAPPING_FRAGMENT);
      assert.equal(push(frag(0, 30)), CodecErrorCode.OVERLAPPING_FRAGMENT);
      assert.equal(push({ ...frag(0, 5), total: 101 }), CodecErrorCode.FRAGMENT_MISMATCH);
      assert.equal(push({ ...frag(0, 5), type: 1 }), CodecErrorCode.FRAGMENT_MISMATCH);
      assert.equal(
        push({ ...frag(95, 5), payload: new Uint8Array(10) }),
        CodecErrorCode.BAD_LENGTH,
      );
      assert.equal(push({ ...frag(5, 0) }), CodecErrorCode.BAD_LENGTH);
      // [10,20) held; [40,50) would make 3 holes: [0,10) [20,40) [50,100).
      assert.equal(push(frag(40, 10)), CodecErrorCode.TOO_FRAGMENTED);
      assert.equal(push(frag(0, 10)), 0);
      assert.equal(push(frag(40, 10)), 0); // holes [20,40) [50,100)
      // Limits on new messages.
      assert.equal(push({ ...frag(0, 5), seq: 2, total: 201 }), CodecErrorCode.MESSAGE_TOO_LARGE);
      assert.equal(
        push({ ...frag(0, 5), seq: 2, total: 151 }),
        CodecErrorCode.STREAM_LIMIT_EXCEEDED,
      );
      assert.equal(push({ ...frag(0, 5), seq: 2, total: 150 }), 0);
      assert.equal(r.streamPending(1), 250);
      assert.equal(
        push({ ...frag(0, 5), stream: 2, total: 101 }),
        CodecErrorCode.LINK_LIMIT_EXCEEDED,
      );
      assert.equal(push({ ...frag(0, 5), stream: 2, total: 0, payload: new Uint8Array(0) }), 0);
      assert.equal(got.length, 1); // the empty message
      assert.equal(push({ ...frag(0, 5), stream: 2, total: 100 }), 0);
      assert.equal(r.messages, 3);
      assert.equal(
        push({ ...frag(0, 5), stream: 3, seq: 9, total: 0 + 6 }),
        CodecErrorCode.LINK_LIMIT_EXCEEDED,
      );
      r.resetStream(2);
      assert.equal(r.pending, 250);
      assert.equal(push({ ...frag(0, 5), stream: 3, seq: 9, total: 6 }), 0);
      assert.equal(
        push({ ...frag(0, 5), stream: 3, seq: 10, total: 6 }),
        CodecErrorCode.TOO_MANY_MESSAGES,
      );
      // A complete single-fragment message needs no tracking slot.
      assert.equal(push({ ...frag(0, 5), stream: 3, seq: 11, total: 5 }), 0);
      assert.equal(got.length, 2);
      // The first message is intact after all the refusals.
      for (const [o, l] of [[20, 20], [50, 50]]) assert.equal(push(frag(o, l)), 0);
      assert.equal(got.length, 3);
      assert.deepEqual(got[2].data, data);
      assert.equal(got[2].stream, 1);
      assert.equal(r.streamPending(1), 150);
      r.reset();
      assert.equal(r.pending, 0);
      assert.equal(r.messages, 0);
      assert.equal(push({ ...frag(0, 5), seq: 2, total: 150 }), 0);
      r.close();
    });

    it(`${name} validates limits and fragment fields`, () => {
      assert.throws(() => codec.createReassembler({ maxHoles: 0 }), TypeError);
      assert.throws(() => codec.createReassembler({ maxHoles: 64 }), TypeError);
      assert.throws(() => codec.createReassembler({ maxMessages: 129 }), TypeError);
      assert.throws(() => codec.createReassembler({ maxLinkPending: 2 ** 32 }), TypeError);
      const r = codec.createReassembler();
      r.close();
      assert.throws(() =>
        r.push(
          { type: 0, stream: 0, seq: 0, total: 0, offset: 0, payload: new Uint8Array(0) },
          () => {},
        )
      );
    });
  }

  it("the wasm codec falls back to the TS reassembler when its slots are used up", () => {
    const codec = createCodec();
    const many = Array.from({ length: 20 }, () => codec.createReassembler());
    for (const [i, r] of many.entries()) {
      const got: Message[] = [];
      const f = { type: 0, stream: i, seq: 1, total: 2, offset: 0, payload: new Uint8Array([i]) };
      assert.equal(r.push(f, (m) => got.push(m)), 0);
      assert.equal(r.push({ ...f, offset: 1 }, (m) => got.push(m)), 0);
      assert.deepEqual(got[0].data, new Uint8Array([i, i]));
    }
    for (const r of many) r.close();
  });
});

test("wasm memory stays the same size across a million hot-path calls", () => {
  const before = wasmMemoryBytes();
  const codec = createCodec({ engine: "wasm", crc: "wasm" });
  const decoder = codec.createDecoder();
  const r = codec.createReassembler();
  const payload = new Uint8Array(16);
  const frames: FrameInit[] = [{ type: 0, stream: 1, seq: 0, total: 32, offset: 0, payload }, {
    type: 0,
    stream: 1,
    seq: 0,
    total: 32,
    offset: 16,
    payload,
  }];
  let messages = 0;
  let calls = 0;
  const onMessage = () => messages++;
  const onFrame = (f: FrameInit) => {
    calls++;
    if (r.push(f, onMessage) !== 0) throw new Error("push failed");
  };
  for (let i = 0; i < 200_000; i++) {
    frames[0].seq = frames[1].seq = i;
    const wire = codec.encodeBatch(frames); // 1 call
    if (decoder.push(wire, onFrame) !== 0) throw new Error("decode failed"); // 1 call + 2 pushes
    calls += 2;
    codec.crc32(payload); // 1 call
    calls++;
  }
  assert.ok(calls >= 1_000_000);
  assert.equal(messages, 200_000);
  assert.equal(wasmMemoryBytes(), before);
  r.close();
});

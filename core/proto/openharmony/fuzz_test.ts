/**
 * Fuzzing of every parser of the openharmony profile with random bytes and
 * mutations of OpenHarmony's own messages: nothing may throw, and nothing may
 * hold more than its named bound. Each target runs for a bounded time; a
 * failure names its seed (`LINKWEAVE_FUZZ_SEED=<seed>` replays it).
 */
import assert from "node:assert/strict";
import process from "node:process";
import { describe, it } from "node:test";
import { Capture, LAYOUT } from "../../../tests/openharmony/capture.ts";
import { fromHex, hex, prng, vectors } from "../../../tests/openharmony/vectors.ts";
import { parseJson } from "./_json.ts";
import { readCapture } from "./btsnoop.ts";
import { decodeMessage } from "./decode.ts";
import { dissect } from "./dissect.ts";
import {
  DEFAULT_OH_MAX_CONNECTIONS,
  DEFAULT_OH_SEND_QUEUE_BYTES,
  OH_CONTROL_BACKLOG_BYTES,
  OhLink,
} from "./machine.ts";
import { Reassembler } from "./reassembly.ts";
import {
  decodeTransHeader,
  type OhCharacteristic,
  OhLimits,
  parseBasicInfo,
  parseGeneral,
  parseRc,
} from "./wire.ts";

const SEED = Number(process.env.LINKWEAVE_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
const BUDGET_MS = Number(process.env.LINKWEAVE_FUZZ_MS ?? 400);

type Rand = () => number;

/** OpenHarmony's messages and values, the seeds of the mutations. */
const CORPUS = (() => {
  const messages: { char: OhCharacteristic; bytes: Uint8Array }[] = [];
  const writes: { char: OhCharacteristic; bytes: Uint8Array }[] = [];
  const add = (m: { char: OhCharacteristic; messageHex: string; writes: string[] }) => {
    messages.push({ char: m.char, bytes: fromHex(m.messageHex) });
    for (const w of m.writes) writes.push({ char: m.char, bytes: fromHex(w) });
  };
  for (const t of vectors.transcripts) {
    for (const s of t.steps) {
      if (s.messageHex !== undefined) add(s as never);
      for (const m of s.oh) add(m);
    }
  }
  return { messages, writes };
})();

function int(rand: Rand, n: number): number {
  return Math.floor(rand() * n);
}

function pick<T>(rand: Rand, list: T[]): T {
  return list[int(rand, list.length)];
}

const INTERESTING = [
  0,
  1,
  15,
  16,
  23,
  24,
  40,
  1024,
  1025,
  39999,
  40000,
  40001,
  0x7fffffff,
  0xffffffff,
];

/** A mutation of `base`: flips, sets, u32 fields, inserts, cuts, splices. */
function mutate(rand: Rand, base: Uint8Array): Uint8Array {
  let b = base.slice();
  for (let k = 1 + int(rand, 4); k > 0; k--) {
    switch (int(rand, 7)) {
      case 0:
        if (b.length > 0) b[int(rand, b.length)] ^= 1 << int(rand, 8);
        break;
      case 1:
        if (b.length > 0) b[int(rand, b.length)] = int(rand, 256);
        break;
      case 2:
        if (b.length >= 4) {
          const at = int(rand, b.length - 3);
          const v = new DataView(b.buffer, b.byteOffset);
          v.setUint32(at, pick(rand, INTERESTING), rand() < 0.5);
        }
        break;
      case 3: {
        const at = int(rand, b.length + 1);
        const ins = Uint8Array.from({ length: 1 + int(rand, 8) }, () => int(rand, 256));
        b = Uint8Array.of(...b.subarray(0, at), ...ins, ...b.subarray(at));
        break;
      }
      case 4:
        b = b.slice(0, int(rand, b.length + 1));
        break;
      case 5: {
        const other = pick(rand, CORPUS.messages).bytes;
        const at = int(rand, b.length + 1);
        b = Uint8Array.of(...b.subarray(0, at), ...other.subarray(int(rand, other.length + 1)));
        break;
      }
      default:
        b = Uint8Array.from({ length: int(rand, 64) }, () => int(rand, 256));
    }
  }
  return b;
}

/**
 * Run `body` with fresh seeds until the budget is spent; report the seed of a failure.
 *
 * @returns The number of cases run.
 */
function fuzz(name: string, body: (rand: Rand) => void): number {
  const start = Date.now();
  let n = 0;
  for (; Date.now() - start < BUDGET_MS || n < 20; n++) {
    const seed = (SEED + n * 0x9e3779b1) >>> 0;
    try {
      body(prng(seed));
    } catch (e) {
      assert.fail(
        `${name}: case failed with LINKWEAVE_FUZZ_SEED=${seed} (run seed ${SEED}): ${
          (e as Error).stack ?? e
        }`,
      );
    }
  }
  return n;
}

describe(`openharmony fuzzing (seed ${SEED})`, () => {
  it("cJSON-like parsing never throws and stays within cJSON's nesting limit", () => {
    const texts = CORPUS.messages.map((m) => m.bytes.subarray(m.char === "2B00" ? 4 : 40));
    fuzz("parseJson", (rand) => {
      const deep = int(rand, 200000);
      const b = rand() < 0.1
        ? new TextEncoder().encode(
          pick(rand, ["[", '{"a":'])
            .repeat(deep) + "]".repeat(int(rand, deep)),
        )
        : mutate(rand, pick(rand, texts));
      const v = parseJson(b);
      if (v !== undefined) JSON.stringify(v);
    });
  });

  it("header, message and payload parsers never throw on mutated messages", () => {
    fuzz("parsers", (rand) => {
      const m = pick(rand, CORPUS.messages);
      const b = mutate(rand, m.bytes);
      decodeTransHeader(b);
      parseBasicInfo(b);
      parseRc(b.subarray(24));
      parseGeneral(b.subarray(24));
      for (const char of ["2B00", "2B01"] as const) JSON.stringify(decodeMessage(char, b));
    });
  });

  it("the reassembler never holds more than 40000 bytes and 40001 fragments", () => {
    fuzz("reassembler, fragments of one message", (rand) => {
      // One message's fragments at random offsets and sizes: the bytes held must stay
      // below its total whatever arrives.
      const r = new Reassembler();
      const seq = rand() < 0.3 ? 0 : 1 + int(rand, 5);
      const total = pick(rand, [2, 100, 4000, 39999, 40000]);
      for (let k = 0; k < 300; k++) {
        const size = int(rand, Math.min(total, 600) + 1);
        const offset = int(rand, total - size + 1);
        const w = new Uint8Array(16 + size);
        const v = new DataView(w.buffer);
        v.setUint32(0, rand() < 0.95 ? seq : int(rand, 3));
        v.setUint32(4, size);
        v.setUint32(8, offset);
        v.setUint32(12, rand() < 0.95 ? total : int(rand, 40001));
        r.push(w);
        assert.ok(r.buffered < OhLimits.MAX_MESSAGE, `${r.buffered} bytes held`);
        assert.ok(r.fragments <= OhLimits.MAX_MESSAGE + 1);
      }
    });
    fuzz("reassembler", (rand) => {
      const r = new Reassembler();
      for (let k = 0; k < 200; k++) {
        const w = rand() < 0.7
          ? pick(rand, CORPUS.writes).bytes
          : mutate(rand, pick(rand, CORPUS.writes).bytes);
        const res = r.push(w);
        if (res.type === "message") assert.ok(res.data.length <= OhLimits.MAX_MESSAGE);
        assert.ok(r.buffered < OhLimits.MAX_MESSAGE, `${r.buffered} bytes held`);
        assert.ok(r.fragments <= OhLimits.MAX_MESSAGE + 1);
      }
    });
  });

  for (const role of ["server", "client"] as const) {
    it(`a ${role} link survives hostile input within its bounds`, () => {
      fuzz(`link ${role}`, (rand) => {
        let now = 0;
        const l = new OhLink({
          role,
          bundleName: "com.example.demo",
          now,
          mtu: pick(rand, [23, 185, 512]),
          devid: "FUZZ",
        });
        if (rand() < 0.5) l.open("demo", { now });
        const draining = rand() < 0.7;
        for (let k = 0; k < 150 && l.state !== "closed"; k++) {
          const w = pick(rand, CORPUS.writes);
          const bytes = rand() < 0.6 ? w.bytes : mutate(rand, w.bytes);
          const char = rand() < 0.9 ? w.char : w.char === "2B00" ? "2B01" : "2B00";
          l.handleBytes(char, bytes, now);
          for (let e = l.pollEvent(); e; e = l.pollEvent()) {
            if (e.type === "open") rand() < 0.8 ? l.accept(e.stream) : l.reject(e.stream, 32390201);
            if (e.type === "opened" || (e.type === "open" && rand() < 0.5)) {
              l.send(e.stream, new Uint8Array(1 + int(rand, 1024)));
            }
            if (rand() < 0.05) l.closeStream("stream" in e ? e.stream : 0, now);
          }
          if (draining) { while (l.pollTransmit(now)) { /* hand everything out */ } }
          if (rand() < 0.2) {
            now += int(rand, 12000);
            for (let at = l.pollTimeout(); at !== undefined && at <= now; at = l.pollTimeout()) {
              l.handleTimeout(at);
            }
          }
          assert.ok(l.reassemblyBytes < OhLimits.MAX_MESSAGE);
          assert.ok(l.streams <= DEFAULT_OH_MAX_CONNECTIONS);
          assert.ok(
            l.backlog <= OH_CONTROL_BACKLOG_BYTES +
                DEFAULT_OH_MAX_CONNECTIONS * (DEFAULT_OH_SEND_QUEUE_BYTES + 1024 + 40),
            `backlog ${l.backlog}`,
          );
        }
        if (rand() < 0.5) l.close(now);
        else l.abort();
      });
    });
  }

  it("the text dissector never throws", () => {
    const chars = [
      "2B00",
      "2b01",
      "net",
      "conn",
      "0x2B01",
      "00002B01-0000-1000-8000-00805F9B34FB",
      "x",
    ];
    fuzz("dissect text", (rand) => {
      const lines: string[] = [];
      for (let k = int(rand, 40); k > 0; k--) {
        const w = pick(rand, CORPUS.writes).bytes;
        const b = rand() < 0.5 ? w : mutate(rand, w);
        const who = pick(rand, ["", "client ", "server ", "# "]);
        lines.push(`${who}${pick(rand, chars)} ${hex(b)}${rand() < 0.1 ? "z" : ""}`);
      }
      JSON.stringify(dissect(lines.join(rand() < 0.5 ? "\n" : "\r\n"), { mtu: 23 }));
    });
  });

  it("the capture reader and dissector never throw on mutated captures", () => {
    const base = (() => {
      const cap = new Capture(27);
      cap.discovery(0x40, true, 185);
      for (const w of CORPUS.writes.slice(0, 60)) {
        cap.value(
          0x40,
          true,
          w.char === "2B00",
          w.char === "2B00" ? LAYOUT.net : LAYOUT.conn,
          w.bytes,
        );
      }
      return cap.build();
    })();
    fuzz("dissect capture", (rand) => {
      const b = base.slice();
      for (let k = 1 + int(rand, 6); k > 0; k--) {
        const at = 16 + int(rand, b.length - 16);
        b[at] = rand() < 0.5 ? b[at] ^ (1 << int(rand, 8)) : int(rand, 256);
      }
      const cut = rand() < 0.3 ? b.subarray(0, int(rand, b.length)) : b;
      readCapture(cut);
      JSON.stringify(dissect(cut));
    });
  });
});

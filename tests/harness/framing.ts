/**
 * Helpers shared by the framing tests.
 *
 * @module
 */
import type { Codec, Decoder, FrameInit, Message, Reassembler } from "../../wasm/mod.ts";

/** A decoded frame copied out of the decoder's reused object. */
export interface CopiedFrame extends FrameInit {
  length: number;
}

/** A small deterministic PRNG (xorshift32). */
export function prng(seed: number): (n: number) => number {
  let x = (seed >>> 0) || 0x9e3779b9;
  return (n: number): number => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) % n;
  };
}

/** Random bytes from a PRNG. */
export function randomBytes(rnd: (n: number) => number, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = rnd(256);
  return out;
}

/** Hex of bytes. */
export function hex(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i++) s += b[i].toString(16).padStart(2, "0");
  return s;
}

/** Bytes of hex. */
export function unhex(s: string): Uint8Array {
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** Push chunks into a decoder and collect copies of the frames and the final code. */
export function decodeAll(
  decoder: Decoder,
  chunks: Iterable<Uint8Array>,
): { frames: CopiedFrame[]; code: number } {
  const frames: CopiedFrame[] = [];
  let code = 0;
  for (const chunk of chunks) {
    code = decoder.push(chunk, (f) => {
      frames.push({
        type: f.type,
        stream: f.stream,
        seq: f.seq,
        total: f.total,
        offset: f.offset,
        length: f.length,
        payload: f.payload.slice(),
      });
    });
    if (code !== 0) break;
  }
  return { frames, code };
}

/** Split bytes into chunks at the given cut points. */
export function cut(bytes: Uint8Array, points: number[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  let prev = 0;
  for (const p of [...points, bytes.length]) {
    out.push(bytes.subarray(prev, p));
    prev = p;
  }
  return out;
}

/** Push fragments into a reassembler; collect messages and codes. */
export function reassembleAll(
  r: Reassembler,
  fragments: FrameInit[],
): { messages: Message[]; codes: number[] } {
  const messages: Message[] = [];
  const codes = fragments.map((f) => r.push(f, (m) => messages.push(m)));
  return { messages, codes };
}

/** Encode one whole message with a codec and copy the bytes. */
export function encodeCopy(
  codec: Codec,
  data: Uint8Array,
  o: { type: number; stream: number; seq: number; mtu: number; start?: number; end?: number },
): Uint8Array {
  return codec.encodeMessage(data, o).slice();
}

/**
 * The plain-TS reference codec: the same wire format and API as the wasm codec
 * (`mod.ts`), written for clarity and reasonable speed. It is the oracle of the
 * differential tests and the baseline of the benchmark.
 *
 * @module
 */
import { CodecErrorCode } from "../core/error_codes.ts";
import { ParameterError } from "../core/errors.ts";
import {
  type Codec,
  type CrcSource,
  type CrcSourceName,
  DecodedFrame,
  type Decoder,
  type DecoderOptions,
  type EncodeMessageOptions,
  type Frame,
  FRAME_OVERHEAD,
  type FrameInit,
  HEADER_LENGTH,
  INPUT_BUFFER_SIZE,
  MAX_FRAME_TYPE,
  type Message,
  type Reassembler,
  type ReassemblyLimits,
} from "../core/proto/frame.ts";
import { checkFrameInit, decoderMaxFrame, messageRange, resolveLimits, room } from "./_common.ts";

// ---------------------------------------------------------------- CRC-32

const TABLES: Int32Array = (() => {
  const t = new Int32Array(8 * 256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[i] = c;
  }
  for (let i = 0; i < 256; i++) {
    for (let k = 1; k < 8; k++) {
      const prev = t[(k - 1) * 256 + i];
      t[k * 256 + i] = (prev >>> 8) ^ t[prev & 0xff];
    }
  }
  return t;
})();

/**
 * CRC-32 (IEEE, as zlib), slicing-by-8 over the bytes.
 *
 * @param data The bytes.
 * @param seed The CRC of the bytes before. @default {0}
 * @returns The CRC as an unsigned 32-bit integer.
 */
export function referenceCrc32(data: Uint8Array, seed = 0): number {
  const t = TABLES;
  let c = ~seed;
  let i = 0;
  const n = data.length;
  const end8 = n - (n & 7);
  while (i < end8) {
    const a = c ^ (data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24));
    c = t[1792 + (a & 0xff)] ^ t[1536 + ((a >>> 8) & 0xff)] ^ t[1280 + ((a >>> 16) & 0xff)] ^
      t[1024 + (a >>> 24)] ^ t[768 + data[i + 4]] ^ t[512 + data[i + 5]] ^ t[256 + data[i + 6]] ^
      t[data[i + 7]];
    i += 8;
  }
  while (i < n) c = t[(c ^ data[i++]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

/** The reference CRC as a {@linkcode CrcSource}. */
export const REFERENCE_CRC: CrcSource = { name: "reference", crc32: referenceCrc32 };

// ---------------------------------------------------------------- encode

function writeHeader(
  b: Uint8Array,
  p: number,
  type: number,
  stream: number,
  seq: number,
  total: number,
  offset: number,
  len: number,
): void {
  b[p] = 1;
  b[p + 1] = type;
  b[p + 2] = stream >>> 8;
  b[p + 3] = stream;
  b[p + 4] = seq >>> 24;
  b[p + 5] = seq >>> 16;
  b[p + 6] = seq >>> 8;
  b[p + 7] = seq;
  b[p + 8] = total >>> 24;
  b[p + 9] = total >>> 16;
  b[p + 10] = total >>> 8;
  b[p + 11] = total;
  b[p + 12] = offset >>> 24;
  b[p + 13] = offset >>> 16;
  b[p + 14] = offset >>> 8;
  b[p + 15] = offset;
  b[p + 16] = len >>> 8;
  b[p + 17] = len;
}

function writeU32(b: Uint8Array, p: number, v: number): void {
  b[p] = v >>> 24;
  b[p + 1] = v >>> 16;
  b[p + 2] = v >>> 8;
  b[p + 3] = v;
}

function readU32(b: Uint8Array, p: number): number {
  return ((b[p] << 24) | (b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3]) >>> 0;
}

// ---------------------------------------------------------------- decode

class ReferenceDecoder implements Decoder {
  #max: number;
  #crc: (data: Uint8Array, seed?: number) => number;
  #pending: Uint8Array;
  #pendingLen = 0;
  #error = 0;
  #frame = new DecodedFrame();
  #consumed = 0;

  constructor(max: number, crc: (data: Uint8Array, seed?: number) => number) {
    this.#max = max;
    this.#crc = crc;
    this.#pending = new Uint8Array(0);
  }

  get error(): number {
    return this.#error;
  }

  get buffered(): number {
    return this.#error === 0 ? this.#pendingLen : 0;
  }

  push(chunk: Uint8Array, onFrame: (frame: Frame) => void): number {
    if (this.#error !== 0) return this.#error;
    const len = chunk.length;
    let pos = 0;
    if (this.#pendingLen > 0) {
      let p = this.#pending = room(this.#pending, this.#pendingLen, HEADER_LENGTH, this.#max);
      let have = this.#pendingLen;
      if (have < HEADER_LENGTH) {
        const t = Math.min(HEADER_LENGTH - have, len);
        p.set(chunk.subarray(0, t), have);
        have += t;
        pos = t;
      }
      if (have >= HEADER_LENGTH) {
        const need = FRAME_OVERHEAD + ((p[16] << 8) | p[17]);
        if (need <= this.#max) {
          const t = Math.min(need - have, len - pos);
          if (t > 0) {
            p = this.#pending = room(p, have, have + t, this.#max);
            p.set(chunk.subarray(pos, pos + t), have);
            have += t;
            pos += t;
          }
        }
      }
      this.#pendingLen = have;
      const err = this.#scan(p, 0, have, onFrame);
      if (err !== 0) return this.#error = err;
      if (this.#consumed === 0) return 0;
      this.#pendingLen = 0;
    }
    if (pos === len) return 0;
    const err = this.#scan(chunk, pos, len, onFrame);
    if (err !== 0) return this.#error = err;
    const rest = len - this.#consumed;
    if (rest > 0) {
      this.#pending = room(this.#pending, 0, rest, this.#max);
      this.#pending.set(chunk.subarray(this.#consumed, len));
    }
    this.#pendingLen = rest;
    return 0;
  }

  /** Deliver the complete frames of b[start, end); sets #consumed (an index into b). */
  #scan(b: Uint8Array, start: number, end: number, onFrame: (frame: Frame) => void): number {
    const f = this.#frame;
    const max = this.#max;
    const crc = this.#crc;
    let p = start;
    f.bytes = b;
    while (end - p >= HEADER_LENGTH) {
      if (b[p] !== 1) return CodecErrorCode.BAD_VERSION;
      const type = b[p + 1];
      if (type > MAX_FRAME_TYPE) return CodecErrorCode.BAD_TYPE;
      const total = readU32(b, p + 8);
      const offset = readU32(b, p + 12);
      const flen = (b[p + 16] << 8) | b[p + 17];
      if (flen + FRAME_OVERHEAD > max || offset + flen > total || (flen === 0 && total !== 0)) {
        return CodecErrorCode.BAD_LENGTH;
      }
      const size = flen + FRAME_OVERHEAD;
      if (end - p < size) break;
      const body = HEADER_LENGTH + flen;
      if (crc(b.subarray(p, p + body)) !== readU32(b, p + body)) return CodecErrorCode.BAD_CRC;
      f.type = type;
      f.stream = (b[p + 2] << 8) | b[p + 3];
      f.seq = readU32(b, p + 4);
      f.total = total;
      f.offset = offset;
      f.length = flen;
      f.payloadOffset = p + HEADER_LENGTH;
      p += size;
      this.#consumed = p;
      onFrame(f);
    }
    this.#consumed = p;
    return 0;
  }
}

// ---------------------------------------------------------------- reassemble

interface Entry {
  type: number;
  stream: number;
  total: number;
  received: number;
  /** Received ranges, sorted, disjoint and not adjacent: [start0, end0, start1, end1, ...]. */
  ranges: number[];
  data: Uint8Array;
}

class ReferenceReassembler implements Reassembler {
  #limits: Required<ReassemblyLimits>;
  #entries = new Map<number, Entry>();
  #streamPending = new Map<number, number>();
  #linkPending = 0;
  #closed = false;

  constructor(limits: Required<ReassemblyLimits>) {
    this.#limits = limits;
  }

  get pending(): number {
    return this.#linkPending;
  }

  get messages(): number {
    return this.#entries.size;
  }

  streamPending(stream: number): number {
    return this.#streamPending.get(stream) ?? 0;
  }

  push(fragment: FrameInit, onMessage: (message: Message) => void): number {
    if (this.#closed) throw new Error("Cannot push a fragment: the reassembler is closed");
    const { type, stream, seq, total, offset } = fragment;
    const payload = fragment.payload;
    const len = payload.length;
    const end = offset + len;
    if (end > total || (len === 0 && total !== 0)) return CodecErrorCode.BAD_LENGTH;
    if (total > this.#limits.maxMessageSize) return CodecErrorCode.MESSAGE_TOO_LARGE;
    const key = stream * 0x100000000 + seq;
    const e = this.#entries.get(key);
    if (e !== undefined) {
      if (e.total !== total || e.type !== type) return CodecErrorCode.FRAGMENT_MISMATCH;
      const r = e.ranges;
      const n = r.length >> 1;
      let i = 0;
      while (i < n && r[2 * i + 1] < offset) i++;
      if (i < n) {
        const s0 = r[2 * i], e0 = r[2 * i + 1];
        if (s0 <= offset && e0 >= end) return CodecErrorCode.DUPLICATE_FRAGMENT;
        if (s0 < end && e0 > offset) return CodecErrorCode.OVERLAPPING_FRAGMENT;
        if (i + 1 < n && r[2 * i + 2] < end) return CodecErrorCode.OVERLAPPING_FRAGMENT;
      }
      const leftAdj = i < n && r[2 * i + 1] === offset;
      const ri = leftAdj ? i + 1 : i;
      const rightAdj = ri < n && r[2 * ri] === end;
      const received = e.received + len;
      if (received === total) {
        e.data.set(payload, offset);
        this.#release(key, e);
        onMessage({ type, stream, seq, data: e.data });
        return 0;
      }
      const newN = n + 1 - (leftAdj ? 1 : 0) - (rightAdj ? 1 : 0);
      const first = Math.min(r[0], offset);
      const last = Math.max(r[2 * n - 1], end);
      const holes = newN - 1 + (first > 0 ? 1 : 0) + (last < total ? 1 : 0);
      if (holes > this.#limits.maxHoles) return CodecErrorCode.TOO_FRAGMENTED;
      if (leftAdj && rightAdj) r.splice(2 * i + 1, 2);
      else if (leftAdj) r[2 * i + 1] = end;
      else if (rightAdj) r[2 * ri] = offset;
      else r.splice(2 * i, 0, offset, end);
      e.received = received;
      e.data.set(payload, offset);
      return 0;
    }
    const sp = this.#streamPending.get(stream) ?? 0;
    if (sp + total > this.#limits.maxStreamPending) return CodecErrorCode.STREAM_LIMIT_EXCEEDED;
    if (this.#linkPending + total > this.#limits.maxLinkPending) {
      return CodecErrorCode.LINK_LIMIT_EXCEEDED;
    }
    if (len === total) {
      onMessage({ type, stream, seq, data: payload.slice() });
      return 0;
    }
    if (this.#entries.size >= this.#limits.maxMessages) return CodecErrorCode.TOO_MANY_MESSAGES;
    const holes = (offset > 0 ? 1 : 0) + (end < total ? 1 : 0);
    if (holes > this.#limits.maxHoles) return CodecErrorCode.TOO_FRAGMENTED;
    const data = new Uint8Array(total);
    data.set(payload, offset);
    this.#entries.set(key, { type, stream, total, received: len, ranges: [offset, end], data });
    this.#streamPending.set(stream, sp + total);
    this.#linkPending += total;
    return 0;
  }

  #release(key: number, e: Entry): void {
    this.#entries.delete(key);
    const sp = (this.#streamPending.get(e.stream) ?? 0) - e.total;
    if (sp === 0) this.#streamPending.delete(e.stream);
    else this.#streamPending.set(e.stream, sp);
    this.#linkPending -= e.total;
  }

  resetStream(stream: number): void {
    for (const [key, e] of this.#entries) if (e.stream === stream) this.#release(key, e);
  }

  reset(): void {
    this.#entries.clear();
    this.#streamPending.clear();
    this.#linkPending = 0;
  }

  close(): void {
    this.reset();
    this.#closed = true;
  }
}

// ---------------------------------------------------------------- codec

class ReferenceCodec implements Codec {
  readonly engine: "wasm" | "reference" = "reference";
  readonly crcSource: CrcSourceName;
  #crc: (data: Uint8Array, seed?: number) => number;
  #out: Uint8Array = new Uint8Array(64 * 1024);
  #input: Uint8Array = new Uint8Array(INPUT_BUFFER_SIZE);

  constructor(source: CrcSource) {
    this.crcSource = source.name;
    this.#crc = source.crc32;
  }

  crc32(data: Uint8Array, seed = 0): number {
    return this.#crc(data, seed);
  }

  #output(size: number): Uint8Array {
    if (this.#out.length < size) this.#out = new Uint8Array(Math.max(size, this.#out.length * 2));
    return this.#out;
  }

  encodeBatch(frames: readonly FrameInit[]): Uint8Array {
    let size = 0;
    for (let i = 0; i < frames.length; i++) {
      checkFrameInit(frames[i]);
      size += FRAME_OVERHEAD + frames[i].payload.length;
    }
    const out = this.#output(size);
    const crc = this.#crc;
    let p = 0;
    for (let i = 0; i < frames.length; i++) {
      const f = frames[i];
      const len = f.payload.length;
      writeHeader(out, p, f.type, f.stream, f.seq, f.total, f.offset, len);
      out.set(f.payload, p + HEADER_LENGTH);
      const body = HEADER_LENGTH + len;
      writeU32(out, p + body, crc(out.subarray(p, p + body)));
      p += body + 4;
    }
    return out.subarray(0, size);
  }

  encodeMessage(data: Uint8Array, options: EncodeMessageOptions): Uint8Array {
    const [start, end] = messageRange(data, options);
    const { type, stream, seq } = options;
    const pay = options.mtu - FRAME_OVERHEAD;
    const total = data.length;
    const count = total === 0 ? 1 : Math.ceil((end - start) / pay);
    const out = this.#output(end - start + count * FRAME_OVERHEAD);
    const crc = this.#crc;
    let p = 0;
    if (total === 0) {
      writeHeader(out, 0, type, stream, seq, 0, 0, 0);
      writeU32(out, HEADER_LENGTH, crc(out.subarray(0, HEADER_LENGTH)));
      return out.subarray(0, FRAME_OVERHEAD);
    }
    for (let off = start; off < end; off += pay) {
      const len = Math.min(pay, end - off);
      writeHeader(out, p, type, stream, seq, total, off, len);
      out.set(data.subarray(off, off + len), p + HEADER_LENGTH);
      const body = HEADER_LENGTH + len;
      writeU32(out, p + body, crc(out.subarray(p, p + body)));
      p += body + 4;
    }
    return out.subarray(0, p);
  }

  inputBuffer(): Uint8Array {
    return this.#input;
  }

  createDecoder(options?: DecoderOptions): Decoder {
    return new ReferenceDecoder(decoderMaxFrame(options), this.#crc);
  }

  createReassembler(limits?: ReassemblyLimits): Reassembler {
    return new ReferenceReassembler(resolveLimits(limits));
  }
}

/**
 * A reference codec using the given CRC source.
 *
 * @param source The CRC-32 implementation.
 * @returns The codec.
 */
export function createReferenceCodec(source: CrcSource): Codec {
  if (typeof source?.crc32 !== "function") {
    throw new ParameterError("Cannot create the reference codec: invalid CRC source");
  }
  return new ReferenceCodec(source);
}

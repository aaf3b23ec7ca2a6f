/**
 * The framing codec: frames with an 18-byte header and a CRC-32 trailer
 * (`docs/spec.md`), chunking, batch encoding, a push decoder and a bounded
 * reassembler, in WebAssembly (AssemblyScript, embedded) with a plain-TS
 * reference behind the same {@linkcode Codec} API, implementing the codec
 * contract `core/proto/frame.ts`. CRC-32 comes from the source it is given:
 * the runtime's native one (`platform/crc.ts`) where there is one, else wasm.
 *
 * @example Encode, decode and reassemble
 * ```ts
 * import assert from "node:assert/strict";
 * import { createCodec, FrameType, type Message } from "./mod.ts";
 *
 * const codec = createCodec();
 * const message = new TextEncoder().encode("hello, linkweave");
 * const wire = codec.encodeMessage(message, { type: FrameType.DATA, stream: 1, seq: 7, mtu: 28 }).slice();
 * const decoder = codec.createDecoder();
 * const reassembler = codec.createReassembler();
 * const got: Message[] = [];
 * const code = decoder.push(wire, (frame) => {
 *   assert.equal(reassembler.push(frame, (m) => got.push(m)), 0);
 * });
 * assert.equal(code, 0);
 * assert.deepEqual(got[0].data, message);
 * reassembler.close();
 * ```
 *
 * @module
 */
import { CodecErrorCode } from "../core/error_codes.ts";
import { ParameterError } from "../core/errors.ts";
import { type FramingExports, framingExports } from "./_abi.ts";
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
  MAX_FRAME_TYPE,
  type Message,
  type Reassembler,
  type ReassemblyLimits,
} from "../core/proto/frame.ts";
import { checkFrameInit, decoderMaxFrame, messageRange, resolveLimits, room } from "./_common.ts";
import { createReferenceCodec, REFERENCE_CRC } from "./_reference.ts";

export {
  type Codec,
  type CrcSource,
  type CrcSourceName,
  type Decoder,
  type DecoderOptions,
  DEFAULT_REASSEMBLY_LIMITS,
  type EncodeMessageOptions,
  type Frame,
  FRAME_OVERHEAD,
  type FrameInit,
  FrameType,
  type FrameTypeValue,
  HEADER_LENGTH,
  INPUT_BUFFER_SIZE,
  MAX_HOLES_CAP,
  MAX_MESSAGES_CAP,
  MAX_MTU,
  MAX_PAYLOAD,
  maxPayload,
  type Message,
  MIN_MTU,
  type Reassembler,
  type ReassemblyLimits,
  VERSION,
} from "../core/proto/frame.ts";
export {
  CodecErrorCode,
  type CodecErrorCodeValue,
  codecErrorMessage,
} from "../core/error_codes.ts";

const FLAG_NEW = 0x10000;
const FLAG_DONE = 0x20000;

/** The shared instance, its regions and views of its memory. */
class WasmCore {
  readonly ex: FramingExports;
  readonly crcScratch: number;
  readonly crcScratchCap: number;
  readonly encDesc: number;
  readonly encDescCap: number;
  readonly encOut: number;
  readonly encOutCap: number;
  readonly msgIn: number;
  readonly msgInCap: number;
  readonly decStage: number;
  readonly decStageCap: number;
  readonly decInput: number;
  readonly decInputCap: number;
  readonly decDesc: number;
  readonly decDescCap: number;
  readonly status: number;
  readonly raSlots: number;
  readonly raMsgCap: number;
  u8!: Uint8Array;
  u32!: Uint32Array;
  dv!: DataView;
  /** Whether a decoder is running (decoders share the staging and descriptor regions). */
  decoding = false;
  readonly freeSlots: number[] = [];
  readonly registry: FinalizationRegistry<number>;

  constructor(ex: FramingExports) {
    this.ex = ex;
    const l = (i: number) => ex.layout(i) >>> 0;
    this.crcScratch = l(0);
    this.crcScratchCap = l(1);
    this.encDesc = l(2);
    this.encDescCap = l(3);
    this.encOut = l(4);
    this.encOutCap = l(5);
    this.msgIn = l(6);
    this.msgInCap = l(7);
    this.decStage = l(8);
    this.decStageCap = l(9);
    this.decInput = l(10);
    this.decInputCap = l(11);
    this.decDesc = l(12);
    this.decDescCap = l(13);
    this.status = l(14);
    this.raSlots = l(15);
    this.raMsgCap = l(16);
    for (let s = this.raSlots - 1; s >= 0; s--) this.freeSlots.push(s);
    this.registry = new FinalizationRegistry((slot: number) => this.freeSlots.push(slot));
    this.refresh();
  }

  /** Rebuild the views if memory grew (it should not after start). */
  refresh(): void {
    const buffer = this.ex.memory.buffer;
    if (this.u8 === undefined || this.u8.buffer !== buffer) {
      this.u8 = new Uint8Array(buffer);
      this.u32 = new Uint32Array(buffer);
      this.dv = new DataView(buffer);
      this.encViews.length = 0;
      this.decViews.length = 0;
    }
  }

  /**
   * Views of the frames the encoder laid out and of the frames the decoder
   * verifies, by frame index, for the native CRC (which takes a view, not an
   * offset). A view is reused while frame i keeps its position and length, as
   * it does when a link sends runs of same-size frames; otherwise it is
   * replaced. Creating a view costs about as much as the native CRC of 1 KiB.
   */
  readonly encViews: Uint8Array[] = [];
  readonly decViews: Uint8Array[] = [];

  crc(data: Uint8Array, seed: number): number {
    this.refresh();
    if (data.buffer === this.u8.buffer) {
      return this.ex.crc32(data.byteOffset, data.length, seed) >>> 0;
    }
    const cap = this.crcScratchCap;
    if (data.length <= cap) {
      this.u8.set(data, this.crcScratch);
      return this.ex.crc32(this.crcScratch, data.length, seed) >>> 0;
    }
    let c = seed;
    for (let i = 0; i < data.length; i += cap) {
      const part = data.subarray(i, i + cap);
      this.u8.set(part, this.crcScratch);
      c = this.ex.crc32(this.crcScratch, part.length, c) >>> 0;
    }
    return c >>> 0;
  }
}

/** How many frame views a {@linkcode WasmCore} cache keeps per direction. */
const VIEW_CACHE = 1024;

/** The view of bytes [p, p + n) of wasm memory for frame i, from `views` when it still fits. */
function frameView(
  views: Uint8Array[],
  u8: Uint8Array,
  i: number,
  p: number,
  n: number,
): Uint8Array {
  const v = views[i];
  if (v !== undefined && v.byteOffset === p && v.length === n) return v;
  const w = u8.subarray(p, p + n);
  if (i < VIEW_CACHE) views[i] = w;
  return w;
}

let core: WasmCore | undefined;

function wasmCore(): WasmCore {
  core ??= new WasmCore(framingExports());
  return core;
}

/** The wasm CRC-32 as a source. */
const WASM_CRC: CrcSource = {
  name: "wasm",
  crc32: (data: Uint8Array, seed = 0): number => wasmCore().crc(data, seed),
};

// ---------------------------------------------------------------- decoder

class WasmDecoder implements Decoder {
  #c: WasmCore;
  #max: number;
  #wasmCrc: boolean;
  #crc: (data: Uint8Array, seed?: number) => number;
  #pending: Uint8Array;
  #pendingLen = 0;
  #error = 0;
  #frame = new DecodedFrame();

  constructor(c: WasmCore, max: number, source: CrcSource) {
    this.#c = c;
    this.#max = max;
    this.#wasmCrc = source.name === "wasm";
    this.#crc = source.crc32;
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
    const c = this.#c;
    if (c.decoding) {
      throw new Error("Cannot push to a wasm decoder from inside a frame callback");
    }
    c.decoding = true;
    try {
      const err = this.#push(chunk, onFrame);
      if (err !== 0) this.#error = err;
      return err;
    } finally {
      c.decoding = false;
    }
  }

  #push(chunk: Uint8Array, onFrame: (frame: Frame) => void): number {
    const c = this.#c;
    c.refresh();
    const len = chunk.length;
    const inPlace = chunk.buffer === c.u8.buffer && chunk.byteOffset >= c.decInput &&
      chunk.byteOffset + len <= c.decInput + c.decInputCap;
    let pos = 0;
    while (true) {
      if (this.#pendingLen > 0) {
        let p = this.#pending = room(this.#pending, this.#pendingLen, HEADER_LENGTH, this.#max);
        let have = this.#pendingLen;
        if (have < HEADER_LENGTH) {
          const t = Math.min(HEADER_LENGTH - have, len - pos);
          p.set(chunk.subarray(pos, pos + t), have);
          have += t;
          pos += t;
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
        this.#pendingLen = 0;
        c.u8.set(p.subarray(0, have), c.decStage);
        const err = this.#scan(c.decStage, have, onFrame);
        if (err !== 0) return err;
        if (this.#pendingLen > 0) return 0; // still incomplete: the chunk is used up
      }
      if (pos === len) return 0;
      if (inPlace) return this.#scan(chunk.byteOffset + pos, len - pos, onFrame);
      const t = Math.min(c.decStageCap, len - pos);
      c.u8.set(chunk.subarray(pos, pos + t), c.decStage);
      pos += t;
      const err = this.#scan(c.decStage, t, onFrame);
      if (err !== 0) return err;
    }
  }

  /** Deliver the frames in wasm memory [ptr, ptr + n); keep the incomplete rest in #pending. */
  #scan(ptr: number, n: number, onFrame: (frame: Frame) => void): number {
    const c = this.#c;
    const ex = c.ex;
    const f = this.#frame;
    const wasmCrc = this.#wasmCrc;
    const crc = this.#crc;
    const statusIndex = c.status >>> 2;
    const descBase = c.decDesc >>> 2;
    const cap = c.decDescCap;
    while (true) {
      const count = ex.decodeScan(ptr, n, this.#max, wasmCrc ? 1 : 0);
      const u8 = c.u8;
      const u32 = c.u32;
      const consumed = u32[statusIndex];
      const err = u32[statusIndex + 1];
      f.bytes = u8;
      const views = c.decViews;
      for (let i = 0, d = descBase; i < count; i++, d += 8) {
        const fp = u32[d];
        const flen = u32[d + 6];
        if (!wasmCrc) {
          const view = frameView(views, u8, i, fp, HEADER_LENGTH + flen);
          if (crc(view) !== u32[d + 7]) return CodecErrorCode.BAD_CRC;
        }
        f.type = u32[d + 1];
        f.stream = u32[d + 2];
        f.seq = u32[d + 3];
        f.total = u32[d + 4];
        f.offset = u32[d + 5];
        f.length = flen;
        f.payloadOffset = fp + HEADER_LENGTH;
        onFrame(f);
      }
      if (err !== 0) return err;
      ptr += consumed;
      n -= consumed;
      if (count < cap || n === 0) break;
    }
    if (n > 0) {
      this.#pending = room(this.#pending, 0, n, this.#max);
      this.#pending.set(c.u8.subarray(ptr, ptr + n));
    }
    this.#pendingLen = n;
    return 0;
  }
}

// ---------------------------------------------------------------- reassembler

class WasmReassembler implements Reassembler {
  #c: WasmCore;
  #slot: number;
  #buffers: (Uint8Array | undefined)[];
  #closed = false;

  constructor(c: WasmCore, slot: number, limits: Required<ReassemblyLimits>) {
    this.#c = c;
    this.#slot = slot;
    this.#buffers = new Array(c.raMsgCap).fill(undefined);
    c.ex.raInit(
      slot,
      limits.maxMessageSize,
      limits.maxStreamPending,
      limits.maxLinkPending,
      limits.maxMessages,
      limits.maxHoles,
    );
  }

  get pending(): number {
    this.#check();
    return this.#c.ex.raLinkPending(this.#slot);
  }

  get messages(): number {
    this.#check();
    return this.#c.ex.raCount(this.#slot);
  }

  streamPending(stream: number): number {
    this.#check();
    return this.#c.ex.raStreamPending(this.#slot, stream);
  }

  #check(): void {
    if (this.#closed) throw new Error("Cannot use the reassembler: it is closed");
  }

  push(fragment: FrameInit, onMessage: (message: Message) => void): number {
    this.#check();
    const { type, stream, seq, total, offset } = fragment;
    const payload = fragment.payload;
    const r = this.#c.ex.raPush(this.#slot, stream, seq, total, offset, payload.length, type);
    if (r < 0) return -r;
    if ((r & FLAG_NEW) !== 0) {
      if ((r & FLAG_DONE) !== 0) {
        onMessage({ type, stream, seq, data: payload.slice() });
        return 0;
      }
      const data = new Uint8Array(total);
      data.set(payload, offset);
      this.#buffers[r & 0xffff] = data;
      return 0;
    }
    const e = r & 0xffff;
    const data = this.#buffers[e]!;
    data.set(payload, offset);
    if ((r & FLAG_DONE) !== 0) {
      this.#buffers[e] = undefined;
      onMessage({ type, stream, seq, data });
    }
    return 0;
  }

  resetStream(stream: number): void {
    this.#check();
    const c = this.#c;
    const n = c.ex.raResetStream(this.#slot, stream);
    c.refresh();
    const base = (c.status + 64) >>> 2;
    for (let i = 0; i < n; i++) this.#buffers[c.u32[base + i]] = undefined;
  }

  reset(): void {
    this.#check();
    this.#c.ex.raReset(this.#slot);
    this.#buffers.fill(undefined);
  }

  close(): void {
    if (this.#closed) return;
    this.reset();
    this.#closed = true;
    this.#c.registry.unregister(this);
    this.#c.freeSlots.push(this.#slot);
  }
}

/** Check the fields a reassembler reads (the decoder guarantees them). */
function checkFragment(f: FrameInit): void {
  if (
    (f.type >>> 0) !== f.type || f.type > MAX_FRAME_TYPE || (f.stream & 0xffff) !== f.stream ||
    (f.seq >>> 0) !== f.seq || (f.total >>> 0) !== f.total || (f.offset >>> 0) !== f.offset
  ) {
    throw new ParameterError(
      `Cannot reassemble fragment: invalid fields (type "${f.type}", stream "${f.stream}", seq "${f.seq}", total "${f.total}", offset "${f.offset}")`,
    );
  }
}

// ---------------------------------------------------------------- codec

class WasmCodec implements Codec {
  readonly engine: "wasm" | "reference" = "wasm";
  readonly crcSource: CrcSourceName;
  #c: WasmCore;
  #source: CrcSource;
  #wasmCrc: boolean;
  #crc: (data: Uint8Array, seed?: number) => number;
  #fallback: Codec | undefined;

  constructor(c: WasmCore, source: CrcSource) {
    this.#c = c;
    this.#source = source;
    this.crcSource = source.name;
    this.#wasmCrc = source.name === "wasm";
    this.#crc = source.crc32;
  }

  crc32(data: Uint8Array, seed = 0): number {
    return this.#crc(data, seed);
  }

  encodeBatch(frames: readonly FrameInit[]): Uint8Array {
    const c = this.#c;
    const n = frames.length;
    let size = 0;
    for (let i = 0; i < n; i++) {
      checkFrameInit(frames[i]);
      size += FRAME_OVERHEAD + frames[i].payload.length;
    }
    c.refresh();
    if (n <= c.encDescCap && size <= c.encOutCap) {
      this.#encodeRun(frames, 0, n);
      return c.u8.subarray(c.encOut, c.encOut + size);
    }
    const result = new Uint8Array(size);
    let w = 0;
    for (let i = 0; i < n;) {
      let j = i;
      let s = 0;
      while (
        j < n && j - i < c.encDescCap &&
        s + FRAME_OVERHEAD + frames[j].payload.length <= c.encOutCap
      ) {
        s += FRAME_OVERHEAD + frames[j].payload.length;
        j++;
      }
      this.#encodeRun(frames, i, j);
      result.set(c.u8.subarray(c.encOut, c.encOut + s), w);
      w += s;
      i = j;
    }
    return result;
  }

  /** Encode frames [from, to) into ENC_OUT: JS places payloads, wasm writes headers. */
  #encodeRun(frames: readonly FrameInit[], from: number, to: number): void {
    const c = this.#c;
    const u8 = c.u8;
    const u32 = c.u32;
    let d = c.encDesc >>> 2;
    let p = c.encOut;
    for (let i = from; i < to; i++, d += 6) {
      const f = frames[i];
      const payload = f.payload;
      const len = payload.length;
      u32[d] = f.type;
      u32[d + 1] = f.stream;
      u32[d + 2] = f.seq;
      u32[d + 3] = f.total;
      u32[d + 4] = f.offset;
      u32[d + 5] = len;
      u8.set(payload, p + HEADER_LENGTH);
      p += FRAME_OVERHEAD + len;
    }
    c.ex.encodeBatch(to - from, this.#wasmCrc ? 1 : 0);
    if (!this.#wasmCrc) {
      const crc = this.#crc;
      const dv = c.dv;
      const views = c.encViews;
      p = c.encOut;
      d = c.encDesc >>> 2;
      for (let i = 0, n = to - from; i < n; i++, d += 6) {
        const body = HEADER_LENGTH + u32[d + 5];
        dv.setUint32(p + body, crc(frameView(views, u8, i, p, body)));
        p += body + 4;
      }
    }
  }

  encodeMessage(data: Uint8Array, options: EncodeMessageOptions): Uint8Array {
    const [start, end] = messageRange(data, options);
    const c = this.#c;
    c.refresh();
    const { type, stream, seq, mtu } = options;
    const total = data.length;
    const wasmCrc = this.#wasmCrc ? 1 : 0;
    if (total === 0) {
      c.ex.encodeMessage(type, stream, seq, 0, 0, 0, mtu, wasmCrc);
      if (!wasmCrc) this.#seal(c.encOut, FRAME_OVERHEAD, mtu);
      return c.u8.subarray(c.encOut, c.encOut + FRAME_OVERHEAD);
    }
    const pay = mtu - FRAME_OVERHEAD;
    const framesPerPart = Math.min(Math.floor(c.msgInCap / pay), Math.floor(c.encOutCap / mtu));
    const partMax = framesPerPart * pay;
    const count = Math.ceil((end - start) / pay);
    const size = end - start + count * FRAME_OVERHEAD;
    const result = end - start <= partMax ? undefined : new Uint8Array(size);
    let w = 0;
    for (let s = start; s < end; s += partMax) {
      const e = Math.min(end, s + partMax);
      c.u8.set(data.subarray(s, e), c.msgIn);
      const bytes = c.ex.encodeMessage(type, stream, seq, total, s, e - s, mtu, wasmCrc);
      if (!wasmCrc) this.#seal(c.encOut, bytes, mtu);
      if (result === undefined) return c.u8.subarray(c.encOut, c.encOut + bytes);
      result.set(c.u8.subarray(c.encOut, c.encOut + bytes), w);
      w += bytes;
    }
    return result ?? new Uint8Array(0);
  }

  /** Write the CRCs of the frames in [p, p + bytes) laid out at one MTU. */
  #seal(p: number, bytes: number, mtu: number): void {
    const c = this.#c;
    const u8 = c.u8;
    const views = c.encViews;
    const end = p + bytes;
    for (let i = 0; p < end; i++) {
      const body = HEADER_LENGTH + ((u8[p + 16] << 8) | u8[p + 17]);
      c.dv.setUint32(p + body, this.#crc(frameView(views, u8, i, p, body)));
      p += body + 4;
    }
    void mtu;
  }

  inputBuffer(): Uint8Array {
    const c = this.#c;
    c.refresh();
    return c.u8.subarray(c.decInput, c.decInput + c.decInputCap);
  }

  createDecoder(options?: DecoderOptions): Decoder {
    return new WasmDecoder(this.#c, decoderMaxFrame(options), this.#source);
  }

  createReassembler(limits?: ReassemblyLimits): Reassembler {
    const resolved = resolveLimits(limits);
    const c = this.#c;
    const slot = c.freeSlots.pop();
    if (slot === undefined) {
      // Every wasm slot is taken: fall back to the TS reassembler (same behaviour).
      this.#fallback ??= createReferenceCodec(this.#source);
      return this.#fallback.createReassembler(resolved);
    }
    const r = new WasmReassembler(c, slot, resolved);
    c.registry.register(r, slot, r);
    return new CheckedReassembler(r);
  }
}

/** Validates fragment fields before the wasm reassembler sees them as integers. */
class CheckedReassembler implements Reassembler {
  #r: WasmReassembler;
  constructor(r: WasmReassembler) {
    this.#r = r;
  }
  get pending(): number {
    return this.#r.pending;
  }
  get messages(): number {
    return this.#r.messages;
  }
  streamPending(stream: number): number {
    return this.#r.streamPending(stream);
  }
  push(fragment: FrameInit, onMessage: (message: Message) => void): number {
    checkFragment(fragment);
    return this.#r.push(fragment, onMessage);
  }
  resetStream(stream: number): void {
    this.#r.resetStream(stream);
  }
  reset(): void {
    this.#r.reset();
  }
  close(): void {
    this.#r.close();
  }
}

// ---------------------------------------------------------------- public API

/**
 * The CRC-32 implementations of this module: `wasm` and `reference` (plain
 * TS). The runtimes' native ones, much faster, come from the platform layer
 * (`platform/crc.ts`) and are handed to {@linkcode createCodec}. All give
 * identical results.
 *
 * @returns The sources.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { crcSources } from "./mod.ts";
 * const digits = new TextEncoder().encode("123456789");
 * for (const source of crcSources()) assert.equal(source.crc32(digits), 0xcbf43926);
 * ```
 */
export function crcSources(): readonly CrcSource[] {
  return SOURCES;
}

const SOURCES: readonly CrcSource[] = Object.freeze([WASM_CRC, REFERENCE_CRC]);

/**
 * CRC-32 (IEEE, as zlib) in WebAssembly.
 *
 * @param data The bytes.
 * @param seed The CRC of the bytes before, to continue a running CRC. @default {0}
 * @returns The CRC as an unsigned 32-bit integer.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { crc32 } from "./mod.ts";
 * const enc = new TextEncoder();
 * assert.equal(crc32(enc.encode("123456789")), 0xcbf43926);
 * assert.equal(crc32(enc.encode("6789"), crc32(enc.encode("12345"))), 0xcbf43926);
 * ```
 */
export function crc32(data: Uint8Array, seed = 0): number {
  return WASM_CRC.crc32(data, seed);
}

/** Options of {@linkcode createCodec}. */
export interface CodecOptions {
  /** `"wasm"` or the plain-TS `"reference"`. @default {"wasm"} */
  engine?: "wasm" | "reference";
  /**
   * The CRC-32 source: one of this module's by name, or any
   * {@linkcode CrcSource} (a runtime's native CRC-32). @default {"wasm"}
   */
  crc?: CrcSource | "wasm" | "reference";
}

/**
 * A framing codec.
 *
 * @param options The engine and the CRC-32 source.
 * @returns The codec.
 * @throws {ParameterError} For an unknown engine or CRC source.
 *
 * @example Both engines produce the same bytes
 * ```ts
 * import assert from "node:assert/strict";
 * import { createCodec, FrameType } from "./mod.ts";
 * const frame = {
 *   type: FrameType.DATA, stream: 1, seq: 2, total: 3, offset: 0,
 *   payload: new Uint8Array([1, 2, 3]),
 * };
 * const a = createCodec().encodeBatch([frame]).slice();
 * const b = createCodec({ engine: "reference" }).encodeBatch([frame]).slice();
 * assert.deepEqual(a, b);
 * assert.equal(a.length, 3 + 22);
 * ```
 */
export function createCodec(options: CodecOptions = {}): Codec {
  const want = options.crc ?? "wasm";
  const source = typeof want === "string" ? SOURCES.find((s) => s.name === want) : want;
  if (source === undefined || typeof source.crc32 !== "function") {
    throw new ParameterError(
      `Cannot create codec: unknown CRC source "${
        String(want)
      }" (expected "wasm", "reference" or a CrcSource)`,
    );
  }
  const engine = options.engine ?? "wasm";
  if (engine === "reference") return createReferenceCodec(source);
  if (engine !== "wasm") {
    throw new ParameterError(`Cannot create codec: unknown engine "${engine}"`);
  }
  return new WasmCodec(wasmCore(), source);
}

/**
 * The size of the framing module's memory in bytes. It is fixed when the
 * module starts; tests check that it never grows.
 *
 * @returns `memory.buffer.byteLength`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { wasmMemoryBytes } from "./mod.ts";
 * assert.ok(wasmMemoryBytes() > 0);
 * ```
 */
export function wasmMemoryBytes(): number {
  return framingExports().memory.buffer.byteLength;
}

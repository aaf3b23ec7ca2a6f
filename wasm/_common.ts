/**
 * Argument checks shared by the wasm codec (`mod.ts`) and the plain-TS
 * reference codec (`_reference.ts`). The contract they implement, frame
 * layout and limits included, is `core/proto/frame.ts`.
 *
 * @module
 */
import { ParameterError } from "../core/errors.ts";
import {
  checkMtu,
  type DecoderOptions,
  DEFAULT_REASSEMBLY_LIMITS,
  type EncodeMessageOptions,
  type FrameInit,
  MAX_FRAME_TYPE,
  MAX_HOLES_CAP,
  MAX_MESSAGES_CAP,
  MAX_MTU,
  MAX_PAYLOAD,
  MIN_MTU,
  type ReassemblyLimits,
} from "../core/proto/frame.ts";

/** Validated decoder options. */
export function decoderMaxFrame(options: DecoderOptions | undefined): number {
  const max = options?.maxFrameSize ?? MAX_MTU;
  if (!Number.isInteger(max) || max < MIN_MTU || max > MAX_MTU) {
    throw new ParameterError(`Invalid maxFrameSize "${max}": expected an integer in 23..65535`);
  }
  return max;
}

function checkInt(name: string, v: number, min: number, max: number): void {
  if (!Number.isInteger(v) || v < min || v > max) {
    throw new ParameterError(`Invalid ${name} "${v}": expected an integer in ${min}..${max}`);
  }
}

/** Limits with defaults filled in, validated. */
export function resolveLimits(limits: ReassemblyLimits | undefined): Required<ReassemblyLimits> {
  const l = { ...DEFAULT_REASSEMBLY_LIMITS, ...limits } as Required<ReassemblyLimits>;
  checkInt("maxMessageSize", l.maxMessageSize, 0, 0xffffffff);
  checkInt("maxStreamPending", l.maxStreamPending, 0, 0xffffffff);
  checkInt("maxLinkPending", l.maxLinkPending, 0, 0xffffffff);
  checkInt("maxMessages", l.maxMessages, 1, MAX_MESSAGES_CAP);
  checkInt("maxHoles", l.maxHoles, 1, MAX_HOLES_CAP);
  return l;
}

/**
 * Throw unless a frame's fields are valid for encoding.
 *
 * @param f The frame.
 */
export function checkFrameInit(f: FrameInit): void {
  const len = f.payload.length;
  if (
    (f.type >>> 0) !== f.type || f.type > MAX_FRAME_TYPE || (f.stream & 0xffff) !== f.stream ||
    (f.seq >>> 0) !== f.seq || (f.total >>> 0) !== f.total || (f.offset >>> 0) !== f.offset ||
    len > MAX_PAYLOAD || f.offset + len > f.total || (len === 0 && f.total !== 0)
  ) {
    throw new ParameterError(
      `Cannot encode frame: invalid fields (type "${f.type}", stream "${f.stream}", seq "${f.seq}", total "${f.total}", offset "${f.offset}", payload length "${len}")`,
    );
  }
}

/** Validate encodeMessage options; returns [start, end]. */
export function messageRange(data: Uint8Array, o: EncodeMessageOptions): [number, number] {
  checkMtu(o.mtu);
  const start = o.start ?? 0;
  const end = o.end ?? data.length;
  if (
    (o.type >>> 0) !== o.type || o.type > MAX_FRAME_TYPE || (o.stream & 0xffff) !== o.stream ||
    (o.seq >>> 0) !== o.seq || data.length > 0xffffffff
  ) {
    throw new ParameterError(
      `Cannot encode message: invalid fields (type "${o.type}", stream "${o.stream}", seq "${o.seq}")`,
    );
  }
  if (
    !Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end < start ||
    end > data.length
  ) {
    throw new ParameterError(
      `Cannot encode message: invalid range "${start}..${end}" of a ${data.length}-byte message`,
    );
  }
  return [start, end];
}

/**
 * A decoder's buffer for an incomplete frame, grown on demand (idle channels
 * then hold no 64 KiB buffer each): at least `need` bytes, keeping the first
 * `keep`, at most `max`.
 *
 * @param buf The current buffer.
 * @param keep Bytes of it in use.
 * @param need Bytes needed.
 * @param max The decoder's largest frame.
 * @returns `buf`, or a larger copy.
 */
export function room(buf: Uint8Array, keep: number, need: number, max: number): Uint8Array {
  if (buf.length >= need) return buf;
  const out = new Uint8Array(Math.min(max, Math.max(need, 2 * buf.length, 256)));
  out.set(buf.subarray(0, keep));
  return out;
}

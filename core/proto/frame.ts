/**
 * The codec contract: what a frame is on the wire (`docs/spec.md`), and what
 * the link layer needs from a framing codec (encode batches, decode pushed
 * bytes, reassemble fragments). `wasm/` implements it twice, in WebAssembly
 * and as a plain-TS reference; the link layer and the handshake use only this
 * file, so `core/` never depends on how frames are made.
 *
 * @module
 */
import { ParameterError } from "../errors.ts";

/** Frame types (byte 1 of the header). Other values are invalid. */
export const FrameType = {
  /** Application data. */
  DATA: 0,
  /** Link-layer control. */
  CONTROL: 1,
  /** Credit: flow-control bytes returned to a stream's sender (in `seq`). */
  CREDIT: 2,
  /** Keep-alive probe. */
  PING: 3,
  /** Close of a stream or of the link. */
  CLOSE: 4,
  /**
   * Link-level acknowledgement of one channel, on stream 0: `seq` is the
   * count, modulo 2^32, of the bytes of every frame but ACKs that the sender
   * of the ACK has read from this channel (`docs/link-protocol.md`).
   */
  ACK: 5,
} as const;

/** The largest valid frame type: a decoder refuses larger ones as `BAD_TYPE`. */
export const MAX_FRAME_TYPE = 5;

/** A value of {@linkcode FrameType}. */
export type FrameTypeValue = typeof FrameType[keyof typeof FrameType];

/** The protocol version this codec speaks (byte 0 of the header). */
export const VERSION = 1;
/** Header length in bytes. */
export const HEADER_LENGTH = 18;
/** Bytes a frame adds to its payload: header plus CRC-32 trailer. */
export const FRAME_OVERHEAD = 22;
/** Smallest MTU (one payload byte per frame). */
export const MIN_MTU = 23;
/** Largest MTU and largest frame. */
export const MAX_MTU = 65535;
/** Largest payload of one frame. */
export const MAX_PAYLOAD: number = MAX_MTU - FRAME_OVERHEAD;

/** The fields of one frame, or of one fragment handed to a reassembler. */
export interface FrameInit {
  /** Frame type, a value of {@linkcode FrameType}. */
  type: number;
  /** Stream id, 0..65535 (0 is the link itself). */
  stream: number;
  /** Message sequence number, 0..2^32-1, the same in every fragment of a message. */
  seq: number;
  /** Length of the whole message. */
  total: number;
  /** Offset of this fragment's payload within the message. */
  offset: number;
  /** The fragment's payload (at most 65513 bytes). */
  payload: Uint8Array;
}

/**
 * A decoded frame, handed to a decoder's callback. Decoders reuse one object:
 * its fields and `bytes` are valid only during the callback.
 */
export interface Frame extends FrameInit {
  /** Payload length. */
  length: number;
  /** The buffer the frame lies in (for the wasm codec: all of wasm memory). */
  bytes: Uint8Array;
  /** Where the payload starts in `bytes`. */
  payloadOffset: number;
}

/** The reusable frame object both decoders fill. */
export class DecodedFrame implements Frame {
  /** Frame type. */
  type = 0;
  /** Stream id. */
  stream = 0;
  /** Message sequence number. */
  seq = 0;
  /** Length of the whole message. */
  total = 0;
  /** Offset of the payload within the message. */
  offset = 0;
  /** Payload length. */
  length = 0;
  /** The buffer the frame lies in. */
  bytes: Uint8Array = new Uint8Array(0);
  /** Where the payload starts in `bytes`. */
  payloadOffset = 0;
  /** A view of the payload (valid during the callback only). */
  get payload(): Uint8Array {
    return this.bytes.subarray(this.payloadOffset, this.payloadOffset + this.length);
  }
}

/** A reassembled message. Its `data` is an ordinary buffer the caller owns. */
export interface Message {
  /** Frame type of its fragments. */
  type: number;
  /** Stream id. */
  stream: number;
  /** Message sequence number. */
  seq: number;
  /** The message bytes. */
  data: Uint8Array;
}

/** Options of a decoder. */
export interface DecoderOptions {
  /** Largest frame accepted, header and CRC included (23..65535). @default {65535} */
  maxFrameSize?: number;
}

/** A push decoder: feed it byte chunks split anywhere. */
export interface Decoder {
  /**
   * Decode a chunk. Calls `onFrame` for every complete, valid frame, in
   * order, with a reused {@linkcode Frame}. Keeps an incomplete frame (at most
   * `maxFrameSize` bytes) for the next chunk.
   *
   * @param chunk The next bytes of the stream.
   * @param onFrame Called for each frame; copy what you keep.
   * @returns 0, or the {@linkcode CodecErrorCode} of the first invalid frame;
   * after an error the decoder is dead and returns that code again.
   */
  push(chunk: Uint8Array, onFrame: (frame: Frame) => void): number;
  /** 0, or the error that stopped the decoder. */
  readonly error: number;
  /** Bytes of an incomplete frame held for the next chunk. */
  readonly buffered: number;
}

/** Hard limits of a reassembler. Sizes are in bytes. */
export interface ReassemblyLimits {
  /** Largest message. @default {16777216} */
  maxMessageSize?: number;
  /** Sum of the total lengths of the messages pending on one stream. @default {16777216} */
  maxStreamPending?: number;
  /** Sum of the total lengths of the messages pending on the link. @default {67108864} */
  maxLinkPending?: number;
  /** Messages in reassembly at once, 1..128. @default {64} */
  maxMessages?: number;
  /** Holes (missing byte ranges) one message may have, 1..63. @default {32} */
  maxHoles?: number;
}

/** The default {@linkcode ReassemblyLimits}. */
export const DEFAULT_REASSEMBLY_LIMITS: Readonly<Required<ReassemblyLimits>> = Object.freeze({
  maxMessageSize: 16 * 1024 * 1024,
  maxStreamPending: 16 * 1024 * 1024,
  maxLinkPending: 64 * 1024 * 1024,
  maxMessages: 64,
  maxHoles: 32,
});

/** Largest `maxMessages`. */
export const MAX_MESSAGES_CAP = 128;
/** Largest `maxHoles`. */
export const MAX_HOLES_CAP = 63;

/** Rebuilds messages from fragments of one link. */
export interface Reassembler {
  /**
   * Account for one fragment and copy its payload.
   *
   * @param fragment The fragment (a decoded {@linkcode Frame} will do).
   * @param onMessage Called at once when the fragment completes its message.
   * @returns 0 when accepted, else the {@linkcode CodecErrorCode}; a refused
   * fragment changes nothing.
   */
  push(fragment: FrameInit, onMessage: (message: Message) => void): number;
  /** Drop every message pending on one stream and release its accounting. */
  resetStream(stream: number): void;
  /** Drop every pending message of the link. */
  reset(): void;
  /** Drop everything and release the reassembler's resources; it cannot be used again. */
  close(): void;
  /** Sum of the total lengths of the pending messages of the link. */
  readonly pending: number;
  /** Messages in reassembly. */
  readonly messages: number;
  /**
   * Sum of the total lengths of the pending messages of one stream.
   *
   * @param stream The stream id.
   * @returns Bytes.
   */
  streamPending(stream: number): number;
}

/** Options of {@linkcode Codec.encodeMessage}. */
export interface EncodeMessageOptions {
  /** Frame type. */
  type: number;
  /** Stream id. */
  stream: number;
  /** Message sequence number. */
  seq: number;
  /** Largest frame, 23..65535; every fragment but the last carries mtu - 22 bytes. */
  mtu: number;
  /** First message byte to encode. @default {0} */
  start?: number;
  /** End (exclusive) of the bytes to encode. @default {data.length} */
  end?: number;
}

/** Names of CRC-32 implementations. */
export type CrcSourceName = "bun" | "node:zlib" | "wasm" | "reference";

/** One CRC-32 implementation (IEEE, as zlib). */
export interface CrcSource {
  /** Which implementation. */
  readonly name: CrcSourceName;
  /**
   * CRC-32 of `data`, continuing from `seed` (the CRC of the bytes before).
   *
   * @param data The bytes.
   * @param seed The running CRC. @default {0}
   * @returns The CRC as an unsigned 32-bit integer.
   */
  crc32(data: Uint8Array, seed?: number): number;
}

/** A framing codec: the wasm one or the TS reference, behind one API. */
export interface Codec {
  /** Which implementation. */
  readonly engine: "wasm" | "reference";
  /** Which CRC-32 implementation it uses. */
  readonly crcSource: CrcSourceName;
  /**
   * CRC-32 with this codec's source.
   *
   * @param data The bytes.
   * @param seed The running CRC. @default {0}
   * @returns The CRC.
   */
  crc32(data: Uint8Array, seed?: number): number;
  /**
   * Lay out many frames back to back in one buffer.
   *
   * @param frames The frames.
   * @returns The frames' bytes: a view of a buffer the codec reuses, valid
   * until its next encode call (copy it to keep it).
   */
  encodeBatch(frames: readonly FrameInit[]): Uint8Array;
  /**
   * Chunk bytes [start, end) of a message into frames of at most `mtu` bytes.
   *
   * @param data The whole message.
   * @param options Type, stream, seq, MTU and the range.
   * @returns The frames' bytes, valid until the codec's next encode call.
   */
  encodeMessage(data: Uint8Array, options: EncodeMessageOptions): Uint8Array;
  /**
   * A buffer a reader may fill and then push (a subarray of) at once. The
   * wasm codec decodes it in place in wasm memory, without a copy. Shared by
   * all decoders of the codec: fill it and push synchronously.
   *
   * @returns The buffer (256 KiB).
   */
  inputBuffer(): Uint8Array;
  /**
   * A new push decoder.
   *
   * @param options `maxFrameSize`.
   * @returns The decoder.
   */
  createDecoder(options?: DecoderOptions): Decoder;
  /**
   * A new reassembler (one per link).
   *
   * @param limits Limits; missing ones take {@linkcode DEFAULT_REASSEMBLY_LIMITS}.
   * @returns The reassembler.
   */
  createReassembler(limits?: ReassemblyLimits): Reassembler;
}

/** Capacity of {@linkcode Codec.inputBuffer}. */
export const INPUT_BUFFER_SIZE: number = 256 * 1024;

/**
 * The largest payload of a frame at an MTU.
 *
 * @param mtu The MTU (largest frame), 23..65535.
 * @returns mtu - 22.
 * @throws {ParameterError} When the MTU is out of range.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { maxPayload } from "./frame.ts";
 * assert.equal(maxPayload(1500), 1478);
 * ```
 */
export function maxPayload(mtu: number): number {
  checkMtu(mtu);
  return mtu - FRAME_OVERHEAD;
}

/**
 * Throw unless `mtu` is an integer in 23..65535.
 *
 * @param mtu The MTU.
 * @throws {ParameterError} When it is not.
 */
export function checkMtu(mtu: number): void {
  if (!Number.isInteger(mtu) || mtu < MIN_MTU || mtu > MAX_MTU) {
    throw new ParameterError(`Invalid MTU "${mtu}": expected an integer in 23..65535`);
  }
}

/**
 * A copy of `bytes[start, end)` in an `ArrayBuffer` of its own. What a fresh
 * 1 KiB ArrayBuffer costs depends on the engine (measured in a loop of
 * copies out of wasm memory): JavaScriptCore (Bun) is quickest slicing the
 * ArrayBuffer itself (0.6 us, against 0.8-1.0 us for a typed-array slice and
 * its `buffer`); V8 (Deno, Node) slicing the typed array (1.8-2.0 us, against
 * 2.2-2.5 us).
 *
 * @param bytes The source.
 * @param start The first byte.
 * @param end After the last byte.
 * @returns A new ArrayBuffer of `end - start` bytes.
 */
export const copyOut: (bytes: Uint8Array, start: number, end: number) => ArrayBuffer =
  "Bun" in globalThis
    ? (bytes, start, end) =>
      bytes.buffer.slice(bytes.byteOffset + start, bytes.byteOffset + end) as ArrayBuffer
    : (bytes, start, end) => bytes.slice(start, end).buffer as ArrayBuffer;

/**
 * The messages of an ability session on its stream (`docs/ability-connection.md`,
 * "Wire"): one link message each, byte 0 the type, numbers big-endian. The
 * stream is opened with `ServiceKind.ABILITY`, the service name as its name
 * and the peer application's bundle name; everything else travels in these
 * messages, in order.
 *
 * | type | name    | direction | body                                                      |
 * | ---- | ------- | --------- | --------------------------------------------------------- |
 * | 1    | hello   | caller    | JSON: token, caller, callee, serviceName, options          |
 * | 2    | result  | callee    | JSON: `{}` accepted, or `{ errorCode, reason }`            |
 * | 3    | message | both      | UTF-8 text                                                 |
 * | 4    | begin   | both      | id u32, kind u8 (1 data, 2 image), total u32               |
 * | 5    | chunk   | both      | id u32, bytes (in order; they fill the transfer)           |
 * | 6    | ack     | both      | id u32: the transfer was delivered                         |
 * | 7    | refuse  | both      | id u32, UTF-8 reason: the transfer was refused             |
 * | 8    | stream  | both      | JSON: `{ op: "start" or "stop" or "destroy" or "param", name, param? }` |
 * | 9    | frame   | source    | seq u32, timestamp f64, width u16, height u16, format i8, rotation u16, flip i8, bytes |
 * | 10   | bye     | both      | reason u8 (`DisconnectReason` the peer reports)            |
 * | 11   | cancel  | both      | id u32: the sender gave the transfer up (an `AbortSignal`) |
 * | 12   | piece   | both      | id u32, length u32: the next message is that many bytes of the transfer, bare |
 *
 * Wire versions: a `hello` and an accepting `result` say the highest
 * version their sender speaks (`wire`, absent: 1); each side sends what the
 * other understands. Version 2 adds `piece`: a transfer's bytes go as a
 * `piece` header, then the bytes as a message of their own, so the sender
 * hands the link views of the caller's buffer instead of copying every piece
 * behind a header (`chunk`, still sent to version 1 peers). Nothing may come
 * between a `piece` and its bytes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const bytes = encodeBegin(7, TransferKind.DATA, 1000);
 * assert.deepEqual(decodeMessage(bytes), { type: "begin", id: 7, kind: 1, total: 1000 });
 * assert.equal(decodeMessage(new Uint8Array([4, 0])), undefined); // truncated
 * ```
 *
 * @module
 */

/** Message types. */
export const MessageType = {
  HELLO: 1,
  RESULT: 2,
  MESSAGE: 3,
  BEGIN: 4,
  CHUNK: 5,
  ACK: 6,
  REFUSE: 7,
  STREAM: 8,
  FRAME: 9,
  BYE: 10,
  CANCEL: 11,
  PIECE: 12,
} as const;

/** The highest session wire version this code speaks (see above). */
export const WIRE_VERSION: number = 2;

/** What a transfer carries. */
export const TransferKind = {
  /** `sendData` bytes. */
  DATA: 1,
  /** A JPEG image (`sendImage`). */
  IMAGE: 2,
} as const;

/** The collaboration request, first message of a session's stream. */
export interface Hello {
  /** The collaboration token the callee's app answers with. */
  token: string;
  /** The calling ability. */
  caller: { bundleName: string; moduleName: string; abilityName: string };
  /** The ability asked for. */
  callee: { bundleName: string; moduleName: string; abilityName: string };
  /** The service name. */
  serviceName: string;
  /** The caller's options. */
  options: {
    needSendData: boolean;
    needSendStream: boolean;
    needReceiveStream: boolean;
    startOptions: number;
    parameters: Record<string, string>;
  };
  /** The highest wire version the caller speaks; absent: 1. */
  wire?: number;
}

/** The callee's answer. */
export interface Result {
  /** `ConnectErrorCode`; absent when accepted. */
  errorCode?: number;
  /** The rejecting app's reason. */
  reason?: string;
  /** The highest wire version the callee speaks (when accepting); absent: 1. */
  wire?: number;
}

/** Stream control. */
export interface StreamControl {
  /** What happened to the sender's stream. */
  op: "start" | "stop" | "destroy" | "param";
  /** The stream's name. */
  name: string;
  /** The new surface parameters (`param`). */
  param?: { rotation: number; flip: number };
}

/** A frame's header. */
export interface FrameHeader {
  /** Sequence number (the producer's count of frames written). */
  seq: number;
  /** The producer's timestamp (ms). */
  timestamp: number;
  /** Width in pixels. */
  width: number;
  /** Height in pixels. */
  height: number;
  /** `VideoPixelFormat`. */
  format: number;
  /** Rotation in degrees. */
  rotation: number;
  /** `FlipOptions`, or -1. */
  flip: number;
}

/** A decoded message. */
export type SessionMessage =
  | { type: "hello"; hello: Hello }
  | { type: "result"; result: Result }
  | { type: "message"; text: string }
  | { type: "begin"; id: number; kind: number; total: number }
  | { type: "chunk"; id: number; bytes: Uint8Array }
  | { type: "piece"; id: number; length: number }
  | { type: "ack"; id: number }
  | { type: "refuse"; id: number; reason: string }
  | { type: "stream"; control: StreamControl }
  | { type: "frame"; header: FrameHeader; bytes: Uint8Array }
  | { type: "bye"; reason: number }
  | { type: "cancel"; id: number };

const FRAME_HEADER = 1 + 4 + 8 + 2 + 2 + 1 + 2 + 1;
const enc = new TextEncoder();
const dec = new TextDecoder("utf-8", { fatal: true });

function withType(type: number, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(1 + body.length);
  out[0] = type;
  out.set(body, 1);
  return out;
}

/**
 * A hello.
 *
 * @param hello The request.
 * @returns The bytes.
 */
export function encodeHello(hello: Hello): Uint8Array {
  return withType(MessageType.HELLO, enc.encode(JSON.stringify(hello)));
}

/**
 * A result.
 *
 * @param result The answer.
 * @returns The bytes.
 */
export function encodeResult(result: Result): Uint8Array {
  return withType(MessageType.RESULT, enc.encode(JSON.stringify(result)));
}

/**
 * A text message.
 *
 * @param text The text.
 * @returns The bytes.
 */
export function encodeText(text: string): Uint8Array {
  return withType(MessageType.MESSAGE, enc.encode(text));
}

/**
 * The start of a transfer.
 *
 * @param id The transfer's id (per sender and session).
 * @param kind `TransferKind`.
 * @param total Its length in bytes.
 * @returns The bytes.
 */
export function encodeBegin(id: number, kind: number, total: number): Uint8Array {
  const out = new Uint8Array(10);
  const v = new DataView(out.buffer);
  out[0] = MessageType.BEGIN;
  v.setUint32(1, id);
  out[5] = kind;
  v.setUint32(6, total);
  return out;
}

/**
 * A piece of a transfer: `bytes[start..end)` behind a 5-byte header.
 *
 * @param id The transfer's id.
 * @param bytes The transfer's bytes.
 * @param range Where the piece starts and ends.
 * @returns The bytes (a new buffer).
 */
export function encodeChunk(
  id: number,
  bytes: Uint8Array,
  range: { start: number; end: number },
): Uint8Array {
  const out = new Uint8Array(5 + range.end - range.start);
  out[0] = MessageType.CHUNK;
  new DataView(out.buffer).setUint32(1, id);
  out.set(bytes.subarray(range.start, range.end), 5);
  return out;
}

/**
 * The header of a piece of a transfer whose bytes follow as the next message
 * (wire version 2).
 *
 * @param id The transfer's id.
 * @param length The piece's length.
 * @returns The bytes.
 */
export function encodePiece(id: number, length: number): Uint8Array {
  const out = new Uint8Array(9);
  const v = new DataView(out.buffer);
  out[0] = MessageType.PIECE;
  v.setUint32(1, id);
  v.setUint32(5, length);
  return out;
}

/**
 * A transfer's acknowledgement.
 *
 * @param id The transfer's id.
 * @returns The bytes.
 */
export function encodeAck(id: number): Uint8Array {
  const out = new Uint8Array(5);
  out[0] = MessageType.ACK;
  new DataView(out.buffer).setUint32(1, id);
  return out;
}

/**
 * A transfer the sender gave up (linkweave's `AbortSignal` on `sendData`).
 *
 * @param id The transfer's id.
 * @returns The bytes.
 */
export function encodeCancel(id: number): Uint8Array {
  const out = new Uint8Array(5);
  out[0] = MessageType.CANCEL;
  new DataView(out.buffer).setUint32(1, id);
  return out;
}

/**
 * A transfer's refusal.
 *
 * @param id The transfer's id.
 * @param reason Why.
 * @returns The bytes.
 */
export function encodeRefuse(id: number, reason: string): Uint8Array {
  const text = enc.encode(reason.slice(0, 200));
  const out = new Uint8Array(5 + text.length);
  out[0] = MessageType.REFUSE;
  new DataView(out.buffer).setUint32(1, id);
  out.set(text, 5);
  return out;
}

/**
 * A stream control message.
 *
 * @param control What happened.
 * @returns The bytes.
 */
export function encodeStream(control: StreamControl): Uint8Array {
  return withType(MessageType.STREAM, enc.encode(JSON.stringify(control)));
}

/**
 * A frame.
 *
 * @param header Its header.
 * @param bytes Its bytes.
 * @returns The message (a new buffer).
 */
export function encodeFrame(header: FrameHeader, bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(FRAME_HEADER + bytes.length);
  const v = new DataView(out.buffer);
  out[0] = MessageType.FRAME;
  v.setUint32(1, header.seq >>> 0);
  v.setFloat64(5, header.timestamp);
  v.setUint16(13, header.width);
  v.setUint16(15, header.height);
  v.setInt8(17, header.format);
  v.setUint16(18, header.rotation);
  v.setInt8(20, header.flip);
  out.set(bytes, FRAME_HEADER);
  return out;
}

/**
 * A goodbye.
 *
 * @param reason The `DisconnectReason` the peer is to report.
 * @returns The bytes.
 */
export function encodeBye(reason: number): Uint8Array {
  return new Uint8Array([MessageType.BYE, reason]);
}

function json(bytes: Uint8Array): unknown {
  try {
    return JSON.parse(dec.decode(bytes));
  } catch {
    return undefined;
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function isAbility(v: unknown): v is Hello["caller"] {
  return isRecord(v) && typeof v.bundleName === "string" && typeof v.moduleName === "string" &&
    typeof v.abilityName === "string";
}

function isStrings(v: unknown): v is Record<string, string> {
  return isRecord(v) && Object.values(v).every((x) => typeof x === "string");
}

function parseHello(v: unknown): Hello | undefined {
  if (!isRecord(v) || typeof v.token !== "string" || typeof v.serviceName !== "string") {
    return undefined;
  }
  if (!isAbility(v.caller) || !isAbility(v.callee) || !isRecord(v.options)) return undefined;
  const o = v.options;
  if (
    typeof o.needSendData !== "boolean" || typeof o.needSendStream !== "boolean" ||
    typeof o.needReceiveStream !== "boolean" || typeof o.startOptions !== "number" ||
    !isStrings(o.parameters)
  ) return undefined;
  if (v.wire !== undefined && typeof v.wire !== "number") return undefined;
  return v as unknown as Hello;
}

/**
 * Decode one message of a session's stream.
 *
 * @param m The link message.
 * @returns The message, or `undefined` when it is malformed or of an unknown type.
 */
export function decodeMessage(m: Uint8Array): SessionMessage | undefined {
  if (m.length < 1) return undefined;
  const v = new DataView(m.buffer, m.byteOffset, m.byteLength);
  const body = m.subarray(1);
  switch (m[0]) {
    case MessageType.HELLO: {
      const hello = parseHello(json(body));
      return hello === undefined ? undefined : { type: "hello", hello };
    }
    case MessageType.RESULT: {
      const r = json(body);
      if (!isRecord(r)) return undefined;
      if (r.errorCode !== undefined && typeof r.errorCode !== "number") return undefined;
      if (r.reason !== undefined && typeof r.reason !== "string") return undefined;
      if (r.wire !== undefined && typeof r.wire !== "number") return undefined;
      return { type: "result", result: r as Result };
    }
    case MessageType.MESSAGE:
      try {
        return { type: "message", text: dec.decode(body) };
      } catch {
        return undefined;
      }
    case MessageType.BEGIN:
      if (m.length < 10) return undefined;
      return { type: "begin", id: v.getUint32(1), kind: m[5], total: v.getUint32(6) };
    case MessageType.CHUNK:
      if (m.length < 5) return undefined;
      return { type: "chunk", id: v.getUint32(1), bytes: m.subarray(5) };
    case MessageType.PIECE:
      if (m.length < 9) return undefined;
      return { type: "piece", id: v.getUint32(1), length: v.getUint32(5) };
    case MessageType.ACK:
      return m.length < 5 ? undefined : { type: "ack", id: v.getUint32(1) };
    case MessageType.CANCEL:
      return m.length < 5 ? undefined : { type: "cancel", id: v.getUint32(1) };
    case MessageType.REFUSE: {
      if (m.length < 5) return undefined;
      let reason = "";
      try {
        reason = dec.decode(m.subarray(5));
      } catch { /* keep "" */ }
      return { type: "refuse", id: v.getUint32(1), reason };
    }
    case MessageType.STREAM: {
      const c = json(body);
      if (!isRecord(c) || typeof c.name !== "string") return undefined;
      if (c.op !== "start" && c.op !== "stop" && c.op !== "destroy" && c.op !== "param") {
        return undefined;
      }
      const p = c.param;
      if (
        c.op === "param" &&
        (!isRecord(p) || typeof p.rotation !== "number" || typeof p.flip !== "number")
      ) return undefined;
      return { type: "stream", control: c as unknown as StreamControl };
    }
    case MessageType.FRAME:
      if (m.length < FRAME_HEADER) return undefined;
      return {
        type: "frame",
        header: {
          seq: v.getUint32(1),
          timestamp: v.getFloat64(5),
          width: v.getUint16(13),
          height: v.getUint16(15),
          format: v.getInt8(17),
          rotation: v.getUint16(18),
          flip: v.getInt8(20),
        },
        bytes: m.subarray(FRAME_HEADER),
      };
    case MessageType.BYE:
      return m.length < 2 ? undefined : { type: "bye", reason: m[1] };
  }
  return undefined;
}

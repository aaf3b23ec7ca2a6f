/**
 * A reassembled message, decoded field by field for people: the `decoded`
 * objects of `openharmony-gatt-vectors.json`, which the dissector prints.
 * Nothing here throws; a field that cannot be read is reported as `error`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeRcMessage } from "./wire.ts";
 * const d = decodeMessage("2B01", encodeRcMessage(0, { delta: 1, refNum: 1, challenge: 0 }));
 * assert.equal(d.layer, "connPkt");
 * assert.deepEqual(d.control?.json, { KEY_METHOD: 1, KEY_DELTA: 1, KEY_REF_NUM: 1, KEY_CHALLENGE: 0 });
 * ```
 *
 * @module
 */
import { type JsonValue, parseJson } from "./_json.ts";
import {
  decodeConnPktHead,
  decodeGeneralHead,
  HeaderSize,
  MAGIC,
  Module,
  MsgType,
  msgTypeName,
  type OhCharacteristic,
} from "./wire.ts";

/** A JSON payload, decoded. */
export interface DecodedJson {
  /** The payload as text, up to its first NUL. */
  jsonText: string;
  /** Whether the payload ends in a NUL. */
  nulTerminated: boolean;
  /** The value as OpenHarmony's cJSON reads it; `null` when it cannot. */
  json: JsonValue;
}

/** A general-connection message, decoded. */
export type DecodedGeneral =
  & {
    /** The message type. */
    msgType: number;
    /** `HANDSHAKE`, `HANDSHAKE_ACK`, `RESET`, `MERGE`, `NORMAL` or `TYPE_<n>`. */
    msgTypeName: string;
    /** The sender's id. */
    localId: number;
    /** The receiver's id. */
    peerId: number;
    /** Where the body starts. */
    headLen: number;
    /** Why the rest cannot be read, if so. */
    error?: string;
  }
  & Partial<DecodedJson>
  & { payloadLen?: number; payloadHex?: string };

/** A message, decoded (the `decoded` of the vectors). */
export interface Decoded {
  /** Message length. */
  len: number;
  /** `netCtrl` (2B00) or `connPkt` (2B01). */
  layer: "netCtrl" | "connPkt";
  /** Why the message cannot be read further, if so. */
  error?: string;
  /** 2B00: the int32 net-control type (1 = basic info). */
  netCtrlType?: number;
  /** 2B00: basic info's JSON. */
  jsonText?: string;
  /** 2B00: whether it ends in a NUL. */
  nulTerminated?: boolean;
  /** 2B00: the value. */
  json?: JsonValue;
  /** 2B01: the magic as `0x` + 8 hex digits. */
  magic?: string;
  /** 2B01: whether it is 0xBABEFACE (never checked on GATT). */
  magicOk?: boolean;
  /** 2B01: ConnPktHead module. */
  module?: number;
  /** 2B01: ConnPktHead counter (a string when beyond 2^53). */
  seq?: number | string;
  /** 2B01: ConnPktHead flag. */
  flag?: number;
  /** 2B01: ConnPktHead len. */
  lenField?: number;
  /** 2B01: whether len is the length after ConnPktHead (never checked on GATT). */
  lenFieldMatches?: boolean;
  /** Module 11: the reference-count message. */
  control?: DecodedJson;
  /** Module 102: the general message. */
  general?: DecodedGeneral;
  /** Another module: the bytes after ConnPktHead. */
  payloadHex?: string;
}

const utf8 = new TextDecoder();

/**
 * Lower-case hex of bytes.
 *
 * @param b The bytes.
 * @returns The hex string.
 */
export function toHex(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i++) s += (b[i] < 16 ? "0" : "") + b[i].toString(16);
  return s;
}

function decodeJson(payload: Uint8Array): DecodedJson {
  const nul = payload.indexOf(0);
  const v = parseJson(payload);
  return {
    jsonText: utf8.decode(nul >= 0 ? payload.subarray(0, nul) : payload),
    nulTerminated: payload.length > 0 && payload[payload.length - 1] === 0,
    json: v === undefined ? null : v,
  };
}

function decodeGeneral(body: Uint8Array): DecodedGeneral | string {
  const h = decodeGeneralHead(body);
  if (h === undefined) return `general message of ${body.length} bytes is shorter than 16`;
  const g: DecodedGeneral = {
    msgType: h.msgType,
    msgTypeName: msgTypeName(h.msgType),
    localId: h.localId,
    peerId: h.peerId,
    headLen: h.headLen,
  };
  if (h.headLen > body.length) {
    g.error = `headLen ${h.headLen} exceeds the ${body.length}-byte message`;
    return g;
  }
  const payload = body.subarray(h.headLen);
  const control = h.msgType === MsgType.HANDSHAKE || h.msgType === MsgType.HANDSHAKE_ACK ||
    h.msgType === MsgType.RESET || h.msgType === MsgType.MERGE;
  if (control) return { ...g, ...decodeJson(payload) };
  g.payloadLen = payload.length;
  g.payloadHex = toHex(payload);
  return g;
}

/**
 * Decode a reassembled message.
 *
 * @param char The characteristic its last fragment came on.
 * @param msg The message.
 * @returns The decoded fields.
 */
export function decodeMessage(char: OhCharacteristic, msg: Uint8Array): Decoded {
  if (char === "2B00") {
    const d: Decoded = { len: msg.length, layer: "netCtrl" };
    if (msg.length < HeaderSize.NET_CTRL) {
      d.error = `net-control message of ${msg.length} bytes is shorter than 4`;
      return d;
    }
    d.netCtrlType = new DataView(msg.buffer, msg.byteOffset, msg.byteLength).getInt32(0, true);
    return { ...d, ...decodeJson(msg.subarray(HeaderSize.NET_CTRL)) };
  }
  const d: Decoded = { len: msg.length, layer: "connPkt" };
  const h = decodeConnPktHead(msg);
  if (h === undefined) {
    d.error = `message of ${msg.length} bytes is shorter than ConnPktHead (24)`;
    return d;
  }
  d.magic = "0x" + h.magic.toString(16).padStart(8, "0");
  d.magicOk = h.magic === MAGIC;
  d.module = h.module;
  d.seq = h.seq;
  d.flag = h.flag;
  d.lenField = h.len;
  d.lenFieldMatches = h.len === msg.length - HeaderSize.CONN_PKT;
  const body = msg.subarray(HeaderSize.CONN_PKT);
  if (h.module === Module.CONNECTION) {
    d.control = decodeJson(body);
  } else if (h.module === Module.BLE_GENERAL) {
    const g = decodeGeneral(body);
    if (typeof g === "string") d.error = g;
    else d.general = g;
  } else {
    d.payloadHex = toHex(body);
  }
  return d;
}

/**
 * OpenHarmony's BLE GATT wire format for linkEnhance (dsoftbus's "general
 * connection"), byte for byte: the 16-byte fragment header, `ConnPktHead`,
 * the general-connection head and its messages, basic info and the
 * reference-count messages. Encoders produce exactly the bytes an OpenHarmony
 * device emits; decoders never throw and accept what a device accepts.
 * `docs/openharmony-ble.md` describes every field.
 *
 * ```
 * GATT value  = BleTransHeader (16, big-endian: seq size offset total) + chunk
 * on 2B00     = int32 LE 1 + basic-info JSON + NUL                      (module 100)
 * on 2B01     = ConnPktHead (24, LE: magic module seq:int64 flag len) + payload
 *   module 11  : reference-count JSON + NUL
 *   module 102 : GeneralConnectionHead (16, LE: msgType localId peerId headLen) + body
 * ```
 *
 * @example Encode a HANDSHAKE and cut it into GATT writes at ATT MTU 23
 * ```ts
 * import assert from "node:assert/strict";
 * const msg = encodeGeneralMessage({
 *   seq: 0,
 *   msgType: MsgType.HANDSHAKE,
 *   localId: FIRST_GENERAL_ID,
 *   peerId: 0,
 *   payload: handshakePayload("demo", "com.example.demo"),
 * });
 * assert.equal(msg.length, 100);
 * const writes = fragment(msg, 23, 2);
 * assert.equal(writes.length, 25);
 * assert.deepEqual(decodeTransHeader(writes[0]), { seq: 2, size: 4, offset: 0, total: 100 });
 * ```
 *
 * @module
 */
import { type JsonObject, parseObject, signedItem, stringItem, unsignedItem } from "./_json.ts";
import { utf8Length } from "../../_utf8.ts";

/** OpenHarmony's softbus GATT service. */
export const OH_SERVICE_UUID = "11C8B310-80E4-4276-AFC0-F81590B2177F";
/** The "net" characteristic (basic info). */
export const OH_NET_UUID = "00002B00-0000-1000-8000-00805F9B34FB";
/** The "conn" characteristic (everything else). */
export const OH_CONN_UUID = "00002B01-0000-1000-8000-00805F9B34FB";

/** One of the two characteristics, by its short UUID. */
export type OhCharacteristic = "2B00" | "2B01";

/** Limits OpenHarmony applies, and we with it. */
export const OhLimits = {
  /** Largest message on the air (`MAX_DATA_LEN`): bigger totals are dropped. */
  MAX_MESSAGE: 40000,
  /** Largest NORMAL payload (`GENERAL_SEND_DATA_MAX_LEN`): sent and delivered. */
  MAX_NORMAL: 1024,
  /** Longest server or connection name, in UTF-8 bytes. */
  MAX_NAME_BYTES: 255,
  /** Longest bundle name, in UTF-8 bytes. */
  MAX_BUNDLE_BYTES: 255,
  /** Longest device id kept from basic info, in bytes. */
  MAX_DEVID_BYTES: 64,
  /** ATT header (3) + BleTransHeader (16): a fragment carries `mtu - 19` bytes. */
  FRAGMENT_OVERHEAD: 19,
  /** The ATT MTU before any exchange. */
  DEFAULT_MTU: 23,
  /** The ATT MTU an OpenHarmony client asks for. */
  REQUESTED_MTU: 512,
} as const;

/** OpenHarmony's timers (ms). */
export const OhTimers = {
  /** Basic info must be exchanged within this (`BASIC_INFO_EXCHANGE_TIMEOUT`). */
  BASIC_INFO: 5000,
  /** A GATT server drops a client that does not exchange MTU within this. */
  MTU_WAIT: 10000,
  /** A HANDSHAKE must be answered within this (`GENERAL_CONNECT_TIMEOUT_MILLIS`). */
  CONNECT: 10000,
  /** A client releases its reference this long after its RESET. */
  DISCONNECT_DELAY: 100,
  /** After sending the last reference's release, wait this long for the peer to close. */
  NEGOTIATION_CLOSING: 5500,
  /** A peer that cannot negotiate closing is dropped after this. */
  CLOSING: 200,
  /** A link on which no connection was ever opened is dropped when idle this long. */
  IDLE: 60000,
} as const;

/** `ConnPktHead.magic`. Sent, never checked on GATT. */
export const MAGIC = 0xbabeface;
/** `ConnPktHead.flag` of general and reference-count messages (`CONN_HIGH`). */
export const CONN_HIGH = 3;

/** `ConnPktHead.module` values that matter here. */
export const Module = {
  /** Reference-count control messages (`MODULE_CONNECTION`). */
  CONNECTION: 11,
  /** Basic info; selects characteristic 2B00, never on the air (`MODULE_BLE_NET`). */
  BLE_NET: 100,
  /** linkEnhance's general connection (`MODULE_BLE_GENERAL`). */
  BLE_GENERAL: 102,
} as const;

/** General-connection message types. */
export const MsgType = {
  /** Open a connection to a server: `{"name","ability","bundle_name"}`. */
  HANDSHAKE: 0,
  /** The answer: `{"err","ability"}`. */
  HANDSHAKE_ACK: 1,
  /** Close a connection: `{}`. */
  RESET: 2,
  /** Move a connection to another link: `{"update_handle"}`. */
  MERGE: 3,
  /** Application data, raw. */
  NORMAL: 12,
  /** Types from here on are dropped. */
  MAX: 22,
} as const;

const MSG_TYPE_NAMES: Record<number, string> = {
  0: "HANDSHAKE",
  1: "HANDSHAKE_ACK",
  2: "RESET",
  3: "MERGE",
  12: "NORMAL",
};

/**
 * The name of a general message type, as the vectors spell it.
 *
 * @param type The type.
 * @returns `HANDSHAKE`, ..., or `TYPE_<n>` for a type with no parser.
 */
export function msgTypeName(type: number): string {
  return MSG_TYPE_NAMES[type] ?? `TYPE_${type}`;
}

/** softbus error numbers that travel on this path (`softbus_error_code.h`). */
export const SoftbusError = {
  /** `SOFTBUS_CONN_FAIL`. */
  CONN_FAIL: -425918462,
  /** `SOFTBUS_CONN_GENERAL_SERVER_NOT_OPENED`: the error ACK's `err`. */
  SERVER_NOT_OPENED: -425918062,
  /** `SOFTBUS_CONN_GENERAL_CONNECTION_CLOSE`: the link went away. */
  CONNECTION_CLOSE: -425918060,
  /** `SOFTBUS_CONN_GENERAL_PEER_CONNECTION_CLOSE`: the peer sent RESET. */
  PEER_CONNECTION_CLOSE: -425918059,
  /** `SOFTBUS_CONN_GENERAL_CONNECT_TIMEOUT`. */
  CONNECT_TIMEOUT: -425918055,
  /** `SOFTBUS_CONN_GENERAL_DUPLICATE_SERVER`. */
  DUPLICATE_SERVER: -425918053,
  /** `SOFTBUS_CONN_GENERAL_CREATE_SERVER_MAX`. */
  CREATE_SERVER_MAX: -425918052,
  /** `SOFTBUS_CONN_GENERAL_CREATE_CLIENT_MAX`. */
  CREATE_CLIENT_MAX: -425918051,
  /** `SOFTBUS_CONN_GENERAL_CONNECTION_NOT_READY`. */
  CONNECTION_NOT_READY: -425918050,
  /** `SOFTBUS_INVALID_PARAM`. */
  INVALID_PARAM: -426442749,
  /** `SOFTBUS_ACCESS_TOKEN_DENIED`. */
  ACCESS_TOKEN_DENIED: -426442742,
} as const;

/** General ids are `(CONNECT_BLE_GENERAL << 26) + counter`; this is the base. */
export const GENERAL_ID_BASE: number = (11 << 26) >>> 0;
/** The first general id a fresh OpenHarmony process hands out (0x2C000001). */
export const FIRST_GENERAL_ID: number = GENERAL_ID_BASE + 1;
/** `ability` in HANDSHAKE and ACK: `1 << GENERAL_FEATURE_SUPPORT_COC`. */
export const ABILITY = 2;

/** Basic-info `FEATURE_SUPPORT` bits. */
export const Feature = {
  /** Bit 1: the peer negotiates closing with reference-count messages. */
  REMOTE_DISCONNECT: 2,
  /** Bit 3: send the networkId instead of the UDID as `devid`. */
  NETWORK_ID: 8,
} as const;

/** Device type that makes an OpenHarmony device leave `devid` out of its basic info. */
export const UNKNOWN_DEVICE_TYPE = 0xff;

/** Sizes of the fixed headers. */
export const HeaderSize = {
  /** BleTransHeader. */
  TRANS: 16,
  /** ConnPktHead. */
  CONN_PKT: 24,
  /** GeneralConnectionHead. */
  GENERAL: 16,
  /** The int32 net-control type before basic info. */
  NET_CTRL: 4,
} as const;

const encoder = new TextEncoder();

// ------------------------------------------------------------------ fragments

/** The 16-byte header of every GATT value. */
export interface TransHeader {
  /** Message number on this BLE connection, the same for all its fragments. */
  seq: number;
  /** Bytes of this fragment after the header. */
  size: number;
  /** Where this fragment starts in the message. */
  offset: number;
  /** Length of the whole message. */
  total: number;
}

/**
 * Read a GATT value's header, with OpenHarmony's checks (`UnpackTransHeader`).
 *
 * @param write The GATT value.
 * @returns The header, or why OpenHarmony drops the value.
 */
export function decodeTransHeader(write: Uint8Array): TransHeader | string {
  if (write.length < HeaderSize.TRANS) {
    return `value of ${write.length} bytes is shorter than the 16-byte header`;
  }
  const v = new DataView(write.buffer, write.byteOffset, write.byteLength);
  const h = {
    seq: v.getUint32(0),
    size: v.getUint32(4),
    offset: v.getUint32(8),
    total: v.getUint32(12),
  };
  const after = write.length - HeaderSize.TRANS;
  if (h.size !== after) return `size ${h.size} differs from the ${after} bytes after the header`;
  if (h.total > OhLimits.MAX_MESSAGE) {
    return `total ${h.total} exceeds ${OhLimits.MAX_MESSAGE}`;
  }
  if (h.size > h.total) return `size ${h.size} exceeds total ${h.total}`;
  if (h.total - h.size < h.offset) {
    return `offset ${h.offset} + size ${h.size} exceeds total ${h.total}`;
  }
  return h;
}

/**
 * Cut a message into GATT values as OpenHarmony does (`ConnGattTransSend`):
 * chunks of `mtu - 19` bytes, each behind a header with the same `seq`.
 *
 * @param message The message (1..40000 bytes).
 * @param mtu The ATT MTU (more than 19).
 * @param seq The message number on this BLE connection.
 * @returns The GATT values, in order.
 * @throws {RangeError} For an MTU of 19 or less, or an empty or oversized message.
 */
export function fragment(message: Uint8Array, mtu: number, seq: number): Uint8Array[] {
  if (!(mtu > OhLimits.FRAGMENT_OVERHEAD)) throw new RangeError(`ATT MTU ${mtu} is too small`);
  if (message.length === 0 || message.length > OhLimits.MAX_MESSAGE) {
    throw new RangeError(`Message of ${message.length} bytes cannot be sent`);
  }
  const max = Math.floor(mtu) - OhLimits.FRAGMENT_OVERHEAD;
  const out: Uint8Array[] = [];
  for (let off = 0; off < message.length; off += max) {
    const chunk = message.subarray(off, Math.min(message.length, off + max));
    out.push(fragmentAt(message, chunk, off, seq));
  }
  return out;
}

/**
 * One GATT value: the header for `chunk` at `offset` of `message`, then `chunk`.
 *
 * @param message The whole message (for its length).
 * @param chunk The bytes of this fragment.
 * @param offset Where `chunk` starts in the message.
 * @param seq The message number.
 * @returns The GATT value.
 */
export function fragmentAt(
  message: Uint8Array,
  chunk: Uint8Array,
  offset: number,
  seq: number,
): Uint8Array {
  const w = new Uint8Array(HeaderSize.TRANS + chunk.length);
  const v = new DataView(w.buffer);
  v.setUint32(0, seq >>> 0);
  v.setUint32(4, chunk.length);
  v.setUint32(8, offset);
  v.setUint32(12, message.length);
  w.set(chunk, HeaderSize.TRANS);
  return w;
}

// ---------------------------------------------------------------- ConnPktHead

/** The 24-byte head of every message on 2B01. */
export interface ConnPktHead {
  /** Should be 0xBABEFACE; OpenHarmony never checks it on GATT. */
  magic: number;
  /** Which module the message is for. */
  module: number;
  /** The sender's message counter (means nothing to the receiver). */
  seq: number | string;
  /** Priority flag. */
  flag: number;
  /** Payload length; OpenHarmony never checks it on GATT. */
  len: number;
}

/**
 * Read a ConnPktHead.
 *
 * @param msg A reassembled message from 2B01.
 * @returns The head, or `undefined` when the message is shorter than 24 bytes.
 */
export function decodeConnPktHead(msg: Uint8Array): ConnPktHead | undefined {
  if (msg.length < HeaderSize.CONN_PKT) return undefined;
  const v = new DataView(msg.buffer, msg.byteOffset, msg.byteLength);
  const seq = v.getBigInt64(8, true);
  return {
    magic: v.getUint32(0, true),
    module: v.getInt32(4, true),
    seq: Number.isSafeInteger(Number(seq)) ? Number(seq) : seq.toString(),
    flag: v.getInt32(16, true),
    len: v.getUint32(20, true),
  };
}

/**
 * A message behind a ConnPktHead (magic set, `len` = payload length).
 *
 * @param head Module, the sender's counter and the flag (default `CONN_HIGH`).
 * @param payload The payload.
 * @returns The message.
 */
export function encodeConnPkt(
  head: { module: number; seq: number; flag?: number },
  payload: Uint8Array,
): Uint8Array {
  const m = new Uint8Array(HeaderSize.CONN_PKT + payload.length);
  const v = new DataView(m.buffer);
  v.setUint32(0, MAGIC, true);
  v.setInt32(4, head.module, true);
  v.setBigInt64(8, BigInt(Math.trunc(head.seq)), true);
  v.setInt32(16, head.flag ?? CONN_HIGH, true);
  v.setUint32(20, payload.length, true);
  m.set(payload, HeaderSize.CONN_PKT);
  return m;
}

// ------------------------------------------------------------- general head

/** The 16-byte head of a general-connection message. */
export interface GeneralHead {
  /** A value of {@linkcode MsgType}. */
  msgType: number;
  /** The sender's id of the connection. */
  localId: number;
  /** The receiver's id of the connection (0 before the receiver named one). */
  peerId: number;
  /** Where the body starts; OpenHarmony honours any value up to the length. */
  headLen: number;
}

/**
 * Read a GeneralConnectionHead.
 *
 * @param body The bytes after ConnPktHead.
 * @returns The head, or `undefined` when shorter than 16 bytes.
 */
export function decodeGeneralHead(body: Uint8Array): GeneralHead | undefined {
  if (body.length < HeaderSize.GENERAL) return undefined;
  const v = new DataView(body.buffer, body.byteOffset, body.byteLength);
  return {
    msgType: v.getUint32(0, true),
    localId: v.getUint32(4, true),
    peerId: v.getUint32(8, true),
    headLen: v.getUint32(12, true),
  };
}

/** What a general message is made of. */
export interface GeneralMessageInit {
  /** The sender's ConnPktHead counter. */
  seq: number;
  /** A value of {@linkcode MsgType}. */
  msgType: number;
  /** The sender's id. */
  localId: number;
  /** The receiver's id (0 when not known yet). */
  peerId: number;
  /** The body: JSON (no NUL) for control messages, raw bytes for NORMAL. */
  payload: Uint8Array;
}

/**
 * A whole general-connection message, ConnPktHead included (module 102).
 *
 * @param init Counter, type, ids and body.
 * @returns The message.
 */
export function encodeGeneralMessage(init: GeneralMessageInit): Uint8Array {
  const body = new Uint8Array(HeaderSize.GENERAL + init.payload.length);
  const v = new DataView(body.buffer);
  v.setUint32(0, init.msgType, true);
  v.setUint32(4, init.localId >>> 0, true);
  v.setUint32(8, init.peerId >>> 0, true);
  v.setUint32(12, HeaderSize.GENERAL, true);
  body.set(init.payload, HeaderSize.GENERAL);
  return encodeConnPkt({ module: Module.BLE_GENERAL, seq: init.seq }, body);
}

function json(value: Record<string, unknown>, nul = false): Uint8Array {
  const text = encoder.encode(JSON.stringify(value));
  if (!nul) return text;
  const out = new Uint8Array(text.length + 1);
  out.set(text);
  return out;
}

/**
 * HANDSHAKE's body: `{"name","ability","bundle_name"}`.
 *
 * @param name The server's name.
 * @param bundleName The connecting app's bundle name.
 * @param ability The ability bits.
 * @returns The body.
 */
export function handshakePayload(
  name: string,
  bundleName: string,
  ability: number = ABILITY,
): Uint8Array {
  return json({ name, ability, bundle_name: bundleName });
}

/**
 * HANDSHAKE_ACK's body: `{"err","ability"}`.
 *
 * @param err 0, or the softbus error that refused the connection.
 * @param ability The ability bits.
 * @returns The body.
 */
export function ackPayload(err: number, ability: number = ABILITY): Uint8Array {
  return json({ err, ability });
}

/**
 * RESET's body: `{}`.
 *
 * @returns The body.
 */
export function resetPayload(): Uint8Array {
  return json({});
}

/**
 * MERGE's body: `{"update_handle"}`.
 *
 * @param updateHandle The receiver's id of the connection on the link that survives.
 * @returns The body.
 */
export function mergePayload(updateHandle: number): Uint8Array {
  return json({ update_handle: updateHandle });
}

/** A general message as a receiver understands it. */
export type GeneralMessage =
  & { localId: number; peerId: number }
  & (
    | { msgType: 0; name: string; ability: number; bundleName: string }
    | { msgType: 1; err: number; ability: number }
    | { msgType: 2 }
    | { msgType: 3; updateHandle: number }
    | { msgType: 12; data: Uint8Array }
  );

/**
 * Read a general message as OpenHarmony does (`OnCommDataReceived`,
 * `GeneralConnectionUnpackMsg`): at least 16 bytes, `msgType < 22`,
 * `headLen` at most the length and honoured as the body offset; JSON as cJSON
 * reads it; names up to 255 bytes.
 *
 * @param body The bytes after ConnPktHead.
 * @returns The message, or why OpenHarmony drops it.
 */
export function parseGeneral(body: Uint8Array): GeneralMessage | string {
  const head = decodeGeneralHead(body);
  if (head === undefined) return `general message of ${body.length} bytes is shorter than 16`;
  if (head.msgType >= MsgType.MAX) return `msgType ${head.msgType} is not below ${MsgType.MAX}`;
  if (body.length < head.headLen) {
    return `headLen ${head.headLen} exceeds the ${body.length}-byte message`;
  }
  const ids = { localId: head.localId, peerId: head.peerId };
  const payload = body.subarray(head.headLen);
  if (head.msgType === MsgType.NORMAL) return { ...ids, msgType: 12, data: payload };
  if (
    head.msgType !== MsgType.HANDSHAKE && head.msgType !== MsgType.HANDSHAKE_ACK &&
    head.msgType !== MsgType.RESET && head.msgType !== MsgType.MERGE
  ) {
    return `msgType ${head.msgType} has no parser`;
  }
  const o = parseObject(payload);
  if (o === undefined) return `${msgTypeName(head.msgType)} body is not a JSON object`;
  switch (head.msgType) {
    case MsgType.HANDSHAKE: {
      const name = stringItem(o, "name", OhLimits.MAX_NAME_BYTES + 1);
      const ability = unsignedItem(o, "ability");
      const bundleName = stringItem(o, "bundle_name", OhLimits.MAX_BUNDLE_BYTES + 1);
      if (name === undefined || ability === undefined || bundleName === undefined) {
        return "HANDSHAKE lacks a valid name, ability or bundle_name";
      }
      return { ...ids, msgType: 0, name, ability, bundleName };
    }
    case MsgType.HANDSHAKE_ACK: {
      const err = signedItem(o, "err");
      const ability = unsignedItem(o, "ability");
      if (err === undefined || ability === undefined) return "HANDSHAKE_ACK lacks err or ability";
      return { ...ids, msgType: 1, err, ability };
    }
    case MsgType.RESET:
      return { ...ids, msgType: 2 };
    default: {
      const updateHandle = unsignedItem(o, "update_handle");
      if (updateHandle === undefined) return "MERGE lacks update_handle";
      return { ...ids, msgType: 3, updateHandle: updateHandle >>> 0 };
    }
  }
}

// -------------------------------------------------------- reference counting

/** A reference-count message (module 11, `METHOD_NOTIFY_REQUEST`). */
export interface RcMessage {
  /** +1 when the sender takes a reference, -1 when it releases one, 0 in a reply. */
  delta: number;
  /** The sender's count after the change. */
  refNum: number;
  /** An opaque number echoed by OpenHarmony (0 on this path). */
  challenge: number;
}

/**
 * A whole reference-count message, ConnPktHead included:
 * `{"KEY_METHOD":1,"KEY_DELTA","KEY_REF_NUM","KEY_CHALLENGE"}` + NUL.
 *
 * @param seq The sender's counter of these messages.
 * @param rc Delta, count and challenge.
 * @returns The message.
 */
export function encodeRcMessage(seq: number, rc: RcMessage): Uint8Array {
  const body = json({
    KEY_METHOD: 1,
    KEY_DELTA: rc.delta,
    KEY_REF_NUM: rc.refNum,
    KEY_CHALLENGE: rc.challenge,
  }, true);
  return encodeConnPkt({ module: Module.CONNECTION, seq }, body);
}

/**
 * Read a reference-count message as OpenHarmony does (`ReceivedControlData`,
 * `ConnBleOnReferenceRequest`): method 1, signed delta and count, optional
 * challenge.
 *
 * @param payload The bytes after ConnPktHead.
 * @returns The message, or why OpenHarmony ignores it.
 */
export function parseRc(payload: Uint8Array): RcMessage | string {
  const o = parseObject(payload);
  if (o === undefined) return "reference-count body is not a JSON object";
  const method = unsignedItem(o, "KEY_METHOD");
  if (method === undefined) return "reference-count message lacks KEY_METHOD";
  if (method !== 1) return `reference-count method ${method} is not supported`;
  const delta = signedItem(o, "KEY_DELTA");
  const refNum = signedItem(o, "KEY_REF_NUM");
  if (delta === undefined || refNum === undefined) {
    return "reference-count message lacks KEY_DELTA or KEY_REF_NUM";
  }
  const challenge = unsignedItem(o, "KEY_CHALLENGE");
  return { delta, refNum, challenge: challenge === undefined ? 0 : challenge & 0xffff };
}

// ----------------------------------------------------------------- basic info

/** Basic info, the first message each side sends on 2B00. */
export interface BasicInfo {
  /** The sender's id (UDID, or networkId when asked for); absent when not sent. */
  devid?: string;
  /** The sender's side: 1 = GATT client, 2 = GATT server. */
  type: number;
  /** The sender's device type id (14 = phone, 255 = unknown). */
  devtype: number;
  /** `FEATURE_SUPPORT` bits (see {@linkcode Feature}). */
  features: number;
}

/**
 * A whole basic-info message: `int32 LE 1` + JSON + NUL, keys in
 * OpenHarmony's order (`devid` left out when `info.devid` is undefined).
 *
 * @param info What to send.
 * @returns The message (sent on 2B00 behind BleTransHeader only).
 */
export function encodeBasicInfo(info: BasicInfo): Uint8Array {
  const body: Record<string, unknown> = {};
  if (info.devid !== undefined) body.devid = info.devid;
  body.type = info.type;
  body.devtype = info.devtype;
  body.FEATURE_SUPPORT = info.features;
  const text = json(body, true);
  const m = new Uint8Array(HeaderSize.NET_CTRL + text.length);
  new DataView(m.buffer).setInt32(0, 1, true);
  m.set(text, HeaderSize.NET_CTRL);
  return m;
}

/**
 * Read basic info as OpenHarmony does (`ParsePeerBasicInfoInner`): net-control
 * type 1, a JSON object with a number `type` (not below 0); `devid` (up to 64
 * bytes), `devtype` and `FEATURE_SUPPORT` optional (0 when missing).
 *
 * @param msg A reassembled message from 2B00.
 * @returns The info, or why OpenHarmony refuses it (and drops the link).
 */
export function parseBasicInfo(msg: Uint8Array): BasicInfo | string {
  if (msg.length <= HeaderSize.NET_CTRL) return `basic info of ${msg.length} bytes is too short`;
  const type = new DataView(msg.buffer, msg.byteOffset, msg.byteLength).getInt32(0, true);
  if (type !== 1) return `net-control type ${type} is not basic info (1)`;
  const o: JsonObject | undefined = parseObject(msg.subarray(HeaderSize.NET_CTRL));
  if (o === undefined) return "basic info is not a JSON object";
  const side = unsignedItem(o, "type");
  if (side === undefined) return "basic info lacks type";
  const devid = stringItem(o, "devid", OhLimits.MAX_DEVID_BYTES + 1);
  return {
    ...(devid === undefined ? {} : { devid }),
    type: side,
    devtype: unsignedItem(o, "devtype") ?? 0,
    features: unsignedItem(o, "FEATURE_SUPPORT") ?? 0,
  };
}

/**
 * ASCII case-insensitive comparison, as OpenHarmony matches names and bundle
 * names (`StrCmpIgnoreCase`).
 *
 * @param a One string.
 * @param b The other.
 * @returns Whether they are equal ignoring ASCII case.
 */
export function sameIgnoringCase(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x >= 0x41 && x <= 0x5a) x += 0x20;
    if (y >= 0x41 && y <= 0x5a) y += 0x20;
    if (x !== y) return false;
  }
  return true;
}

/**
 * Whether a name fits OpenHarmony's limit (1..255 UTF-8 bytes).
 *
 * @param name The name.
 * @returns Whether it fits.
 */
export function validName(name: string): boolean {
  const n = utf8Length(name);
  return n > 0 && n <= OhLimits.MAX_NAME_BYTES && !name.includes("\0");
}

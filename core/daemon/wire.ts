/**
 * The attach protocol between an application and the device daemon
 * (`docs/daemon.md`, "Attach protocol"), version 1.1: messages on a local
 * stream socket, each a 4-byte big-endian length (of what follows) and a
 * 1-byte type, then the body. Numbers are big-endian; `json` is one UTF-8
 * JSON value filling the rest of the message.
 *
 * From the application:
 *
 * | type | name    | body                                                                      |
 * | ---- | ------- | ------------------------------------------------------------------------- |
 * | 1    | hello   | magic `LWAT`, major u16, minor u16, capabilities u32, json `{ pid }`       |
 * | 2    | serve   | kind u16, json: the names served (replaces the kind's list)                |
 * | 3    | connect | handle u32, kind u16, timeout u32 (ms), maxMessage u32, json `{ peer, name, bundle }` |
 * | 4    | accept  | handle u32                                                                |
 * | 5    | reject  | handle u32, code u32                                                      |
 * | 6    | data    | handle u32, the message                                                   |
 * | 7    | close   | handle u32                                                                |
 * | 8    | pair    | request u32, json `{ op: "offer", timeout }` or `{ op: "enter", target, code }` (1.1) |
 *
 * From the daemon:
 *
 * | type | name           | body                                                              |
 * | ---- | -------------- | ----------------------------------------------------------------- |
 * | 65   | welcome        | major u16, minor u16, capabilities u32, json `{ deviceId, nonce, port, bind, pid }` |
 * | 66   | open           | handle u32, kind u16, json `{ peer, name, bundle }`               |
 * | 67   | opened         | handle u32                                                        |
 * | 68   | rejected       | handle u32, code u32                                              |
 * | 69   | failed         | handle u32, code u32, UTF-8 message                               |
 * | 70   | data           | handle u32, the message                                           |
 * | 71   | closed         | handle u32, reason i32, byPeer u8                                 |
 * | 72   | sent           | handle u32, bytes u32, buffered u32                               |
 * | 73   | state          | json `{ links: [[peer, channels]], known: [peer] }`               |
 * | 74   | listenerFailed | UTF-8 message                                                     |
 * | 75   | error          | UTF-8 message (the daemon closes the socket after it)             |
 * | 76   | pairing        | request u32, json `{ offer: code }`, `{ paired: device }` or `{ failed: { code, message } }` (1.1) |
 *
 * Pairing (minor 1, capability {@linkcode AttachCapability.PAIRING}): the
 * daemon owns the device's identity and trust, so an application's
 * `pairing.offer()` / `pairing.enter()` ask it. An offer is answered
 * `{ offer }` with the code to show, then `{ paired }` or `{ failed }`; an
 * entered code is answered `{ paired }` or `{ failed }`.
 *
 * A connection is a **handle**: odd for those the application opens
 * (`connect`), even for those the daemon offers (`open`). A message this
 * decoder cannot read (unknown type, wrong direction, truncated, bad JSON,
 * a length over {@linkcode MAX_ATTACH_MESSAGE}) is a protocol error: the
 * other side closes the socket.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const bytes = encodeAttach({ type: "close", handle: 3 });
 * const d = new AttachDecoder("app");
 * assert.deepEqual(d.push(bytes), [{ type: "close", handle: 3 }]);
 * ```
 *
 * @module
 */
import { DEFAULT_MAX_MESSAGE } from "../proto/link/mod.ts";

/** The major version of the attach protocol this code speaks. */
export const ATTACH_MAJOR = 1;
/** The minor version this code speaks (a newer minor only adds capability bits and fields). */
export const ATTACH_MINOR = 1;
/** Capability bits (a receiver ignores bits it does not know). */
export const AttachCapability = {
  /** 1.1: the daemon pairs for its applications (`pair`, `pairing`). */
  PAIRING: 1,
} as const;
/** The capability bits this code has. */
export const ATTACH_CAPABILITIES: number = AttachCapability.PAIRING;
/** The first bytes of an application's `hello`. */
export const ATTACH_MAGIC = "LWAT";
/**
 * Largest attach message (length field), bytes: a link message of the
 * link's largest size plus room for the header. More is a protocol error.
 */
export const MAX_ATTACH_MESSAGE: number = DEFAULT_MAX_MESSAGE + 64;

/** Message types. */
export const AttachType = {
  HELLO: 1,
  SERVE: 2,
  CONNECT: 3,
  ACCEPT: 4,
  REJECT: 5,
  DATA: 6,
  CLOSE: 7,
  PAIR: 8,
  WELCOME: 65,
  OPEN: 66,
  OPENED: 67,
  REJECTED: 68,
  FAILED: 69,
  DELIVER: 70,
  CLOSED: 71,
  SENT: 72,
  STATE: 73,
  LISTENER_FAILED: 74,
  ERROR: 75,
  PAIRING: 76,
} as const;

/** Who sent a message: the application or the daemon. */
export type AttachSide = "app" | "daemon";

/** An application's first message. */
export interface AttachHello {
  /** The message. */
  type: "hello";
  /** Its major version. */
  major: number;
  /** Its minor version. */
  minor: number;
  /** Its capability bits. */
  caps: number;
  /** Its process id (for the daemon's messages and `linkweave daemon --json`). */
  pid: number;
}

/** The daemon's answer to `hello`. */
export interface AttachWelcome {
  /** The message. */
  type: "welcome";
  /** The version both use: the daemon's major, the lower minor. */
  major: number;
  /** The minor version both use. */
  minor: number;
  /** The daemon's capability bits. */
  caps: number;
  /** The device's id. */
  deviceId: string;
  /** The device runtime's nonce. */
  nonce: string;
  /** Its TCP port (0 without TCP). */
  port: number;
  /** Its listen address. */
  bind: string;
  /** The daemon's process id. */
  pid: number;
}

/** Where a connection goes or comes from. */
export interface AttachTarget {
  /** The peer device. */
  peer: string;
  /** The service name. */
  name: string;
  /** The bundle name ("" when none). */
  bundle: string;
}

/** A device the daemon's device trusts now (`TrustedDevice`). */
export interface AttachPaired {
  /** Its device id. */
  id: string;
  /** Its key, base64. */
  key: string;
  /** How it came to be trusted. */
  how: "account" | "paired";
  /** When (ms since the epoch). */
  since: number;
  /** Where it was reached when paired (`host:port`). */
  address?: string;
}

/** What an application asks the daemon's device to pair. */
export type AttachPairOp =
  | { op: "offer"; timeout: number }
  | { op: "enter"; target: string; code: string };

/** The daemon's answer to a `pair`: the code to show, the device paired, or why it failed. */
export type AttachPairing =
  | { offer: string }
  | { paired: AttachPaired }
  | { failed: { code: number; message: string } };

/** A message of the attach protocol. */
export type AttachMessage =
  | AttachHello
  | { type: "serve"; kind: number; names: string[] }
  | ({
    type: "connect";
    handle: number;
    kind: number;
    timeout: number;
    maxMessage: number;
  } & AttachTarget)
  | { type: "accept"; handle: number }
  | { type: "reject"; handle: number; code: number }
  | { type: "data"; handle: number; bytes: Uint8Array }
  | { type: "close"; handle: number }
  | ({ type: "pair"; request: number } & AttachPairOp)
  | AttachWelcome
  | ({ type: "open"; handle: number; kind: number } & AttachTarget)
  | { type: "opened"; handle: number }
  | { type: "rejected"; handle: number; code: number }
  | { type: "failed"; handle: number; code: number; message: string }
  | { type: "deliver"; handle: number; bytes: Uint8Array }
  | { type: "closed"; handle: number; reason: number; byPeer: boolean }
  | { type: "sent"; handle: number; bytes: number; buffered: number }
  | { type: "state"; links: [string, number][]; known: string[] }
  | { type: "listenerFailed"; message: string }
  | { type: "error"; message: string }
  | ({ type: "pairing"; request: number } & AttachPairing);

const enc = new TextEncoder();
const dec = new TextDecoder("utf-8", { fatal: true });

/** A message's bytes: length, type, then `fields` bytes written by `fill`, then `tail`. */
function frame(
  type: number,
  fields: number,
  fill: (v: DataView) => void,
  tail: Uint8Array = new Uint8Array(0),
): Uint8Array {
  const out = new Uint8Array(5 + fields + tail.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, 1 + fields + tail.length);
  out[4] = type;
  fill(new DataView(out.buffer, 5, fields));
  out.set(tail, 5 + fields);
  return out;
}

function json(value: unknown): Uint8Array {
  return enc.encode(JSON.stringify(value));
}

function u32(n: number): number {
  return Math.max(0, Math.min(0xffffffff, Math.floor(n)));
}

/**
 * The bytes of one message (length prefix included).
 *
 * @param m The message.
 * @returns The bytes.
 */
export function encodeAttach(m: AttachMessage): Uint8Array {
  switch (m.type) {
    case "hello":
      return frame(AttachType.HELLO, 12, (v) => {
        for (let i = 0; i < 4; i++) v.setUint8(i, ATTACH_MAGIC.charCodeAt(i));
        v.setUint16(4, m.major);
        v.setUint16(6, m.minor);
        v.setUint32(8, m.caps);
      }, json({ pid: m.pid }));
    case "serve":
      return frame(AttachType.SERVE, 2, (v) => v.setUint16(0, m.kind), json(m.names));
    case "connect":
      return frame(AttachType.CONNECT, 14, (v) => {
        v.setUint32(0, m.handle);
        v.setUint16(4, m.kind);
        v.setUint32(6, u32(m.timeout));
        v.setUint32(10, u32(m.maxMessage));
      }, json({ peer: m.peer, name: m.name, bundle: m.bundle }));
    case "accept":
      return frame(AttachType.ACCEPT, 4, (v) => v.setUint32(0, m.handle));
    case "reject":
      return frame(AttachType.REJECT, 8, (v) => {
        v.setUint32(0, m.handle);
        v.setUint32(4, u32(m.code));
      });
    case "data":
      return frame(AttachType.DATA, 4, (v) => v.setUint32(0, m.handle), m.bytes);
    case "close":
      return frame(AttachType.CLOSE, 4, (v) => v.setUint32(0, m.handle));
    case "pair": {
      const body = m.op === "offer"
        ? { op: m.op, timeout: m.timeout }
        : { op: m.op, target: m.target, code: m.code };
      return frame(AttachType.PAIR, 4, (v) => v.setUint32(0, m.request), json(body));
    }
    case "pairing": {
      const body = "offer" in m
        ? { offer: m.offer }
        : "paired" in m
        ? { paired: m.paired }
        : { failed: m.failed };
      return frame(AttachType.PAIRING, 4, (v) => v.setUint32(0, m.request), json(body));
    }
    case "welcome":
      return frame(AttachType.WELCOME, 8, (v) => {
        v.setUint16(0, m.major);
        v.setUint16(2, m.minor);
        v.setUint32(4, m.caps);
      }, json({ deviceId: m.deviceId, nonce: m.nonce, port: m.port, bind: m.bind, pid: m.pid }));
    case "open":
      return frame(AttachType.OPEN, 6, (v) => {
        v.setUint32(0, m.handle);
        v.setUint16(4, m.kind);
      }, json({ peer: m.peer, name: m.name, bundle: m.bundle }));
    case "opened":
      return frame(AttachType.OPENED, 4, (v) => v.setUint32(0, m.handle));
    case "rejected":
      return frame(AttachType.REJECTED, 8, (v) => {
        v.setUint32(0, m.handle);
        v.setUint32(4, u32(m.code));
      });
    case "failed":
      return frame(AttachType.FAILED, 8, (v) => {
        v.setUint32(0, m.handle);
        v.setUint32(4, u32(m.code));
      }, enc.encode(m.message));
    case "deliver":
      return frame(AttachType.DELIVER, 4, (v) => v.setUint32(0, m.handle), m.bytes);
    case "closed":
      return frame(AttachType.CLOSED, 9, (v) => {
        v.setUint32(0, m.handle);
        v.setInt32(4, m.reason);
        v.setUint8(8, m.byPeer ? 1 : 0);
      });
    case "sent":
      return frame(AttachType.SENT, 12, (v) => {
        v.setUint32(0, m.handle);
        v.setUint32(4, u32(m.bytes));
        v.setUint32(8, u32(m.buffered));
      });
    case "state":
      return frame(AttachType.STATE, 0, () => {}, json({ links: m.links, known: m.known }));
    case "listenerFailed":
      return frame(AttachType.LISTENER_FAILED, 0, () => {}, enc.encode(m.message));
    case "error":
      return frame(AttachType.ERROR, 0, () => {}, enc.encode(m.message));
  }
}

function parseJson(bytes: Uint8Array): unknown {
  try {
    return JSON.parse(dec.decode(bytes));
  } catch {
    return undefined;
  }
}

function text(bytes: Uint8Array): string | undefined {
  try {
    return dec.decode(bytes);
  } catch {
    return undefined;
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function target(v: unknown): AttachTarget | undefined {
  if (!isRecord(v)) return undefined;
  const { peer, name, bundle } = v;
  if (typeof peer !== "string" || typeof name !== "string" || typeof bundle !== "string") {
    return undefined;
  }
  return { peer, name, bundle };
}

function pairOp(v: unknown): AttachPairOp | undefined {
  if (!isRecord(v)) return undefined;
  if (v.op === "offer" && Number.isInteger(v.timeout) && (v.timeout as number) > 0) {
    return { op: "offer", timeout: v.timeout as number };
  }
  if (v.op === "enter" && typeof v.target === "string" && typeof v.code === "string") {
    return { op: "enter", target: v.target, code: v.code };
  }
  return undefined;
}

function pairing(v: unknown): AttachPairing | undefined {
  if (!isRecord(v)) return undefined;
  if (typeof v.offer === "string") return { offer: v.offer };
  const p = v.paired;
  if (
    isRecord(p) && typeof p.id === "string" && typeof p.key === "string" &&
    (p.how === "account" || p.how === "paired") && typeof p.since === "number" &&
    (p.address === undefined || typeof p.address === "string")
  ) {
    const paired: AttachPaired = { id: p.id, key: p.key, how: p.how, since: p.since };
    if (p.address !== undefined) paired.address = p.address as string;
    return { paired };
  }
  const f = v.failed;
  if (isRecord(f) && Number.isInteger(f.code) && typeof f.message === "string") {
    return { failed: { code: f.code as number, message: f.message } };
  }
  return undefined;
}

/** Decode one message body (type byte first); `undefined` when malformed. */
function decodeBody(m: Uint8Array, from: AttachSide): AttachMessage | undefined {
  const v = new DataView(m.buffer, m.byteOffset, m.byteLength);
  const n = m.length;
  const type = m[0];
  if ((type < 64) !== (from === "app")) return undefined;
  const at = (len: number) => n >= 1 + len;
  switch (type) {
    case AttachType.HELLO: {
      if (!at(12)) return undefined;
      for (let i = 0; i < 4; i++) if (m[1 + i] !== ATTACH_MAGIC.charCodeAt(i)) return undefined;
      const o = parseJson(m.subarray(13));
      if (!isRecord(o) || !Number.isInteger(o.pid)) return undefined;
      return {
        type: "hello",
        major: v.getUint16(5),
        minor: v.getUint16(7),
        caps: v.getUint32(9),
        pid: o.pid as number,
      };
    }
    case AttachType.SERVE: {
      if (!at(2)) return undefined;
      const names = parseJson(m.subarray(3));
      if (!Array.isArray(names) || !names.every((x) => typeof x === "string")) return undefined;
      return { type: "serve", kind: v.getUint16(1), names };
    }
    case AttachType.CONNECT: {
      if (!at(14)) return undefined;
      const t = target(parseJson(m.subarray(15)));
      if (t === undefined) return undefined;
      return {
        type: "connect",
        handle: v.getUint32(1),
        kind: v.getUint16(5),
        timeout: v.getUint32(7),
        maxMessage: v.getUint32(11),
        ...t,
      };
    }
    case AttachType.ACCEPT:
      if (!at(4)) return undefined;
      return { type: "accept", handle: v.getUint32(1) };
    case AttachType.REJECT:
      if (!at(8)) return undefined;
      return { type: "reject", handle: v.getUint32(1), code: v.getUint32(5) };
    case AttachType.DATA:
      if (!at(4)) return undefined;
      return { type: "data", handle: v.getUint32(1), bytes: m.subarray(5) };
    case AttachType.CLOSE:
      if (!at(4)) return undefined;
      return { type: "close", handle: v.getUint32(1) };
    case AttachType.PAIR: {
      if (!at(4)) return undefined;
      const op = pairOp(parseJson(m.subarray(5)));
      return op === undefined ? undefined : { type: "pair", request: v.getUint32(1), ...op };
    }
    case AttachType.PAIRING: {
      if (!at(4)) return undefined;
      const p = pairing(parseJson(m.subarray(5)));
      return p === undefined ? undefined : { type: "pairing", request: v.getUint32(1), ...p };
    }
    case AttachType.WELCOME: {
      if (!at(8)) return undefined;
      const o = parseJson(m.subarray(9));
      if (
        !isRecord(o) || typeof o.deviceId !== "string" || typeof o.nonce !== "string" ||
        !Number.isInteger(o.port) || typeof o.bind !== "string" || !Number.isInteger(o.pid)
      ) return undefined;
      return {
        type: "welcome",
        major: v.getUint16(1),
        minor: v.getUint16(3),
        caps: v.getUint32(5),
        deviceId: o.deviceId,
        nonce: o.nonce,
        port: o.port as number,
        bind: o.bind,
        pid: o.pid as number,
      };
    }
    case AttachType.OPEN: {
      if (!at(6)) return undefined;
      const t = target(parseJson(m.subarray(7)));
      if (t === undefined) return undefined;
      return { type: "open", handle: v.getUint32(1), kind: v.getUint16(5), ...t };
    }
    case AttachType.OPENED:
      if (!at(4)) return undefined;
      return { type: "opened", handle: v.getUint32(1) };
    case AttachType.REJECTED:
      if (!at(8)) return undefined;
      return { type: "rejected", handle: v.getUint32(1), code: v.getUint32(5) };
    case AttachType.FAILED: {
      if (!at(8)) return undefined;
      const message = text(m.subarray(9));
      if (message === undefined) return undefined;
      return { type: "failed", handle: v.getUint32(1), code: v.getUint32(5), message };
    }
    case AttachType.DELIVER:
      if (!at(4)) return undefined;
      return { type: "deliver", handle: v.getUint32(1), bytes: m.subarray(5) };
    case AttachType.CLOSED:
      if (!at(9)) return undefined;
      return {
        type: "closed",
        handle: v.getUint32(1),
        reason: v.getInt32(5),
        byPeer: m[9] === 1,
      };
    case AttachType.SENT:
      if (!at(12)) return undefined;
      return {
        type: "sent",
        handle: v.getUint32(1),
        bytes: v.getUint32(5),
        buffered: v.getUint32(9),
      };
    case AttachType.STATE: {
      const o = parseJson(m.subarray(1));
      if (!isRecord(o) || !Array.isArray(o.links) || !Array.isArray(o.known)) return undefined;
      const links = o.links as unknown[];
      if (
        !links.every((l) =>
          Array.isArray(l) && l.length === 2 && typeof l[0] === "string" && Number.isInteger(l[1])
        ) || !(o.known as unknown[]).every((k) => typeof k === "string")
      ) return undefined;
      return { type: "state", links: links as [string, number][], known: o.known as string[] };
    }
    case AttachType.LISTENER_FAILED: {
      const message = text(m.subarray(1));
      return message === undefined ? undefined : { type: "listenerFailed", message };
    }
    case AttachType.ERROR: {
      const message = text(m.subarray(1));
      return message === undefined ? undefined : { type: "error", message };
    }
  }
  return undefined;
}

/** What {@linkcode AttachDecoder.push} throws: the peer broke the protocol. */
export class AttachProtocolError extends Error {
  /** @param message What was wrong. */
  constructor(message: string) {
    super(message);
    this.name = "AttachProtocolError";
  }
}

/** The first buffer of a message being received, bytes (it grows as bytes arrive). */
const FIRST_BUFFER = 64 * 1024;

/**
 * Cuts a byte stream into attach messages. It holds at most one message
 * being received (at most {@linkcode MAX_ATTACH_MESSAGE} bytes): its buffer
 * starts at 64 KiB and doubles as bytes arrive, so a length alone makes it
 * hold nothing more.
 */
export class AttachDecoder {
  #from: AttachSide;
  #max: number;
  #head = new Uint8Array(4);
  #headFill = 0;
  #body: Uint8Array | undefined;
  #bodyFill = 0;
  #bodyLength = 0;

  /**
   * @param from Whose messages it reads: `"app"` (the daemon's decoder) or `"daemon"`.
   * @param options The largest message. @default {{ max: MAX_ATTACH_MESSAGE }}
   */
  constructor(from: AttachSide, options: { max?: number } = {}) {
    this.#from = from;
    this.#max = options.max ?? MAX_ATTACH_MESSAGE;
  }

  /** Bytes held for a message not complete yet. */
  get pending(): number {
    return this.#headFill + (this.#body?.length ?? 0);
  }

  /**
   * Take bytes; return the messages they complete, in order. Data payloads
   * are views into buffers the decoder gives away (never reused).
   *
   * @param bytes Bytes from the socket (not kept).
   * @returns The messages.
   * @throws {AttachProtocolError} On a length over the limit, an empty
   *   message, or a message it cannot read.
   */
  push(bytes: Uint8Array): AttachMessage[] {
    const out: AttachMessage[] = [];
    let i = 0;
    while (i < bytes.length) {
      if (this.#body === undefined) {
        const take = Math.min(4 - this.#headFill, bytes.length - i);
        this.#head.set(bytes.subarray(i, i + take), this.#headFill);
        this.#headFill += take;
        i += take;
        if (this.#headFill < 4) break;
        const len = new DataView(this.#head.buffer).getUint32(0);
        if (len === 0 || len > this.#max) {
          throw new AttachProtocolError(
            `a message of ${len} bytes (attach messages are 1..${this.#max} bytes)`,
          );
        }
        this.#body = new Uint8Array(Math.min(len, FIRST_BUFFER));
        this.#bodyFill = 0;
        this.#bodyLength = len;
      }
      let body = this.#body;
      const take = Math.min(this.#bodyLength - this.#bodyFill, bytes.length - i);
      if (this.#bodyFill + take > body.length) {
        const grown = new Uint8Array(
          Math.min(this.#bodyLength, Math.max(this.#bodyFill + take, body.length * 2)),
        );
        grown.set(body.subarray(0, this.#bodyFill));
        body = this.#body = grown;
      }
      body.set(bytes.subarray(i, i + take), this.#bodyFill);
      this.#bodyFill += take;
      i += take;
      if (this.#bodyFill < this.#bodyLength) break;
      this.#body = undefined;
      this.#headFill = 0;
      const m = decodeBody(body, this.#from);
      if (m === undefined) {
        throw new AttachProtocolError(
          `a malformed or unexpected message (type ${body[0]}, ${body.length} bytes)`,
        );
      }
      out.push(m);
    }
    return out;
  }
}

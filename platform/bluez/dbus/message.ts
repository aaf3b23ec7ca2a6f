/**
 * D-Bus messages: the header, its fields, serials, and a sans-IO framer that
 * turns a byte stream (with the file descriptors that came with it) into
 * messages under named limits.
 *
 * @module
 */
import { ParameterError } from "../../../core/errors.ts";
import { DecodeError, type Endian, MAX_ARRAY_BYTES, Reader, Writer } from "./marshal.ts";
import {
  type DBusType,
  isBusName,
  isInterfaceName,
  isMemberName,
  isObjectPath,
  parseSignature,
  parseSingleType,
} from "./signature.ts";

/** Message types. */
export const MessageType = {
  /** A method call. */
  METHOD_CALL: 1,
  /** A method's reply. */
  METHOD_RETURN: 2,
  /** An error reply. */
  ERROR: 3,
  /** A signal. */
  SIGNAL: 4,
} as const;

/** A value of {@linkcode MessageType}. */
export type MessageTypeValue = typeof MessageType[keyof typeof MessageType];

/** Message header flags. */
export const MessageFlag = {
  /** The caller wants no reply. */
  NO_REPLY_EXPECTED: 1,
  /** The bus must not start a service to deliver the call. */
  NO_AUTO_START: 2,
  /** The callee may prompt the user for authorization. */
  ALLOW_INTERACTIVE_AUTHORIZATION: 4,
} as const;

/** A D-Bus message, received or to be sent. */
export interface Message {
  /** The type. */
  type: MessageTypeValue;
  /** Header flags ({@linkcode MessageFlag}). */
  flags: number;
  /** The sender's serial (set when sent). */
  serial: number;
  /** Object path (calls and signals). */
  path?: string;
  /** Interface (signals; optional on calls). */
  interface?: string;
  /** Method or signal name. */
  member?: string;
  /** Error name (errors). */
  errorName?: string;
  /** Serial of the call this replies to (returns and errors). */
  replySerial?: number;
  /** Destination bus name. */
  destination?: string;
  /** Sender bus name (set by the bus). */
  sender?: string;
  /** The body's signature; `""` when there is no body. */
  signature: string;
  /** The body: one value per complete type of `signature`. */
  body: unknown[];
  /** File descriptors carried, indexed by the body's `h` values. */
  fds: number[];
}

/** Limits on what a peer can make us hold, per connection. */
export interface MessageLimits {
  /** Largest message accepted, in bytes (header and body). */
  maxMessageBytes: number;
  /** Most file descriptors one message may carry. */
  maxFdsPerMessage: number;
  /** Most values one message may decode to (containers and their elements). */
  maxValues: number;
}

/**
 * Default {@linkcode MessageLimits}: 8 MiB messages (the system bus allows
 * 32 MiB; what BlueZ sends is far smaller), 16 descriptors per message (the
 * system bus's own limit), 262144 values.
 */
export const DEFAULT_MESSAGE_LIMITS: Readonly<MessageLimits> = {
  maxMessageBytes: 8 * 1024 * 1024,
  maxFdsPerMessage: 16,
  maxValues: 1 << 18,
};

/** Header field codes. */
const Field = {
  PATH: 1,
  INTERFACE: 2,
  MEMBER: 3,
  ERROR_NAME: 4,
  REPLY_SERIAL: 5,
  DESTINATION: 6,
  SENDER: 7,
  SIGNATURE: 8,
  UNIX_FDS: 9,
} as const;

const FIELD_SIGNATURE: Readonly<Record<number, string>> = {
  1: "o",
  2: "s",
  3: "s",
  4: "s",
  5: "u",
  6: "s",
  7: "s",
  8: "g",
  9: "u",
};

const OBJECT_PATH: DBusType = parseSignature("o")[0];
const STRING: DBusType = parseSignature("s")[0];
const UINT32: DBusType = parseSignature("u")[0];
const SIGNATURE: DBusType = parseSignature("g")[0];

/** The fields a message needs; what is left out takes its default. */
export type MessageInit = Partial<Message> & Pick<Message, "type">;

function checkName(what: string, value: string | undefined, ok: (s: string) => boolean): void {
  if (value !== undefined && !ok(value)) {
    throw new ParameterError(`Cannot send D-Bus message: invalid ${what} "${value}"`);
  }
}

/** Why a header is incomplete for its type, or `undefined`. */
function missingField(m: MessageInit): string | undefined {
  switch (m.type) {
    case MessageType.METHOD_CALL:
      if (m.path === undefined) return "a method call needs a path";
      if (m.member === undefined) return "a method call needs a member";
      return undefined;
    case MessageType.SIGNAL:
      if (m.path === undefined || m.interface === undefined || m.member === undefined) {
        return "a signal needs a path, an interface and a member";
      }
      return undefined;
    case MessageType.ERROR:
      if (m.errorName === undefined) return "an error needs an error name";
      if (m.replySerial === undefined) return "an error needs a reply serial";
      return undefined;
    case MessageType.METHOD_RETURN:
      if (m.replySerial === undefined) return "a method return needs a reply serial";
      return undefined;
  }
  return `message type ${m.type} is unknown`;
}

/**
 * Encode a message. Writes into `writer` (reset first) and returns a view of
 * its buffer, valid until the writer is used again.
 *
 * @param m The message; `serial` must be set (non-zero).
 * @param writer The writer to use. @default {a new one}
 * @param endian The byte order. @default {"l"}
 * @returns The message's bytes.
 * @throws {ParameterError} When a name, the signature or a value is invalid.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const bytes = encodeMessage({
 *   type: MessageType.METHOD_CALL, serial: 1, path: "/", member: "Ping",
 *   interface: "org.freedesktop.DBus.Peer", destination: "org.freedesktop.DBus",
 * });
 * const reader = new MessageReader();
 * reader.push(bytes);
 * assert.equal(reader.next()?.member, "Ping");
 * ```
 */
export function encodeMessage(m: MessageInit, writer?: Writer, endian: Endian = "l"): Uint8Array {
  const problem = missingField(m);
  if (problem !== undefined) throw new ParameterError(`Cannot send D-Bus message: ${problem}`);
  const serial = m.serial ?? 0;
  if (!Number.isInteger(serial) || serial < 1 || serial > 0xffffffff) {
    throw new ParameterError(`Cannot send D-Bus message: invalid serial "${serial}"`);
  }
  checkName("object path", m.path, isObjectPath);
  checkName("interface", m.interface, isInterfaceName);
  checkName("member", m.member, isMemberName);
  checkName("error name", m.errorName, isInterfaceName);
  checkName("destination", m.destination, isBusName);
  checkName("sender", m.sender, isBusName);
  const signature = m.signature ?? "";
  const body = m.body ?? [];
  const fds = m.fds ?? [];
  const w = writer ?? new Writer(endian);
  w.reset(endian);
  w.u8(endian.charCodeAt(0));
  w.u8(m.type);
  w.u8(m.flags ?? 0);
  w.u8(1);
  w.u32(0); // body length, patched below
  w.u32(serial);
  // The header fields, a(yv), written directly.
  const lenAt = w.length;
  w.u32(0);
  w.align(8);
  const fieldsStart = w.length;
  // Each field is a struct (y, v): the variant's signature is one letter.
  const field = (code: number, type: DBusType, value: unknown) => {
    w.align(8);
    w.u8(code);
    w.u8(1);
    w.u8(type.code.charCodeAt(0));
    w.u8(0);
    w.value(type, value);
  };
  if (m.path !== undefined) field(Field.PATH, OBJECT_PATH, m.path);
  if (m.interface !== undefined) field(Field.INTERFACE, STRING, m.interface);
  if (m.member !== undefined) field(Field.MEMBER, STRING, m.member);
  if (m.errorName !== undefined) field(Field.ERROR_NAME, STRING, m.errorName);
  if (m.replySerial !== undefined) field(Field.REPLY_SERIAL, UINT32, m.replySerial);
  if (m.destination !== undefined) field(Field.DESTINATION, STRING, m.destination);
  if (m.sender !== undefined) field(Field.SENDER, STRING, m.sender);
  if (signature !== "") field(Field.SIGNATURE, SIGNATURE, signature);
  if (fds.length > 0) field(Field.UNIX_FDS, UINT32, fds.length);
  w.patchU32(lenAt, w.length - fieldsStart);
  w.align(8);
  const bodyStart = w.length;
  w.values(signature, body);
  w.patchU32(4, w.length - bodyStart);
  return w.view();
}

/**
 * Why a received message was dropped: the bytes were framed correctly but
 * its header or body is invalid. The stream goes on with the next message.
 * `fds` are the descriptors that came with it; the receiver closes them.
 */
export class MessageDropped extends DecodeError {
  /** The descriptors that came with the dropped message. */
  readonly fds: number[];
  /** The serial of the dropped message (0 when unknown). */
  readonly serial: number;

  /**
   * @param message Why.
   * @param fds Its descriptors.
   * @param serial Its serial.
   */
  constructor(message: string, fds: number[], serial: number) {
    super(message);
    this.name = "MessageDropped";
    this.fds = fds;
    this.serial = serial;
  }
}

/**
 * Turns a byte stream into messages (sans-IO). `push` what arrives, then call
 * `next` until it returns `undefined`.
 *
 * `next` throws a {@linkcode MessageDropped} for a message it had to skip
 * (the stream is still in step), and a plain {@linkcode DecodeError} when the
 * stream cannot be framed any more (the connection must close). Nothing a
 * peer sends makes it hold more than one message of `maxMessageBytes` plus
 * what was pushed, or more than `maxFdsPerMessage` x 4 unclaimed descriptors.
 */
export class MessageReader {
  #chunks: Uint8Array[] = [];
  #length = 0;
  #fds: number[] = [];
  #limits: MessageLimits;
  #failed: DecodeError | undefined;

  /**
   * @param limits Overrides of {@linkcode DEFAULT_MESSAGE_LIMITS}.
   */
  constructor(limits: Partial<MessageLimits> = {}) {
    this.#limits = { ...DEFAULT_MESSAGE_LIMITS, ...limits };
  }

  /** Bytes pushed and not yet returned as messages. */
  get buffered(): number {
    return this.#length;
  }

  /**
   * Add bytes (owned by the reader from now on) and the descriptors received
   * with them.
   *
   * @param bytes The bytes.
   * @param fds Descriptors that arrived with them.
   */
  push(bytes: Uint8Array, fds: readonly number[] = []): void {
    if (bytes.length > 0) {
      this.#chunks.push(bytes);
      this.#length += bytes.length;
    }
    for (const fd of fds) this.#fds.push(fd);
  }

  /**
   * Descriptors received and not yet claimed by a message; the caller closes
   * them when the connection ends.
   *
   * @returns The descriptors (removed from the reader).
   */
  takeUnclaimedFds(): number[] {
    const out = this.#fds;
    this.#fds = [];
    return out;
  }

  /** Merge the first chunks so that the first holds at least `n` bytes. */
  #front(n: number): Uint8Array {
    const first = this.#chunks[0];
    if (first.length >= n) return first;
    const merged = new Uint8Array(n);
    let at = 0;
    while (at < n) {
      const c = this.#chunks[0];
      const take = Math.min(c.length, n - at);
      merged.set(c.subarray(0, take), at);
      at += take;
      if (take === c.length) this.#chunks.shift();
      else this.#chunks[0] = c.subarray(take);
    }
    this.#chunks.unshift(merged);
    return merged;
  }

  #fail(why: string): never {
    this.#failed = new DecodeError(why);
    throw this.#failed;
  }

  /**
   * The next complete message, or `undefined` when more bytes are needed.
   *
   * @returns The message.
   * @throws {MessageDropped} When one message was skipped.
   * @throws {DecodeError} When the stream cannot be framed (sticky).
   */
  next(): Message | undefined {
    if (this.#failed !== undefined) throw this.#failed;
    if (this.#fds.length > this.#limits.maxFdsPerMessage * 4) {
      this.#fail(`more than ${this.#limits.maxFdsPerMessage * 4} descriptors arrived unclaimed`);
    }
    if (this.#length < 16) return undefined;
    const head = this.#front(16);
    const endian = head[0] === 0x6c ? "l" : head[0] === 0x42 ? "B" : undefined;
    if (endian === undefined) this.#fail(`byte order mark ${head[0]} is neither "l" nor "B"`);
    if (head[3] !== 1) this.#fail(`protocol version ${head[3]} is not 1`);
    const view = new DataView(head.buffer, head.byteOffset, 16);
    const le = endian === "l";
    const bodyLength = view.getUint32(4, le);
    const fieldsLength = view.getUint32(12, le);
    if (fieldsLength > MAX_ARRAY_BYTES) this.#fail(`header fields of ${fieldsLength} bytes`);
    const total = 16 + fieldsLength + ((8 - (fieldsLength % 8)) % 8) + bodyLength;
    if (total > this.#limits.maxMessageBytes) {
      this.#fail(`a message of ${total} bytes exceeds ${this.#limits.maxMessageBytes}`);
    }
    if (this.#length < total) return undefined;
    const bytes = this.#front(total);
    if (bytes.length === total) this.#chunks.shift();
    else this.#chunks[0] = bytes.subarray(total);
    this.#length -= total;
    return this.#parse(bytes.subarray(0, total), endian, fieldsLength);
  }

  #parse(bytes: Uint8Array, endian: Endian, fieldsLength: number): Message {
    const type = bytes[1];
    const flags = bytes[2];
    const r = new Reader(bytes, { endian, start: 8, maxValues: this.#limits.maxValues });
    const serial = r.u32();
    r.u32(); // the fields' length, read before
    const fieldsEnd = 16 + fieldsLength;
    const m: Message = {
      type: type as MessageTypeValue,
      flags,
      serial,
      signature: "",
      body: [],
      fds: [],
    };
    let unixFds = 0;
    let problem: string | undefined;
    try {
      // a(yv), read field by field: known fields without building variants.
      while (r.pos < fieldsEnd) {
        r.align(8);
        const code = r.u8();
        const sig = r.signature();
        const want = FIELD_SIGNATURE[code];
        if (want === undefined || sig !== want) {
          let t: DBusType;
          try {
            t = parseSingleType(sig);
          } catch (e) {
            throw new DecodeError(
              `header field ${code} has signature "${sig}": ${(e as Error).message}`,
            );
          }
          r.value(t);
          if (want !== undefined) {
            problem ??= `header field ${code} has type "${sig}", not "${want}"`;
          }
          continue;
        }
        if (code === Field.REPLY_SERIAL) m.replySerial = r.u32();
        else if (code === Field.UNIX_FDS) unixFds = r.u32();
        else if (code === Field.SIGNATURE) m.signature = r.signature();
        else {
          const value = r.value(want === "o" ? OBJECT_PATH : STRING) as string;
          switch (code) {
            case Field.PATH:
              m.path = value;
              break;
            case Field.INTERFACE:
              if (isInterfaceName(value)) m.interface = value;
              else problem ??= `invalid interface "${value}"`;
              break;
            case Field.MEMBER:
              if (isMemberName(value)) m.member = value;
              else problem ??= `invalid member "${value}"`;
              break;
            case Field.ERROR_NAME:
              if (isInterfaceName(value)) m.errorName = value;
              else problem ??= `invalid error name "${value}"`;
              break;
            case Field.DESTINATION:
              if (isBusName(value)) m.destination = value;
              else problem ??= `invalid destination "${value}"`;
              break;
            case Field.SENDER:
              if (isBusName(value)) m.sender = value;
              else problem ??= `invalid sender "${value}"`;
              break;
          }
        }
      }
    } catch (e) {
      if (!(e instanceof DecodeError)) throw e;
      // The fields' length was read before, so the stream is still in step,
      // but the descriptor count is unknown: the descriptors cannot be matched.
      this.#fail(`header fields are invalid: ${(e as Error).message}`);
    }
    if (r.pos !== fieldsEnd) this.#fail("header fields overrun their length");
    const problems = problem === undefined ? [] : [problem];
    // Claim the message's descriptors first, so that a dropped message still
    // hands them over to be closed.
    if (unixFds > this.#fds.length) {
      this.#fail(`a message declares ${unixFds} descriptors but ${this.#fds.length} arrived`);
    }
    m.fds = this.#fds.splice(0, unixFds);
    const drop = (why: string): never => {
      throw new MessageDropped(`Dropped D-Bus message ${serial}: ${why}`, m.fds, serial);
    };
    if (unixFds > this.#limits.maxFdsPerMessage) {
      drop(`${unixFds} descriptors exceed ${this.#limits.maxFdsPerMessage}`);
    }
    if (problems.length > 0) drop(problems[0]);
    if (serial === 0) drop("serial 0");
    if (type < 1 || type > 4) drop(`unknown type ${type}`);
    const missing = missingField(m);
    if (missing !== undefined) drop(missing);
    if (m.replySerial === 0) drop("reply serial 0");
    const body = new Reader(bytes, {
      endian,
      start: 16 + fieldsLength + ((8 - (fieldsLength % 8)) % 8),
      maxValues: this.#limits.maxValues,
      fds: unixFds,
    });
    try {
      m.body = body.values(m.signature);
    } catch (e) {
      if (!(e instanceof DecodeError)) throw e;
      drop(`its body does not match "${m.signature}": ${(e as Error).message}`);
    }
    if (!body.done) drop(`bytes remain after its body "${m.signature}"`);
    return m;
  }
}

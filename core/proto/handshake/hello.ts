/**
 * The channel handshake's messages, sans-IO: the first frame each side sends
 * on a new channel says which device it is, so the channel can join the link
 * to that peer. `docs/link-protocol.md` section 2 specifies them; the rule
 * that decides what to do with a `hello` is `decide.ts`.
 *
 * The first frame in each direction is a CONTROL frame on stream 0 whose
 * payload is a JSON object (`v`, `op`, `id`, `nonce`, and `reason` for
 * `refuse`). {@linkcode HelloReader} takes it off the front of a channel with
 * the codec's own decoder and hands back the bytes after it, which already
 * belong to the link.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createCodec } from "../../../wasm/mod.ts";
 * const codec = createCodec();
 * const reader = new HelloReader(codec);
 * const bytes = encodeHello(codec, { op: "hello", id: "00:11:22:33:44:55", nonce: "n1" });
 * const got = reader.push(bytes);
 * assert.ok(got !== undefined && !("error" in got));
 * assert.equal(got.hello.id, "00:11:22:33:44:55");
 * assert.equal(got.rest.length, 0);
 * ```
 *
 * @module
 */
import { type Codec, type Frame, FRAME_OVERHEAD, FrameType } from "../frame.ts";
import { isDeviceId } from "../../device/config.ts";

/** Version of the link protocol this device speaks (handshake field `v`). */
export const PROTOCOL_VERSION = 3;
/** Largest handshake payload accepted, in bytes. */
export const MAX_HELLO = 4096;

/** What one side of a channel says first (`hello` from the dialer, `welcome` or `refuse` back). */
export interface Hello {
  /** `hello` (dialer), `welcome` (acceptor agrees) or `refuse` (acceptor declines). */
  op: "hello" | "welcome" | "refuse";
  /** The sender's device id. */
  id: string;
  /** The sender's runtime nonce: a new one each time a device runtime starts. */
  nonce: string;
  /** Why a channel is refused (`refuse` only). */
  reason?: RefuseReason;
  /**
   * (`hello` only) the channel joins the open link this device has with the
   * acceptor: the acceptor's runtime nonce, which with `nonce` names that
   * link (its nonce pair). Absent: a new link.
   */
  join?: string;
}

/**
 * Why an acceptor refuses a channel: `duplicate` (a link to that peer
 * exists or is being made, and this channel is not the one the merge rule
 * keeps), `self` (a device dialled itself), `clash` (another runtime uses
 * the same device id), `version` (no common protocol version), `busy` (a
 * limit of the acceptor is reached), `link` (a join names no open link of
 * the acceptor's).
 */
export type RefuseReason = "duplicate" | "self" | "clash" | "version" | "busy" | "link";

const REASONS: readonly string[] = ["duplicate", "self", "clash", "version", "busy", "link"];

/**
 * Encode a handshake frame.
 *
 * @param codec The framing codec.
 * @param hello What to say.
 * @returns The frame's bytes (owned by the caller).
 */
export function encodeHello(codec: Codec, hello: Hello): Uint8Array {
  const payload = new TextEncoder().encode(JSON.stringify({ v: PROTOCOL_VERSION, ...hello }));
  return codec.encodeBatch([
    { type: FrameType.CONTROL, stream: 0, seq: 0, total: payload.length, offset: 0, payload },
  ]).slice();
}

/** What {@linkcode HandshakeReader.push} found: one handshake payload and the bytes after it. */
export type FrameResult = { payload: Uint8Array; rest: Uint8Array } | { error: string };

/**
 * Reads handshake frames (CONTROL frames on stream 0) off the front of a
 * channel, one at a time, with the codec's own decoder, and hands back the
 * bytes after each (which may hold the next handshake frame, or already
 * belong to the link).
 */
export class HandshakeReader {
  #decoder;
  #buf: Uint8Array = new Uint8Array(0);
  #payload: Uint8Array | undefined;
  #type = -1;
  #stream = -1;
  #length = 0;
  #codec: Codec;
  #onFrame = (f: Frame): void => {
    if (this.#payload !== undefined) return;
    this.#type = f.type;
    this.#stream = f.stream;
    this.#payload = f.payload.slice();
    this.#length = f.length;
  };

  /** @param codec The framing codec, whose decoder reads the frames. */
  constructor(codec: Codec) {
    this.#codec = codec;
    // A frame larger than a handshake is refused as soon as its header is read.
    this.#decoder = codec.createDecoder({ maxFrameSize: MAX_HELLO + FRAME_OVERHEAD });
  }

  /**
   * Feed bytes.
   *
   * @param bytes The next bytes of the channel.
   * @returns `undefined` while the frame is incomplete; its payload and the
   *   bytes after it; or an error when the channel does not speak our protocol.
   */
  push(bytes: Uint8Array): FrameResult | undefined {
    const buf = this.#buf.length === 0 ? bytes.slice() : concat(this.#buf, bytes);
    this.#buf = buf;
    const err = this.#decoder.push(bytes, this.#onFrame);
    const payload = this.#payload;
    if (payload === undefined) return err === 0 ? undefined : bad("frame");
    if (this.#type !== FrameType.CONTROL || this.#stream !== 0) return bad("first frame");
    const rest = buf.subarray(FRAME_OVERHEAD + this.#length);
    // Ready for the next handshake frame, from a clean decoder.
    this.#buf = new Uint8Array(0);
    this.#payload = undefined;
    this.#decoder = this.#codec.createDecoder({ maxFrameSize: MAX_HELLO + FRAME_OVERHEAD });
    return { payload, rest };
  }
}

/**
 * Read a plain `hello`/`welcome`/`refuse` payload.
 *
 * @param payload The frame's payload.
 * @returns The hello, or an error (with the peer's version when that was the problem).
 */
export function parseHello(
  payload: Uint8Array,
): { hello: Hello } | { error: string; version?: number } {
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(new TextDecoder().decode(payload));
  } catch {
    return bad("payload");
  }
  if (typeof body !== "object" || body === null) return bad("payload");
  const { v, op, id, nonce, reason, join } = body;
  if (typeof v !== "number" || !Number.isInteger(v)) return bad("payload");
  if (v !== PROTOCOL_VERSION) {
    return {
      error: `Unsupported link protocol version ${v} (this device speaks ${PROTOCOL_VERSION})`,
      version: v,
    };
  }
  if (
    (op !== "hello" && op !== "welcome" && op !== "refuse") || !isDeviceId(id) ||
    typeof nonce !== "string" || nonce.length > 64 ||
    (join !== undefined && (typeof join !== "string" || join.length > 64))
  ) {
    return bad("payload");
  }
  const hello: Hello = { op, id: id.toUpperCase(), nonce };
  if (op === "hello" && join !== undefined) hello.join = join;
  if (typeof reason === "string" && REASONS.includes(reason)) {
    hello.reason = reason as RefuseReason;
  }
  return { hello };
}

/** Reads the plain handshake frame at the start of a channel (`HandshakeReader` + `parseHello`). */
export class HelloReader {
  #r: HandshakeReader;

  /** @param codec The framing codec. */
  constructor(codec: Codec) {
    this.#r = new HandshakeReader(codec);
  }

  /**
   * Feed bytes.
   *
   * @param bytes The next bytes of the channel.
   * @returns `undefined` while incomplete; the hello and the bytes after it;
   *   or an error (with the peer's version when that was the problem).
   */
  push(bytes: Uint8Array): HelloResult | undefined {
    const got = this.#r.push(bytes);
    if (got === undefined || "error" in got) return got;
    const h = parseHello(got.payload);
    return "error" in h ? h : { hello: h.hello, rest: got.rest };
  }
}

/** What {@linkcode HelloReader.push} found. */
export type HelloResult =
  | { hello: Hello; rest: Uint8Array }
  | { error: string; version?: number };

function bad(what: string): { error: string } {
  return { error: `Not a linkweave channel: bad handshake ${what}` };
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/**
 * The channel handshake, sans-IO: the first frame each side sends on a new
 * channel says which device it is, so the channel can join the link to that
 * peer, and the merge rule that keeps exactly one link per pair of devices
 * when both dial at once. `docs/link-protocol.md` specifies it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createCodec } from "../../wasm/mod.ts";
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
import type { Codec } from "./frame.ts";
import { isDeviceId } from "../device_config.ts";

/** Protocol version carried in the handshake. */
export const PROTOCOL_VERSION = 1;
/** Largest handshake frame payload accepted. */
const MAX_HELLO = 4096;
const CONTROL = 1;

/** What one side of a channel says first (`hello` from the dialer, `welcome` back). */
export interface Hello {
  /** `hello` (dialer), `welcome` (acceptor agrees) or `refuse` (acceptor declines). */
  op: "hello" | "welcome" | "refuse";
  /** The sender's device id. */
  id: string;
  /** The sender's runtime nonce: a new one each time a device runtime starts. */
  nonce: string;
  /** Why a channel is refused (`refuse` only). */
  reason?: RefuseReason;
}

/**
 * Why an acceptor refuses a channel: `duplicate` (a link to that peer
 * exists or is being made, and this channel is not the one the merge rule
 * keeps), `self` (a device dialled itself), `clash` (another runtime uses
 * the same device id).
 */
export type RefuseReason = "duplicate" | "self" | "clash";

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
    { type: CONTROL, stream: 0, seq: 0, total: payload.length, offset: 0, payload },
  ]).slice();
}

/** Reads the handshake frame at the start of a channel. */
export class HelloReader {
  #codec: Codec;
  #buf: Uint8Array = new Uint8Array(0);

  /** @param codec The framing codec (for its CRC-32). */
  constructor(codec: Codec) {
    this.#codec = codec;
  }

  /**
   * Feed bytes.
   *
   * @param bytes The next bytes of the channel.
   * @returns `undefined` while incomplete; the hello and the bytes after it;
   *   or an error message when the channel does not speak our protocol.
   */
  push(bytes: Uint8Array): { hello: Hello; rest: Uint8Array } | { error: string } | undefined {
    const buf = this.#buf.length === 0 ? bytes : concat(this.#buf, bytes);
    this.#buf = buf;
    if (buf.length < 18) return buf[0] !== undefined && buf[0] !== 1 ? bad("version") : undefined;
    if (buf[0] !== PROTOCOL_VERSION) return bad(`version ${buf[0]}`);
    const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    const len = dv.getUint16(16);
    if (buf[1] !== CONTROL || dv.getUint16(2) !== 0 || len > MAX_HELLO) return bad("first frame");
    if (buf.length < 22 + len) return undefined;
    if (this.#codec.crc32(buf.subarray(0, 18 + len)) !== dv.getUint32(18 + len)) {
      return bad("checksum");
    }
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(new TextDecoder().decode(buf.subarray(18, 18 + len)));
    } catch {
      return bad("payload");
    }
    const { op, id, nonce, reason } = body ?? {};
    if (
      (op !== "hello" && op !== "welcome" && op !== "refuse") || !isDeviceId(id) ||
      typeof nonce !== "string"
    ) {
      return bad("payload");
    }
    this.#buf = new Uint8Array(0);
    const hello: Hello = { op, id: id.toUpperCase(), nonce };
    if (typeof reason === "string") hello.reason = reason as RefuseReason;
    return { hello, rest: buf.subarray(22 + len) };
  }
}

function bad(what: string): { error: string } {
  return { error: `Not a linkweave channel: bad handshake ${what}` };
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** What a device knows about a peer when a `hello` from it arrives. */
export interface PeerSituation {
  /** This device's id. */
  localId: string;
  /** This device's runtime nonce. */
  localNonce: string;
  /** The nonce of the peer on the established link, if there is one. */
  linkNonce?: string;
  /** Milliseconds since that link last received anything. */
  linkSilentMs?: number;
  /** Whether this device is itself dialling that peer right now. */
  dialing: boolean;
  /** How long a link may be silent while still considered alive (ms). */
  aliveMs: number;
}

/**
 * Decide what to do with an incoming `hello`. Both devices apply the same
 * rule, so when they dial each other at once exactly one channel survives:
 * the one dialled by the device with the lower id.
 *
 * @param hello The peer's hello.
 * @param at What this device knows.
 * @returns `accept`, `replace` (accept and drop the old link: the peer
 *   restarted), or a {@linkcode RefuseReason}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const hello = { op: "hello" as const, id: "00:00:00:00:00:02", nonce: "b" };
 * const at = { localId: "00:00:00:00:00:01", localNonce: "a", dialing: true, aliveMs: 1000 };
 * assert.equal(decideIncoming(hello, at), "duplicate"); // our own dial wins
 * assert.equal(decideIncoming(hello, { ...at, dialing: false }), "accept");
 * ```
 */
export function decideIncoming(
  hello: Hello,
  at: PeerSituation,
): "accept" | "replace" | RefuseReason {
  if (hello.id === at.localId) return hello.nonce === at.localNonce ? "self" : "clash";
  if (at.linkNonce !== undefined) {
    if (at.linkNonce === hello.nonce) return "duplicate";
    // Same id, new runtime: a restart if the old link has gone quiet, else two
    // runtimes claim the id.
    return (at.linkSilentMs ?? 0) > at.aliveMs ? "replace" : "clash";
  }
  if (at.dialing && at.localId < hello.id) return "duplicate";
  return "accept";
}

/**
 * The file transfer of `linkweave send` and `linkweave receive`, over one
 * linkEnhance connection (messages of at most 1024 bytes, in order, exactly
 * once, paced by the send queue and `drain`):
 *
 * 1. The sender's first message is the header, a UTF-8 JSON object:
 *    `{"linkweave":"file","v":1,"name":"photo.jpg","size":4194304,"sha256":"<64 hex digits>"}`
 *    (`name`: the file's base name, 1..255 bytes, no `/`, not `.` or `..`;
 *    `size`: its length in bytes; `sha256`: the SHA-256 of its content).
 * 2. Then the content, exactly `size` bytes, in messages of up to 1024 bytes.
 * 3. The receiver answers with JSON messages: `{"got":N}` after every
 *    {@linkcode ACK_EVERY} bytes (what it has written: progress and
 *    liveness for the sender), and at the end `{"ok":true,"got":N,"sha256":...}`
 *    once the content's SHA-256 matched the header's, or
 *    `{"ok":false,"error":"..."}` (a bad header, a file that exists, a size
 *    over its limit, more bytes than announced, a SHA-256 mismatch), then
 *    closes the connection.
 *
 * The receiver writes to a hidden partial file beside the target and renames
 * it only once the SHA-256 matched; a failed or cut transfer leaves nothing
 * behind. A connection that ends before `size` bytes arrived is a short
 * transfer.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { createHash, type Hash } from "node:crypto";

/** The header's `v`. */
export const TRANSFER_VERSION = 1;
/** The receiver says how many bytes it has after every this many. */
export const ACK_EVERY: number = 64 * 1024;
/** The receiver writes to disk in batches of at most this many bytes (per transfer). */
export const WRITE_BATCH: number = 256 * 1024;

/** The transfer's header. */
export interface FileHeader {
  /** Always `"file"`. */
  linkweave: "file";
  /** {@linkcode TRANSFER_VERSION}. */
  v: number;
  /** The file's base name. */
  name: string;
  /** Its length in bytes. */
  size: number;
  /** The SHA-256 of its content, 64 lower-case hex digits. */
  sha256: string;
}

/**
 * The header as one message.
 *
 * @param h The header.
 * @returns Its bytes (at most 1024).
 */
export function encodeHeader(h: FileHeader): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(h));
}

/**
 * Why a file name cannot be used, or `undefined` when it can.
 *
 * @param name The name.
 * @returns The reason.
 */
export function badName(name: unknown): string | undefined {
  if (typeof name !== "string" || name === "") return "the file name is empty";
  if (Buffer.byteLength(name) > 255) return "the file name is longer than 255 bytes";
  if (name === "." || name === ".." || /[/\0]/.test(name)) {
    return `the file name ${JSON.stringify(name)} is not a plain name`;
  }
  return undefined;
}

/**
 * Read a header message.
 *
 * @param data The message.
 * @returns The header, or the reason it is not one.
 */
export function decodeHeader(data: Uint8Array): FileHeader | { error: string } {
  let h: Record<string, unknown>;
  try {
    h = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(data));
  } catch {
    return { error: "the first message is not a linkweave file header" };
  }
  if (typeof h !== "object" || h === null || h.linkweave !== "file") {
    return { error: "the first message is not a linkweave file header" };
  }
  if (h.v !== TRANSFER_VERSION) return { error: `unknown header version ${JSON.stringify(h.v)}` };
  const why = badName(h.name);
  if (why !== undefined) return { error: why };
  if (typeof h.size !== "number" || !Number.isSafeInteger(h.size) || h.size < 0) {
    return { error: `the size ${JSON.stringify(h.size)} is not a byte count` };
  }
  if (typeof h.sha256 !== "string" || !/^[0-9a-f]{64}$/.test(h.sha256)) {
    return { error: "the header has no SHA-256" };
  }
  return h as unknown as FileHeader;
}

/** A running SHA-256 over the bytes as they come. */
export class Digest {
  #h: Hash = createHash("sha256");

  /**
   * Add bytes.
   *
   * @param bytes The bytes.
   */
  update(bytes: Uint8Array): void {
    this.#h.update(bytes);
  }

  /**
   * The hex digest (once).
   *
   * @returns 64 hex digits.
   */
  hex(): string {
    return this.#h.digest("hex");
  }
}

/**
 * A JSON message of the receiver.
 *
 * @param obj The message.
 * @returns Its bytes.
 */
export function reply(obj: Record<string, unknown>): ArrayBuffer {
  return new TextEncoder().encode(JSON.stringify(obj)).buffer as ArrayBuffer;
}

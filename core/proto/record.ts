/**
 * The record layer of a secure channel, sans-IO: after the handshake, every
 * write to a channel is one record, the AEAD-sealed batch of frames the link
 * produced (sealing whole batches, as TLS seals records, so encryption costs
 * per write, not per message). `docs/security.md` specifies it.
 *
 * ```
 * record = header (4 bytes, big-endian) || ciphertext || tag (16 bytes)
 * header = bit 31: first record under the next key; bits 0..30: length of ciphertext + tag
 * nonce  = iv XOR the record's number under its key (a 96-bit big-endian counter from 0)
 * aad    = the header
 * ```
 *
 * Each channel has its own keys in each direction (from the handshake), so
 * record numbers are per channel: a record replayed, reordered, cut or
 * changed on the wire fails to open, and the channel is closed. The frames
 * inside carry the link's own sequence numbers, so the same fragment sent
 * again on another channel is not a replay (the link drops it as a
 * duplicate).
 *
 * Keys are updated without a round trip: the sender marks the first record
 * under the next key; both sides derive it from the current one
 * (`HKDF(key, iv, "linkweave key update")`). A sender updates after
 * {@linkcode UPDATE_RECORDS} records, {@linkcode UPDATE_BYTES} bytes or
 * {@linkcode UPDATE_MS} ms under one key, whichever comes first.
 *
 * @module
 */
import {
  type AeadKey,
  type CipherId,
  type CryptoSuite,
  NONCE_LENGTH,
  TAG_LENGTH,
} from "./handshake/crypto.ts";

/** Bytes of a record header. */
export const RECORD_HEADER = 4;
/** Largest plaintext of one record (a larger batch is sealed into several). */
export const MAX_RECORD_PLAINTEXT: number = 256 * 1024;
/**
 * Plaintext of the records this side seals on a channel whose rate is not
 * known or is slow: a batch is cut into records of at most this size, so the
 * peer opens (and acknowledges) the first part of a large batch while the
 * rest is on the way.
 */
export const SEAL_RECORD_PLAINTEXT: number = 16 * 1024;
/**
 * Time (ms) one record may take to cross its channel at the channel's
 * measured rate: on a fast channel records grow from
 * {@linkcode SEAL_RECORD_PLAINTEXT} up to {@linkcode MAX_RECORD_PLAINTEXT},
 * so the cost of each AEAD call (a cipher object, an output buffer) is spread
 * over more bytes, while a small message sealed behind bulk waits at most
 * about this long longer than in a record of its own.
 */
export const RECORD_MS = 0.5;

/**
 * The largest plaintext of one record on a channel of this rate.
 *
 * @param rate The channel's measured delivery rate (bytes per ms), 0 if unknown.
 * @returns Bytes, from {@linkcode SEAL_RECORD_PLAINTEXT} to {@linkcode MAX_RECORD_PLAINTEXT}.
 */
export function recordSize(rate: number): number {
  const want = Math.floor(rate * RECORD_MS);
  return Math.min(MAX_RECORD_PLAINTEXT, Math.max(SEAL_RECORD_PLAINTEXT, want));
}
/** Largest sealed body of a record (ciphertext + tag): what a peer can make a channel hold. */
export const MAX_RECORD: number = MAX_RECORD_PLAINTEXT + TAG_LENGTH;
/** Records sealed under one key before it is updated (2^24). */
export const UPDATE_RECORDS: number = 1 << 24;
/** Bytes sealed under one key before it is updated (16 GiB). */
export const UPDATE_BYTES: number = 2 ** 34;
/** Time a key is used before it is updated (1 hour). */
export const UPDATE_MS: number = 3_600_000;

const FLAG_NEXT = 0x80000000;

/**
 * Where a sealer's first record starts in its buffer: its ciphertext then
 * starts 64 bytes in. An AEAD's output is a fresh, page-aligned buffer on
 * Bun, and a large copy to an address a few bytes past the source's offset in
 * a page (here 4, the header) ran 2-3x slower there (16 KiB: 12 us against
 * 4.5 us per sealed record, measured on Bun 1.4 with AMD EPYC).
 */
const SEAL_AT = 64 - RECORD_HEADER;

/** The record header at `at` of `b` (big-endian, unsigned). */
function header(b: Uint8Array, at: number): number {
  return ((b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]) >>> 0;
}
const UPDATE_INFO = new TextEncoder().encode("linkweave key update");

/** The key material of one direction of one channel. */
export interface DirectionKeys {
  /** The AEAD. */
  cipher: CipherId;
  /** 32 bytes. */
  key: Uint8Array;
  /** 12 bytes, XORed with the record number to make each nonce. */
  iv: Uint8Array;
}

/**
 * The keys after `keys` (a key update).
 *
 * @param crypto The suite.
 * @param keys The current keys.
 * @returns The next keys.
 */
export function nextKeys(crypto: CryptoSuite, keys: DirectionKeys): DirectionKeys {
  const okm = crypto.hkdf(keys.key, keys.iv, UPDATE_INFO, 32 + NONCE_LENGTH);
  return { cipher: keys.cipher, key: okm.subarray(0, 32), iv: okm.subarray(32) };
}

/** One direction's key in use and its record count. */
class KeyState {
  readonly keys: DirectionKeys;
  readonly aead: AeadKey;
  readonly since: number;
  count = 0;
  bytes = 0;
  #nonce = new Uint8Array(NONCE_LENGTH);

  constructor(crypto: CryptoSuite, keys: DirectionKeys, now: number) {
    this.keys = keys;
    this.aead = crypto.aead(keys.cipher, keys.key);
    this.since = now;
  }

  /** The nonce of the next record (a view reused per call). */
  nonce(): Uint8Array {
    const n = this.#nonce;
    n.set(this.keys.iv);
    let c = this.count;
    for (let i = NONCE_LENGTH - 1; i >= NONCE_LENGTH - 7 && c > 0; i--) {
      n[i] ^= c % 256;
      c = Math.floor(c / 256);
    }
    return n;
  }
}

/** When a sealer moves to the next key (defaults: the documented constants). */
export interface UpdateLimits {
  /** Records under one key. @default {UPDATE_RECORDS} */
  records?: number;
  /** Bytes under one key. @default {UPDATE_BYTES} */
  bytes?: number;
  /** Time under one key (ms). @default {UPDATE_MS} */
  ms?: number;
}

/** Seals a channel's outgoing batches into records. */
export class RecordSealer {
  #crypto: CryptoSuite;
  #state: KeyState;
  #limits: Required<UpdateLimits>;
  #out = new Uint8Array(0);
  #header = new Uint8Array(RECORD_HEADER);
  /** Records sealed in all (for tests and metrics). */
  records = 0;

  /**
   * @param crypto The suite.
   * @param keys This direction's first keys.
   * @param now The current time (ms).
   * @param limits When to update the key.
   */
  constructor(crypto: CryptoSuite, keys: DirectionKeys, now: number, limits: UpdateLimits = {}) {
    this.#crypto = crypto;
    this.#state = new KeyState(crypto, keys, now);
    this.#limits = {
      records: limits.records ?? UPDATE_RECORDS,
      bytes: limits.bytes ?? UPDATE_BYTES,
      ms: limits.ms ?? UPDATE_MS,
    };
  }

  /**
   * Seal one batch, as one record or (over {@linkcode recordSize} of the
   * channel's rate) several.
   *
   * @param plaintext The frames.
   * @param now The current time (ms).
   * @param rate The channel's measured delivery rate (bytes per ms), 0 if
   *   unknown. @default {0}
   * @returns The records, in a buffer reused by the next call (write it or copy it).
   */
  seal(plaintext: Uint8Array, now: number, rate: number = 0): Uint8Array {
    const size = recordSize(rate);
    const parts = Math.max(1, Math.ceil(plaintext.length / size));
    const total = SEAL_AT + plaintext.length + parts * (RECORD_HEADER + TAG_LENGTH);
    if (this.#out.length < total) this.#out = new Uint8Array(Math.max(total, 2 * this.#out.length));
    let at = SEAL_AT;
    for (let p = 0; p < parts; p++) {
      const chunk = plaintext.subarray(p * size, (p + 1) * size);
      at += this.#sealOne(chunk, now, at);
    }
    return this.#out.subarray(SEAL_AT, at);
  }

  #sealOne(plaintext: Uint8Array, now: number, at: number): number {
    let s = this.#state;
    let flag = 0;
    const l = this.#limits;
    if (s.count >= l.records || s.bytes >= l.bytes || now - s.since >= l.ms) {
      s = this.#state = new KeyState(this.#crypto, nextKeys(this.#crypto, s.keys), now);
      flag = FLAG_NEXT;
    }
    const body = plaintext.length + TAG_LENGTH;
    const out = this.#out;
    const h = (flag | body) >>> 0;
    const header = this.#header;
    header[0] = h >>> 24;
    header[1] = h >>> 16;
    header[2] = h >>> 8;
    header[3] = h;
    out.set(header, at);
    s.aead.seal(s.nonce(), plaintext, header, out, at + RECORD_HEADER);
    s.count++;
    s.bytes += plaintext.length;
    this.records++;
    return RECORD_HEADER + body;
  }
}

/** Opens a channel's incoming records. */
export class RecordOpener {
  #crypto: CryptoSuite;
  #state: KeyState;
  #buf = new Uint8Array(0);
  #have = 0;
  #dead = false;

  /**
   * @param crypto The suite.
   * @param keys This direction's first keys.
   * @param now The current time (ms).
   */
  constructor(crypto: CryptoSuite, keys: DirectionKeys, now: number) {
    this.#crypto = crypto;
    this.#state = new KeyState(crypto, keys, now);
  }

  /** Bytes of an incomplete record held. */
  get buffered(): number {
    return this.#have;
  }

  /**
   * Feed channel bytes.
   *
   * @param bytes The next bytes.
   * @param onPlaintext Called with each opened record's frames, in order
   *   (the view is valid during the call).
   * @param now The current time (ms).
   * @returns `undefined`, or why the channel must be closed (a record that
   *   does not open, or a length over the limit); after that the opener is
   *   dead.
   */
  push(
    bytes: Uint8Array,
    onPlaintext: (frames: Uint8Array) => void,
    now: number,
  ): string | undefined {
    if (this.#dead) return "record layer closed";
    let at = 0;
    if (this.#have > 0) {
      // Complete the held record from the front of `bytes` (copying only its
      // missing part, never the whole read), then open the rest in place.
      at = this.#fill(bytes, 0, RECORD_HEADER);
      if (this.#have < RECORD_HEADER) return undefined;
      const h = header(this.#buf, 0);
      const body = h & 0x7fffffff;
      if (body > MAX_RECORD || body < TAG_LENGTH) return this.#refuse(body);
      at = this.#fill(bytes, at, RECORD_HEADER + body);
      if (this.#have < RECORD_HEADER + body) return undefined;
      this.#have = 0;
      const err = this.#open(this.#buf, 0, h, onPlaintext, now);
      if (err !== undefined) return err;
    }
    while (bytes.length - at >= RECORD_HEADER) {
      const h = header(bytes, at);
      const body = h & 0x7fffffff;
      if (body > MAX_RECORD || body < TAG_LENGTH) return this.#refuse(body);
      if (bytes.length - at < RECORD_HEADER + body) break;
      const err = this.#open(bytes, at, h, onPlaintext, now);
      if (err !== undefined) return err;
      at += RECORD_HEADER + body;
    }
    if (at < bytes.length) this.#fill(bytes, at, bytes.length - at);
    return undefined;
  }

  /**
   * Copy from `bytes` at `at` into the held record until it has `want` bytes
   * (or `bytes` ends); the buffer grows to at most one record
   * ({@linkcode MAX_RECORD} and its header).
   */
  #fill(bytes: Uint8Array, at: number, want: number): number {
    const n = Math.min(want - this.#have, bytes.length - at);
    if (n <= 0) return at;
    const size = this.#have + n;
    if (this.#buf.length < size) {
      const grown = new Uint8Array(
        Math.min(Math.max(size, 2 * this.#buf.length, 4096), RECORD_HEADER + MAX_RECORD),
      );
      grown.set(this.#buf.subarray(0, this.#have));
      this.#buf = grown;
    }
    this.#buf.set(bytes.subarray(at, at + n), this.#have);
    this.#have = size;
    return at + n;
  }

  #refuse(body: number): string {
    this.#dead = true;
    this.#have = 0;
    return `record of ${body} bytes (limit ${MAX_RECORD})`;
  }

  /** Open the whole record at `at` of `data` (header `h`) and hand over its frames. */
  #open(
    data: Uint8Array,
    at: number,
    h: number,
    onPlaintext: (frames: Uint8Array) => void,
    now: number,
  ): string | undefined {
    const body = h & 0x7fffffff;
    if ((h & FLAG_NEXT) !== 0) {
      this.#state = new KeyState(this.#crypto, nextKeys(this.#crypto, this.#state.keys), now);
    }
    const s = this.#state;
    const plain = s.aead.open(
      s.nonce(),
      data.subarray(at + RECORD_HEADER, at + RECORD_HEADER + body),
      data.subarray(at, at + RECORD_HEADER),
    );
    if (plain === undefined) {
      this.#dead = true;
      this.#have = 0;
      return `record ${s.count} does not authenticate (changed, replayed, reordered or cut)`;
    }
    s.count++;
    onPlaintext(plain);
    return undefined;
  }
}

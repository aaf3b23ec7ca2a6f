/**
 * The cryptography of the sans-IO core (`core/proto/handshake/crypto.ts`)
 * over the runtime's synchronous `node:crypto` (Deno, Bun and Node all have
 * it): X25519, Ed25519, HKDF and HMAC with SHA-256, and AEADs.
 *
 * Which AEAD is fast differs by runtime, so it is measured once, when the
 * suite is first made: each AEAD the runtime has seals a 16 KiB record (the
 * size a sealer writes) a few times, alternating, and the ones whose quickest
 * seal is within twice the fastest count as fast ({@linkcode rankCiphers}).
 * Timing a few seals together, as before, let one preempted seal on a busy
 * machine demote Deno's ChaCha20-Poly1305, and the link then ran AES-256-GCM
 * at a fifth of the speed. Measured here (2026-12, 16 KiB records, the
 * quickest of many): Bun seals AES-256-GCM at 4.3 GB/s and has no
 * ChaCha20-Poly1305; Deno seals ChaCha20-Poly1305 at 1.2 GB/s and AES-256-GCM
 * at 0.08-0.15; Node does both at about 1 GB/s.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const c = nodeCrypto();
 * const a = c.x25519();
 * const b = c.x25519();
 * assert.deepEqual(c.dh(a.privateKey, b.publicKey), c.dh(b.privateKey, a.publicKey));
 * ```
 *
 * @module
 */
import * as nc from "node:crypto";
import { Buffer } from "node:buffer";
import {
  type AeadKey,
  Cipher,
  type CipherId,
  type CryptoSuite,
  type RawKeyPair,
  TAG_LENGTH,
} from "../core/proto/handshake/crypto.ts";
import { SEAL_RECORD_PLAINTEXT } from "../core/proto/record.ts";

const X25519_SPKI = Buffer.from("302a300506032b656e032100", "hex");
const X25519_PKCS8 = Buffer.from("302e020100300506032b656e04220420", "hex");
const ED25519_SPKI = Buffer.from("302a300506032b6570032100", "hex");
const ED25519_PKCS8 = Buffer.from("302e020100300506032b657004220420", "hex");

const NAMES: Record<CipherId, string> = {
  [Cipher.AES_256_GCM]: "aes-256-gcm",
  [Cipher.CHACHA20_POLY1305]: "chacha20-poly1305",
};

function pub(prefix: Buffer, raw: Uint8Array): nc.KeyObject {
  return nc.createPublicKey({ key: Buffer.concat([prefix, raw]), format: "der", type: "spki" });
}

function priv(prefix: Buffer, raw: Uint8Array): nc.KeyObject {
  return nc.createPrivateKey({ key: Buffer.concat([prefix, raw]), format: "der", type: "pkcs8" });
}

function raw(pair: { publicKey: nc.KeyObject; privateKey: nc.KeyObject }): RawKeyPair {
  const p = pair.publicKey.export({ format: "der", type: "spki" }) as Buffer;
  const s = pair.privateKey.export({ format: "der", type: "pkcs8" }) as Buffer;
  return {
    publicKey: new Uint8Array(p.subarray(p.length - 32)),
    privateKey: new Uint8Array(s.subarray(s.length - 32)),
  };
}

/** An AEAD cipher or decipher object of `node:crypto`, as used here. */
interface AeadStream {
  setAAD(data: Uint8Array): void;
  update(data: Uint8Array): Uint8Array;
  final(): Uint8Array;
  getAuthTag(): Uint8Array;
  setAuthTag(tag: Uint8Array): void;
}

type MakeAead = (
  algorithm: string,
  key: Uint8Array,
  nonce: Uint8Array,
  options: { authTagLength: number },
) => AeadStream;

const createCipher = nc.createCipheriv as unknown as MakeAead;
const createDecipher = nc.createDecipheriv as unknown as MakeAead;

class NodeAead implements AeadKey {
  #name: string;
  #key: Buffer;

  constructor(name: string, key: Uint8Array) {
    this.#name = name;
    this.#key = Buffer.from(key);
  }

  seal(
    nonce: Uint8Array,
    plaintext: Uint8Array,
    aad: Uint8Array,
    out: Uint8Array,
    at: number,
  ): void {
    const c = createCipher(this.#name, this.#key, nonce, { authTagLength: TAG_LENGTH });
    c.setAAD(aad);
    const body = c.update(plaintext);
    out.set(body, at);
    let n = body.length;
    const rest = c.final();
    if (rest.length > 0) {
      out.set(rest, at + n);
      n += rest.length;
    }
    out.set(c.getAuthTag(), at + n);
  }

  open(nonce: Uint8Array, sealed: Uint8Array, aad: Uint8Array): Uint8Array | undefined {
    if (sealed.length < TAG_LENGTH) return undefined;
    const n = sealed.length - TAG_LENGTH;
    try {
      const d = createDecipher(this.#name, this.#key, nonce, { authTagLength: TAG_LENGTH });
      d.setAAD(aad);
      d.setAuthTag(sealed.subarray(n));
      const body = d.update(sealed.subarray(0, n));
      const rest = d.final();
      if (rest.length === 0) return new Uint8Array(body.buffer, body.byteOffset, body.length);
      const out = new Uint8Array(body.length + rest.length);
      out.set(body);
      out.set(rest, body.length);
      return out;
    } catch {
      return undefined;
    }
  }
}

/** Rounds of {@linkcode measureCiphers}: each times one record per AEAD, alternating. */
const MEASURE_ROUNDS = 8;

/**
 * The AEADs that count as fast: within twice the fastest, each judged by its
 * quickest seal, so a seal slowed by the scheduler (a busy machine) does not
 * demote an AEAD.
 *
 * @param samples Each AEAD's seal times (ms), in order of preference.
 * @returns The AEADs, fastest first, and the fast ones.
 */
export function rankCiphers(
  samples: ReadonlyMap<CipherId, readonly number[]>,
): { ciphers: CipherId[]; fast: CipherId[] } {
  const best = [...samples].map(([id, t]) => [id, Math.min(...t)] as const);
  best.sort((a, b) => a[1] - b[1]);
  const fastest = best[0]?.[1] ?? 0;
  return {
    ciphers: best.map(([id]) => id),
    fast: best.filter(([, t]) => t <= 2 * fastest).map(([id]) => id),
  };
}

/**
 * Which AEADs this runtime has, and how fast each seals a record of
 * {@linkcode SEAL_RECORD_PLAINTEXT} (the quickest of a few, alternating).
 */
function measureCiphers(): { ciphers: CipherId[]; fast: CipherId[] } {
  const key = nc.randomBytes(32);
  const nonce = new Uint8Array(12);
  const data = new Uint8Array(SEAL_RECORD_PLAINTEXT);
  const out = new Uint8Array(data.length + TAG_LENGTH);
  const keys = new Map<CipherId, NodeAead>();
  for (const id of [Cipher.AES_256_GCM, Cipher.CHACHA20_POLY1305] as CipherId[]) {
    try {
      const k = new NodeAead(NAMES[id], key);
      k.seal(nonce, data, nonce, out, 0); // warm up, and fail here if the runtime lacks it
      keys.set(id, k);
    } catch {
      // not available on this runtime
    }
  }
  const samples = new Map<CipherId, number[]>([...keys.keys()].map((id) => [id, []]));
  for (let i = 0; i < MEASURE_ROUNDS; i++) {
    nonce[11] = i + 1;
    for (const [id, k] of keys) {
      const t0 = performance.now();
      k.seal(nonce, data, nonce, out, 0);
      samples.get(id)!.push(performance.now() - t0);
    }
  }
  return rankCiphers(samples);
}

let suite: CryptoSuite | undefined;

/**
 * The runtime's crypto suite (made once).
 *
 * @returns The suite.
 */
export function nodeCrypto(): CryptoSuite {
  if (suite !== undefined) return suite;
  const { ciphers, fast } = measureCiphers();
  suite = {
    ciphers,
    fastCiphers: fast,
    random: (n) => new Uint8Array(nc.randomBytes(n)),
    x25519: () => raw(nc.generateKeyPairSync("x25519")),
    dh(privateKey, publicKey) {
      try {
        const s = nc.diffieHellman({
          privateKey: priv(X25519_PKCS8, privateKey),
          publicKey: pub(X25519_SPKI, publicKey),
        });
        let zero = 0;
        for (const b of s) zero |= b;
        return zero === 0 ? undefined : new Uint8Array(s);
      } catch {
        return undefined;
      }
    },
    ed25519: () => raw(nc.generateKeyPairSync("ed25519")),
    sign: (privateKey, message) =>
      new Uint8Array(nc.sign(null, message, priv(ED25519_PKCS8, privateKey))),
    verify(publicKey, message, signature) {
      try {
        return nc.verify(null, message, pub(ED25519_SPKI, publicKey), signature);
      } catch {
        return false;
      }
    },
    hkdf: (ikm, salt, info, length) =>
      new Uint8Array(nc.hkdfSync("sha256", ikm, salt, info, length)),
    hmac: (key, data) => new Uint8Array(nc.createHmac("sha256", key).update(data).digest()),
    sha256: (data) => new Uint8Array(nc.createHash("sha256").update(data).digest()),
    aead: (cipher, key) => new NodeAead(NAMES[cipher], key),
  };
  return suite;
}

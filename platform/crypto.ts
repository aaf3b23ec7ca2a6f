/**
 * The cryptography of the sans-IO core (`core/proto/handshake/crypto.ts`)
 * over the runtime's synchronous `node:crypto` (Deno, Bun and Node all have
 * it): X25519, Ed25519, HKDF and HMAC with SHA-256, and AEADs.
 *
 * Which AEAD is fast differs by runtime, so it is measured once, when the
 * suite is first made: each AEAD the runtime has seals a few 64 KiB records
 * and the ones within twice the fastest count as fast. Measured here
 * (2026-12): Bun seals AES-256-GCM at 5-8 GB/s and has no ChaCha20-Poly1305;
 * Deno seals ChaCha20-Poly1305 at 1.0-1.6 GB/s and AES-256-GCM at 0.15; Node
 * does both at about 1.5.
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

/** Which AEADs this runtime has, and how long each takes to seal a few 64 KiB records. */
function measureCiphers(): { ciphers: CipherId[]; fast: CipherId[] } {
  const key = nc.randomBytes(32);
  const nonce = new Uint8Array(12);
  const data = new Uint8Array(64 * 1024);
  const out = new Uint8Array(data.length + TAG_LENGTH);
  const times: [CipherId, number][] = [];
  for (const id of [Cipher.AES_256_GCM, Cipher.CHACHA20_POLY1305] as CipherId[]) {
    try {
      const k = new NodeAead(NAMES[id], key);
      k.seal(nonce, data, nonce, out, 0); // warm up, and fail here if the runtime lacks it
      const t0 = performance.now();
      for (let i = 0; i < 4; i++) {
        nonce[11] = i + 1;
        k.seal(nonce, data, nonce, out, 0);
      }
      times.push([id, performance.now() - t0]);
    } catch {
      // not available on this runtime
    }
  }
  times.sort((a, b) => a[1] - b[1]);
  const best = times[0]?.[1] ?? 0;
  return {
    ciphers: times.map(([id]) => id),
    fast: times.filter(([, t]) => t <= 2 * best).map(([id]) => id),
  };
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

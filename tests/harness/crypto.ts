/**
 * A deterministic crypto suite for golden vectors: the runtime's primitives
 * with randomness (and so every generated key) from a seeded generator, and
 * a fixed AEAD list (AES-256-GCM, which every runtime has).
 *
 * @module
 */
import * as nc from "node:crypto";
import { Buffer } from "node:buffer";
import { Cipher, type CryptoSuite, type RawKeyPair } from "../../core/proto/handshake/crypto.ts";
import { nodeCrypto } from "../../platform/crypto.ts";

const X25519_PKCS8 = Buffer.from("302e020100300506032b656e04220420", "hex");
const ED25519_PKCS8 = Buffer.from("302e020100300506032b657004220420", "hex");

function pair(prefix: Buffer, seed: Uint8Array): RawKeyPair {
  const priv = nc.createPrivateKey({
    key: Buffer.concat([prefix, seed]),
    format: "der",
    type: "pkcs8",
  });
  const spki = nc.createPublicKey(priv).export({ format: "der", type: "spki" }) as Buffer;
  return { publicKey: new Uint8Array(spki.subarray(spki.length - 32)), privateKey: seed.slice() };
}

/**
 * A suite whose random bytes come from SHA-256 in counter mode over `seed`.
 *
 * @param seed Any string.
 * @returns The suite.
 */
export function seededCrypto(seed: string): CryptoSuite {
  const base = nodeCrypto();
  let counter = 0;
  const random = (n: number) => {
    const out = new Uint8Array(n);
    for (let at = 0; at < n; at += 32) {
      const block = base.sha256(new TextEncoder().encode(`${seed}/${counter++}`));
      out.set(block.subarray(0, Math.min(32, n - at)), at);
    }
    return out;
  };
  return {
    ...base,
    ciphers: [Cipher.AES_256_GCM],
    fastCiphers: [Cipher.AES_256_GCM],
    random,
    x25519: () => pair(X25519_PKCS8, random(32)),
    ed25519: () => pair(ED25519_PKCS8, random(32)),
  };
}

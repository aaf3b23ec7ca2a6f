/**
 * The cryptography the sans-IO core needs, as a contract the platform fills
 * (`platform/crypto.ts`, over the runtime's synchronous `node:crypto`), like
 * the codec: X25519 for key agreement, Ed25519 for identities, HKDF and
 * HMAC with SHA-256, and an AEAD sealing whole records. Every call is
 * synchronous, so the handshake and the record layer stay pure state
 * machines; randomness comes from the suite too, so tests can make it
 * deterministic (golden vectors).
 *
 * @module
 */

/** The AEADs a link may seal records with. */
export const Cipher = {
  /** AES-256-GCM (fast where the runtime has AES instructions in its crypto library). */
  AES_256_GCM: 1,
  /** ChaCha20-Poly1305 (fast in software). */
  CHACHA20_POLY1305: 2,
} as const;

/** A value of {@linkcode Cipher}. */
export type CipherId = typeof Cipher[keyof typeof Cipher];

/** Bytes an AEAD adds to what it seals. */
export const TAG_LENGTH = 16;
/** Length of an AEAD key. */
export const KEY_LENGTH = 32;
/** Length of an AEAD nonce. */
export const NONCE_LENGTH = 12;

/** An X25519 or Ed25519 key pair, as raw 32-byte keys. */
export interface RawKeyPair {
  /** The public key (32 bytes). */
  publicKey: Uint8Array;
  /** The private key (32 bytes, the seed for Ed25519). */
  privateKey: Uint8Array;
}

/** One AEAD key, ready to seal or open. */
export interface AeadKey {
  /**
   * Seal `plaintext` into `out` at `at`: ciphertext then the 16-byte tag.
   *
   * @param nonce 12 bytes, never used twice with this key.
   * @param plaintext The bytes.
   * @param aad Authenticated, not encrypted.
   * @param out Room for `plaintext.length + 16` bytes at `at`.
   * @param at Where to write.
   */
  seal(
    nonce: Uint8Array,
    plaintext: Uint8Array,
    aad: Uint8Array,
    out: Uint8Array,
    at: number,
  ): void;
  /**
   * Open what {@linkcode AeadKey.seal} made.
   *
   * @param nonce The nonce it was sealed with.
   * @param sealed Ciphertext and tag.
   * @param aad The same associated data.
   * @returns The plaintext, or `undefined` when it is not authentic.
   */
  open(nonce: Uint8Array, sealed: Uint8Array, aad: Uint8Array): Uint8Array | undefined;
}

/** The primitives, synchronous. */
export interface CryptoSuite {
  /** The AEADs this runtime can seal and open, fastest first. */
  readonly ciphers: readonly CipherId[];
  /** The AEADs this runtime seals and opens fast (worth preferring). */
  readonly fastCiphers: readonly CipherId[];
  /**
   * Random bytes.
   *
   * @param n How many.
   * @returns Them.
   */
  random(n: number): Uint8Array;
  /** A new X25519 key pair. */
  x25519(): RawKeyPair;
  /**
   * X25519 agreement.
   *
   * @param privateKey Ours.
   * @param publicKey Theirs.
   * @returns The 32-byte shared secret; `undefined` for a low-order public key.
   */
  dh(privateKey: Uint8Array, publicKey: Uint8Array): Uint8Array | undefined;
  /** A new Ed25519 key pair. */
  ed25519(): RawKeyPair;
  /**
   * Ed25519 signature.
   *
   * @param privateKey The 32-byte seed.
   * @param message What to sign.
   * @returns The 64-byte signature.
   */
  sign(privateKey: Uint8Array, message: Uint8Array): Uint8Array;
  /**
   * Check an Ed25519 signature.
   *
   * @param publicKey The signer's key.
   * @param message What was signed.
   * @param signature The signature.
   * @returns Whether it is valid.
   */
  verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean;
  /**
   * HKDF-SHA-256.
   *
   * @param ikm Input key material.
   * @param salt Salt.
   * @param info Context.
   * @param length Output bytes.
   * @returns The key material.
   */
  hkdf(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array;
  /**
   * HMAC-SHA-256.
   *
   * @param key The key.
   * @param data The data.
   * @returns 32 bytes.
   */
  hmac(key: Uint8Array, data: Uint8Array): Uint8Array;
  /**
   * SHA-256.
   *
   * @param data The data.
   * @returns 32 bytes.
   */
  sha256(data: Uint8Array): Uint8Array;
  /**
   * An AEAD key.
   *
   * @param cipher Which AEAD.
   * @param key 32 bytes.
   * @returns The key, ready to use.
   */
  aead(cipher: CipherId, key: Uint8Array): AeadKey;
}

/**
 * Compare two byte strings in time that does not depend on where they differ.
 *
 * @param a One.
 * @param b The other.
 * @returns Whether they are equal.
 */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i] ^ b[i];
  return d === 0;
}

/**
 * Join byte strings.
 *
 * @param parts The parts.
 * @returns One buffer.
 */
export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

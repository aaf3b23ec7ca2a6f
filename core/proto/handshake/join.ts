/**
 * Joining a further channel to an existing secure link (J1/J2), sans-IO.
 *
 * ```
 * dialer                                         acceptor
 * J1: kind, linkId, eD, nonce, HMAC_join(J1 head)   ->
 *                        <-  J2: kind, eA, nonce, HMAC_join(J1 || J2 head)
 * keys = HKDF(DH(eA, eD), joinSecret, "linkweave join" || H(J1 || J2))
 * ```
 *
 * The join secret comes from the link's first handshake (`secure.ts`), so
 * a channel proves it belongs to the link without naming any device in the
 * clear, and gets keys of its own.
 *
 * @module
 */
import {
  Cipher,
  type CipherId,
  concatBytes,
  type CryptoSuite,
  equalBytes,
  type RawKeyPair,
} from "./crypto.ts";
import type { DirectionKeys } from "../record.ts";
import { Kind } from "./secure.ts";

const JOIN_INFO = new TextEncoder().encode("linkweave join");

/** Which channel of a link a join handshake makes, and its keys. */
export interface JoinKeys {
  /** Keys of the new channel. */
  tx: DirectionKeys;
  /** Keys of the new channel. */
  rx: DirectionKeys;
}

/**
 * A further channel of an existing link (J1/J2), authenticated by the link's
 * join secret, with a fresh X25519 exchange of its own.
 */
export class JoinHandshake {
  readonly #c: CryptoSuite;
  readonly #role: "dialer" | "acceptor";
  #cipher: CipherId;
  #secret: Uint8Array | undefined;
  #e: RawKeyPair = { publicKey: new Uint8Array(0), privateKey: new Uint8Array(0) };
  #j1: Uint8Array = new Uint8Array(0);

  /**
   * @param role Which side.
   * @param crypto The suite.
   * @param link (Dialer) the link's join secret, id and cipher.
   */
  constructor(
    role: "dialer" | "acceptor",
    crypto: CryptoSuite,
    link?: { joinSecret: Uint8Array; linkId: Uint8Array; cipher: CipherId },
  ) {
    this.#c = crypto;
    this.#role = role;
    this.#secret = link?.joinSecret;
    this.#cipher = link?.cipher ?? Cipher.AES_256_GCM;
    if (role === "dialer" && link !== undefined) this.#linkId = link.linkId;
  }

  #linkId: Uint8Array = new Uint8Array(0);

  /**
   * The dialer's J1.
   *
   * @returns The payload.
   */
  start(): Uint8Array {
    const c = this.#c;
    this.#e = c.x25519();
    const head = concatBytes(
      new Uint8Array([Kind.JOIN]),
      this.#linkId,
      this.#e.publicKey,
      c.random(16),
    );
    this.#j1 = concatBytes(head, c.hmac(this.#secret!, concatBytes(JOIN_INFO, head)));
    return this.#j1;
  }

  /**
   * (Acceptor) read J1: which link it names.
   *
   * @param j1 The payload.
   * @returns The link id, or `undefined` when malformed.
   */
  static linkOf(j1: Uint8Array): Uint8Array | undefined {
    return j1.length === 1 + 16 + 32 + 16 + 32 && j1[0] === Kind.JOIN ? j1.slice(1, 17) : undefined;
  }

  /**
   * (Acceptor) answer J1 for a link found by its id.
   *
   * @param j1 The payload.
   * @param link The link's join secret and cipher.
   * @returns J2 and the channel's keys, or `undefined` when J1 does not prove the secret.
   */
  answer(
    j1: Uint8Array,
    link: { joinSecret: Uint8Array; cipher: CipherId },
  ): { send: Uint8Array; keys: JoinKeys } | undefined {
    const c = this.#c;
    if (this.#role !== "acceptor" || JoinHandshake.linkOf(j1) === undefined) return undefined;
    const head = j1.subarray(0, 65);
    if (!equalBytes(c.hmac(link.joinSecret, concatBytes(JOIN_INFO, head)), j1.subarray(65))) {
      return undefined;
    }
    this.#secret = link.joinSecret;
    this.#cipher = link.cipher;
    this.#e = c.x25519();
    const shared = c.dh(this.#e.privateKey, j1.subarray(17, 49));
    if (shared === undefined) return undefined;
    const j2head = concatBytes(new Uint8Array([Kind.JOINED]), this.#e.publicKey, c.random(16));
    const mac = c.hmac(link.joinSecret, concatBytes(JOIN_INFO, j1, j2head));
    const j2 = concatBytes(j2head, mac);
    return { send: j2, keys: this.#keys(shared, j1, j2) };
  }

  /**
   * (Dialer) read J2.
   *
   * @param j2 The payload.
   * @returns The channel's keys, or `undefined` when J2 does not prove the secret.
   */
  finish(j2: Uint8Array): JoinKeys | undefined {
    const c = this.#c;
    if (this.#role !== "dialer" || j2.length !== 1 + 32 + 16 + 32 || j2[0] !== Kind.JOINED) {
      return undefined;
    }
    const want = c.hmac(this.#secret!, concatBytes(JOIN_INFO, this.#j1, j2.subarray(0, 49)));
    if (!equalBytes(want, j2.subarray(49))) return undefined;
    const shared = c.dh(this.#e.privateKey, j2.subarray(1, 33));
    if (shared === undefined) return undefined;
    return this.#keys(shared, this.#j1, j2);
  }

  #keys(shared: Uint8Array, j1: Uint8Array, j2: Uint8Array): JoinKeys {
    const c = this.#c;
    const th = c.sha256(concatBytes(j1, j2));
    const okm = c.hkdf(shared, this.#secret!, concatBytes(JOIN_INFO, th), 2 * (32 + 12));
    const d2a = { cipher: this.#cipher, key: okm.slice(0, 32), iv: okm.slice(32, 44) };
    const a2d = { cipher: this.#cipher, key: okm.slice(44, 76), iv: okm.slice(76, 88) };
    return this.#role === "dialer" ? { tx: d2a, rx: a2d } : { tx: a2d, rx: d2a };
  }
}

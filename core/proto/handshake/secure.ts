/**
 * The authenticated channel handshake, sans-IO: it proves to each side
 * which device the other is (an Ed25519 key bound to its device id) and
 * that both belong to the same account (or were paired), agrees on fresh
 * keys (X25519, so a stolen long-term key does not open past traffic), and
 * hands the record layer its keys. `docs/security.md` specifies it.
 *
 * ```
 * dialer D                                   acceptor A
 * M1 init:   version, caps, ciphers, eD, nD, account tag  ->
 *                                   <-  M2 response: version, caps, cipher, mode, eA, nA,
 *                                             AEAD_kA(idA, keyA, nonceA, sigA)
 * M3 finish: AEAD_kD(idD, keyD, nonceD, sigD)            ->
 *                                   <-  M4 accept (or a refusal: duplicate, clash, ...)
 * records (AEAD, per direction)                          <->
 * ```
 *
 * - `psk` is the account key when D's account tag
 *   (`HMAC(account, "linkweave account tag" || M1 without the tag)`) matches
 *   A's account (mode `account`), else 32 zero bytes, and then both devices
 *   must know each other's key from pairing (mode `paired`).
 * - `kA || kD = HKDF(DH(eA, eD), psk, "linkweave handshake" || H(M1 || M2 head))`.
 * - `sigX = Ed25519(keyX, "linkweave sig" || role || H(transcript) || idX || nonceX)`, the
 *   transcript being M1 || M2 head for A and M1 || M2 for D, so every field,
 *   negotiated parameters included, is bound (no downgrade).
 * - Traffic keys and the link's join secret:
 *   `HKDF(DH(eA, eD), psk, "linkweave traffic" || H(M1 || M2 || M3))`.
 * - A later channel of the same link joins with J1/J2 (a fresh X25519
 *   exchange authenticated by HMACs under the join secret), never by saying
 *   who it is in the clear.
 *
 * Identity: a device id is pinned to the first key proven for it within an
 * account (or to the key exchanged at pairing); another key for a pinned id
 * is refused as a clash. The machine asks a {@linkcode TrustView} and reports
 * new pins; the platform stores them.
 *
 * @module
 */
import { isDeviceId } from "../../device/config.ts";
import {
  Cipher,
  type CipherId,
  concatBytes,
  type CryptoSuite,
  equalBytes,
  NONCE_LENGTH,
  type RawKeyPair,
  TAG_LENGTH,
} from "./crypto.ts";
import type { DirectionKeys } from "../record.ts";

export { JoinHandshake, type JoinKeys } from "./join.ts";

/** Major version of the secure handshake (and of the link protocol over it). */
export const SECURE_MAJOR = 3;
/** Minor version. */
export const SECURE_MINOR = 0;

/** Message kinds (byte 0 of a handshake payload). */
export const Kind = {
  /** M1: the dialer's first message. */
  INIT: 0x10,
  /** M2: the acceptor's answer. */
  RESPONSE: 0x11,
  /** M3: the dialer proves who it is. */
  FINISH: 0x12,
  /** A refusal, with its reason. */
  REFUSE: 0x13,
  /** J1: a channel joins an existing link. */
  JOIN: 0x14,
  /** J2: the acceptor's answer to a join. */
  JOINED: 0x15,
  /** M4: the acceptor keeps the channel; records follow. */
  ACCEPT: 0x16,
} as const;

/** Capability bits of M1/M2. */
export const Caps = {
  /** The sender has an account key. */
  ACCOUNT: 1,
  /** The sender can join extra channels to a link. */
  JOIN: 2,
} as const;

/**
 * Why a handshake is refused: `version` (no common major version),
 * `account` (no common account and no pairing), `identity` (a key that
 * does not prove the id, or an unknown key where pairing is required),
 * `clash` (another key claims a pinned id), `busy` (a limit), `duplicate`,
 * `self` (the merge rule), `protocol` (malformed), `link` (a join for an
 * unknown link).
 */
export type Refusal =
  | "version"
  | "account"
  | "identity"
  | "clash"
  | "busy"
  | "duplicate"
  | "self"
  | "protocol"
  | "link";

const REFUSALS: readonly Refusal[] = [
  "version",
  "account",
  "identity",
  "clash",
  "busy",
  "duplicate",
  "self",
  "protocol",
  "link",
];

/** A device's long-term identity. */
export interface Identity {
  /** Its device id (`AA:BB:CC:DD:EE:FF`). */
  id: string;
  /** Ed25519 public key. */
  publicKey: Uint8Array;
  /** Ed25519 private key (seed). */
  privateKey: Uint8Array;
}

/** What the handshake asks about keys it has seen before. */
export interface TrustView {
  /**
   * The key pinned for a device id, if any (learned in an account or at pairing).
   *
   * @param id The device id.
   * @returns The key.
   */
  pinned(id: string): Uint8Array | undefined;
  /**
   * Whether a device was paired (so it is trusted without an account).
   *
   * @param id The device id.
   * @returns Whether it was.
   */
  paired(id: string): boolean;
  /** Whether any device was paired (so a peer outside the account may still be one). */
  anyPaired(): boolean;
  /**
   * Whether this key was revoked for this id (refused even in the account).
   *
   * @param id The device id.
   * @param publicKey The key it proved.
   * @returns Whether it was revoked.
   */
  revoked(id: string, publicKey: Uint8Array): boolean;
  /**
   * Pin a key to a device id (the first key proven for it in an account).
   *
   * @param id The device id.
   * @param publicKey Its key.
   */
  pin(id: string, publicKey: Uint8Array): void;
  /**
   * Trust a key for a device id without an account (pairing).
   *
   * @param id The device id.
   * @param publicKey Its key.
   */
  pair(id: string, publicKey: Uint8Array): void;
}

/** The peer a handshake proved. */
export interface ProvenPeer {
  /** Its device id. */
  id: string;
  /** Its Ed25519 key. */
  publicKey: Uint8Array;
  /** Its runtime nonce (new at every start). */
  nonce: string;
  /** How it is trusted. */
  mode: "account" | "paired";
  /** Whether its key was not pinned before (to be pinned now). */
  fresh: boolean;
}

/** The keys a finished handshake gives the record layer and the link. */
export interface ChannelKeys {
  /** Our sending direction. */
  tx: DirectionKeys;
  /** Our receiving direction. */
  rx: DirectionKeys;
  /** Secret for joining further channels to this link (never sent). */
  joinSecret: Uint8Array;
  /** Names the link to a join, public (derived from the join secret). */
  linkId: Uint8Array;
}

/** What one step of a handshake produced. */
export interface Step {
  /** A handshake payload to send now. */
  send?: Uint8Array;
  /** The acceptor proved the dialer (after M3): decide with `accept()` or `refuse()`. */
  proven?: ProvenPeer;
  /** Done: the channel carries records from now on. */
  done?: { peer: ProvenPeer; keys: ChannelKeys };
  /** Failed: send `send` (if any), then close the channel. */
  error?: { reason: Refusal; message: string; remote: boolean };
}

/** Options of a {@linkcode SecureHandshake}. */
export interface SecureOptions {
  /** The primitives. */
  crypto: CryptoSuite;
  /** This device. */
  identity: Identity;
  /** This runtime's nonce. */
  nonce: string;
  /** The account key (32 bytes), if this device has an account. */
  account?: Uint8Array;
  /** What this device knows of keys. */
  trust: TrustView;
  /** (Dialer) the device it means to reach. */
  expect?: string;
}

const enc = new TextEncoder();
const dec = new TextDecoder();
const TAG_INFO = enc.encode("linkweave account tag");
const HS_INFO = enc.encode("linkweave handshake");
const TRAFFIC_INFO = enc.encode("linkweave traffic");
const SIG_INFO = enc.encode("linkweave sig");
const LINK_ID_INFO = enc.encode("linkweave link id");
const ZERO32 = new Uint8Array(32);
const ZERO_NONCE = new Uint8Array(NONCE_LENGTH);

/** Bytes of M1. */
const M1_LENGTH = 1 + 2 + 4 + 2 + 32 + 16 + 16;
/** Bytes of the head of M2 (before its sealed part). */
const M2_HEAD = 1 + 2 + 4 + 1 + 1 + 32 + 16;

/**
 * A device id as its 6 bytes.
 *
 * @param id `AA:BB:CC:DD:EE:FF`.
 * @returns The bytes.
 */
export function idBytes(id: string): Uint8Array {
  return new Uint8Array(id.split(":").map((h) => parseInt(h, 16)));
}

/**
 * A device id from its 6 bytes.
 *
 * @param b The bytes.
 * @returns `AA:BB:CC:DD:EE:FF`.
 */
export function idText(b: Uint8Array): string {
  return [...b].map((x) => x.toString(16).padStart(2, "0")).join(":").toUpperCase();
}

function cipherBits(ids: readonly CipherId[]): number {
  let b = 0;
  for (const id of ids) b |= 1 << (id - 1);
  return b;
}

function has(bits: number, id: CipherId): boolean {
  return (bits & (1 << (id - 1))) !== 0;
}

/**
 * The AEAD two devices use: one both have, preferring one both seal fast,
 * then one the acceptor seals fast, then AES-256-GCM.
 *
 * @param ours What this device has (`ciphers`, `fast` bitmaps).
 * @param theirs What the peer said it has.
 * @returns The cipher, or `undefined` when there is none in common.
 */
export function chooseCipher(
  ours: { ciphers: number; fast: number },
  theirs: { ciphers: number; fast: number },
): CipherId | undefined {
  const common = ours.ciphers & theirs.ciphers;
  const order: CipherId[] = [Cipher.AES_256_GCM, Cipher.CHACHA20_POLY1305];
  for (const want of [ours.fast & theirs.fast & common, ours.fast & common, common]) {
    for (const id of order) if (has(want, id)) return id;
  }
  return undefined;
}

/**
 * Why a refusal payload refuses.
 *
 * @param m A refusal payload (`Kind.REFUSE`, reason, major).
 * @returns The reason (`protocol` when unknown).
 */
export function refusalOf(m: Uint8Array): Refusal {
  return REFUSALS[m[1]] ?? "protocol";
}

/** The refusal payload. */
export function refusePayload(reason: Refusal): Uint8Array {
  return new Uint8Array([Kind.REFUSE, REFUSALS.indexOf(reason), SECURE_MAJOR]);
}

/** One side of one channel's handshake. */
export class SecureHandshake {
  readonly #c: CryptoSuite;
  readonly #o: SecureOptions;
  readonly #role: "dialer" | "acceptor";
  #e: RawKeyPair = { publicKey: new Uint8Array(0), privateKey: new Uint8Array(0) };
  #state: "start" | "m2" | "m3" | "m4" | "decide" | "done" | "failed" = "start";
  #m1: Uint8Array = new Uint8Array(0);
  #m2: Uint8Array = new Uint8Array(0);
  #m3: Uint8Array = new Uint8Array(0);
  #psk: Uint8Array = ZERO32;
  #mode: "account" | "paired" = "paired";
  #cipher: CipherId = Cipher.AES_256_GCM;
  #shared: Uint8Array = new Uint8Array(0);
  #peer: ProvenPeer | undefined;

  /**
   * @param role Which side of the channel this device is.
   * @param options Crypto, identity, account, trust, expected peer.
   */
  constructor(role: "dialer" | "acceptor", options: SecureOptions) {
    this.#c = options.crypto;
    this.#o = options;
    this.#role = role;
  }

  /** Whether the handshake is over (done or failed). */
  get finished(): boolean {
    return this.#state === "done" || this.#state === "failed";
  }

  /**
   * Begin: the dialer's M1 (the acceptor has nothing to say first).
   *
   * @returns The payload to send, or `undefined` for the acceptor.
   */
  start(): Uint8Array | undefined {
    if (this.#role !== "dialer" || this.#state !== "start") return undefined;
    const c = this.#c;
    this.#e = c.x25519();
    const m1 = new Uint8Array(M1_LENGTH);
    let p = 0;
    m1[p++] = Kind.INIT;
    m1[p++] = SECURE_MAJOR;
    m1[p++] = SECURE_MINOR;
    const caps = (this.#o.account !== undefined ? Caps.ACCOUNT : 0) | Caps.JOIN;
    new DataView(m1.buffer).setUint32(p, caps);
    p += 4;
    m1[p++] = cipherBits(c.ciphers);
    m1[p++] = cipherBits(c.fastCiphers);
    m1.set(this.#e.publicKey, p);
    p += 32;
    m1.set(c.random(16), p);
    p += 16;
    if (this.#o.account !== undefined) {
      m1.set(c.hmac(this.#o.account, concatBytes(TAG_INFO, m1.subarray(0, p))).subarray(0, 16), p);
    }
    this.#m1 = m1;
    this.#state = "m2";
    return m1;
  }

  /**
   * A handshake payload arrived.
   *
   * @param m The payload (a CONTROL frame's, stream 0).
   * @returns What to do.
   */
  handle(m: Uint8Array): Step {
    if (this.finished) return this.#fail("protocol", "handshake already over", false);
    if (m.length > 0 && m[0] === Kind.REFUSE) {
      const reason = refusalOf(m);
      this.#state = "failed";
      return { error: { reason, message: `refused by the peer: ${reason}`, remote: true } };
    }
    try {
      if (this.#role === "acceptor") {
        if (this.#state === "start") return this.#onInit(m);
        if (this.#state === "m3") return this.#onFinish(m);
      } else {
        if (this.#state === "m2") return this.#onResponse(m);
        if (this.#state === "m4") return this.#onAccept(m);
      }
    } catch {
      // A malformed message never throws out of the machine.
    }
    return this.#fail("protocol", "malformed or unexpected handshake message", false);
  }

  /**
   * (Acceptor, after `proven`) keep the channel: M4, and the keys.
   *
   * @returns The step with `send` (M4) and `done`.
   */
  accept(): Step {
    if (this.#state !== "decide" || this.#peer === undefined) {
      return this.#fail("protocol", "nothing to accept", false);
    }
    this.#state = "done";
    return {
      send: new Uint8Array([Kind.ACCEPT]),
      done: { peer: this.#peer, keys: this.#traffic() },
    };
  }

  /**
   * (Acceptor, after `proven`) refuse the channel.
   *
   * @param reason Why.
   * @param message For the log.
   * @returns The step with the refusal to send.
   */
  refuse(reason: Refusal, message: string): Step {
    return this.#fail(reason, message, false);
  }

  // ------------------------------------------------------------ acceptor

  #onInit(m1: Uint8Array): Step {
    const c = this.#c;
    if (m1.length < 3 || m1[0] !== Kind.INIT) {
      return this.#fail("protocol", "not a linkweave handshake", false);
    }
    if (m1[1] !== SECURE_MAJOR) {
      return this.#fail(
        "version",
        `the peer speaks version ${m1[1]}, this device ${SECURE_MAJOR}`,
        false,
      );
    }
    if (m1.length !== M1_LENGTH) return this.#fail("protocol", "bad init length", false);
    const dv = new DataView(m1.buffer, m1.byteOffset, m1.byteLength);
    const caps = dv.getUint32(3);
    const theirs = { ciphers: m1[7], fast: m1[8] };
    const eD = m1.subarray(9, 41);
    const tag = m1.subarray(57, 73);
    const account = this.#o.account;
    if (account !== undefined && (caps & Caps.ACCOUNT) !== 0) {
      const want = c.hmac(account, concatBytes(TAG_INFO, m1.subarray(0, 57))).subarray(0, 16);
      if (equalBytes(want, tag)) {
        this.#mode = "account";
        this.#psk = account;
      }
    }
    if (this.#mode === "paired" && !this.#anyPaired()) {
      return this.#fail(
        "account",
        "the peer is not in this device's account, and none is paired",
        false,
      );
    }
    const cipher = chooseCipher(
      { ciphers: cipherBits(c.ciphers), fast: cipherBits(c.fastCiphers) },
      theirs,
    );
    if (cipher === undefined) return this.#fail("version", "no AEAD in common", false);
    this.#cipher = cipher;
    this.#m1 = m1.slice();
    this.#e = c.x25519();
    const shared = c.dh(this.#e.privateKey, eD);
    if (shared === undefined) return this.#fail("protocol", "bad ephemeral key", false);
    this.#shared = shared;
    const head = new Uint8Array(M2_HEAD);
    let p = 0;
    head[p++] = Kind.RESPONSE;
    head[p++] = SECURE_MAJOR;
    head[p++] = SECURE_MINOR;
    new DataView(head.buffer).setUint32(p, (account !== undefined ? Caps.ACCOUNT : 0) | Caps.JOIN);
    p += 4;
    head[p++] = cipher;
    head[p++] = this.#mode === "account" ? 1 : 2;
    head.set(this.#e.publicKey, p);
    p += 32;
    head.set(c.random(16), p);
    const th = c.sha256(concatBytes(this.#m1, head));
    const [kA] = this.#handshakeKeys(th);
    const proof = this.#proof("A", th);
    const sealed = new Uint8Array(proof.length + TAG_LENGTH);
    c.aead(cipher, kA).seal(ZERO_NONCE, proof, head, sealed, 0);
    this.#m2 = concatBytes(head, sealed);
    this.#state = "m3";
    return { send: this.#m2 };
  }

  #onFinish(m3: Uint8Array): Step {
    const c = this.#c;
    if (m3[0] !== Kind.FINISH) return this.#fail("protocol", "expected finish", false);
    const th = c.sha256(concatBytes(this.#m1, this.#m2.subarray(0, M2_HEAD)));
    const [, kD] = this.#handshakeKeys(th);
    const plain = c.aead(this.#cipher, kD).open(ZERO_NONCE, m3.subarray(1), m3.subarray(0, 1));
    if (plain === undefined) {
      return this.#fail(
        this.#mode === "account" ? "identity" : "account",
        "the peer's proof does not open (another account, or a forged message)",
        false,
      );
    }
    this.#m3 = m3.slice();
    const th2 = c.sha256(concatBytes(this.#m1, this.#m2));
    const peer = this.#checkProof(plain, "D", th2);
    if ("reason" in peer) return this.#fail(peer.reason, peer.message, false);
    this.#peer = peer;
    this.#state = "decide";
    return { proven: peer };
  }

  // ------------------------------------------------------------ dialer

  #onResponse(m2: Uint8Array): Step {
    const c = this.#c;
    if (m2[0] !== Kind.RESPONSE || m2.length < M2_HEAD + TAG_LENGTH) {
      return this.#fail("protocol", "expected a response", false);
    }
    if (m2[1] !== SECURE_MAJOR) {
      return this.#fail(
        "version",
        `the peer speaks version ${m2[1]}, this device ${SECURE_MAJOR}`,
        false,
      );
    }
    const cipher = m2[7] as CipherId;
    if (!c.ciphers.includes(cipher)) return this.#fail("version", `unknown AEAD ${cipher}`, false);
    const mode = m2[8];
    if (mode === 1) {
      if (this.#o.account === undefined) {
        return this.#fail("protocol", "account mode without an account", false);
      }
      this.#mode = "account";
      this.#psk = this.#o.account;
    } else if (mode !== 2) {
      return this.#fail("protocol", `unknown mode ${mode}`, false);
    }
    this.#cipher = cipher;
    const shared = c.dh(this.#e.privateKey, m2.subarray(9, 41));
    if (shared === undefined) return this.#fail("protocol", "bad ephemeral key", false);
    this.#shared = shared;
    const head = m2.subarray(0, M2_HEAD);
    const th = c.sha256(concatBytes(this.#m1, head));
    const [kA, kD] = this.#handshakeKeys(th);
    const plain = c.aead(cipher, kA).open(ZERO_NONCE, m2.subarray(M2_HEAD), head);
    if (plain === undefined) {
      return this.#fail("account", "the peer's proof does not open (another account?)", false);
    }
    const peer = this.#checkProof(plain, "A", th);
    if ("reason" in peer) return this.#fail(peer.reason, peer.message, false);
    if (this.#o.expect !== undefined && peer.id !== this.#o.expect) {
      return this.#fail("identity", `expected ${this.#o.expect} but reached ${peer.id}`, false);
    }
    this.#peer = peer;
    this.#m2 = m2.slice();
    const th2 = c.sha256(concatBytes(this.#m1, this.#m2));
    const proof = this.#proof("D", th2);
    const m3 = new Uint8Array(1 + proof.length + TAG_LENGTH);
    m3[0] = Kind.FINISH;
    c.aead(cipher, kD).seal(ZERO_NONCE, proof, m3.subarray(0, 1), m3, 1);
    this.#m3 = m3;
    this.#state = "m4";
    return { send: m3 };
  }

  #onAccept(m4: Uint8Array): Step {
    if (m4.length !== 1 || m4[0] !== Kind.ACCEPT) {
      return this.#fail("protocol", "expected accept", false);
    }
    this.#state = "done";
    return { done: { peer: this.#peer!, keys: this.#traffic() } };
  }

  // ------------------------------------------------------------ shared

  #anyPaired(): boolean {
    // Pairing mode needs some paired device; which one is known after M3.
    return this.#o.trust.anyPaired();
  }

  #handshakeKeys(th: Uint8Array): [Uint8Array, Uint8Array] {
    const okm = this.#c.hkdf(this.#shared, this.#psk, concatBytes(HS_INFO, th), 64);
    return [okm.subarray(0, 32), okm.subarray(32, 64)];
  }

  /** id (6) || key (32) || nonce length (1) || nonce || signature (64). */
  #proof(role: "A" | "D", th: Uint8Array): Uint8Array {
    const me = this.#o.identity;
    const id = idBytes(me.id);
    const nonce = enc.encode(this.#o.nonce).subarray(0, 64);
    const sig = this.#c.sign(me.privateKey, concatBytes(SIG_INFO, enc.encode(role), th, id, nonce));
    return concatBytes(id, me.publicKey, new Uint8Array([nonce.length]), nonce, sig);
  }

  #checkProof(
    p: Uint8Array,
    role: "A" | "D",
    th: Uint8Array,
  ): ProvenPeer | { reason: Refusal; message: string } {
    if (p.length < 6 + 32 + 1 + 64) return { reason: "protocol", message: "short proof" };
    const idB = p.subarray(0, 6);
    const key = p.subarray(6, 38);
    const n = p[38];
    if (p.length !== 39 + n + 64) return { reason: "protocol", message: "bad proof length" };
    const nonceB = p.subarray(39, 39 + n);
    const sig = p.subarray(39 + n);
    const id = idText(idB);
    if (!isDeviceId(id)) return { reason: "protocol", message: "bad device id" };
    if (id === this.#o.identity.id && equalBytes(key, this.#o.identity.publicKey)) {
      return { reason: "self", message: `dialled itself (${id})` };
    }
    if (!this.#c.verify(key, concatBytes(SIG_INFO, enc.encode(role), th, idB, nonceB), sig)) {
      return { reason: "identity", message: `${id} did not prove its key` };
    }
    if (this.#o.trust.revoked(id, key)) {
      return { reason: "identity", message: `the key of ${id} was revoked on this device` };
    }
    const pinned = this.#o.trust.pinned(id);
    if (pinned !== undefined && !equalBytes(pinned, key)) {
      return {
        reason: "clash",
        message: `${id} presented another key than the one it is known by`,
      };
    }
    if (id === this.#o.identity.id) {
      return { reason: "clash", message: `another key claims this device's own id ${id}` };
    }
    if (this.#mode === "paired" && !this.#o.trust.paired(id)) {
      return { reason: "account", message: `${id} is neither in this account nor paired` };
    }
    return {
      id,
      publicKey: key.slice(),
      nonce: dec.decode(nonceB),
      mode: this.#mode,
      fresh: pinned === undefined,
    };
  }

  #traffic(): ChannelKeys {
    const c = this.#c;
    const th = c.sha256(concatBytes(this.#m1, this.#m2, this.#m3));
    const okm = c.hkdf(this.#shared, this.#psk, concatBytes(TRAFFIC_INFO, th), 2 * (32 + 12) + 32);
    const d2a = { cipher: this.#cipher, key: okm.slice(0, 32), iv: okm.slice(32, 44) };
    const a2d = { cipher: this.#cipher, key: okm.slice(44, 76), iv: okm.slice(76, 88) };
    const joinSecret = okm.slice(88, 120);
    const linkId = c.hkdf(joinSecret, ZERO32, LINK_ID_INFO, 16);
    return this.#role === "dialer"
      ? { tx: d2a, rx: a2d, joinSecret, linkId }
      : { tx: a2d, rx: d2a, joinSecret, linkId };
  }

  #fail(reason: Refusal, message: string, remote: boolean): Step {
    this.#state = "failed";
    const tellPeer = !remote && reason !== "protocol";
    return {
      send: tellPeer ? refusePayload(reason) : undefined,
      error: { reason, message, remote },
    };
  }
}

/**
 * Pairing, sans-IO: two devices that share no account come to trust each
 * other's keys because a person read a 6-digit code on one and typed it on
 * the other. The code is a passkey proved bit by bit with commitments (the
 * scheme of Bluetooth LE's passkey entry), so a device in the middle learns
 * at most one bit before it is caught, and nothing can be guessed offline
 * from a recording. `docs/security.md` specifies it.
 *
 * ```
 * B (enters the code)                         A (shows the code)
 * P1: eB, idB, keyB                           ->
 *                                             <- P2: eA, idA, keyA
 * k = HKDF(X25519(eA, eB), 0, "linkweave pairing" || H(P1 || P2))
 * for each bit i of the 20-bit passkey r:
 * Cb_i = HMAC(k, "B" || i || nB_i || r_i)     ->
 *                                             <- Ca_i = HMAC(k, "A" || i || nA_i || r_i)
 * nB_i                                        ->   A checks Cb_i
 *                                             <- nA_i   B checks Ca_i
 * sigB(H(transcript)), MAC                    ->   A checks, pins keyB as paired
 *                                             <- sigA(H(transcript)), MAC   B checks, pins keyA
 * ```
 *
 * One offer allows one attempt: any mismatch ends it, and the person makes
 * a new code.
 *
 * @module
 */
import { isDeviceId } from "../../device/config.ts";
import { concatBytes, type CryptoSuite, equalBytes, type RawKeyPair } from "./crypto.ts";
import { idBytes, type Identity, idText } from "./secure.ts";

/** Message kinds of pairing (byte 0). */
export const PairKind = {
  /** P1: B introduces itself. */
  HELLO: 0x20,
  /** P2: A answers. */
  ANSWER: 0x21,
  /** A commitment to one bit. */
  COMMIT: 0x22,
  /** The opening of a commitment. */
  REVEAL: 0x23,
  /** The final proof of each side. */
  CONFIRM: 0x24,
  /** The pairing failed (either side). */
  FAIL: 0x25,
} as const;

/** Bits of the passkey (a 6-digit code is below 2^20). */
export const PASSKEY_BITS = 20;

const INFO = new TextEncoder().encode("linkweave pairing");
const CONFIRM_INFO = new TextEncoder().encode("linkweave pairing confirm");

/**
 * The passkey of a 6-digit code.
 *
 * @param code Six digits.
 * @returns The number, or `undefined` when the code is not six digits.
 */
export function passkey(code: string): number | undefined {
  return /^\d{6}$/.test(code) ? Number(code) : undefined;
}

/**
 * A new 6-digit code.
 *
 * @param crypto The suite (randomness).
 * @returns The code.
 */
export function newCode(crypto: CryptoSuite): string {
  const b = crypto.random(4);
  const n = ((b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3]) >>> 0;
  return String(n % 1_000_000).padStart(6, "0");
}

/** What one step of pairing produced. */
export interface PairStep {
  /** Payloads to send, in order. */
  send: Uint8Array[];
  /** Paired: pin this device's key as paired. */
  paired?: { id: string; publicKey: Uint8Array };
  /** Failed: say why, close the channel. */
  error?: string;
}

/** One side of a pairing. */
export class Pairing {
  readonly #c: CryptoSuite;
  readonly #me: Identity;
  readonly #role: "shows" | "enters";
  readonly #r: number;
  #e: RawKeyPair | undefined;
  #k: Uint8Array | undefined;
  #t: Uint8Array = new Uint8Array(0);
  #peer: { id: string; key: Uint8Array } | undefined;
  #bit = 0;
  #mine: Uint8Array | undefined;
  #theirs: Uint8Array | undefined;
  #state:
    | "start"
    | "answer"
    | "wantCommit"
    | "wantReveal"
    | "wantConfirm"
    | "done"
    | "failed" = "start";

  /**
   * @param role `shows` (A, the code was displayed here) or `enters` (B, the person typed it).
   * @param crypto The suite.
   * @param me This device's identity.
   * @param code The 6-digit code.
   * @throws {RangeError} When the code is not six digits.
   */
  constructor(role: "shows" | "enters", crypto: CryptoSuite, me: Identity, code: string) {
    const r = passkey(code);
    if (r === undefined) {
      throw new RangeError(`Invalid pairing code ${JSON.stringify(code)}: expected six digits`);
    }
    this.#c = crypto;
    this.#me = me;
    this.#role = role;
    this.#r = r;
  }

  /** Whether it ended (paired or failed). */
  get finished(): boolean {
    return this.#state === "done" || this.#state === "failed";
  }

  /**
   * (B) the first message.
   *
   * @returns The step.
   */
  start(): PairStep {
    if (this.#role !== "enters" || this.#state !== "start") return { send: [] };
    this.#e = this.#c.x25519();
    const p1 = concatBytes(
      new Uint8Array([PairKind.HELLO]),
      this.#e.publicKey,
      idBytes(this.#me.id),
      this.#me.publicKey,
    );
    this.#t = p1;
    this.#state = "answer";
    return { send: [p1] };
  }

  /**
   * A pairing message arrived.
   *
   * @param m The payload.
   * @returns The step.
   */
  handle(m: Uint8Array): PairStep {
    if (this.finished) return { send: [] };
    if (m[0] === PairKind.FAIL) return this.#fail("the other device stopped the pairing", false);
    try {
      switch (this.#state) {
        case "start":
          if (this.#role === "shows") return this.#onHello(m);
          break;
        case "answer":
          return this.#onAnswer(m);
        case "wantCommit":
          return this.#onCommit(m);
        case "wantReveal":
          return this.#onReveal(m);
        case "wantConfirm":
          return this.#onConfirm(m);
      }
    } catch {
      // malformed: fall through
    }
    return this.#fail("unexpected pairing message", true);
  }

  #onHello(p1: Uint8Array): PairStep {
    if (p1[0] !== PairKind.HELLO || p1.length !== 1 + 32 + 6 + 32) {
      return this.#fail("bad hello", true);
    }
    const peer = this.#introduce(p1);
    if (typeof peer === "string") return this.#fail(peer, true);
    this.#e = this.#c.x25519();
    const p2 = concatBytes(
      new Uint8Array([PairKind.ANSWER]),
      this.#e.publicKey,
      idBytes(this.#me.id),
      this.#me.publicKey,
    );
    this.#t = concatBytes(p1, p2);
    if (!this.#derive(p1.subarray(1, 33))) return this.#fail("bad key", true);
    this.#state = "wantCommit";
    return { send: [p2] };
  }

  #onAnswer(p2: Uint8Array): PairStep {
    if (p2[0] !== PairKind.ANSWER || p2.length !== 1 + 32 + 6 + 32) {
      return this.#fail("bad answer", true);
    }
    const peer = this.#introduce(p2);
    if (typeof peer === "string") return this.#fail(peer, true);
    this.#t = concatBytes(this.#t, p2);
    if (!this.#derive(p2.subarray(1, 33))) return this.#fail("bad key", true);
    // Each round: B commits, A commits, B reveals, A checks and reveals, B checks.
    this.#state = "wantCommit";
    return { send: [this.#commit()] };
  }

  #onCommit(m: Uint8Array): PairStep {
    if (m[0] !== PairKind.COMMIT || m.length !== 2 + 32 || m[1] !== this.#bit) {
      return this.#fail("bad commitment", true);
    }
    this.#theirs = m.subarray(2).slice();
    this.#t = concatBytes(this.#t, m);
    this.#state = "wantReveal";
    // A answers a commitment with its own; B, having committed already, reveals.
    return { send: [this.#role === "shows" ? this.#commit() : this.#reveal()] };
  }

  #onReveal(m: Uint8Array): PairStep {
    if (m[0] !== PairKind.REVEAL || m.length !== 2 + 16 || m[1] !== this.#bit) {
      return this.#fail("bad reveal", true);
    }
    const them = this.#role === "shows" ? "B" : "A";
    if (!equalBytes(this.#mac(them, m.subarray(2)), this.#theirs!)) {
      return this.#fail("the code does not match (mistyped, or someone is in the middle)", true);
    }
    this.#t = concatBytes(this.#t, m);
    const send: Uint8Array[] = [];
    if (this.#role === "shows") send.push(this.#reveal());
    this.#bit++;
    if (this.#bit === PASSKEY_BITS) {
      this.#state = "wantConfirm";
      if (this.#role === "enters") send.push(this.#confirm());
      return { send };
    }
    this.#state = "wantCommit";
    if (this.#role === "enters") send.push(this.#commit());
    return { send };
  }

  #onConfirm(m: Uint8Array): PairStep {
    if (m[0] !== PairKind.CONFIRM || m.length !== 1 + 64 + 32) {
      return this.#fail("bad confirmation", true);
    }
    const peer = this.#peer!;
    const th = this.#c.sha256(this.#t);
    const them = this.#role === "shows" ? "B" : "A";
    const signed = concatBytes(CONFIRM_INFO, new TextEncoder().encode(them), th);
    if (!this.#c.verify(peer.key, signed, m.subarray(1, 65))) {
      return this.#fail("the other device did not prove its key", true);
    }
    if (!equalBytes(this.#c.hmac(this.#k!, signed), m.subarray(65))) {
      return this.#fail("bad confirmation", true);
    }
    const send: Uint8Array[] = [];
    if (this.#role === "shows") send.push(this.#confirm());
    this.#state = "done";
    return { send, paired: { id: peer.id, publicKey: peer.key } };
  }

  #introduce(m: Uint8Array): { id: string; key: Uint8Array } | string {
    const id = idText(m.subarray(33, 39));
    if (!isDeviceId(id)) return "bad device id";
    if (id === this.#me.id) return "a device cannot pair with itself";
    this.#peer = { id, key: m.subarray(39, 71).slice() };
    return this.#peer;
  }

  #derive(theirE: Uint8Array): boolean {
    const s = this.#c.dh(this.#e!.privateKey, theirE);
    if (s === undefined) return false;
    this.#k = this.#c.hkdf(s, new Uint8Array(32), concatBytes(INFO, this.#c.sha256(this.#t)), 32);
    return true;
  }

  #bitValue(): number {
    return (this.#r >>> this.#bit) & 1;
  }

  #mac(who: "A" | "B", nonce: Uint8Array): Uint8Array {
    const head = new TextEncoder().encode(who);
    return this.#c.hmac(
      this.#k!,
      concatBytes(head, new Uint8Array([this.#bit, this.#bitValue()]), nonce),
    );
  }

  #commit(): Uint8Array {
    const me = this.#role === "shows" ? "A" : "B";
    this.#mine = this.#c.random(16);
    const m = concatBytes(new Uint8Array([PairKind.COMMIT, this.#bit]), this.#mac(me, this.#mine));
    this.#t = concatBytes(this.#t, m);
    return m;
  }

  #reveal(): Uint8Array {
    const m = concatBytes(new Uint8Array([PairKind.REVEAL, this.#bit]), this.#mine!);
    this.#t = concatBytes(this.#t, m);
    return m;
  }

  #confirm(): Uint8Array {
    const me = this.#role === "shows" ? "A" : "B";
    const th = this.#c.sha256(this.#t);
    const signed = concatBytes(CONFIRM_INFO, new TextEncoder().encode(me), th);
    const m = concatBytes(
      new Uint8Array([PairKind.CONFIRM]),
      this.#c.sign(this.#me.privateKey, signed),
      this.#c.hmac(this.#k!, signed),
    );
    return m;
  }

  #fail(message: string, tell: boolean): PairStep {
    this.#state = "failed";
    return { send: tell ? [new Uint8Array([PairKind.FAIL])] : [], error: message };
  }
}

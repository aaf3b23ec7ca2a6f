import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { nodeCrypto } from "../../../platform/crypto.ts";
import { equalBytes } from "./crypto.ts";
import { newCode, Pairing, type PairStep, passkey } from "./pairing.ts";
import type { Identity } from "./secure.ts";

const crypto = nodeCrypto();

function identity(id: string): Identity {
  const k = crypto.ed25519();
  return { id, publicKey: k.publicKey, privateKey: k.privateKey };
}

/** Shuttle messages between B (enters) and A (shows) until both stop. */
function run(
  b: Pairing,
  a: Pairing,
  tamper: (m: Uint8Array, toA: boolean, i: number) => Uint8Array = (m) => m,
) {
  const results = { a: [] as PairStep[], b: [] as PairStep[] };
  let toA = b.start().send;
  let toB: Uint8Array[] = [];
  let n = 0;
  for (let guard = 0; guard < 500 && (toA.length > 0 || toB.length > 0); guard++) {
    const nextB: Uint8Array[] = [];
    for (const m of toA) {
      const s = a.handle(tamper(m, true, n++));
      results.a.push(s);
      nextB.push(...s.send);
    }
    toA = [];
    for (const m of [...toB, ...nextB]) {
      const s = b.handle(tamper(m, false, n++));
      results.b.push(s);
      toA.push(...s.send);
    }
    toB = [];
  }
  const paired = (l: PairStep[]) => l.find((s) => s.paired)?.paired;
  const error = (l: PairStep[]) => l.find((s) => s.error)?.error;
  return {
    aPaired: paired(results.a),
    bPaired: paired(results.b),
    aError: error(results.a),
    bError: error(results.b),
    messages: n,
  };
}

describe("pairing with a 6-digit code", () => {
  it("codes are six digits", () => {
    for (let i = 0; i < 100; i++) assert.match(newCode(crypto), /^\d{6}$/);
    assert.equal(passkey("012345"), 12345);
    assert.equal(passkey("12345"), undefined);
    assert.throws(
      () => new Pairing("shows", crypto, identity("02:00:00:00:00:0A"), "abc"),
      RangeError,
    );
  });

  it("the right code pairs the two devices with each other's keys", () => {
    const A = identity("02:00:00:00:00:0A");
    const B = identity("02:00:00:00:00:0B");
    const code = newCode(crypto);
    const r = run(new Pairing("enters", crypto, B, code), new Pairing("shows", crypto, A, code));
    assert.equal(r.aError, undefined);
    assert.equal(r.bError, undefined);
    assert.equal(r.aPaired?.id, B.id);
    assert.equal(r.bPaired?.id, A.id);
    assert.ok(equalBytes(r.aPaired!.publicKey, B.publicKey));
    assert.ok(equalBytes(r.bPaired!.publicKey, A.publicKey));
  });

  it("a wrong code fails on both sides, pairing nothing", () => {
    const A = identity("02:00:00:00:00:0A");
    const B = identity("02:00:00:00:00:0B");
    for (
      const [shown, typed] of [["123456", "123457"], ["000000", "524288"], ["999999", "999998"]]
    ) {
      const r = run(
        new Pairing("enters", crypto, B, typed),
        new Pairing("shows", crypto, A, shown),
      );
      assert.equal(r.aPaired, undefined);
      assert.equal(r.bPaired, undefined);
      assert.match(r.aError ?? r.bError ?? "", /does not match|stopped/);
    }
  });

  it("a device in the middle that does not know the code is caught, and learns little", () => {
    const A = identity("02:00:00:00:00:0A");
    const B = identity("02:00:00:00:00:0B");
    const M = identity("02:00:00:00:00:0E");
    const code = "731902";
    // M runs its own pairing with each side, guessing the code.
    const guess = "000000";
    const mToA = new Pairing("enters", crypto, { ...M, id: B.id }, guess);
    const mToB = new Pairing("shows", crypto, { ...M, id: A.id }, guess);
    const left = run(mToA, new Pairing("shows", crypto, A, code));
    const right = run(new Pairing("enters", crypto, B, code), mToB);
    assert.equal(left.aPaired, undefined, "A did not pair with M");
    assert.equal(right.bPaired, undefined, "B did not pair with M");
  });

  it("changed, cut or out-of-place messages end the pairing without throwing", () => {
    const A = identity("02:00:00:00:00:0A");
    const B = identity("02:00:00:00:00:0B");
    const code = "246810";
    const total = run(new Pairing("enters", crypto, B, code), new Pairing("shows", crypto, A, code))
      .messages;
    assert.equal(total, 2 + 4 * 20 + 2);
    for (let at = 0; at < total; at += 3) {
      for (const how of ["flip", "cut", "replace"] as const) {
        const r = run(
          new Pairing("enters", crypto, B, code),
          new Pairing("shows", crypto, A, code),
          (m, _toA, i) => {
            if (i !== at) return m;
            if (how === "flip") {
              const bad = m.slice();
              bad[bad.length - 1] ^= 1;
              return bad;
            }
            return how === "cut" ? m.subarray(0, m.length - 1) : new Uint8Array([0x22, 0]);
          },
        );
        assert.ok(!(r.aPaired && r.bPaired), `${how} at ${at}`);
      }
    }
  });
});

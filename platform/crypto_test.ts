import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Cipher, TAG_LENGTH } from "../core/proto/handshake/crypto.ts";
import { nodeCrypto, rankCiphers } from "./crypto.ts";

const AES = Cipher.AES_256_GCM;
const CHACHA = Cipher.CHACHA20_POLY1305;

describe("the AEADs a runtime counts as fast", () => {
  it("judges each AEAD by its quickest seal, so a preempted seal does not demote it", () => {
    // Deno on a busy machine: ChaCha20-Poly1305 seals in 0.05 ms, AES-256-GCM
    // in 0.25 ms, and one ChaCha seal waited 3 ms for the scheduler.
    const samples = new Map([
      [AES, [0.26, 0.25, 0.27, 0.25]],
      [CHACHA, [0.05, 3, 0.05, 0.06]],
    ]);
    assert.deepEqual(rankCiphers(samples), { ciphers: [CHACHA, AES], fast: [CHACHA] });
  });

  it("counts every AEAD within twice the fastest, and one alone", () => {
    const both = new Map([[AES, [0.1, 0.09]], [CHACHA, [0.17, 0.3]]]);
    assert.deepEqual(rankCiphers(both), { ciphers: [AES, CHACHA], fast: [AES, CHACHA] });
    assert.deepEqual(rankCiphers(new Map([[AES, [4]]])), { ciphers: [AES], fast: [AES] });
  });

  it("the runtime's suite lists the AEADs it has, and each seals and opens", () => {
    const c = nodeCrypto();
    assert.ok(c.ciphers.includes(AES));
    assert.ok(c.fastCiphers.length > 0);
    assert.ok(c.fastCiphers.every((id) => c.ciphers.includes(id)));
    for (const id of c.ciphers) {
      const k = c.aead(id, new Uint8Array(32).fill(id));
      const nonce = new Uint8Array(12).fill(3);
      const data = new Uint8Array(100).fill(9);
      const out = new Uint8Array(5 + data.length + TAG_LENGTH);
      k.seal(nonce, data, nonce, out, 5);
      assert.deepEqual(k.open(nonce, out.subarray(5), nonce), data);
      out[7] ^= 1;
      assert.equal(k.open(nonce, out.subarray(5), nonce), undefined);
    }
  });
});

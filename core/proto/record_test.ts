import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { nodeCrypto } from "../../platform/crypto.ts";
import { Cipher, type CipherId } from "./handshake/crypto.ts";
import {
  type DirectionKeys,
  RECORD_HEADER,
  RecordOpener,
  RecordSealer,
  SEAL_RECORD_PLAINTEXT,
} from "./record.ts";

const crypto = nodeCrypto();

function keys(cipher: CipherId, seed: number): DirectionKeys {
  return {
    cipher,
    key: new Uint8Array(32).fill(seed),
    iv: new Uint8Array(12).fill(seed + 1),
  };
}

function bytes(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 7 + seed) & 0xff;
  return b;
}

/** Open everything in `wire`, fed in pieces cut at `cuts`. */
function openAll(opener: RecordOpener, wire: Uint8Array, cuts: number[] = []): {
  got: Uint8Array[];
  error: string | undefined;
} {
  const got: Uint8Array[] = [];
  let at = 0;
  let error: string | undefined;
  for (const c of [...cuts, wire.length]) {
    error ??= opener.push(wire.subarray(at, c), (p) => got.push(p.slice()), 0);
    at = c;
  }
  return { got, error };
}

for (const cipher of crypto.ciphers) {
  describe(`record layer (${cipher === Cipher.AES_256_GCM ? "AES-256-GCM" : "ChaCha20-Poly1305"})`, () => {
    it("carries batches intact, records split anywhere on the wire", () => {
      const sealer = new RecordSealer(crypto, keys(cipher, 1), 0);
      const batches = [bytes(1, 1), bytes(1000, 2), bytes(0, 3), bytes(70_000, 4)];
      const wire = new Uint8Array(batches.flatMap((b) => [...sealer.seal(b, 0)]));
      for (const cuts of [[], [1], [3, 4, 5], [wire.length - 1], [17, 18, 1100, 1101]]) {
        const { got, error } = openAll(new RecordOpener(crypto, keys(cipher, 1), 0), wire, cuts);
        assert.equal(error, undefined);
        // Each batch in order; the 70,000-byte one as records of SEAL_RECORD_PLAINTEXT.
        assert.deepEqual(got.slice(0, 3), batches.slice(0, 3));
        assert.equal(got.length, 3 + Math.ceil(70_000 / SEAL_RECORD_PLAINTEXT));
        assert.deepEqual(new Uint8Array(got.slice(3).flatMap((g) => [...g])), batches[3]);
      }
    });

    it("seals a batch over the record limit as several records", () => {
      const sealer = new RecordSealer(crypto, keys(cipher, 1), 0);
      const big = bytes(2 * SEAL_RECORD_PLAINTEXT + 5, 9);
      const wire = sealer.seal(big, 0).slice();
      assert.equal(sealer.records, 3);
      const { got, error } = openAll(new RecordOpener(crypto, keys(cipher, 1), 0), wire);
      assert.equal(error, undefined);
      assert.deepEqual(new Uint8Array(got.flatMap((g) => [...g])), big);
    });

    it("refuses a changed byte, a replayed record, a reordered one and the wrong key", () => {
      const sealer = new RecordSealer(crypto, keys(cipher, 1), 0);
      const r1 = sealer.seal(bytes(100, 1), 0).slice();
      const r2 = sealer.seal(bytes(100, 2), 0).slice();
      const opener = () => new RecordOpener(crypto, keys(cipher, 1), 0);
      for (let i = 0; i < r1.length; i += 7) {
        const bad = r1.slice();
        bad[i] ^= 0x40;
        const { got, error } = openAll(opener(), bad);
        assert.equal(got.length, 0, `flip at ${i}`);
        // A flipped length may leave the opener waiting for more; anything it opens is refused.
        if (i >= RECORD_HEADER) assert.ok(error !== undefined, `flip at ${i}`);
      }
      assert.match(
        openAll(opener(), new Uint8Array([...r1, ...r1])).error!,
        /does not authenticate/,
      );
      assert.match(
        openAll(opener(), new Uint8Array([...r2, ...r1])).error!,
        /does not authenticate/,
      );
      const other = new RecordOpener(crypto, keys(cipher, 2), 0);
      assert.match(openAll(other, r1).error!, /does not authenticate/);
      const o = opener();
      assert.equal(openAll(o, new Uint8Array([...r1, ...r2])).error, undefined);
      assert.match(o.push(r2, () => {}, 0)!, /does not authenticate/, "the same record twice");
    });

    it("refuses an impossible length at once, holding nothing", () => {
      const o = new RecordOpener(crypto, keys(cipher, 1), 0);
      assert.match(o.push(new Uint8Array([0x7f, 0xff, 0xff, 0xff]), () => {}, 0)!, /limit/);
      assert.equal(o.buffered, 0);
    });

    it("updates keys after the record, byte and time limits, and both sides follow", () => {
      for (const limits of [{ records: 3 }, { bytes: 250 }, { ms: 1000 }]) {
        const sealer = new RecordSealer(crypto, keys(cipher, 1), 0, limits);
        const opener = new RecordOpener(crypto, keys(cipher, 1), 0);
        const stale = new RecordOpener(crypto, keys(cipher, 1), 0);
        const sent: Uint8Array[] = [];
        let wire = new Uint8Array(0);
        for (let i = 0; i < 10; i++) {
          sent.push(bytes(100, i));
          wire = new Uint8Array([...wire, ...sealer.seal(sent[i], i * 400)]);
        }
        const { got, error } = openAll(opener, wire);
        assert.equal(error, undefined, JSON.stringify(limits));
        assert.deepEqual(got, sent);
        // The header flag is authenticated: an opener made to skip the update fails.
        const flagged = wire.findIndex((_, i) =>
          i % (RECORD_HEADER + 116) === 0 && wire[i] >= 0x80
        );
        assert.ok(flagged > 0, `an update happened (${JSON.stringify(limits)})`);
        const cleared = wire.slice();
        cleared[flagged] &= 0x7f;
        assert.ok(openAll(stale, cleared).error !== undefined);
      }
    });
  });
}

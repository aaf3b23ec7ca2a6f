import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { nodeCrypto } from "../../platform/crypto.ts";
import { Cipher, type CipherId } from "./handshake/crypto.ts";
import {
  type DirectionKeys,
  MAX_RECORD_PLAINTEXT,
  RECORD_HEADER,
  RECORD_MS,
  RecordOpener,
  RecordSealer,
  recordSize,
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

    it("seals records as large as the channel's rate allows, up to the limit a peer accepts", () => {
      const sealer = new RecordSealer(crypto, keys(cipher, 5), 0);
      const batch = bytes(600_000, 6);
      const lengths = (wire: Uint8Array) => {
        const ls: number[] = [];
        for (let at = 0; at < wire.length;) {
          const n = ((wire[at + 1] << 16) | (wire[at + 2] << 8) | wire[at + 3]) - 16;
          ls.push(n);
          at += RECORD_HEADER + n + 16;
        }
        return ls;
      };
      // Rate unknown or slow: records of SEAL_RECORD_PLAINTEXT.
      for (const rate of [0, 1250, SEAL_RECORD_PLAINTEXT / RECORD_MS]) {
        const ls = lengths(sealer.seal(batch, 0, rate));
        assert.equal(ls.length, Math.ceil(600_000 / SEAL_RECORD_PLAINTEXT), `rate ${rate}`);
        assert.equal(ls[0], SEAL_RECORD_PLAINTEXT);
      }
      // 200 MB/s: a record is what crosses in RECORD_MS.
      assert.deepEqual(lengths(sealer.seal(batch, 0, 200_000)), [
        ...Array(Math.floor(600_000 / (200_000 * RECORD_MS))).fill(200_000 * RECORD_MS),
      ]);
      // Faster: never over what a peer accepts.
      const fast = lengths(sealer.seal(batch, 0, 5_000_000));
      assert.deepEqual(fast, [
        MAX_RECORD_PLAINTEXT,
        MAX_RECORD_PLAINTEXT,
        600_000 - 2 * MAX_RECORD_PLAINTEXT,
      ]);
      assert.equal(recordSize(Number.POSITIVE_INFINITY), MAX_RECORD_PLAINTEXT);
      // Every one of them opens, in order.
      const o = new RecordOpener(crypto, keys(cipher, 5), 0);
      const fresh = new RecordSealer(crypto, keys(cipher, 5), 0);
      const wire = new Uint8Array([
        ...fresh.seal(bytes(70_000, 7), 0, 200_000),
        ...fresh.seal(batch, 0, 5_000_000),
      ]);
      const { got, error } = openAll(o, wire, [5, 100_001, 300_000]);
      assert.equal(error, undefined);
      assert.deepEqual(
        new Uint8Array(got.flatMap((g) => [...g])),
        new Uint8Array([...bytes(70_000, 7), ...batch]),
      );
    });

    it("opens records fed a byte at a time, or cut at every offset, holding at most the record in progress", () => {
      const sealer = new RecordSealer(crypto, keys(cipher, 3), 0);
      const batches = [bytes(5, 1), bytes(300, 2), bytes(1, 3)];
      const wire = new Uint8Array(batches.flatMap((b) => [...sealer.seal(b, 0)]));
      const ends: number[] = [];
      for (let at = 0; at < wire.length;) {
        at += RECORD_HEADER + ((wire[at + 2] << 8) | wire[at + 3]);
        ends.push(at);
      }
      const o = new RecordOpener(crypto, keys(cipher, 3), 0);
      const got: Uint8Array[] = [];
      for (let i = 0; i < wire.length; i++) {
        assert.equal(o.push(wire.subarray(i, i + 1), (p) => got.push(p.slice()), 0), undefined);
        const start = Math.max(0, ...ends.filter((e) => e <= i + 1));
        assert.equal(o.buffered, i + 1 - start, `after byte ${i}`);
      }
      assert.deepEqual(got, batches);
      for (let a = 1; a < wire.length; a++) {
        for (const b of [a + 1, a + 4, a + 150, wire.length - 1]) {
          if (b <= a || b >= wire.length) continue;
          const r = openAll(new RecordOpener(crypto, keys(cipher, 3), 0), wire, [a, b]);
          assert.equal(r.error, undefined, `cut at ${a} and ${b}`);
          assert.deepEqual(r.got, batches, `cut at ${a} and ${b}`);
        }
      }
    });

    it("refuses an impossible length whose header arrives in pieces, holding nothing", () => {
      const sealer = new RecordSealer(crypto, keys(cipher, 1), 0);
      const good = sealer.seal(bytes(10, 1), 0).slice();
      const o = new RecordOpener(crypto, keys(cipher, 1), 0);
      const got: Uint8Array[] = [];
      assert.equal(
        o.push(new Uint8Array([...good, 0x7f]), (p) => got.push(p.slice()), 0),
        undefined,
      );
      assert.equal(got.length, 1);
      assert.equal(o.push(new Uint8Array([0xff, 0xff]), () => {}, 0), undefined);
      assert.match(o.push(new Uint8Array([0xff, 1, 2, 3]), () => {}, 0)!, /limit/);
      assert.equal(o.buffered, 0);
      assert.match(o.push(good, () => {}, 0)!, /closed/);
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

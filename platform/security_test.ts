import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { nodeCrypto } from "./crypto.ts";
import { accountIdSeal, FileTrust, loadAccount, loadIdentity } from "./security.ts";
import { decodeAnnouncement, encodeAnnouncement } from "../core/discovery/wire.ts";

const crypto = nodeCrypto();
const A = "02:00:00:00:00:0A";

function temp(): string {
  return mkdtempSync(join(tmpdir(), "lw-sec-"));
}

describe("account, device key and trust store", () => {
  it("takes the account from configure, then LINKWEAVE_ACCOUNT, then the file, then per-user", () => {
    const dir = temp();
    try {
      const file = join(dir, "secret");
      writeFileSync(file, "from the file\n");
      const env = { LINKWEAVE_ACCOUNT: "from env", LINKWEAVE_ACCOUNT_FILE: file };
      const given = loadAccount(crypto, { secret: "given", env, stateDir: dir });
      assert.equal(given.source, "configure");
      const fromEnv = loadAccount(crypto, { env, stateDir: dir });
      assert.equal(fromEnv.source, "LINKWEAVE_ACCOUNT");
      const fromFile = loadAccount(crypto, {
        env: { LINKWEAVE_ACCOUNT_FILE: file },
        stateDir: dir,
      });
      assert.equal(fromFile.source, "LINKWEAVE_ACCOUNT_FILE");
      assert.deepEqual(
        fromFile.key,
        loadAccount(crypto, { secret: "from the file", env: {}, stateDir: dir }).key,
        "the file's secret, trimmed",
      );
      assert.notDeepEqual(given.key, fromEnv.key);
      const own = loadAccount(crypto, { env: {}, stateDir: dir });
      assert.equal(own.source, "per-user");
      assert.equal(statSync(join(dir, "account")).mode & 0o777, 0o600);
      assert.deepEqual(loadAccount(crypto, { env: {}, stateDir: dir }).key, own.key, "kept");
      assert.throws(
        () =>
          loadAccount(crypto, {
            env: { LINKWEAVE_ACCOUNT_FILE: join(dir, "nope") },
            stateDir: dir,
          }),
        /LINKWEAVE_ACCOUNT_FILE=".*nope" is missing or empty/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("makes a device key once, private, and keeps it", () => {
    const dir = temp();
    try {
      const one = loadIdentity(crypto, join(dir, "id"), A);
      const two = loadIdentity(crypto, join(dir, "id"), A);
      assert.deepEqual(one.publicKey, two.publicKey);
      assert.equal(statSync(join(dir, "id", "key")).mode & 0o777, 0o600);
      assert.equal(statSync(join(dir, "id")).mode & 0o777, 0o700);
      const sig = crypto.sign(two.privateKey, new Uint8Array([1]));
      assert.ok(crypto.verify(one.publicKey, new Uint8Array([1]), sig));
      writeFileSync(join(dir, "id", "key"), "garbage");
      assert.throws(() => loadIdentity(crypto, join(dir, "id"), A), /damaged/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("pins, pairs, lists and revokes, and remembers it across restarts", () => {
    const dir = temp();
    try {
      const key = crypto.ed25519().publicKey;
      const t = new FileTrust(dir);
      assert.equal(t.pinned(A), undefined);
      t.pin(A, key);
      assert.deepEqual(t.pinned(A), key);
      assert.equal(t.paired(A), false);
      const B = "02:00:00:00:00:0B";
      t.pair(B, key);
      assert.ok(t.paired(B) && t.anyPaired());
      const again = new FileTrust(dir);
      assert.deepEqual(again.list().map((d) => [d.id, d.how]), [[A, "account"], [B, "paired"]]);
      assert.equal(statSync(join(dir, "trust.json")).mode & 0o777, 0o600);
      assert.ok(again.revoke(A));
      assert.equal(again.pinned(A), undefined);
      assert.ok(again.revoked(A, key));
      assert.ok(new FileTrust(dir).revoked(A, key), "revocation is kept");
      assert.equal(again.revoke(A), false);
      assert.match(readFileSync(join(dir, "trust.json"), "utf8"), /revoked/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("seals discovery ids for the account only, differently in every announcement", () => {
    const mine = accountIdSeal(crypto, new Uint8Array(32).fill(1));
    const theirs = accountIdSeal(crypto, new Uint8Array(32).fill(2));
    const init = { deviceId: A, nonce: "0123456789abcdef", port: 4000, seal: mine };
    const one = encodeAnnouncement(init);
    const two = encodeAnnouncement(init);
    assert.notDeepEqual(one, two, "unlinkable: fresh bytes each time");
    const r = decodeAnnouncement(one, mine);
    assert.ok(r.ok && r.announcement.deviceId === A);
    assert.deepEqual(decodeAnnouncement(one, theirs), { ok: false, reason: "anonymous" });
    const moved = one.slice();
    moved[25] ^= 1; // another port, same sealed id: the seal is bound to the header
    assert.deepEqual(decodeAnnouncement(moved, mine), { ok: false, reason: "anonymous" });
    // A clear id (anyone can forge one) is ignored by a device with an account.
    const clear = encodeAnnouncement({ ...init, seal: undefined });
    assert.ok(decodeAnnouncement(clear).ok);
    assert.deepEqual(decodeAnnouncement(clear, mine), { ok: false, reason: "anonymous" });
  });
});

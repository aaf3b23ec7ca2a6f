import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import process from "node:process";
import { Buffer } from "node:buffer";
import { nodeCrypto } from "../../../platform/crypto.ts";
import { seededCrypto } from "../../../tests/harness/crypto.ts";
import { type CryptoSuite, equalBytes } from "./crypto.ts";
import {
  type Identity,
  JoinHandshake,
  Kind,
  SecureHandshake,
  type SecureOptions,
  type Step,
  type TrustView,
} from "./secure.ts";
import { RecordOpener, RecordSealer } from "../record.ts";
import vector from "../../../tests/vectors/handshake.json" with { type: "json" };

const D_ID = "02:00:00:00:00:0D";
const A_ID = "02:00:00:00:00:0A";

function identity(c: CryptoSuite, id: string): Identity {
  const k = c.ed25519();
  return { id, publicKey: k.publicKey, privateKey: k.privateKey };
}

/** A trust store in memory. */
class Trust implements TrustView {
  pins = new Map<string, Uint8Array>();
  pairs = new Set<string>();
  pinned(id: string): Uint8Array | undefined {
    return this.pins.get(id);
  }
  paired(id: string): boolean {
    return this.pairs.has(id);
  }
  anyPaired(): boolean {
    return this.pairs.size > 0;
  }
  pin(id: string, key: Uint8Array): void {
    this.pins.set(id, key);
  }
  pair(id: string, key: Uint8Array): void {
    this.pins.set(id, key);
    this.pairs.add(id);
  }
  refused = new Set<string>();
  revoked(id: string): boolean {
    return this.refused.has(id);
  }
}

interface Side {
  hs: SecureHandshake;
  trust: Trust;
  id: Identity;
}

function side(
  c: CryptoSuite,
  role: "dialer" | "acceptor",
  id: Identity,
  extra: Partial<SecureOptions> = {},
): Side {
  const trust = (extra.trust as Trust | undefined) ?? new Trust();
  const hs = new SecureHandshake(role, {
    crypto: c,
    identity: id,
    nonce: `${role}-n`,
    trust,
    ...extra,
  });
  return { hs, trust, id };
}

/** Run a handshake to the end; the acceptor accepts whatever it proves. */
function run(d: Side, a: Side, tamper: (m: Uint8Array, i: number) => Uint8Array = (m) => m) {
  const msgs: Uint8Array[] = [];
  const steps: { d: Step[]; a: Step[] } = { d: [], a: [] };
  let toA: Uint8Array | undefined = d.hs.start();
  for (let i = 0; i < 8 && toA !== undefined; i++) {
    msgs.push(toA);
    let s = a.hs.handle(tamper(toA, msgs.length - 1));
    steps.a.push(s);
    if (s.proven) {
      s = a.hs.accept();
      steps.a.push(s);
    }
    if (s.send === undefined) break;
    msgs.push(s.send);
    const r = d.hs.handle(tamper(s.send, msgs.length - 1));
    steps.d.push(r);
    toA = r.send;
  }
  const done = (list: Step[]) => list.find((s) => s.done)?.done;
  const error = (list: Step[]) => list.find((s) => s.error)?.error;
  return {
    msgs,
    dDone: done(steps.d),
    aDone: done(steps.a),
    dErr: error(steps.d),
    aErr: error(steps.a),
  };
}

const crypto = nodeCrypto();
const ACCOUNT = new Uint8Array(32).fill(7);
const OTHER = new Uint8Array(32).fill(8);

describe("secure handshake", () => {
  it("two devices of one account prove who they are and agree on keys", () => {
    const d = side(crypto, "dialer", identity(crypto, D_ID), { account: ACCOUNT, expect: A_ID });
    const a = side(crypto, "acceptor", identity(crypto, A_ID), { account: ACCOUNT });
    const r = run(d, a);
    assert.ok(r.dDone && r.aDone, JSON.stringify([r.dErr, r.aErr]));
    assert.equal(r.dDone.peer.id, A_ID);
    assert.equal(r.aDone.peer.id, D_ID);
    assert.equal(r.dDone.peer.mode, "account");
    assert.ok(r.dDone.peer.fresh && r.aDone.peer.fresh, "first meeting: keys to pin");
    assert.ok(equalBytes(r.aDone.peer.publicKey, d.id.publicKey));
    assert.equal(r.aDone.peer.nonce, "dialer-n");
    assert.ok(equalBytes(r.dDone.keys.tx.key, r.aDone.keys.rx.key));
    assert.ok(equalBytes(r.dDone.keys.rx.iv, r.aDone.keys.tx.iv));
    assert.ok(!equalBytes(r.dDone.keys.tx.key, r.dDone.keys.rx.key), "one key per direction");
    assert.ok(equalBytes(r.dDone.keys.joinSecret, r.aDone.keys.joinSecret));
    // Records flow both ways with those keys.
    const s = new RecordSealer(crypto, r.dDone.keys.tx, 0);
    const got: Uint8Array[] = [];
    assert.equal(
      new RecordOpener(crypto, r.aDone.keys.rx, 0).push(
        s.seal(new Uint8Array([1, 2]), 0),
        (p) => got.push(p.slice()),
        0,
      ),
      undefined,
    );
    assert.deepEqual(got, [new Uint8Array([1, 2])]);
    // Nothing identifying crosses in the clear: ids and keys are sealed.
    const wire = new Uint8Array(r.msgs.flatMap((m) => [...m]));
    const hex = Buffer.from(wire).toString("hex");
    for (const secret of [d.id.publicKey, a.id.publicKey, new Uint8Array([2, 0, 0, 0, 0, 0x0d])]) {
      assert.ok(!hex.includes(Buffer.from(secret).toString("hex")));
    }
  });

  it("refuses a device of another account, or of none", () => {
    for (const account of [OTHER, undefined]) {
      const d = side(crypto, "dialer", identity(crypto, D_ID), { account });
      const a = side(crypto, "acceptor", identity(crypto, A_ID), { account: ACCOUNT });
      const r = run(d, a);
      assert.equal(r.aDone, undefined);
      assert.equal(r.aErr?.reason, "account");
      assert.equal(r.dErr?.reason, "account");
      assert.equal(r.dErr?.remote, true);
      assert.equal(r.msgs.length, 2, "refused at once, before anything is proven");
    }
  });

  it("refuses a stolen id: the right id with another key, on both sides", () => {
    const victim = identity(crypto, D_ID);
    const thief = identity(crypto, D_ID);
    const trust = new Trust();
    trust.pins.set(D_ID, victim.publicKey);
    const d = side(crypto, "dialer", thief, { account: ACCOUNT });
    const a = side(crypto, "acceptor", identity(crypto, A_ID), { account: ACCOUNT, trust });
    const r = run(d, a);
    assert.equal(r.aErr?.reason, "clash");
    assert.equal(r.dErr?.reason, "clash", "the thief is told");
    // As acceptor, the thief cannot pose as the device the dialer knows.
    const dTrust = new Trust();
    const realA = identity(crypto, A_ID);
    dTrust.pins.set(A_ID, realA.publicKey);
    const d2 = side(crypto, "dialer", identity(crypto, D_ID), { account: ACCOUNT, trust: dTrust });
    const fakeA = side(crypto, "acceptor", identity(crypto, A_ID), { account: ACCOUNT });
    const r2 = run(d2, fakeA);
    assert.equal(r2.dErr?.reason, "clash");
    assert.equal(r2.dDone, undefined);
  });

  it("reaches only the device it dials: a forged address ends in a failed dial", () => {
    const d = side(crypto, "dialer", identity(crypto, D_ID), { account: ACCOUNT, expect: A_ID });
    const other = side(crypto, "acceptor", identity(crypto, "02:00:00:00:00:0E"), {
      account: ACCOUNT,
    });
    const r = run(d, other);
    assert.equal(r.dErr?.reason, "identity");
    assert.match(r.dErr!.message, /expected 02:00:00:00:00:0A but reached 02:00:00:00:00:0E/);
  });

  it("refuses a replayed handshake and any changed byte", () => {
    const dId = identity(crypto, D_ID);
    const aId = identity(crypto, A_ID);
    const first = run(
      side(crypto, "dialer", dId, { account: ACCOUNT }),
      side(crypto, "acceptor", aId, { account: ACCOUNT }),
    );
    assert.ok(first.aDone);
    // Replay the dialer's messages to a fresh acceptor: M1 gets a new
    // response, the old M3 does not open under it.
    const a = side(crypto, "acceptor", aId, { account: ACCOUNT });
    assert.ok(a.hs.handle(first.msgs[0]).send);
    const replay = a.hs.handle(first.msgs[2]);
    assert.equal(replay.error?.reason, "identity");
    // Flip one bit anywhere in any message: the handshake fails, never throws.
    for (let m = 0; m < 3; m++) {
      for (let i = 0; i < first.msgs[m].length; i += 5) {
        const r = run(
          side(crypto, "dialer", dId, { account: ACCOUNT }),
          side(crypto, "acceptor", aId, { account: ACCOUNT }),
          (msg, k) => {
            if (k !== m) return msg;
            const bad = msg.slice();
            bad[i] ^= 1;
            return bad;
          },
        );
        assert.ok(!(r.dDone && r.aDone), `message ${m} byte ${i}`);
      }
    }
  });

  it("refuses a downgrade: changing the offered ciphers or capabilities breaks the proof", () => {
    const r = run(
      side(crypto, "dialer", identity(crypto, D_ID), { account: ACCOUNT }),
      side(crypto, "acceptor", identity(crypto, A_ID), { account: ACCOUNT }),
      (m, k) => {
        if (k !== 0) return m;
        const bad = m.slice();
        bad[8] = 0; // "nothing is fast here"
        return bad;
      },
    );
    assert.equal(r.dDone, undefined);
    assert.ok(r.dErr !== undefined || r.aErr !== undefined);
  });

  it("a truncated message at any length fails cleanly", () => {
    const first = run(
      side(crypto, "dialer", identity(crypto, D_ID), { account: ACCOUNT }),
      side(crypto, "acceptor", identity(crypto, A_ID), { account: ACCOUNT }),
    );
    for (let m = 0; m < 3; m++) {
      for (let n = 0; n < first.msgs[m].length; n++) {
        const r = run(
          side(crypto, "dialer", identity(crypto, D_ID), { account: ACCOUNT }),
          side(crypto, "acceptor", identity(crypto, A_ID), { account: ACCOUNT }),
          (msg, k) => k === m ? msg.subarray(0, n) : msg,
        );
        assert.equal(r.aDone && r.dDone, undefined, `message ${m} cut at ${n}`);
      }
    }
  });

  it("paired devices without an account trust each other, and only each other", () => {
    const dId = identity(crypto, D_ID);
    const aId = identity(crypto, A_ID);
    const dTrust = new Trust();
    dTrust.pins.set(A_ID, aId.publicKey);
    dTrust.pairs.add(A_ID);
    const aTrust = new Trust();
    aTrust.pins.set(D_ID, dId.publicKey);
    aTrust.pairs.add(D_ID);
    const r = run(
      side(crypto, "dialer", dId, { trust: dTrust }),
      side(crypto, "acceptor", aId, { trust: aTrust }),
    );
    assert.equal(r.dDone?.peer.mode, "paired");
    assert.equal(r.aDone?.peer.fresh, false);
    // A stranger (no account, not paired) is refused by the same acceptor.
    const stranger = run(
      side(crypto, "dialer", identity(crypto, "02:00:00:00:00:0F"), {}),
      side(crypto, "acceptor", aId, { trust: aTrust }),
    );
    assert.equal(stranger.aErr?.reason, "account");
  });

  it("refuses a revoked device even within the account", () => {
    const trust = new Trust();
    trust.refused.add(D_ID);
    const r = run(
      side(crypto, "dialer", identity(crypto, D_ID), { account: ACCOUNT }),
      side(crypto, "acceptor", identity(crypto, A_ID), { account: ACCOUNT, trust }),
    );
    assert.equal(r.aErr?.reason, "identity");
    assert.match(r.aErr!.message, /revoked/);
  });

  it("a device that dials itself is told so", () => {
    const me = identity(crypto, A_ID);
    const r = run(
      side(crypto, "dialer", me, { account: ACCOUNT }),
      side(crypto, "acceptor", me, { account: ACCOUNT }),
    );
    assert.ok(r.dErr?.reason === "self" || r.aErr?.reason === "self");
  });

  it("a further channel joins with the link's secret, never in the clear", () => {
    const r = run(
      side(crypto, "dialer", identity(crypto, D_ID), { account: ACCOUNT }),
      side(crypto, "acceptor", identity(crypto, A_ID), { account: ACCOUNT }),
    );
    const link = { ...r.dDone!.keys, cipher: r.dDone!.keys.tx.cipher };
    const j = new JoinHandshake("dialer", crypto, link);
    const j1 = j.start();
    assert.equal(j1[0], Kind.JOIN);
    assert.ok(equalBytes(JoinHandshake.linkOf(j1)!, r.aDone!.keys.linkId));
    const acc = new JoinHandshake("acceptor", crypto);
    const answer = acc.answer(j1, { joinSecret: r.aDone!.keys.joinSecret, cipher: link.cipher })!;
    const keys = j.finish(answer.send)!;
    assert.ok(equalBytes(keys.tx.key, answer.keys.rx.key));
    assert.ok(!equalBytes(keys.tx.key, r.dDone!.keys.tx.key), "its own keys");
    // Without the secret: refused.
    const forged = new JoinHandshake("dialer", crypto, { ...link, joinSecret: new Uint8Array(32) });
    assert.equal(
      new JoinHandshake("acceptor", crypto).answer(forged.start(), {
        joinSecret: r.aDone!.keys.joinSecret,
        cipher: link.cipher,
      }),
      undefined,
    );
    const tampered = answer.send.slice();
    tampered[5] ^= 1;
    assert.equal(new JoinHandshake("dialer", crypto, link).finish(tampered), undefined);
  });

  it("matches its golden vector (tests/vectors/handshake.json)", () => {
    const c = seededCrypto("linkweave handshake vector");
    const dId = identity(c, D_ID);
    const aId = identity(c, A_ID);
    const r = run(
      side(c, "dialer", dId, { account: ACCOUNT }),
      side(c, "acceptor", aId, { account: ACCOUNT }),
    );
    const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
    const got = {
      account: hex(ACCOUNT),
      dialer: { id: D_ID, publicKey: hex(dId.publicKey) },
      acceptor: { id: A_ID, publicKey: hex(aId.publicKey) },
      messages: r.msgs.map(hex),
      dialerTx: { key: hex(r.dDone!.keys.tx.key), iv: hex(r.dDone!.keys.tx.iv) },
      acceptorTx: { key: hex(r.aDone!.keys.tx.key), iv: hex(r.aDone!.keys.tx.iv) },
      linkId: hex(r.dDone!.keys.linkId),
    };
    if (process.env.LINKWEAVE_WRITE_VECTORS === "1") {
      writeFileSync("tests/vectors/handshake.json", JSON.stringify(got, null, 2) + "\n");
    }
    assert.deepEqual(got, vector);
  });
});

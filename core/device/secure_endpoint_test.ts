/**
 * Devices with the authenticated handshake and encrypted records, on the
 * virtual network: who gets in, who does not, and what an attacker on the
 * wire can do.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ErrorCode } from "../error_codes.ts";
import { equalBytes, TAG_LENGTH } from "../proto/handshake/crypto.ts";
import { MAX_RECORD_PLAINTEXT, RECORD_HEADER, SEAL_RECORD_PLAINTEXT } from "../proto/record.ts";
import { linkTo, VirtualNet } from "../../tests/harness/virtual_net.ts";

const A = "02:00:00:00:00:0A";
const B = "02:00:00:00:00:0B";
const ACCOUNT = new Uint8Array(32).fill(1);
const OTHER = new Uint8Array(32).fill(2);

function device(net: VirtualNet, id: string, account: Uint8Array | undefined, newKey = false) {
  const s = net.secure(id, account, newKey);
  return net.add(id, { security: s.security, trust: s.trust });
}

function send(net: VirtualNet, from: ReturnType<typeof device>, bytes: number[]) {
  const { link, stream } = from.of("opening").at(-1)!;
  assert.ok(from.ep.send(link, stream, new Uint8Array(bytes)));
  net.run(net.now + 200);
}

describe("secure devices on a virtual network", () => {
  it("two devices of one account connect, pin each other's keys, and exchange data", () => {
    const net = new VirtualNet();
    const a = device(net, A, ACCOUNT);
    const b = device(net, B, ACCOUNT);
    net.connect(a, B, "svc");
    net.run(net.now + 1000);
    assert.equal(a.of("opened").length, 1);
    send(net, a, [1, 2, 3]);
    assert.deepEqual([...b.received.values()][0], [new Uint8Array([1, 2, 3])]);
    assert.ok(a.trust!.pinned(B) !== undefined && b.trust!.pinned(A) !== undefined);
  });

  it("a device of another account, or of none, cannot connect, and learns at once", () => {
    for (const account of [OTHER, undefined]) {
      const net = new VirtualNet();
      const a = device(net, A, ACCOUNT);
      const b = device(net, B, account);
      net.connect(b, A, "svc", { deadline: 10_000 });
      net.run(2000);
      const f = b.of("connectFailed");
      assert.equal(f.length, 1, "failed before its deadline");
      assert.equal(f[0].code, ErrorCode.INTERNAL_ERROR);
      assert.doesNotMatch(f[0].message, /server/, "no hint about servers");
      assert.ok(b.warnings.some((w) => /account/.test(w)), b.warnings.join());
      assert.ok(a.warnings.some((w) => /account/.test(w)), a.warnings.join());
      assert.equal(a.ep.links.size, 0);
      assert.equal(a.of("open").length, 0, "no stream reached the acceptor");
    }
  });

  it("an attacker with a stolen id but its own key gets nothing, and the real device keeps its link", () => {
    const net = new VirtualNet();
    const a = device(net, A, ACCOUNT);
    const real = device(net, B, ACCOUNT);
    net.connect(real, A, "svc");
    net.run(net.now + 1000);
    const live = linkTo(a, B)!;
    const thief = device(net, B, ACCOUNT, true);
    net.route(B, real);
    net.connect(thief, A, "svc", { deadline: net.now + 5000 });
    net.run(net.now + 6000);
    assert.equal(thief.of("opened").length, 0);
    assert.match(thief.of("connectFailed")[0].message, /clash/);
    assert.ok(a.warnings.some((w) => /clash|another key/.test(w)), a.warnings.join());
    assert.equal(linkTo(a, B), live, "the live link survives");
    assert.ok(equalBytes(a.trust!.pinned(B)!, net.secure(B, ACCOUNT).security.identity.publicKey));
    // The thief posing as A, to a device that knows A, is refused too.
    const c = device(net, "02:00:00:00:00:0C", ACCOUNT);
    c.trust!.pin(A, net.secure(A, ACCOUNT).security.identity.publicKey);
    const fakeA = device(net, A, ACCOUNT, true);
    net.route(A, fakeA);
    net.connect(c, A, "svc", { deadline: net.now + 5000 });
    net.run(net.now + 6000);
    assert.equal(c.of("opened").length, 0);
    assert.match(c.of("connectFailed")[0].message, /another key|clash/);
  });

  it("a restarted device (same key, new runtime) replaces its link at once", () => {
    const net = new VirtualNet();
    const a = device(net, A, ACCOUNT);
    const b1 = device(net, B, ACCOUNT);
    net.connect(b1, A, "svc");
    net.run(net.now + 500);
    net.pull(b1); // power loss: A is not told
    const b2 = device(net, B, ACCOUNT);
    net.connect(b2, A, "svc");
    // Far less than the keep-alive timeout (5 s) the old link would need to die.
    net.run(net.now + 100);
    assert.equal(b2.of("opened").length, 1, "without waiting for the old link to time out");
    assert.equal(linkTo(a, B)!.nonce, b2.ep.nonce);
  });

  it("a changed byte on the wire closes the channel; nothing forged is delivered", () => {
    const net = new VirtualNet();
    const a = device(net, A, ACCOUNT);
    const b = device(net, B, ACCOUNT);
    net.connect(a, B, "svc");
    net.run(net.now + 1000);
    let flips = 0;
    net.tamper = (from, _to, bytes) => {
      if (from !== a || bytes.length < 30) return bytes;
      flips++;
      const bad = bytes.slice();
      bad[bad.length - 20] ^= 0x10;
      return bad;
    };
    send(net, a, new Array(100).fill(7));
    assert.ok(flips > 0);
    assert.equal(b.received.size, 0, "the forged record was not delivered");
    assert.ok(b.warnings.some((w) => /does not authenticate/.test(w)), b.warnings.join());
    assert.equal(b.of("linkDown").length, 1);
  });

  it("seals bulk into records sized by the channel's measured rate, none over the limit", () => {
    const net = new VirtualNet();
    const a = device(net, A, ACCOUNT);
    const b = device(net, B, ACCOUNT);
    net.connect(a, B, "svc");
    net.run(net.now + 1000);
    const records: number[] = [];
    net.tamper = (from, _to, bytes) => {
      for (let at = 0; from === a && at + RECORD_HEADER <= bytes.length;) {
        const body = ((bytes[at] & 0x7f) << 24 | bytes[at + 1] << 16 | bytes[at + 2] << 8 |
          bytes[at + 3]) - TAG_LENGTH;
        records.push(body);
        at += RECORD_HEADER + body + TAG_LENGTH;
      }
      return bytes;
    };
    const { link, stream } = a.of("opening").at(-1)!;
    let sent = 0;
    for (let round = 0; round < 20; round++) {
      while (a.ep.send(link, stream, new Uint8Array(64 * 1024).fill(round))) sent += 64 * 1024;
      net.run(net.now + 50);
    }
    net.run(net.now + 500);
    const got = [...b.received.values()][0].reduce((n, m) => n + m.length, 0);
    assert.equal(got, sent, "every byte arrived");
    assert.ok(Math.max(...records) <= MAX_RECORD_PLAINTEXT, `largest ${Math.max(...records)}`);
    assert.ok(
      records.some((n) => n > SEAL_RECORD_PLAINTEXT),
      `records over ${SEAL_RECORD_PLAINTEXT} B once the rate is known (largest ${
        Math.max(...records)
      })`,
    );
  });

  it("a replayed record closes the channel, and is not delivered twice", () => {
    const net = new VirtualNet();
    const a = device(net, A, ACCOUNT);
    const b = device(net, B, ACCOUNT);
    net.connect(a, B, "svc");
    net.run(net.now + 1000);
    let last: Uint8Array | undefined;
    net.tamper = (from, _to, bytes) => {
      if (from !== a) return bytes;
      if (last !== undefined && bytes.length > 30) {
        const twice = new Uint8Array([...last, ...bytes]);
        last = undefined;
        return twice;
      }
      if (bytes.length > 30) last = bytes;
      return bytes;
    };
    send(net, a, [1]);
    send(net, a, [2]);
    const got = [...b.received.values()][0] ?? [];
    assert.deepEqual(got.map((m) => m[0]), [1], "the replay was refused, not delivered");
    assert.ok(b.warnings.some((w) => /does not authenticate/.test(w)));
  });

  it("closing a device seals its last batch too: the peer sees every message, then goodbye", () => {
    const net = new VirtualNet();
    const a = device(net, A, ACCOUNT);
    const b = device(net, B, ACCOUNT);
    net.connect(a, B, "svc");
    net.run(net.now + 1000);
    const { link, stream } = a.of("opening")[0];
    for (let i = 0; i < 50; i++) assert.ok(a.ep.send(link, stream, new Uint8Array(500).fill(i)));
    a.ep.close(net.now);
    net.run(net.now + 1000);
    assert.deepEqual([...b.received.values()][0].map((m) => m[0]), [...Array(50).keys()]);
    assert.match(b.of("linkDown")[0].message, /closed by/);
    assert.deepEqual(b.warnings, []);
  });

  it("a plain (unauthenticated) device cannot downgrade a secure one", () => {
    const net = new VirtualNet();
    const a = device(net, A, ACCOUNT);
    const plain = net.add(B);
    net.connect(plain, A, "svc", { deadline: 3000 });
    net.run(5000);
    assert.equal(plain.of("opened").length, 0);
    assert.ok(a.warnings.some((w) => /unauthenticated/.test(w)), a.warnings.join());
    assert.equal(a.ep.links.size, 0);
  });

  it("pairing with the shown code makes two devices of different accounts trust each other", () => {
    const net = new VirtualNet();
    const a = device(net, A, ACCOUNT);
    const b = device(net, B, OTHER);
    a.ep.offerPairing("offer", "314159", net.now + 60_000);
    net.pair(b, a, "314159");
    net.run(net.now + 2000);
    assert.deepEqual(a.of("paired").map((e) => [e.owner, e.id]), [["offer", B]]);
    assert.deepEqual(b.of("paired").map((e) => e.id), [A]);
    assert.ok(a.trust!.paired(B) && b.trust!.paired(A));
    assert.equal(net.channels(a), 0, "the pairing channel is closed");
    // Now they connect, though their accounts differ.
    net.connect(b, A, "svc");
    net.run(net.now + 1000);
    assert.equal(b.of("opened").length, 1);
    send(net, b, [9]);
    assert.deepEqual([...a.received.values()][0], [new Uint8Array([9])]);
  });

  it("a wrong code pairs nothing and uses up the offer; an expired offer says so", () => {
    const net = new VirtualNet();
    const a = device(net, A, ACCOUNT);
    const b = device(net, B, OTHER);
    a.ep.offerPairing("offer", "111111", net.now + 60_000);
    net.pair(b, a, "111112");
    net.run(net.now + 2000);
    assert.equal(a.of("paired").length + b.of("paired").length, 0);
    assert.equal(a.of("pairingFailed").length, 1);
    assert.equal(b.of("pairingFailed").length, 1);
    // The offer is gone: even the right code is refused now.
    net.pair(b, a, "111111");
    net.run(net.now + 2000);
    assert.equal(b.of("paired").length, 0);
    assert.match(b.of("pairingFailed").at(-1)!.message, /no pairing offer|stopped/);
    assert.ok(!a.trust!.paired(B) && !b.trust!.paired(A));
    a.ep.offerPairing("late", "222222", net.now + 1000);
    net.run(net.now + 2000);
    assert.match(a.of("pairingFailed").at(-1)!.message, /expired/);
  });
});

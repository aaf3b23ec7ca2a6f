import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ErrorCode } from "../error_codes.ts";
import { linkTo, VirtualNet } from "../../tests/harness/virtual_net.ts";
import { Link } from "../proto/link/mod.ts";
import { createCodec } from "../../wasm/mod.ts";
import { nativeCrc } from "../../platform/crc.ts";

const A = "00:00:00:00:00:0A";
const B = "00:00:00:00:00:0B";
const C = "00:00:00:00:00:0C";

describe("device endpoint on a virtual network", () => {
  it("connects to a peer's service and carries data both ways", () => {
    const net = new VirtualNet();
    const a = net.add(A);
    const b = net.add(B);
    const req = net.connect(a, B, "echo");
    net.run(net.now + 1000);
    const opened = a.of("opened");
    assert.equal(opened.length, 1);
    assert.equal(opened[0].owner, req);
    const opening = a.of("opening")[0];
    assert.ok(a.ep.send(opening.link, opening.stream, new Uint8Array([1, 2, 3])));
    net.run(net.now + 1000);
    const got = [...b.received.values()][0];
    assert.deepEqual(got, [new Uint8Array([1, 2, 3])]);
    assert.equal(b.of("open")[0].name, "echo");
  });

  it("simultaneous dial leaves one link and one channel on each side", () => {
    const net = new VirtualNet();
    const a = net.add(A);
    const b = net.add(B);
    net.connect(a, B, "x");
    net.connect(b, A, "y");
    net.run(net.now + 2000);
    assert.equal(a.of("opened").length, 1);
    assert.equal(b.of("opened").length, 1);
    assert.equal(a.ep.links.size, 1);
    assert.equal(b.ep.links.size, 1);
    assert.equal(linkTo(a, B)!.channels.size, 1);
    assert.equal(linkTo(b, A)!.channels.size, 1);
    assert.equal(net.channels(a), 1, "the refused channel is closed");
    assert.equal(net.channels(b), 1);
    assert.deepEqual(a.warnings, []);
    assert.deepEqual(b.warnings, []);
  });

  it("accepts a peer that restarted after its process exited", () => {
    const net = new VirtualNet();
    const a = net.add(A);
    const b1 = net.add(B);
    net.connect(b1, A, "svc");
    net.run(net.now + 1000);
    assert.equal(b1.of("opened").length, 1);
    net.kill(b1);
    net.run(net.now + 100);
    assert.equal(a.ep.links.size, 0, "A saw the channel close");
    const b2 = net.add(B);
    net.connect(b2, A, "svc");
    net.run(net.now + 1000);
    assert.equal(b2.of("opened").length, 1);
    assert.equal(linkTo(a, B)!.nonce, b2.ep.nonce);
    assert.deepEqual(a.warnings, []);
  });

  it("accepts a peer that lost power and came back once its old link is dead", () => {
    const keepAlive = 2000;
    const net = new VirtualNet({ endpoint: { link: { keepAliveTimeout: keepAlive } } });
    const a = net.add(A);
    const b1 = net.add(B);
    net.connect(b1, A, "svc");
    net.run(net.now + 500);
    net.pull(b1);
    const b2 = net.add(B);
    const started = net.now;
    net.connect(b2, A, "svc", { deadline: net.now + 10_000 });
    net.run(net.now + 10_000);
    const opened = b2.of("opened");
    assert.equal(opened.length, 1, "the restarted device connects before its deadline");
    assert.ok(net.now - started >= 0);
    assert.equal(linkTo(a, B)!.nonce, b2.ep.nonce);
    assert.equal(a.of("linkDown").length, 1, "the dead link was dropped");
  });

  it("refuses a real id clash on both sides and keeps the live link", () => {
    const net = new VirtualNet();
    const a = net.add(A);
    const b1 = net.add(B);
    net.connect(b1, A, "svc");
    net.run(net.now + 500);
    const live = linkTo(a, B)!;
    // A second runtime claims B while the first is alive and keeps talking.
    const b2 = net.add(B);
    net.route(B, b1);
    net.connect(b2, A, "svc", { deadline: net.now + 3000 });
    net.run(net.now + 4000);
    assert.equal(b2.of("opened").length, 0);
    assert.equal(b2.of("connectFailed")[0].code, ErrorCode.CONNECT_TIMEOUT);
    assert.match(b2.of("connectFailed")[0].message, /clash/);
    assert.ok(a.warnings.some((w) => /clash.*00:00:00:00:00:0B/.test(w)), a.warnings.join());
    assert.ok(b2.warnings.some((w) => /clash/.test(w)), b2.warnings.join());
    assert.equal(a.warnings.length, 1, "a clash is reported once, not per retry");
    assert.equal(linkTo(a, B), live, "the live link survives");
    assert.equal(b1.of("linkDown").length, 0);
  });

  it("a device dialling its own id fails at once", () => {
    const net = new VirtualNet();
    const a = net.add(A);
    net.connect(a, A, "svc");
    net.run(net.now + 10);
    const f = a.of("connectFailed");
    assert.equal(f.length, 1);
    assert.equal(f[0].code, ErrorCode.INTERNAL_ERROR);
    assert.match(f[0].message, /own id/);
    assert.equal(a.of("dial").length, 0);
  });

  it("an absent peer ends in 32390200 at the deadline, saying why", () => {
    const net = new VirtualNet();
    const a = net.add(A);
    net.connect(a, C, "svc", { deadline: 10_000 });
    net.run(9_999);
    assert.equal(a.of("connectFailed").length, 0);
    net.run(20_000);
    const f = a.of("connectFailed");
    assert.equal(f.length, 1);
    assert.equal(f[0].code, ErrorCode.CONNECT_TIMEOUT);
    assert.match(f[0].message, /timed out \(no address known for it\)/);
    assert.ok(a.of("dial").length > 10, "it kept retrying");
    assert.equal(a.ep.pollTimeout(), undefined, "nothing left to do");
  });

  it("a peer without the server rejects with its code", () => {
    const net = new VirtualNet();
    const a = net.add(A);
    const b = net.add(B);
    b.acceptor = () => ErrorCode.PEER_SERVER_NOT_STARTED;
    const req = net.connect(a, B, "nobody");
    net.run(net.now + 1000);
    assert.deepEqual(
      a.of("rejected").map((e) => [e.owner, e.code]),
      [[req, ErrorCode.PEER_SERVER_NOT_STARTED]],
    );
  });

  it("closing a device flushes queued data before the goodbye", () => {
    const net = new VirtualNet();
    const a = net.add(A);
    const b = net.add(B);
    net.connect(a, B, "bulk");
    net.run(net.now + 1000);
    const { link, stream } = a.of("opening")[0];
    const sent: number[] = [];
    for (let i = 0; i < 200; i++) {
      const m = new Uint8Array(1000).fill(i);
      assert.ok(a.ep.send(link, stream, m));
      sent.push(i);
    }
    a.ep.close(net.now);
    net.run(net.now + 1000);
    const got = [...b.received.values()][0].map((m) => m[0]);
    assert.deepEqual(got, sent);
    const down = b.of("linkDown");
    assert.equal(down.length, 1);
    assert.match(down[0].message, /closed by 00:00:00:00:00:0A/);
    assert.equal(net.channels(a), 0);
    assert.equal(net.channels(b), 0);
  });

  it("closes a channel that never finishes its handshake, and caps half-open channels", () => {
    const net = new VirtualNet();
    const a = net.add(A, { handshakeTimeout: 3000, maxHandshakes: 4 });
    // Channels that never say hello, opened straight on A's endpoint.
    for (let i = 1; i <= 6; i++) a.ep.handleChannel(1000 + i, { dialer: false }, net.now);
    assert.equal(a.ep.handshakes, 4);
    const dropped = [];
    for (let e = a.ep.pollEvent(); e; e = a.ep.pollEvent()) {
      if (e.type === "closeChannel") dropped.push(e.channel);
    }
    assert.deepEqual(dropped, [1001, 1002], "oldest first");
    a.ep.handleTimeout(2999);
    assert.equal(a.ep.handshakes, 4);
    a.ep.handleTimeout(3000);
    assert.equal(a.ep.handshakes, 0);
  });

  it("a channel of another profile skips the handshake and carries that profile's link", () => {
    // A stand-in profile: linkweave's own link, made by a factory, with no handshake.
    let made = 0;
    const codec = createCodec({ crc: nativeCrc() });
    const profiles = {
      test: (peer: string, now: number) => {
        made++;
        return new Link({ localId: peer === A ? B : A, peerId: peer, codec, now });
      },
    };
    const net = new VirtualNet({ endpoint: { profiles } });
    const a = net.add(A);
    const b = net.add(B);
    a.profileFor = () => "test";
    net.connect(a, B, "svc");
    net.run(net.now + 1000);
    assert.equal(made, 2, "one link per side, from the factory");
    assert.equal(a.of("opened").length, 1);
    assert.ok(!a.warnings.length && !b.warnings.length);
    const { link, stream } = a.of("opening")[0];
    assert.ok(a.ep.send(link, stream, new Uint8Array([5])));
    net.run(net.now + 100);
    assert.deepEqual([...b.received.values()][0], [new Uint8Array([5])]);
  });
});

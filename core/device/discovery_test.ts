import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import process from "node:process";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import {
  ANNOUNCEMENT_SIZE,
  ANSWER_DELAY,
  ANSWER_GAP,
  ANSWER_JITTER,
  decodeAnnouncement,
  DEFAULT_MAX_PEERS,
  type DiscoveredPeer,
  type Discovery,
  type DiscoveryEvent,
  DiscoveryMachine,
  type DiscoveryMachineOptions,
  DiscoveryTable,
  encodeAnnouncement,
  MAX_ANNOUNCEMENT_SIZE,
  MAX_TTL,
  randomNonce,
  shouldDiscover,
  startDiscovery,
} from "./discovery.ts";
import { ParameterError } from "../errors.ts";
import { testPlatform } from "../../tests/_discovery_peer.ts";
import { type Proc, run, waitFor } from "../../tests/_proc.ts";
import { RUNTIME } from "../../tests/harness/env.ts";

const A = "0A:00:00:00:00:01";
const B = "0A:00:00:00:00:02";
const C = "0A:00:00:00:00:03";
const NA = "000000000000000a";
const NB = "000000000000000b";
const NC = "000000000000000c";

function ann(deviceId: string, nonce: string, port = 4000, ttl = 3000, solicit = false) {
  return { deviceId, nonce, port, ttl, solicit };
}

describe("discovery wire format", () => {
  it("round-trips every field", () => {
    for (
      const a of [
        ann(A, NA, 1, 0),
        ann("FF:FF:FF:FF:FF:FF", "ffffffffffffffff", 65535, 0xffffffff, true),
        ann("00:00:00:00:00:00", "0000000000000000", 38470, 15000),
      ]
    ) {
      const bytes = encodeAnnouncement(a);
      assert.equal(bytes.length, ANNOUNCEMENT_SIZE);
      assert.deepEqual(decodeAnnouncement(bytes), a);
    }
  });

  it("has the documented layout", () => {
    const bytes = encodeAnnouncement({
      deviceId: "aa:bb:cc:dd:ee:ff",
      nonce: "0102030405060708",
      port: 0x1234,
      ttl: 0x01020304,
      solicit: true,
    });
    assert.deepEqual([...bytes], [
      0x4c,
      0x57,
      0x44,
      0x41,
      1,
      1,
      0xaa,
      0xbb,
      0xcc,
      0xdd,
      0xee,
      0xff,
      0x12,
      0x34,
      1,
      2,
      3,
      4,
      1,
      2,
      3,
      4,
      5,
      6,
      7,
      8,
    ]);
  });

  it("defaults: TTL 15 s, no solicit, id upper-cased", () => {
    const a = decodeAnnouncement(
      encodeAnnouncement({ deviceId: "0a:bc:00:00:00:01", nonce: NA, port: 9 }),
    );
    assert.deepEqual(a, ann("0A:BC:00:00:00:01", NA, 9, 15000, false));
  });

  it("encode rejects invalid fields with a ParameterError naming them", () => {
    const bad: Array<[Record<string, unknown>, RegExp]> = [
      [{ deviceId: "nope" }, /device id "nope"/],
      [{ nonce: "xyz" }, /nonce "xyz"/],
      [{ nonce: "000000000000000A" }, /nonce/],
      [{ port: 0 }, /port 0/],
      [{ port: 65536 }, /port 65536/],
      [{ port: 1.5 }, /port 1.5/],
      [{ ttl: -1 }, /TTL -1/],
      [{ ttl: 2 ** 32 }, /TTL/],
    ];
    for (const [patch, message] of bad) {
      assert.throws(
        () => encodeAnnouncement({ ...ann(A, NA), ...patch } as never),
        (e: unknown) => e instanceof ParameterError && e.code === 401 && message.test(e.message),
        JSON.stringify(patch),
      );
    }
  });

  it("decode rejects what is not a version-1 announcement, without throwing", () => {
    const good = encodeAnnouncement(ann(A, NA));
    const variant = (f: (b: Uint8Array) => void) => {
      const b = good.slice();
      f(b);
      return b;
    };
    assert.equal(decodeAnnouncement(good.subarray(0, ANNOUNCEMENT_SIZE - 1)), undefined);
    assert.equal(decodeAnnouncement(new Uint8Array(0)), undefined);
    assert.equal(decodeAnnouncement(variant((b) => (b[0] = 0x4d))), undefined); // magic
    assert.equal(decodeAnnouncement(variant((b) => (b[4] = 2))), undefined); // version
    assert.equal(decodeAnnouncement(variant((b) => (b[12] = b[13] = 0))), undefined); // port 0
    assert.equal(decodeAnnouncement(new Uint8Array(MAX_ANNOUNCEMENT_SIZE + 1)), undefined);
    const long = new Uint8Array(MAX_ANNOUNCEMENT_SIZE + 1);
    long.set(good);
    assert.equal(decodeAnnouncement(long), undefined); // oversized
    assert.equal(decodeAnnouncement("LWDA" as unknown as Uint8Array), undefined);
    assert.equal(decodeAnnouncement(null as unknown as Uint8Array), undefined);
  });

  it("decode ignores trailing bytes up to the size limit, and reserved flags", () => {
    const good = encodeAnnouncement(ann(A, NA));
    const ext = new Uint8Array(MAX_ANNOUNCEMENT_SIZE);
    ext.set(good);
    ext.fill(0xee, ANNOUNCEMENT_SIZE);
    ext[5] = 0xfe; // reserved bits set, solicit clear
    assert.deepEqual(decodeAnnouncement(ext), ann(A, NA));
  });

  it("decode reads a datagram at an offset in a larger buffer", () => {
    const buf = new Uint8Array(100);
    buf.set(encodeAnnouncement(ann(B, NB, 7)), 33);
    assert.deepEqual(decodeAnnouncement(buf.subarray(33, 33 + ANNOUNCEMENT_SIZE)), ann(B, NB, 7));
  });

  it("decode never throws on random bytes or mutated announcements", () => {
    let seed = 12345;
    const rnd = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
    const good = encodeAnnouncement(ann(A, NA));
    for (let i = 0; i < 20000; i++) {
      let b: Uint8Array;
      if (i % 2 === 0) {
        b = new Uint8Array(Math.floor(rnd() * 80));
        for (let j = 0; j < b.length; j++) b[j] = Math.floor(rnd() * 256);
      } else {
        b = good.slice(0, ANNOUNCEMENT_SIZE + Math.floor(rnd() * 8) - 4);
        b[Math.floor(rnd() * b.length)] = Math.floor(rnd() * 256);
      }
      const a = decodeAnnouncement(b);
      if (a !== undefined) {
        assert.match(a.deviceId, /^([0-9A-F]{2}:){5}[0-9A-F]{2}$/);
        assert.match(a.nonce, /^[0-9a-f]{16}$/);
        assert.ok(a.port >= 1 && a.port <= 65535);
      }
    }
  });

  it("randomNonce() gives 16 hex digits, different each time", () => {
    const seen = new Set<string>();
    for (let i = 0; i < 100; i++) seen.add(randomNonce());
    assert.equal(seen.size, 100);
    for (const n of seen) assert.match(n, /^[0-9a-f]{16}$/);
  });
});

describe("DiscoveryTable", () => {
  const me = { deviceId: A, nonce: NA };

  it("new, refresh, lookup (any case), peers", () => {
    const t = new DiscoveryTable(me);
    assert.equal(t.update(ann(B, NB, 4000), "10.0.0.2", 0), "new");
    assert.equal(t.update(ann(C, NC, 5000), "10.0.0.3", 0), "new");
    assert.equal(t.update(ann(B, NB, 4000), "10.0.0.2", 100), "refresh");
    assert.deepEqual(t.lookup(B.toLowerCase()), {
      deviceId: B,
      host: "10.0.0.2",
      port: 4000,
      nonce: NB,
    });
    assert.equal(t.lookup("0A:00:00:00:00:09"), undefined);
    assert.equal(t.lookup("garbage"), undefined);
    assert.deepEqual(t.peers().map((p) => p.deviceId), [B, C]);
    assert.equal(t.size, 2);
    assert.ok(Object.isFrozen(t.lookup(B)));
  });

  it("changed: a new nonce (restart), host or port", () => {
    const t = new DiscoveryTable(me);
    t.update(ann(B, NB, 4000), "10.0.0.2", 0);
    assert.equal(t.update(ann(B, NB, 4000), "10.0.0.9", 1), "changed");
    assert.equal(t.lookup(B)?.host, "10.0.0.9");
    assert.equal(t.update(ann(B, NB, 4001), "10.0.0.9", 2), "changed");
    assert.equal(t.lookup(B)?.port, 4001);
    assert.equal(t.update(ann(B, "00000000000000bb", 4001), "10.0.0.9", 3), "changed");
    assert.equal(t.lookup(B)?.nonce, "00000000000000bb");
    assert.equal(t.update(ann(B, "00000000000000bb", 4001), "10.0.0.9", 4), "refresh");
  });

  it("self and clash: this device's id", () => {
    const t = new DiscoveryTable({ deviceId: A.toLowerCase(), nonce: NA });
    assert.equal(t.update(ann(A, NA), "10.0.0.1", 0), "self");
    assert.equal(t.update(ann(A, "00000000000000ff"), "10.0.0.7", 0), "clash");
    assert.equal(t.update(ann(A, "00000000000000ff", 4000, 0), "10.0.0.7", 0), "ignored");
    assert.equal(t.size, 0);
  });

  it("duplicate: an id's earlier nonce again means two live runtimes; the entry keeps the current one", () => {
    const t = new DiscoveryTable(me);
    t.update(ann(B, NB, 4000), "10.0.0.2", 0);
    assert.equal(t.update(ann(B, "00000000000000bb", 4444), "10.0.0.4", 1), "changed");
    assert.equal(t.update(ann(B, NB, 4000), "10.0.0.2", 2), "duplicate");
    assert.deepEqual(t.lookup(B), {
      deviceId: B,
      host: "10.0.0.4",
      port: 4444,
      nonce: "00000000000000bb",
    });
  });

  it("gone: a goodbye removes a known peer, only with its current nonce", () => {
    const t = new DiscoveryTable(me);
    t.update(ann(B, NB), "10.0.0.2", 0);
    assert.equal(t.update(ann(B, "00000000000000bb", 4000, 0), "10.0.0.2", 1), "ignored");
    assert.equal(t.update(ann(C, NC, 4000, 0), "10.0.0.3", 1), "ignored");
    assert.equal(t.update(ann(B, NB, 4000, 0), "10.0.0.2", 2), "gone");
    assert.equal(t.lookup(B), undefined);
  });

  it("expire() removes peers at their TTL; nextExpiry() says when", () => {
    const t = new DiscoveryTable(me);
    assert.equal(t.nextExpiry(), undefined);
    t.update(ann(B, NB, 4000, 3000), "10.0.0.2", 0);
    t.update(ann(C, NC, 4000, 1000), "10.0.0.3", 500);
    assert.equal(t.nextExpiry(), 1500);
    assert.deepEqual(t.expire(1499), []);
    assert.deepEqual(t.expire(1500), [C]);
    t.update(ann(B, NB, 4000, 3000), "10.0.0.2", 2000); // refreshed
    assert.equal(t.nextExpiry(), 5000);
    assert.deepEqual(t.expire(4999), []);
    assert.deepEqual(t.expire(5000), [B]);
    assert.equal(t.size, 0);
  });

  it("caps a peer's TTL at MAX_TTL", () => {
    const t = new DiscoveryTable(me);
    t.update(ann(B, NB, 4000, 0xffffffff), "10.0.0.2", 0);
    assert.equal(t.nextExpiry(), MAX_TTL);
  });

  it("holds at most maxPeers peers (default 256); more new ones are ignored", () => {
    const t = new DiscoveryTable({ ...me, maxPeers: 2 });
    assert.equal(t.update(ann(B, NB), "10.0.0.2", 0), "new");
    assert.equal(t.update(ann(C, NC), "10.0.0.3", 0), "new");
    assert.equal(t.update(ann("0A:00:00:00:00:04", NC), "10.0.0.4", 0), "ignored");
    assert.equal(t.update(ann(B, NB), "10.0.0.2", 1), "refresh"); // known ones still update
    const big = new DiscoveryTable(me);
    for (let i = 0; i < DEFAULT_MAX_PEERS + 10; i++) {
      const id = `0B:00:00:00:${(i >> 8).toString(16).padStart(2, "0")}:${
        (i & 255).toString(16).padStart(2, "0")
      }`.toUpperCase();
      big.update(ann(id, NB), "10.0.0.2", 0);
    }
    assert.equal(big.size, DEFAULT_MAX_PEERS);
  });
});

/** Machines on a virtual network: every datagram reaches every machine (loopback too). */
class Net {
  now = 0;
  machines = new Map<string, { m: DiscoveryMachine; host: string; events: DiscoveryEvent[] }>();
  sent: Array<{ at: number; from: string; bytes: Uint8Array }> = [];
  #inFlight: Array<{ at: number; from: string; bytes: Uint8Array }> = [];
  latency = 1;

  add(name: string, host: string, options: Partial<DiscoveryMachineOptions> & { id: string }) {
    const m = new DiscoveryMachine({
      deviceId: options.id,
      nonce: options.nonce ?? randomNonce(),
      port: options.port ?? 4000,
      interval: options.interval,
      steadyInterval: options.steadyInterval,
      random: options.random ?? (() => 0.5),
    }, this.now);
    this.machines.set(name, { m, host, events: [] });
    this.#pump();
    return m;
  }

  remove(name: string) {
    this.machines.delete(name);
  }

  #pump() {
    for (const [name, x] of this.machines) {
      for (let b = x.m.pollTransmit(); b !== undefined; b = x.m.pollTransmit()) {
        const d = { at: this.now + this.latency, from: name, bytes: b };
        this.sent.push(d);
        this.#inFlight.push(d);
      }
      for (let e = x.m.pollEvent(); e !== undefined; e = x.m.pollEvent()) x.events.push(e);
    }
  }

  /** Run until `until`, delivering datagrams and firing timeouts in time order. */
  run(until: number) {
    this.#pump();
    for (;;) {
      let next = Infinity;
      for (const d of this.#inFlight) next = Math.min(next, d.at);
      for (const x of this.machines.values()) next = Math.min(next, x.m.pollTimeout() ?? Infinity);
      if (next > until) break;
      this.now = Math.max(this.now, next);
      const due = this.#inFlight.filter((d) => d.at <= this.now);
      this.#inFlight = this.#inFlight.filter((d) => d.at > this.now);
      for (const d of due) {
        const host = this.machines.get(d.from)?.host ?? "10.0.0.99";
        for (const x of this.machines.values()) x.m.handleDatagram(d.bytes, host, this.now);
      }
      for (const x of this.machines.values()) {
        const t = x.m.pollTimeout();
        if (t !== undefined && t <= this.now) x.m.handleTimeout(this.now);
      }
      this.#pump();
    }
    this.now = until;
  }

  events(name: string, type?: DiscoveryEvent["type"]) {
    const ev = this.machines.get(name)!.events;
    return type === undefined ? ev : ev.filter((e) => e.type === type);
  }

  sentBy(name: string) {
    return this.sent.filter((d) => d.from === name);
  }
}

describe("DiscoveryMachine (virtual clock)", () => {
  it("announces at once, every interval for the first 4, then every 5 intervals, TTL 3 × steady", () => {
    const net = new Net();
    const a = net.add("a", "10.0.0.1", { id: A });
    net.run(30_000);
    assert.deepEqual(net.sentBy("a").map((d) => d.at - 1), [
      0,
      1000,
      2000,
      3000,
      8000,
      13000,
      18000,
      23000,
      28000,
    ]);
    assert.equal(a.ttl, 15000);
    assert.equal(decodeAnnouncement(net.sent[0].bytes)?.ttl, 15000);
    const m = new DiscoveryMachine({
      deviceId: A,
      nonce: NA,
      port: 1,
      interval: 200,
      steadyInterval: 700,
    }, 0);
    assert.equal(m.ttl, 2100);
  });

  it("a newcomer is answered after a short delay, so it learns everyone at once", () => {
    const net = new Net();
    net.add("a", "10.0.0.1", { id: A, port: 1111 });
    net.add("b", "10.0.0.2", { id: B, port: 2222 });
    net.run(10_000); // both in their steady phase
    net.add("c", "10.0.0.3", { id: C, port: 3333, random: () => 0 });
    const t0 = net.now;
    net.run(t0 + 200);
    const found = net.events("c", "peer") as Array<{ peer: DiscoveredPeer }>;
    assert.deepEqual(
      found.map(({ peer: { deviceId, host, port } }) => ({ deviceId, host, port }))
        .sort((x, y) => x.port - y.port),
      [
        { deviceId: A, host: "10.0.0.1", port: 1111 },
        { deviceId: B, host: "10.0.0.2", port: 2222 },
      ],
    );
    // the answers went out ANSWER_DELAY + jitter after c's first announcement (random() = 0.5)
    const answers = net.sent.filter((d) => d.from !== "c" && d.at > t0);
    assert.equal(answers.length, 2);
    for (const d of answers) {
      assert.equal(d.at - 1, t0 + 1 + ANSWER_DELAY + Math.floor(0.5 * ANSWER_JITTER));
    }
  });

  it("answers heard together are sent once, and never sooner than ANSWER_GAP after an announcement", () => {
    const net = new Net();
    net.add("a", "10.0.0.1", { id: A });
    net.run(10_000);
    const before = net.sentBy("a").length;
    // three newcomers within a few ms
    net.add("b", "10.0.0.2", { id: B });
    net.run(net.now + 2);
    net.add("c", "10.0.0.3", { id: C });
    net.run(net.now + 2);
    net.add("d", "10.0.0.4", { id: "0A:00:00:00:00:04" });
    net.run(net.now + 60);
    assert.equal(net.sentBy("a").length, before + 1);
    // a just announced (its first), so a newcomer 10 ms later waits for the gap
    const net2 = new Net();
    net2.add("a", "10.0.0.1", { id: A });
    net2.run(10);
    net2.add("b", "10.0.0.2", { id: B });
    net2.run(500);
    const aSent = net2.sentBy("a").map((d) => d.at - 1);
    assert.deepEqual(aSent, [0, ANSWER_GAP]);
  });

  it("announce() solicits: every peer answers at once", () => {
    const net = new Net();
    net.add("a", "10.0.0.1", { id: A });
    net.add("b", "10.0.0.2", { id: B });
    net.add("c", "10.0.0.3", { id: C });
    net.run(20_000);
    const t0 = net.now;
    net.machines.get("a")!.m.announce(t0);
    net.run(t0 + 100);
    const solicit = net.sent.find((d) => d.from === "a" && d.at > t0)!;
    assert.equal(decodeAnnouncement(solicit.bytes)?.solicit, true);
    const answers = net.sent.filter((d) => d.from !== "a" && d.at > t0);
    assert.deepEqual(answers.map((d) => d.from).sort(), ["b", "c"]);
    for (const d of answers) assert.equal(decodeAnnouncement(d.bytes)?.solicit, false);
    assert.ok(answers.every((d) => d.at - t0 < ANSWER_DELAY + ANSWER_JITTER + 5));
  });

  it("its own looped-back announcements are ignored; no events, no answers", () => {
    const net = new Net();
    net.add("a", "10.0.0.1", { id: A });
    net.run(500);
    net.machines.get("a")!.m.announce(500);
    net.run(3_500);
    assert.deepEqual(net.events("a"), []);
    assert.deepEqual(net.sentBy("a").map((d) => d.at - 1), [0, 500, 1000, 2000, 3000]);
  });

  it("a silent peer is lost after its TTL; a goodbye loses it at once", () => {
    const net = new Net();
    net.add("a", "10.0.0.1", { id: A });
    net.add("b", "10.0.0.2", { id: B });
    net.add("c", "10.0.0.3", { id: C });
    net.run(20_000);
    // b dies: its last announcement was at 18000 (+1 latency): lost at 33001
    net.remove("b");
    net.run(33_000);
    assert.deepEqual(net.events("a", "lost"), []);
    net.run(33_001);
    assert.deepEqual(net.events("a", "lost"), [{ type: "lost", deviceId: B }]);
    assert.equal(net.machines.get("a")!.m.table.lookup(B), undefined);
    // c closes: a goodbye, lost one latency later
    const c = net.machines.get("c")!.m;
    c.close(net.now);
    const bye = c.pollTransmit()!;
    assert.equal(decodeAnnouncement(bye)?.ttl, 0);
    assert.equal(c.pollTimeout(), undefined);
    assert.equal(c.pollTransmit(), undefined);
    net.machines.get("a")!.m.handleDatagram(bye, "10.0.0.3", net.now + 1);
    assert.deepEqual(net.machines.get("a")!.m.pollEvent(), { type: "lost", deviceId: C });
    // a closed machine ignores everything
    c.handleTimeout(net.now + 100_000);
    assert.equal(c.handleDatagram(encodeAnnouncement(ann(B, NB)), "10.0.0.2", 0), undefined);
    c.announce(net.now);
    assert.equal(c.pollTransmit(), undefined);
    assert.equal(c.pollEvent(), undefined);
  });

  it("a restarted peer (new nonce) is reported again as changed", () => {
    const net = new Net();
    net.add("a", "10.0.0.1", { id: A });
    net.add("b", "10.0.0.2", { id: B, nonce: NB });
    net.run(5000);
    net.remove("b");
    net.add("b", "10.0.0.2", { id: B, nonce: "00000000000000bb", port: 4444 });
    net.run(6000);
    const peers = net.events("a", "peer") as Array<Extract<DiscoveryEvent, { type: "peer" }>>;
    assert.deepEqual(peers.map((e) => [e.peer.nonce, e.peer.port, e.changed]), [
      [NB, 4000, false],
      ["00000000000000bb", 4444, true],
    ]);
    // and the restarted b learns a again, from a's answer
    assert.equal(net.events("b", "peer").length, 1);
  });

  it("a clash is reported once on both sides; a third device reports a duplicate", () => {
    const net = new Net();
    net.add("a", "10.0.0.1", { id: A, port: 1111 });
    net.add("c", "10.0.0.3", { id: C });
    net.run(5000);
    net.add("a2", "10.0.0.2", { id: A, port: 2222 });
    net.run(40_000);
    assert.deepEqual(net.events("a", "clash"), [
      { type: "clash", deviceId: A, host: "10.0.0.2", port: 2222 },
    ]);
    assert.deepEqual(net.events("a2", "clash"), [
      { type: "clash", deviceId: A, host: "10.0.0.1", port: 1111 },
    ]);
    assert.deepEqual(net.events("c", "duplicate"), [
      { type: "duplicate", deviceId: A, host: "10.0.0.1", port: 1111 },
    ]);
    // c keeps one entry for A, never flapping between the two
    const changes = net.events("c", "peer").filter((e) => e.type === "peer" && e.changed);
    assert.equal(changes.length, 1);
  });

  it("rejects invalid options", () => {
    const base = { deviceId: A, nonce: NA, port: 1 };
    assert.throws(() => new DiscoveryMachine({ ...base, interval: 0 }, 0), /interval 0/);
    assert.throws(() => new DiscoveryMachine({ ...base, steadyInterval: 1.5 }, 0), /interval/);
    assert.throws(() => new DiscoveryMachine({ ...base, port: 0 }, 0), /port 0/);
    assert.throws(() => new DiscoveryMachine({ ...base, nonce: "x" }, 0), /nonce/);
    assert.throws(() => new DiscoveryMachine({ ...base, deviceId: "x" }, 0), /device id/);
  });
});

describe("shouldDiscover()", () => {
  it("is true for auto on a non-loopback IPv4 address or every interface", () => {
    for (const bind of ["0.0.0.0", "::", "10.1.2.3", "192.168.0.20"]) {
      assert.ok(shouldDiscover({ discovery: "auto", bind }), bind);
      assert.ok(!shouldDiscover({ discovery: "off", bind }), bind);
    }
    for (
      const bind of [
        "127.0.0.1",
        "127.1.2.3",
        "::1",
        "localhost",
        "::ffff:127.0.0.1",
        "fe80::1",
        "example.com",
      ]
    ) {
      assert.ok(!shouldDiscover({ discovery: "auto", bind }), bind);
    }
  });
});

describe("startDiscovery() options", () => {
  it("rejects a bind address, group or port it cannot use, before opening anything", async () => {
    const { platform } = await testPlatform();
    const base = {
      platform,
      deviceId: A,
      nonce: NA,
      bind: "127.0.0.1",
      port: 1,
      onPeer() {},
      onClash() {},
    };
    for (
      const [patch, message] of [
        [{ bind: "::1" }, /bind address "::1"/],
        [{ bind: "example.com" }, /bind address/],
        [{ group: "10.0.0.1" }, /group "10.0.0.1"/],
        [{ discoveryPort: 0 }, /discovery port 0/],
        [{ port: 70000 }, /port 70000/],
        [{ nonce: "short" }, /nonce "short"/],
      ] as const
    ) {
      await assert.rejects(
        startDiscovery({ ...base, ...patch } as never),
        (e: unknown) => e instanceof ParameterError && message.test(e.message),
        JSON.stringify(patch),
      );
    }
  });
});

/** Whether multicast sent from 127.0.0.1 reaches a group member joined on 127.0.0.1. */
async function loopbackMulticast(group: string, port: number): Promise<string | undefined> {
  const { platform } = await testPlatform();
  let got = false;
  try {
    const r = await platform.udpBind({
      local: { address: "0.0.0.0", port, family: "IPv4" },
      reuseAddress: true,
    }, { onMessage: () => (got = true) });
    const s = await platform.udpBind({ local: { address: "127.0.0.1", port: 0, family: "IPv4" } }, {
      onMessage() {},
    });
    try {
      r.addMembership(group, "127.0.0.1");
      s.setOption("multicastTTL", 1);
      for (let i = 0; i < 5 && !got; i++) {
        await s.send(new Uint8Array([1]), { address: group, port, family: "IPv4" });
        await new Promise((res) => setTimeout(res, 50));
      }
    } finally {
      await r.close();
      await s.close();
    }
  } catch (e) {
    return `multicast on loopback is not available here: ${(e as Error).message}`;
  }
  return got ? undefined : "multicast sent from 127.0.0.1 does not reach a member on 127.0.0.1";
}

const LOOP_PORT = 40000 + Math.floor(Math.random() * 20000);
const LOOP_GROUP = `239.255.76.${100 + Math.floor(Math.random() * 150)}`;

/**
 * Skip a test with a one-line notice. (Probes run inside tests, not as
 * top-level awaits: `node --test-force-exit` drops suites registered late.)
 */
function skip(t: unknown, name: string, reason: string): void {
  console.log(`skip: ${name}: ${reason}`);
  (t as { skip?(message?: string): void }).skip?.(reason);
}

let loopbackProbe: Promise<string | undefined> | undefined;
function noLoopback(): Promise<string | undefined> {
  loopbackProbe ??= (async () => {
    const { workaround } = await testPlatform();
    if (workaround !== undefined) console.log(`note: ${workaround}`);
    return await loopbackMulticast(LOOP_GROUP, LOOP_PORT);
  })();
  return loopbackProbe;
}

describe("startDiscovery() on loopback (real sockets)", () => {
  const port = LOOP_PORT;
  const group = LOOP_GROUP;
  const running: Discovery[] = [];
  after(async () => {
    for (const d of running) await d.close();
  });

  function device(id: string, tcpPort: number, nonce = randomNonce()) {
    const log = {
      peers: [] as DiscoveredPeer[],
      lost: [] as string[],
      clashes: [] as unknown[],
    };
    return {
      log,
      start: async () => {
        const { platform } = await testPlatform();
        const d = await startDiscovery({
          platform,
          deviceId: id,
          nonce,
          bind: "127.0.0.1",
          port: tcpPort,
          group,
          discoveryPort: port,
          interval: 200,
          onPeer: (p) => log.peers.push(p),
          onPeerLost: (p) => log.lost.push(p),
          onClash: (c) => log.clashes.push(c),
        });
        running.push(d);
        return d;
      },
    };
  }

  it("three devices on one host find each other; a clash and a goodbye are reported", {
    timeout: 20_000,
  }, async (t) => {
    const reason = await noLoopback();
    if (reason !== undefined) return skip(t, "discovery on loopback", reason);
    const devs = [device(A, 1001), device(B, 1002), device(C, 1003)];
    const ds = [];
    for (const d of devs) ds.push(await d.start());
    await waitFor(
      () => devs.every((d) => d.log.peers.length >= 2),
      3000,
      "every device to find the others",
    );
    for (const [i, d] of devs.entries()) {
      const expected = [A, B, C].filter((_, j) => j !== i);
      assert.deepEqual(d.log.peers.map((p) => p.deviceId).sort(), expected);
      for (const p of d.log.peers) {
        assert.equal(p.host, "127.0.0.1");
        assert.equal(p.port, 1001 + [A, B, C].indexOf(p.deviceId));
        assert.deepEqual(ds[i].lookup(p.deviceId.toLowerCase()), p);
      }
      assert.equal(ds[i].peers().length, 2);
    }
    // a second runtime with A's id
    const twin = device(A, 2001);
    await twin.start();
    await waitFor(
      () => devs[0].log.clashes.length > 0 && twin.log.clashes.length > 0,
      3000,
      "both runtimes with the same id to report the clash",
    );
    assert.deepEqual(devs[0].log.clashes, [{ deviceId: A, host: "127.0.0.1", port: 2001 }]);
    assert.deepEqual(twin.log.clashes, [{ deviceId: A, host: "127.0.0.1", port: 1001 }]);
    // C closes: the others lose it at once (goodbye), not after its TTL
    await ds[2].close();
    await ds[2].close(); // idempotent
    await waitFor(() => devs[1].log.lost.includes(C), 1000, "B to see C's goodbye");
  });

  it("announce() finds the peers fast, with steady intervals far away", {
    timeout: 20_000,
  }, async (t) => {
    const reason = await noLoopback();
    if (reason !== undefined) return skip(t, "discovery on loopback", reason);
    for (const d of running.splice(0)) await d.close();
    const { platform } = await testPlatform();
    const slow = { platform, bind: "127.0.0.1", group, discoveryPort: port, interval: 60_000 };
    const seen: string[] = [];
    const a = await startDiscovery({
      ...slow,
      deviceId: A,
      nonce: randomNonce(),
      port: 1,
      onPeer: (p) => seen.push(p.deviceId),
      onClash() {},
    });
    running.push(a);
    const b = await startDiscovery({
      ...slow,
      deviceId: B,
      nonce: randomNonce(),
      port: 2,
      onPeer() {},
      onClash() {},
    });
    running.push(b);
    // b's first announcement reached a, and a answered: both know each other well before 60 s
    await waitFor(() => a.lookup(B) !== undefined && b.lookup(A) !== undefined, 2000, "both");
    // a forgets nothing; a solicit from a new device makes both answer at once
    const seenByC: string[] = [];
    const c = await startDiscovery({
      ...slow,
      deviceId: C,
      nonce: randomNonce(),
      port: 3,
      onPeer: (p) => seenByC.push(p.deviceId),
      onClash() {},
    });
    running.push(c);
    c.announce();
    await waitFor(() => seenByC.length === 2, 2000, "C to learn A and B");
    assert.deepEqual(seenByC.sort(), [A, B]);
  });
});

describe("discovery and process lifetime", () => {
  it("a process with nothing but a running discovery exits by itself", {
    timeout: 30_000,
  }, async (t) => {
    if (!(await testPlatform()).unref) {
      return skip(t, "discovery and process lifetime", "datagram handles have no unref()");
    }
    const script = join(process.cwd(), "tests", "_discovery_peer.ts");
    let cmd: string[];
    let dir: string | undefined;
    if (RUNTIME === "deno") cmd = [process.execPath, "run", "-A", script];
    else if (RUNTIME === "bun") cmd = [process.execPath, script];
    else {
      dir = mkdtempSync(join(tmpdir(), "linkweave-discovery-"));
      const out = join(dir, "peer.mjs");
      const r = spawnSync(join(process.cwd(), "node_modules", ".bin", "esbuild"), [
        "--bundle",
        "--platform=node",
        "--format=esm",
        script,
        `--outfile=${out}`,
        "--log-level=error",
      ]);
      if (r.status !== 0) throw new Error(`Cannot bundle the peer: ${r.stderr}`);
      cmd = [process.execPath, out];
    }
    process.env.LW_DISCOVERY_PEER = JSON.stringify({
      deviceId: A,
      bind: "127.0.0.1",
      port: 1,
      discoveryPort: 40000 + Math.floor(Math.random() * 20000),
      linger: true,
    });
    let p: Proc | undefined;
    try {
      p = run(cmd[0], cmd.slice(1));
      delete process.env.LW_DISCOVERY_PEER;
      assert.equal(await p.exit(10_000), 0);
      assert.match(p.out(), /"ev":"ready"/);
    } finally {
      delete process.env.LW_DISCOVERY_PEER;
      p?.kill();
      if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    }
  });
});

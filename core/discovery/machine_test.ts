import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  ANSWER_DELAY,
  ANSWER_GAP,
  ANSWER_JITTER,
  type DiscoveryEvent,
  DiscoveryMachine,
  type DiscoveryMachineOptions,
} from "./machine.ts";
import { type Announcement, decodeAnnouncement, encodeAnnouncement } from "./wire.ts";
import { randomNonce } from "./wire.ts";
import { ParameterError } from "../errors.ts";

const A = "0A:00:00:00:00:01";
const B = "0A:00:00:00:00:02";
const C = "0A:00:00:00:00:03";
const NA = "000000000000000a";
const NB = "000000000000000b";

function read(bytes: Uint8Array): Announcement {
  const r = decodeAnnouncement(bytes);
  assert.ok(r.ok);
  return r.announcement;
}

type Ev<T extends DiscoveryEvent["type"]> = Extract<DiscoveryEvent, { type: T }>;

/** Machines on a virtual network: every datagram reaches every machine (loopback too). */
class Net {
  now = 0;
  machines = new Map<string, { m: DiscoveryMachine; host: string; events: DiscoveryEvent[] }>();
  sent: Array<{ at: number; from: string; bytes: Uint8Array }> = [];
  #inFlight: Array<{ at: number; from: string; bytes: Uint8Array }> = [];
  latency = 1;

  add(name: string, host: string, options: Partial<DiscoveryMachineOptions> & { id: string }) {
    const m = new DiscoveryMachine({
      ...options,
      deviceId: options.id,
      nonce: options.nonce ?? randomNonce(),
      port: options.port ?? 4000,
      random: options.random ?? (() => 0.5),
    }, this.now);
    this.machines.set(name, { m, host, events: [] });
    this.#pump();
    return m;
  }

  remove(name: string) {
    this.machines.delete(name);
  }

  /** Deliver a datagram from outside (an attacker) to every machine. */
  inject(bytes: Uint8Array, host: string) {
    for (const x of this.machines.values()) x.m.handleDatagram(bytes, host, this.now);
    this.#pump();
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

  events<T extends DiscoveryEvent["type"]>(name: string, type: T): Ev<T>[] {
    return this.machines.get(name)!.events.filter((e): e is Ev<T> => e.type === type);
  }

  all(name: string): DiscoveryEvent[] {
    return this.machines.get(name)!.events;
  }

  sentBy(name: string) {
    return this.sent.filter((d) => d.from === name);
  }
}

describe("DiscoveryMachine (virtual clock)", () => {
  it("announces at once, every interval for the first 4, then every 5 intervals, TTL 3 x steady", () => {
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
    assert.equal(read(net.sent[0].bytes).ttl, 15000);
    const m = new DiscoveryMachine({
      deviceId: A,
      nonce: NA,
      port: 1,
      interval: 200,
      steadyInterval: 700,
    }, 0);
    assert.equal(m.ttl, 2100);
    // a long fast interval: the steady interval stays within the 30 s lifetime cap
    assert.equal(
      new DiscoveryMachine({ deviceId: A, nonce: NA, port: 1, interval: 4000 }, 0).ttl,
      30_000,
    );
  });

  it("a newcomer is answered after a short delay, so it learns everyone at once", () => {
    const net = new Net();
    net.add("a", "10.0.0.1", { id: A, port: 1111 });
    net.add("b", "10.0.0.2", { id: B, port: 2222 });
    net.run(10_000); // both in their steady phase
    net.add("c", "10.0.0.3", { id: C, port: 3333, random: () => 0 });
    const t0 = net.now;
    net.run(t0 + 200);
    assert.deepEqual(
      net.events("c", "learned").map(({ peer: { deviceId, host, port } }) => ({
        deviceId,
        host,
        port,
      })).sort((x, y) => x.port - y.port),
      [
        { deviceId: A, host: "10.0.0.1", port: 1111 },
        { deviceId: B, host: "10.0.0.2", port: 2222 },
      ],
    );
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
    net.add("b", "10.0.0.2", { id: B });
    net.run(net.now + 2);
    net.add("c", "10.0.0.3", { id: C });
    net.run(net.now + 2);
    net.add("d", "10.0.0.4", { id: "0A:00:00:00:00:04" });
    net.run(net.now + 60);
    assert.equal(net.sentBy("a").length, before + 1);
    const net2 = new Net();
    net2.add("a", "10.0.0.1", { id: A });
    net2.run(10);
    net2.add("b", "10.0.0.2", { id: B });
    net2.run(500);
    assert.deepEqual(net2.sentBy("a").map((d) => d.at - 1), [0, ANSWER_GAP]);
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
    assert.equal(read(solicit.bytes).solicit, true);
    const answers = net.sent.filter((d) => d.from !== "a" && d.at > t0);
    assert.deepEqual(answers.map((d) => d.from).sort(), ["b", "c"]);
    for (const d of answers) assert.equal(read(d.bytes).solicit, false);
    assert.ok(answers.every((d) => d.at - t0 < ANSWER_DELAY + ANSWER_JITTER + 5));
  });

  it("its own looped-back announcements are ignored; no events, no answers", () => {
    const net = new Net();
    net.add("a", "10.0.0.1", { id: A });
    net.run(500);
    net.machines.get("a")!.m.announce(500);
    net.run(3_500);
    assert.deepEqual(net.all("a"), []);
    assert.deepEqual(net.sentBy("a").map((d) => d.at - 1), [0, 500, 1000, 2000, 3000]);
  });

  it("a silent peer is lost after its TTL; a goodbye loses it at once; a closed machine is inert", () => {
    const net = new Net();
    net.add("a", "10.0.0.1", { id: A });
    net.add("b", "10.0.0.2", { id: B });
    net.add("c", "10.0.0.3", { id: C });
    net.run(20_000);
    net.remove("b"); // its last announcement was at 18000 (+1 latency): lost at 33001
    net.run(33_000);
    assert.deepEqual(net.events("a", "lost"), []);
    net.run(33_001);
    assert.deepEqual(net.events("a", "lost"), [{ type: "lost", deviceId: B, reason: "expired" }]);
    assert.equal(net.machines.get("a")!.m.table.lookup(B), undefined);
    const c = net.machines.get("c")!.m;
    c.close(net.now);
    const bye = c.pollTransmit()!;
    assert.equal(read(bye).ttl, 0);
    assert.equal(c.pollTimeout(), undefined);
    assert.equal(c.pollTransmit(), undefined);
    const a = net.machines.get("a")!.m;
    a.handleDatagram(bye, "10.0.0.3", net.now + 1);
    assert.deepEqual(a.pollEvent(), { type: "lost", deviceId: C, reason: "goodbye" });
    c.handleTimeout(net.now + 100_000);
    assert.equal(
      c.handleDatagram(encodeAnnouncement({ deviceId: B, nonce: NB, port: 1 }), "10.0.0.2", 0),
      undefined,
    );
    c.announce(net.now);
    assert.equal(c.pollTransmit(), undefined);
    assert.equal(c.pollEvent(), undefined);
  });

  it("a peer restarted with a goodbye is learned at its first announcement", () => {
    const net = new Net();
    net.add("a", "10.0.0.1", { id: A });
    const b = net.add("b", "10.0.0.2", { id: B, nonce: NB });
    net.run(5000);
    b.close(net.now);
    net.run(5100);
    net.add("b", "10.0.0.2", { id: B, nonce: "00000000000000bb", port: 4444 });
    net.run(5200);
    assert.deepEqual(
      net.events("a", "learned").map((e) => [e.peer.nonce, e.peer.port, e.promoted]),
      [[NB, 4000, false], ["00000000000000bb", 4444, false]],
    );
    assert.equal(net.events("b", "learned").length, 1, "and b learns a from a's answer");
  });

  it("a peer restarted without a goodbye (killed) is learned once its old runtime missed an announcement", () => {
    const net = new Net();
    net.add("a", "10.0.0.1", { id: A });
    net.add("b", "10.0.0.2", { id: B, nonce: NB });
    net.run(20_000); // b announced last at 18000
    net.remove("b");
    net.add("b", "10.0.0.2", { id: B, nonce: "00000000000000bb", port: 4444 });
    const a = net.machines.get("a")!.m;
    net.run(20_500);
    assert.equal(a.table.lookup(B)?.port, 4000, "the old runtime is not replaced at once");
    assert.equal(net.events("a", "contender").length, 1);
    net.run(33_000); // before the old runtime's TTL (15 s) ran out
    assert.equal(a.table.lookup(B)?.port, 4444);
    const learned = net.events("a", "learned").filter((e) => e.peer.port === 4444);
    assert.equal(learned.length, 1);
    assert.ok(learned[0].promoted);
    // promoted at the new runtime's first announcement after 7.5 s of silence (18001 + 7500):
    // it announced at 20000, 21000, 22000, 23000 (fast), then 28000
    assert.equal(learned[0].peer.lastSeen, 28_001);
  });

  it("a forged announcement never redirects a live peer's id", () => {
    const net = new Net();
    net.add("a", "10.0.0.1", { id: A });
    net.add("b", "10.0.0.2", { id: B, nonce: NB, port: 4000 });
    net.run(5000);
    for (let i = 0; i < 20; i++) {
      net.inject(
        encodeAnnouncement({ deviceId: B, nonce: randomNonce(), port: 6666, ttl: 30_000 }),
        "10.0.0.66",
      );
      net.run(net.now + 3000);
      assert.equal(net.machines.get("a")!.m.table.lookup(B)?.host, "10.0.0.2");
    }
    const contenders = net.events("a", "contender");
    assert.equal(contenders.length, 20);
    assert.ok(contenders.every((c) => c.established.host === "10.0.0.2" && !c.sameRuntime));
  });

  it("a clash is reported once on both sides; a third device reports a contender once", () => {
    const net = new Net();
    net.add("a", "10.0.0.1", { id: A, port: 1111 });
    net.add("c", "10.0.0.3", { id: C });
    net.run(5000);
    net.add("a2", "10.0.0.2", { id: A, port: 2222 });
    net.run(40_000);
    const clash = (name: string) =>
      net.events(name, "clash").map(({ deviceId, host, port }) => ({ deviceId, host, port }));
    assert.deepEqual(clash("a"), [{ deviceId: A, host: "10.0.0.2", port: 2222 }]);
    assert.deepEqual(clash("a2"), [{ deviceId: A, host: "10.0.0.1", port: 1111 }]);
    const seen = net.events("c", "contender");
    assert.equal(seen.length, 1);
    assert.deepEqual([seen[0].host, seen[0].port, seen[0].established.port], [
      "10.0.0.2",
      2222,
      1111,
    ]);
    // c keeps dialling the first runtime of A
    assert.equal(net.machines.get("c")!.m.table.lookup(A)?.port, 1111);
    assert.deepEqual(net.events("c", "learned").filter((e) => e.peer.deviceId === A).length, 1);
  });

  it("refuses datagrams from outside its subnets, and further addresses outside them", () => {
    const m = new DiscoveryMachine({
      deviceId: A,
      nonce: NA,
      port: 1,
      networks: [{ address: "10.0.0.1", prefixLength: 24 }],
    }, 0);
    const from = (host: string) =>
      m.handleDatagram(
        encodeAnnouncement({
          deviceId: B,
          nonce: NB,
          port: 4000,
          addresses: [{ host: "10.0.0.7", port: 7 }, { host: "192.168.9.9", port: 9 }],
        }),
        host,
        0,
      );
    assert.equal(from("10.0.1.2"), undefined);
    assert.deepEqual(m.pollEvent(), { type: "refused", host: "10.0.1.2", reason: "off-link" });
    assert.equal(from("127.0.0.1"), undefined);
    assert.equal(m.table.size, 0);
    assert.equal(from("10.0.0.2"), "new");
    assert.deepEqual(m.table.lookup(B)?.addresses, [{ host: "10.0.0.7", port: 7 }]);
  });

  it("reports what it refuses and why", () => {
    const m = new DiscoveryMachine({ deviceId: A, nonce: NA, port: 1, maxIdsPerHost: 1 }, 0);
    const v3 = encodeAnnouncement({ deviceId: B, nonce: NB, port: 1 });
    v3[4] = 3;
    m.handleDatagram(v3, "10.0.0.9", 0);
    m.handleDatagram(new Uint8Array([0x4c, 0x57, 0x44, 0x41, 2, 0]), "10.0.0.9", 0);
    m.handleDatagram(encodeAnnouncement({ deviceId: B, nonce: NB, port: 1 }), "10.0.0.9", 0);
    m.handleDatagram(encodeAnnouncement({ deviceId: C, nonce: NB, port: 1 }), "10.0.0.9", 0);
    const events = [];
    for (let e = m.pollEvent(); e !== undefined; e = m.pollEvent()) events.push(e);
    assert.deepEqual(events.filter((e) => e.type === "refused"), [
      { type: "refused", host: "10.0.0.9", reason: "version", major: 3 },
      { type: "refused", host: "10.0.0.9", reason: "malformed" },
      { type: "refused", host: "10.0.0.9", reason: "host-limit", deviceId: C },
    ]);
  });

  it("rejects invalid options", () => {
    const base = { deviceId: A, nonce: NA, port: 1 };
    const bad: Array<[Partial<DiscoveryMachineOptions>, RegExp]> = [
      [{ interval: 0 }, /interval 0/],
      [{ steadyInterval: 1.5 }, /interval/],
      [{ steadyInterval: 10_001 }, /steady interval 10001: expected at most 10000/],
      [{ port: 0 }, /port 0/],
      [{ nonce: "x" }, /nonce/],
      [{ deviceId: "x" }, /device id/],
      [{ maxTtl: 40_000 }, /maximum TTL/],
    ];
    for (const [patch, message] of bad) {
      assert.throws(
        () => new DiscoveryMachine({ ...base, ...patch }, 0),
        (e: unknown) => e instanceof ParameterError && message.test(e.message),
        JSON.stringify(patch),
      );
    }
  });
});

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  DEFAULT_MAX_IDS_PER_HOST,
  DEFAULT_MAX_PEERS,
  DiscoveryTable,
  MAX_ENDPOINTS,
  MAX_REFUTED,
  MAX_TTL,
  REFUTED_MS,
} from "./table.ts";
import type { Announcement } from "./wire.ts";
import { ParameterError } from "../errors.ts";

const A = "0A:00:00:00:00:01";
const B = "0A:00:00:00:00:02";
const C = "0A:00:00:00:00:03";
const NA = "000000000000000a";
const NB = "000000000000000b";
const NB2 = "00000000000000bb";
const NC = "000000000000000c";
const FORGED = "00000000000000ff";

function ann(deviceId: string, nonce: string, port = 4000, ttl = 3000): Announcement {
  return {
    major: 2,
    minor: 0,
    maxMajor: 2,
    capabilities: 1,
    solicit: false,
    deviceId,
    nonce,
    ttl,
    port,
    addresses: [],
  };
}

function id(i: number): string {
  return `0B:00:00:00:${(i >> 8).toString(16).padStart(2, "0")}:${
    (i & 255).toString(16).padStart(2, "0")
  }`.toUpperCase();
}

const me = { deviceId: A, nonce: NA };

describe("DiscoveryTable", () => {
  it("new, refresh, lookup (any case), peers", () => {
    const t = new DiscoveryTable(me);
    assert.equal(t.update(ann(B, NB, 4000), "10.0.0.2", 0).result, "new");
    assert.equal(t.update(ann(C, NC, 5000), "10.0.0.3", 0).result, "new");
    assert.equal(t.update(ann(B, NB, 4000), "10.0.0.2", 100).result, "refresh");
    const p = t.lookup(B.toLowerCase());
    assert.deepEqual(
      { ...p },
      {
        deviceId: B,
        host: "10.0.0.2",
        port: 4000,
        nonce: NB,
        version: 2,
        capabilities: 1,
        addresses: [],
        firstSeen: 0,
        lastSeen: 100,
      },
    );
    assert.ok(Object.isFrozen(p));
    assert.equal(t.lookup("0A:00:00:00:00:09"), undefined);
    assert.equal(t.lookup("garbage"), undefined);
    assert.deepEqual(t.peers().map((p) => p.deviceId), [B, C]);
    assert.equal(t.size, 2);
  });

  it("a refuted endpoint is dropped for its id, the next one dialled, its announcements ignored for a while", () => {
    const t = new DiscoveryTable(me);
    // A forger's endpoint for B is learned first; the real B is a contender.
    assert.equal(t.update(ann(B, FORGED, 7777), "10.0.0.66", 0).result, "new");
    assert.equal(t.update(ann(B, NB, 4000), "10.0.0.2", 10).result, "contender");
    assert.equal(t.lookup(B)?.host, "10.0.0.66");
    // A dial there proved another key.
    assert.equal(t.refute(B.toLowerCase(), "10.0.0.66", 7777, 20), true);
    assert.equal(t.lookup(B)?.host, "10.0.0.2");
    // The forger keeps announcing: ignored, for REFUTED_MS.
    assert.equal(t.update(ann(B, FORGED, 7777), "10.0.0.66", 30).result, "refuted");
    assert.equal(
      t.update(ann(B, FORGED, 7777), "10.0.0.66", 20 + REFUTED_MS - 1).result,
      "refuted",
    );
    assert.equal(t.lookup(B)?.host, "10.0.0.2");
    // Only that id from that endpoint: another id from there is learned.
    assert.equal(t.update(ann(C, NC, 7777), "10.0.0.66", 40).result, "new");
    // Refuting B's last endpoint forgets B, until it is heard elsewhere.
    assert.equal(t.refute(B, "10.0.0.2", 4000, 50), true);
    assert.equal(t.lookup(B), undefined);
    assert.equal(t.update(ann(B, NB, 4001), "10.0.0.2", 60).result, "new");
    // After REFUTED_MS the endpoint may be learned again (as a contender of the live B).
    assert.equal(
      t.update(ann(B, FORGED, 7777), "10.0.0.66", 20 + REFUTED_MS).result,
      "contender",
    );
  });

  it("remembers at most MAX_REFUTED refuted endpoints, the oldest forgotten first", () => {
    const t = new DiscoveryTable(me);
    for (let i = 0; i <= MAX_REFUTED; i++) t.refute(B, "10.0.0.66", 1000 + i, i);
    // The first one was forgotten: its announcement is learned.
    assert.equal(t.update(ann(B, FORGED, 1000), "10.0.0.66", 100).result, "new");
    assert.equal(t.update(ann(B, FORGED, 1001), "10.0.0.66", 100).result, "refuted");
  });

  it("the version is the highest both speak", () => {
    const t = new DiscoveryTable(me);
    t.update({ ...ann(B, NB), maxMajor: 7 }, "10.0.0.2", 0);
    assert.equal(t.lookup(B)?.version, 2);
  });

  it("self and clash: this device's id", () => {
    const t = new DiscoveryTable({ deviceId: A.toLowerCase(), nonce: NA });
    assert.equal(t.update(ann(A, NA), "10.0.0.1", 0).result, "self");
    assert.equal(t.update(ann(A, FORGED), "10.0.0.7", 0).result, "clash");
    assert.equal(t.update(ann(A, FORGED, 4000, 0), "10.0.0.7", 0).result, "ignored");
    assert.equal(t.size, 0);
  });

  it("a new nonce, address or port never replaces a live established endpoint", () => {
    const t = new DiscoveryTable(me);
    t.update(ann(B, NB, 4000), "10.0.0.2", 0);
    assert.equal(t.update(ann(B, FORGED, 6666), "10.0.0.66", 10).result, "contender");
    assert.equal(t.update(ann(B, NB, 4001), "10.0.0.2", 20).result, "address");
    assert.equal(t.update(ann(B, NB, 4000), "10.0.0.9", 30).result, "address");
    for (let now = 1000; now < 20_000; now += 1000) {
      // both keep announcing: the first one learned stays
      assert.equal(t.update(ann(B, NB, 4000), "10.0.0.2", now).result, "refresh");
      assert.equal(t.update(ann(B, FORGED, 6666), "10.0.0.66", now + 500).result, "refresh");
      assert.equal(t.lookup(B)?.host, "10.0.0.2");
    }
    assert.deepEqual(
      t.contenders(B).map((c) => `${c.host}:${c.port}/${c.nonce}`),
      [`10.0.0.66:6666/${FORGED}`, `10.0.0.2:4001/${NB}`, `10.0.0.9:4000/${NB}`],
    );
  });

  it("a contender is promoted once the established endpoint missed an announcement and it announced twice", () => {
    const t = new DiscoveryTable(me);
    // B's old runtime, TTL 3000 (one announcement per 1000 ms), last heard at 0
    t.update(ann(B, NB, 4000, 3000), "10.0.0.2", 0);
    // the restarted runtime announces at 100, 600, 1100, 1600
    assert.equal(t.update(ann(B, NB2, 5000), "10.0.0.2", 100).result, "contender");
    assert.equal(t.update(ann(B, NB2, 5000), "10.0.0.2", 600).result, "refresh");
    assert.equal(t.update(ann(B, NB2, 5000), "10.0.0.2", 1100).result, "refresh");
    assert.equal(t.lookup(B)?.port, 4000, "silent for 1100 ms of a 3000 ms TTL: not yet");
    const u = t.update(ann(B, NB2, 5000), "10.0.0.2", 1600);
    assert.equal(u.result, "promoted", "silent for over half its TTL");
    assert.equal(u.peer?.port, 5000);
    assert.equal(t.lookup(B)?.nonce, NB2);
    // the old runtime is now the contender; it does not win back while the new one announces
    assert.equal(t.update(ann(B, NB, 4000), "10.0.0.2", 1700).result, "refresh");
    assert.equal(t.lookup(B)?.nonce, NB2);
  });

  it("one announcement of a contender after the silence is not enough", () => {
    const u = new DiscoveryTable(me);
    u.update(ann(B, NB, 4000, 3000), "10.0.0.2", 0);
    assert.equal(u.update(ann(B, NB2, 5000), "10.0.0.2", 2000).result, "contender");
    assert.equal(
      u.lookup(B)?.nonce,
      NB,
      "heard once since the established one's last announcement",
    );
    assert.equal(u.update(ann(B, NB2, 5000), "10.0.0.2", 2500).result, "promoted");
  });

  it("a forger heard first is replaced by the real device within half its capped TTL", () => {
    const t = new DiscoveryTable(me);
    // one forged datagram with the largest TTL there is
    t.update(ann(B, FORGED, 6666, 0xffffffff), "10.0.0.66", 0);
    assert.equal(t.lookup(B)?.host, "10.0.0.66");
    let redirectedUntil = 0;
    for (let now = 50; now < MAX_TTL + 5000; now += 1000) {
      t.update(ann(B, NB, 4000, 15000), "10.0.0.2", now); // the real device, every second
      if (t.lookup(B)?.host === "10.0.0.66") redirectedUntil = now;
    }
    assert.ok(redirectedUntil < MAX_TTL / 2 + 1000, `redirected until ${redirectedUntil} ms`);
    assert.ok(
      redirectedUntil >= MAX_TTL / 2 - 1000,
      `rule 2 waits half the TTL (${redirectedUntil})`,
    );
  });

  it("goodbyes: only from the endpoint itself; the established one's promotes the latest contender", () => {
    const t = new DiscoveryTable(me);
    t.update(ann(B, NB, 4000), "10.0.0.2", 0);
    t.update(ann(B, FORGED, 6666), "10.0.0.66", 10);
    t.update(ann(B, NB2, 5000), "10.0.0.2", 20);
    assert.equal(t.update(ann(B, NB, 4000, 0), "10.0.0.66", 30).result, "ignored"); // other host
    assert.equal(t.update(ann(B, NB, 4001, 0), "10.0.0.2", 30).result, "ignored"); // other port
    assert.equal(t.update(ann(C, NC, 4000, 0), "10.0.0.3", 30).result, "ignored"); // unknown id
    assert.equal(t.lookup(B)?.nonce, NB);
    const u = t.update(ann(B, NB, 4000, 0), "10.0.0.2", 40);
    assert.equal(u.result, "promoted");
    assert.equal(u.peer?.nonce, NB2, "the contender heard last");
    assert.equal(t.update(ann(B, FORGED, 6666, 0), "10.0.0.66", 50).result, "goodbye");
    assert.equal(t.update(ann(B, NB2, 5000, 0), "10.0.0.2", 60).result, "gone");
    assert.equal(t.lookup(B), undefined);
    assert.equal(t.size, 0);
  });

  it("expire() removes endpoints at their TTL, promotes a contender, loses an id with none left", () => {
    const t = new DiscoveryTable(me);
    assert.equal(t.nextExpiry(), undefined);
    t.update(ann(B, NB, 4000, 3000), "10.0.0.2", 0);
    t.update(ann(B, NB2, 5000, 3000), "10.0.0.2", 1000);
    t.update(ann(C, NC, 4000, 1000), "10.0.0.3", 500);
    assert.equal(t.nextExpiry(), 1500);
    assert.deepEqual(t.expire(1499), []);
    assert.deepEqual(t.expire(1500), [{ deviceId: C, result: "lost" }]);
    const [x] = t.expire(3000);
    assert.equal(x.result, "promoted");
    assert.equal(x.peer?.nonce, NB2);
    assert.deepEqual(t.expire(4000), [{ deviceId: B, result: "lost" }]);
    assert.equal(t.size, 0);
  });

  it("caps lifetimes at MAX_TTL (30 s), or lower by option", () => {
    assert.equal(MAX_TTL, 30_000);
    const t = new DiscoveryTable(me);
    t.update(ann(B, NB, 4000, 0xffffffff), "10.0.0.2", 0);
    assert.equal(t.nextExpiry(), MAX_TTL);
    const short = new DiscoveryTable({ ...me, maxTtl: 2000 });
    short.update(ann(B, NB, 4000, 15000), "10.0.0.2", 100);
    assert.equal(short.nextExpiry(), 2100);
  });

  it("keeps at most MAX_ENDPOINTS per id: a new contender pushes out the one heard least recently", () => {
    const t = new DiscoveryTable(me);
    t.update(ann(B, NB), "10.0.0.2", 0);
    for (let i = 1; i <= MAX_ENDPOINTS + 2; i++) {
      t.update(ann(B, `00000000000000${(0xf0 + i).toString(16)}`), `10.0.0.${100 + i}`, i);
    }
    assert.equal(t.contenders(B).length, MAX_ENDPOINTS - 1);
    assert.deepEqual(t.contenders(B).map((c) => c.host), [
      "10.0.0.104",
      "10.0.0.105",
      "10.0.0.106",
    ]);
    assert.equal(t.lookup(B)?.host, "10.0.0.2");
  });

  it("a new contender displaces a once-heard one before one that announced twice", () => {
    const t = new DiscoveryTable(me);
    t.update(ann(B, NB), "10.0.0.2", 0);
    t.update(ann(B, NB2, 5000), "10.0.0.3", 1); // heard twice, the earliest
    t.update(ann(B, NB2, 5000), "10.0.0.3", 2);
    t.update(ann(B, FORGED), "10.0.0.4", 3);
    t.update(ann(B, FORGED), "10.0.0.5", 4);
    t.update(ann(B, FORGED), "10.0.0.6", 5);
    assert.deepEqual(t.contenders(B).map((c) => c.host), ["10.0.0.3", "10.0.0.5", "10.0.0.6"]);
    // one contender per source: a new nonce from 10.0.0.5 replaces that one
    t.update(ann(B, "00000000000000f9"), "10.0.0.5", 6);
    assert.deepEqual(
      t.contenders(B).map((c) => `${c.host}/${c.nonce}`),
      [`10.0.0.3/${NB2}`, `10.0.0.6/${FORGED}`, "10.0.0.5/00000000000000f9"],
    );
  });

  it("a flood of single forged contenders never pushes out a contender that keeps announcing", () => {
    const t = new DiscoveryTable(me);
    t.update(ann(B, FORGED, 6666, 30_000), "10.0.0.66", 0); // the forger was heard first
    let promotedAt: number | undefined;
    for (let now = 100; now < 20_000 && promotedAt === undefined; now += 10) {
      const nonce = (0x1000000 + now).toString(16).padStart(16, "0");
      t.update(ann(B, nonce, 6666, 30_000), "10.0.0.66", now); // a new forged runtime every 10 ms
      if (now % 1000 === 100) {
        // the real device, every second
        if (t.update(ann(B, NB, 4000, 15_000), "10.0.0.2", now).result === "promoted") {
          promotedAt = now;
        }
      }
    }
    assert.equal(
      promotedAt,
      15_100,
      "promoted at its first announcement after half the forger's TTL",
    );
    assert.equal(t.lookup(B)?.host, "10.0.0.2");
  });

  it("when full, a new id evicts the id heard least recently among those heard once", () => {
    const t = new DiscoveryTable({ ...me, maxPeers: 3 });
    t.update(ann(B, NB), "10.0.0.2", 0);
    t.update(ann(B, NB), "10.0.0.2", 1); // B heard twice
    t.update(ann(id(1), NC), "10.0.0.3", 2);
    t.update(ann(id(2), NC), "10.0.0.4", 3);
    const u = t.update(ann(id(3), NC), "10.0.0.5", 4);
    assert.deepEqual([u.result, u.evicted], ["new", id(1)]);
    assert.deepEqual(t.peers().map((p) => p.deviceId), [B, id(2), id(3)]);
    // every id heard twice: the least recently heard goes
    t.update(ann(id(2), NC), "10.0.0.4", 5);
    t.update(ann(id(3), NC), "10.0.0.5", 6);
    assert.equal(t.update(ann(C, NC), "10.0.0.6", 7).evicted, B);
    assert.equal(
      new DiscoveryTable({ ...me, maxPeers: 0 }).update(ann(B, NB), "h", 0).result,
      "full",
    );
  });

  it("256+ forged ids never keep a real device out", () => {
    const t = new DiscoveryTable(me);
    // the forger uses many source addresses (one address alone is capped, see below)
    for (let i = 0; i < DEFAULT_MAX_PEERS + 50; i++) {
      t.update(ann(id(i), FORGED, 1, 30_000), `10.1.${i >> 8}.${(i & 255) + 1}`, i);
    }
    assert.equal(t.size, DEFAULT_MAX_PEERS);
    assert.equal(t.update(ann(B, NB), "10.0.0.2", 1000).result, "new");
    assert.equal(t.lookup(B)?.host, "10.0.0.2");
    // and once it announced twice, a further flood of single datagrams never evicts it
    t.update(ann(B, NB), "10.0.0.2", 1001);
    for (let i = 1000; i < 1000 + 2 * DEFAULT_MAX_PEERS; i++) {
      t.update(ann(id(i), FORGED, 1, 30_000), `10.2.${i >> 8}.${(i & 255) + 1}`, 1002 + i);
    }
    assert.equal(t.lookup(B)?.host, "10.0.0.2");
    assert.equal(t.size, DEFAULT_MAX_PEERS);
  });

  it("one source address vouches for at most maxIdsPerHost ids", () => {
    const t = new DiscoveryTable(me);
    for (let i = 0; i < DEFAULT_MAX_IDS_PER_HOST; i++) {
      assert.equal(t.update(ann(id(i), FORGED), "10.0.0.66", i).result, "new");
    }
    assert.equal(t.update(ann(id(999), FORGED), "10.0.0.66", 100).result, "host-limit");
    assert.equal(t.update(ann(id(0), FORGED), "10.0.0.66", 101).result, "refresh");
    assert.equal(t.update(ann(B, NB), "10.0.0.2", 102).result, "new");
    const small = new DiscoveryTable({ ...me, maxIdsPerHost: 1 });
    small.update(ann(B, NB), "10.0.0.2", 0);
    assert.equal(small.update(ann(C, NC), "10.0.0.2", 0).result, "host-limit");
  });

  it("rejects invalid limits", () => {
    for (
      const [patch, message] of [
        [{ maxPeers: -1 }, /peer limit -1/],
        [{ maxIdsPerHost: 1.5 }, /ids per host 1.5/],
        [{ maxTtl: MAX_TTL + 1 }, /maximum TTL 30001/],
        [{ deviceId: "x" }, /device id "x"/],
      ] as const
    ) {
      assert.throws(
        () => new DiscoveryTable({ ...me, ...patch }),
        (e: unknown) => e instanceof ParameterError && message.test(e.message),
      );
    }
  });
});

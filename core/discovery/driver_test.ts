import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import process from "node:process";
import type {
  DatagramEvents,
  DatagramHandle,
  IpEndpoint,
  SocketPlatform,
  UdpBindOptions,
} from "../socket/platform.ts";
import { type Clock, type Discovery, shouldMulticast, startDiscovery } from "./driver.ts";
import type { DiscoveryEvent } from "./machine.ts";
import { decodeAnnouncement, encodeAnnouncement, randomNonce } from "./wire.ts";
import { combineDirectories, multicastDirectory } from "./finder.ts";
import { ParameterError } from "../errors.ts";
import { testPlatform } from "../../tests/_discovery_peer.ts";
import { runtimeHost } from "../../platform/host.ts";
import { type Proc, run, waitFor } from "../../tests/_proc.ts";
import { scriptCommand } from "../../tests/_script.ts";

const A = "0A:00:00:00:00:01";
const B = "0A:00:00:00:00:02";
const C = "0A:00:00:00:00:03";
const NA = "000000000000000a";
const LAN = [{ name: "eth0", address: "10.0.0.1", prefixLength: 24 }];

/** A clock that moves only when told to. */
class VirtualClock implements Clock {
  time = 0;
  #timers = new Map<number, { at: number; fn: () => void }>();
  #next = 1;
  now(): number {
    return this.time;
  }
  setTimer(fn: () => void, ms: number): unknown {
    const id = this.#next++;
    this.#timers.set(id, { at: this.time + ms, fn });
    return id;
  }
  clearTimer(t: unknown): void {
    this.#timers.delete(t as number);
  }
  get pending(): number {
    return this.#timers.size;
  }
  advance(to: number): void {
    for (;;) {
      let first: [number, { at: number; fn: () => void }] | undefined;
      for (const e of this.#timers) if (first === undefined || e[1].at < first[1].at) first = e;
      if (first === undefined || first[1].at > to) break;
      this.#timers.delete(first[0]);
      this.time = first[1].at;
      first[1].fn();
    }
    this.time = to;
  }
}

/** UDP in memory: records what is bound, joined and sent; `deliver` plays a received datagram. */
function memoryPlatform() {
  const bound: Array<{ options: UdpBindOptions; events: DatagramEvents; joined: string[] }> = [];
  const sent: Array<{ from: string; to: IpEndpoint; bytes: Uint8Array }> = [];
  const platform = {
    name: "memory",
    udpBind(options: UdpBindOptions, events: DatagramEvents): Promise<DatagramHandle> {
      const b = { options, events, joined: [] as string[] };
      bound.push(b);
      const handle = {
        localAddress: options.local,
        send(bytes: Uint8Array, to: IpEndpoint) {
          sent.push({ from: options.local.address, to, bytes: bytes.slice() });
          return undefined;
        },
        addMembership: (group: string, iface?: string) => b.joined.push(`${group}@${iface}`),
        dropMembership() {},
        setOption: () => true,
        getOption: () => undefined,
        ref() {},
        unref() {},
        close: () => Promise.resolve(),
      };
      return Promise.resolve(handle as unknown as DatagramHandle);
    },
  } as unknown as SocketPlatform;
  const deliver = (bytes: Uint8Array, from: string) =>
    bound[0].events.onMessage(bytes, { address: from, port: 38471, family: "IPv4" });
  return { platform, bound, sent, deliver };
}

describe("startDiscovery() options", () => {
  it("rejects interfaces, a group or a port it cannot use, before opening anything", async () => {
    const { platform, bound } = memoryPlatform();
    const base = {
      platform,
      clock: new VirtualClock(),
      deviceId: A,
      nonce: NA,
      port: 1,
      interfaces: LAN,
    };
    for (
      const [patch, message] of [
        [{ interfaces: [] }, /no IPv4 interface/],
        [{ interfaces: [{ address: "::1", prefixLength: 128 }] }, /interface address "::1"/],
        [{ group: "10.0.0.1" }, /group "10.0.0.1"/],
        [{ discoveryPort: 0 }, /discovery port 0/],
        [{ port: 70000 }, /port 70000/],
        [{ nonce: "short" }, /nonce "short"/],
        [{ steadyInterval: 20_000 }, /steady interval 20000/],
      ] as const
    ) {
      await assert.rejects(
        startDiscovery({ ...base, ...patch } as never),
        (e: unknown) => e instanceof ParameterError && message.test(e.message),
        JSON.stringify(patch),
      );
    }
    assert.equal(bound.length, 0);
  });

  it("shouldMulticast(): auto, on a non-loopback IPv4 address or every interface", () => {
    for (const bind of ["0.0.0.0", "::", "10.1.2.3", "192.168.0.20"]) {
      assert.ok(shouldMulticast({ discovery: "auto", bind }), bind);
      assert.ok(!shouldMulticast({ discovery: "off", bind }), bind);
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
      assert.ok(!shouldMulticast({ discovery: "auto", bind }), bind);
    }
  });
});

describe("startDiscovery() on an injected clock (sockets in memory)", () => {
  it("binds the group address, joins and sends on each interface, and times everything by the clock", async () => {
    const clock = new VirtualClock();
    clock.time = 5000;
    const { platform, bound, sent } = memoryPlatform();
    const d = await startDiscovery({
      platform,
      clock,
      deviceId: A,
      nonce: NA,
      port: 4000,
      interfaces: [...LAN, { name: "eth1", address: "192.168.7.1", prefixLength: 24 }],
    });
    assert.deepEqual(bound[0].options.local, {
      address: "239.255.76.87",
      port: 38471,
      family: "IPv4",
    });
    assert.equal(bound[0].options.reuseAddress, true);
    assert.deepEqual(bound[0].joined, ["239.255.76.87@10.0.0.1", "239.255.76.87@192.168.7.1"]);
    assert.deepEqual(bound.slice(1).map((b) => b.options.local.address), [
      "10.0.0.1",
      "192.168.7.1",
    ]);
    // A device on two interfaces names both in every announcement (ADDRESS_V4).
    const first = decodeAnnouncement(sent[0].bytes);
    assert.ok(first.ok);
    assert.deepEqual(first.announcement.addresses, [
      { host: "10.0.0.1", port: 4000 },
      { host: "192.168.7.1", port: 4000 },
    ]);
    clock.advance(5000 + 30_000);
    // real time barely moved; the announcements follow the virtual clock
    const times = [0, 1000, 2000, 3000, 8000, 13000, 18000, 23000, 28000];
    assert.deepEqual(sent.filter((s) => s.from === "10.0.0.1").length, times.length);
    assert.deepEqual(sent.filter((s) => s.from === "192.168.7.1").length, times.length);
    await d.close();
    const bye = sent.at(-1)!;
    const r = decodeAnnouncement(bye.bytes);
    assert.ok(r.ok && r.announcement.ttl === 0);
    assert.equal(clock.pending, 0, "close() cancels its timer");
  });

  it("a peer's further addresses reach the finder: one channel per path can be dialled", async () => {
    const { platform, deliver } = memoryPlatform();
    const d = await startDiscovery({
      platform,
      clock: new VirtualClock(),
      deviceId: A,
      nonce: NA,
      port: 4000,
      interfaces: LAN,
    });
    const addresses = [
      { host: "10.0.0.2", port: 5000 },
      { host: "10.0.0.3", port: 5000 },
      { host: "10.9.0.3", port: 5000 }, // off-link: dropped
    ];
    deliver(
      encodeAnnouncement({ deviceId: B, nonce: randomNonce(), port: 5000, addresses }),
      "10.0.0.2",
    );
    const finder = combineDirectories([multicastDirectory(d)]);
    assert.deepEqual(finder.addresses!(B), addresses.slice(0, 2));
    assert.deepEqual(finder.lookup(B), addresses[0]);
    await d.close();
  });

  it("learns, expires and refuses by the clock; off-link sources are refused", async () => {
    const clock = new VirtualClock();
    const { platform, deliver } = memoryPlatform();
    const events: DiscoveryEvent[] = [];
    const d = await startDiscovery({
      platform,
      clock,
      deviceId: A,
      nonce: NA,
      port: 4000,
      interfaces: LAN,
      onEvent: (e) => events.push(e),
    });
    deliver(
      encodeAnnouncement({ deviceId: B, nonce: randomNonce(), port: 5000, ttl: 2000 }),
      "10.0.0.2",
    );
    deliver(encodeAnnouncement({ deviceId: C, nonce: randomNonce(), port: 5000 }), "10.9.0.3");
    assert.equal(d.lookup(B)?.host, "10.0.0.2");
    assert.equal(d.lookup(C), undefined);
    assert.deepEqual(events.find((e) => e.type === "refused"), {
      type: "refused",
      host: "10.9.0.3",
      reason: "off-link",
    });
    clock.advance(1999);
    assert.ok(d.lookup(B) !== undefined);
    clock.advance(2000);
    assert.equal(d.lookup(B), undefined);
    assert.deepEqual(events.at(-1), { type: "lost", deviceId: B, reason: "expired" });
    await d.close();
  });

  it("1000 bad announcements give a bounded number of warning lines", async () => {
    const clock = new VirtualClock();
    const { platform, deliver } = memoryPlatform();
    const warnings: string[] = [];
    const d = await startDiscovery({
      platform,
      clock,
      deviceId: A,
      nonce: NA,
      port: 4000,
      interfaces: LAN,
      warn: (m) => warnings.push(m),
    });
    const realB = encodeAnnouncement({ deviceId: B, nonce: randomNonce(), port: 5000 });
    deliver(realB, "10.0.0.2");
    const v3 = encodeAnnouncement({ deviceId: C, nonce: NA, port: 1 });
    v3[4] = 3;
    for (let i = 0; i < 1000; i++) {
      clock.advance(clock.time + 10);
      const from = `10.0.0.${100 + (i % 100)}`;
      deliver(encodeAnnouncement({ deviceId: A, nonce: randomNonce(), port: 6666 }), from); // clash
      deliver(encodeAnnouncement({ deviceId: B, nonce: randomNonce(), port: 6666 }), from); // contender
      deliver(v3, from); // unknown major
      if (i % 100 === 0) deliver(realB, "10.0.0.2"); // the real B keeps announcing
    }
    assert.equal(d.lookup(B)?.host, "10.0.0.2", "dials still go to the real B");
    // 10 s of flood: a burst of 3 per kind, nothing earned back yet
    assert.equal(warnings.length, 9, warnings.join("\n"));
    assert.equal(warnings.filter((w) => /clash/.test(w)).length, 3);
    assert.equal(warnings.filter((w) => /two runtimes announce/.test(w)).length, 3);
    assert.equal(warnings.filter((w) => /version 3/.test(w)).length, 3);
    clock.advance(clock.time + 60_000);
    deliver(encodeAnnouncement({ deviceId: A, nonce: randomNonce(), port: 6666 }), "10.0.0.9");
    assert.match(warnings.at(-1)!, /\(\d+ similar suppressed\)$/);
    await d.close();
  });
});

/** Whether multicast sent from 127.0.0.1 reaches a group member joined on 127.0.0.1. */
async function loopbackMulticast(group: string, port: number): Promise<string | undefined> {
  const { platform } = await testPlatform();
  let got = false;
  try {
    const r = await platform.udpBind({
      local: { address: group, port, family: "IPv4" },
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
const LOOPBACK = [{ name: "lo", address: "127.0.0.1", prefixLength: 8 }];

/** Skip a test with a one-line notice. */
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
  const running: Discovery[] = [];
  after(async () => {
    for (const d of running) await d.close();
  });

  async function start(id: string, tcpPort: number, log: DiscoveryEvent[], interval = 200) {
    const { platform } = await testPlatform();
    const d = await startDiscovery({
      platform,
      clock: runtimeHost(platform),
      deviceId: id,
      nonce: randomNonce(),
      port: tcpPort,
      interfaces: LOOPBACK,
      group: LOOP_GROUP,
      discoveryPort: LOOP_PORT,
      interval,
      onEvent: (e) => log.push(e),
    });
    running.push(d);
    return d;
  }

  it("three devices on one host find each other; a clash and a goodbye are reported", {
    timeout: 20_000,
  }, async (t) => {
    const reason = await noLoopback();
    if (reason !== undefined) return skip(t, "discovery on loopback", reason);
    const logs: DiscoveryEvent[][] = [[], [], []];
    const ids = [A, B, C];
    const ds = [];
    for (const [i, id] of ids.entries()) ds.push(await start(id, 1001 + i, logs[i]));
    const learned = (log: DiscoveryEvent[]) =>
      log.flatMap((e) => e.type === "learned" ? [e.peer] : []);
    await waitFor(
      () => logs.every((l) => learned(l).length >= 2),
      3000,
      "every device to find the others",
    );
    for (const [i, log] of logs.entries()) {
      assert.deepEqual(learned(log).map((p) => p.deviceId).sort(), ids.filter((_, j) => j !== i));
      for (const p of learned(log)) {
        assert.equal(p.host, "127.0.0.1");
        assert.equal(p.port, 1001 + ids.indexOf(p.deviceId));
        assert.equal(ds[i].lookup(p.deviceId.toLowerCase())?.port, p.port);
      }
      assert.equal(ds[i].peers().length, 2);
    }
    const twin: DiscoveryEvent[] = [];
    await start(A, 2001, twin);
    const clashes = (log: DiscoveryEvent[]) =>
      log.flatMap((e) => e.type === "clash" ? [`${e.deviceId}@${e.host}:${e.port}`] : []);
    await waitFor(
      () => clashes(logs[0]).length > 0 && clashes(twin).length > 0,
      3000,
      "both runtimes with the same id to report the clash",
    );
    assert.deepEqual(clashes(logs[0]), [`${A}@127.0.0.1:2001`]);
    assert.deepEqual(clashes(twin), [`${A}@127.0.0.1:1001`]);
    assert.equal(ds[1].lookup(A)?.port, 1001, "B keeps dialling the first runtime of A");
    await ds[2].close();
    await ds[2].close(); // idempotent
    await waitFor(
      () => logs[1].some((e) => e.type === "lost" && e.deviceId === C && e.reason === "goodbye"),
      1000,
      "B to see C's goodbye",
    );
  });

  it(
    "announce() finds the peers fast, with steady intervals far away",
    { timeout: 20_000 },
    async (t) => {
      const reason = await noLoopback();
      if (reason !== undefined) return skip(t, "discovery on loopback", reason);
      for (const d of running.splice(0)) await d.close();
      const a = await start(A, 1, [], 60_000);
      const b = await start(B, 2, [], 60_000);
      await waitFor(() => a.lookup(B) !== undefined && b.lookup(A) !== undefined, 2000, "both");
      const seenByC: DiscoveryEvent[] = [];
      const c = await start(C, 3, seenByC, 60_000);
      c.announce();
      await waitFor(() => c.peers().length === 2, 2000, "C to learn A and B");
      assert.deepEqual(c.peers().map((p) => p.deviceId).sort(), [A, B]);
    },
  );

  it(
    "a unicast datagram to the discovery port is never taken in",
    { timeout: 20_000 },
    async (t) => {
      const reason = await noLoopback();
      if (reason !== undefined) return skip(t, "discovery on loopback", reason);
      for (const d of running.splice(0)) await d.close();
      const log: DiscoveryEvent[] = [];
      const a = await start(A, 1, log, 60_000);
      const { platform } = await testPlatform();
      const s = await platform.udpBind(
        { local: { address: "127.0.0.1", port: 0, family: "IPv4" } },
        {
          onMessage() {},
        },
      );
      const forged = encodeAnnouncement({ deviceId: B, nonce: randomNonce(), port: 6666 });
      try {
        for (let i = 0; i < 5; i++) {
          // nobody listens on 127.0.0.1 at that port: later sends may see ECONNREFUSED
          await s.send(forged, { address: "127.0.0.1", port: LOOP_PORT, family: "IPv4" })
            ?.catch(() => {});
        }
        await new Promise((r) => setTimeout(r, 300));
        assert.equal(a.lookup(B), undefined, "a unicast datagram was taken in");
        assert.deepEqual(log.filter((e) => e.type === "refused"), []);
        // a multicast copy of the same datagram is taken in: the socket works
        await waitFor(
          async () => {
            await s.send(forged, { address: LOOP_GROUP, port: LOOP_PORT, family: "IPv4" })
              ?.catch(() => {});
            await new Promise((r) => setTimeout(r, 20));
            return a.lookup(B) !== undefined;
          },
          2000,
          "the multicast copy",
        );
        const heard = log.filter((e) => e.type === "learned" || e.type === "refused");
        assert.equal(heard.length, 1, JSON.stringify(heard));
      } finally {
        await s.close();
      }
    },
  );
});

describe("discovery and process lifetime", () => {
  it(
    "a process with nothing but a running discovery exits by itself",
    { timeout: 30_000 },
    async (t) => {
      if (!(await testPlatform()).unref) {
        return skip(t, "discovery and process lifetime", "datagram handles have no unref()");
      }
      const [cmd, args] = scriptCommand(join("tests", "_discovery_peer.ts"));
      process.env.LW_DISCOVERY_PEER = JSON.stringify({
        deviceId: A,
        bind: "127.0.0.1",
        port: 1,
        discoveryPort: 40000 + Math.floor(Math.random() * 20000),
        linger: true,
      });
      let p: Proc | undefined;
      try {
        p = run(cmd, args);
        delete process.env.LW_DISCOVERY_PEER;
        assert.equal(await p.exit(10_000), 0);
        assert.match(p.out(), /"ev":"ready"/);
      } finally {
        delete process.env.LW_DISCOVERY_PEER;
        p?.kill();
      }
    },
  );
});

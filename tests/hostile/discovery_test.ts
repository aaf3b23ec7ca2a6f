/**
 * Discovery under attack, with real processes in network namespaces this
 * test creates (`_net.ts`): an attacker on the victim's LAN, one on its
 * other interface, a real device, and the victim. Each item of the
 * hardening issue's "Discovery" bullet is one test:
 *
 * - a forged announcement never redirects dials for a device the victim
 *   knows, and holds a device it does not know yet at most as long as the
 *   table's rule allows;
 * - datagrams from another interface, from off-link sources, and unicast
 *   ones are ignored;
 * - 256+ forged ids do not keep a real device out;
 * - 1000 bad announcements give a bounded number of warning lines, while a
 *   legitimate client keeps working and the victim's memory and open files
 *   stay bounded.
 *
 * Needs root and iproute2.
 *
 * @module
 */
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, it } from "node:test";
import process from "node:process";
import { describeWith } from "../harness/env.ts";
import { type Child, scriptCommand, start } from "../_script.ts";
import { ip } from "../_netns.ts";
import { type Proc, run, waitFor } from "../_proc.ts";
import type { DiscoveryPeerJob } from "../_discovery_peer.ts";
import { encodeAnnouncement, randomNonce } from "../../core/discovery/wire.ts";
import { createHostileNet, type HostileNet } from "./_net.ts";
import { accountIdSeal, loadAccount } from "../../platform/security.ts";
import { nodeCrypto } from "../../platform/crypto.ts";
import type { ForgerJob, ForgerSend } from "./_forger.ts";

const GROUP = "239.255.76.87";
const PORT = 38471;
const V = "02:D1:5C:00:00:01";
const R = "02:D1:5C:00:00:02";

function hex(b: Uint8Array): string {
  return [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
}

const ACCOUNT = "hostile discovery test";
/**
 * Devices with an account only hear ids sealed with it: against them the
 * forger also knows the account (an insider, the strongest discovery
 * attacker); clear ids from one without it are refused as anonymous.
 */
const SEAL = (() => {
  const crypto = nodeCrypto();
  return accountIdSeal(
    crypto,
    loadAccount(crypto, { env: { LINKWEAVE_ACCOUNT: ACCOUNT }, stateDir: "/nonexistent" }).key,
  );
})();

/** An announcement with the id in the clear (heard by devices without an account). */
function forged(deviceId: string, port = 7777, ttl = 30_000): string {
  return hex(encodeAnnouncement({ deviceId, nonce: randomNonce(), port, ttl }));
}

/** An announcement with the id sealed with the devices' account. */
function sealed(deviceId: string, port = 7777): string {
  return hex(encodeAnnouncement({ deviceId, nonce: randomNonce(), port, seal: SEAL }));
}

function lines(text: string): Record<string, unknown>[] {
  return text.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
}

/** RSS (kB) and open files of a process. */
function usage(pid: number): { rss: number; fds: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return {
    rss: Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0),
    fds: readdirSync(`/proc/${pid}/fd`).length,
  };
}

describeWith("hostile: discovery", { root: true, commands: { ip: "iproute2" } }, () => {
  let net: HostileNet;
  let running: Array<{ kill(): void }> = [];
  let tmp = "";
  let jobs = 0;

  before(() => {
    net = createHostileNet();
    tmp = mkdtempSync(join(tmpdir(), "disc-hostile-"));
  });
  after(() => {
    for (const p of running) p.kill();
    net?.close();
    if (tmp !== "") rmSync(tmp, { recursive: true, force: true });
  });
  const stopAll = () => {
    for (const p of running) p.kill();
    running = [];
  };

  function inNs(ns: string, module: string, env: Record<string, string>): Child {
    // the local registry of killed devices stays in the test's own directory
    // One account for the devices of all the namespaces (a per-user one stays on loopback).
    const base = {
      LINKWEAVE_DISCOVERY: "auto",
      XDG_RUNTIME_DIR: join(tmp, "run"),
      LINKWEAVE_ACCOUNT: ACCOUNT,
    };
    const c = start(module, { ...base, ...env }, ["ip", "netns", "exec", ns]);
    running.push(c);
    return c;
  }

  function forger(ns: string, job: ForgerJob): Child {
    const file = join(tmp, `job-${jobs++}.json`);
    writeFileSync(file, JSON.stringify(job));
    return inNs(ns, "tests/hostile/_forger.ts", { LW_FORGER: `@${file}` });
  }

  /** A discovery-only device that answers `lookup` commands on stdin. */
  function peer(ns: string, job: DiscoveryPeerJob): Proc {
    const [cmd, args] = scriptCommand("tests/_discovery_peer.ts");
    process.env.LW_DISCOVERY_PEER = JSON.stringify({ ms: 60_000, ...job });
    try {
      const p = run("ip", ["netns", "exec", ns, cmd, ...args]);
      running.push(p);
      return p;
    } finally {
      delete process.env.LW_DISCOVERY_PEER;
    }
  }

  async function lookup(p: Proc, id: string): Promise<string | undefined> {
    const before = lines(p.out()).filter((e) => e.ev === "lookup").length;
    p.child.stdin!.write(`lookup ${id}\n`);
    let found: Record<string, unknown> | undefined;
    await waitFor(
      () => {
        found = lines(p.out()).filter((e) => e.ev === "lookup")[before];
        return found !== undefined;
      },
      5000,
      "a lookup answer",
    );
    return found!.host === undefined ? undefined : `${found!.host}:${found!.port}`;
  }

  const ready = (p: Proc) =>
    waitFor(() => lines(p.out()).some((e) => e.ev === "ready"), 15_000, "a peer to start");

  it("a forged announcement never redirects dials to a device the victim knows", {
    timeout: 60_000,
  }, async () => {
    stopAll();
    const real = inNs(net.real.ns, "tests/hostile/_device.ts", {
      LINKWEAVE_DEVICE_ID: R,
      LINKWEAVE_BIND: net.real.addr,
      LINKWEAVE_PORT: "0",
    });
    await real.waitFor(/"ready"/);
    const victim = inNs(net.victim.ns, "tests/hostile/_device.ts", {
      LINKWEAVE_DEVICE_ID: V,
      LINKWEAVE_BIND: net.victim.addr,
      LINKWEAVE_PORT: "0",
      LINKWEAVE_TRACE: "1",
      LINKWEAVE_CONNECT_TIMEOUT: "4000",
      LW_CONNECT: R,
      LW_DELAY: "2500",
      LW_COUNT: "6",
      LW_EVERY: "400",
    });
    // the victim knows the real device before the attack starts
    await victim.waitFor(new RegExp(`"discovery\\.learned","deviceId":"${R}"`));
    const attacker = forger(net.forger.ns, {
      listen: { host: net.forger.addr, port: 7777 },
      everyMs: 100,
      sends: [{
        from: net.forger.addr,
        to: GROUP,
        port: PORT,
        hex: Array.from({ length: 20 }, (_, i) => i % 2 === 0 ? sealed(R) : forged(R)),
      }],
    });
    await victim.waitFor(/"done"/, 45_000);
    const attempts = lines(victim.out).filter((e) => e.attempt !== undefined);
    assert.equal(attempts.length, 6);
    for (const a of attempts) {
      assert.deepEqual([a.ok, a.peer], [true, R], victim.out + victim.err);
    }
    await attacker.waitFor(/"sent":20/);
    assert.doesNotMatch(attacker.out, /"accepted"/, "no dial reached the forger");
    assert.ok(
      lines(victim.err).some((e) =>
        e.linkweave === "discovery.refused" && e.reason === "anonymous"
      ),
      `clear ids are refused as anonymous:\n${victim.err}`,
    );
    const warned = victim.err.split("\n").filter((l) => /two runtimes announce/.test(l));
    assert.ok(warned.length >= 1 && warned.length <= 3, victim.err);
    stopAll();
  });

  it("a forger heard first holds an unknown id at most half the capped TTL", {
    timeout: 60_000,
  }, async () => {
    stopAll();
    const MAX_TTL = 8000;
    const victim = peer(net.victim.ns, {
      deviceId: V,
      bind: net.victim.addr,
      port: 1,
      interval: 200,
      maxTtl: MAX_TTL,
    });
    await ready(victim);
    const attacker = forger(net.forger.ns, {
      sends: [{ from: net.forger.addr, to: GROUP, port: PORT, hex: [forged(R, 7777, 0xffffffff)] }],
    });
    await attacker.waitFor(/"sent":1/);
    const t0 = Date.now();
    const real = peer(net.real.ns, { deviceId: R, bind: net.real.addr, port: 4242, interval: 200 });
    await waitFor(
      async () => await lookup(victim, R) === `${net.forger.addr}:7777`,
      2000,
      "the forgery to be taken (the id is unknown)",
    );
    await ready(real);
    const tReal = Date.now();
    await waitFor(
      async () => await lookup(victim, R) === `${net.real.addr}:4242`,
      MAX_TTL + 3000,
      "the real device to replace the forger",
    );
    const held = Date.now() - t0;
    // The rule: the forger's endpoint (TTL capped at MAX_TTL) is replaced once it was silent for
    // half its TTL and the real device announced twice meanwhile (its first announcements are
    // 200 ms apart), at the real device's next announcement (at most one steady interval,
    // 1000 ms, later); and in any case when it expires. One second of slack for the polling.
    const bound = Math.min(MAX_TTL, Math.max(MAX_TTL / 2, tReal - t0 + 200) + 1000) + 1000;
    console.log(`  the forger held the id for ${held} ms (rule: at most ${bound} ms here)`);
    assert.ok(held <= bound, `the forger held the id for ${held} ms, more than ${bound}`);
    stopAll();
  });

  it("datagrams from another interface, from off-link sources, and unicast ones are ignored", {
    timeout: 60_000,
  }, async () => {
    stopAll();
    const victim = peer(net.victim.ns, {
      deviceId: V,
      bind: net.victim.addr, // discovery runs on LAN A only
      port: 1,
      interval: 200,
      refusals: true,
    });
    await ready(victim);
    // an address outside LAN A's subnet on the attacker's LAN A interface
    ip("-n", net.forger.ns, "addr", "add", "172.16.50.3/32", "dev", net.forger.dev);
    const ids = Array.from({ length: 6 }, (_, i) => `02:BA:D0:00:00:0${i + 1}`);
    const fromOther = forger(net.other.ns, {
      sends: [
        { from: net.other.addr, to: net.victim.addrB, port: PORT, hex: [forged(ids[0])] },
        { from: net.other.addr, to: net.victim.addr, port: PORT, hex: [forged(ids[1])] },
        { from: net.other.addr, to: GROUP, port: PORT, hex: [forged(ids[2])] },
      ],
    });
    await fromOther.waitFor(/"sent":3/);
    const onLan: ForgerSend[] = [
      { from: "172.16.50.3", to: GROUP, port: PORT, hex: [forged(ids[3])] },
      { from: net.forger.addr, to: net.victim.addr, port: PORT, hex: [forged(ids[4])] },
      // the control: the same attacker's on-link multicast is taken in
      { from: net.forger.addr, to: GROUP, port: PORT, hex: [forged(ids[5])] },
    ];
    const fromLan = forger(net.forger.ns, { everyMs: 50, sends: onLan });
    await fromLan.waitFor(/"sent":3/);
    await waitFor(
      async () => await lookup(victim, ids[5]) !== undefined,
      3000,
      "the on-link multicast control",
    );
    for (const id of ids.slice(0, 5)) assert.equal(await lookup(victim, id), undefined, id);
    const events = lines(victim.out());
    const learned = events.filter((e) => e.ev === "learned").map((e) => e.deviceId);
    assert.deepEqual(learned, [ids[5]]);
    assert.ok(
      events.some((e) => e.ev === "refused" && e.reason === "off-link" && e.host === "172.16.50.3"),
      victim.out(),
    );
    stopAll();
  });

  it("256+ forged ids do not keep a real device out", { timeout: 60_000 }, async () => {
    stopAll();
    const victim = peer(net.victim.ns, {
      deviceId: V,
      bind: net.victim.addr,
      port: 1,
      interval: 200,
      refusals: true,
    });
    await ready(victim);
    // 40 ids from the attacker's own address (the 33rd on are refused), then 8 ids, twice,
    // from each of 40 more addresses on LAN A (320 ids that fill the table)
    const sends: ForgerSend[] = [];
    let n = 0;
    const nth = (k: number) =>
      `02:F0:00:00:${(k >> 8).toString(16).padStart(2, "0")}:${
        (k & 255).toString(16).padStart(2, "0")
      }`.toUpperCase();
    const id = () => nth(++n);
    sends.push({
      from: net.forger.addr,
      to: GROUP,
      port: PORT,
      hex: Array.from({ length: 40 }, () => forged(id())),
    });
    for (let i = 0; i < 40; i++) {
      const from = `${net.lanA}.${100 + i}`;
      ip("-n", net.forger.ns, "addr", "add", `${from}/24`, "dev", net.forger.dev);
      const batch = Array.from({ length: 8 }, () => forged(id()));
      sends.push({ from, to: GROUP, port: PORT, hex: [...batch, ...batch] });
    }
    const attacker = forger(net.forger.ns, { sends, everyMs: 1 });
    await attacker.waitFor(/"sent":680/, 20_000);
    const real = peer(net.real.ns, { deviceId: R, bind: net.real.addr, port: 4242, interval: 200 });
    await ready(real);
    await waitFor(
      async () => await lookup(victim, R) === `${net.real.addr}:4242`,
      5000,
      "the victim to learn the real device",
    );
    // the table was full (it took in more than 256 ids, evicting), and one source's 33rd id on was refused
    const learned = lines(victim.out()).filter((e) => e.ev === "learned").length;
    assert.ok(learned > 256, `${learned} learned`);
    const limited = lines(victim.out()).filter((e) =>
      e.ev === "refused" && e.reason === "host-limit" && e.host === net.forger.addr
    ).map((e) => e.deviceId);
    assert.deepEqual(limited, Array.from({ length: 8 }, (_, i) => nth(33 + i)));
    stopAll();
  });

  it("1000 bad announcements give a bounded number of warning lines; a real client keeps working", {
    timeout: 60_000,
  }, async () => {
    stopAll();
    const victim = inNs(net.victim.ns, "tests/hostile/_device.ts", {
      LINKWEAVE_DEVICE_ID: V,
      LINKWEAVE_BIND: net.victim.addr,
      LINKWEAVE_PORT: "0",
    });
    await victim.waitFor(/"ready"/);
    const pid = victim.proc.pid!;
    const before = usage(pid);
    const flood: string[] = [];
    const v3 = encodeAnnouncement({ deviceId: R, nonce: randomNonce(), port: 7777 });
    v3[4] = 3;
    for (let i = 0; i < 1000; i++) {
      flood.push(sealed(V)); // another runtime with the victim's id: a clash
      flood.push(sealed(R)); // another runtime with the real device's id: a contender
      flood.push(hex(v3)); // an unknown major version
    }
    const real = inNs(net.real.ns, "tests/hostile/_device.ts", {
      LINKWEAVE_DEVICE_ID: R,
      LINKWEAVE_BIND: net.real.addr,
      LINKWEAVE_PORT: "0",
      LINKWEAVE_TRACE: "1",
      LINKWEAVE_CONNECT_TIMEOUT: "4000",
      LW_CONNECT: V,
      LW_COUNT: "8",
      LW_EVERY: "300",
    });
    // the client knows the victim before the attack starts
    await real.waitFor(new RegExp(`"discovery\\.learned","deviceId":"${V}"`));
    const attacker = forger(net.forger.ns, {
      sends: [{ from: net.forger.addr, to: GROUP, port: PORT, hex: flood }],
    });
    await attacker.waitFor(/"sent":3000/, 30_000);
    await real.waitFor(/"done"/, 45_000);
    const attempts = lines(real.out).filter((e) => e.attempt !== undefined);
    assert.equal(attempts.length, 8);
    for (const a of attempts) assert.deepEqual([a.ok, a.peer], [true, V], real.out + real.err);
    const after = usage(pid);
    const warnings = victim.err.split("\n").filter((l) => l.startsWith("linkweave:"));
    for (const kind of [/device id clash/, /two runtimes announce/, /version 3/]) {
      const n = warnings.filter((l) => kind.test(l)).length;
      assert.ok(n >= 1 && n <= 3, `${n} lines matching ${kind}:\n${victim.err}`);
    }
    assert.ok(warnings.length <= 9, victim.err);
    console.log(
      `  victim: ${warnings.length} warning lines; RSS ${before.rss} -> ${after.rss} kB; fds ${before.fds} -> ${after.fds}`,
    );
    assert.ok(after.rss - before.rss < 64 * 1024, `RSS grew by ${after.rss - before.rss} kB`);
    assert.ok(after.fds - before.fds <= 8, `fds ${before.fds} -> ${after.fds}`);
    stopAll();
  });
});

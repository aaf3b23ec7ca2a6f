/**
 * Multicast discovery between devices in three network namespaces this test
 * creates, each joined by a veth pair to a bridge in a fourth namespace (the
 * "switch"); all removed afterwards. Each device is a child process of the
 * current runtime (`tests/_discovery_peer.ts` under `ip netns exec`) running
 * `startDiscovery` on its namespace's interface, with the default group
 * and discovery port. Needs root and `ip` (iproute2).
 *
 * @module
 */
import { after, before, it } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { describeWith } from "./harness/env.ts";
import { scriptCommand } from "./_script.ts";
import { createLan, type Lan } from "./_netns.ts";
import { type Proc, run, waitFor } from "./_proc.ts";
import type { DiscoveryPeerJob } from "./_discovery_peer.ts";

let lan: Lan | undefined;
/** The namespaces and addresses of the three hosts (set up in `before`). */
let NS: string[] = [];
let ADDR: string[] = [];
const IDS = ["02:00:5E:00:00:01", "02:00:5E:00:00:02", "02:00:5E:00:00:03"];
const PORTS = [40001, 40002, 40003];
/** Fast interval of the children: steady 1250 ms, TTL 3750 ms. */
const INTERVAL = 250;

/** One child's output, parsed. */
interface Ev {
  ev: string;
  deviceId?: string;
  host?: string;
  port?: number;
  nonce?: string;
}

function events(p: Proc): Ev[] {
  return p.out().split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as Ev);
}

describeWith("discovery across network namespaces", {
  root: true,
  commands: { ip: "iproute2" },
}, () => {
  const procs: Proc[] = [];
  let peer: string[] = [];
  const devices: Proc[] = [];

  before(() => {
    lan = createLan(3, "lwd");
    NS = lan.namespaces;
    ADDR = lan.addresses;
    const [cmd, args] = scriptCommand("tests/_discovery_peer.ts");
    peer = [cmd, ...args];
  });

  after(() => {
    for (const p of procs) p.kill();
    lan?.close();
  });

  function start(ns: string, job: DiscoveryPeerJob): Proc {
    process.env.LW_DISCOVERY_PEER = JSON.stringify({ interval: INTERVAL, ms: 40_000, ...job });
    try {
      const p = run("ip", ["netns", "exec", ns, ...peer]);
      procs.push(p);
      return p;
    } finally {
      delete process.env.LW_DISCOVERY_PEER;
    }
  }

  const has = (p: Proc, f: (e: Ev) => boolean) => events(p).some(f);

  it("every device finds the other two, with their address and TCP port", {
    timeout: 30_000,
  }, async () => {
    for (const [i, ns] of NS.entries()) {
      devices.push(start(ns, { deviceId: IDS[i], bind: ADDR[i], port: PORTS[i] }));
    }
    for (const d of devices) {
      await waitFor(() => has(d, (e) => e.ev === "ready"), 15_000, "a device to start");
    }
    const t0 = Date.now();
    await waitFor(
      () => devices.every((d) => events(d).filter((e) => e.ev === "learned").length >= 2),
      5000,
      "every device to find the other two",
    );
    const took = Date.now() - t0;
    for (const [i, d] of devices.entries()) {
      const found = events(d).filter((e) => e.ev === "learned")
        .map(({ deviceId, host, port }) => ({ deviceId, host, port }))
        .sort((a, b) => a.port! - b.port!);
      const expected = [0, 1, 2].filter((j) => j !== i)
        .map((j) => ({ deviceId: IDS[j], host: ADDR[j], port: PORTS[j] }));
      assert.deepEqual(found, expected, `device ${i + 1}: ${d.out()}`);
      assert.ok(!has(d, (e) => e.ev === "clash" || e.ev === "error"), d.out());
    }
    console.log(`  all found in ${took} ms after the last start`);
  });

  it("a second runtime with the same id is reported as a clash by both", {
    timeout: 30_000,
  }, async () => {
    // device 1's id again, in device 2's namespace: it shares the discovery port there
    const twin = start(NS[1], { deviceId: IDS[0], bind: ADDR[1], port: 40004 });
    devices.push(twin);
    await waitFor(
      () => has(twin, (e) => e.ev === "clash") && has(devices[0], (e) => e.ev === "clash"),
      5000,
      "both runtimes with one id to report the clash",
    );
    const clashes = (p: Proc) =>
      events(p).filter((e) => e.ev === "clash").map(({ deviceId, host, port }) => ({
        deviceId,
        host,
        port,
      }));
    assert.deepEqual(clashes(devices[0]), [{ deviceId: IDS[0], host: ADDR[1], port: 40004 }]);
    assert.deepEqual(clashes(twin), [{ deviceId: IDS[0], host: ADDR[0], port: PORTS[0] }]);
    // the twin found devices 2 (on its own host) and 3 too
    await waitFor(
      () => [IDS[1], IDS[2]].every((x) => has(twin, (e) => e.ev === "learned" && e.deviceId === x)),
      5000,
      "the twin to find devices 2 and 3",
    );
    // a third device sees two runtimes with one id: a contender, reported once, never dialled
    await waitFor(() => has(devices[2], (e) => e.ev === "contender"), 5000, "a contender");
    assert.equal(events(devices[2]).filter((e) => e.ev === "contender").length, 1);
    assert.ok(
      !has(devices[2], (e) => e.ev === "learned" && e.deviceId === IDS[0] && e.port === 40004),
      "the twin never replaces device 1 while device 1 keeps announcing",
    );
  });

  it("a closed device is lost at once (goodbye), a killed one after its TTL", {
    timeout: 30_000,
  }, async () => {
    const [d1, d2, d3] = devices;
    const t0 = Date.now();
    d3.child.stdin!.write("close\n");
    assert.equal(await d3.exit(10_000), 0);
    assert.ok(has(d3, (e) => e.ev === "closed"));
    await waitFor(
      () => [d1, d2].every((d) => has(d, (e) => e.ev === "lost" && e.deviceId === IDS[2])),
      1000,
      "devices 1 and 2 to lose device 3 at its goodbye",
    );
    const goodbye = Date.now() - t0;
    const t1 = Date.now();
    d2.kill(); // SIGKILL: no goodbye
    await waitFor(
      () => has(d1, (e) => e.ev === "lost" && e.deviceId === IDS[1]),
      INTERVAL * 5 * 3 + 3000,
      "device 1 to lose device 2 after its TTL",
    );
    const ttl = Date.now() - t1;
    // not before the TTL minus one steady interval (its last announcement came up to then)
    assert.ok(ttl >= INTERVAL * 5 * 2 - 100, `lost after ${ttl} ms (killed at ${t1}): ${d1.out()}`);
    console.log(`  goodbye seen in ${goodbye} ms; killed device lost after ${ttl} ms`);
  });
});

/**
 * Link-level attacks where a real network matters, in network namespaces
 * this test creates (`tests/_netns.ts`: a victim, a real device and an
 * impostor on one bridged LAN; names start with `hs`): a device that
 * vanishes from the network without a word (its cable cut: no FIN, no RST)
 * while an impostor on the LAN claims its id. Needs root and iproute2.
 *
 * @module
 */
import assert from "node:assert/strict";
import { after, before, it } from "node:test";
import { describeWith } from "../harness/env.ts";
import { ip } from "../_netns.ts";
import { createLan, type Lan } from "../_netns.ts";
import { type Child, start } from "../_script.ts";
import { assertServed, jsonLines, sleep, startClient, startVictim, until } from "./_attack.ts";

const VICTIM = "02:71:C7:00:00:0A";
const KEEPALIVE = 1500;

describeWith("hostile: link over a network", {
  root: true,
  commands: { ip: "iproute2" },
}, () => {
  let lan: Lan | undefined;
  const running: Array<{ kill(): void }> = [];

  before(() => {
    lan = createLan(3, "hs");
  });
  after(() => {
    for (const p of running) p.kill();
    lan?.close();
  });

  it(
    "a device cut off the network is replaced only once its link is dead; an impostor meanwhile is refused",
    {
      timeout: 60_000,
    },
    async () => {
      const [nsV, nsR, nsA] = lan!.namespaces;
      const [addrV] = lan!.addresses;
      const env = { LINKWEAVE_KEEPALIVE_TIMEOUT: String(KEEPALIVE) };
      const v = await startVictim(VICTIM, { ...env, LINKWEAVE_BIND: addrV }, [
        "ip",
        "netns",
        "exec",
        nsV,
      ]);
      running.push(v);
      const where = { host: addrV, prefix: ["ip", "netns", "exec", nsR] };
      const c = await startClient(v, "02:C1:1E:00", env, where);
      running.push(c.child);
      const real = "02:C1:1E:00:00:00"; // the client's kept device
      v.rebase();
      const from = Date.now();
      const impostor: Child = start("tests/hostile/_claimer.ts", {
        LW_HOST: addrV,
        LW_PORT: String(v.port),
        LW_ID: real,
        LW_EVERY: "100",
      }, ["ip", "netns", "exec", nsA]);
      running.push(impostor);
      // While the real device is alive, for twice the keep-alive timeout: every claim is refused.
      await sleep(2 * KEEPALIVE);
      const claims = () => jsonLines(impostor.out).filter((l) => l.op !== undefined);
      assert.ok(claims().length >= 5, impostor.out + impostor.err);
      for (const l of claims()) assert.deepEqual([l.op, l.reason], ["refuse", "clash"]);
      await assertServed(c, from);
      // The real device's cable is cut: nothing more arrives from it, not even a reset.
      const dev = ip("-n", nsR, "-o", "link", "show").split("\n")
        .map((l) => /^\d+: ([^:@]+)/.exec(l)?.[1]).find((d) => d !== undefined && d !== "lo")!;
      ip("-n", nsR, "link", "set", dev, "down");
      const cut = Date.now();
      await until(() => claims().some((l) => l.op === "welcome"), KEEPALIVE + 5000, "a welcome");
      const taken = claims().find((l) => l.op === "welcome")!.at as number;
      for (const l of claims().filter((l) => l.op !== "welcome")) {
        assert.deepEqual([l.op, l.reason], ["refuse", "clash"]);
      }
      // The client sent something every 50 ms until the cut: its link died about KEEPALIVE later.
      console.log(`  impostor welcomed ${taken - cut} ms after the real device was cut off`);
      assert.ok(taken - cut >= KEEPALIVE - 250, `replaced ${taken - cut} ms after the cut`);
      // The cable is back; the real device restarts with its id and is served.
      ip("-n", nsR, "link", "set", dev, "up");
      c.child.kill();
      const again = await startClient(v, "02:C1:1E:00", env, where);
      running.push(again.child);
      const r = await again.roundAfter(Date.now());
      assert.deepEqual([r.fresh, r.kept], ["ok", "ok"]);
      const peak = v.peak();
      console.log(
        `  victim RSS ${v.base.rss} -> peak ${peak.rss} KiB, fds ${v.base.fds} -> peak ${peak.fds}`,
      );
      // Some 40 refused channels and the clients' links.
      assert.ok(peak.fds - v.base.fds <= 16, `fds ${v.base.fds} -> ${peak.fds}`);
      assert.ok(peak.rss - v.base.rss < 32 * 1024, `RSS ${v.base.rss} -> ${peak.rss} KiB`);
      for (const p of running) p.kill();
    },
  );
});

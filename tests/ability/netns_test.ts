/**
 * abilityConnectionManager between two devices in two network namespaces
 * this test creates (veths to a bridge): a collaboration, texts in order,
 * 8 MiB of data intact, then the link cut (the peer's interface down):
 * `NETWORK_DISCONNECTED` after the keep-alive. Needs root and iproute2.
 *
 * @module
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { after, before, it } from "node:test";
import { describeWith } from "../harness/env.ts";
import { type Child, start } from "../_script.ts";
import { createLan, type Lan } from "../_netns.ts";
import { DisconnectReason } from "../../ability_connection_manager.ts";

const A = "02:00:00:00:AF:01";
const B = "02:00:00:00:AF:02";

describeWith("abilityConnectionManager across two network namespaces", {
  root: true,
  commands: { ip: "iproute2" },
}, () => {
  const children: Child[] = [];
  let lan: Lan | undefined;

  before(() => {
    lan = createLan(2, "ab");
  });

  after(() => {
    for (const c of children) c.kill();
    lan?.close();
  });

  it("collaborates across namespaces; a cut link is NETWORK_DISCONNECTED", async () => {
    const [nsA, nsB] = lan!.namespaces;
    const [addrA, addrB] = lan!.addresses;
    const common = {
      LINKWEAVE_DISCOVERY: "off",
      LINKWEAVE_KEEPALIVE_TIMEOUT: "2000",
      // Off loopback a device needs an account of its own (both share this one).
      LINKWEAVE_ACCOUNT: "ability netns test account",
    };
    const b = start("tests/ability/_peer.ts", {
      ...common,
      LINKWEAVE_DEVICE_ID: B,
      LINKWEAVE_BIND: addrB,
      LINKWEAVE_PORT: "38470",
    }, ["ip", "netns", "exec", nsB]);
    children.push(b);
    await b.waitFor(/"ready"/, 20_000);
    const a = start("tests/ability/_caller.ts", {
      ...common,
      LINKWEAVE_DEVICE_ID: A,
      LINKWEAVE_BIND: addrA,
      LINKWEAVE_PORT: "0",
      LINKWEAVE_PEERS: `${B}@${addrB}:38470`,
      LW_PEER: B,
    }, ["ip", "netns", "exec", nsA]);
    children.push(a);
    const [line] = await a.waitFor(/\{"step".*\}/, 30_000);
    assert.deepEqual(JSON.parse(line), { step: "connected", inOrder: true, intact: true });
    // Cut: the peer's interface goes down; nothing more crosses, nothing closes.
    const dev = spawnSync("ip", ["-n", nsB, "-o", "link", "show"], { encoding: "utf8" }).stdout
      .split("\n").map((l) => /^\d+: ([^:@]+)/.exec(l)?.[1]).find((d) => d && d !== "lo")!;
    const t0 = Date.now();
    spawnSync("ip", ["-n", nsB, "link", "set", dev, "down"]);
    const [gone] = await a.waitFor(/\{"disconnect":\d+\}/, 10_000);
    assert.deepEqual(JSON.parse(gone), { disconnect: DisconnectReason.NETWORK_DISCONNECTED });
    assert.ok(Date.now() - t0 >= 1500, "noticed by the keep-alive, not by a closed channel");
  });
});

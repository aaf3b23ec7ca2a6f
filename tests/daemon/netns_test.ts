/**
 * Launch from a manifest across two network namespaces this test creates:
 * the device daemon of device B in one, the seed's device-A example
 * (`examples/ability_caller_001.ts`) in the other. The caller's first
 * `connect` makes the daemon start the seed's device-B example
 * (`examples/ability_sink_001.ts`) in the foreground, which accepts; the
 * whole seed flow runs and device A exits by itself. Needs root and
 * iproute2.
 *
 * @module
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { after, before, it } from "node:test";
import { describeWith } from "../harness/env.ts";
import { type Child, scriptCommand, start } from "../_script.ts";
import { createLan, type Lan } from "../_netns.ts";
import { within } from "../harness/within.ts";

const A = "02:00:00:00:DB:0A";
const B = "02:00:00:00:DB:0B";

describeWith("device daemon across two network namespaces", {
  root: true,
  commands: { ip: "iproute2" },
}, () => {
  const children: Child[] = [];
  const launched: number[] = [];
  let lan: Lan | undefined;
  const dir = mkdtempSync(join(tmpdir(), "daemon-netns-"));

  before(() => {
    lan = createLan(2, "dmn");
  });

  after(() => {
    for (const c of children) c.kill();
    // Every ability a daemon started, also when the test failed before it noted one.
    for (const c of children) {
      for (const m of c.out.matchAll(/\{"daemon":"launched".*"pid":(\d+)/g)) {
        launched.push(Number(m[1]));
      }
    }
    for (const pid of launched) {
      try {
        process.kill(pid, "SIGKILL");
      } catch { /* gone */ }
    }
    lan?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("the seed's device A connects; B's daemon starts the seed's device B, which accepts", async () => {
    const [nsA, nsB] = lan!.namespaces;
    const [addrA, addrB] = lan!.addresses;
    const common = {
      LINKWEAVE_DISCOVERY: "off",
      // Off loopback a device needs an account of its own (both share this one).
      LINKWEAVE_ACCOUNT: "daemon netns test account",
      XDG_STATE_HOME: join(dir, "state"),
      XDG_RUNTIME_DIR: join(dir, "run"),
      XDG_CONFIG_HOME: join(dir, "config"),
    };
    const [cmd, args] = scriptCommand("examples/ability_sink_001.ts");
    const manifest = join(dir, "abilities.json");
    writeFileSync(
      manifest,
      JSON.stringify({
        abilities: [{
          bundleName: "com.example.remotephotodemo",
          moduleName: "entry",
          abilityName: "EntryAbility",
          command: cmd,
          args,
          cwd: process.cwd(),
        }],
      }),
    );
    const daemon = start("tests/daemon/_daemon.ts", {
      ...common,
      LINKWEAVE_DEVICE_ID: B,
      LINKWEAVE_BIND: addrB,
      LINKWEAVE_PORT: "38470",
      LW_SOCKET: join(dir, "d.sock"),
      LW_MANIFEST: manifest,
    }, ["ip", "netns", "exec", nsB]);
    children.push(daemon);
    await daemon.waitFor(/"daemon":"ready"/, 30_000);
    const a = start("examples/ability_caller_001.ts", {
      ...common,
      LINKWEAVE_DEVICE_ID: A,
      LINKWEAVE_BIND: addrA,
      LINKWEAVE_PORT: "0",
      LINKWEAVE_PEERS: `${B}@${addrB}:38470`,
    }, ["ip", "netns", "exec", nsA]);
    children.push(a);
    const [ev] = await daemon.waitFor(/\{"daemon":"launched".*\}/, 20_000);
    const launch = JSON.parse(ev);
    launched.push(launch.pid);
    assert.equal(launch.ability, "com.example.remotephotodemo/entry/EntryAbility");
    assert.equal(launch.foreground, true, "the seed asks for START_IN_FOREGROUND");
    assert.equal(await within(a.exited, 30_000, "device A exit"), 0, `${a.out}\n${a.err}`);
    for (
      const line of [
        "I 0000/testTag: session connect, sessionId is 100",
        "I 0000/testTag: sendMessage success",
        "I 0000/testTag: destroyAbilityConnectionSession called",
      ]
    ) assert.ok(a.out.includes(line), `device A printed "${line}":\n${a.out}`);
    // The foreground ability shares the daemon's terminal: its lines are in the daemon's output.
    assert.match(daemon.out, /on collaborate/);
    assert.match(daemon.out, /acceptConnect success/);
    // The daemon stops, and its foreground ability with it.
    process.kill(daemon.proc.pid!, "SIGTERM");
    assert.equal(await within(daemon.exited, 10_000, "daemon stop"), 0, daemon.err);
  });
});

/**
 * Pairing while a device daemon runs: `linkweave pair offer` and
 * `linkweave pair enter`, attached to the daemon (device D), pair the
 * daemon's device (which owns the identity and the trust store) with a
 * device Q of another account (in this process): before, Q cannot link to
 * D; after, Q reaches a server of an application attached to D.
 *
 * @module
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { after, before, describe, it } from "node:test";
import { type Child, freePort, start } from "../_script.ts";
import { createDevice, type Device } from "../../device.ts";
import { within } from "../harness/within.ts";

const D = "02:00:00:00:DA:3D";
const Q = "02:00:00:00:DA:31";
const R = "02:00:00:00:DA:32";
const dir = mkdtempSync(join(tmpdir(), "daemon2-pairing-"));
const SOCKET = join(dir, "d.sock");
const COMMON = {
  LINKWEAVE_DISCOVERY: "off",
  LINKWEAVE_ACCOUNT: "daemon2-pairing-d-account",
  XDG_STATE_HOME: join(dir, "state"),
  XDG_CONFIG_HOME: join(dir, "config"),
  XDG_RUNTIME_DIR: join(dir, "run"),
  LINKWEAVE_DAEMON: SOCKET,
};
const savedState = process.env.XDG_STATE_HOME;
process.env.XDG_STATE_HOME = join(dir, "q-state");

const children: Child[] = [];
const devices: Device[] = [];
let daemonPort = 0;

after(async () => {
  for (const c of children) c.kill();
  for (const d of devices) await d.close();
  if (savedState === undefined) delete process.env.XDG_STATE_HOME;
  else process.env.XDG_STATE_HOME = savedState;
  rmSync(dir, { recursive: true, force: true });
});

/** A `linkweave` command line attached to the daemon (or the daemon itself). */
function cli(args: string[], env: Record<string, string> = {}): Child {
  const c = start("cli/mod.ts", { ...COMMON, ...env }, [], { args });
  children.push(c);
  return c;
}

/** A device of another account than D's, in this process. */
async function outsider(id: string): Promise<{ device: Device; port: number }> {
  const port = await freePort();
  const device = createDevice({
    deviceId: id,
    port,
    peers: [`${D}@127.0.0.1:${daemonPort}`],
    discovery: "off",
    account: `daemon2-pairing-${id.slice(-2)}-account`,
    daemon: false,
  });
  devices.push(device);
  await device.runtime();
  return { device, port };
}

/** Whether `device` gets a linkEnhance connection to D's server "echo". */
async function reachesEcho(device: Device): Promise<{ success: boolean; reason: number }> {
  const conn = device.createConnection(D, "echo");
  const r = new Promise<{ success: boolean; reason: number }>((res) =>
    conn.on("connectResult", res)
  );
  conn.connect();
  const result = await within(r, 15_000, "connect to echo");
  conn.close();
  return result;
}

describe("pairing through the device daemon", { timeout: 120_000 }, () => {
  before(async () => {
    daemonPort = await freePort();
    const daemon = cli(["daemon", "--socket", SOCKET], {
      LINKWEAVE_DEVICE_ID: D,
      LINKWEAVE_PORT: String(daemonPort),
      LINKWEAVE_DAEMON: "",
    });
    await daemon.waitFor(/"daemon":"ready"/, 30_000);
    const app = start("tests/daemon/_app.ts", { ...COMMON, LW_SERVER: "echo" });
    children.push(app);
    assert.equal((await app.waitFor(/\{"ready":"([^"]+)"/, 20_000))[1], D);
  });

  it("linkweave pair offer, attached to the daemon, pairs the daemon's device", async () => {
    const { device: q } = await outsider(Q);
    const before = await reachesEcho(q);
    assert.equal(before.success, false, "another account's device is not trusted yet");
    const offer = cli(["pair", "offer", "--json", "--timeout", "30"]);
    const m = await offer.waitFor(/\{"event":"offer","code":"(\d{6})"/, 20_000);
    const t = await within(q.pairing.enter(`127.0.0.1:${daemonPort}`, m[1]), 15_000, "enter");
    assert.equal(t.id, D, "Q paired with the daemon's device");
    await offer.waitFor(new RegExp(`"event":"paired","id":"${Q}"`), 10_000);
    assert.equal(await within(offer.exited, 10_000, "pair offer exit"), 0);
    const after = await reachesEcho(q);
    assert.equal(after.success, true, `Q reaches D after pairing: ${JSON.stringify(after)}`);
  });

  it("linkweave pair enter, attached to the daemon, pairs the daemon's device", async () => {
    const { device: r, port } = await outsider(R);
    const { code, paired } = await r.pairing.offer({ timeout: 30_000 });
    const enter = cli(["pair", "enter", `127.0.0.1:${port}`, code, "--json"]);
    await enter.waitFor(new RegExp(`"event":"paired","id":"${R}"`), 20_000);
    assert.equal(await within(enter.exited, 10_000, "pair enter exit"), 0);
    assert.equal((await within(paired, 10_000, "R paired")).id, D);
    const after = await reachesEcho(r);
    assert.equal(after.success, true, `R reaches D after pairing: ${JSON.stringify(after)}`);
    // A wrong code fails clearly, and exits 1.
    const wrong = cli(["pair", "enter", `127.0.0.1:${port}`, "000000"]);
    assert.equal(await within(wrong.exited, 20_000, "wrong code exit"), 1);
    assert.match(wrong.err, /the pairing with 127\.0\.0\.1:\d+ failed: /);
    assert.doesNotMatch(wrong.err, /attached to the device daemon/);
  });
});

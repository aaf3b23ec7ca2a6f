/**
 * linkEnhance over BLE end to end: devices in their own processes on
 * emulated adapters of the air mock (`tests/harness/bluez_air.py`), on a
 * private bus. The seed's examples find each other by the MAC the docs show;
 * ten connections carry data intact both ways; a lost link ends every
 * connection. Deno and Bun use BlueZ's sockets, Node (bundled) D-Bus.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, afterEach, before, it } from "node:test";
import { DisconnectReason } from "../../core/error_codes.ts";
import { BLUEZ_NEEDS, type FakeBluez, startBluez } from "../harness/bluez.ts";
import { describeWith, RUNTIME } from "../harness/env.ts";
import { type Child, start } from "../_script.ts";

/** The address the seed's examples use for the server. */
const SERVER = "00:11:22:33:44:55";
const CLIENT = "00:00:00:AA:00:01";
/** Whether this runtime passes descriptors (BlueZ's socket path). */
const FD = RUNTIME !== "node";

describeWith("linkEnhance over BLE, two processes on the air mock", BLUEZ_NEEDS, () => {
  let fake: FakeBluez;
  let state: string;
  const children: Child[] = [];
  const env = (more: Record<string, string>) => ({
    DBUS_SYSTEM_BUS_ADDRESS: fake.bus.address,
    XDG_STATE_HOME: state,
    XDG_RUNTIME_DIR: state,
    LINKWEAVE_ACCOUNT: "ble-suite-account",
    LINKWEAVE_TRACE: "",
    ...more,
  });
  const run = (module: string, more: Record<string, string>) => {
    const c = start(module, env(more));
    children.push(c);
    return c;
  };
  const server = (more: Record<string, string> = {}) =>
    run("tests/bluez/_ble_device.ts", {
      LW_DEV_MODE: "server",
      LINKWEAVE_ADAPTER: "hci0",
      LINKWEAVE_TRANSPORTS: "bluez",
      ...more,
    });
  const client = (more: Record<string, string>) =>
    run("tests/bluez/_ble_device.ts", {
      LW_DEV_MODE: "client",
      LW_DEV_PEER: SERVER,
      LINKWEAVE_ADAPTER: "hci1",
      LINKWEAVE_TRANSPORTS: "bluez",
      ...more,
    });

  before(async () => {
    state = mkdtempSync(join(tmpdir(), "lw-ble-state-"));
    fake = await startBluez({
      adapters: [["hci0", SERVER, "server"], ["hci1", CLIENT, "client"]],
    });
  });

  afterEach(async () => {
    // Gone before the next test starts, so the mock has dropped their links.
    await Promise.all(children.splice(0).map((c) => (c.kill(), c.exited)));
    await fake.mock("ClearCallLog");
  });

  after(async () => {
    await fake?.stop();
    rmSync(state, { recursive: true, force: true });
  });

  it("the seed's server and client examples find each other by the MAC the docs show", async () => {
    // The server runs as the docs say, on the adapter whose address they show
    // (BLE and IP, the default transports); the clients reach it over BLE.
    const srv = run("examples/link_enhance_server.ts", { LINKWEAVE_ADAPTER: "hci0" });
    await srv.waitFor(/start sever name = demo/, 20_000);
    const connect = run("examples/link_enhance_connect.ts", {
      LINKWEAVE_ADAPTER: "hci1",
      LINKWEAVE_TRANSPORTS: "bluez",
    });
    await connect.waitFor(/clientConnectResultCallback result = true/, 20_000);
    await srv.waitFor(new RegExp(`serverOnCallback = .*"deviceId":"${CLIENT}"`), 10_000);
    connect.kill();
    const send = run("examples/link_enhance_send_data.ts", {
      LINKWEAVE_ADAPTER: "hci1",
      LINKWEAVE_TRANSPORTS: "bluez",
    });
    await send.waitFor(/sendData data connection peerDeviceId=00:11:22:33:44:55/, 20_000);
    // The client exits by itself once its byte is delivered: BLE holds no process.
    assert.equal(await exitWithin(send, 15_000), 0);
    const log = await fake.callLog();
    assert.ok(log.some((e) => e[1] === "/org/bluez/hci0" && e[2] === "RegisterAdvertisement"));
    assert.ok(
      log.some((e) => e[1] === `/org/bluez/hci1/dev_00_11_22_33_44_55` && e[2] === "Connect"),
    );
  });

  it(`ten connections carry data intact both ways (${FD ? "BlueZ sockets" : "D-Bus"})`, async () => {
    const srv = server({ LW_DEV_ECHO: "1" });
    await srv.waitFor(/serving/, 20_000);
    const cli = client({ LW_DEV_CONNS: "10", LW_DEV_MESSAGES: "20", LW_DEV_SEED: "3" });
    await cli.waitFor(/all ok/, 60_000);
    for (let i = 0; i < 10; i++) assert.match(cli.out, new RegExp(`^result ${i} true 0$`, "m"));
    assert.equal(cli.out.match(/^ok \d+ [0-9a-f]{8}$/gm)?.length, 10, cli.out);
    assert.doesNotMatch(cli.out, /mismatch/);
    assert.equal(srv.out.match(/^accepted 00:00:00:AA:00:01$/gm)?.length, 10, srv.out);
    assert.equal(srv.out.match(/^data /gm)?.length, 200);
    assert.equal(await exitWithin(cli, 15_000), 0);
    // The path each runtime takes: BlueZ's sockets where descriptors pass, D-Bus on Node.
    const log = await fake.callLog();
    const mirror = (m: string) =>
      log.some((e) => e[1].startsWith("/org/bluez/hci1/dev_00_11_22_33_44_55/") && e[2] === m);
    assert.equal(mirror("AcquireWrite"), FD);
    assert.equal(mirror("WriteValue"), !FD);
  });

  it("a lost BLE link ends every connection with disconnected, on both sides", async () => {
    // Keep-alive far beyond the waits below: the loss must come from BlueZ.
    const slow = { LINKWEAVE_KEEPALIVE_TIMEOUT: "60000" };
    const srv = server({ LW_DEV_ECHO: "1", ...slow });
    await srv.waitFor(/serving/, 20_000);
    const cli = client({ LW_DEV_CONNS: "2", LW_DEV_MESSAGES: "2", LW_DEV_HOLD: "1", ...slow });
    await cli.waitFor(/all ok/, 30_000);
    await fake.mock("SimulateLinkLoss", "ss", ["hci1", SERVER]);
    const lost = DisconnectReason.LINK_CLOSED;
    await cli.waitFor(
      new RegExp(
        `disconnected 0 ${lost}[\\s\\S]*disconnected 1 ${lost}|` +
          `disconnected 1 ${lost}[\\s\\S]*disconnected 0 ${lost}`,
      ),
      15_000,
    );
    await srv.waitFor(new RegExp(`disconnected ${lost}[\\s\\S]*disconnected ${lost}`), 15_000);
    assert.match(cli.err, /The BLE link to "00:11:22:33:44:55" was lost/);
    assert.equal(cli.err.match(/was lost/g)?.length, 1, "said once");
  });
});

/** The child's exit code, or "still running" after `ms`. */
async function exitWithin(child: Child, ms: number): Promise<number | string> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      child.exited,
      new Promise<string>((r) => (timer = setTimeout(() => r("still running"), ms))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * What a user of a real board meets with BLE, on a private bus: bluetoothd
 * not running, an adapter powered off (at start, and while serving), no such
 * adapter, a second device on one adapter, a D-Bus policy refusing the user,
 * BlueZ refusing an operation. Each gives a clear error when BLE was asked
 * for, and IP only (said once where the user probably wants BLE) by default.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { after, afterEach, before, it } from "node:test";
import { createDevice, type Device, type DeviceOptions } from "../../link_enhance.ts";
import { Variant } from "../../platform/bluez/dbus/marshal.ts";
import { BLUEZ_NEEDS, type FakeBluez, startBluez } from "../harness/bluez.ts";
import { startBus } from "../harness/dbus.ts";
import { describeWith } from "../harness/env.ts";

const BOARD = "00:00:00:0E:0E:01";
const OTHER = "00:00:00:0E:0E:02";
const VARS = ["DBUS_SYSTEM_BUS_ADDRESS", "XDG_STATE_HOME", "XDG_RUNTIME_DIR", "LINKWEAVE_ACCOUNT"];

describeWith("BLE as a user of a real board meets it", BLUEZ_NEEDS, () => {
  let fake: FakeBluez;
  let state: string;
  const saved: Record<string, string | undefined> = {};
  const devices: Device[] = [];
  // The devices run as an app's would (their own host and identities);
  // their warnings go to console.warn, caught here.
  const warnings: string[] = [];
  const warn = console.warn;
  const device = (options: DeviceOptions) => {
    const d = createDevice({ port: 0, discovery: "off", ...options });
    devices.push(d);
    return d;
  };
  const setPowered = (adapter: string, on: boolean) =>
    fake.control.call({
      destination: "org.bluez",
      path: `/org/bluez/${adapter}`,
      interface: "org.freedesktop.DBus.Properties",
      member: "Set",
      signature: "ssv",
      body: ["org.bluez.Adapter1", "Powered", new Variant("b", on)],
    });
  const until = async (cond: () => boolean, what: string, ms = 5000) => {
    const end = Date.now() + ms;
    while (!cond()) {
      if (Date.now() > end) {
        throw new Error(`${what}: not within ${ms} ms (warnings: ${warnings.join("; ")})`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  };

  before(async () => {
    for (const v of VARS) saved[v] = process.env[v];
    state = mkdtempSync(join(tmpdir(), "lw-ble-err-"));
    process.env.XDG_STATE_HOME = state;
    process.env.XDG_RUNTIME_DIR = state;
    process.env.LINKWEAVE_ACCOUNT = "ble-errors";
    console.warn = (m: string) => warnings.push(m);
    fake = await startBluez({ adapters: [["hci0", BOARD, "board"], ["hci1", OTHER, "other"]] });
    process.env.DBUS_SYSTEM_BUS_ADDRESS = fake.bus.address;
  });

  afterEach(async () => {
    await Promise.all(devices.splice(0).map((d) => d.close()));
    warnings.length = 0;
    process.env.DBUS_SYSTEM_BUS_ADDRESS = fake.bus.address;
    // The devices' BLE handles close just after them.
    await new Promise((r) => setTimeout(r, 100));
  });

  after(async () => {
    console.warn = warn;
    await fake?.stop();
    rmSync(state, { recursive: true, force: true });
    for (const v of VARS) {
      if (saved[v] === undefined) delete process.env[v];
      else process.env[v] = saved[v];
    }
  });

  it("BLE on the first powered adapter by default, with its address as the device id", async () => {
    const d = device({});
    assert.equal((await d.runtime()).deviceId, BOARD);
    const log = await fake.callLog();
    assert.ok(log.some((e) => e[1] === "/org/bluez/hci0" && e[2] === "RegisterApplication"));
    assert.ok(log.some((e) => e[1] === "/org/bluez/hci0" && e[2] === "RegisterAdvertisement"));
  });

  it("bluetoothd not running: an error saying to start it, or IP only by default", async () => {
    const bus = await startBus();
    try {
      process.env.DBUS_SYSTEM_BUS_ADDRESS = bus.address;
      await assert.rejects(
        device({ transports: ["bluez", "ip"] }).runtime(),
        (e: unknown) =>
          (e as { code?: number }).code === 2301111 &&
          /Cannot reach BlueZ.*sudo systemctl start bluetooth/.test((e as Error).message),
      );
      const d = device({});
      const rt = await d.runtime();
      assert.notEqual(rt.deviceId, BOARD);
      assert.ok(rt.port > 0, "IP runs");
      assert.deepEqual(warnings, [], "nothing said: BLE was not asked for");
    } finally {
      await Promise.all(devices.splice(0).map((d) => d.close()));
      await bus.stop();
    }
  });

  it("a powered-off adapter: an error saying to power it on, or IP only by default", async () => {
    await setPowered("hci0", false);
    await setPowered("hci1", false);
    try {
      await assert.rejects(
        device({ adapter: "hci0" }).runtime(),
        (e: unknown) =>
          (e as { code?: number }).code === 2301100 &&
          /adapter "hci0" is powered off.*bluetoothctl power on/.test((e as Error).message),
      );
      await fake.mock("ClearCallLog");
      assert.ok((await device({}).runtime()).port > 0, "IP runs");
      assert.ok(!(await fake.callLog()).some((e) => e[2] === "RegisterApplication"), "no BLE");
      assert.deepEqual(warnings, []);
    } finally {
      await setPowered("hci0", true);
      await setPowered("hci1", true);
    }
  });

  it("no such adapter: an error listing the adapters there are", async () => {
    await assert.rejects(
      device({ adapter: "hci7" }).runtime(),
      (e: unknown) =>
        (e as { code?: number }).code === 2301002 &&
        /Cannot find adapter "hci7".*"hci0", "hci1"/.test((e as Error).message),
    );
  });

  it("one device per adapter: a second one is refused (configured) or runs IP only", async () => {
    const first = device({ adapter: "hci1" });
    assert.equal((await first.runtime()).deviceId, OTHER);
    // Whether it would take the adapter's id or has one of its own.
    for (
      const options of [{ adapter: "hci1" }, { adapter: "hci1", deviceId: "02:00:00:0E:0E:09" }]
    ) {
      await assert.rejects(
        device(options).runtime(),
        (e: unknown) =>
          (e as { code?: number }).code === 2301016 &&
          /another linkweave device holds it .*LINKWEAVE_ADAPTER/.test((e as Error).message),
      );
    }
    // By default a device takes the first powered adapter (hci0) and its
    // identity; the next one finds it held and runs IP only, as another
    // identity (never the same id as a live device).
    assert.equal((await device({}).runtime()).deviceId, BOARD);
    const third = await device({}).runtime();
    assert.ok(third.deviceId !== BOARD && third.deviceId !== OTHER, third.deviceId);
  });

  it("BlueZ refusing an operation (NotPermitted): the error with what it usually means", async () => {
    await fake.mock("FailNext", "sssu", [
      "hci0",
      "RegisterAdvertisement",
      "org.bluez.Error.NotPermitted: Maximum advertisements reached",
      1,
    ]);
    await assert.rejects(
      device({ adapter: "hci0" }).runtime(),
      (e: unknown) =>
        (e as { code?: number }).code === 2301013 &&
        /Maximum advertisements reached; BlueZ refused the operation/.test((e as Error).message),
    );
  });

  it("an adapter powered off while serving: said once, served again once it is back", async () => {
    const d = device({ adapter: "hci0" });
    await d.runtime();
    await fake.mock("ClearCallLog");
    await setPowered("hci0", false);
    await until(() => warnings.some((w) => /"hci0" was powered off/.test(w)), "the warning");
    await setPowered("hci0", true);
    await until(
      () => warnings.some((w) => /"hci0" is powered on: serving BLE again/.test(w)),
      "back",
    );
    const log = await fake.callLog();
    assert.equal(log.filter((e) => e[2] === "RegisterApplication").length, 1);
    assert.equal(log.filter((e) => e[2] === "RegisterAdvertisement").length, 1);
    assert.equal(warnings.filter((w) => /was powered off/.test(w)).length, 1);
  });
});

describeWith("BLE when the D-Bus policy refuses the user", BLUEZ_NEEDS, () => {
  it("an error naming the policy file (configured), IP only and said once (default)", async () => {
    const fake = await startBluez({ adapters: [["hci0", BOARD, "board"]], denyUsers: true });
    const state = mkdtempSync(join(tmpdir(), "lw-ble-deny-"));
    const saved = Object.fromEntries(VARS.map((v) => [v, process.env[v]]));
    Object.assign(process.env, {
      DBUS_SYSTEM_BUS_ADDRESS: fake.bus.address,
      XDG_STATE_HOME: state,
      XDG_RUNTIME_DIR: state,
      LINKWEAVE_ACCOUNT: "ble-deny",
    });
    const warnings: string[] = [];
    const warn = console.warn;
    console.warn = (m: string) => warnings.push(m);
    const a = createDevice({ port: 0, discovery: "off", transports: ["bluez"] });
    const b = createDevice({ port: 0, discovery: "off" });
    try {
      await assert.rejects(
        a.runtime(),
        (e: unknown) =>
          (e as { code?: number }).code === 2301013 &&
          /policy file shown in docs\/bluez\.md/.test((e as Error).message),
      );
      assert.ok((await b.runtime()).port > 0);
      assert.equal(warnings.filter((w) => /BLE unavailable, using IP only/.test(w)).length, 1);
    } finally {
      console.warn = warn;
      await a.close();
      await b.close();
      await fake.stop();
      rmSync(state, { recursive: true, force: true });
      for (const v of VARS) {
        if (saved[v] === undefined) delete process.env[v];
        else process.env[v] = saved[v];
      }
    }
  });
});

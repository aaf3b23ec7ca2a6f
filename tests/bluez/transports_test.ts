/**
 * A device's transports (`_transports.ts`) on the air mock: which ones it
 * gets, and how it chooses between IP and BLE for a peer.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { after, before, it } from "node:test";
import { deviceTransports, FALLBACK_WINDOW } from "../../_transports.ts";
import type { PeerAddress, PeerFinder } from "../../core/device/channel.ts";
import { resolveConfig } from "../../core/device/config.ts";
import { runtimeHost } from "../../platform/host.ts";
import { BLUEZ_NEEDS, type FakeBluez, startBluez } from "../harness/bluez.ts";
import { describeWith } from "../harness/env.ts";

const BOARD = "00:00:00:0F:0F:01";
const IP_PEER = "02:00:00:00:0F:02";
const OH_PEER = "02:00:00:00:0F:03";
const UNKNOWN = "02:00:00:00:0F:04";
const VARS = ["DBUS_SYSTEM_BUS_ADDRESS", "XDG_STATE_HOME"];

describeWith("a device's transports and its choice of path per peer", BLUEZ_NEEDS, () => {
  let fake: FakeBluez;
  let state: string;
  const saved: Record<string, string | undefined> = {};

  before(async () => {
    for (const v of VARS) saved[v] = process.env[v];
    state = mkdtempSync(join(tmpdir(), "lw-ble-tr-"));
    fake = await startBluez({ adapters: [["hci0", BOARD, "board"]] });
    process.env.DBUS_SYSTEM_BUS_ADDRESS = fake.bus.address;
    process.env.XDG_STATE_HOME = state;
  });

  after(async () => {
    await fake?.stop();
    rmSync(state, { recursive: true, force: true });
    for (const v of VARS) {
      if (saved[v] === undefined) delete process.env[v];
      else process.env[v] = saved[v];
    }
  });

  /** An IP finder that knows one peer, and counts the announcements asked of it. */
  function ipFinder(): PeerFinder & { announced: number } {
    const f = {
      announced: 0,
      lookup: (id: string): PeerAddress | undefined =>
        id === IP_PEER ? { host: "192.0.2.2", port: 38470 } : undefined,
      announce: () => void f.announced++,
      close: async () => {},
    };
    return f;
  }

  it("IP first when it knows the peer, BLE as the backup; BLE only for an openharmony peer", async () => {
    const host = runtimeHost();
    let now = 1000;
    const clock = { ...host, now: () => now };
    const config = resolveConfig({
      adapter: "hci0",
      bundleName: "com.example.demo",
      peers: { [OH_PEER]: { profile: "openharmony" } },
    }, {});
    const t = await deviceTransports(clock, config);
    try {
      assert.deepEqual(t.transports(config).map((x) => x.kind), ["ble", "tcp"]);
      assert.equal(t.identity?.deviceId, BOARD);
      assert.deepEqual(Object.keys(t.profiles), ["openharmony"]);
      const ip = ipFinder();
      const finder = await t.finder(() => Promise.resolve(ip))!({
        deviceId: BOARD,
        nonce: "n",
        port: 1,
      });
      const ble = (id: string) => ({ transport: "ble", host: id, port: 0 });
      assert.deepEqual(finder.lookup(OH_PEER), ble(OH_PEER), "openharmony: BLE only");
      assert.deepEqual(finder.lookup(IP_PEER), { host: "192.0.2.2", port: 38470 });
      now += 1000; // the IP dial failed: the next one goes over BLE ...
      assert.deepEqual(finder.lookup(IP_PEER), ble(IP_PEER));
      now += 1000; // ... and the one after over IP again
      assert.deepEqual(finder.lookup(IP_PEER), { host: "192.0.2.2", port: 38470 });
      now += FALLBACK_WINDOW; // a dial long after (a new connect): IP
      assert.deepEqual(finder.lookup(IP_PEER), { host: "192.0.2.2", port: 38470 });
      // Unknown to IP: BLE at its id, and discovery is asked.
      assert.deepEqual(finder.lookup(UNKNOWN), ble(UNKNOWN));
      assert.equal(ip.announced, 1);
    } finally {
      await t.identity?.release();
      await t.release();
    }
  });

  it("BLE only: no TCP, no IP lookups; IP only: the IP finder as it is", async () => {
    const host = runtimeHost();
    const bleOnly = resolveConfig({ transports: ["bluez"] }, {});
    const t = await deviceTransports(host, bleOnly);
    try {
      assert.deepEqual(t.transports(bleOnly).map((x) => x.kind), ["ble"]);
      const ip = ipFinder();
      const finder = await t.finder(() => Promise.resolve(ip))!({
        deviceId: BOARD,
        nonce: "n",
        port: 0,
      });
      assert.deepEqual(finder.lookup(IP_PEER), { transport: "ble", host: IP_PEER, port: 0 });
      assert.equal(ip.announced, 0);
    } finally {
      await t.identity?.release();
      await t.release();
    }
    const ipConfig = resolveConfig({ transports: ["ip"] }, {});
    const ipOnly = await deviceTransports(host, ipConfig);
    const factory = () => Promise.resolve(ipFinder());
    assert.deepEqual(ipOnly.transports(ipConfig).map((x) => x.kind), ["tcp"]);
    assert.equal(ipOnly.finder(factory), factory);
    assert.equal(ipOnly.identity, undefined);
    assert.deepEqual(ipOnly.profiles, {}, "no openharmony profile without a bundle name");
  });
});

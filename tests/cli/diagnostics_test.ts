/**
 * The read-only probes `diagnostics.ts` adds for `linkweave doctor`, against
 * what this test starts: a private D-Bus with no BlueZ on it (the bus
 * answers, `org.bluez` has no owner, and `doctor --ble` fails saying to start
 * bluetoothd), a bus address where nothing listens, and the multicast
 * loopback of discovery's group on `lo`.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, it } from "node:test";
import { probeBluez, probeMulticast } from "../../diagnostics.ts";
import { DBUS_NEEDS, type PrivateBus, startBus } from "../harness/dbus.ts";
import { describeWith } from "../harness/env.ts";
import { run, type Sandbox, sandbox } from "./_cli.ts";

describeWith("diagnostics probes and doctor's BLE checks", DBUS_NEEDS, () => {
  let bus: PrivateBus;
  let box: Sandbox;
  before(async () => {
    bus = await startBus({ prefix: "lw-cli-dbus-" });
    box = sandbox();
  });
  after(async () => {
    await bus.stop();
    box.remove();
  });

  it("probeBluez: a bus without BlueZ is reachable, org.bluez absent; no bus is unreachable", async () => {
    const s = await probeBluez({ address: bus.address, timeout: 2000 });
    assert.equal(s.bus, "ok");
    assert.equal(s.bluez, "absent");
    assert.deepEqual(s.adapters, []);
    const none = await probeBluez({ address: `unix:path=${join(box.dir, "none")}`, timeout: 1000 });
    assert.equal(none.bus, "unreachable");
    assert.equal(none.bluez, null);
  });

  it("doctor --ble on that bus: dbus ok, bluez FAIL with what to do, exit 1", async () => {
    const d = await run(["doctor", "--ble"], { ...box.env, DBUS_SYSTEM_BUS_ADDRESS: bus.address });
    assert.equal(d.code, 1, d.out + d.err);
    assert.match(d.out, /^ok +dbus /m);
    assert.match(d.out, /^FAIL +bluez +bluetoothd is not running/m);
    assert.match(d.out, /fix: install and start it/);
    const warn = await run(["doctor"], { ...box.env, DBUS_SYSTEM_BUS_ADDRESS: bus.address });
    assert.equal(warn.code, 0, warn.out);
    assert.match(warn.out, /^WARN +bluez /m);
  });

  it("probeMulticast: a datagram to discovery's group comes back on lo", async () => {
    const r = await probeMulticast({ bind: "127.0.0.1", timeout: 2000 });
    assert.deepEqual(r, [{ name: "lo", address: "127.0.0.1", ok: true }]);
  });
});

/**
 * The BLE transport against a fake BlueZ on a private bus: linkweave's own
 * dbusmock template with an air link between emulated adapters
 * (`tests/harness/bluez_air.py`), and dbusmock's stock `bluez5` template for
 * the device and adapter basics.
 */
import assert from "node:assert/strict";
import { after, afterEach, before, it } from "node:test";
import { describeWith, RUNTIME } from "../../tests/harness/env.ts";
import { airOptions, BLUEZ_NEEDS, type FakeBluez, startBluez } from "../../tests/harness/bluez.ts";
import { DBUS_NEEDS, startBus } from "../../tests/harness/dbus.ts";
import { type Child, start } from "../../tests/_script.ts";
import { digest, values } from "../../tests/_bluez_data.ts";
import { ParameterError } from "../../core/errors.ts";
import { DBusError } from "./dbus/errors.ts";
import { Variant } from "./dbus/marshal.ts";
import { bluezError } from "./_hints.ts";
import {
  type Bluez,
  type GattChannel,
  type GattLink,
  type GattServer,
  LINKWEAVE_SERVICE,
  linkweaveProfile,
  openBluez,
  OPENHARMONY_PROFILE,
  OPENHARMONY_SERVICE,
} from "./mod.ts";

const CENTRAL = "00:00:00:11:11:11";
const PERIPHERAL = "00:00:00:22:22:22";
const THIRD = "00:00:00:33:33:33";
/** Whether this runtime passes descriptors (BlueZ's socket path): everywhere but Node. */
const FD = RUNTIME !== "node";

async function waitUntil(cond: () => boolean, ms = 5000, what = "condition"): Promise<void> {
  const until = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`${what} not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A promise, or a failure after `ms`. */
async function within<T>(p: Promise<T>, ms = 5000, what = "it"): Promise<T> {
  let t: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((
        _,
        rej,
      ) => (t = setTimeout(() => rej(new Error(`${what}: not within ${ms} ms`)), ms))),
    ]);
  } finally {
    clearTimeout(t);
  }
}

/** Write values in order, waiting for drain when told to. */
async function send(channel: GattChannel, vs: Uint8Array[]): Promise<void> {
  for (const v of vs) {
    if (!channel.write(v)) await new Promise<void>((r) => channel.on("drain", () => r()));
    channel.off("drain");
  }
}

function collect(channel: GattChannel): Uint8Array[] {
  const got: Uint8Array[] = [];
  channel.on("data", (v) => got.push(v));
  return got;
}

describeWith("BLE transport over the air mock (linkweave's dbusmock template)", BLUEZ_NEEDS, () => {
  let fake: FakeBluez;
  const handles: Bluez[] = [];
  const children: Child[] = [];
  const logs: string[] = [];
  const open = async (options: { fdPath?: boolean } = {}) => {
    const b = await openBluez({
      address: fake.bus.address,
      logger: (m) => logs.push(m),
      ...options,
    });
    handles.push(b);
    return b;
  };
  const connects = async () => (await fake.callLog()).filter((e) => e[2] === "Connect").length;

  before(async () => {
    fake = await startBluez({
      adapters: [["hci0", CENTRAL, "central"], ["hci1", PERIPHERAL, "peripheral"], [
        "hci2",
        THIRD,
        "third",
      ]],
    });
    await fake.mock("Configure", "a{sv}", [airOptions({ connect_fail_delay_ms: 30 })]);
  });

  // Every handle a test opened closes after it, with its links and servers.
  afterEach(async () => {
    for (const c of children.splice(0)) c.kill();
    await Promise.all(handles.splice(0).map((h) => h.close().catch(() => {})));
  });

  after(async () => {
    await fake?.stop();
  });

  it("lists adapters with their addresses and picks the first powered one", async () => {
    const b = await open();
    assert.deepEqual(b.adapters().map((a) => [a.name, a.address, a.powered]), [
      ["hci0", CENTRAL, true],
      ["hci1", PERIPHERAL, true],
      ["hci2", THIRD, true],
    ]);
    assert.equal(b.adapter().name, "hci0");
    assert.equal(b.adapter("hci1").address, PERIPHERAL);
    assert.equal(b.fdPath, FD);
    assert.throws(
      () => b.adapter("hci9"),
      (e: unknown) =>
        e instanceof DBusError && e.code === 2301002 && /"hci0", "hci1", "hci2"/.test(e.message),
    );
  });

  it("powers an adapter off and on; a powered-off adapter refuses with advice", async () => {
    const b = await open();
    const hci2 = b.adapter("hci2");
    await hci2.setPowered(false);
    assert.equal(hci2.powered, false);
    assert.equal(b.adapter().name, "hci0");
    await assert.rejects(
      hci2.serve(linkweaveProfile(1)),
      (e: unknown) =>
        e instanceof DBusError && e.dbusName === "org.bluez.Error.NotReady" && e.code === 2301100 &&
        /bluetoothctl power on/.test(e.message),
    );
    await assert.rejects(hci2.discover(), /powered off/);
    await hci2.setPowered(true);
    assert.equal(hci2.powered, true);
  });

  it("scans with UUID and pattern filters", async () => {
    const b = await open();
    const lw = await b.adapter("hci1").serve(linkweaveProfile(1));
    const oh = await b.adapter("hci2").serve(OPENHARMONY_PROFILE);
    try {
      const seen = async (options: Parameters<ReturnType<Bluez["adapter"]>["discover"]>[0]) => {
        const found = new Set<string>();
        const scan = await b.adapter("hci0").discover(options);
        scan.on("device", (d) => found.add(d.address));
        await new Promise((r) => setTimeout(r, 250));
        await scan.stop();
        return [...found].sort();
      };
      assert.deepEqual(await seen({ uuids: [LINKWEAVE_SERVICE] }), [PERIPHERAL]);
      assert.deepEqual(await seen({ uuids: [OPENHARMONY_SERVICE] }), [THIRD]);
      assert.deepEqual(await seen({ pattern: "00:00:00:33" }), [THIRD]);
      const filters = (await fake.callLog()).filter((e) => e[2] === "SetDiscoveryFilter").map((e) =>
        e[3]
      );
      assert.match(filters[0], /Transport: le/);
      assert.match(filters[0], new RegExp(`UUIDs: \\[${LINKWEAVE_SERVICE}\\]`));
    } finally {
      await lw.close();
      await oh.close();
    }
  });

  for (const fd of FD ? [true, false] : [false]) {
    it(`moves bytes both ways between two processes, intact (${fd ? "BlueZ sockets" : "D-Bus"})`, async () => {
      const count = 150;
      const seed = fd ? 7 : 8;
      const peer = start("tests/_bluez_peer.ts", {
        DBUS_SYSTEM_BUS_ADDRESS: fake.bus.address,
        LW_BLE_ADAPTER: "hci1",
        LW_BLE_PROFILE: "linkweave:2",
        LW_BLE_FD: fd ? "1" : "0",
        LW_BLE_COUNT: String(count),
        LW_BLE_SEED: String(seed),
      });
      children.push(peer);
      await peer.waitFor(new RegExp(`ready ${fd ? "fd" : "dbus"}`), 20_000);
      const b = await open({ fdPath: fd });
      const link = await b.adapter("hci0").connect(PERIPHERAL, linkweaveProfile(2));
      assert.equal(link.role, "central");
      assert.equal(link.peer, PERIPHERAL);
      assert.equal(link.local, CENTRAL);
      assert.equal(link.mtu, 517);
      assert.deepEqual(link.channels.map((c) => c.path), [fd ? "fd" : "dbus", fd ? "fd" : "dbus"]);
      const got = link.channels.map(collect);
      const sent = link.channels.map((c) => values(seed + c.index, count, c.maxPayload));
      await Promise.all(link.channels.map((c) => send(c, sent[c.index])));
      for (const c of link.channels) {
        await peer.waitFor(
          new RegExp(`received ${c.index} ${count} ${digest(sent[c.index])}`),
          20_000,
        );
      }
      await waitUntil(() => got.every((g) => g.length >= count), 20_000, "the peer's values");
      for (const c of link.channels) {
        assert.deepEqual(
          got[c.index],
          values(seed + 100 + c.index, count, 20),
          `channel ${c.index}`,
        );
      }
      assert.match(peer.out, new RegExp(`connection ${CENTRAL}`));
      await link.close();
      await peer.waitFor(/closed disconnected/);
      assert.ok((await fake.callLog()).some((e) => e[2] === "Disconnect"));
      peer.kill();
    });
  }

  it("serves and uses OpenHarmony's service: 2B00 and 2B01 each carry values both ways", async () => {
    const p = await open();
    const c = await open();
    await fake.mock("ClearCallLog");
    const server = await p.adapter("hci1").serve(OPENHARMONY_PROFILE);
    try {
      const links: GattLink[] = [];
      server.on("connection", (l) => links.push(l));
      const link = await c.adapter("hci0").connect(PERIPHERAL, OPENHARMONY_PROFILE);
      await waitUntil(() => links.length === 1);
      const theirs = links[0];
      const atPeer = theirs.channels.map(collect);
      const atUs = link.channels.map(collect);
      link.channels[0].write(new TextEncoder().encode("basic info on 2B00"));
      link.channels[1].write(new TextEncoder().encode("general on 2B01"));
      await waitUntil(() => atPeer[0].length === 1 && atPeer[1].length === 1);
      assert.equal(new TextDecoder().decode(atPeer[0][0]), "basic info on 2B00");
      assert.equal(new TextDecoder().decode(atPeer[1][0]), "general on 2B01");
      await waitUntil(() => theirs.channels.every((ch) => ch.path !== "none"));
      theirs.channels[1].write(new Uint8Array([0xce, 0xfa, 0xbe, 0xba]));
      theirs.channels[0].write(new Uint8Array([1]));
      await waitUntil(() => atUs[0].length === 1 && atUs[1].length === 1);
      assert.deepEqual([...atUs[1][0]], [0xce, 0xfa, 0xbe, 0xba]);
      assert.deepEqual([...atUs[0][0]], [1]);
      // Each of the two characteristics was acquired both ways (fd path), or
      // subscribed to (D-Bus).
      const log = await fake.callLog();
      const used = (m: string) => log.filter((e) => e[2] === m).map((e) => e[1].slice(-8)).sort();
      if (FD) {
        assert.deepEqual(used("AcquireNotify"), ["char0011", "char0013"]);
        assert.deepEqual(used("AcquireWrite"), ["char0011", "char0013"]);
      } else {
        assert.deepEqual(used("StartNotify"), ["char0011", "char0013"]);
      }
      await link.close();
    } finally {
      await server.close();
    }
  });

  it("retries BlueZ's transient connect errors, and gives up with advice", async () => {
    const p = await open();
    const c = await open();
    const server = await p.adapter("hci1").serve(linkweaveProfile(1));
    const hci0 = c.adapter("hci0");
    try {
      for (
        const error of [
          "org.bluez.Error.Failed: le-connection-abort-by-local",
          "org.bluez.Error.InProgress: In Progress",
          "org.bluez.Error.NotReady: Resource Not Ready",
        ]
      ) {
        const before = await connects();
        await fake.mock("FailNext", "sssu", ["hci0", "Connect", error, 2]);
        const link = await hci0.connect(PERIPHERAL, linkweaveProfile(1));
        assert.equal(await connects() - before, 3, error);
        await link.close();
        await waitUntil(() => server.link === undefined);
      }
      const before = await connects();
      await fake.mock("FailNext", "sssu", [
        "hci0",
        "Connect",
        "org.bluez.Error.Failed: le-connection-abort-by-local",
        9,
      ]);
      await assert.rejects(
        hci0.connect(PERIPHERAL, linkweaveProfile(1), { attempts: 3 }),
        (e: unknown) =>
          e instanceof DBusError && e.code === 2301103 &&
          /out of range, not advertising/.test(e.message),
      );
      assert.equal(await connects() - before, 3);
      // Not transient: no retry.
      await fake.mock("FailNext", "sssu", [
        "hci0",
        "Connect",
        "org.bluez.Error.AuthenticationFailed: x",
        1,
      ]);
      await assert.rejects(
        hci0.connect(PERIPHERAL, linkweaveProfile(1)),
        (e: unknown) => e instanceof DBusError && e.code === 2301013,
      );
      await fake.mock("FailNext", "sssu", ["hci0", "Connect", "org.bluez.Error.Failed: x", 0]);
    } finally {
      await server.close();
    }
  });

  it("reports a device that does not advertise: not found, or not answering", async () => {
    const c = await open();
    const hci0 = c.adapter("hci0");
    await assert.rejects(
      hci0.connect("00:00:00:99:99:99", linkweaveProfile(1), { timeout: 300 }),
      (e: unknown) =>
        (e as { code?: number }).code === 2301113 &&
        /not seen within \d+ ms/.test((e as Error).message),
    );
    // Known from an earlier scan, but no longer advertising: BlueZ's LE
    // connect aborts; after the retries, the advice.
    const p = await open();
    const server = await p.adapter("hci1").serve(linkweaveProfile(1));
    await hci0.findDevice(PERIPHERAL, { uuids: [LINKWEAVE_SERVICE] });
    await server.close();
    await assert.rejects(
      hci0.connect(PERIPHERAL, linkweaveProfile(1), { attempts: 2 }),
      (e: unknown) =>
        e instanceof DBusError &&
        /le-connection-abort-by-local; the device did not answer/.test(e.message),
    );
  });

  it("detects link loss and disconnection on both sides", async () => {
    const p = await open();
    const c = await open();
    const server = await p.adapter("hci1").serve(linkweaveProfile(1));
    const hci0 = c.adapter("hci0");
    for (const lose of ["SimulateLinkLoss", "SetInRange", "peer-close", "adapter-off"]) {
      const link = await hci0.connect(PERIPHERAL, linkweaveProfile(1));
      await waitUntil(() => server.link !== undefined);
      const theirs = server.link!;
      if (lose === "SimulateLinkLoss") await fake.mock(lose, "ss", ["hci1", CENTRAL]);
      else if (lose === "SetInRange") await fake.mock(lose, "sb", ["hci1", false]);
      else if (lose === "peer-close") await theirs.close();
      else await hci0.setPowered(false);
      const [ours, peers] = await within(Promise.all([link.done, theirs.done]), 5000, lose);
      assert.equal(ours.reason, lose === "adapter-off" ? "adapter-off" : "disconnected", lose);
      assert.equal(peers.reason, lose === "peer-close" ? "local" : "disconnected", lose);
      assert.throws(
        () => link.channels[0].write(new Uint8Array([1])),
        (e: unknown) => (e as { code?: number }).code === 2301107,
      );
      if (lose === "SetInRange") await fake.mock(lose, "sb", ["hci1", true]);
      if (lose === "adapter-off") await hci0.setPowered(true);
    }
    assert.ok(
      logs.some((m) => /was lost \(the device disconnected or went out of range\)/.test(m)),
    );
    await server.close();
  });

  it("falls back to D-Bus when BlueZ refuses a socket (and on Node, which has none)", async () => {
    const p = await open();
    const c = await open();
    const server = await p.adapter("hci1").serve(linkweaveProfile(1));
    await fake.mock("ClearCallLog");
    await fake.mock("FailNext", "sssu", [
      "hci0",
      "AcquireWrite",
      "org.bluez.Error.NotPermitted: Write acquired",
      1,
    ]);
    const link = await c.adapter("hci0").connect(PERIPHERAL, linkweaveProfile(1));
    assert.equal(link.channels[0].path, "dbus");
    // Asked for on Deno and Bun (and refused here); never on Node.
    const asked = (await fake.callLog()).filter((e) => e[2] === "AcquireWrite").length;
    assert.equal(asked, FD ? 1 : 0);
    await waitUntil(() => server.link !== undefined);
    const got = collect(server.link!.channels[0]);
    link.channels[0].write(new Uint8Array([9, 9]));
    await waitUntil(() => got.length === 1);
    await link.close();
    await server.close();
  });

  it("keeps a bounded number of WriteValue calls in flight (backpressure)", async () => {
    const p = await open({ fdPath: false });
    const c = await open({ fdPath: false });
    const server = await p.adapter("hci1").serve(linkweaveProfile(1));
    const link = await c.adapter("hci0").connect(PERIPHERAL, linkweaveProfile(1), {
      maxWritesInFlight: 2,
    });
    await waitUntil(() => server.link !== undefined);
    const got = collect(server.link!.channels[0]);
    const ch = link.channels[0];
    assert.equal(ch.write(new Uint8Array([1])), true);
    assert.equal(ch.write(new Uint8Array([2])), false);
    await new Promise<void>((r) => ch.on("drain", () => r()));
    const vs = values(3, 40, ch.maxPayload);
    await send(ch, vs);
    await waitUntil(() => got.length === 42);
    assert.deepEqual(got.slice(2), vs);
    await link.close();
    await server.close();
  });

  it("follows the ATT MTU: values are bounded by MTU - 3", async () => {
    const p = await open();
    const c = await open();
    await fake.mock("Configure", "a{sv}", [airOptions({ mtu: 185 })]);
    const server = await p.adapter("hci1").serve(linkweaveProfile(1));
    try {
      const link = await c.adapter("hci0").connect(PERIPHERAL, linkweaveProfile(1));
      assert.equal(link.mtu, 185);
      assert.equal(link.channels[0].maxPayload, 182);
      assert.throws(
        () => link.channels[0].write(new Uint8Array(183)),
        (e: unknown) =>
          e instanceof ParameterError && e.code === 401 &&
          /1\.\.182 bytes at ATT MTU 185/.test(e.message),
      );
      await waitUntil(() => server.link !== undefined);
      const got = collect(server.link!.channels[0]);
      link.channels[0].write(new Uint8Array(182).fill(7));
      await waitUntil(() => got.length === 1);
      assert.equal(got[0].length, 182);
      await waitUntil(() => server.link!.mtu === 185);
      await link.close();
    } finally {
      await fake.mock("Configure", "a{sv}", [airOptions({ mtu: 517 })]);
      await server.close();
    }
  });

  it("serves one central at a time: a second one is disconnected", async () => {
    const p = await open();
    const c1 = await open();
    const c2 = await open();
    const server = await p.adapter("hci1").serve(linkweaveProfile(1));
    const first = await c1.adapter("hci0").connect(PERIPHERAL, linkweaveProfile(1));
    await waitUntil(() => server.link !== undefined);
    const got = collect(server.link!.channels[0]);
    const second = await within(
      c2.adapter("hci2").connect(PERIPHERAL, linkweaveProfile(1)).catch((e) => e),
      8000,
      "the second central's connect",
    );
    if (!(second instanceof Error)) {
      const end = await within((second as GattLink).done, 5000, "the second link's end");
      assert.equal(end.reason, "disconnected");
    }
    first.channels[0].write(new Uint8Array([1]));
    await waitUntil(() => got.length >= 1);
    assert.deepEqual(got.map((v) => v[0]), [1]);
    assert.equal(server.link!.peer, CENTRAL);
    assert.ok(
      logs.some((m) => /was disconnected: a BlueZ peripheral serves one central at a time/.test(m)),
    );
    const log = await fake.callLog();
    assert.ok(
      log.some((e) => e[1] === "/org/bluez/hci1/dev_00_00_00_33_33_33" && e[2] === "Disconnect"),
    );
  });
});

describeWith("BLE transport when bluetoothd is missing or leaves", BLUEZ_NEEDS, () => {
  it("says bluetoothd is not running, with what to do", async () => {
    const bus = await startBus();
    try {
      await assert.rejects(
        openBluez({ address: bus.address }),
        (e: unknown) =>
          e instanceof DBusError && e.dbusName === "org.freedesktop.DBus.Error.ServiceUnknown" &&
          /systemctl start bluetooth/.test(e.message) && e.code === 2301111,
      );
    } finally {
      await bus.stop();
    }
  });

  it("closes every link and server when bluetoothd leaves the bus", async () => {
    const fake = await startBluez({
      adapters: [["hci0", CENTRAL, "c"], ["hci1", PERIPHERAL, "p"]],
    });
    const logs: string[] = [];
    const p = await openBluez({ address: fake.bus.address, logger: (m) => logs.push(m) });
    const c = await openBluez({ address: fake.bus.address });
    try {
      const server: GattServer = await p.adapter("hci1").serve(linkweaveProfile(1));
      const stopped = new Promise((r) => server.on("close", r));
      const link = await c.adapter("hci0").connect(PERIPHERAL, linkweaveProfile(1));
      await fake.killMock();
      assert.equal((await within(link.done)).reason, "bluez-gone");
      assert.deepEqual(await within(stopped), { reason: "bluez-gone" });
      assert.ok(logs.some((m) => /restart it with `sudo systemctl restart bluetooth`/.test(m)));
    } finally {
      await p.close();
      await c.close();
      await fake.stop();
    }
  });
});

describeWith("BLE errors carry advice", DBUS_NEEDS, () => {
  it("explains a policy refusal, a refused operation and an unauthorized one", () => {
    const advice = (name: string, text = "") =>
      bluezError(new DBusError(name, "x", { text }), "Cannot do it").message;
    assert.match(
      advice("org.freedesktop.DBus.Error.AccessDenied"),
      /policy file shown in docs\/bluez\.md/,
    );
    assert.match(advice("org.bluez.Error.NotPermitted"), /BlueZ refused the operation/);
    assert.match(advice("org.bluez.Error.NotAuthorized"), /rights on the adapter/);
    assert.match(advice("org.bluez.Error.Failed", "le-connection-abort-by-local"), /out of range/);
    assert.equal(
      advice("org.linkweave.Error.Other", "t"),
      "Cannot do it: org.linkweave.Error.Other: t",
    );
  });
});

describeWith("Device and adapter basics on dbusmock's stock bluez5 template", BLUEZ_NEEDS, () => {
  let fake: FakeBluez;
  let bluez: Bluez;
  before(async () => {
    fake = await startBluez({ template: "bluez5" });
    await fake.mock("AddAdapter", "ss", ["hci0", "board"]);
    bluez = await openBluez({ address: fake.bus.address });
  });
  after(async () => {
    await bluez?.close();
    await fake?.stop();
  });

  it("lists the adapter, scans (filter set first), connects and disconnects a device", async () => {
    await waitUntil(() => bluez.adapters().length === 1);
    const hci0 = bluez.adapter();
    assert.equal(hci0.name, "hci0");
    assert.equal(hci0.address, "00:01:02:03:04:05");
    assert.equal(hci0.powered, true);
    // The stock template's StartDiscovery fails without a filter (KeyError):
    // discover() always sets one first.
    const scan = await hci0.discover();
    const seen: string[] = [];
    scan.on("device", (d) => seen.push(d.address));
    await fake.mock("AddDevice", "sss", ["hci0", "11:22:33:44:55:66", "phone"]);
    await waitUntil(() => seen.includes("11:22:33:44:55:66"));
    await scan.stop();
    const d = await hci0.connectDevice("11:22:33:44:55:66");
    assert.equal(d.connected, true);
    // The template's Connect never stores Connected (its Get still says
    // false); the PropertiesChanged it emits is what counts.
    const got = await fake.control.call({
      destination: "org.bluez",
      path: d.path,
      interface: "org.freedesktop.DBus.Properties",
      member: "Get",
      signature: "ss",
      body: ["org.bluez.Device1", "Connected"],
    });
    assert.deepEqual(got.body[0], new Variant("b", false));
    assert.equal(hci0.devices().find((x) => x.address === "11:22:33:44:55:66")?.connected, true);
    await hci0.disconnectDevice("11:22:33:44:55:66");
    await waitUntil(() =>
      hci0.devices().find((x) => x.address === "11:22:33:44:55:66")?.connected === false
    );
  });

  it("gives up on GATT when services never resolve", async () => {
    await assert.rejects(
      bluezAdapter().connect("11:22:33:44:55:66", linkweaveProfile(1), { timeout: 400 }),
      (e: unknown) =>
        e instanceof DBusError && e.code === 2301110 &&
        /services were not resolved/.test(e.message),
    );
  });

  function bluezAdapter() {
    return bluez.adapter("hci0");
  }
});

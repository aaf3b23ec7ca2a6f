/**
 * The D-Bus client against a real, private `dbus-daemon` (no mock): the
 * daemon checks every message we send with libdbus's own validator, so each
 * round trip is a wire-level test of the codec. `dbus-send` and dbus-python
 * are independent clients of what we export.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import * as net from "node:net";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { after, before, it } from "node:test";
import { describeWith, RUNTIME, TEST_ALL } from "../../../tests/harness/env.ts";
import { DBUS_NEEDS, DENIED_NAME, type PrivateBus, startBus } from "../../../tests/harness/dbus.ts";
import { connectBus, type DBusConnection, type Subscription } from "./connection.ts";
import { DBusError } from "./errors.ts";
import { loadLibc, POLL } from "./_ffi.ts";
import type { Message } from "./message.ts";
import { Variant } from "./marshal.ts";

const IFACE = "org.linkweave.Test";
const PATH = "/org/linkweave/test";
/** Why the dbus-python check cannot run here, or `undefined`. */
const PYTHON_DBUS_GAP = pythonDbusGap();

function pythonDbusGap(): string | undefined {
  const r = spawnSync("/usr/bin/python3", ["-c", "import dbus"], { stdio: "ignore" });
  if (r.status === 0) return undefined;
  const gap = "needs apt-get install -y python3-dbus";
  if (TEST_ALL) return undefined; // run it, and let it fail
  console.log(`skip: dbus-python check: ${gap}`);
  return gap;
}

/** Runtimes where descriptors pass (FFI): everywhere but Node. */
const FDS = RUNTIME !== "node";

const SAMPLE: [string, unknown][] = [
  ["y", 255],
  ["b", true],
  ["n", -32768],
  ["q", 65535],
  ["i", -2147483648],
  ["u", 4294967295],
  ["x", -(1n << 63n)],
  ["t", (1n << 64n) - 1n],
  ["d", -1.5e300],
  ["s", "héllo ✓ 🙂"],
  ["o", "/org/bluez/hci0"],
  ["g", "a{oa{sa{sv}}}"],
  ["ay", new Uint8Array([0, 1, 255])],
  ["a{qv}", new Map([[0xffff, new Variant("ay", new Uint8Array([1, 2]))]])],
  ["a{sa{sv}}", new Map([["org.bluez.Device1", new Map([["RSSI", new Variant("n", -60)]])]])],
  ["(ybnqiuxtdsog)", [1, false, -1, 1, -1, 1, -1n, 1n, 0.25, "s", "/o", "g"]],
  ["v", new Variant("(ai)", [[1, 2, 3]])],
  ["aax", [[], [1n], [2n, 3n]]],
  ["a(yv)", [[1, new Variant("o", "/")], [8, new Variant("g", "")]]],
];

describeWith("D-Bus client on a private dbus-daemon", DBUS_NEEDS, () => {
  let bus: PrivateBus;
  let server: DBusConnection;
  let client: DBusConnection;
  const opened: DBusConnection[] = [];
  let slowGate: Promise<void> = Promise.resolve();
  let concurrent = 0;
  let maxConcurrent = 0;
  let propValue = "first";

  const open = async (options: Parameters<typeof connectBus>[0] = {}) => {
    const c = await connectBus({ address: bus.address, unixFds: true, ...options });
    opened.push(c);
    return c;
  };
  const callServer = (member: string, signature = "", body: unknown[] = [], timeout?: number) =>
    client.call({
      destination: server.uniqueName,
      path: PATH,
      interface: IFACE,
      member,
      signature,
      body,
    }, { timeout });

  before(async () => {
    bus = await startBus();
    server = await open();
    client = await open();
    server.export(PATH, {
      name: IFACE,
      methods: {
        Echo: { in: "v", out: "v", handler: ([v]) => [v] },
        Sum: { in: "ii", out: "i", handler: ([a, b]) => [(a as number) + (b as number)] },
        Fail: {
          handler: () => {
            throw new DBusError("org.linkweave.Error.Nope", "x", { text: "nope" });
          },
        },
        Crash: {
          handler: () => {
            throw new Error("boom");
          },
        },
        Never: { handler: () => new Promise(() => {}) },
        Slow: {
          handler: async () => {
            concurrent++;
            maxConcurrent = Math.max(maxConcurrent, concurrent);
            await slowGate;
            await new Promise((r) => setTimeout(r, 5));
            concurrent--;
          },
        },
        Fds: { in: "h", out: "s", handler: () => ["unused"] },
      },
      properties: {
        Name: { signature: "s", get: () => propValue, set: (v) => (propValue = v as string) },
        Fixed: { signature: "u", get: () => 42 },
      },
      signals: { Changed: "su" },
    });
  });

  after(async () => {
    for (const c of opened) c.close();
    await bus?.stop();
  });

  it("says Hello, and passes descriptors exactly where the runtime has FFI", async () => {
    assert.match(client.uniqueName, /^:1\.\d+$/);
    assert.notEqual(client.uniqueName, server.uniqueName);
    assert.equal(client.unixFds, FDS, `descriptor passing on ${RUNTIME}`);
    // Without unixFds: the runtime's own socket, no descriptors.
    const plain = await open({ unixFds: false });
    assert.equal(plain.unixFds, false);
    const r = await plain.call({
      destination: server.uniqueName,
      path: PATH,
      interface: IFACE,
      member: "Sum",
      signature: "ii",
      body: [1, 2],
    });
    assert.deepEqual(r.body, [3]);
  });

  it("round-trips every type through the daemon, in both byte orders", async () => {
    const big = await open({ endian: "B" });
    for (const caller of [client, big]) {
      for (const [sig, value] of SAMPLE) {
        const r = await caller.call({
          destination: server.uniqueName,
          path: PATH,
          interface: IFACE,
          member: "Echo",
          signature: "v",
          body: [new Variant(sig, value)],
        });
        assert.equal(r.signature, "v");
        assert.deepEqual(r.body[0], new Variant(sig, value), sig);
      }
    }
    // A megabyte each way.
    const mb = new Uint8Array(1 << 20).map((_, i) => i * 7);
    const r = await callServer("Echo", "v", [new Variant("ay", mb)]);
    assert.deepEqual((r.body[0] as Variant).value, mb);
  });

  it("turns error replies into DBusErrors that keep the name, with a code", async () => {
    await assert.rejects(callServer("Fail"), (e: unknown) => {
      assert.ok(e instanceof DBusError);
      assert.equal(e.dbusName, "org.linkweave.Error.Nope");
      assert.equal(e.text, "nope");
      assert.equal(e.data?.platform, "bluez");
      assert.match(
        e.message,
        /^Cannot call org\.linkweave\.Test\.Fail on "\/org\/linkweave\/test": /,
      );
      return true;
    });
    await assert.rejects(
      callServer("Crash"),
      (e: unknown) =>
        e instanceof DBusError && e.dbusName === "org.freedesktop.DBus.Error.Failed" &&
        e.text === "boom",
    );
    await assert.rejects(
      client.call({ destination: "org.linkweave.Nobody", path: "/", member: "X" }),
      (e: unknown) =>
        e instanceof DBusError && e.dbusName === "org.freedesktop.DBus.Error.ServiceUnknown" &&
        e.code === 2301111,
    );
    const wrong: [Promise<Message>, string][] = [
      [callServer("Nope"), "UnknownMethod"],
      [callServer("Sum", "s", ["x"]), "InvalidArgs"],
      [
        client.call({ destination: server.uniqueName, path: PATH, interface: "a.B", member: "X" }),
        "UnknownInterface",
      ],
      [
        client.call({ destination: server.uniqueName, path: "/nope", member: "X" }),
        "UnknownObject",
      ],
    ];
    for (const [p, name] of wrong) {
      await assert.rejects(
        p,
        (e: unknown) =>
          e instanceof DBusError && e.dbusName === `org.freedesktop.DBus.Error.${name}`,
      );
    }
  });

  it("times out a call with NoReply (ETIMEDOUT)", async () => {
    await assert.rejects(
      callServer("Never", "", [], 150),
      (e: unknown) =>
        e instanceof DBusError && e.dbusName === "org.freedesktop.DBus.Error.NoReply" &&
        e.code === 2301110 && /within 150 ms/.test(e.message),
    );
    assert.equal(client.pendingCalls, 0);
  });

  it("keeps at most maxPendingCalls in flight and queues the rest in order", async () => {
    const limited = await open({ maxPendingCalls: 2 });
    let release!: () => void;
    slowGate = new Promise((r) => (release = r));
    maxConcurrent = 0;
    const calls = Array.from(
      { length: 8 },
      () =>
        limited.call({
          destination: server.uniqueName,
          path: PATH,
          interface: IFACE,
          member: "Slow",
        }),
    );
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(limited.pendingCalls, 2);
    release();
    await Promise.all(calls);
    assert.equal(maxConcurrent, 2);
  });

  it("refuses incoming calls beyond maxIncomingCalls with LimitsExceeded", async () => {
    const small = await open({ maxIncomingCalls: 1 });
    small.export(PATH, {
      name: IFACE,
      methods: { Wait: { handler: () => new Promise((r) => setTimeout(r, 100)) } },
    });
    const call = () =>
      client.call({ destination: small.uniqueName, path: PATH, interface: IFACE, member: "Wait" });
    const [a, b] = await Promise.allSettled([call(), call()]);
    assert.equal(a.status, "fulfilled");
    assert.equal(b.status, "rejected");
    assert.equal(
      ((b as PromiseRejectedResult).reason as DBusError).dbusName,
      "org.freedesktop.DBus.Error.LimitsExceeded",
    );
  });

  it("delivers signals by match rule, through the owner of a well-known name", async () => {
    assert.equal(await server.requestName("org.linkweave.TestServer"), 1);
    const seen: string[] = [];
    const subs: Subscription[] = [];
    subs.push(
      await client.subscribe(
        { sender: "org.linkweave.TestServer", interface: IFACE, member: "Changed", arg0: "a" },
        (m) => seen.push(`a:${m.body[1]}`),
      ),
    );
    subs.push(
      await client.subscribe(
        { interface: IFACE, pathNamespace: "/org/linkweave" },
        (m) => seen.push(`ns:${m.body[0]}${m.body[1]}`),
      ),
    );
    const sig = (arg: string, n: number, path = PATH) =>
      server.emitSignal(path, IFACE, "Changed", { signature: "su", body: [arg, n] });
    sig("a", 1);
    sig("b", 2);
    sig("a", 3, "/elsewhere");
    await waitUntil(() => seen.length >= 4);
    assert.deepEqual(seen, ["a:1", "ns:a1", "ns:b2", "a:3"]);
    // After close(), the first subscription no longer hears anything; the
    // second one's next signal proves the first had its chance.
    await subs[0].close();
    seen.length = 0;
    sig("a", 4);
    sig("b", 5);
    await waitUntil(() => seen.length >= 2);
    assert.deepEqual(seen, ["ns:a4", "ns:b5"]);
    // Another connection taking the name over: signals from the old owner no
    // longer match a rule naming the well-known name.
    const other = await open();
    const owners: (string | undefined)[] = [];
    const watch = await client.watchName("org.linkweave.Moving", (o) => owners.push(o));
    const fromName: number[] = [];
    const s3 = await client.subscribe(
      { sender: "org.linkweave.Moving", interface: IFACE, member: "Changed" },
      (m) => fromName.push(m.body[1] as number),
    );
    assert.equal(await server.requestName("org.linkweave.Moving"), 1);
    await waitUntil(() => owners.length === 1);
    sig("m", 1);
    await waitUntil(() => fromName.length === 1);
    await server.call({
      destination: "org.freedesktop.DBus",
      path: "/org/freedesktop/DBus",
      interface: "org.freedesktop.DBus",
      member: "ReleaseName",
      signature: "s",
      body: ["org.linkweave.Moving"],
    });
    assert.equal(await other.requestName("org.linkweave.Moving"), 1);
    await waitUntil(() => owners.length === 3);
    assert.deepEqual(owners, [server.uniqueName, undefined, other.uniqueName]);
    sig("m", 2);
    other.emitSignal(PATH, IFACE, "Changed", { signature: "su", body: ["m", 3] });
    await waitUntil(() => fromName.length === 2);
    assert.deepEqual(fromName, [1, 3]);
    await Promise.all([...subs.slice(1), s3, watch].map((s) => s.close()));
  });

  it("serves Properties with Get, GetAll, Set and PropertiesChanged", async () => {
    const props = (member: string, signature: string, body: unknown[]) =>
      client.call({
        destination: server.uniqueName,
        path: PATH,
        interface: "org.freedesktop.DBus.Properties",
        member,
        signature,
        body,
      });
    assert.deepEqual((await props("Get", "ss", [IFACE, "Fixed"])).body, [new Variant("u", 42)]);
    const all = (await props("GetAll", "s", [IFACE])).body[0] as Map<string, Variant>;
    assert.deepEqual([...all.keys()].sort(), ["Fixed", "Name"]);
    const changes: Message[] = [];
    const sub = await client.subscribe(
      { interface: "org.freedesktop.DBus.Properties", member: "PropertiesChanged", path: PATH },
      (m) => changes.push(m),
    );
    await props("Set", "ssv", [IFACE, "Name", new Variant("s", "second")]);
    assert.equal(propValue, "second");
    await assert.rejects(
      props("Set", "ssv", [IFACE, "Fixed", new Variant("u", 1)]),
      /PropertyReadOnly/,
    );
    await assert.rejects(props("Set", "ssv", [IFACE, "Name", new Variant("u", 1)]), /InvalidArgs/);
    await assert.rejects(props("Get", "ss", [IFACE, "Nope"]), /UnknownProperty/);
    await assert.rejects(props("Get", "ss", ["a.B", "Nope"]), /UnknownInterface/);
    // The exported handle emits PropertiesChanged with the current value.
    const handle = server.export("/org/linkweave/props", {
      name: IFACE,
      properties: { Name: { signature: "s", get: () => propValue } },
    });
    const sub2 = await client.subscribe(
      { member: "PropertiesChanged", path: "/org/linkweave/props" },
      (m) => changes.push(m),
    );
    handle.propertiesChanged(["Name"], ["Other"]);
    await waitUntil(() => changes.length === 1);
    assert.deepEqual(changes[0].body, [IFACE, new Map([["Name", new Variant("s", "second")]]), [
      "Other",
    ]]);
    handle.unexport();
    await Promise.all([sub.close(), sub2.close()]);
  });

  it("serves an ObjectManager with InterfacesAdded and InterfacesRemoved", async () => {
    const app = await open();
    const stop = app.addObjectManager("/app");
    const added: Message[] = [];
    await client.subscribe(
      { interface: "org.freedesktop.DBus.ObjectManager", sender: app.uniqueName },
      (m) => added.push(m),
    );
    const svc = app.export("/app/service0", {
      name: "org.bluez.GattService1",
      properties: {
        UUID: { signature: "s", get: () => "1234" },
        Primary: { signature: "b", get: () => true },
      },
    });
    app.export("/app/service0/char0", {
      name: "org.bluez.GattCharacteristic1",
      properties: { Flags: { signature: "as", get: () => ["notify"] } },
    });
    const r = await client.call({
      destination: app.uniqueName,
      path: "/app",
      interface: "org.freedesktop.DBus.ObjectManager",
      member: "GetManagedObjects",
    });
    assert.equal(r.signature, "a{oa{sa{sv}}}");
    const objects = r.body[0] as Map<string, Map<string, Map<string, Variant>>>;
    assert.deepEqual([...objects.keys()].sort(), ["/app/service0", "/app/service0/char0"]);
    assert.deepEqual(
      objects.get("/app/service0")?.get("org.bluez.GattService1")?.get("UUID"),
      new Variant("s", "1234"),
    );
    svc.unexport();
    await waitUntil(() => added.length === 3);
    assert.deepEqual(added.map((m) => `${m.member} ${m.body[0]}`), [
      "InterfacesAdded /app/service0",
      "InterfacesAdded /app/service0/char0",
      "InterfacesRemoved /app/service0",
    ]);
    assert.deepEqual(added[2].body[1], ["org.bluez.GattService1"]);
    const xml = (await client.call({
      destination: app.uniqueName,
      path: "/app",
      interface: "org.freedesktop.DBus.Introspectable",
      member: "Introspect",
    })).body[0] as string;
    assert.match(xml, /<interface name="org\.freedesktop\.DBus\.ObjectManager">/);
    assert.match(xml, /<node name="service0"\/>/);
    stop();
  });

  it("is understood by dbus-send", async () => {
    const send = await run("dbus-send", [
      `--bus=${bus.address}`,
      "--print-reply",
      `--dest=${server.uniqueName}`,
      PATH,
      `${IFACE}.Sum`,
      "int32:40",
      "int32:2",
    ]);
    assert.equal(send.status, 0, send.stderr);
    assert.match(send.stdout, /int32 42/);
    const intro = await run("dbus-send", [
      `--bus=${bus.address}`,
      "--print-reply=literal",
      `--dest=${server.uniqueName}`,
      PATH,
      "org.freedesktop.DBus.Introspectable.Introspect",
    ]);
    assert.match(intro.stdout, /<method name="Sum">\s*<arg type="i" direction="in"\/>/);
  });

  it("is understood by dbus-python", { skip: PYTHON_DBUS_GAP }, async () => {
    const py = await run("/usr/bin/python3", [
      "-c",
      `
import dbus, sys
bus = dbus.bus.BusConnection(sys.argv[1])
o = bus.get_object(sys.argv[2], "${PATH}")
v = o.Echo(dbus.Dictionary({dbus.UInt16(65535): dbus.Array([dbus.Byte(1)], signature="y")}, signature="qv"), dbus_interface="${IFACE}")
print(sorted((int(k), [int(b) for b in x]) for k, x in v.items()))
print(o.Get("${IFACE}", "Fixed", dbus_interface="org.freedesktop.DBus.Properties"))
`,
      bus.address,
      server.uniqueName,
    ]);
    assert.equal(py.status, 0, py.stderr);
    assert.equal(py.stdout, "[(65535, [1])]\n42\n");
  });

  it("reports a policy refusal as AccessDenied (EACCES)", async () => {
    await assert.rejects(
      client.requestName(DENIED_NAME),
      (e: unknown) =>
        e instanceof DBusError && e.dbusName === "org.freedesktop.DBus.Error.AccessDenied" &&
        e.code === 2301013,
    );
  });

  it("passes descriptors both ways where the runtime has FFI, and refuses them elsewhere", async () => {
    const libc = await loadLibc();
    if (!FDS) {
      assert.equal(libc, undefined);
      await assert.rejects(
        client.call({
          destination: server.uniqueName,
          path: PATH,
          member: "Fds",
          signature: "h",
          body: [0],
          fds: [0],
        }),
        (e: unknown) =>
          e instanceof DBusError && e.dbusName === "org.freedesktop.DBus.Error.NotSupported",
      );
      return;
    }
    assert.ok(libc !== undefined);
    // Server side: hand out one end of a socket pair, keep the other.
    const kept: number[] = [];
    server.export("/fds", {
      name: IFACE,
      methods: {
        Acquire: {
          out: "hq",
          handler: () => {
            const pair = libc.seqpacketPair() as [number, number];
            kept.push(pair[0]);
            return { body: [0, 517], fds: [pair[1]] };
          },
        },
        Take: {
          in: "h",
          out: "s",
          handler: (_args, call) => {
            const fd = call.fds[0];
            libc.send(fd, new TextEncoder().encode("from server"));
            libc.close(fd);
            return ["ok"];
          },
        },
      },
    });
    const r = await client.call({
      destination: server.uniqueName,
      path: "/fds",
      interface: IFACE,
      member: "Acquire",
    });
    assert.equal(r.signature, "hq");
    assert.equal(r.fds.length, 1);
    assert.deepEqual(r.body, [0, 517]);
    const mine = r.fds[0];
    libc.send(kept[0], new TextEncoder().encode("hello"));
    assert.equal(new TextDecoder().decode(await readPacket(libc, mine)), "hello");
    libc.send(mine, new TextEncoder().encode("back"));
    assert.equal(new TextDecoder().decode(await readPacket(libc, kept[0])), "back");
    // Client side: send one end in a call.
    const pair = libc.seqpacketPair() as [number, number];
    const t = await client.call({
      destination: server.uniqueName,
      path: "/fds",
      interface: IFACE,
      member: "Take",
      signature: "h",
      body: [0],
      fds: [pair[1]],
    });
    assert.deepEqual(t.body, ["ok"]);
    libc.close(pair[1]);
    assert.equal(new TextDecoder().decode(await readPacket(libc, pair[0])), "from server");
    for (const fd of [mine, kept[0], pair[0]]) libc.close(fd);
  });

  it("honours DBUS_SYSTEM_BUS_ADDRESS and DBUS_SESSION_BUS_ADDRESS", async () => {
    const saved = { ...process.env };
    try {
      process.env.DBUS_SYSTEM_BUS_ADDRESS = bus.address;
      const sys = await connectBus();
      opened.push(sys);
      assert.match(sys.uniqueName, /^:1\./);
      process.env.DBUS_SESSION_BUS_ADDRESS = `unix:path=/nonexistent/lw-dbus;${bus.address}`;
      const ses = await connectBus({ bus: "session" });
      opened.push(ses);
      assert.match(ses.uniqueName, /^:1\./);
      process.env.DBUS_SYSTEM_BUS_ADDRESS = "unix:path=/nonexistent/lw-dbus-bus";
      await assert.rejects(
        connectBus(),
        (e: unknown) =>
          e instanceof DBusError && e.dbusName === "org.freedesktop.DBus.Error.NoServer" &&
          /system bus/.test(e.message),
      );
      process.env.DBUS_SYSTEM_BUS_ADDRESS = "tcp:host=localhost,port=1";
      await assert.rejects(connectBus(), /no unix:path= or unix:abstract= entry/);
    } finally {
      process.env.DBUS_SYSTEM_BUS_ADDRESS = saved.DBUS_SYSTEM_BUS_ADDRESS;
      process.env.DBUS_SESSION_BUS_ADDRESS = saved.DBUS_SESSION_BUS_ADDRESS;
      if (saved.DBUS_SYSTEM_BUS_ADDRESS === undefined) delete process.env.DBUS_SYSTEM_BUS_ADDRESS;
      if (saved.DBUS_SESSION_BUS_ADDRESS === undefined) delete process.env.DBUS_SESSION_BUS_ADDRESS;
    }
  });

  it("fails pending calls with Disconnected when the connection closes", async () => {
    const c = await open();
    const closed = new Promise<Error | undefined>((r) => c.onClose(r));
    const p = c.call({
      destination: server.uniqueName,
      path: PATH,
      interface: IFACE,
      member: "Never",
    });
    c.close();
    await assert.rejects(
      p,
      (e: unknown) =>
        e instanceof DBusError && e.dbusName === "org.freedesktop.DBus.Error.Disconnected" &&
        e.code === 2301104,
    );
    assert.ok((await closed) instanceof DBusError);
    await assert.rejects(
      c.call({ destination: server.uniqueName, path: PATH, member: "Sum" }),
      /connection is closed/,
    );
  });
});

describeWith("D-Bus client on an abstract socket", DBUS_NEEDS, () => {
  it("connects where the runtime can reach abstract sockets, and says why not on Node", async () => {
    const bus = await startBus({ abstract: true });
    try {
      assert.match(bus.address, /^unix:abstract=/);
      for (const unixFds of [false, true]) {
        const p = connectBus({ address: bus.address, unixFds });
        if (RUNTIME === "node") {
          await assert.rejects(
            p,
            (e: unknown) =>
              e instanceof DBusError && /Node cannot reach abstract sockets/.test(e.message) &&
              e.code === 2301111,
          );
        } else {
          const c = await p;
          assert.match(c.uniqueName, /^:1\./);
          assert.equal(c.unixFds, unixFds);
          c.close();
        }
      }
    } finally {
      await bus.stop();
    }
  });
});

describeWith("D-Bus client against a hostile bus", {}, () => {
  const dir = mkdtempSync(join(tmpdir(), "lw-dbus-hostile-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** A fake bus that authenticates anyone, then sends `reply` after BEGIN. */
  async function fakeBus(name: string, onBegin: (s: net.Socket) => void, auth = "OK 1234abcd\r\n") {
    const path = join(dir, name);
    const srv = net.createServer((s) => {
      let text = "";
      s.on("error", () => {});
      s.on("data", (b: Uint8Array) => {
        text += new TextDecoder().decode(b);
        if (text.includes("AUTH ") && !text.includes("#sent")) {
          text += "#sent";
          s.write(auth);
        }
        if (text.includes("NEGOTIATE_UNIX_FD") && !text.includes("#fd")) {
          text += "#fd";
          s.write("AGREE_UNIX_FD\r\n");
        }
        if (text.includes("BEGIN\r\n") && !text.includes("#begun")) {
          text += "#begun";
          onBegin(s);
        }
      });
    });
    await new Promise<void>((r) => srv.listen(path, r));
    return {
      address: `unix:path=${path}`,
      close: () => new Promise<void>((r) => srv.close(() => r())),
    };
  }

  it("closes with InconsistentMessage on garbage instead of a message", async () => {
    const fake = await fakeBus("garbage", (s) => s.write(new Uint8Array(64).fill(0x41)));
    await assert.rejects(
      connectBus({ address: fake.address, connectTimeout: 2000 }),
      (e: unknown) =>
        e instanceof DBusError &&
        e.dbusName === "org.freedesktop.DBus.Error.InconsistentMessage" &&
        /byte order mark/.test(e.message),
    );
    await fake.close();
  });

  it("closes when a header claims a message over the limit, without waiting for it", async () => {
    const header = new Uint8Array(16);
    header.set([0x6c, 2, 0, 1]);
    new DataView(header.buffer).setUint32(4, 0x7fffffff, true);
    const fake = await fakeBus("huge", (s) => s.write(header));
    await assert.rejects(
      connectBus({ address: fake.address, connectTimeout: 2000 }),
      /exceeds 8388608/,
    );
    await fake.close();
  });

  it("reports a refused authentication as AuthFailed", async () => {
    const fake = await fakeBus("reject", () => {}, "REJECTED DBUS_COOKIE_SHA1\r\n");
    await assert.rejects(
      connectBus({ address: fake.address, connectTimeout: 2000 }),
      (e: unknown) =>
        e instanceof DBusError && e.dbusName === "org.freedesktop.DBus.Error.AuthFailed" &&
        /DBUS_COOKIE_SHA1/.test(e.message) && e.code === 2301013,
    );
    await fake.close();
  });

  it("times out a bus that never answers Hello", async () => {
    const fake = await fakeBus("silent", () => {});
    await assert.rejects(
      connectBus({ address: fake.address, connectTimeout: 300 }),
      (e: unknown) => e instanceof DBusError && e.dbusName === "org.freedesktop.DBus.Error.NoReply",
    );
    await fake.close();
  });
});

/** Run a command without blocking this process (which serves the calls). */
function run(
  cmd: string,
  args: string[],
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout!.on("data", (b: Uint8Array) => (stdout += new TextDecoder().decode(b)));
    child.stderr!.on("data", (b: Uint8Array) => (stderr += new TextDecoder().decode(b)));
    child.on("error", (e) => resolve({ status: null, stdout, stderr: String(e) }));
    child.on("close", (status) => resolve({ status, stdout, stderr }));
  });
}

async function waitUntil(cond: () => boolean, ms = 3000): Promise<void> {
  const until = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function readPacket(
  libc: NonNullable<Awaited<ReturnType<typeof loadLibc>>>,
  fd: number,
): Promise<Uint8Array> {
  return await new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      libc.poller.remove(fd);
      reject(new Error(`no packet on fd ${fd}`));
    }, 3000);
    libc.poller.add(fd, POLL.IN, () => {
      const r = libc.recv(fd);
      if (typeof r === "number") return;
      clearTimeout(timer);
      libc.poller.remove(fd);
      resolve(r);
    });
  });
}

/**
 * The device daemon as real processes on loopback: `linkweave daemon` owns
 * device D; applications (`_app.ts`) attach to it over its socket and serve
 * linkEnhance and an ability to a peer device P (in this process); two
 * applications share D's one link to P; an application killed while
 * connected ends its connections on P's side; hostile attach input closes
 * only the application that sent it; the daemon starts abilities from its
 * manifest (the seed's device-B example on the first `connect`, accept and
 * reject), refuses an unknown ability, and gives up on one that does not
 * register in time; a stopped daemon gives its applications clear errors,
 * and a restarted one on the default socket is found by applications that
 * configure nothing.
 *
 * @module
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { after, before, describe, it } from "node:test";
import { type Child, freePort, scriptCommand, start } from "../_script.ts";
import type { Device } from "../../device.ts";
import { UIAbility } from "../../ability_connection_manager.ts";
import type { Connection } from "../../core/link_enhance/mod.ts";
import { ConnectErrorCode, DisconnectReason } from "../../core/ability/types.ts";
import { DisconnectReason as LinkReason } from "../../core/error_codes.ts";
import { ATTACH_MAJOR, ATTACH_MINOR, AttachDecoder, encodeAttach } from "../../core/daemon/wire.ts";
import { within } from "../harness/within.ts";
import { startPeer } from "./_peer.ts";

const D = "02:00:00:00:DA:0D";
const P = "02:00:00:00:DA:01";
const ACCOUNT = "daemon-test-account";
const dir = mkdtempSync(join(tmpdir(), "daemon-test-"));
const SOCKET = join(dir, "d.sock");
const RUN = join(dir, "run");
const children: Child[] = [];
const launched: number[] = [];
const COMMON = {
  LINKWEAVE_DISCOVERY: "off",
  LINKWEAVE_ACCOUNT: ACCOUNT,
  XDG_STATE_HOME: join(dir, "state"),
  XDG_CONFIG_HOME: join(dir, "config"),
  XDG_RUNTIME_DIR: RUN,
};

// P's keys and trust store live in a state directory of their own (D's are new each run).
const savedState = process.env.XDG_STATE_HOME;
process.env.XDG_STATE_HOME = join(dir, "peer-state");

let daemonPort = 0;
let peerPort = 0;
let peer: Device;
let daemon: Child;

after(async () => {
  for (const c of children) c.kill();
  // Every ability a daemon started, also when a test failed before it noted one.
  for (const c of children) for (const e of events(c, "launched")) launched.push(e.pid as number);
  for (const pid of launched) {
    try {
      process.kill(pid, "SIGKILL");
    } catch { /* gone */ }
  }
  await peer?.close();
  if (savedState === undefined) delete process.env.XDG_STATE_HOME;
  else process.env.XDG_STATE_HOME = savedState;
  rmSync(dir, { recursive: true, force: true });
});

/** Start `linkweave daemon` with these arguments. */
function startDaemon(args: string[], env: Record<string, string> = {}): Child {
  const c = start(
    "cli/mod.ts",
    {
      ...COMMON,
      LINKWEAVE_DEVICE_ID: D,
      LINKWEAVE_PORT: String(daemonPort),
      ...env,
    },
    [],
    { args: ["daemon", ...args] },
  );
  children.push(c);
  return c;
}

/** An application attached to the daemon (or to whatever its environment says). */
async function startApp(env: Record<string, string>): Promise<{ app: Child; id: string }> {
  const app = start("tests/daemon/_app.ts", { ...COMMON, LINKWEAVE_DAEMON: SOCKET, ...env });
  children.push(app);
  const m = await app.waitFor(/\{"ready":"([^"]+)"/, 20_000);
  return { app, id: m[1] };
}

/** Lines the daemon printed for one event. */
function events(c: Child, event: string): Record<string, unknown>[] {
  return c.out.split("\n").filter((l) => l.startsWith('{"daemon"')).map((l) => JSON.parse(l))
    .filter((e) => e.daemon === event);
}

interface Echo {
  conn: Connection;
  echo(text: string): Promise<string>;
  gone: Promise<number>;
}

/** A linkEnhance connection from P to a server of D that echoes. */
async function linkEnhanceTo(name: string): Promise<Echo> {
  const conn = peer.createConnection(D, name);
  const result = new Promise<{ success: boolean; reason: number }>((r) =>
    conn.on("connectResult", r)
  );
  const gone = new Promise<number>((r) => conn.on("disconnected", r));
  let waiting: ((s: string) => void) | undefined;
  conn.on("dataReceived", (data: ArrayBuffer) => waiting?.(new TextDecoder().decode(data)));
  conn.connect();
  const r = await within(result, 10_000, `connect to "${name}"`);
  assert.equal(r.success, true, `connect to "${name}": ${JSON.stringify(r)}\n${daemon.err}`);
  return {
    conn,
    gone,
    echo: (text) => {
      const back = new Promise<string>((resolve) => waiting = resolve);
      conn.sendData(new TextEncoder().encode(text).buffer as ArrayBuffer);
      return within(back, 10_000, `echo of "${text}" on "${name}"`);
    },
  };
}

const caller = new UIAbility();

/** An ability session from P to an ability of D. */
async function sessionTo(
  bundleName: string,
  abilityName = "EntryAbility",
  parameters: Record<string, string> = {},
): Promise<{ id: number; isConnected: boolean; errorCode?: number; ms: number }> {
  const api = peer.abilityConnectionManager;
  const id = api.createAbilityConnectionSession("daemonTest", caller.context, {
    deviceId: D,
    bundleName,
    moduleName: "entry",
    abilityName,
  }, { needSendData: true, parameters });
  const t0 = Date.now();
  const r = await within(api.connect(id), 15_000, `connect to ${bundleName}/${abilityName}`);
  return { id, isConnected: r.isConnected, errorCode: r.errorCode, ms: Date.now() - t0 };
}

function sessionEcho(id: number, text: string): Promise<string> {
  const api = peer.abilityConnectionManager;
  const back = new Promise<string>((r) => api.on("receiveMessage", id, (i) => r(i.msg!)));
  void api.sendMessage(id, text);
  return within(back, 10_000, `session echo of "${text}"`);
}

function sessionEnd(id: number): Promise<number> {
  const api = peer.abilityConnectionManager;
  return new Promise((r) => api.on("disconnect", id, (i) => r(i.reason!)));
}

/** A raw attach connection: sends what it is given, collects the daemon's messages. */
function rawAttach(): Promise<{
  socket: net.Socket;
  messages: ReturnType<AttachDecoder["push"]>;
  closed: Promise<void>;
}> {
  return new Promise((resolve, reject) => {
    const socket = net.createConnection(SOCKET);
    const decoder = new AttachDecoder("daemon");
    const messages: ReturnType<AttachDecoder["push"]> = [];
    socket.on("data", (b: Uint8Array) => messages.push(...decoder.push(b)));
    const closed = new Promise<void>((r) => socket.on("close", () => r()));
    socket.on("error", () => {});
    socket.once("connect", () => resolve({ socket, messages, closed }));
    socket.once("error", reject);
  });
}

const hello = () =>
  encodeAttach({ type: "hello", major: ATTACH_MAJOR, minor: ATTACH_MINOR, caps: 0, pid: 1 });

describe("device daemon", { timeout: 180_000 }, () => {
  let first: Child;
  let firstLink: Echo;
  let firstSession: number;
  let firstSs: number | undefined;
  let sleeperPid = 0;

  before(async () => {
    daemonPort = await freePort();
    peerPort = await freePort();
    peer = await startPeer({
      id: P,
      port: peerPort,
      daemon: { id: D, port: daemonPort },
      account: ACCOUNT,
      caller,
    });
    mkdirSync(join(dir, "config"), { recursive: true });
    const [cmd, args] = scriptCommand("examples/ability_sink_001.ts");
    const manifest = {
      abilities: [
        {
          bundleName: "com.example.remotephotodemo",
          moduleName: "entry",
          abilityName: "EntryAbility",
          command: cmd,
          args,
          cwd: process.cwd(),
          startOptions: "START_IN_BACKGROUND",
          log: join(dir, "sink.log"),
        },
        {
          bundleName: "com.example.launched",
          moduleName: "entry",
          abilityName: "EntryAbility",
          command: scriptCommand("tests/daemon/_app.ts")[0],
          args: scriptCommand("tests/daemon/_app.ts")[1],
          cwd: process.cwd(),
          env: { LW_BUNDLE: "com.example.launched", LW_SERVER: "launched" },
          startOptions: "START_IN_BACKGROUND",
          log: join(dir, "launched.log"),
        },
        {
          bundleName: "com.example.sleeper",
          moduleName: "entry",
          abilityName: "EntryAbility",
          command: "sleep",
          args: ["30"],
        },
        {
          bundleName: "com.example.broken",
          moduleName: "entry",
          abilityName: "EntryAbility",
          command: "false",
        },
      ],
    };
    writeFileSync(join(dir, "abilities.json"), JSON.stringify(manifest));
    daemon = startDaemon(["--socket", SOCKET, "--manifest", join(dir, "abilities.json")]);
    await daemon.waitFor(/"daemon":"ready"/, 30_000);
  });

  it("an application attached to the daemon serves linkEnhance and an ability to a peer device", async () => {
    const { app, id } = await startApp({ LW_SERVER: "echo" });
    first = app;
    assert.equal(id, D, "the application's device is the daemon's");
    assert.equal(statSync(SOCKET).mode & 0o777, 0o600, "only this user may attach");
    firstLink = await linkEnhanceTo("echo");
    assert.equal(await firstLink.echo("hello through the daemon"), "hello through the daemon");
    const s = await sessionTo("com.example.lw");
    assert.equal(s.isConnected, true, JSON.stringify(s));
    firstSession = s.id;
    firstSs = ssLinks();
    assert.equal(await sessionEcho(s.id, "ping"), "ping");
    // A server nobody serves is refused as an embedded device refuses it.
    const none = peer.createConnection(D, "nobody");
    const r = new Promise<{ success: boolean; reason: number }>((res) =>
      none.on("connectResult", res)
    );
    none.connect();
    assert.equal((await within(r, 10_000, "connect to nobody")).reason, 32390201);
    none.close();
  });

  it("two applications on one daemon share one link per peer", async () => {
    const { id } = await startApp({ LW_SERVER: "echo2", LW_BUNDLE: "com.example.lw2" });
    assert.equal(id, D);
    const second = await linkEnhanceTo("echo2");
    assert.equal(await second.echo("second app"), "second app");
    const s = await sessionTo("com.example.lw2");
    assert.equal(s.isConnected, true);
    // Both applications' connections ride D's one link to P.
    assert.deepEqual(peer.links(), [D]);
    const ss = ssLinks();
    if (ss !== undefined) assert.equal(ss, firstSs, "no TCP connection more between P and D");
    second.conn.close();
  });

  it("an application killed while connected: its linkEnhance peer gets disconnected, its session PEER_APP_EXIT", async () => {
    const ended = sessionEnd(firstSession);
    first.kill();
    assert.equal(
      await within(firstLink.gone, 10_000, "disconnected"),
      LinkReason.PEER_DISCONNECTED,
    );
    assert.equal(await within(ended, 10_000, "session end"), DisconnectReason.PEER_APP_EXIT);
    // Its socket closed, or was reset (unread bytes): either way it is detached.
    await daemon.waitFor(
      new RegExp(
        `"daemon":"detached","app":\\d+,"pid":${first.proc.pid},"why":"it closed its socket`,
      ),
    );
    // The other application goes on over the same link.
    const again = await linkEnhanceTo("echo2");
    assert.equal(await again.echo("still here"), "still here");
    again.conn.close();
  });

  it("hostile attach input closes only the application that sent it", async () => {
    // A bad magic.
    const a = await rawAttach();
    const bad = hello();
    bad[5] = "X".charCodeAt(0);
    a.socket.write(bad);
    await within(a.closed, 5_000, "bad magic closes");
    assert.equal(a.messages[0]?.type, "error", JSON.stringify(a.messages));
    // A length over the limit: closed at once, nothing buffered for it.
    const b = await rawAttach();
    b.socket.write(hello());
    b.socket.write(new Uint8Array([0xff, 0xff, 0xff, 0xf0, 6, 0, 0, 0, 1]));
    await within(b.closed, 5_000, "huge length closes");
    const berr = b.messages.find((m) => m.type === "error");
    assert.match(
      String((berr as { message?: string })?.message),
      /a message of 4294967280 bytes \(attach messages are 1\.\.\d+ bytes\)/,
    );
    // A flood of names to serve, more than the daemon keeps for one application.
    const c = await rawAttach();
    c.socket.write(hello());
    const names = Array.from({ length: 5000 }, (_, i) => `name-${i}`);
    c.socket.write(encodeAttach({ type: "serve", kind: 0, names }));
    await within(c.closed, 10_000, "flood closes");
    const cerr = c.messages.find((m) => m.type === "error") as { message?: string } | undefined;
    assert.match(String(cerr?.message), /it served 5000 names \(at most 1024/);
    // The daemon and its other application go on.
    const again = await linkEnhanceTo("echo2");
    assert.equal(await again.echo("after the attacks"), "after the attacks");
    again.conn.close();
    assert.equal(daemon.proc.exitCode, null);
  });

  it("launch from the manifest: the seed's device-B example is started on the first connect and accepts", async () => {
    const s = await sessionTo("com.example.remotephotodemo");
    assert.equal(s.isConnected, true, JSON.stringify(s));
    const [ev] = events(daemon, "launched");
    assert.equal(ev?.ability, "com.example.remotephotodemo/entry/EntryAbility");
    assert.equal(ev?.foreground, false);
    launched.push(ev.pid as number);
    // Its process serves the session: the example prints what it receives.
    await peer.abilityConnectionManager.sendMessage(s.id, "hi, device B");
    await waitForFile(join(dir, "sink.log"), /"message":"hi, device B"/);
    // A second connect reaches the running process: nothing more is started.
    peer.abilityConnectionManager.disconnect(s.id);
    const again = await sessionTo("com.example.remotephotodemo");
    assert.equal(again.isConnected, true);
    assert.equal(events(daemon, "launched").length, 1);
    peer.abilityConnectionManager.disconnect(again.id);
  });

  it("launch from the manifest: the started ability rejects", async () => {
    const s = await sessionTo("com.example.launched", "EntryAbility", { mode: "reject" });
    assert.equal(s.isConnected, false);
    assert.equal(s.errorCode, ConnectErrorCode.PEER_APP_REJECTED);
    const ev = events(daemon, "launched").find((e) =>
      e.ability === "com.example.launched/entry/EntryAbility"
    );
    assert.ok(ev !== undefined, daemon.out);
    launched.push(ev.pid as number);
  });

  it("an unknown ability is refused with SYSTEM_INTERNAL_ERROR, nothing is started", async () => {
    const before = events(daemon, "launched").length;
    const s = await sessionTo("com.example.remotephotodemo", "NoSuchAbility");
    assert.equal(s.isConnected, false);
    assert.equal(s.errorCode, ConnectErrorCode.SYSTEM_INTERNAL_ERROR);
    assert.ok(s.ms < 5000, `answered at once, not by a timeout (${s.ms} ms)`);
    assert.equal(events(daemon, "launched").length, before);
    await daemon.waitFor(
      /"daemon":"unknownAbility","ability":"com.example.remotephotodemo\/entry\/NoSuchAbility"/,
    );
    // A bundle the device has nothing of: as an embedded device answers.
    const none = await sessionTo("com.example.nothing");
    assert.equal(none.isConnected, false);
  });

  it("an ability that exits before it registers is refused at once", async () => {
    const s = await sessionTo("com.example.broken");
    assert.equal(s.isConnected, false);
    assert.equal(s.errorCode, ConnectErrorCode.SYSTEM_INTERNAL_ERROR);
    assert.ok(s.ms < 5000, `${s.ms} ms`);
    await daemon.waitFor(
      /"launchFailed","ability":"com.example.broken\/entry\/EntryAbility","why":"exited with code 1"/,
    );
  });

  it("an ability that does not register within the collaboration timeout is given up", async () => {
    const s = await sessionTo("com.example.sleeper");
    assert.equal(s.isConnected, false);
    assert.equal(s.errorCode, ConnectErrorCode.SYSTEM_INTERNAL_ERROR);
    const ev = events(daemon, "launched").find((e) =>
      e.ability === "com.example.sleeper/entry/EntryAbility"
    );
    assert.ok(ev !== undefined);
    assert.equal(ev.foreground, true, "the caller's default start option");
    launched.push(ev.pid as number);
    sleeperPid = ev.pid as number;
    await daemon.waitFor(
      /"daemon":"launchFailed","ability":"com.example.sleeper\/entry\/EntryAbility","why":"no registration within 10000 ms"/,
      5_000,
    );
  });

  it("one daemon per socket and per identity: a second one gets a clear error", async () => {
    const same = startDaemon(["--socket", SOCKET]);
    assert.equal(await within(same.exited, 20_000, "second daemon"), 1);
    assert.match(same.err, /another one runs on/);
    const other = startDaemon(["--socket", join(dir, "other.sock")], { LINKWEAVE_PORT: "0" });
    assert.equal(await within(other.exited, 20_000, "second daemon of D"), 1);
    assert.match(other.err, /device 02:00:00:00:DA:0D runs in another process/);
    // Another device's daemon, open to a group: mode 0660, that group.
    const gid = process.getgid?.() ?? 0;
    const grouped = startDaemon(["--socket", join(dir, "group.sock"), "--group", String(gid)], {
      LINKWEAVE_DEVICE_ID: "02:00:00:00:DA:0E",
      LINKWEAVE_PORT: "0",
    });
    await grouped.waitFor(/"daemon":"ready"/, 30_000);
    const st = statSync(join(dir, "group.sock"));
    assert.equal(st.mode & 0o777, 0o660);
    assert.equal(st.gid, gid);
    grouped.kill();
  });

  it("a stopped daemon: its applications get clear errors; a restarted one on the default socket is found", async () => {
    const { app } = await startApp({ LW_SERVER: "echo3", LW_BUNDLE: "com.example.lw3" });
    const link = await linkEnhanceTo("echo3");
    process.kill(daemon.proc.pid!, "SIGTERM");
    assert.equal(
      await within(daemon.exited, 10_000, "daemon stop").catch((e) => `${e}: ${daemon.out}`),
      0,
    );
    assert.equal(existsSync(SOCKET), false, "the socket file is removed");
    // The foreground ability it started (the sleeper) stopped with it.
    await waitForGone(sleeperPid);
    await app.waitFor(/the device daemon at ".*" is gone: the device daemon stopped/, 10_000);
    await within(link.gone, 10_000, "the peer's connection ends with the link");
    // A daemon on the default socket ($XDG_RUNTIME_DIR/linkweave/daemon.sock).
    daemon = startDaemon([]);
    await daemon.waitFor(/"daemon":"ready"/, 30_000);
    assert.ok(existsSync(join(RUN, "linkweave", "daemon.sock")));
    // An application that configures nothing attaches to it.
    const { id } = await startApp({ LW_SERVER: "echo4", LINKWEAVE_DAEMON: "" });
    assert.equal(id, D);
    const again = await linkEnhanceTo("echo4");
    assert.equal(await again.echo("restarted"), "restarted");
    again.conn.close();
  });

  it("with no daemon answering on the default socket the application runs embedded, at once", async () => {
    const run = join(dir, "run-stale");
    mkdirSync(join(run, "linkweave"), { recursive: true });
    // A socket file nobody listens on (a daemon that died), where Python can
    // leave one; else a plain file.
    const stale = join(run, "linkweave", "daemon.sock");
    const py = spawnSync("python3", [
      "-c",
      "import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])",
      stale,
    ]);
    if (py.status !== 0) writeFileSync(stale, "");
    const { app, id } = await startApp({
      LW_SERVER: "alone",
      LINKWEAVE_DAEMON: "",
      XDG_RUNTIME_DIR: run,
      LINKWEAVE_TRACE: "1",
    });
    assert.notEqual(id, D, "an embedded device of its own");
    assert.doesNotMatch(app.err, /daemon/);
    app.kill();
    // Something that accepts on the default socket but never welcomes: given up, embedded.
    const mute = join(dir, "run-mute");
    mkdirSync(join(mute, "linkweave"), { recursive: true });
    const held: net.Socket[] = [];
    const server = net.createServer((s) => void held.push(s));
    await new Promise<void>((r) => server.listen(join(mute, "linkweave", "daemon.sock"), r));
    try {
      const { app: app2, id: id2 } = await startApp({
        LW_SERVER: "alone2",
        LINKWEAVE_DAEMON: "",
        XDG_RUNTIME_DIR: mute,
      });
      assert.notEqual(id2, D);
      assert.equal(held.length, 1, "it looked for a daemon there");
      app2.kill();
    } finally {
      for (const s of held) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});

async function waitForFile(path: string, re: RegExp): Promise<void> {
  const until = Date.now() + 10_000;
  while (Date.now() < until) {
    if (existsSync(path) && re.test(readFileSync(path, "utf8"))) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${path}: no ${re}: ${existsSync(path) ? readFileSync(path, "utf8") : "absent"}`);
}

async function waitForGone(pid: number): Promise<void> {
  const until = Date.now() + 5_000;
  while (Date.now() < until) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`process ${pid} still runs`);
}

/** Established TCP connections between P's and D's ports, by `ss`; undefined without `ss`. */
function ssLinks(): number | undefined {
  const r = spawnSync("ss", ["-Htn", "state", "established"], { encoding: "utf8" });
  if (r.status !== 0) return undefined;
  const lines = r.stdout.split("\n").filter((l) =>
    (l.includes(`:${peerPort} `) && l.includes(`:${daemonPort}`)) ||
    (l.includes(`:${daemonPort} `) && l.includes(`:${peerPort}`))
  );
  // Each connection is seen from both ends on loopback.
  return lines.length / 2;
}

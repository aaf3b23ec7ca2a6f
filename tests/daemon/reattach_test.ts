/**
 * An application attached to the device daemon outlives the daemon: the
 * daemon (device D, `linkweave daemon`) is killed while the application
 * (`_app.ts`) has a linkEnhance connection and a session from peer P and a
 * connection of its own to P; the application reports the losses as lost
 * links (`disconnected` with `LINK_CLOSED`, session `disconnect` with
 * `NETWORK_DISCONNECTED`), re-attaches once a daemon runs again on the same
 * socket, and is reached again (its server and ability named anew) and
 * connects again, without being restarted.
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
import type { Device } from "../../device.ts";
import { UIAbility } from "../../ability_connection_manager.ts";
import { DisconnectReason } from "../../core/ability/types.ts";
import { DisconnectReason as LinkReason } from "../../core/error_codes.ts";
import { within } from "../harness/within.ts";
import { startPeer } from "./_peer.ts";

const D = "02:00:00:00:DA:2D";
const P = "02:00:00:00:DA:21";
const ACCOUNT = "daemon2-reattach-account";
const dir = mkdtempSync(join(tmpdir(), "daemon2-reattach-"));
const SOCKET = join(dir, "d.sock");
const COMMON = {
  LINKWEAVE_DISCOVERY: "off",
  LINKWEAVE_ACCOUNT: ACCOUNT,
  XDG_STATE_HOME: join(dir, "state"),
  XDG_CONFIG_HOME: join(dir, "config"),
  XDG_RUNTIME_DIR: join(dir, "run"),
};
const savedState = process.env.XDG_STATE_HOME;
process.env.XDG_STATE_HOME = join(dir, "peer-state");

const children: Child[] = [];
let peer: Device | undefined;
let daemonPort = 0;
let peerPort = 0;

after(async () => {
  for (const c of children) c.kill();
  await peer?.close();
  if (savedState === undefined) delete process.env.XDG_STATE_HOME;
  else process.env.XDG_STATE_HOME = savedState;
  rmSync(dir, { recursive: true, force: true });
});

/** `linkweave daemon` on the test's socket, as device D, with P as a static peer. */
function startDaemon(): Child {
  const c = start(
    "cli/mod.ts",
    {
      ...COMMON,
      LINKWEAVE_DEVICE_ID: D,
      LINKWEAVE_PORT: String(daemonPort),
      LINKWEAVE_PEERS: `${P}@127.0.0.1:${peerPort}`,
    },
    [],
    { args: ["daemon", "--socket", SOCKET] },
  );
  children.push(c);
  return c;
}

/** The application's JSON lines of one event. */
function appEvents(app: Child, event: string): Record<string, unknown>[] {
  return app.out.split("\n").filter((l) => l.startsWith('{"event"')).map((l) => JSON.parse(l))
    .filter((e) => e.event === event);
}

async function eventually(what: string, ok: () => boolean, ms = 10_000): Promise<void> {
  const until = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > until) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** P connects to D's server "echo" and has one message echoed. */
async function echoFromPeer(text: string): Promise<{ gone: Promise<number> }> {
  const conn = peer!.createConnection(D, "echo");
  const result = new Promise<{ success: boolean; reason: number }>((r) =>
    conn.on("connectResult", r)
  );
  const gone = new Promise<number>((r) => conn.on("disconnected", r));
  const back = new Promise<string>((r) =>
    conn.on("dataReceived", (d: ArrayBuffer) => r(new TextDecoder().decode(d)))
  );
  conn.connect();
  const r = await within(result, 12_000, "connect to echo");
  assert.equal(r.success, true, `connect to "echo": ${JSON.stringify(r)}`);
  conn.sendData(new TextEncoder().encode(text).buffer as ArrayBuffer);
  assert.equal(await within(back, 10_000, "echo"), text);
  return { gone };
}

const caller = new UIAbility();

/** P opens a session to the application's ability and has one message echoed. */
async function sessionFromPeer(text: string): Promise<{ ended: Promise<number> }> {
  const api = peer!.abilityConnectionManager;
  const id = api.createAbilityConnectionSession("daemonTest", caller.context, {
    deviceId: D,
    bundleName: "com.example.reattach",
    moduleName: "entry",
    abilityName: "EntryAbility",
  }, { needSendData: true });
  const r = await within(api.connect(id), 15_000, "session connect");
  assert.equal(r.isConnected, true, JSON.stringify(r));
  const ended = new Promise<number>((res) => api.on("disconnect", id, (i) => res(i.reason!)));
  const back = new Promise<string>((res) => api.on("receiveMessage", id, (i) => res(i.msg!)));
  await api.sendMessage(id, text);
  assert.equal(await within(back, 10_000, "session echo"), text);
  return { ended };
}

/** The application connects to P's server "peerecho" and has one message echoed. */
async function dialFromApp(app: Child, round: number, echoes: number): Promise<void> {
  app.write(`dial ${P} peerecho\n`);
  await eventually(`dial ${round}`, () => appEvents(app, "dialed").length >= round);
  const r = appEvents(app, "dialed")[round - 1];
  assert.equal(r.success, true, `the application's connect ${round}: ${JSON.stringify(r)}`);
  await eventually(`dial echo ${round}`, () => appEvents(app, "dialEcho").length >= echoes);
}

describe("an application attached to the device daemon", { timeout: 120_000 }, () => {
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
  });

  it("re-attaches after the daemon died and came back: links lost as links, servers, abilities and connects work again", async () => {
    let daemon = startDaemon();
    await daemon.waitFor(/"daemon":"ready"/, 30_000);
    const app = start(
      "tests/daemon/_app.ts",
      {
        ...COMMON,
        LINKWEAVE_DAEMON: SOCKET,
        LW_SERVER: "echo",
        LW_BUNDLE: "com.example.reattach",
        LW_STDIN: "1",
      },
      [],
      { stdin: true },
    );
    children.push(app);
    assert.equal((await app.waitFor(/\{"ready":"([^"]+)"/, 20_000))[1], D);
    await echoFromPeer("before");
    await sessionFromPeer("before");
    await dialFromApp(app, 1, 1);

    // The daemon dies (no goodbye): the application loses what ran through it.
    daemon.kill();
    await within(daemon.exited, 10_000, "daemon exit");
    await app.waitFor(/the device daemon at ".*" is gone: .*re-attaching when it is back/, 10_000);
    await eventually(
      "losses reported",
      () =>
        appEvents(app, "disconnected").length >= 1 && appEvents(app, "sessionEnded").length >= 1 &&
        appEvents(app, "dialDisconnected").length >= 1,
    );
    assert.deepEqual(appEvents(app, "disconnected").map((e) => e.reason), [LinkReason.LINK_CLOSED]);
    assert.deepEqual(appEvents(app, "dialDisconnected").map((e) => e.reason), [
      LinkReason.LINK_CLOSED,
    ]);
    assert.deepEqual(appEvents(app, "sessionEnded").map((e) => e.reason), [
      DisconnectReason.NETWORK_DISCONNECTED,
    ]);
    // While no daemon runs, the application's connects fail at once, clearly.
    app.write(`dial ${P} peerecho\n`);
    await eventually("dial while away", () => appEvents(app, "dialed").length >= 2);
    assert.deepEqual(appEvents(app, "dialed")[1], {
      event: "dialed",
      success: false,
      reason: 32390300,
    });

    // A daemon again on the same socket: the application finds it by itself.
    daemon = startDaemon();
    await daemon.waitFor(/"daemon":"ready"/, 30_000);
    await app.waitFor(
      /re-attached to the device daemon at ".*" \(device 02:00:00:00:DA:2D\)/,
      15_000,
    );
    await echoFromPeer("after");
    await sessionFromPeer("after");
    await dialFromApp(app, 3, 2);
    assert.equal(app.proc.exitCode, null, "the application was not restarted");
    app.kill();
    daemon.kill();
  });
});

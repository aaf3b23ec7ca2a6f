import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import {
  ADAPTER_TIMEOUT,
  adapterAddress,
  claimIdentity,
  defaultDeviceId,
  DEVICE_ID_FILE,
  IDENTITIES_DIR,
  identityName,
  LOCK_FILE,
  reclaimMarker,
  stateDirectory,
  storedDeviceId,
} from "./identity.ts";
import { isDeviceId } from "../core/device/config.ts";
import { selfStamp } from "./_process.ts";
import { spawnSync } from "node:child_process";
import { type Child, start } from "../tests/_script.ts";

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), "linkweave-identity-"));
  dirs.push(d);
  return d;
}

/** A fake `busctl` on a PATH of its own, and a fake system bus socket file. */
async function fakeBus(script: string): Promise<Record<string, string>> {
  const d = await tempDir();
  await mkdir(join(d, "bin"));
  const busctl = join(d, "bin", "busctl");
  await writeFile(busctl, `#!/bin/sh\n${script}\n`);
  await chmod(busctl, 0o755);
  await writeFile(join(d, "bus"), "");
  return {
    PATH: `${join(d, "bin")}:/usr/bin:/bin`,
    DBUS_SYSTEM_BUS_ADDRESS: `unix:path=${join(d, "bus")}`,
    XDG_STATE_HOME: join(d, "state"),
  };
}

const EXPECTED_ARGS = "--system get-property org.bluez /org/bluez/hci0 org.bluez.Adapter1 Address";

describe("stateDirectory()", () => {
  it("is $XDG_STATE_HOME/linkweave, else ~/.local/state/linkweave", () => {
    assert.equal(stateDirectory({ XDG_STATE_HOME: "/s", HOME: "/h" }), "/s/linkweave");
    assert.equal(stateDirectory({ HOME: "/h" }), "/h/.local/state/linkweave");
    assert.equal(stateDirectory({ XDG_STATE_HOME: "", HOME: "/h" }), "/h/.local/state/linkweave");
    // a relative XDG path is invalid (XDG Base Directory spec) and ignored
    assert.equal(
      stateDirectory({ XDG_STATE_HOME: "rel", HOME: "/h" }),
      "/h/.local/state/linkweave",
    );
    assert.ok(stateDirectory({}).endsWith(join(".local", "state", "linkweave")));
  });
});

describe("storedDeviceId()", () => {
  it("creates a random locally administered id, with its directories, and keeps it", async () => {
    const root = await tempDir();
    const dir = join(root, "a", "b", "linkweave");
    const id = await storedDeviceId(dir);
    assert.ok(isDeviceId(id));
    assert.equal(id, id.toUpperCase());
    assert.equal(parseInt(id.slice(0, 2), 16) & 3, 2);
    assert.equal(await readFile(join(dir, DEVICE_ID_FILE), "utf8"), `${id}\n`);
    assert.equal((await stat(dir)).mode & 0o777, 0o700);
    assert.equal(await storedDeviceId(dir), id);
    assert.deepEqual(await readdir(dir), [DEVICE_ID_FILE]); // no temporary files left
  });

  it("reads an existing id in any case, with whitespace", async () => {
    const dir = await tempDir();
    await writeFile(join(dir, DEVICE_ID_FILE), "  00:1a:7d:da:71:13 \n");
    assert.equal(await storedDeviceId(dir), "00:1A:7D:DA:71:13");
  });

  it("replaces a corrupt file", async () => {
    for (const junk of ["", "garbage\n", "00:11:22:33:44\n", "\u0000\u0001"]) {
      const dir = await tempDir();
      await writeFile(join(dir, DEVICE_ID_FILE), junk);
      const id = await storedDeviceId(dir);
      assert.ok(isDeviceId(id), JSON.stringify(junk));
      assert.equal(await readFile(join(dir, DEVICE_ID_FILE), "utf8"), `${id}\n`);
      assert.deepEqual(await readdir(dir), [DEVICE_ID_FILE]);
    }
  });

  it("concurrent first starts agree on one id", async () => {
    const dir = join(await tempDir(), "linkweave");
    const ids = await Promise.all(Array.from({ length: 8 }, () => storedDeviceId(dir)));
    assert.equal(new Set(ids).size, 1, ids.join(" "));
    assert.equal(await readFile(join(dir, DEVICE_ID_FILE), "utf8"), `${ids[0]}\n`);
    assert.deepEqual(await readdir(dir), [DEVICE_ID_FILE]);
  });
  it("fails with the file, the way out and the file system's code when it cannot write", async () => {
    const root = await tempDir();
    await writeFile(join(root, "file"), "");
    await assert.rejects(
      storedDeviceId(join(root, "file", "linkweave")), // a file where a directory must be
      (e: Error & { code?: string }) =>
        /Cannot keep the device id in ".*linkweave\/device-id": .*LINKWEAVE_DEVICE_ID/.test(
          e.message,
        ) && (e.code === "ENOTDIR" || e.code === "EEXIST") && e.cause !== undefined,
    );
  });
});

describe("adapterAddress()", () => {
  it("asks busctl for hci0's address on the system bus", async () => {
    const env = await fakeBus(
      `[ "$*" = "${EXPECTED_ARGS}" ] || exit 3\necho 's "00:1a:7d:da:71:13"'`,
    );
    assert.equal(await adapterAddress(env), "00:1A:7D:DA:71:13");
  });

  it("no adapter when busctl fails, answers nonsense or an all-zero address", async () => {
    for (
      const script of [
        "echo 'Failed to get property Address on interface org.bluez.Adapter1' >&2; exit 1",
        "echo 's \"not-an-address\"'",
        "echo 's \"00:00:00:00:00:00\"'",
        "echo",
      ]
    ) {
      assert.equal(await adapterAddress(await fakeBus(script)), undefined, script);
    }
  });

  it("no adapter when there is no system bus socket or no busctl", async () => {
    const env = await fakeBus(`echo 's "00:1a:7d:da:71:13"'`);
    assert.equal(
      await adapterAddress({ ...env, DBUS_SYSTEM_BUS_ADDRESS: "unix:path=/nonexistent/bus" }),
      undefined,
    );
    assert.equal(await adapterAddress({ ...env, PATH: "/nonexistent" }), undefined);
  });

  it("gives up after ADAPTER_TIMEOUT when busctl hangs", { timeout: 10_000 }, async () => {
    const env = await fakeBus(`exec sleep 5; echo 's "00:1a:7d:da:71:13"'`);
    const t0 = Date.now();
    assert.equal(await adapterAddress(env), undefined);
    const took = Date.now() - t0;
    assert.ok(took >= ADAPTER_TIMEOUT - 50 && took < ADAPTER_TIMEOUT + 1500, `${took} ms`);
  });
});

describe("defaultDeviceId()", () => {
  it("is the adapter address when there is one", async () => {
    const env = await fakeBus(`echo 's "00:1a:7d:da:71:13"'`);
    assert.equal(await defaultDeviceId({ env }), "00:1A:7D:DA:71:13");
    await assert.rejects(stat(env.XDG_STATE_HOME)); // no state file made
  });

  it("else the default identity's stored id under $XDG_STATE_HOME/linkweave", async () => {
    const env = await fakeBus("exit 1");
    const id = await defaultDeviceId({ env });
    assert.equal(
      await readFile(
        join(env.XDG_STATE_HOME, "linkweave", IDENTITIES_DIR, "default", DEVICE_ID_FILE),
        "utf8",
      ),
      `${id}\n`,
    );
    assert.equal(await defaultDeviceId({ env }), id);
  });

  it("stateDir and adapter: false override", async () => {
    const env = await fakeBus(`echo 's "00:1a:7d:da:71:13"'`);
    const dir = join(await tempDir(), "state");
    const id = await defaultDeviceId({ env, stateDir: dir, adapter: false });
    assert.notEqual(id, "00:1A:7D:DA:71:13");
    assert.equal(
      await readFile(join(dir, IDENTITIES_DIR, "default", DEVICE_ID_FILE), "utf8"),
      `${id}\n`,
    );
  });

  it("an id kept by an earlier version in <state>/device-id is kept", async () => {
    const dir = join(await tempDir(), "state");
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, DEVICE_ID_FILE), "02:AA:BB:CC:DD:EE\n");
    assert.equal(await defaultDeviceId({ stateDir: dir, adapter: false }), "02:AA:BB:CC:DD:EE");
    const held = await claimIdentity({ stateDir: dir, adapter: false });
    assert.deepEqual([held.name, held.deviceId], ["default", "02:AA:BB:CC:DD:EE"]);
    await held.release();
  });

  it("reads process.env by default", async () => {
    const id = await defaultDeviceId({
      stateDir: join(await tempDir(), "s"),
      adapter: process.env.LINKWEAVE_TEST_BLUEZ === "1",
    });
    assert.ok(isDeviceId(id));
  });
});

/** Lock content of a process that has exited. */
function deadLock(): string {
  const r = spawnSync(process.execPath, ["--version"]);
  return JSON.stringify({ pid: r.pid, start: null, token: "dead" });
}

describe("claimIdentity()", () => {
  it("takes default, then default-2, ...; a released identity is taken again with its id", async () => {
    const dir = await tempDir();
    const a = await claimIdentity({ stateDir: dir, adapter: false });
    const b = await claimIdentity({ stateDir: dir, adapter: false });
    const c = await claimIdentity({ stateDir: dir, adapter: false });
    assert.deepEqual([a.name, b.name, c.name], ["default", "default-2", "default-3"]);
    assert.equal(new Set([a.deviceId, b.deviceId, c.deviceId]).size, 3);
    assert.equal(a.dir, join(dir, IDENTITIES_DIR, "default"));
    assert.equal((await stat(a.dir)).mode & 0o777, 0o700);
    assert.equal((await stat(join(a.dir, LOCK_FILE))).mode & 0o777, 0o600);
    assert.deepEqual(JSON.parse(await readFile(join(a.dir, LOCK_FILE), "utf8")).pid, process.pid);
    await b.release();
    await b.release(); // idempotent
    const again = await claimIdentity({ stateDir: dir, adapter: false });
    assert.deepEqual([again.name, again.deviceId], ["default-2", b.deviceId]);
    for (const h of [a, c, again]) await h.release();
    assert.deepEqual((await readdir(a.dir)).sort(), [DEVICE_ID_FILE]);
    assert.equal(identityName(2), "default-2");
  });

  it("the default identity takes the adapter address; later ones a random id", async () => {
    const env = await fakeBus(`echo 's "00:1a:7d:da:71:13"'`);
    const a = await claimIdentity({ env });
    const b = await claimIdentity({ env });
    assert.equal(a.deviceId, "00:1A:7D:DA:71:13");
    assert.ok(isDeviceId(b.deviceId) && b.deviceId !== a.deviceId);
    await a.release();
    await b.release();
  });

  it("many claims in one process at once all get different identities", async () => {
    const dir = await tempDir();
    const held = await Promise.all(
      Array.from({ length: 8 }, () => claimIdentity({ stateDir: dir, adapter: false })),
    );
    assert.equal(new Set(held.map((h) => h.name)).size, 8);
    assert.equal(new Set(held.map((h) => h.deviceId)).size, 8);
    for (const h of held) await h.release();
  });

  it("fails naming the folder when every identity is held", async () => {
    const dir = await tempDir();
    const a = await claimIdentity({ stateDir: dir, adapter: false, max: 2 });
    const b = await claimIdentity({ stateDir: dir, adapter: false, max: 2 });
    await assert.rejects(
      claimIdentity({ stateDir: dir, adapter: false, max: 2 }),
      /Cannot take a device identity in ".*identities": all 2 identities are held by running processes \(set LINKWEAVE_DEVICE_ID/,
    );
    await a.release();
    await b.release();
  });

  it("reclaims a lock of a dead process, of a reused pid, and with a dead reclaimer's marker", async () => {
    for (
      const [what, lock, marker] of [
        ["dead process", deadLock(), undefined],
        ["reused pid", JSON.stringify({ ...selfStamp(), start: "1", token: "old" }), undefined],
        ["garbage", "\u0000", undefined],
        ["dead reclaimer", deadLock(), deadLock()],
      ] as const
    ) {
      const dir = await tempDir();
      const first = await claimIdentity({ stateDir: dir, adapter: false });
      await first.release();
      const lockFile = join(first.dir, LOCK_FILE);
      await writeFile(lockFile, lock);
      // a reclaim of this lock that died half-way left its marker
      if (marker !== undefined) await writeFile(reclaimMarker(lockFile, lock), marker);
      const again = await claimIdentity({ stateDir: dir, adapter: false });
      assert.deepEqual([again.name, again.deviceId], ["default", first.deviceId], what);
      await again.release();
      assert.deepEqual(await readdir(first.dir), [DEVICE_ID_FILE], `${what}: nothing left behind`);
    }
  });

  it("never takes an identity a live process holds", async () => {
    const dir = await tempDir();
    const first = await claimIdentity({ stateDir: dir, adapter: false });
    await first.release();
    // the lock of a live process (this one, as another holder would write it)
    await writeFile(join(first.dir, LOCK_FILE), JSON.stringify({ ...selfStamp(), token: "x" }));
    const other = await claimIdentity({ stateDir: dir, adapter: false });
    assert.equal(other.name, "default-2");
    await other.release();
  });
});

describe("claimIdentity() across processes", { timeout: 60_000 }, () => {
  const children: Child[] = [];
  after(() => {
    for (const c of children) c.kill();
  });

  function claim(dir: string, env: Record<string, string> = {}): Child {
    const c = start("tests/_claim_identity.ts", { LW_STATE_DIR: dir, ...env });
    children.push(c);
    return c;
  }

  async function result(c: Child): Promise<{ name: string; deviceId: string; pid: number }> {
    const [line] = await c.waitFor(/\{"name".*\}/, 20_000);
    return JSON.parse(line);
  }

  it("processes started at once take different identities", async () => {
    const dir = await tempDir();
    // every child claims at the same wall-clock moment, once all have started
    const at = String(Date.now() + 2500);
    const procs = Array.from(
      { length: 4 },
      () => claim(dir, { LW_HOLD_MS: "1500", LW_START_AT: at }),
    );
    const got = await Promise.all(procs.map(result));
    assert.deepEqual(got.map((g) => g.name).sort(), [
      "default",
      "default-2",
      "default-3",
      "default-4",
    ]);
    assert.equal(new Set(got.map((g) => g.deviceId)).size, 4);
    for (const p of procs) assert.equal(await p.exited, 0, p.err);
  });

  it("a restarted process keeps its id; a killed holder's lock is reclaimed", async () => {
    const dir = await tempDir();
    const first = await result(claim(dir));
    const second = claim(dir, { LW_NO_RELEASE: "1" });
    const again = await result(second);
    assert.deepEqual([again.name, again.deviceId], ["default", first.deviceId]);
    assert.equal(await second.exited, 0);
    // its lock is still there, naming a process that is gone
    const lock = JSON.parse(
      await readFile(join(dir, IDENTITIES_DIR, "default", LOCK_FILE), "utf8"),
    );
    assert.equal(lock.pid, again.pid);
    const third = await result(claim(dir));
    assert.deepEqual([third.name, third.deviceId], ["default", first.deviceId]);
  });
});

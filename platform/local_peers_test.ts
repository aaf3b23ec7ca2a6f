import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chown, mkdir, mkdtemp, readdir, rm, stat, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { openLocalPeers, privateDirectory, runtimeDirectory } from "./local_peers.ts";
import { selfStamp } from "./_process.ts";
import {
  encodeLocalRecord,
  type LocalRecord,
  localRecordName,
} from "../core/discovery/local_record.ts";

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), "disc-local-"));
  dirs.push(d);
  return d;
}

function self(n: number, port = 4000 + n) {
  return {
    deviceId: `02:00:00:00:00:0${n}`,
    nonce: `000000000000000${n}`,
    port,
    host: "127.0.0.1",
  };
}

/** A pid that belonged to a process which has exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ["--version"]);
  assert.ok(r.pid !== undefined && r.pid > 0);
  return r.pid!;
}

async function plant(dir: string, patch: Partial<LocalRecord>): Promise<string> {
  const r: LocalRecord = {
    deviceId: "02:00:00:00:00:0E",
    host: "127.0.0.1",
    port: 5555,
    ...selfStamp(),
    nonce: "00000000000000ee",
    netns: null,
    since: Date.now(),
    ...patch,
  };
  const file = join(dir, localRecordName(r));
  await writeFile(file, encodeLocalRecord(r), { mode: 0o600 });
  return file;
}

describe("local registry", () => {
  it("runtimeDirectory(): $XDG_RUNTIME_DIR/linkweave, else a per-uid folder in tmp", () => {
    assert.equal(runtimeDirectory({ XDG_RUNTIME_DIR: "/run/user/7" }), "/run/user/7/linkweave");
    const uid = typeof process.getuid === "function" ? process.getuid() : "user";
    assert.equal(runtimeDirectory({ XDG_RUNTIME_DIR: "rel" }), join(tmpdir(), `linkweave-${uid}`));
    assert.equal(runtimeDirectory({}), join(tmpdir(), `linkweave-${uid}`));
  });

  it("devices find each other, not themselves; close() removes the record", async () => {
    const dir = join(await tempDir(), "peers");
    const a = await openLocalPeers({ dir, self: self(1), now: () => 7 });
    const b = await openLocalPeers({ dir, self: self(2) });
    assert.deepEqual(a.find("02:00:00:00:00:02"), {
      deviceId: "02:00:00:00:00:02",
      addresses: [{ host: "127.0.0.1", port: 4002, source: "local" }],
      lastSeen: 7,
    });
    assert.equal(a.find("02:00:00:00:00:01"), undefined);
    assert.deepEqual(b.list().map((d) => d.deviceId), ["02:00:00:00:00:01"]);
    assert.equal((await stat(a.file)).mode & 0o777, 0o600);
    assert.equal((await stat(dir)).mode & 0o777, 0o700);
    await b.close();
    await b.close(); // idempotent
    assert.equal(a.find("02:00:00:00:00:02"), undefined);
    assert.deepEqual(await readdir(dir), [
      localRecordName({ pid: process.pid, nonce: self(1).nonce }),
    ]);
    await a.close();
    assert.deepEqual(await readdir(dir), []);
  });

  it("ignores and removes records of dead processes and of reused pids", async () => {
    const dir = join(await tempDir(), "peers");
    const a = await openLocalPeers({ dir, self: self(1) });
    const dead = await plant(dir, { pid: deadPid(), start: null });
    const reused = await plant(dir, {
      deviceId: "02:00:00:00:00:0F",
      nonce: "00000000000000ff",
      start: "1", // this pid, but a process that started at another time
    });
    const live = await plant(dir, { deviceId: "02:00:00:00:00:0D", nonce: "00000000000000dd" });
    assert.deepEqual(a.list().map((d) => d.deviceId), ["02:00:00:00:00:0D"]);
    const left = await readdir(dir);
    assert.ok(!left.includes(dead.slice(dir.length + 1)), "the dead process's record was cleaned");
    assert.ok(!left.includes(reused.slice(dir.length + 1)), "the reused pid's record was cleaned");
    assert.ok(left.includes(live.slice(dir.length + 1)));
    await a.close();
  });

  it("skips records of other network namespaces, malformed, oversized and misnamed files", async () => {
    const dir = join(await tempDir(), "peers");
    const a = await openLocalPeers({ dir, self: self(1) });
    await plant(dir, { netns: "net:[1]" });
    await writeFile(join(dir, "1-00000000000000aa.json"), "{not json");
    await writeFile(join(dir, "2-00000000000000ab.json"), " ".repeat(5000));
    const misnamed = encodeLocalRecord({
      deviceId: "02:00:00:00:00:0C",
      host: "127.0.0.1",
      port: 1,
      ...selfStamp(),
      nonce: "00000000000000cc",
      netns: null,
      since: 0,
    });
    await writeFile(join(dir, "3-00000000000000cd.json"), misnamed);
    await writeFile(join(dir, "notes.txt"), misnamed);
    assert.deepEqual(a.list(), []);
    await a.close();
  });

  it("reports another live process registered with this device's id, once", async () => {
    const dir = join(await tempDir(), "peers");
    const clashes: string[] = [];
    const a = await openLocalPeers({ dir, self: self(1), onClash: (r) => clashes.push(r.nonce) });
    await plant(dir, { deviceId: "02:00:00:00:00:01", nonce: "00000000000000c1" });
    a.list();
    a.find("02:00:00:00:00:05");
    assert.deepEqual(clashes, ["00000000000000c1"]);
    await a.close();
  });

  it("announce() registers again when the record was removed under it", async () => {
    const dir = join(await tempDir(), "peers");
    const a = await openLocalPeers({ dir, self: self(1) });
    const b = await openLocalPeers({ dir, self: self(2) });
    await rm(dir, { recursive: true });
    assert.equal(b.find("02:00:00:00:00:01"), undefined);
    a.announce();
    assert.equal(b.find("02:00:00:00:00:01")?.addresses[0].port, 4001);
    await a.close();
    await b.close();
  });

  it("refuses a directory that is a link or belongs to another user; makes its own private", async () => {
    const base = await tempDir();
    await mkdir(join(base, "open"), { mode: 0o777 });
    privateDirectory(join(base, "open"));
    assert.equal((await stat(join(base, "open"))).mode & 0o777, 0o700);
    await symlink(join(base, "open"), join(base, "link"));
    assert.throws(() => privateDirectory(join(base, "link")), /is not a directory/);
    await assert.rejects(
      openLocalPeers({ dir: join(base, "link"), self: self(1) }),
      /Cannot register in the local registry ".*link": .*is not a directory/,
    );
    if (typeof process.getuid === "function" && process.getuid() === 0) {
      await mkdir(join(base, "theirs"), { mode: 0o700 });
      await chown(join(base, "theirs"), 65534, 65534);
      assert.throws(() => privateDirectory(join(base, "theirs")), /belongs to user 65534/);
    }
  });
});

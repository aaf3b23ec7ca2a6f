import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import {
  ADAPTER_TIMEOUT,
  adapterAddress,
  defaultDeviceId,
  DEVICE_ID_FILE,
  stateDirectory,
  storedDeviceId,
} from "./identity.ts";
import { isDeviceId } from "../core/device_config.ts";

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

  it("else the stored id under $XDG_STATE_HOME/linkweave", async () => {
    const env = await fakeBus("exit 1");
    const id = await defaultDeviceId({ env });
    assert.equal(
      await readFile(join(env.XDG_STATE_HOME, "linkweave", DEVICE_ID_FILE), "utf8"),
      `${id}\n`,
    );
    assert.equal(await defaultDeviceId({ env }), id);
  });

  it("stateDir and adapter: false override", async () => {
    const env = await fakeBus(`echo 's "00:1a:7d:da:71:13"'`);
    const dir = join(await tempDir(), "state");
    const id = await defaultDeviceId({ env, stateDir: dir, adapter: false });
    assert.notEqual(id, "00:1A:7D:DA:71:13");
    assert.equal(await readFile(join(dir, DEVICE_ID_FILE), "utf8"), `${id}\n`);
  });

  it("reads process.env by default", async () => {
    const id = await defaultDeviceId({
      stateDir: join(await tempDir(), "s"),
      adapter: process.env.LINKWEAVE_TEST_BLUEZ === "1",
    });
    assert.ok(isDeviceId(id));
  });
});

/**
 * The identities a device runs as when no id is configured.
 *
 * An identity is a folder of the per-user state directory,
 * `$XDG_STATE_HOME/linkweave/identities/<name>/`, holding its device id
 * (`device-id`; the trust issue adds its key pair beside it) and, while a
 * process uses it, a lock file (`lock`) naming the holder (pid, start time,
 * a random token). A process takes the first identity no live process
 * holds, `default`, then `default-2`, `default-3`, ... (at most
 * {@linkcode MAX_IDENTITIES}), creating it on first use
 * ({@linkcode claimIdentity}): so two processes started with no
 * configuration are two devices, and each keeps its id across restarts.
 *
 * The `default` identity's id is the address of the machine's Bluetooth
 * adapter (BlueZ `hci0`) when there is one, so the same machine has the same
 * id over IP and BLE; else a stable random id. An id kept by an earlier
 * version in `$XDG_STATE_HOME/linkweave/device-id` becomes the `default`
 * identity's id.
 *
 * Locks: a lock file is created with its content in one step (a hard link of
 * a complete temporary file), so it never exists half-written and two
 * processes starting at once cannot both create it. A lock whose holder no
 * longer runs (no such pid, or a pid reused by a process that started at
 * another time) is stale and reclaimed: the reclaimer first creates a marker
 * named after the stale content (only one process can), checks that the
 * lock still holds that content, removes it and tries again, so a fresh lock
 * is never removed by a slow reclaimer.
 *
 * Works on Deno, Bun and Node (`node:fs/promises`, `node:os`,
 * `node:child_process`).
 *
 * @module
 */
import { spawn } from "node:child_process";
import {
  access,
  constants,
  link,
  mkdir,
  readFile,
  rename,
  unlink,
  writeFile,
} from "node:fs/promises";
import { homedir } from "node:os";
import { delimiter, isAbsolute, join } from "node:path";
import process from "node:process";
import { isDeviceId, randomDeviceId } from "../core/device/config.ts";
import type { ProcessStamp } from "../core/discovery/local_record.ts";
import { isAlive, selfStamp } from "./_process.ts";

/** How long the adapter query may take, in ms. */
export const ADAPTER_TIMEOUT = 1000;

/** The file name of the stored id, in the state directory. */
export const DEVICE_ID_FILE = "device-id";

/** Options of {@linkcode defaultDeviceId}. */
export interface DefaultDeviceIdOptions {
  /**
   * The environment: `XDG_STATE_HOME`, `HOME`, `PATH`, `DBUS_SYSTEM_BUS_ADDRESS`.
   * @default {process.env}
   */
  env?: Record<string, string | undefined>;
  /**
   * The state directory (identities are kept in its `identities/` folder).
   * @default {"$XDG_STATE_HOME/linkweave" (XDG_STATE_HOME defaults to "~/.local/state")}
   */
  stateDir?: string;
  /**
   * Ask BlueZ for the adapter address first; `false` skips it (tests, or a
   * device that must not take the adapter's address).
   * @default {true}
   */
  adapter?: boolean;
}

/**
 * The state directory of linkweave: `$XDG_STATE_HOME/linkweave`, where an
 * unset, empty or relative `XDG_STATE_HOME` means `~/.local/state`.
 *
 * @param env The environment (`XDG_STATE_HOME`, `HOME`). @default {process.env}
 * @returns The directory (it may not exist yet).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.equal(stateDirectory({ XDG_STATE_HOME: "/var/lib/me" }), "/var/lib/me/linkweave");
 * assert.equal(stateDirectory({ HOME: "/home/me" }), "/home/me/.local/state/linkweave");
 * ```
 */
export function stateDirectory(env: Record<string, string | undefined> = process.env): string {
  const xdg = env.XDG_STATE_HOME;
  if (xdg !== undefined && xdg !== "" && isAbsolute(xdg)) return join(xdg, "linkweave");
  return join(env.HOME || homedir(), ".local", "state", "linkweave");
}

async function findCommand(name: string, path: string | undefined): Promise<string | undefined> {
  for (const dir of (path ?? "").split(delimiter)) {
    if (dir === "") continue;
    const file = join(dir, name);
    try {
      await access(file, constants.X_OK);
      return file;
    } catch { /* not here */ }
  }
  return undefined;
}

function systemBusPath(env: Record<string, string | undefined>): string | undefined {
  const address = env.DBUS_SYSTEM_BUS_ADDRESS;
  if (address === undefined || address === "") return "/run/dbus/system_bus_socket";
  // The first unix:path= address; other transports are left to busctl.
  const m = /(?:^|;)unix:(?:[^;]*,)?path=([^,;]+)/.exec(address);
  return m === null ? undefined : decodeURIComponent(m[1]);
}

function run(file: string, args: string[], env: Record<string, string | undefined>, ms: number) {
  return new Promise<string | undefined>((resolve) => {
    let out = "";
    let done = false;
    const finish = (v: string | undefined) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve(v);
    };
    let child: ReturnType<typeof spawn>;
    try {
      const childEnv: Record<string, string> = {};
      for (const [k, v] of Object.entries(env)) if (v !== undefined) childEnv[k] = v;
      child = spawn(file, args, { env: childEnv, stdio: ["ignore", "pipe", "ignore"] });
    } catch {
      return resolve(undefined);
    }
    const timer = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch { /* already gone */ }
      finish(undefined);
    }, ms);
    child.stdout!.on("data", (b: Uint8Array) => {
      out += new TextDecoder().decode(b);
      if (out.length > 4096) child.kill("SIGKILL");
    });
    child.on("error", () => finish(undefined));
    child.on("close", (code) => finish(code === 0 ? out : undefined));
  });
}

/**
 * The address of BlueZ's first adapter (`hci0`), asked with `busctl` on the
 * system bus within {@linkcode ADAPTER_TIMEOUT} ms.
 *
 * @param env The environment (`PATH`, `DBUS_SYSTEM_BUS_ADDRESS`). @default {process.env}
 * @returns The address in upper case, or `undefined` when there is no system
 *   bus, no `busctl`, no BlueZ, no adapter, or no answer in time.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.equal(await adapterAddress({ PATH: "" }), undefined); // no busctl on an empty PATH
 * ```
 */
export async function adapterAddress(
  env: Record<string, string | undefined> = process.env,
): Promise<string | undefined> {
  const bus = systemBusPath(env);
  if (bus !== undefined) {
    try {
      await access(bus);
    } catch {
      return undefined;
    }
  }
  const busctl = await findCommand("busctl", env.PATH);
  if (busctl === undefined) return undefined;
  const out = await run(
    busctl,
    [
      "--system",
      "get-property",
      "org.bluez",
      "/org/bluez/hci0",
      "org.bluez.Adapter1",
      "Address",
    ],
    env,
    ADAPTER_TIMEOUT,
  );
  const m = out === undefined ? null : /^s\s+"([^"]*)"\s*$/.exec(out.trim());
  // An adapter that is not set up yet may report 00:00:00:00:00:00: not an id to use.
  return m !== null && isDeviceId(m[1]) && m[1] !== "00:00:00:00:00:00"
    ? m[1].toUpperCase()
    : undefined;
}

/** The stored id; `missing` when there is no file, `undefined` when it holds no id. */
async function readId(file: string): Promise<string | "missing" | undefined> {
  let text: string;
  try {
    text = (await readFile(file, "utf8")).trim();
  } catch (e) {
    if ((e as { code?: string }).code === "ENOENT") return "missing";
    throw e;
  }
  return isDeviceId(text) ? text.toUpperCase() : undefined;
}

/**
 * The stable random id of this user on this machine: read from
 * `<stateDir>/device-id`, or created there (a random, locally administered
 * id) when the file is missing or does not hold a device id. Created
 * atomically: written to a temporary file, then hard-linked into place
 * when the file is missing (so concurrent first starts agree on one id), or
 * renamed over it when it is corrupt; the directory is made when missing
 * (mode 0700).
 *
 * @param stateDir The directory. @default {stateDirectory()}
 * @returns The id, upper-case.
 * @throws {Error} When the file cannot be read or written (permissions, a
 *   read-only file system): the message names the file and the way out, the
 *   file system's error is the `cause` and its `code` (`EACCES`, ...) is kept.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { mkdtemp, rm } from "node:fs/promises";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 * const dir = await mkdtemp(join(tmpdir(), "linkweave-id-"));
 * try {
 *   const id = await storedDeviceId(join(dir, "linkweave"));
 *   assert.equal(await storedDeviceId(join(dir, "linkweave")), id); // stable
 * } finally {
 *   await rm(dir, { recursive: true, force: true });
 * }
 * ```
 */
export async function storedDeviceId(stateDir: string = stateDirectory()): Promise<string> {
  const file = join(stateDir, DEVICE_ID_FILE);
  try {
    return await keepId(stateDir, file);
  } catch (e) {
    const err = e as { code?: unknown; message?: unknown };
    const error = new Error(
      `Cannot keep the device id in "${file}": ${
        String(err?.message ?? e)
      } (set LINKWEAVE_DEVICE_ID, or XDG_STATE_HOME to a writable directory)`,
      { cause: e },
    );
    if (typeof err?.code === "string") Object.assign(error, { code: err.code });
    throw error;
  }
}

async function keepId(stateDir: string, file: string): Promise<string> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const found = await readId(file);
    if (found !== undefined && found !== "missing") return found;
    const id = randomDeviceId((b) => crypto.getRandomValues(b as Uint8Array<ArrayBuffer>));
    await mkdir(stateDir, { recursive: true, mode: 0o700 });
    const tmp = join(
      stateDir,
      `.${DEVICE_ID_FILE}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`,
    );
    await writeFile(tmp, `${id}\n`, { mode: 0o600 });
    try {
      if (found === "missing") {
        try {
          await link(tmp, file); // fails when another process created it meanwhile
        } catch (e) {
          if ((e as { code?: string }).code === "EEXIST") continue; // read theirs
          await rename(tmp, file); // no hard links on this file system
        }
      } else {
        await rename(tmp, file); // corrupt: replace it
      }
    } finally {
      await unlink(tmp).catch(() => {});
    }
    // Read back: if another process replaced a corrupt file at the same time, use its id.
    const stored = await readId(file);
    return stored !== undefined && stored !== "missing" ? stored : id;
  }
  throw new Error("another process keeps replacing it");
}

/**
 * The id of the `default` identity, without taking it (a device started by
 * `createDevice` takes an identity with {@linkcode claimIdentity} instead;
 * this serves a host passed to it explicitly): the BlueZ adapter address
 * when there is one, else the stable random id kept in
 * `<stateDir>/identities/default/device-id` (an id kept by an earlier
 * version in `<stateDir>/device-id` becomes it).
 *
 * @param options The environment, the state directory, and whether to ask
 *   BlueZ.
 * @returns The id, upper-case `AA:BB:CC:DD:EE:FF`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { mkdtemp, rm } from "node:fs/promises";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 * const dir = await mkdtemp(join(tmpdir(), "linkweave-id-"));
 * try {
 *   const id = await defaultDeviceId({ env: { XDG_STATE_HOME: dir }, adapter: false });
 *   assert.match(id, /^([0-9A-F]{2}:){5}[0-9A-F]{2}$/);
 * } finally {
 *   await rm(dir, { recursive: true, force: true });
 * }
 * ```
 */
export async function defaultDeviceId(options: DefaultDeviceIdOptions = {}): Promise<string> {
  const env = options.env ?? process.env;
  const stateDir = options.stateDir ?? stateDirectory(env);
  const dir = join(stateDir, IDENTITIES_DIR, DEFAULT_IDENTITY);
  return await identityId(DEFAULT_IDENTITY, dir, stateDir, env, options.adapter !== false);
}

/** The folder of the identities, in the state directory. */
export const IDENTITIES_DIR = "identities";
/** The name of the first identity; the next ones are `default-2`, `default-3`, ... */
export const DEFAULT_IDENTITY = "default";
/** The most identities one user runs at once on one machine. */
export const MAX_IDENTITIES = 64;
/** The lock file of an identity, in its folder. */
export const LOCK_FILE = "lock";

/** An identity this process holds. */
export interface HeldIdentity {
  /** Its name (`default`, `default-2`, ...). */
  name: string;
  /** Its device id, upper-case. */
  deviceId: string;
  /** Its folder. */
  dir: string;
  /**
   * Release it (remove the lock) so another process may take it; idempotent.
   *
   * @returns When released.
   */
  release(): Promise<void>;
}

/** Options of {@linkcode claimIdentity}. */
export interface ClaimIdentityOptions extends DefaultDeviceIdOptions {
  /** How many identities to try. @default {64} */
  max?: number;
  /**
   * Take this identity only (`default`, `default-2`, or any name): when a
   * live process holds it, fail and name that process. @default {the first free one}
   */
  name?: string;
}

/**
 * The name of the identity at a position: `default`, `default-2`, ...
 *
 * @param n The position, from 1.
 * @returns The name.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.equal(identityName(1), "default");
 * assert.equal(identityName(3), "default-3");
 * ```
 */
export function identityName(n: number): string {
  return n === 1 ? DEFAULT_IDENTITY : `${DEFAULT_IDENTITY}-${n}`;
}

/**
 * Take the first identity no live process holds, creating it on first use
 * (see the module documentation). The lock is released by `release()`, or
 * reclaimed by a later process once this one has exited.
 *
 * @param options The environment, the state directory, whether the
 *   `default` identity asks BlueZ for the adapter address, and how many
 *   identities to try.
 * @returns The identity held.
 * @throws {Error} When every identity is held, or the state directory cannot
 *   be written (the message names it and the way out; a file system error's
 *   `code` is kept).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { mkdtemp, rm } from "node:fs/promises";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 * const dir = await mkdtemp(join(tmpdir(), "linkweave-id-"));
 * try {
 *   const a = await claimIdentity({ stateDir: dir, adapter: false });
 *   const b = await claimIdentity({ stateDir: dir, adapter: false });
 *   assert.deepEqual([a.name, b.name], ["default", "default-2"]);
 *   assert.notEqual(a.deviceId, b.deviceId);
 *   await a.release();
 *   const c = await claimIdentity({ stateDir: dir, adapter: false });
 *   assert.equal(c.deviceId, a.deviceId); // the same identity again
 *   await b.release();
 *   await c.release();
 * } finally {
 *   await rm(dir, { recursive: true, force: true });
 * }
 * ```
 */
export async function claimIdentity(options: ClaimIdentityOptions = {}): Promise<HeldIdentity> {
  const env = options.env ?? process.env;
  const stateDir = options.stateDir ?? stateDirectory(env);
  const root = join(stateDir, IDENTITIES_DIR);
  const max = options.max ?? MAX_IDENTITIES;
  const failed = (e: unknown): Error => {
    const err = e as { code?: unknown; message?: unknown };
    const error = new Error(
      `Cannot take a device identity in "${root}": ${
        String(err?.message ?? e)
      } (set LINKWEAVE_DEVICE_ID, or XDG_STATE_HOME to a writable directory)`,
      { cause: e },
    );
    if (typeof err?.code === "string") Object.assign(error, { code: err.code });
    return error;
  };
  const names = options.name === undefined
    ? Array.from({ length: max }, (_, i) => identityName(i + 1))
    : [options.name];
  for (const name of names) {
    const dir = join(root, name);
    let release: (() => Promise<void>) | undefined;
    try {
      await mkdir(dir, { recursive: true, mode: 0o700 });
      release = await tryLock(join(dir, LOCK_FILE));
    } catch (e) {
      throw failed(e);
    }
    if (release === undefined && options.name !== undefined) {
      const holder = stampOf(await readText(join(dir, LOCK_FILE)).catch(() => "") ?? "");
      const who = holder === undefined ? "another process" : `process ${holder.pid}`;
      throw new Error(
        `Cannot take identity "${name}" in "${root}": ${who} holds it ` +
          "(stop that process, or name another identity)",
      );
    }
    if (release === undefined) continue;
    try {
      const deviceId = await identityId(name, dir, stateDir, env, options.adapter !== false);
      return { name, deviceId, dir, release };
    } catch (e) {
      await release();
      throw e;
    }
  }
  throw failed(new Error(`all ${max} identities are held by running processes`));
}

async function identityId(
  name: string,
  dir: string,
  stateDir: string,
  env: Record<string, string | undefined>,
  adapter: boolean,
): Promise<string> {
  if (name !== DEFAULT_IDENTITY) return await storedDeviceId(dir);
  if (adapter) {
    const address = await adapterAddress(env);
    if (address !== undefined) return address;
  }
  // An id kept by an earlier version (one id per user) becomes the default identity's.
  const legacy = await readId(join(stateDir, DEVICE_ID_FILE)).catch(() => undefined);
  if (legacy !== undefined && legacy !== "missing") {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await placeFile(join(dir, DEVICE_ID_FILE), `${legacy}\n`).catch(() => {});
  }
  return await storedDeviceId(dir);
}

/** Create `file` with `text` in one step; `false` when it exists. */
async function placeFile(file: string, text: string): Promise<boolean> {
  const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  await writeFile(tmp, text, { mode: 0o600 });
  try {
    await link(tmp, file);
    return true;
  } catch (e) {
    if ((e as { code?: string }).code === "EEXIST") return false;
    throw e;
  } finally {
    await unlink(tmp).catch(() => {});
  }
}

async function readText(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, "utf8");
  } catch (e) {
    if ((e as { code?: string }).code === "ENOENT") return undefined;
    throw e;
  }
}

function stampOf(text: string): ProcessStamp | undefined {
  try {
    const o = JSON.parse(text) as { pid?: unknown; start?: unknown };
    if (typeof o.pid !== "number" || !Number.isInteger(o.pid) || o.pid < 1) return undefined;
    return { pid: o.pid, start: typeof o.start === "string" ? o.start : null };
  } catch {
    return undefined;
  }
}

/**
 * The marker a process creates before it removes a stale lock: named after
 * the stale content (FNV-1a), so only one process reclaims that lock.
 *
 * @param path The lock file.
 * @param stale The stale content.
 * @returns The marker's path.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.equal(reclaimMarker("/s/lock", ""), "/s/lock.reclaim-811c9dc5");
 * ```
 */
export function reclaimMarker(path: string, stale: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < stale.length; i++) h = Math.imul(h ^ stale.charCodeAt(i), 0x01000193) >>> 0;
  return `${path}.reclaim-${h.toString(16).padStart(8, "0")}`;
}

/**
 * Take the lock file at `path` (as an identity's lock is taken), reclaiming
 * it from a dead holder.
 *
 * @param path The lock file (its folder exists).
 * @returns Its release, or `undefined` when a live process holds it.
 */
export async function tryLock(path: string): Promise<(() => Promise<void>) | undefined> {
  const mine = JSON.stringify({ ...selfStamp(), token: Math.random().toString(36).slice(2) });
  for (let attempt = 0; attempt < 8; attempt++) {
    if (await placeFile(path, mine)) {
      let released = false;
      return async () => {
        if (released) return;
        released = true;
        if (await readText(path).catch(() => undefined) === mine) {
          await unlink(path).catch(() => {});
        }
      };
    }
    const held = await readText(path);
    if (held === undefined) continue; // released meanwhile
    const stamp = stampOf(held);
    if (stamp !== undefined && isAlive(stamp)) return undefined;
    await reclaim(path, held, 0);
  }
  return undefined; // others keep taking and dropping it: treat it as held
}

/** Remove the stale file at `path` if it still holds `stale` (see the module documentation). */
async function reclaim(path: string, stale: string, depth: number): Promise<void> {
  if (depth > 3) return;
  const marker = reclaimMarker(path, stale);
  const me = JSON.stringify({ ...selfStamp(), token: Math.random().toString(36).slice(2) });
  if (await placeFile(marker, me)) {
    try {
      if (await readText(path) === stale) await unlink(path);
    } finally {
      await unlink(marker).catch(() => {});
    }
    return;
  }
  const other = await readText(marker);
  if (other === undefined) return; // that reclaim just finished
  const stamp = stampOf(other);
  if (stamp !== undefined && isAlive(stamp)) {
    await new Promise((r) => setTimeout(r, 5)); // another process is reclaiming it now
    return;
  }
  await reclaim(marker, other, depth + 1); // its reclaimer died half-way
}

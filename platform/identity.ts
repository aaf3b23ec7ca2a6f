/**
 * The id a device runs as when none is configured: the address of the
 * machine's Bluetooth adapter (BlueZ `hci0`) when there is one, so the same
 * machine has the same id over IP and BLE; else a stable random id kept in
 * `$XDG_STATE_HOME/linkweave/device-id`.
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
import { isDeviceId, randomDeviceId } from "../core/device_config.ts";

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
   * The directory of the stored id.
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
 * The id a device runs as when none is configured (`LINKWEAVE_DEVICE_ID` and
 * `configure({deviceId})` come first, see `resolveConfig`): the BlueZ adapter
 * address when there is one, else the stable random id of
 * {@linkcode storedDeviceId}.
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
  if (options.adapter !== false) {
    const address = await adapterAddress(env);
    if (address !== undefined) return address;
  }
  return await storedDeviceId(options.stateDir ?? stateDirectory(env));
}

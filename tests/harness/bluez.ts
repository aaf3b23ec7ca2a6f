/**
 * A fake BlueZ for tests: a private `dbus-daemon` plus python-dbusmock
 * (`/usr/bin/python3 -m dbusmock --system`) running either linkweave's own
 * template with an air link between adapters (`tests/harness/bluez_air.py`)
 * or dbusmock's stock `bluez5` template. Both are stopped by pid.
 *
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";
import { existsSync } from "node:fs";
import process from "node:process";
import { connectBus, type DBusConnection } from "../../platform/bluez/dbus/connection.ts";
import { Variant } from "../../platform/bluez/dbus/marshal.ts";
import { type PrivateBus, startBus } from "./dbus.ts";

/** What the BlueZ suites need. */
export const BLUEZ_NEEDS: {
  commands: Record<string, string>;
  python: Record<string, string>;
} = {
  commands: { "dbus-daemon": "dbus dbus-daemon" },
  python: { dbusmock: "python3-dbusmock" },
};

/** One adapter of the air mock: name, address, alias. */
export type AdapterSpec = [name: string, address: string, alias: string];

/** A running fake BlueZ. */
export interface FakeBluez {
  /** The private bus (its address goes in `DBUS_SYSTEM_BUS_ADDRESS`). */
  bus: PrivateBus;
  /** A connection for driving the mock (`org.bluez.Mock`) and checking it. */
  control: DBusConnection;
  /** Call `org.bluez.Mock.<member>` on `/`. */
  mock(member: string, signature?: string, body?: unknown[]): Promise<unknown[]>;
  /** The mock's call log: `[ms, path, method, args]`. */
  callLog(): Promise<[bigint, string, string, string][]>;
  /** What the mock printed (stdout and stderr). */
  output(): string;
  /** Stop the mock only (bluetoothd "crashes"); the bus stays. */
  killMock(): Promise<void>;
  /** Stop the mock and the bus. */
  stop(): Promise<void>;
}

/** The air template's path. */
export const AIR_TEMPLATE: string = findTemplate();

function findTemplate(): string {
  // Beside this module, or (bundled for Node) found from the working directory.
  const here = join(dirname(fileURLToPath(import.meta.url)), "bluez_air.py");
  if (existsSync(here)) return here;
  return join(process.cwd(), "tests", "harness", "bluez_air.py");
}

/**
 * Start a fake BlueZ on its own bus.
 *
 * @param options `template`: `"air"` (ours, with `adapters` and `mtu`) or
 *   `"bluez5"` (dbusmock's stock one) (@default {"air"}); `denyUsers`: the bus
 *   policy refuses every call to BlueZ, as a system bus does to a user
 *   without rights (the mock cannot be driven then) (@default {false}).
 * @returns The running mock, once `org.bluez` is on the bus.
 */
export async function startBluez(
  options: {
    template?: "air" | "bluez5";
    adapters?: AdapterSpec[];
    mtu?: number;
    denyUsers?: boolean;
  } = {},
): Promise<FakeBluez> {
  const bus = await startBus({
    prefix: "lw-dbus-bluez-",
    denySend: options.denyUsers ? ["org.bluez"] : [],
  });
  const template = options.template ?? "air";
  const args = ["-m", "dbusmock", "--system", "-t", template === "air" ? AIR_TEMPLATE : "bluez5"];
  if (template === "air") {
    args.push("-p", JSON.stringify({ adapters: options.adapters ?? [], mtu: options.mtu ?? 517 }));
  }
  const child: ChildProcess = spawn("/usr/bin/python3", args, {
    env: { ...process.env, DBUS_SYSTEM_BUS_ADDRESS: bus.address, PYTHONUNBUFFERED: "1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  const collect = (b: Uint8Array) => {
    out += new TextDecoder().decode(b);
    if (out.length > 1 << 20) out = out.slice(-(1 << 19));
  };
  child.stdout!.on("data", collect);
  child.stderr!.on("data", collect);
  const exited = new Promise<void>((r) => child.on("exit", () => r()));
  let control: DBusConnection | undefined;
  const killMock = async () => {
    try {
      process.kill(child.pid!, "SIGTERM");
    } catch {
      // already gone
    }
    const t = setTimeout(() => {
      try {
        process.kill(child.pid!, "SIGKILL");
      } catch {
        // already gone
      }
    }, 2000);
    await exited;
    clearTimeout(t);
  };
  const stop = async () => {
    control?.close();
    await killMock();
    await bus.stop();
  };
  try {
    control = await connectBus({ address: bus.address });
    const until = Date.now() + 10_000;
    while ((await control.getNameOwner("org.bluez")) === undefined) {
      if (child.exitCode !== null || Date.now() > until) {
        throw new Error(`The BlueZ mock did not start: ${out}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  } catch (e) {
    await stop();
    throw e;
  }
  const c = control;
  const mock = async (member: string, signature = "", body: unknown[] = []) =>
    (await c.call({
      destination: "org.bluez",
      path: "/",
      interface: "org.bluez.Mock",
      member,
      signature,
      body,
    })).body;
  return {
    bus,
    control: c,
    mock,
    async callLog() {
      return (await mock("GetCallLog"))[0] as [bigint, string, string, string][];
    },
    output: () => out,
    killMock,
    stop,
  };
}

/** `Configure` options of the air mock, as the variant map it takes. */
export function airOptions(o: Record<string, number>): Map<string, Variant> {
  return new Map(Object.entries(o).map(([k, v]) => [k, new Variant("u", v)]));
}

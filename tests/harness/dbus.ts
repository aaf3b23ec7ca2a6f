/**
 * A private `dbus-daemon` for tests: its own session-like configuration and
 * socket in a temporary directory, started with `--nofork --print-address`,
 * stopped by its pid, the directory removed.
 *
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";

/** What the D-Bus suites need: `dbus-daemon` (Debian `dbus-daemon`, pulled in by `dbus`). */
export const DBUS_NEEDS: { commands: Record<string, string> } = {
  commands: { "dbus-daemon": "dbus dbus-daemon" },
};

/** A running private bus. */
export interface PrivateBus {
  /** Its D-Bus address (`unix:path=...,guid=...`). */
  address: string;
  /** The socket path. */
  socket: string;
  /** The temporary directory. */
  dir: string;
  /** The daemon's pid. */
  pid: number;
  /** Stop the daemon (by pid) and remove the directory. */
  stop(): Promise<void>;
}

/** A name the bus policy refuses: no one may own it or send to it. */
export const DENIED_NAME = "org.linkweave.Denied";

/**
 * Start a private bus.
 *
 * @param options `prefix` of the temporary directory (@default {"lw-dbus-"}),
 *   `abstract`: listen on an abstract socket named like the path (@default {false}),
 *   `denySend`: names nobody may send to, as a system bus policy that refuses a user
 *   (@default {[]}).
 * @returns The bus, once it listens.
 */
export async function startBus(
  options: { prefix?: string; abstract?: boolean; denySend?: string[] } = {},
): Promise<PrivateBus> {
  const dir = mkdtempSync(join(tmpdir(), options.prefix ?? "lw-dbus-"));
  const socket = join(dir, "bus");
  const listen = options.abstract ? `unix:abstract=${socket}` : `unix:path=${socket}`;
  const config = join(dir, "bus.conf");
  writeFileSync(
    config,
    `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>${listen}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
    <deny own="${DENIED_NAME}"/>
    <deny send_destination="${DENIED_NAME}"/>
${(options.denySend ?? []).map((n) => `    <deny send_destination="${n}"/>\n`).join("")}  </policy>
</busconfig>
`,
  );
  const child: ChildProcess = spawn(
    "dbus-daemon",
    [`--config-file=${config}`, "--print-address=1", "--nofork"],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  let out = "";
  let err = "";
  child.stderr!.on("data", (b: Uint8Array) => (err += new TextDecoder().decode(b)));
  const address = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`dbus-daemon did not start: ${err}`)), 10_000);
    child.stdout!.on("data", (b: Uint8Array) => {
      out += new TextDecoder().decode(b);
      const nl = out.indexOf("\n");
      if (nl >= 0) {
        clearTimeout(timer);
        resolve(out.slice(0, nl).trim());
      }
    });
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`dbus-daemon exited with ${code}: ${err}`));
    });
  });
  const exited = new Promise<void>((r) => child.on("exit", () => r()));
  const pid = child.pid!;
  return {
    address,
    socket,
    dir,
    pid,
    async stop() {
      try {
        process.kill(pid, "SIGTERM");
      } catch {
        // already gone
      }
      const t = setTimeout(() => {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // already gone
        }
      }, 2000);
      await exited;
      clearTimeout(t);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

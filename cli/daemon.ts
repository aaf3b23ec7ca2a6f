/**
 * `linkweave daemon`: run the device daemon (`daemon.ts`, `docs/daemon.md`)
 * until SIGINT or SIGTERM.
 *
 * @module
 */
import process from "node:process";
import { defaultDaemonSocket, defaultManifest, startDaemon } from "../daemon.ts";
import type { Command, Io } from "./mod.ts";

const HELP = `Usage: linkweave daemon [options]

Runs this user's device for every application on the machine: it owns the
transports, discovery, trust and links, and serves the device on a local Unix
socket. Applications attach to it when LINKWEAVE_DAEMON names its socket, or
when it answers on the default socket and they configure no device of their
own; then they all share one link per peer. A collaboration request for an
ability no attached application registered starts it from the manifest.

Prints one JSON line when it listens:
  {"daemon":"ready","socket":"...","deviceId":"...","port":38470,"pid":123,"manifest":"..."}
then one per event (an application attached or detached, an ability started
or not found), and stops on SIGINT or SIGTERM (exit code 0).

Options:
  --socket PATH     where to listen (default: LINKWEAVE_DAEMON when it is a
                    path, else ${defaultDaemonSocket()})
  --group NAME      members of this group may attach too (mode 0660; else 0600)
  --manifest FILE   the abilities it may start (default: ${defaultManifest()},
                    when it exists)
  --identity NAME   the identity to run as when LINKWEAVE_DEVICE_ID is unset
                    (default: "default"); held by another process: an error
  --json            JSON lines (the default and only format)
  -h, --help        this text

The device's settings are the LINKWEAVE_* variables (docs/config.md).

Exit codes: 0 stopped by a signal, 1 it could not start (another daemon runs
there or for this identity, a bad manifest, the device failed), 2 wrong usage.
`;

async function run(args: string[], io: Io): Promise<number> {
  const o: { socket?: string; group?: string; manifest?: string; identity?: string } = {};
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--json") continue;
    const key = { "--socket": "socket", "--group": "group", "--manifest": "manifest" }[a] ??
      (a === "--identity" ? "identity" : undefined);
    const v = args[i + 1];
    if (key === undefined || v === undefined || v.startsWith("--")) {
      io.stderr(
        `linkweave daemon: ${
          key === undefined ? `unknown option "${a}"` : `${a} needs a value`
        } (see linkweave daemon --help)\n`,
      );
      return 2;
    }
    o[key as keyof typeof o] = v;
    i++;
  }
  const line = (value: unknown) => io.stdout(`${JSON.stringify(value)}\n`);
  const daemon = await startDaemon({
    socket: o.socket,
    group: o.group,
    manifest: o.manifest,
    device: o.identity === undefined ? {} : { identity: o.identity },
    onEvent: ({ event, ...rest }) => line({ daemon: event, ...rest }),
  });
  line({
    daemon: "ready",
    socket: daemon.socket,
    deviceId: daemon.deviceId,
    port: daemon.port,
    pid: process.pid,
    manifest: daemon.manifest ?? null,
  });
  const signal = await new Promise<string>((resolve) => {
    process.once("SIGINT", () => resolve("SIGINT"));
    process.once("SIGTERM", () => resolve("SIGTERM"));
  });
  await daemon.close();
  line({ daemon: "stopped", signal });
  return 0;
}

/** The `daemon` command. */
export const daemonCommand: Command = {
  name: "daemon",
  summary: "run the device daemon: one device for every application, abilities started on demand",
  help: HELP,
  run,
};

/**
 * Starts the command of a device daemon's manifest entry
 * (`core/daemon/manifest.ts`), in Linux terms of OpenHarmony's start
 * options (`docs/daemon.md`):
 *
 * - `START_IN_FOREGROUND`: a child of the daemon in its session and process
 *   group, with the daemon's terminal (stdin, stdout, stderr inherited):
 *   what the daemon's user sees, and stopped with it (Ctrl-C on its
 *   terminal reaches both).
 * - `START_IN_BACKGROUND`: detached, a session of its own (`setsid`), no
 *   terminal: stdin from `/dev/null`, output appended to the entry's `log`
 *   file or discarded; it outlives the daemon.
 *
 * Either way it gets the daemon's environment, the entry's `env`, and
 * `LINKWEAVE_DAEMON` naming the daemon's socket, so it attaches to it.
 *
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { isAbsolute, resolve } from "node:path";
import process from "node:process";
import type { Launch, Launcher } from "../core/daemon/server.ts";
import type { ManifestEntry } from "../core/daemon/manifest.ts";

/** Options of {@linkcode processLauncher}. */
export interface LauncherOptions {
  /** The daemon's socket (the child's `LINKWEAVE_DAEMON`). */
  socket: string;
  /** The folder relative `cwd` and `log` paths are taken from (the manifest's). */
  base: string;
  /** The environment the child starts from. @default {process.env} */
  env?: Record<string, string | undefined>;
}

/** Starts manifest entries as processes; stops the foreground ones with the daemon. */
export interface ProcessLauncher {
  /** Start an entry. */
  launch: Launcher;
  /** Send SIGTERM to the foreground processes still running (the daemon stops). */
  stop(): void;
}

/**
 * A launcher that starts manifest entries as processes.
 *
 * @param options The daemon's socket, the manifest's folder, the environment.
 * @returns The launcher.
 */
export function processLauncher(options: LauncherOptions): ProcessLauncher {
  const foreground = new Set<ChildProcess>();
  const launch = (entry: ManifestEntry, how: { foreground: boolean }): Launch => {
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(options.env ?? process.env)) {
      if (v !== undefined) env[k] = v;
    }
    Object.assign(env, entry.env, { LINKWEAVE_DAEMON: options.socket });
    const at = (p: string) => isAbsolute(p) ? p : resolve(options.base, p);
    let log: number | undefined;
    let child: ChildProcess;
    try {
      if (!how.foreground && entry.log !== undefined) log = openSync(at(entry.log), "a", 0o600);
      child = spawn(entry.command, entry.args, {
        cwd: at(entry.cwd ?? "."),
        env,
        detached: !how.foreground,
        stdio: how.foreground ? "inherit" : ["ignore", log ?? "ignore", log ?? "ignore"],
      });
    } catch (e) {
      if (log !== undefined) closeSync(log);
      throw e;
    }
    if (log !== undefined) closeSync(log);
    if (!how.foreground) child.unref();
    else foreground.add(child);
    child.once("exit", () => foreground.delete(child));
    const exited = new Promise<string>((done) => {
      child.once("error", (e) => done(`could not start: ${e.message}`));
      child.once(
        "exit",
        (code, signal) =>
          done(signal !== null ? `was killed by ${signal}` : `exited with code ${code}`),
      );
    });
    return { pid: child.pid, exited };
  };
  return {
    launch,
    stop: () => {
      for (const child of foreground) child.kill("SIGTERM");
    },
  };
}

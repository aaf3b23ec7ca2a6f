/**
 * Run `linkweave` as a real process for the CLI tests, on the runtime
 * running the tests (Node runs the command bundled by esbuild, as the npm
 * `bin` is), each test in its own state, registry and account.
 *
 * @module
 */
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Child, start } from "../_script.ts";

/** A private place for one test's devices: state, registry, files. */
export interface Sandbox {
  /** Its directory. */
  dir: string;
  /** The environment its processes run with. */
  env: Record<string, string>;
  /** Remove it. */
  remove(): void;
}

/**
 * A sandbox: its own XDG state and runtime directories, one account secret,
 * discovery off unless `discovery` is set.
 *
 * @param options Whether discovery runs (local registry only: loopback).
 * @returns The sandbox.
 */
export function sandbox(options: { discovery?: boolean } = {}): Sandbox {
  const dir = mkdtempSync(join(tmpdir(), "lw-cli-"));
  mkdirSync(join(dir, "state"), { mode: 0o700 });
  mkdirSync(join(dir, "run"), { mode: 0o700 });
  const env: Record<string, string> = {
    XDG_STATE_HOME: join(dir, "state"),
    XDG_RUNTIME_DIR: join(dir, "run"),
    LINKWEAVE_ACCOUNT: `cli test ${dir}`,
    LINKWEAVE_BIND: "127.0.0.1",
    LINKWEAVE_PORT: "0",
  };
  if (options.discovery !== true) env.LINKWEAVE_DISCOVERY = "off";
  return { dir, env, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A running `linkweave`: a {@linkcode Child} whose `exited` waits for all its output. */
export interface Run extends Child {
  /** Its exit code; SIGKILL it after `ms` (then the code is `"SIGKILL"`). */
  exit(ms?: number): Promise<number | string>;
}

/**
 * Start `linkweave ARGS`.
 *
 * @param args The arguments.
 * @param env Its environment, over this process's.
 * @param module The program (a helper of the tests instead of the command).
 * @returns The process.
 */
export function linkweave(
  args: string[],
  env: Record<string, string> = {},
  module = "cli/mod.ts",
): Run {
  const c = start(module, { NO_COLOR: "1", ...env }, [], { args, stdin: true, untilClosed: true });
  return Object.assign(c, {
    async exit(ms = 15_000) {
      const timer = setTimeout(() => c.kill(), ms);
      const code = await c.exited;
      clearTimeout(timer);
      return code;
    },
  });
}

/** What a finished `linkweave` did. */
export interface Done {
  /** Exit code. */
  code: number | string;
  /** Stdout. */
  out: string;
  /** Stderr. */
  err: string;
}

/**
 * Run `linkweave ARGS` to its end (killed after `ms`).
 *
 * @param args The arguments.
 * @param env Its environment.
 * @param options Its standard input, and the time limit.
 * @returns Its exit code and output.
 */
export async function run(
  args: string[],
  env: Record<string, string> = {},
  options: { stdin?: string; ms?: number } = {},
): Promise<Done> {
  const r = linkweave(args, env);
  r.end(options.stdin);
  const code = await r.exit(options.ms ?? 20_000);
  return { code, out: r.out, err: r.err };
}

/**
 * The port a started device says it listens on.
 *
 * @param r The process.
 * @returns The port.
 */
export async function listeningPort(r: Run): Promise<number> {
  const m = await r.waitFor(/listening on 127\.0\.0\.1:(\d+)/);
  return Number(m[1]);
}

/**
 * JSON lines.
 *
 * @param text Stdout.
 * @returns The objects.
 */
export function jsonLines(text: string): Record<string, unknown>[] {
  return text.split("\n").filter((l) => l.trim() !== "").map((l) => JSON.parse(l));
}

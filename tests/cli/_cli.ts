/**
 * Run `linkweave` as a real process for the CLI tests, on the runtime
 * running the tests (Node runs the command bundled by esbuild, as the npm
 * `bin` is), each test in its own state, registry and account.
 *
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { scriptCommand } from "../_script.ts";

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

const commands = new Map<string, [string, string[]]>();

/**
 * The command line running `module`, made once per module: under Node,
 * `scriptCommand` bundles on every call, and a bundle rewritten while
 * another child loads it breaks that child.
 *
 * @param module The module, relative to the repository.
 * @returns Command and arguments.
 */
export function command(module: string): [string, string[]] {
  let c = commands.get(module);
  if (c === undefined) {
    c = scriptCommand(module);
    commands.set(module, c);
  }
  return c;
}

/** A running `linkweave`. */
export interface Run {
  /** The process. */
  proc: ChildProcess;
  /** Stdout so far. */
  readonly out: string;
  /** Stderr so far. */
  readonly err: string;
  /** Its exit code (or signal name). */
  exited: Promise<number | string>;
  /** Its exit code; SIGKILL it after `ms` (then the code is `"SIGKILL"`). */
  exit(ms?: number): Promise<number | string>;
  /** Wait until stdout or stderr matches. */
  waitFor(re: RegExp, ms?: number): Promise<RegExpMatchArray>;
  /** Write to its stdin. */
  write(text: string): void;
  /** Close its stdin. */
  end(): void;
  /** SIGKILL it if it still runs. */
  kill(): void;
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
  const [cmd, pre] = command(module);
  const proc = spawn(cmd, [...pre, ...args], {
    env: { ...process.env, NO_COLOR: "1", ...env },
    stdio: ["pipe", "pipe", "pipe"],
  });
  proc.stdin!.on("error", () => {});
  let out = "";
  let err = "";
  proc.stdout!.on("data", (b: Uint8Array) => (out += new TextDecoder().decode(b)));
  proc.stderr!.on("data", (b: Uint8Array) => (err += new TextDecoder().decode(b)));
  let gone = false;
  const exited = new Promise<number | string>((r) =>
    proc.on("close", (code, signal) => {
      gone = true;
      r(code ?? signal ?? -1);
    })
  );
  return {
    proc,
    get out() {
      return out;
    },
    get err() {
      return err;
    },
    exited,
    async exit(ms = 15_000) {
      const timer = setTimeout(() => this.kill(), ms);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
    async waitFor(re, ms = 15_000) {
      const until = Date.now() + ms;
      while (Date.now() < until) {
        const m = (out + err).match(re);
        if (m !== null) return m;
        if (gone) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      const m = (out + err).match(re);
      if (m !== null) return m;
      throw new Error(`linkweave ${args.join(" ")}: no ${re}\nstdout: ${out}\nstderr: ${err}`);
    },
    write(text) {
      if (!gone) proc.stdin!.write(text);
    },
    end() {
      proc.stdin!.end();
    },
    kill() {
      if (!gone && proc.pid !== undefined) {
        try {
          process.kill(proc.pid, "SIGKILL");
        } catch {
          // already gone
        }
      }
    },
  };
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
  r.proc.stdin!.end(options.stdin ?? "");
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

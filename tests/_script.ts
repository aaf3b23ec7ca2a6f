/**
 * Run a TypeScript module as a child process with the runtime running the
 * tests (Node runs it bundled by esbuild), with its own environment.
 *
 * @module
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import process from "node:process";
import { RUNTIME } from "./harness/env.ts";

let bundleDir: string | undefined;
const commands = new Map<string, [string, string[]]>();

/**
 * The command line running `module` (a path relative to the repository),
 * made once per module: under Node the module is bundled (by esbuild), and a
 * bundle rewritten while another child loads it would break that child.
 *
 * @param module The module.
 * @returns Command and arguments.
 */
export function scriptCommand(module: string): [string, string[]] {
  let c = commands.get(module);
  if (c === undefined) {
    c = makeCommand(module);
    commands.set(module, c);
  }
  return c;
}

function makeCommand(module: string): [string, string[]] {
  const path = join(process.cwd(), module);
  if (RUNTIME === "deno") return [process.execPath, ["run", "-A", path]];
  if (RUNTIME === "bun") return [process.execPath, [path]];
  bundleDir ??= mkdtempSync(join(tmpdir(), "lw-script-"));
  const out = join(bundleDir, basename(module).replace(/\.ts$/, ".mjs"));
  const r = spawnSync(join(process.cwd(), "node_modules", ".bin", "esbuild"), [
    "--bundle",
    "--platform=node",
    "--format=esm",
    path,
    `--outfile=${out}`,
    "--log-level=error",
  ]);
  if (r.status !== 0) throw new Error(`Cannot bundle ${module}: ${r.stderr}`);
  return [process.execPath, [out]];
}

/** A child process with its output collected. */
export interface Child {
  /** The process. */
  proc: ChildProcess;
  /** Stdout so far. */
  readonly out: string;
  /** Stderr so far. */
  readonly err: string;
  /** Resolves with the exit code (or the signal name). */
  exited: Promise<number | string>;
  /** Wait until stdout or stderr matches, at most `ms`. */
  waitFor(re: RegExp, ms?: number): Promise<RegExpMatchArray>;
  /** Kill it with SIGKILL if it still runs. */
  kill(): void;
  /** Write to its stdin (started with `stdin: true`). */
  write(text: string): void;
  /** Close its stdin (started with `stdin: true`). */
  end(text?: string): void;
}

/** Options of {@linkcode start}. */
export interface StartOptions {
  /** Give the child a stdin pipe for {@linkcode Child.write} (else it has none). @default {false} */
  stdin?: boolean;
  /** Arguments given to the module. @default {[]} */
  args?: string[];
  /**
   * Resolve {@linkcode Child.exited} once its output is closed too (all of
   * it read), not at its exit; a child whose own children keep its output
   * open is then not exited until they end. @default {false}
   */
  untilClosed?: boolean;
}

/**
 * Start a module as a child process.
 *
 * @param module The module, relative to the repository.
 * @param env Extra environment variables.
 * @param prefix A command to run it under, e.g. `["ip", "netns", "exec", "ns1"]`.
 * @param options Its arguments, whether it gets a stdin pipe, when it counts as exited.
 * @returns The child.
 */
export function start(
  module: string,
  env: Record<string, string>,
  prefix: string[] = [],
  options: StartOptions = {},
): Child {
  const [cmd, args] = scriptCommand(module);
  const argv = [...prefix, cmd, ...args, ...(options.args ?? [])];
  const proc = spawn(argv[0], argv.slice(1), {
    env: { ...process.env, ...env },
    stdio: [options.stdin ? "pipe" : "ignore", "pipe", "pipe"],
  });
  proc.stdin?.on("error", () => {}); // a child that exited
  let out = "";
  let err = "";
  proc.stdout!.on("data", (b: Uint8Array) => (out += new TextDecoder().decode(b)));
  proc.stderr!.on("data", (b: Uint8Array) => (err += new TextDecoder().decode(b)));
  let gone = false;
  const exited = new Promise<number | string>((r) =>
    proc.on(options.untilClosed ? "close" : "exit", (code, signal) => {
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
      throw new Error(`${module}: no ${re} within ${ms} ms\nstdout: ${out}\nstderr: ${err}`);
    },
    write(text) {
      if (proc.stdin === null) throw new Error(`${module} was started without stdin`);
      if (!gone) proc.stdin.write(text);
    },
    end(text) {
      if (proc.stdin === null) throw new Error(`${module} was started without stdin`);
      proc.stdin.end(text ?? "");
    },
    kill() {
      // Not proc.kill(): Deno marks a child sent SIGSTOP as killed and would
      // skip a later SIGKILL.
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

/**
 * A TCP port on 127.0.0.1 that was free a moment ago.
 *
 * @returns The port.
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/**
 * Test helpers to run peer processes, bounded in time.
 *
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process";
import process from "node:process";

/** A spawned process whose output is collected. */
export interface Proc {
  /** The child. */
  child: ChildProcess;
  /** Its stdout so far. */
  out(): string;
  /** Resolves with the exit code (or rejects after `ms`). */
  exit(ms?: number): Promise<number | null>;
  /** Kill it (by its own pid) if still running. */
  kill(): void;
}

/**
 * Spawn a command; stdin is written then closed when `input` is given.
 *
 * @param cmd The command.
 * @param args Its arguments.
 * @param input Text for stdin.
 * @returns The process.
 */
export function run(cmd: string, args: string[], input?: string): Proc {
  const child = spawn(cmd, args, { stdio: ["pipe", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stdout!.on("data", (b: Uint8Array) => (out += new TextDecoder().decode(b)));
  child.stderr!.on("data", (b: Uint8Array) => (err += new TextDecoder().decode(b)));
  child.on("error", () => {});
  const exited = new Promise<number | null>((r) => child.on("close", (code) => r(code)));
  if (input !== undefined) child.stdin!.end(input);
  return {
    child,
    out: () => out,
    exit: (ms = 10_000) => {
      let t: ReturnType<typeof setTimeout>;
      return Promise.race([
        exited,
        new Promise<never>((_, rej) => {
          t = setTimeout(
            () => rej(new Error(`"${cmd} ${args.join(" ")}" did not exit in ${ms} ms: ${err}`)),
            ms,
          );
        }),
      ]).finally(() => clearTimeout(t));
    },
    kill: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    },
  };
}

/**
 * The command line that runs a module with the runtime running this code:
 * `deno run -A <module>`, `bun <module>`, or `node <module>` (under Node the
 * tests run from the esbuild bundle, so `module` is a bundled `.mjs`).
 *
 * @param module The module's path.
 * @param args Arguments after it.
 * @returns The command and its arguments.
 */
export function runtimeCommand(module: string, args: string[] = []): [string, string[]] {
  const deno = "Deno" in globalThis && !("Bun" in globalThis);
  return [process.execPath, [...(deno ? ["run", "-A"] : []), module, ...args]];
}

/**
 * Wait until `probe` resolves true, polling every 20 ms, for at most `ms`.
 *
 * @param probe The check.
 * @param ms The limit.
 * @param what For the error message.
 */
export async function waitFor(
  probe: () => Promise<boolean> | boolean,
  ms: number,
  what: string,
): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (await probe()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`Timed out after ${ms} ms waiting for ${what}`);
}

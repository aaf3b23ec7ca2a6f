/**
 * Benchmark plumbing: run a role of a bench script in a child process of the
 * same runtime and talk to it with JSON lines over its stdin and stdout (one
 * request, one answer, matched by id). The child exits when its stdin ends.
 *
 * @module
 */
import { spawn } from "node:child_process";
import process from "node:process";
import { RUNTIME } from "../tests/harness/env.ts";

/** A JSON value passed to or returned by a role's command. */
// deno-lint-ignore no-explicit-any
export type Json = any;

/** A child process running one role. */
export interface Child {
  /** What the child said when it was ready. */
  ready: Json;
  /**
   * Run a command in the child.
   *
   * @param cmd The command's name.
   * @param args Its arguments.
   * @returns Its answer.
   */
  call(cmd: string, args?: Record<string, unknown>): Promise<Json>;
  /** End the child (closes its stdin) and wait for it to exit. */
  close(): Promise<void>;
}

/** Options of {@linkcode spawnRole}. */
export interface SpawnOptions {
  /** Expose a forced garbage collection (`gc()` on Deno, `Bun.gc` anyway). @default {false} */
  gc?: boolean;
  /** A command to run the child under, e.g. `["ip", "netns", "exec", "ns1"]`. @default {[]} */
  prefix?: string[];
  /** More arguments after the role. @default {[]} */
  args?: string[];
}

/**
 * Start `script role` on this runtime and wait until it is ready.
 *
 * @param script The script's path.
 * @param role The role argument.
 * @param options Whether to expose `gc()`, and a command to run it under.
 * @returns The child.
 */
export function spawnRole(
  script: string,
  role: string,
  options: SpawnOptions = {},
): Promise<Child> {
  // LINKWEAVE_BENCH_CHILD_FLAGS adds runtime flags to every child, e.g. `--cpu-prof-md`.
  const extra = (process.env.LINKWEAVE_BENCH_CHILD_FLAGS ?? "").split(" ").filter((f) => f);
  const flags = RUNTIME === "deno"
    ? ["run", "-A", ...(options.gc ? ["--v8-flags=--expose-gc"] : []), ...extra, script, role]
    : RUNTIME === "node"
    ? [...(options.gc ? ["--expose-gc"] : []), ...extra, script, role]
    : [...extra, script, role];
  flags.push(...(options.args ?? []));
  const argv = [...(options.prefix ?? []), process.execPath, ...flags];
  const child = spawn(argv[0], argv.slice(1), { stdio: ["pipe", "pipe", "inherit"] });
  const waiting = new Map<number, { resolve: (v: Json) => void; reject: (e: Error) => void }>();
  let nextId = 1;
  let buf = "";
  let exited = false;
  const exit = new Promise<void>((resolve) =>
    child.on("exit", (code) => {
      exited = true;
      for (const w of waiting.values()) w.reject(new Error(`${role} exited with code ${code}`));
      waiting.clear();
      resolve();
    })
  );
  child.stdout!.on("data", (b: Uint8Array) => {
    buf += new TextDecoder().decode(b);
    for (let nl = buf.indexOf("\n"); nl >= 0; nl = buf.indexOf("\n")) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      let msg: { id: number; ok?: Json; error?: string };
      try {
        msg = JSON.parse(line);
      } catch {
        console.log(`[${role}] ${line}`);
        continue;
      }
      const w = waiting.get(msg.id);
      waiting.delete(msg.id);
      if (msg.error !== undefined) w?.reject(new Error(`${role}: ${msg.error}`));
      else w?.resolve(msg.ok);
    }
  });
  const call = (cmd: string, args: Record<string, unknown> = {}): Promise<Json> => {
    if (exited) return Promise.reject(new Error(`${role} has exited`));
    const id = nextId++;
    const answer = new Promise<Json>((resolve, reject) => waiting.set(id, { resolve, reject }));
    child.stdin!.write(JSON.stringify({ id, cmd, args }) + "\n");
    return answer;
  };
  const ready = new Promise<Json>((resolve, reject) => waiting.set(0, { resolve, reject }));
  return ready.then((r) => ({
    ready: r,
    call,
    close: async () => {
      child.stdin!.end();
      const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
      await exit;
      clearTimeout(timer);
    },
  }));
}

/**
 * The child side: answer commands from the parent until stdin ends, then
 * exit. `ready` is sent first (answer id 0).
 *
 * @param ready What to tell the parent once ready.
 * @param handlers The commands.
 */
export function serveRole(
  ready: Json,
  handlers: Record<string, (args: Json) => Json | Promise<Json>>,
): void {
  const send = (msg: unknown) => process.stdout.write(JSON.stringify(msg) + "\n");
  send({ id: 0, ok: ready });
  let buf = "";
  process.stdin.on("data", (b: Uint8Array) => {
    buf += new TextDecoder().decode(b);
    for (let nl = buf.indexOf("\n"); nl >= 0; nl = buf.indexOf("\n")) {
      const { id, cmd, args } = JSON.parse(buf.slice(0, nl));
      buf = buf.slice(nl + 1);
      const h = handlers[cmd];
      if (h === undefined) {
        send({ id, error: `unknown command ${cmd}` });
        continue;
      }
      Promise.resolve()
        .then(() => h(args))
        .then(
          (ok) => send({ id, ok: ok ?? null }),
          (e) => send({ id, error: String(e?.stack ?? e) }),
        );
    }
  });
  process.stdin.on("end", () => process.exit(0));
}

/**
 * Force a full garbage collection where the runtime allows it.
 *
 * @returns Whether a collection ran.
 */
export function collect(): boolean {
  const g = globalThis as unknown as { gc?: () => void; Bun?: { gc(force: boolean): void } };
  if (g.Bun !== undefined) {
    g.Bun.gc(true);
    return true;
  }
  if (typeof g.gc === "function") {
    // V8's memory-reducing collection (what its memory reducer does to an
    // idle process): it also gives back the young generation and free pages
    // that a burst of allocation grew, so RSS shows what is held.
    const full = g.gc as (options?: { type: string; execution: string; flavor: string }) => void;
    full({ type: "major", execution: "sync", flavor: "last-resort" });
    full({ type: "major", execution: "sync", flavor: "last-resort" });
    return true;
  }
  return false;
}

/**
 * Wait for `ms` milliseconds.
 *
 * @param ms How long.
 * @returns When done.
 */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

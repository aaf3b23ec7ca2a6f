/**
 * What a test suite needs from the machine, and the skip-or-fail rule:
 * a suite whose needs are missing is skipped with a one-line notice naming the
 * `apt-get install` that enables it, unless `LINKWEAVE_TEST_ALL=1`, which turns
 * the skip into a failing test.
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import process from "node:process";
import { describe, test } from "node:test";

/** The runtime this code runs on. */
export type Runtime = "deno" | "bun" | "node";

/** The runtime this code runs on. */
export const RUNTIME: Runtime = "Bun" in globalThis
  ? "bun"
  : "Deno" in globalThis
  ? "deno"
  : "node";

/** Whether `LINKWEAVE_TEST_ALL=1` forbids skipping. */
export const TEST_ALL: boolean = process.env.LINKWEAVE_TEST_ALL === "1";

/** What a suite needs. */
export interface Needs {
  /** Root (for network namespaces, raw sockets). */
  root?: boolean;
  /** Commands on PATH, each with the Debian package that provides it. */
  commands?: Record<string, string>;
  /** Modules of the system Python (`/usr/bin/python3`), each with its Debian package. */
  python?: Record<string, string>;
  /** Only on these runtimes; elsewhere the suite is skipped even with `TEST_ALL` (not a machine need). */
  runtimes?: Runtime[];
}

const commandCache = new Map<string, boolean>();

/**
 * Whether a command is on PATH.
 *
 * @param name The command.
 * @returns `true` when `command -v` finds it.
 */
export function hasCommand(name: string): boolean {
  let found = commandCache.get(name);
  if (found === undefined) {
    found = spawnSync("sh", ["-c", `command -v ${name}`], { stdio: "ignore" }).status === 0;
    commandCache.set(name, found);
  }
  return found;
}

/**
 * Whether the system Python (`/usr/bin/python3`, not a pyenv one) has a module.
 *
 * @param name The module.
 * @returns `true` when `import <name>` works.
 */
export function hasPythonModule(name: string): boolean {
  const key = `python:${name}`;
  let found = commandCache.get(key);
  if (found === undefined) {
    found =
      spawnSync("/usr/bin/python3", ["-c", `import ${name}`], { stdio: "ignore" }).status === 0;
    commandCache.set(key, found);
  }
  return found;
}

/** Whether this process runs as root. */
export function isRoot(): boolean {
  return typeof process.getuid === "function" && process.getuid() === 0;
}

/**
 * What is missing for a suite, as a one-line notice, or `undefined`.
 *
 * @param needs The suite's needs.
 * @returns The notice, or `undefined` when nothing is missing.
 */
export function missing(needs: Needs): string | undefined {
  const packages = new Set<string>();
  const gaps: string[] = [];
  if (needs.root && !isRoot()) gaps.push("root");
  for (const [cmd, pkg] of Object.entries(needs.commands ?? {})) {
    if (!hasCommand(cmd)) packages.add(pkg);
  }
  for (const [module, pkg] of Object.entries(needs.python ?? {})) {
    if (!hasPythonModule(module)) packages.add(pkg);
  }
  if (packages.size > 0) {
    gaps.push(`apt-get install -y ${[...packages].sort().join(" ")}`);
  }
  return gaps.length === 0 ? undefined : `needs ${gaps.join(" and ")}`;
}

/**
 * `describe()` a suite that runs only when its needs are met. Otherwise it is
 * skipped with a notice, or fails when `LINKWEAVE_TEST_ALL=1`.
 *
 * @param name The suite name.
 * @param needs What the suite needs.
 * @param fn The suite body.
 */
export function describeWith(name: string, needs: Needs, fn: () => void): void {
  if (needs.runtimes !== undefined && !needs.runtimes.includes(RUNTIME)) {
    test(name, { skip: `runs on ${needs.runtimes.join(", ")} only` }, () => {});
    return;
  }
  const gap = missing(needs);
  if (gap === undefined) {
    describe(name, fn);
  } else if (TEST_ALL) {
    test(name, () => {
      throw new Error(`Cannot run "${name}": it ${gap} (LINKWEAVE_TEST_ALL=1 forbids skipping)`);
    });
  } else {
    console.log(`skip: ${name}: ${gap}`);
    test(name, { skip: gap }, () => {});
  }
}

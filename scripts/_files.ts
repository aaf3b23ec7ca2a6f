/**
 * The project's source files, as the scripts see them.
 *
 * @module
 */
import { readdirSync } from "node:fs";
import { join, relative } from "node:path";

/** The repository root. */
export const ROOT: string = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

const SKIP_DIRS = new Set(["node_modules", "dist", ".git", "build", "results", ".test-results"]);

/**
 * Every file under `dir` (relative to the root) whose name passes `keep`.
 *
 * @param dir A directory relative to the root.
 * @param keep The filter on relative paths.
 * @returns Relative paths, sorted.
 */
export function walk(dir: string, keep: (path: string) => boolean): string[] {
  const out: string[] = [];
  const visit = (abs: string) => {
    for (const entry of readdirSync(abs, { withFileTypes: true })) {
      const path = join(abs, entry.name);
      if (entry.isDirectory()) {
        if (SKIP_DIRS.has(entry.name) || relative(ROOT, path) === "wasm/assembly") continue;
        visit(path);
      } else if (keep(relative(ROOT, path))) {
        out.push(relative(ROOT, path));
      }
    }
  };
  visit(join(ROOT, dir));
  return out.sort();
}

/** Every test file (`*_test.ts`). */
export function testFiles(): string[] {
  return walk(".", (p) => p.endsWith("_test.ts"));
}

/** Every library module whose JSDoc examples `deno test --doc` runs. */
export function libraryModules(): string[] {
  const lib = (p: string) =>
    p.endsWith(".ts") && !p.endsWith("_test.ts") && !p.includes("_generated/");
  const roots = walk(".", (p) => !p.includes("/") && lib(p));
  return [...roots, ...["core", "wasm", "platform"].flatMap((d) => walk(d, lib))];
}

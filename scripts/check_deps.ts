/**
 * The dependency rule of `docs/architecture.md`, checked on every import:
 *
 * - `core/` imports only `core/` (no `node:` module, no package, no I/O).
 * - `wasm/` imports only `wasm/`, the codec contract `core/proto/frame.ts`
 *   and the errors (`core/errors.ts`, `core/error_codes.ts`).
 * - `platform/<runtime>/` (`deno`, `bun`, `node`) never imports another
 *   runtime's folder; it may import `core/`, the shared helpers
 *   `platform/_*.ts` and runtime modules. `platform/` as a whole never
 *   imports `wasm/`, a root module or `cli/`.
 * - `cli/` (the `linkweave` command) imports only `cli/`, the public root
 *   modules (`mod.ts`, `link_enhance.ts`, ..., and the one diagnostics
 *   module `diagnostics.ts`; not the private `_*.ts`) and `node:` modules.
 * - Only the root modules, `cli/`, and the tooling around them (`tests/`,
 *   `bench/`, `scripts/`, `examples/`) put the layers together.
 * - Nothing imports a `jsr:` specifier (JSR is not reachable from CI).
 *
 * Tests (`*_test.ts`) are tooling wherever they sit: only the `jsr:` rule
 * applies to them.
 *
 * Usage: `deno run -A scripts/check_deps.ts` prints every offending import
 * as `file: imports "specifier" (rule)` and exits 1 when there is one.
 *
 * @module
 */
import { readFileSync } from "node:fs";
import { dirname, join, normalize } from "node:path";
import process from "node:process";
import { ROOT, walk } from "./_files.ts";

/** One import that breaks the rule. */
export interface Violation {
  /** The importing file, relative to the root. */
  file: string;
  /** The specifier as written. */
  specifier: string;
  /** Which rule it breaks. */
  rule: string;
}

const RUNTIMES = ["deno", "bun", "node"];

/**
 * The specifiers a TypeScript source imports or re-exports (static and
 * dynamic imports, `export ... from`).
 *
 * @param source The file's text.
 * @returns The specifiers, in order.
 */
export function importsOf(source: string): string[] {
  const out: string[] = [];
  const text = source.replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "");
  const re =
    /(?:^|[;\s])(?:import|export)\s+(?:type\s+)?(?:[\w*{}\s,$]+\s+from\s+)?["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)/gm;
  for (const m of text.matchAll(re)) out.push(m[1] ?? m[2]);
  return out;
}

/** The top folder of a path, or "" for a root file. */
function top(path: string): string {
  const i = path.indexOf("/");
  return i < 0 ? "" : path.slice(0, i);
}

/** The runtime folder (`platform/deno/...` -> `deno`), if any. */
function runtimeOf(path: string): string | undefined {
  const m = /^platform\/([^/]+)\//.exec(path);
  return m !== null && RUNTIMES.includes(m[1]) ? m[1] : undefined;
}

/**
 * Check one file's imports.
 *
 * @param file The importing file, relative to the root (`core/x.ts`).
 * @param specifiers What it imports.
 * @returns The violations.
 */
export function checkFile(file: string, specifiers: readonly string[]): Violation[] {
  const out: Violation[] = [];
  const area = top(file);
  const bad = (specifier: string, rule: string) => out.push({ file, specifier, rule });
  const test = file.endsWith("_test.ts");
  for (const spec of specifiers) {
    if (spec.startsWith("jsr:")) {
      bad(spec, "no jsr: imports (JSR is unreachable in CI)");
      continue;
    }
    if (test) continue;
    const relative = spec.startsWith("./") || spec.startsWith("../");
    const target = relative ? normalize(join(dirname(file), spec)) : undefined;
    if (target !== undefined && target.startsWith("..")) {
      bad(spec, "imports outside the repository");
      continue;
    }
    if (area === "core") {
      if (target === undefined) bad(spec, "core/ imports no package or runtime module");
      else if (top(target) !== "core") bad(spec, "core/ imports only core/");
    } else if (area === "wasm") {
      const allowed = target !== undefined &&
        (top(target) === "wasm" ||
          ["core/proto/frame.ts", "core/errors.ts", "core/error_codes.ts"].includes(target));
      if (!allowed) bad(spec, "wasm/ imports only wasm/, the codec contract and the errors");
    } else if (area === "platform") {
      if (target === undefined) continue; // runtime modules (node:fs, bun:ffi, ...)
      const t = top(target);
      if (t === "wasm" || t === "cli" || t === "") {
        bad(spec, "platform/ imports no wasm/, cli/ or root module");
      }
      const own = runtimeOf(file);
      const theirs = runtimeOf(target);
      if (own !== undefined && theirs !== undefined && own !== theirs) {
        bad(spec, `platform/${own}/ never imports another runtime's folder`);
      }
    } else if (area === "cli") {
      const t = target === undefined ? undefined : top(target);
      const allowed = target === undefined
        ? spec.startsWith("node:")
        : t === "cli" || (t === "" && !target.startsWith("_"));
      if (!allowed) {
        bad(
          spec,
          "cli/ imports only cli/, the public modules (diagnostics.ts too) and node: modules",
        );
      }
    }
  }
  return out;
}

/**
 * Check every TypeScript file of the library.
 *
 * @returns The violations.
 */
export function checkRepository(): Violation[] {
  const files = walk(".", (p) => p.endsWith(".ts") && !p.includes("_generated/"));
  return files.flatMap((f) => checkFile(f, importsOf(readFileSync(join(ROOT, f), "utf8"))));
}

if (import.meta.main) {
  const violations = checkRepository();
  for (const v of violations) console.error(`${v.file}: imports "${v.specifier}" (${v.rule})`);
  if (violations.length > 0) {
    console.error(`${violations.length} import(s) break the dependency rule`);
    process.exit(1);
  }
  console.log("dependency rule: every import is allowed");
}

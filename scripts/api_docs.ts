/**
 * The API reference, generated from the JSDoc of every module `deno.json`
 * exports: `deno doc --html` into `docs/api/` (open `docs/api/index.html`).
 * The pages are not kept in git; run this (or `npm run docs:api`) to make
 * them from the sources of the checkout, with the Deno of `node_modules`.
 *
 * ```sh
 * deno run -A scripts/api_docs.ts
 * ```
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";

const ROOT = join(import.meta.dirname ?? ".", "..");
const OUT = join(ROOT, "docs", "api");
const config = JSON.parse(readFileSync(join(ROOT, "deno.json"), "utf8")) as {
  name: string;
  version: string;
  exports: Record<string, string>;
};

rmSync(OUT, { recursive: true, force: true });
const r = spawnSync(process.execPath, [
  "doc",
  "--html",
  `--name=${config.name}@${config.version}`,
  `--output=${OUT}`,
  ...Object.values(config.exports),
], { cwd: ROOT, stdio: "inherit" });
if (r.status !== 0) process.exit(r.status ?? 1);
console.log(`Wrote ${OUT}/index.html`);

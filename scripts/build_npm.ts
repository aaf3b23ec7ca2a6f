/**
 * Build the npm package into `dist/npm/`: one esbuild ESM entry per export of
 * `deno.json` sharing chunks (one copy of the library), the `linkweave`
 * command (`cli/mod.ts`, the `bin` of `package.json`) as one executable file,
 * declarations from `tsc --emitDeclarationOnly --isolatedDeclarations`, and a
 * check that `package.json` and `deno.json` export the same subpaths.
 *
 * Usage: `deno run -A scripts/build_npm.ts`
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import { chmodSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { ROOT } from "./_files.ts";

const BIN = join(ROOT, "node_modules", ".bin");
const OUT = "dist/npm";

interface NpmExport {
  types: string;
  import: string;
}

const denoJson = JSON.parse(readFileSync(join(ROOT, "deno.json"), "utf8")) as {
  exports: Record<string, string>;
};
const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as {
  exports: Record<string, NpmExport>;
  bin?: Record<string, string>;
};

/** Where npm finds the bundle and types of a JSR export. */
function expected(source: string): NpmExport {
  const stem = source.replace(/^\.\//, "").replace(/\.ts$/, "");
  return { types: `./${OUT}/types/${stem}.d.ts`, import: `./${OUT}/${stem}.mjs` };
}

const problems: string[] = [];
for (const [key, source] of Object.entries(denoJson.exports)) {
  const want = expected(source);
  const have = pkg.exports?.[key];
  if (have === undefined) problems.push(`package.json lacks export "${key}"`);
  else if (have.types !== want.types || have.import !== want.import) {
    problems.push(`package.json export "${key}" should be ${JSON.stringify(want)}`);
  }
}
for (const key of Object.keys(pkg.exports ?? {})) {
  if (!(key in denoJson.exports)) problems.push(`deno.json lacks export "${key}"`);
}
const BIN_OUT = `${OUT}/cli/mod.mjs`;
if (pkg.bin?.linkweave !== BIN_OUT) {
  problems.push(`package.json bin "linkweave" should be "${BIN_OUT}"`);
}
if (problems.length > 0) {
  for (const p of problems) console.error(`Export maps disagree: ${p}`);
  process.exit(1);
}

function run(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { cwd: ROOT, stdio: "inherit" });
  if (r.status !== 0) {
    console.error(`Cannot build the npm package: "${cmd} ${args.join(" ")}" failed`);
    process.exit(1);
  }
}

rmSync(join(ROOT, OUT), { recursive: true, force: true });
const entries = Object.values(denoJson.exports);
run(join(BIN, "esbuild"), [
  "--bundle",
  "--format=esm",
  // One copy of shared modules (configuration, devices, error classes) for
  // every subpath: `configure()` through one applies to all, and
  // `instanceof BusinessError` holds across them.
  "--splitting",
  "--chunk-names=chunks/[name]-[hash]",
  "--platform=node",
  "--target=node20",
  "--log-level=warning",
  `--outdir=${OUT}`,
  "--outbase=.",
  "--out-extension:.js=.mjs",
  ...entries,
]);
// The command: one executable file (its shebang, and the bits it runs).
run(join(BIN, "esbuild"), [
  "--bundle",
  "--format=esm",
  "--platform=node",
  "--target=node20",
  "--log-level=warning",
  `--outfile=${BIN_OUT}`,
  "--banner:js=#!/usr/bin/env node",
  "cli/mod.ts",
]);
chmodSync(join(ROOT, BIN_OUT), 0o755);
run(join(BIN, "tsc"), [
  "--declaration",
  "--emitDeclarationOnly",
  "--isolatedDeclarations",
  "--allowImportingTsExtensions",
  "--rewriteRelativeImportExtensions",
  "--skipLibCheck",
  "--strict",
  "--target",
  "es2022",
  "--module",
  "nodenext",
  "--moduleResolution",
  "nodenext",
  "--lib",
  "es2024,dom",
  "--types",
  "node",
  "--outDir",
  `${OUT}/types`,
  ...entries,
]);
console.log(`npm package built in ${OUT}/ (${entries.length} entries and the linkweave command)`);

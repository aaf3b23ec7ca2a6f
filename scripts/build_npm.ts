/**
 * Build the npm package into `dist/npm/`: one esbuild ESM entry per export of
 * `deno.json` sharing chunks (one copy of the library), a CommonJS entry per
 * export (`require()` gets the same ES module where Node can require one,
 * Node 20.19 and later, and a clear error where it cannot), the `linkweave`
 * command (`cli/mod.ts`, the `bin` of `package.json`) as one executable file,
 * and declarations from `tsc --emitDeclarationOnly --isolatedDeclarations`.
 *
 * First it checks that `package.json` and `deno.json` describe the same
 * package: the same subpaths, each npm export pointing at the build of its
 * JSR source (`types`, `import`, `require`), the top-level `types` and `bin`,
 * the same version and license, and no install scripts or native addons.
 *
 * Usage: `deno run -A scripts/build_npm.ts [--check]` (`--check`: only the
 * check, which `npm test` runs)
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import process from "node:process";
import { ROOT } from "./_files.ts";

const BIN = join(ROOT, "node_modules", ".bin");
const OUT = "dist/npm";
const BIN_OUT = `${OUT}/bin/linkweave.mjs`;

interface NpmExport {
  types: string;
  import: string;
  require: string;
}

const denoJson = JSON.parse(readFileSync(join(ROOT, "deno.json"), "utf8")) as {
  version: string;
  license: string;
  exports: Record<string, string>;
};
const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as {
  name: string;
  version: string;
  license: string;
  types?: string;
  exports: Record<string, Partial<NpmExport>>;
  bin?: Record<string, string>;
  scripts?: Record<string, string>;
  gypfile?: boolean;
  dependencies?: Record<string, string>;
};

/** Where npm finds the bundle and types of a JSR export. */
function expected(source: string): NpmExport {
  const stem = source.replace(/^\.\//, "").replace(/\.ts$/, "");
  return {
    types: `./${OUT}/types/${stem}.d.ts`,
    import: `./${OUT}/${stem}.mjs`,
    require: `./${OUT}/${stem}.cjs`,
  };
}

/**
 * What disagrees between `deno.json` and `package.json`.
 *
 * @returns One sentence per problem; none when they agree.
 */
function disagreements(): string[] {
  const problems: string[] = [];
  for (const [key, source] of Object.entries(denoJson.exports)) {
    const want = expected(source);
    const have = pkg.exports?.[key];
    if (have === undefined) problems.push(`package.json lacks export "${key}"`);
    else if (JSON.stringify(have) !== JSON.stringify(want)) {
      problems.push(`package.json export "${key}" should be ${JSON.stringify(want)}`);
    }
  }
  for (const key of Object.keys(pkg.exports ?? {})) {
    if (!(key in denoJson.exports)) problems.push(`deno.json lacks export "${key}"`);
  }
  const root = denoJson.exports["."];
  if (root === undefined || pkg.types !== expected(root).types) {
    problems.push(`package.json "types" should be "${root && expected(root).types}"`);
  }
  if (pkg.bin?.linkweave !== BIN_OUT) {
    problems.push(`package.json bin "linkweave" should be "${BIN_OUT}"`);
  }
  if (pkg.version !== denoJson.version) {
    problems.push(
      `versions differ: "${pkg.version}" in package.json, "${denoJson.version}" in deno.json`,
    );
  }
  if (pkg.license !== denoJson.license) {
    problems.push(
      `licenses differ: "${pkg.license}" in package.json, "${denoJson.license}" in deno.json`,
    );
  }
  if (pkg.scripts?.prepack === undefined) {
    problems.push(`package.json has no "prepack" script: npm pack would ship an unbuilt package`);
  }
  for (const hook of ["preinstall", "install", "postinstall"]) {
    if (pkg.scripts?.[hook] !== undefined) {
      problems.push(`package.json has an "${hook}" script: linkweave installs nothing native`);
    }
  }
  if (pkg.gypfile === true || Object.keys(pkg.dependencies ?? {}).length > 0) {
    problems.push("package.json has dependencies or a gypfile: linkweave has neither");
  }
  return problems;
}

const problems = disagreements();
if (problems.length > 0) {
  for (const p of problems) console.error(`Export maps disagree: ${p}`);
  process.exit(1);
}
if (process.argv.includes("--check")) {
  console.log(
    `deno.json and package.json agree (${Object.keys(denoJson.exports).length} exports)`,
  );
  process.exit(0);
}

/**
 * The CommonJS entry of an export: the ES module itself where `require()`
 * can load one, else an error that says what to do.
 */
function cjsEntry(key: string, mjs: string): string {
  const spec = key === "." ? pkg.name : `${pkg.name}/${key.slice(2)}`;
  return `"use strict";
// CommonJS entry of "${spec}": linkweave is an ES module. Node 20.19 and later
// require() it as one (the same module instance import gets); older Node
// cannot, and gets an error saying what to do instead.
try {
  module.exports = require("./${mjs}");
} catch (e) {
  if (e && (e.code === "ERR_REQUIRE_ESM" || e.code === "ERR_REQUIRE_ASYNC_MODULE")) {
    throw new Error(
      'Cannot require "${spec}": it is an ES module and this runtime cannot require() one; ' +
        'use import { ... } from "${spec}" or await import("${spec}"), or Node 20.19 or later',
      { cause: e },
    );
  }
  throw e;
}
`;
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
for (const [key, source] of Object.entries(denoJson.exports)) {
  const { require: cjs, import: mjs } = expected(source);
  mkdirSync(join(ROOT, dirname(cjs)), { recursive: true });
  writeFileSync(join(ROOT, cjs), cjsEntry(key, mjs.slice(mjs.lastIndexOf("/") + 1)));
}
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
  "es2024,esnext.disposable,dom",
  "--types",
  "node",
  "--outDir",
  `${OUT}/types`,
  ...entries,
]);
console.log(`npm package built in ${OUT}/ (${entries.length} entries and the linkweave command)`);

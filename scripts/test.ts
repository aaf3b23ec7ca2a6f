/**
 * `npm test`: every check and every test on every runtime, in order, then one
 * closing line `N passed, N failed` (test cases summed over the runners; a
 * failed check counts as one failed case). Exits non-zero if anything failed.
 *
 *   1. wasm staleness (`scripts/build_wasm.ts --check`), the dependency rule
 *      (`scripts/check_deps.ts`)
 *   2. `deno check`, `deno lint`, `deno fmt --check`, `deno doc --lint` of
 *      every export, and that `deno.json` and `package.json` export the same
 *      package (`scripts/build_npm.ts --check`), and that the benchmark
 *      pages match `bench/results/` (`scripts/bench_summary.ts --check`)
 *   3. every `*_test.ts` under `deno test --doc` and under `bun test`
 *   4. the test files bundled by esbuild and run by `node --test`, with the
 *      tests of the npm package (`tests/npm/*_test.mjs`)
 *   5. `deno publish --dry-run`
 *
 * Usage: `deno run -A scripts/test.ts [--only deno|bun|node] [filter...]`
 * (a filter keeps the test files whose path contains it; checks still run
 * unless `--only` is given).
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { libraryModules, ROOT, testFiles, walk } from "./_files.ts";

const BIN = join(ROOT, "node_modules", ".bin");
const OUT = join(ROOT, ".test-results");

interface Tally {
  passed: number;
  failed: number;
  skipped: number;
  failures: string[];
}

const total: Tally = { passed: 0, failed: 0, skipped: 0, failures: [] };

function run(cmd: string, args: string[], env: Record<string, string> = {}): number {
  const r = spawnSync(cmd, args, {
    cwd: ROOT,
    stdio: "inherit",
    // No test attaches to a device daemon that happens to run for this user (docs/daemon.md).
    env: { ...process.env, NO_COLOR: "1", LINKWEAVE_DAEMON: "off", ...env },
  });
  if (r.error) console.error(`Cannot run "${cmd}": ${r.error.message}`);
  return r.status ?? 1;
}

function banner(title: string): void {
  console.log(`\n=== ${title} ${"=".repeat(Math.max(0, 70 - title.length))}`);
}

/** A check that is not a test runner: one case, passed or failed. */
function check(title: string, cmd: string, args: string[]): void {
  banner(title);
  if (run(cmd, args) === 0) {
    total.passed++;
  } else {
    total.failed++;
    total.failures.push(title);
  }
}

interface Case {
  name: string;
  file: string;
  status: "passed" | "failed" | "skipped";
}

/** Test cases of a JUnit report; groups whose steps are reported too are dropped. */
function parseJunit(xml: string): Case[] {
  const cases: Case[] = [];
  const re = /<testcase\b([^>]*?)(\/>|>([\s\S]*?)<\/testcase>)/g;
  const attr = (attrs: string, key: string) =>
    (new RegExp(`\\b${key}="([^"]*)"`).exec(attrs)?.[1] ?? "").replaceAll("&gt;", ">")
      .replaceAll("&lt;", "<").replaceAll("&quot;", '"').replaceAll("&amp;", "&");
  for (const m of xml.matchAll(re)) {
    const body = m[3] ?? "";
    const status = /<(failure|error)\b/.test(body)
      ? "failed"
      : /<skipped\b/.test(body)
      ? "skipped"
      : "passed";
    cases.push({
      name: attr(m[1], "name"),
      file: attr(m[1], "file") || attr(m[1], "classname"),
      status,
    });
  }
  // Deno reports a describe() group as a case and its steps as "group > step".
  // A failed group counts only when none of its steps failed (a hook failed).
  const groups = new Map<string, boolean>();
  for (const c of cases) {
    for (let i = c.name.indexOf(" > "); i > 0; i = c.name.indexOf(" > ", i + 3)) {
      const g = c.name.slice(0, i);
      groups.set(g, (groups.get(g) ?? false) || c.status === "failed");
    }
  }
  return cases.filter((c) =>
    !groups.has(c.name) || (c.status === "failed" && groups.get(c.name) === false)
  );
}

/** Run a test runner that writes a JUnit report, and add its cases. */
function runner(title: string, cmd: string, args: string[], junit: string): void {
  banner(title);
  rmSync(junit, { force: true });
  const status = run(cmd, args);
  const cases = existsSync(junit) ? parseJunit(readFileSync(junit, "utf8")) : [];
  const t = { passed: 0, failed: 0, skipped: 0 };
  for (const c of cases) {
    t[c.status]++;
    if (c.status === "failed") total.failures.push(`${title}: ${c.file} ${c.name}`);
  }
  if (status !== 0 && t.failed === 0) {
    t.failed = 1;
    total.failures.push(`${title}: runner exited with status ${status}`);
  }
  console.log(`${title}: ${t.passed} passed, ${t.failed} failed, ${t.skipped} skipped`);
  total.passed += t.passed;
  total.failed += t.failed;
  total.skipped += t.skipped;
}

/**
 * `node --test` with `--test-force-exit` (the seed examples leave sockets open,
 * as an app would), which cuts a JUnit file short: count from the spec
 * reporter's summary instead.
 */
function nodeRunner(files: string[]): void {
  const title = "node --test";
  banner(title);
  const r = spawnSync("node", ["--test", "--test-force-exit", "--test-reporter=spec", ...files], {
    cwd: ROOT,
    env: { ...process.env, NO_COLOR: "1" },
    encoding: "utf8",
    maxBuffer: 256 * 1024 * 1024,
  });
  const out = `${r.stdout ?? ""}${r.stderr ?? ""}`;
  process.stdout.write(out);
  const count = (key: string) => Number(new RegExp(`^ℹ ${key} (\\d+)$`, "m").exec(out)?.[1] ?? 0);
  const t = { passed: count("pass"), failed: count("fail"), skipped: count("skipped") };
  const failing = out.slice(out.indexOf("✖ failing tests:"));
  if (t.failed > 0 && out.includes("✖ failing tests:")) {
    for (const m of failing.matchAll(/^✖ (.+?) \(/gm)) total.failures.push(`${title}: ${m[1]}`);
  } else if (t.failed > 0) {
    total.failures.push(`${title}: ${t.failed} failed`);
  }
  if (r.status !== 0 && t.failed === 0) {
    t.failed = 1;
    total.failures.push(`${title}: runner exited with status ${r.status}`);
  }
  console.log(`${title}: ${t.passed} passed, ${t.failed} failed, ${t.skipped} skipped`);
  total.passed += t.passed;
  total.failed += t.failed;
  total.skipped += t.skipped;
}

const argv = process.argv.slice(2);
const onlyAt = argv.indexOf("--only");
const only = onlyAt >= 0 ? argv.splice(onlyAt, 2)[1] : undefined;
const filters = argv;
const tests = testFiles().filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)));
const deno = join(BIN, "deno");
mkdirSync(OUT, { recursive: true });

if (only === undefined) {
  check("wasm staleness", deno, ["run", "-A", "scripts/build_wasm.ts", "--check"]);
  check("dependency rule", deno, ["run", "-A", "scripts/check_deps.ts"]);
  const typed = walk(".", (p) => p.endsWith(".ts"));
  check("deno check", deno, ["check", "--quiet", ...typed]);
  check("deno lint", deno, ["lint", "--quiet"]);
  check("deno fmt --check", deno, ["fmt", "--check", "--quiet"]);
  const exported = Object.values(
    (JSON.parse(readFileSync(join(ROOT, "deno.json"), "utf8")) as { exports: object }).exports,
  ) as string[];
  check("deno doc --lint", deno, ["doc", "--lint", ...exported]);
  check("export maps", deno, ["run", "-A", "scripts/build_npm.ts", "--check"]);
  check("benchmark pages", deno, ["run", "-A", "scripts/bench_summary.ts", "--check"]);
}
if (only === undefined || only === "deno") {
  const docs = filters.length === 0 ? libraryModules() : [];
  runner("deno test", deno, [
    "test",
    "-A",
    "--quiet",
    "--doc",
    "--reporter=dot",
    `--junit-path=${join(OUT, "deno.xml")}`,
    ...docs,
    ...tests,
  ], join(OUT, "deno.xml"));
}
if (only === undefined || only === "bun") {
  runner("bun test", join(BIN, "bun"), [
    "test",
    "--timeout=120000",
    "--reporter=junit",
    `--reporter-outfile=${join(OUT, "bun.xml")}`,
    ...tests.map((f) => `./${f}`),
  ], join(OUT, "bun.xml"));
}
if (only === undefined || only === "node") {
  banner("bundle tests and npm package for node");
  const bundled = join(ROOT, "dist", "node-tests");
  rmSync(bundled, { recursive: true, force: true });
  const built = run(deno, ["run", "-A", "scripts/build_npm.ts"]) === 0 &&
    run(join(BIN, "esbuild"), [
        "--bundle",
        "--platform=node",
        "--format=esm",
        // Lowers what Node 20 cannot parse (`await using`).
        "--target=node20",
        "--log-level=warning",
        `--outdir=${bundled}`,
        "--out-extension:.js=.mjs",
        "--outbase=.",
        ...tests,
      ]) === 0;
  if (!built) {
    total.failed++;
    total.failures.push("bundle for node");
  } else {
    const npm = walk("tests/npm", (p) => p.endsWith("_test.mjs"))
      .filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)));
    const files = [...tests.map((f) => join(bundled, f.replace(/\.ts$/, ".mjs"))), ...npm];
    nodeRunner(files);
  }
}
if (only === undefined) {
  check("deno publish --dry-run", deno, ["publish", "--dry-run", "--allow-dirty", "--quiet"]);
}

console.log("");
if (total.failures.length > 0) {
  console.log("Failed:");
  for (const f of total.failures) console.log(`  - ${f}`);
}
if (total.skipped > 0) {
  console.log(`(${total.skipped} skipped; LINKWEAVE_TEST_ALL=1 forbids skips)`);
}
console.log(`${total.passed} passed, ${total.failed} failed`);
process.exit(total.failed === 0 ? 0 : 1);

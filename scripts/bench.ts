/**
 * Run one benchmark on Deno and on Bun, one after the other:
 * `deno run -A scripts/bench.ts <name>` runs `bench/<name>_bench.ts` and
 * writes `bench/results/<name>-deno.json` and `bench/results/<name>-bun.json`.
 * With `--node`, also on Node (the benchmark bundles itself when given
 * `--node`, as `bench/socket_bench.ts` and `bench/dbus_bench.ts` do).
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { ROOT } from "./_files.ts";

const name = process.argv[2];
const file = `bench/${name}_bench.ts`;
if (name === undefined || !existsSync(join(ROOT, file))) {
  console.error(`Usage: scripts/bench.ts <name>, with bench/<name>_bench.ts existing`);
  process.exit(2);
}
const BIN = join(ROOT, "node_modules", ".bin");
const withNode = process.argv.includes("--node");
const rest = process.argv.slice(3).filter((a) => a !== "--node");
let failed = false;
const runs: [string, string[]][] = [["Deno", ["deno", "run", "-A", file]], ["Bun", ["bun", file]]];
if (withNode) runs.push(["Node", ["deno", "run", "-A", file, "--node"]]);
for (const [runtime, cmd] of runs) {
  console.log(`\n### ${name} benchmark on ${runtime}`);
  const r = spawnSync(join(BIN, cmd[0]), [...cmd.slice(1), ...rest], {
    cwd: ROOT,
    stdio: "inherit",
  });
  if (r.status !== 0) failed = true;
}
process.exit(failed ? 1 : 0);

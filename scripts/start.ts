/**
 * `npm start`: the main job. Until the link layer lands it runs the framing
 * codec benchmark on Deno and on Bun and prints a readable summary of what the
 * hot path of every link costs on this machine.
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { ROOT } from "./_files.ts";

interface Row {
  name: string;
  value: number;
  unit: string;
  baseline: string;
  baselineValue: number;
  ratio: number;
  target?: { on: "ratio" | "value"; min: number };
}

console.log("linkweave: framing codec benchmark (the hot path under every link)\n");
const r = spawnSync(join(ROOT, "node_modules", ".bin", "deno"), [
  "run",
  "-A",
  "scripts/bench.ts",
  "framing",
], { cwd: ROOT, stdio: "inherit" });
if (r.status !== 0) process.exit(r.status ?? 1);

console.log("\nSummary");
for (const runtime of ["deno", "bun"]) {
  const doc = JSON.parse(
    readFileSync(join(ROOT, "bench", "results", `framing-${runtime}.json`), "utf8"),
  ) as { machine: string; rows: Row[] };
  console.log(`  ${runtime} (${doc.machine})`);
  for (const row of doc.rows.filter((x) => x.target !== undefined)) {
    const t = row.target!;
    const got = t.on === "ratio" ? row.ratio : row.value;
    const mark = got >= t.min ? "ok  " : "MISS";
    console.log(
      `    ${mark} ${row.name.padEnd(50)} ${row.value.toPrecision(4).padStart(10)} ${
        row.unit.padEnd(9)
      } (x${row.ratio.toFixed(2)} vs ${row.baseline})`,
    );
  }
}
console.log("\nResults: bench/results/framing-deno.json, bench/results/framing-bun.json");

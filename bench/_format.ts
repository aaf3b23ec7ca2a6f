/**
 * What the Markdown result tables of the benchmarks share (`_link_table.ts`,
 * `_ability_table.ts`): reading `bench/results/<bench>-<runtime>.json`,
 * formatting numbers and cells, the Deno-beside-Bun table, and writing it
 * between a page's markers, formatted.
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { meets, type Row } from "./_report.ts";

/** One results file. */
export interface ResultsDoc<R extends Row = Row> {
  /** The machine and runtime it ran on. */
  machine: string;
  /** Its rows. */
  rows: R[];
}

/**
 * Read `bench/results/<bench>-<runtime>.json`.
 *
 * @param bench The benchmark (`link`, `ability`).
 * @param runtime `deno` or `bun`.
 * @returns Its contents.
 */
export function loadResults<R extends Row = Row>(bench: string, runtime: string): ResultsDoc<R> {
  const url = new URL(`./results/${bench}-${runtime}.json`, import.meta.url);
  return JSON.parse(readFileSync(url, "utf8"));
}

/**
 * A figure for a table: thousands separated from 1000 up, else three
 * significant digits at most (`1,758`, `282`, `46.8`, `0.719`).
 *
 * @param n The figure.
 * @returns Its text.
 */
export function num(n: number): string {
  return n >= 1000
    ? Math.round(n).toLocaleString("en-US")
    : n >= 100
    ? n.toFixed(0)
    : n >= 10
    ? n.toFixed(1)
    : n.toFixed(3);
}

/**
 * A baseline's name without its runtime, so Deno's and Bun's rows match.
 *
 * @param baseline The row's baseline.
 * @returns The name for both runtimes.
 */
export function generic(baseline: string): string {
  return baseline.replace(
    /raw (Deno|Bun)\.connect/,
    "raw runtime TCP (`Deno.connect` / `Bun.connect`)",
  );
}

/**
 * A row's cell: value vs baseline, ratio, and whether it met its target.
 *
 * @param r The row, or `undefined` when that runtime did not measure it.
 * @returns The cell.
 */
export function cell(r: Row | undefined): string {
  if (r === undefined) return "(not measured)";
  const met = r.target === undefined ? "" : meets(r) ? ", met" : ", **not met**";
  return `${num(r.value)} vs ${num(r.baselineValue)} (x${r.ratio.toFixed(2)}${met})`;
}

/**
 * A row's target as text (`ratio >= 0.8`), or "" without one.
 *
 * @param r The row.
 * @returns The text.
 */
export function targetText(r: Row): string {
  const t = r.target;
  if (t === undefined) return "";
  return [
    t.min === undefined ? "" : `${t.on} >= ${t.min}`,
    t.max === undefined ? "" : `${t.on} <= ${t.max}`,
  ].filter(Boolean).join(", ");
}

/**
 * The table of Deno's rows, each beside Bun's row of the same name and baseline.
 *
 * @param deno Deno's results.
 * @param bun Bun's results.
 * @returns Its lines.
 */
export function table(deno: ResultsDoc, bun: ResultsDoc): string[] {
  const key = (r: Row) => `${r.name}|${generic(r.baseline)}`;
  const bunRows = new Map(bun.rows.map((r) => [key(r), r]));
  return [
    "| Measure | Unit | Baseline (same run) | Deno: linkweave vs baseline | Bun: linkweave vs baseline | Target |",
    "| --- | --- | --- | --- | --- | --- |",
    ...deno.rows.map((r) =>
      `| ${r.name} | ${r.unit} | ${generic(r.baseline)} | ${cell(r)} | ${
        cell(bunRows.get(key(r)))
      } | ${targetText(r)} |`
    ),
  ];
}

/**
 * Replace what stands between `<!-- bench:<name> -->` and `<!-- /bench:<name> -->`.
 *
 * @param page The page (`docs/...md`).
 * @param name The marker's name.
 * @param lines The new content.
 * @throws {Error} When the page lacks the markers.
 */
export function writeSection(page: URL, name: string, lines: string[]): void {
  const doc = readFileSync(page, "utf8");
  const start = `<!-- bench:${name} -->`;
  const end = `<!-- /bench:${name} -->`;
  const i = doc.indexOf(start);
  const j = doc.indexOf(end);
  if (i < 0 || j < i) throw new Error(`${page.pathname} lacks the ${start} ... ${end} markers`);
  writeFileSync(
    page,
    doc.slice(0, i + start.length) + "\n\n" + lines.join("\n") + "\n" + doc.slice(j),
  );
}

/**
 * Format files with `deno fmt` (`deno fmt --check` covers docs/).
 *
 * @param files The files.
 */
export function formatFiles(files: URL[]): void {
  const deno = fileURLToPath(new URL("../node_modules/.bin/deno", import.meta.url));
  spawnSync(deno, ["fmt", "--quiet", ...files.map((f) => fileURLToPath(f))], { stdio: "inherit" });
}

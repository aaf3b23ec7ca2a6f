/**
 * Shared benchmark plumbing: timing, machine description and the results file
 * `bench/results/<bench>-<runtime>.json`.
 *
 * Every figure is written beside the baseline it is compared with, measured in
 * the same run: `ratio` is value / baselineValue, or baselineValue / value for
 * lower-is-better figures, so a higher ratio is always better.
 *
 * @module
 */
import { cpus, totalmem } from "node:os";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import process from "node:process";
import { RUNTIME, type Runtime } from "../tests/harness/env.ts";

/** A target from the issue: on the ratio or on the value, with a minimum or a maximum. */
export interface Target {
  /** What the bound applies to. */
  on: "ratio" | "value";
  /** The minimum. */
  min?: number;
  /** The maximum (a value target on latency or memory). */
  max?: number;
}

/** One measured figure beside its baseline. */
export interface Row {
  /** What was measured. */
  name: string;
  /** The measured figure. */
  value: number;
  /** Its unit. */
  unit: string;
  /** What the baseline is. */
  baseline: string;
  /** The baseline figure, measured in the same run. */
  baselineValue: number;
  /** Higher is better (value / baselineValue, inverted for lower-is-better). */
  ratio: number;
  /** The issue's target, when it gives one. */
  target?: Target;
}

/** Options of {@linkcode row}. */
export interface RowOptions {
  /** Whether a lower value is better (latency, memory). @default {false} */
  lowerIsBetter?: boolean;
  /** The issue's target. */
  target?: Target;
}

/**
 * Build a row, computing its ratio.
 *
 * @param fields Name, value, unit, baseline and baselineValue.
 * @param options `lowerIsBetter` and `target`.
 * @returns The row.
 */
export function row(fields: Omit<Row, "ratio" | "target">, options: RowOptions = {}): Row {
  const ratio = options.lowerIsBetter
    ? fields.baselineValue / fields.value
    : fields.value / fields.baselineValue;
  const r: Row = { ...fields, ratio: Math.round(ratio * 1000) / 1000 };
  if (options.target !== undefined) r.target = options.target;
  return r;
}

/** Whether a row meets its target (rows without one always do). */
export function meets(r: Row): boolean {
  if (r.target === undefined) return true;
  const x = r.target.on === "ratio" ? r.ratio : r.value;
  return x >= (r.target.min ?? -Infinity) && x <= (r.target.max ?? Infinity);
}

/** A one-line description of this machine and runtime. */
export function machine(): string {
  const cpu = cpus();
  const version = RUNTIME === "deno"
    ? `Deno ${(globalThis as unknown as { Deno: { version: { deno: string } } }).Deno.version.deno}`
    : RUNTIME === "bun"
    ? `Bun ${(globalThis as unknown as { Bun: { version: string } }).Bun.version}`
    : `Node ${process.version}`;
  return `${cpu.length} x ${cpu[0]?.model.trim() ?? "unknown CPU"}, ${
    Math.round(totalmem() / 2 ** 30)
  } GiB, ${process.platform}, ${version}`;
}

/** Options of {@linkcode report}. */
export interface ReportOptions {
  /**
   * Keep the rows of the results file that this run did not measure (a run
   * of some of a benchmark's scenarios): a row with the name and baseline of
   * a measured one is replaced where it stands, new rows go at the end.
   * @default {false}
   */
  merge?: boolean;
}

/**
 * Write `bench/results/<bench>-<runtime>.json` and print a table (of the
 * rows measured).
 *
 * @param bench The benchmark name (`framing`, `socket`, `link`).
 * @param rows The measured rows.
 * @param options Whether to merge with the rows already in the file.
 * @returns The path written.
 */
export function report(bench: string, rows: Row[], options: ReportOptions = {}): string {
  const runtime: Runtime = RUNTIME;
  const dir = new URL("./results/", import.meta.url);
  mkdirSync(dir, { recursive: true });
  const path = new URL(`${bench}-${runtime}.json`, dir);
  let all = rows;
  if (options.merge && existsSync(path)) {
    const key = (r: Row) => `${r.name}\n${r.baseline}`;
    const fresh = new Map(rows.map((r) => [key(r), r]));
    const old: Row[] = JSON.parse(readFileSync(path, "utf8")).rows ?? [];
    all = old.map((r) => fresh.get(key(r)) ?? r);
    const kept = new Set(old.map(key));
    for (const r of rows) if (!kept.has(key(r))) all.push(r);
  }
  const doc = { bench, runtime, machine: machine(), rows: all };
  writeFileSync(path, JSON.stringify(doc, null, 2) + "\n");
  console.log(`\n${bench} on ${doc.machine}`);
  const fmt = (n: number) => n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(3);
  for (const r of rows) {
    const t = r.target === undefined
      ? ""
      : `  target ${r.target.on} ${
        r.target.min === undefined ? `<= ${r.target.max}` : `>= ${r.target.min}`
      }: ${meets(r) ? "met" : "NOT met"}`;
    console.log(
      `  ${r.name.padEnd(52)} ${fmt(r.value).padStart(10)} ${r.unit.padEnd(9)} vs ${
        r.baseline.padEnd(28)
      } ${fmt(r.baselineValue).padStart(10)}  x${r.ratio.toFixed(2)}${t}`,
    );
  }
  return path.pathname;
}

/**
 * Run `fn` repeatedly for about `ms` milliseconds after a warm-up and return
 * the rate of `units` per second (each call does `unitsPerCall` units).
 *
 * @param fn The work.
 * @param options `unitsPerCall`, `ms` (measuring time) and `warmupMs`.
 * @returns Units per second.
 */
export function rate(
  fn: () => void,
  options: { unitsPerCall: number; ms?: number; warmupMs?: number },
): number {
  const { unitsPerCall, ms = 1000, warmupMs = 200 } = options;
  const until = (limit: number) => {
    const start = performance.now();
    let calls = 0;
    let now = start;
    while (now - start < limit) {
      fn();
      calls++;
      if ((calls & 7) === 0) now = performance.now();
      else if (limit > 0 && calls < 8) now = performance.now();
    }
    return { calls, elapsed: performance.now() - start };
  };
  until(warmupMs);
  const { calls, elapsed } = until(ms);
  return (calls * unitsPerCall) / (elapsed / 1000);
}

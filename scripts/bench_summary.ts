/**
 * Render every `bench/results/*.json` into the documentation, so that the
 * figures a reader sees are the figures the benchmarks wrote:
 *
 * - `README.md`, between `<!-- bench:summary -->` and `<!-- /bench:summary -->`:
 *   one headline figure per benchmark, each runtime's value beside its
 *   baseline;
 * - `docs/bench-summary.svg`: the same headlines as a chart of ratios to the
 *   baseline (higher is better), under their short names;
 * - `docs/benchmarks.md`, between `<!-- bench:all -->` and `<!-- /bench:all -->`:
 *   every row of every results file.
 *
 * ```sh
 * deno run -A scripts/bench_summary.ts          # after `npm run bench:*`
 * deno run -A scripts/bench_summary.ts --check  # exits 1 when a page is stale
 * ```
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { meets, type Row } from "../bench/_report.ts";
import { type Chart, svg } from "./bench_chart.ts";

const ROOT = join(import.meta.dirname ?? ".", "..");
const RESULTS = join(ROOT, "bench", "results");
const RUNTIMES = ["deno", "bun", "node"] as const;
const LABEL: Record<string, string> = { deno: "Deno", bun: "Bun", node: "Node" };

/** A results file. */
interface Results {
  bench: string;
  runtime: string;
  machine: string;
  rows: Row[];
}

/** The headline figure of each benchmark: a row's name and its baseline. */
const HEADLINES: {
  bench: string;
  label: string;
  short: string;
  name: string;
  baseline: RegExp;
}[] = [
  {
    bench: "framing",
    label: "frame encode+decode, wasm vs TS",
    short: "framing",
    name: "encode+decode+verify 1 KiB x64, wasm/ref ratio",
    baseline: /^TS reference/,
  },
  {
    bench: "socket",
    label: "TCP 1 KiB sends vs raw socket",
    short: "TCP 1 KiB",
    name: "TCP loopback, 1 KiB sends, separate receiver",
    baseline: /^raw/,
  },
  {
    bench: "link",
    label: "linkEnhance 1 KiB sendData vs raw",
    short: "sendData 1 KiB",
    name: "1 KiB sendData, one connection",
    baseline: /^raw/,
  },
  {
    bench: "link",
    label: "100 streams vs yamux",
    short: "100 streams",
    name: "100 streams x 1 KiB messages, total",
    baseline: /yamux/,
  },
  {
    bench: "link",
    label: "p99 round trip under load vs yamux",
    short: "p99 loaded",
    name: "1 KiB round trip p99, under load: linkweave",
    baseline: /^yamux/,
  },
  {
    bench: "ability",
    label: "sendData 100 MiB vs raw socket",
    short: "100 MiB data",
    name: "sendData 100 MiB, until the peer has it",
    baseline: /^raw/,
  },
  {
    bench: "dbus",
    label: "D-Bus call vs dbus-next",
    short: "D-Bus call",
    name: "D-Bus round trip, GetId to the bus (default: runtime socket)",
    baseline: /^dbus-next/,
  },
];

function load(): Results[] {
  return readdirSync(RESULTS).filter((f) => f.endsWith(".json")).sort().map((f) =>
    JSON.parse(readFileSync(join(RESULTS, f), "utf8")) as Results
  );
}

function num(n: number): string {
  const a = Math.abs(n);
  if (a >= 10_000) return Math.round(n).toLocaleString("en-US");
  if (a >= 100) return n.toFixed(0);
  if (a >= 10) return n.toFixed(1);
  return n.toFixed(2);
}

function target(r: Row): string {
  if (r.target === undefined) return "";
  const t = r.target;
  const bound = t.min !== undefined ? `>= ${num(t.min)}` : `<= ${num(t.max!)}`;
  return `${t.on} ${bound}: ${meets(r) ? "met" : "not met"}`;
}

const cell = (s: string) => s.replaceAll("|", "\\|");

/** The README's table of headline figures. */
export function summary(all: Results[]): string {
  const lines = [
    "| figure | runtime | linkweave | baseline | ratio | target |",
    "| --- | --- | --- | --- | --- | --- |",
  ];
  for (const h of HEADLINES) {
    for (const rt of RUNTIMES) {
      const row = all.find((r) => r.bench === h.bench && r.runtime === rt)?.rows
        .find((r) => r.name === h.name && h.baseline.test(r.baseline));
      if (row === undefined) continue;
      lines.push(
        `| ${cell(h.label)} | ${LABEL[rt]} | ${num(row.value)} ${row.unit} | ${
          num(row.baselineValue)
        } ${row.unit} (${cell(row.baseline)}) | x${num(row.ratio)} | ${target(row)} |`,
      );
    }
  }
  return lines.join("\n");
}

/** The headline chart: ratios to the baseline per runtime. */
export function chart(all: Results[]): Chart {
  const c: Chart = { groups: [], systems: [], bars: new Map(), unit: "x its baseline" };
  for (const h of HEADLINES) {
    for (const rt of RUNTIMES) {
      const row = all.find((r) => r.bench === h.bench && r.runtime === rt)?.rows
        .find((r) => r.name === h.name && h.baseline.test(r.baseline));
      if (row === undefined) continue;
      if (!c.groups.includes(h.short)) c.groups.push(h.short);
      if (!c.systems.includes(LABEL[rt])) c.systems.push(LABEL[rt]);
      const g = c.bars.get(h.short) ?? new Map();
      g.set(LABEL[rt], { value: row.ratio });
      c.bars.set(h.short, g);
    }
  }
  c.systems.sort((a, b) => Object.values(LABEL).indexOf(a) - Object.values(LABEL).indexOf(b));
  return c;
}

/** docs/benchmarks.md's tables: every row, one table per benchmark. */
export function everything(all: Results[]): string {
  const out: string[] = [];
  for (const bench of [...new Set(all.map((r) => r.bench))]) {
    out.push(`### ${bench}`, "");
    for (const r of all.filter((x) => x.bench === bench)) {
      out.push(`- ${LABEL[r.runtime]}: ${r.machine}`);
    }
    out.push(
      "",
      "| figure | runtime | value | baseline | ratio | target |",
      "| --- | --- | --- | --- | --- | --- |",
    );
    for (const r of all.filter((x) => x.bench === bench)) {
      for (const row of r.rows) {
        out.push(
          `| ${cell(row.name)} | ${LABEL[r.runtime]} | ${num(row.value)} ${row.unit} | ${
            num(row.baselineValue)
          } (${cell(row.baseline)}) | x${num(row.ratio)} | ${target(row)} |`,
        );
      }
    }
    out.push("");
  }
  return out.join("\n").trimEnd();
}

function between(text: string, marker: string, body: string): string {
  const open = `<!-- ${marker} -->`;
  const close = `<!-- /${marker} -->`;
  const a = text.indexOf(open);
  const b = text.indexOf(close);
  if (a < 0 || b < a) throw new Error(`Cannot find the markers "${open}" and "${close}"`);
  return `${text.slice(0, a + open.length)}\n\n${body}\n\n${text.slice(b)}`;
}

/** Write the pages into `dir` (the repository, or a copy to compare) and format them. */
function render(dir: string): string[] {
  const all = load();
  const files = [
    [
      "README.md",
      between(readFileSync(join(ROOT, "README.md"), "utf8"), "bench:summary", summary(all)),
    ],
    [
      "benchmarks.md",
      between(
        readFileSync(join(ROOT, "docs", "benchmarks.md"), "utf8"),
        "bench:all",
        everything(all),
      ),
    ],
    ["bench-summary.svg", svg(chart(all), "linkweave beside its baselines (higher is better)")],
  ];
  const paths = files.map(([name, text]) => {
    const path = name === "README.md" || dir !== ROOT ? join(dir, name) : join(dir, "docs", name);
    writeFileSync(path, text);
    return path;
  });
  const fmt = spawnSync(
    process.execPath,
    ["fmt", "--quiet", "--config", join(ROOT, "deno.json"), ...paths],
    { stdio: "inherit" },
  );
  if (fmt.status !== 0) throw new Error("Cannot format the pages: deno fmt failed");
  return paths;
}

if (import.meta.main) {
  if (process.argv.includes("--check")) {
    const tmp = mkdtempSync(join(tmpdir(), "linkweave-bench-summary-"));
    try {
      const made = render(tmp);
      const real = [
        join(ROOT, "README.md"),
        join(ROOT, "docs", "benchmarks.md"),
        join(ROOT, "docs", "bench-summary.svg"),
      ];
      const stale = real.filter((p, i) =>
        readFileSync(p, "utf8") !== readFileSync(made[i], "utf8")
      );
      if (stale.length > 0) {
        console.error(
          `Stale benchmark pages: ${stale.join(", ")}; run deno run -A scripts/bench_summary.ts`,
        );
        process.exit(1);
      }
      console.log("Benchmark pages match bench/results/");
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  } else {
    console.log(`Wrote ${render(ROOT).join(", ")}`);
  }
}

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
 *   every row of every results file, each benchmark with its chart
 *   `docs/bench-<bench>.svg` (every row's ratio to its baseline per runtime).
 *
 * ```sh
 * deno run -A scripts/bench_summary.ts          # after `npm run bench:*`
 * deno run -A scripts/bench_summary.ts --check  # exits 1 when a page is stale
 * ```
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
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

const COLORS: Record<string, string> = { deno: "#8c8c8c", bun: "#4c78a8", node: "#f58518" };

const esc = (t: string): string =>
  t.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");

/**
 * One benchmark's rows as horizontal bars of the ratio to each row's
 * baseline, on a logarithmic axis with the baseline (x1) marked: one group
 * per row, one bar per runtime, the target drawn where it is on the ratio.
 */
export function ratioChart(bench: string, all: Results[]): string {
  const files = RUNTIMES.map((rt) => all.find((r) => r.bench === bench && r.runtime === rt))
    .filter((r): r is Results => r !== undefined);
  // Rows match across runtimes by name and by their place among rows of that name.
  const groups: { label: string; bars: [string, Row][] }[] = [];
  for (const f of files) {
    const seen = new Map<string, number>();
    for (const row of f.rows) {
      const n = seen.get(row.name) ?? 0;
      seen.set(row.name, n + 1);
      const key = `${row.name}#${n}`;
      let g = groups.find((x) => x.label === key);
      if (g === undefined) groups.push(g = { label: key, bars: [] });
      g.bars.push([f.runtime, row]);
    }
  }
  const ratios = groups.flatMap((g) => g.bars.map(([, r]) => r.ratio)).filter((x) => x > 0);
  const lo = Math.floor(Math.log2(Math.min(0.5, ...ratios)));
  const hi = Math.ceil(Math.log2(Math.max(2, ...ratios)));
  const width = 900;
  const left = 430;
  const right = 20;
  const bar = 9;
  const top = 50;
  const heights = groups.map((g) => 30 + g.bars.length * bar);
  const height = top + heights.reduce((a, b) => a + b, 0) + 40;
  const x = (ratio: number) =>
    left + ((Math.log2(Math.max(ratio, 2 ** lo)) - lo) / (hi - lo)) * (width - left - right);
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    `<text x="10" y="20" font-size="14" font-weight="bold">${
      esc(`${bench}: each figure as a multiple of its baseline (higher is better, log scale)`)
    }</text>`,
  ];
  files.forEach((f, i) => {
    out.push(
      `<rect x="${10 + i * 90}" y="30" width="10" height="10" fill="${COLORS[f.runtime]}"/>`,
      `<text x="${24 + i * 90}" y="39">${LABEL[f.runtime]}</text>`,
    );
  });
  for (let e = lo; e <= hi; e++) {
    const xx = x(2 ** e).toFixed(1);
    out.push(
      `<line x1="${xx}" x2="${xx}" y1="${top}" y2="${height - 30}" stroke="${
        e === 0 ? "#000" : "#e0e0e0"
      }"/>`,
      `<text x="${xx}" y="${height - 16}" text-anchor="middle">x${num(2 ** e)}</text>`,
    );
  }
  let y = top;
  groups.forEach((g, gi) => {
    const name = g.label.slice(0, g.label.lastIndexOf("#"));
    const clip = (t: string, n: number) => (t.length > n ? `${t.slice(0, n - 1)}…` : t);
    out.push(
      `<text x="10" y="${y + 12}">${esc(clip(name, 72))}</text>`,
      `<text x="10" y="${y + 24}" fill="#555" font-size="10">${
        esc(clip(`vs ${[...new Set(g.bars.map(([, r]) => r.baseline))].join(" / ")}`, 84))
      }</text>`,
    );
    g.bars.forEach(([rt, r], i) => {
      const by = y + 4 + i * bar;
      const [a, b] = [x(1), x(r.ratio)].sort((p, q) => p - q);
      out.push(
        `<rect x="${a.toFixed(1)}" y="${by}" width="${Math.max(0.5, b - a).toFixed(1)}" height="${
          bar - 1
        }" fill="${COLORS[rt]}"><title>${
          esc(`${name}, ${LABEL[rt]}: x${num(r.ratio)}`)
        }</title></rect>`,
      );
      if (r.target?.on === "ratio" && r.target.min !== undefined) {
        const tx = x(r.target.min).toFixed(1);
        out.push(
          `<line x1="${tx}" x2="${tx}" y1="${by - 1}" y2="${
            by + bar
          }" stroke="#d62728" stroke-width="2"/>`,
        );
      }
    });
    y += heights[gi];
  });
  out.push(
    `<text x="10" y="${
      height - 4
    }" font-size="10" fill="#555">black line: the baseline (x1); red ticks: the target on the ratio, where one is set</text>`,
    "</svg>",
  );
  return out.join("\n") + "\n";
}

/** docs/benchmarks.md's tables: every row, one table per benchmark. */
export function everything(all: Results[]): string {
  const out: string[] = [];
  for (const bench of [...new Set(all.map((r) => r.bench))]) {
    out.push(`### ${bench}`, "", `![${bench} beside its baselines](bench-${bench}.svg)`, "");
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
    ...[...new Set(all.map((r) => r.bench))].map((b) => [`bench-${b}.svg`, ratioChart(b, all)]),
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
      const real = made.map((p) =>
        basename(p) === "README.md" ? join(ROOT, "README.md") : join(ROOT, "docs", basename(p))
      );
      const stale = real.filter((p, i) =>
        !existsSync(p) || readFileSync(p, "utf8") !== readFileSync(made[i], "utf8")
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

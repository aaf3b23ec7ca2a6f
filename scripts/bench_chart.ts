/**
 * Draw a benchmark's results as a grouped SVG bar chart, and print them as a
 * Markdown table: one group per topology (the part of a row's name before
 * `": "`), one bar per system (the rest of the name, and each row's
 * baseline), the median with a whisker from the slowest to the fastest
 * repetition where the row keeps `range` / `baselineRange`.
 *
 * ```sh
 * deno run -A scripts/bench_chart.ts bench/results/multipath-deno.json docs/multichannel-throughput.svg
 * deno run -A scripts/bench_chart.ts bench/results/multipath-deno.json --table   # Markdown to stdout
 * ```
 *
 * Options: `--unit Mbit/s` (the rows drawn; the default), `--title TEXT`. Run
 * on Deno, it formats the SVG with `deno fmt` (which formats SVG too).
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import process from "node:process";

/** A bench row as the results file keeps it. */
interface ResultRow {
  name: string;
  value: number;
  unit: string;
  baseline: string;
  baselineValue: number;
  range?: [number, number];
  baselineRange?: [number, number];
}

/** One bar: a system's figure in one group. */
export interface Bar {
  /** The median. */
  value: number;
  /** The slowest and fastest repetition, when known. */
  range?: [number, number];
}

/** The figures of a results file, by group and system. */
export interface Chart {
  /** Groups (topologies), in order of first appearance. */
  groups: string[];
  /** Systems, in order of first appearance (each row's baseline before its value). */
  systems: string[];
  /** `bars.get(group)?.get(system)`. */
  bars: Map<string, Map<string, Bar>>;
  /** The unit. */
  unit: string;
}

/**
 * Collect the bars of the rows in `unit`.
 *
 * @param rows The rows of a results file.
 * @param unit The unit to keep.
 * @returns The chart's data.
 */
export function collect(rows: ResultRow[], unit: string): Chart {
  const chart: Chart = { groups: [], systems: [], bars: new Map(), unit };
  const put = (group: string, system: string, bar: Bar) => {
    if (!chart.groups.includes(group)) chart.groups.push(group);
    if (!chart.systems.includes(system)) chart.systems.push(system);
    const g = chart.bars.get(group) ?? new Map<string, Bar>();
    chart.bars.set(group, g);
    if (!g.has(system)) g.set(system, bar);
  };
  for (const r of rows) {
    const at = r.name.indexOf(": ");
    if (r.unit !== unit || at < 0) continue;
    const group = r.name.slice(0, at);
    put(group, r.baseline, { value: r.baselineValue, range: r.baselineRange });
    put(group, r.name.slice(at + 2), { value: r.value, range: r.range });
  }
  return chart;
}

const COLORS = ["#8c8c8c", "#4c78a8", "#f58518", "#54a24b", "#b279a2", "#e45756"];

function escape(text: string): string {
  return text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");
}

function niceStep(max: number): number {
  const raw = max / 5;
  const p = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((m) => m * p).find((s) => s >= raw)!;
}

/**
 * Render the chart as SVG.
 *
 * @param chart The data.
 * @param title The title.
 * @returns The SVG document.
 */
export function svg(chart: Chart, title: string): string {
  const width = 760;
  const legendRows = chart.systems.length;
  const top = 40 + legendRows * 18;
  const plot = 260;
  const height = top + plot + 50;
  const left = 56;
  const right = 16;
  const all = [...chart.bars.values()].flatMap((g) =>
    [...g.values()].map((b) => Math.max(b.value, b.range?.[1] ?? 0))
  );
  const step = niceStep(Math.max(1e-9, ...all));
  const ymax = Math.ceil(Math.max(...all, step) / step) * step;
  const y = (v: number) => top + plot - (v / ymax) * plot;
  const groupWidth = (width - left - right) / Math.max(1, chart.groups.length);
  const barWidth = Math.min(48, (groupWidth - 24) / Math.max(1, chart.systems.length));
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    `<text x="${left}" y="22" font-size="15" font-weight="bold">${escape(title)}</text>`,
  ];
  chart.systems.forEach((s, i) => {
    const ly = 36 + i * 18;
    out.push(
      `<rect x="${left}" y="${ly}" width="12" height="12" fill="${COLORS[i % COLORS.length]}"/>`,
      `<text x="${left + 18}" y="${ly + 10}">${escape(s)}</text>`,
    );
  });
  for (let v = 0; v <= ymax + 1e-9; v += step) {
    const yy = y(v).toFixed(1);
    out.push(
      `<line x1="${left}" x2="${width - right}" y1="${yy}" y2="${yy}" stroke="#e0e0e0"/>`,
      `<text x="${left - 6}" y="${yy}" dy="4" text-anchor="end">${Number(v.toFixed(6))}</text>`,
    );
  }
  out.push(
    `<text x="14" y="${top + plot / 2}" transform="rotate(-90 14 ${
      top + plot / 2
    })" text-anchor="middle">${escape(chart.unit)}</text>`,
  );
  chart.groups.forEach((g, gi) => {
    const bars = chart.bars.get(g)!;
    const present = chart.systems.filter((s) => bars.has(s));
    const x0 = left + gi * groupWidth + (groupWidth - present.length * barWidth) / 2;
    present.forEach((s, i) => {
      const b = bars.get(s)!;
      const color = COLORS[chart.systems.indexOf(s) % COLORS.length];
      const x = x0 + i * barWidth;
      const h = top + plot - y(b.value);
      out.push(
        `<rect x="${(x + 2).toFixed(1)}" y="${y(b.value).toFixed(1)}" width="${
          (barWidth - 4).toFixed(1)
        }" height="${h.toFixed(1)}" fill="${color}"><title>${escape(`${g}: ${s}`)} ${
          b.value.toFixed(2)
        }</title></rect>`,
      );
      if (b.range !== undefined) {
        const cx = (x + barWidth / 2).toFixed(1);
        out.push(
          `<line x1="${cx}" x2="${cx}" y1="${y(b.range[0]).toFixed(1)}" y2="${
            y(b.range[1]).toFixed(1)
          }" stroke="#000"/>`,
        );
      }
      out.push(
        `<text x="${(x + barWidth / 2).toFixed(1)}" y="${
          (y(b.range?.[1] ?? b.value) - 4).toFixed(1)
        }" text-anchor="middle" font-size="10">${
          b.value >= 100 ? b.value.toFixed(0) : b.value.toFixed(1)
        }</text>`,
      );
    });
    out.push(
      `<text x="${(left + gi * groupWidth + groupWidth / 2).toFixed(1)}" y="${
        top + plot + 20
      }" text-anchor="middle">${escape(g)}</text>`,
    );
  });
  out.push(
    `<text x="${left}" y="${
      height - 8
    }" font-size="10" fill="#555">bars: medians; whiskers: slowest to fastest repetition</text>`,
    "</svg>",
  );
  return out.join("\n") + "\n";
}

/**
 * Render the chart as a Markdown table, one line per group.
 *
 * @param chart The data.
 * @returns The table.
 */
export function table(chart: Chart): string {
  const num = (n: number) => (n >= 100 ? n.toFixed(0) : n.toFixed(2));
  const lines = [
    `| ${chart.unit} | ${chart.systems.join(" | ")} |`,
    `| --- |${" --- |".repeat(chart.systems.length)}`,
  ];
  for (const g of chart.groups) {
    const cells = chart.systems.map((s) => {
      const b = chart.bars.get(g)!.get(s);
      if (b === undefined) return "";
      return b.range === undefined
        ? num(b.value)
        : `${num(b.value)} (${num(b.range[0])}-${num(b.range[1])})`;
    });
    lines.push(`| ${g} | ${cells.join(" | ")} |`);
  }
  return lines.join("\n") + "\n";
}

function option(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

const isMain = (import.meta as { main?: boolean }).main ??
  /(^|\/)bench_chart\.(ts|mjs|js)$/.test(process.argv[1] ?? "");
if (isMain) {
  const args = process.argv.slice(2);
  const [input, output] = args.filter((a, i) =>
    !a.startsWith("--") && !args[i - 1]?.startsWith("--")
  );
  if (input === undefined || (output === undefined && !args.includes("--table"))) {
    console.error(
      "Usage: bench_chart.ts RESULTS.json OUT.svg [--unit Mbit/s] [--title TEXT] [--table]",
    );
    process.exit(2);
  }
  const doc = JSON.parse(readFileSync(input, "utf8")) as {
    bench: string;
    machine: string;
    rows: ResultRow[];
  };
  const chart = collect(doc.rows, option(args, "--unit") ?? "Mbit/s");
  if (chart.groups.length === 0) {
    console.error(`Cannot draw "${input}": no row in ${chart.unit} named "<group>: <system>"`);
    process.exit(1);
  }
  if (args.includes("--table")) process.stdout.write(table(chart));
  if (output !== undefined) {
    const title = option(args, "--title") ?? `${doc.bench}: ${chart.unit} (${doc.machine})`;
    writeFileSync(output, svg(chart, title));
    // The repository's formatter also formats SVG: leave the file as `deno fmt --check` wants it.
    if ("Deno" in globalThis) spawnSync(process.execPath, ["fmt", "--quiet", output]);
  }
}

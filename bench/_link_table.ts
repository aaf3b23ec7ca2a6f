/**
 * Render `bench/results/link-deno.json` and `link-bun.json` as the Markdown
 * table in `docs/link-enhance.md` (between its `bench:link` markers), and
 * row 3's round trips under load (linkweave, raw TCP, yamux; p50 and p99 on
 * Deno and Bun) as the chart `docs/link-latency-under-load.svg`:
 * `deno run -A bench/_link_table.ts` after `npm run bench:link`.
 *
 * @module
 */
import { writeFileSync } from "node:fs";
import type { Row } from "./_report.ts";
import { formatFiles, loadResults, type ResultsDoc, table, writeSection } from "./_format.ts";
import { collect, svg } from "../scripts/bench_chart.ts";

type Doc = ResultsDoc<Row & { range?: [number, number]; baselineRange?: [number, number] }>;

const denoDoc: Doc = loadResults("link", "deno");
const bun: Doc = loadResults("link", "bun");

const lines = [
  ...table(denoDoc, bun),
  "",
  `Deno: ${denoDoc.machine}. Bun: ${bun.machine}. Ratios are "higher is better"`,
  "(baseline / value for latency and memory); each figure is the median of 3 runs.",
  "",
  "- Two processes on loopback: the benchmark sends, a child of the same runtime receives.",
  "  The machine has 2 vCPUs but two busy processes together get about one core, so a",
  "  rate here is bounded by the CPU both ends spend per message.",
  "- 100 connections: each keeps its 1 MiB send queue full (send until 32390300, then",
  "  wait for `drain`); MB/s and Jain's index are over the payload bytes each connection",
  "  delivered in a 1.5 s window after 0.5 s of warm-up. yamux: 100 streams on one",
  "  `node:net` connection (`bench/_yamux.ts`), each paced by its `drain` event.",
  "- Under load: linkweave's echo connection shares the link with a saturating connection;",
  "  the raw ping shares the processes with a second raw TCP connection doing 1 KiB writes",
  "  (a turn of the event loop every 16 writes); yamux's round trips use a second stream of",
  "  a session whose first stream saturates it (paced by `drain`). Round trips are timed",
  "  for 1 s idle and 2 s under load. Today's code is the link at e4a0b5a (before the",
  "  in-flight budget), sender and receiver, in the same run; its bulk row is the payload",
  "  rate the saturating connection carried while the round trips ran.",
  "- Memory: fresh processes, after two of V8's memory-reducing collections, both ends;",
  "  RSS and the JavaScript heap in use, per further idle connection: the growth from 1000",
  "  to 4000 connections over 3000. The first 1000 cost more RSS each (last row): the",
  "  runtime keeps allocator arenas and heap pages that the first burst of opening grew, a",
  "  one-time cost that every kind pays (yamux too) and that the JS heap figure does not",
  "  show. A raw Deno socket keeps a pending read into a 64 KiB buffer (as linkweave's own",
  "  adapter and `conn.readable` do), which dominates its figure; Bun's sockets need none.",
  "- Encryption: every row runs with the default security (`account`: authenticated and",
  "  encrypted links) except the plaintext baselines of the encrypted rows, which use a",
  '  second pair of devices with `security: "none"` (a receiver process of its own),',
  "  alternating with the encrypted runs. The first connection of a fresh device is timed",
  "  from its start to the connection's `connectResult`: TCP connect, handshake and open,",
  "  40 devices each way.",
  "",
];
const out = new URL("../docs/link-enhance.md", import.meta.url);
writeSection(out, "link", lines);

// The chart: round trips under load, in ms.
const ms = (xs: [number, number] | undefined) => xs?.map((x) => x / 1000) as [number, number];
const chartRows = [];
for (const [runtime, doc] of [["Deno", denoDoc], ["Bun", bun]] as const) {
  for (const q of [50, 99]) {
    for (const r of doc.rows) {
      if (r.name !== `1 KiB round trip p${q}, under load: linkweave`) continue;
      const system = r.baseline.startsWith("raw")
        ? "raw TCP, load on a separate connection"
        : r.baseline.startsWith("yamux")
        ? "yamux, load on another stream"
        : undefined;
      if (system === undefined) continue;
      chartRows.push({
        name: `${runtime} p${q}: linkweave, load on another connection`,
        unit: "ms",
        value: r.value / 1000,
        range: ms(r.range),
        baseline: system,
        baselineValue: r.baselineValue / 1000,
        baselineRange: ms(r.baselineRange),
      });
    }
  }
}
const chartOut = new URL("../docs/link-latency-under-load.svg", import.meta.url);
writeFileSync(
  chartOut,
  svg(
    collect(chartRows, "ms"),
    "1 KiB round trip while a bulk transfer runs (ms, lower is better)",
  ),
);

formatFiles([out, chartOut]);
console.log(out.pathname);
console.log(chartOut.pathname);

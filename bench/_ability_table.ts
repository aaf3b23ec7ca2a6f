/**
 * Render `bench/results/ability-deno.json` and `ability-bun.json` as the Markdown
 * table in `docs/ability-connection.md` (between its `bench:ability` markers):
 * `deno run -A bench/_ability_table.ts` after `npm run bench:ability`.
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { meets, type Row } from "./_report.ts";

interface Doc {
  machine: string;
  rows: Row[];
}

const load = (runtime: string): Doc =>
  JSON.parse(readFileSync(new URL(`./results/ability-${runtime}.json`, import.meta.url), "utf8"));

const num = (n: number): string =>
  n >= 1000
    ? Math.round(n).toLocaleString("en-US")
    : n >= 100
    ? n.toFixed(0)
    : n >= 10
    ? n.toFixed(1)
    : n.toFixed(3);

const generic = (baseline: string): string =>
  baseline.replace(/raw (Deno|Bun)\.connect/, "raw runtime TCP (`Deno.connect` / `Bun.connect`)");

const denoDoc = load("deno");
const bun = load("bun");
const cell = (r: Row | undefined): string =>
  r === undefined
    ? "(not measured)"
    : `${num(r.value)} vs ${num(r.baselineValue)} (x${r.ratio.toFixed(2)}${
      r.target === undefined ? "" : meets(r) ? ", met" : ", **not met**"
    })`;
const key = (r: Row) => `${r.name}|${generic(r.baseline)}`;
const bunRows = new Map(bun.rows.map((r) => [key(r), r]));

const lines = [
  "| Measure | Unit | Baseline (same run) | Deno: linkweave vs baseline | Bun: linkweave vs baseline | Target |",
  "| --- | --- | --- | --- | --- | --- |",
  ...denoDoc.rows.map((r) => {
    const t = r.target === undefined ? "" : `${r.target.on} >= ${r.target.min}`;
    return `| ${r.name} | ${r.unit} | ${generic(r.baseline)} | ${cell(r)} | ${
      cell(bunRows.get(key(r)))
    } | ${t} |`;
  }),
  "",
  `Deno: ${denoDoc.machine}. Bun: ${bun.machine}. Ratios are "higher is better"`,
  "(baseline / value for latency and memory); each figure is the median of 3 runs.",
  "",
  "- Two processes on loopback: the benchmark is device A (the caller), a child of the same",
  "  runtime is device B (its ability accepts), with the default security (links",
  "  authenticated and encrypted, the per-user account). The machine has 2 vCPUs, shared",
  "  with other work while these ran (load average about 5); figures vary by tens of",
  "  percent between runs.",
  "- sendData: from the call until its promise resolves (device B acknowledged the last",
  "  piece); raw: the same 100 MiB written to a TCP socket in 256 KiB writes until the",
  "  receiver acknowledges the byte count. The context row sends the same bytes on a bare",
  "  stream of the same link (the driver's `Port`, no session layer): the link under the",
  "  sessions carries well under 0.8x of raw TCP by itself, so the target cannot be met by",
  "  the session layer alone; the receiver's one 100 MiB allocation (zeroed, then faulted in",
  "  page by page) and its copy of each piece are most of what the sessions add. On a busy",
  "  machine the rows vary a lot between runs (the Bun context row even fell below the",
  "  session row in one run).",
  "- Image: the photo-like test image of `tests/ability/_images.ts`, JPEG at quality 30;",
  "  its time includes encoding, sending, decoding and the acknowledgement.",
  "- Stream: 150 frames of 2000 bytes at 30 fps and 1 Mbit/s per run; latency from",
  "  `writeFrame` (its timestamp) to the sink's `frame` event, on the same machine's clock.",
  "",
];
const out = new URL("../docs/ability-connection.md", import.meta.url);
const doc = readFileSync(out, "utf8");
const start = "<!-- bench:ability -->";
const end = "<!-- /bench:ability -->";
const i = doc.indexOf(start);
const j = doc.indexOf(end);
if (i < 0 || j < i) {
  throw new Error(`docs/ability-connection.md lacks the ${start} ... ${end} markers`);
}
writeFileSync(
  out,
  doc.slice(0, i + start.length) + "\n\n" + lines.join("\n") + "\n" + doc.slice(j),
);
// `deno fmt --check` covers docs/: write it formatted.
const deno = fileURLToPath(new URL("../node_modules/.bin/deno", import.meta.url));
spawnSync(deno, ["fmt", "--quiet", fileURLToPath(out)], { stdio: "inherit" });
console.log(out.pathname);

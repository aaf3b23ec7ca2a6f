/**
 * Render `bench/results/ability-deno.json` and `ability-bun.json` as the Markdown
 * table in `docs/ability-connection.md` (between its `bench:ability` markers):
 * `deno run -A bench/_ability_table.ts` after `npm run bench:ability`.
 *
 * @module
 */
import { formatFiles, loadResults, table, writeSection } from "./_format.ts";

const denoDoc = loadResults("ability", "deno");
const bun = loadResults("ability", "bun");

const lines = [
  ...table(denoDoc, bun),
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
writeSection(out, "ability", lines);
formatFiles([out]);
console.log(out.pathname);

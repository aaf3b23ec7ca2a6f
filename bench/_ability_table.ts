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
  "  with other work while these ran (load average 7 to 11); figures vary by tens of",
  "  percent between runs, so read each row against the context rows of the same run.",
  "- sendData: from the call until its promise resolves (device B acknowledged the last",
  "  piece); raw: the same 100 MiB written to a TCP socket in 256 KiB writes until the",
  "  receiver acknowledges the byte count. Context rows, alternated with it in each",
  "  repetition: the same bytes on a bare stream of the same link (the driver's `Port`, no",
  "  session layer), and the same again with the receiver copying every message into one",
  "  fresh 100 MiB buffer, as a session's receiver must to deliver one `ArrayBuffer`.",
  "  sendData runs at about the bare stream's rate (0.9x to 1.25x of it in four runs per",
  "  runtime); the link itself (encryption, framing, one copy per message on each side) is",
  "  what stays far from 0.8x of raw TCP. The",
  "  session wire of version 2 sends each piece's bytes as the caller's own buffer (no copy",
  "  behind a header), which was a quarter of the sender's CPU on Bun.",
  "- sendMessage: the context rows echo 64 bytes on a bare stream of the same link; the",
  "  session layer adds 5 to 55 us to its round trip p50 (decoding, the event's",
  "  microtask, the API's checks), the rest is the link's.",
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

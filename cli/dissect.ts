/**
 * `linkweave dissect`: OpenHarmony's BLE protocol in a capture, one JSON line
 * per message (`diagnostics.ts`, `docs/openharmony-ble.md`).
 *
 * @module
 */
import { readFile } from "node:fs/promises";
import { dissect, type DissectOptions } from "../diagnostics.ts";
import type { Command, Io } from "./mod.ts";

const HELP = `Usage: linkweave dissect [options] [FILE|-]

Reads a btmon capture (\`btmon -w FILE\`, btsnoop format) or text lines
\`[client|server] <characteristic> <hex>\` (characteristic 2B00, 2B01, net, conn or
the full UUID; \`#\` starts a comment) from FILE, or standard input when FILE is
\`-\` or missing. Reassembles each sender's values as OpenHarmony does and prints
one JSON line per message:
  {"char":"2B01","decoded":{...},"from":"client","frame":12,"conn":64}
and one per value OpenHarmony would drop:
  {"result":"rejected","layer":"BleTransHeader","reason":"..."}

Options:
  --mtu N              the ATT MTU (23..65535) where the capture does not show
                       the exchange
  --handles NET,CONN   value handles of 2B00 and 2B01 (decimal or 0x..) where the
                       capture started after the GATT discovery
  --json               JSON lines (the default and only format)
  -h, --help           this text

Exit codes: 0 done (whatever the capture holds), 1 the input could not be read,
2 wrong usage.
`;

function handle(text: string): number | undefined {
  const n = /^0x[0-9a-f]{1,4}$/i.test(text)
    ? parseInt(text, 16)
    : /^\d{1,5}$/.test(text)
    ? Number(text)
    : NaN;
  return Number.isInteger(n) && n > 0 && n <= 0xffff ? n : undefined;
}

async function run(args: string[], io: Io): Promise<number> {
  const options: DissectOptions = {};
  let file: string | undefined;
  const bad = (message: string) => {
    io.stderr(`linkweave dissect: ${message} (see linkweave dissect --help)\n`);
    return 2;
  };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--json") continue;
    if (a === "--mtu") {
      const v = args[++i];
      const mtu = v !== undefined && /^\d+$/.test(v) ? Number(v) : NaN;
      if (!(mtu >= 23 && mtu <= 65535)) {
        return bad(`--mtu "${v ?? ""}" is not an ATT MTU (23..65535)`);
      }
      options.mtu = mtu;
    } else if (a === "--handles") {
      const v = args[++i] ?? "";
      const [net, conn] = v.split(",").map(handle);
      if (net === undefined || conn === undefined || v.split(",").length !== 2) {
        return bad(`--handles "${v}" is not two handles NET,CONN`);
      }
      options.handles = { net, conn };
    } else if (a.startsWith("-") && a !== "-") {
      return bad(`unknown option "${a}"`);
    } else if (file === undefined) {
      file = a;
    } else {
      return bad(`one input only ("${file}", then "${a}")`);
    }
  }
  let input: Uint8Array;
  try {
    input = file === undefined || file === "-" ? await io.stdin() : await readFile(file);
  } catch (e) {
    io.stderr(`linkweave dissect: cannot read "${file}": ${(e as Error).message}\n`);
    return 1;
  }
  let out = "";
  for (const record of dissect(input, options)) {
    out += `${JSON.stringify(record)}\n`;
    if (out.length > 64 * 1024) {
      io.stdout(out);
      out = "";
    }
  }
  io.stdout(out);
  return 0;
}

/** The `dissect` command. */
export const dissectCommand: Command = {
  name: "dissect",
  summary: "decode OpenHarmony's BLE protocol in a btmon capture or hex lines, as JSON lines",
  help: HELP,
  run,
};

/**
 * The `linkweave` command: a table of commands, each with its name, a
 * one-line summary, its `--help` text and what it runs (`docs/cli.md`).
 * Commands use the public modules and `diagnostics.ts` only; data goes to
 * stdout (JSON lines with `--json`), messages and progress to stderr.
 *
 * Exit codes: `0` done; `1` the command failed (an input it could not read,
 * an operation that failed, a check that failed); `2` wrong usage (an
 * unknown command or option, a bad value). A command signals wrong usage by
 * throwing a {@linkcode UsageError}; any other error it throws is printed
 * and exits 1.
 *
 * Run it as `linkweave` (npm `bin`), `deno run -A cli/mod.ts` (`deno task
 * linkweave`) or `bun cli/mod.ts`.
 *
 * @example The command table, run with an argument list
 * ```ts
 * import assert from "node:assert/strict";
 * const out: string[] = [];
 * const io = { ...defaultIo(), stdout: (s: string) => out.push(s), stderr: () => {} };
 * assert.equal(await main(["dissect", "--help"], io), 0);
 * assert.match(out.join(""), /linkweave dissect/);
 * assert.equal(await main(["nosuch"], io), 2);
 * ```
 *
 * @module
 */
import { realpathSync } from "node:fs";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { accountCommand } from "./account.ts";
import { benchCommand } from "./bench.ts";
import { connectCommand } from "./connect.ts";
import { daemonCommand } from "./daemon.ts";
import { devicesCommand } from "./devices.ts";
import { dissectCommand } from "./dissect.ts";
import { doctorCommand } from "./doctor.ts";
import { monitorCommand } from "./monitor.ts";
import { pairCommand } from "./pair.ts";
import { receiveCommand } from "./receive.ts";
import { sendCommand } from "./send.ts";
import { serveCommand } from "./serve.ts";
import { UsageError } from "./_args.ts";

export { UsageError } from "./_args.ts";

/** Where a command reads and writes. */
export interface Io {
  /** Write to standard output (text, or bytes as they are). */
  stdout(text: string | Uint8Array): void;
  /** Write to standard error. */
  stderr(text: string): void;
  /** Read all of standard input. */
  stdin(): Promise<Uint8Array>;
  /** Standard input as it arrives (ends at end of input). */
  input(): AsyncIterable<Uint8Array>;
  /** Whether standard error is a terminal (progress bars and redrawn views). */
  readonly tty: boolean;
  /** The terminal's width in columns (80 when unknown). */
  readonly columns: number;
}

/** One command of the table. */
export interface Command {
  /** Its name (`linkweave <name>`). */
  name: string;
  /** One line for the command list. */
  summary: string;
  /** The `--help` text. */
  help: string;
  /**
   * Run it.
   *
   * @param args The arguments after the command's name.
   * @param io Where it reads and writes.
   * @returns The exit code.
   */
  run(args: string[], io: Io): Promise<number>;
}

/** The exit codes. */
export const Exit = {
  /** Done. */
  OK: 0,
  /** The command failed. */
  FAILED: 1,
  /** Wrong usage. */
  USAGE: 2,
} as const;

/** Every command, in the order `linkweave --help` lists them. */
export const COMMANDS: readonly Command[] = [
  devicesCommand,
  serveCommand,
  connectCommand,
  sendCommand,
  receiveCommand,
  benchCommand,
  monitorCommand,
  doctorCommand,
  accountCommand,
  pairCommand,
  daemonCommand,
  dissectCommand,
];

/**
 * The process's own streams.
 *
 * @returns Stdout, stderr and stdin.
 */
export function defaultIo(): Io {
  return {
    stdout: (text) => void process.stdout.write(text),
    stderr: (text) => void process.stderr.write(text),
    input: () => process.stdin as AsyncIterable<Uint8Array>,
    get tty() {
      return process.stderr.isTTY === true;
    },
    get columns() {
      return process.stderr.columns > 0 ? process.stderr.columns : 80;
    },
    stdin: async () => {
      const chunks: Uint8Array[] = [];
      for await (const chunk of process.stdin) chunks.push(chunk as Uint8Array);
      const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
      let at = 0;
      for (const c of chunks) {
        out.set(c, at);
        at += c.length;
      }
      return out;
    },
  };
}

function usage(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    "Usage: linkweave <command> [options]",
    "",
    "Commands:",
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    "",
    "`linkweave <command> --help` tells more. Exit codes: 0 done, 1 failed, 2 wrong usage.",
    "",
  ].join("\n");
}

/**
 * Run the command line.
 *
 * @param argv The arguments (without the program).
 * @param io Where commands read and write. @default {defaultIo()}
 * @returns The exit code.
 */
export async function main(argv: string[], io: Io = defaultIo()): Promise<number> {
  const [name, ...args] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    (name === undefined ? io.stderr : io.stdout)(usage());
    return name === undefined ? Exit.USAGE : Exit.OK;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (command === undefined) {
    io.stderr(`linkweave: unknown command "${name}"\n\n${usage()}`);
    return Exit.USAGE;
  }
  if (args.includes("--help") || args.includes("-h")) {
    io.stdout(command.help);
    return Exit.OK;
  }
  try {
    return await command.run(args, io);
  } catch (e) {
    if (e instanceof UsageError) {
      io.stderr(`linkweave ${name}: ${e.message} (see linkweave ${name} --help)\n`);
      return Exit.USAGE;
    }
    io.stderr(`linkweave ${name}: ${(e as Error).message}\n`);
    return Exit.FAILED;
  }
}

/** Whether this module is the program being run (Node 20 has no `import.meta.main`). */
function isMain(): boolean {
  const meta = import.meta as ImportMeta & { main?: boolean };
  if (meta.main !== undefined) return meta.main;
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isMain()) {
  const code = await main(process.argv.slice(2));
  // Standard input or a closed device's last timers may still hold the
  // event loop: leave once what was written is flushed.
  await new Promise<void>((resolve) => process.stdout.write("", () => resolve()));
  await new Promise<void>((resolve) => process.stderr.write("", () => resolve()));
  process.exit(code);
}

/**
 * `linkweave receive NAME DIR`: receive files from `linkweave send` (the
 * protocol: `_transfer.ts`, `docs/cli.md`).
 *
 * @module
 */
import {
  closeSync,
  existsSync,
  openSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import type { Connection } from "../link_enhance.ts";
import { intOption, parseArgs, positionals, UsageError } from "./_args.ts";
import { startBenchServer } from "./bench.ts";
import { DEVICE_HELP, DEVICE_OPTIONS, explainCode, onInterrupt, startDevice } from "./_device.ts";
import { formatBytes, formatRate, Progress } from "./_progress.ts";
import { meters } from "./_snapshot.ts";
import {
  ACK_EVERY,
  decodeHeader,
  Digest,
  type FileHeader,
  reply,
  WRITE_BATCH,
} from "./_transfer.ts";
import type { Command, Io } from "./mod.ts";

const HELP = `Usage: linkweave receive [options] NAME DIR

Starts the linkEnhance server NAME and writes each file a peer sends with
\`linkweave send THIS-DEVICE NAME FILE\` into the directory DIR, under the
name the sender gives (a plain name: no directories). The content is written
to a hidden partial file first and renamed only when its size and SHA-256
match the sender's header; a damaged, short or refused transfer leaves
nothing behind, and both sides say why. Several senders may send at once.
Runs until interrupted (or --once).

The device also answers \`linkweave bench\` (server "linkweave.bench").

Progress per file goes to standard error; one JSON line per file to standard
output:
  {"ok":true,"file":"DIR/photo.jpg","name":"photo.jpg","size":N,"sha256":"...","from":"ID","ms":N,"rate":N}
  {"ok":false,"name":"photo.jpg","from":"ID","error":"SHA-256 mismatch: ..."}

Options:
  --once            exit after the first transfer (its outcome is the exit code)
  --overwrite       replace a file that exists (else the transfer is refused)
  --max-size BYTES  refuse files larger than this (default: no limit but the disk)
  --json            JSON lines on standard output (the default and only format)
  --no-bench        do not answer linkweave bench
${DEVICE_HELP}
Exit codes: 0 stopped (with --once: the file arrived intact), 1 the device or
the server could not start, or with --once the transfer failed, 2 wrong usage.
`;

/** How long the receiver waits for the sender to close after its last answer (ms). */
const LAST_WORD_MS = 2000;

/** One transfer in progress. */
class Incoming {
  #conn: Connection;
  #io: Io;
  #dir: string;
  #options: { overwrite: boolean; maxSize: number };
  #onDone: (ok: boolean) => void;
  #peer: string;
  #header: FileHeader | undefined;
  #part: string | undefined;
  #fd: number | undefined;
  #digest = new Digest();
  #got = 0;
  #acked = 0;
  #batch: Uint8Array[] = [];
  #batched = 0;
  #progress: Progress | undefined;
  #t0 = performance.now();
  #over = false;
  #peerGone: (() => void) | undefined;
  #meter;

  constructor(
    conn: Connection,
    io: Io,
    init: { dir: string; overwrite: boolean; maxSize: number; name: string },
    onDone: (ok: boolean) => void,
  ) {
    this.#conn = conn;
    this.#io = io;
    this.#dir = init.dir;
    this.#options = init;
    this.#onDone = onDone;
    this.#peer = conn.getPeerDeviceId();
    this.#meter = meters.open(conn, {
      peer: this.#peer,
      name: init.name,
      role: "server",
      use: "receive",
    });
    conn.on("dataReceived", (d) => this.#data(new Uint8Array(d)));
    conn.on("disconnected", (reason) => {
      this.#meter.closed = true;
      this.#peerGone?.();
      if (this.#over) return;
      const h = this.#header;
      this.#fail(
        h === undefined
          ? `the sender went away before its header: ${explainCode(reason)}`
          : `short transfer: ${this.#got} of ${h.size} bytes arrived, then ${
            explainCode(reason, { peer: this.#peer })
          }`,
        false,
      );
    });
  }

  /** Stop (interrupted): remove the partial file. */
  abort(): void {
    if (!this.#over) this.#fail("interrupted", true);
  }

  #data(bytes: Uint8Array): void {
    if (this.#over) return;
    this.#meter.received += bytes.length;
    if (this.#header === undefined) return this.#start(bytes);
    const h = this.#header;
    if (this.#got + bytes.length > h.size) {
      return this.#fail(`more bytes than the ${h.size} the header announced`, true);
    }
    this.#got += bytes.length;
    this.#digest.update(bytes);
    this.#batch.push(bytes);
    this.#batched += bytes.length;
    if (this.#batched >= WRITE_BATCH) this.#flush();
    if (this.#got - this.#acked >= ACK_EVERY) {
      this.#flush();
      this.#acked = this.#got;
      this.#send({ got: this.#got });
    }
    this.#progress?.update(this.#got);
    if (this.#got === h.size) this.#finish();
  }

  #start(bytes: Uint8Array): void {
    const h = decodeHeader(bytes);
    if ("error" in h) return this.#fail(h.error, true);
    this.#header = h;
    if (h.size > this.#options.maxSize) {
      return this.#fail(
        `${h.size} bytes is over this receiver's limit of ${this.#options.maxSize}`,
        true,
      );
    }
    const target = join(this.#dir, h.name);
    if (!this.#options.overwrite && existsSync(target)) {
      return this.#fail(`"${h.name}" exists on the receiver (it may pass --overwrite)`, true);
    }
    this.#part = join(this.#dir, `.${h.name}.${Math.random().toString(36).slice(2, 10)}.part`);
    try {
      this.#fd = openSync(this.#part, "wx", 0o600);
    } catch (e) {
      this.#part = undefined;
      return this.#fail(`the receiver cannot write: ${(e as Error).message}`, true);
    }
    this.#io.stderr(`linkweave receive: ${h.name} (${formatBytes(h.size)}) from ${this.#peer}\n`);
    this.#progress = new Progress(this.#io, { label: `receive ${h.name}`, total: h.size });
    if (h.size === 0) this.#finish();
  }

  #flush(): void {
    if (this.#fd === undefined) return;
    for (const b of this.#batch) {
      for (let at = 0; at < b.length;) at += writeSync(this.#fd, b, at, b.length - at);
    }
    this.#batch = [];
    this.#batched = 0;
  }

  #finish(): void {
    const h = this.#header!;
    const sha256 = this.#digest.hex();
    try {
      this.#flush();
      closeSync(this.#fd!);
      this.#fd = undefined;
    } catch (e) {
      return this.#fail(`the receiver cannot write: ${(e as Error).message}`, true);
    }
    if (sha256 !== h.sha256) {
      return this.#fail(
        `SHA-256 mismatch: the content is ${sha256}, the header said ${h.sha256}`,
        true,
      );
    }
    const file = join(this.#dir, h.name);
    if (!this.#options.overwrite && existsSync(file)) {
      return this.#fail(`"${h.name}" appeared on the receiver meanwhile`, true);
    }
    renameSync(this.#part!, file);
    this.#part = undefined;
    this.#over = true;
    this.#progress?.finish(h.size);
    const ms = performance.now() - this.#t0;
    this.#send({ ok: true, got: this.#got, sha256 });
    const hungUp = this.#hangUp();
    this.#meter.closed = true;
    this.#io.stdout(`${
      JSON.stringify({
        ok: true,
        file,
        name: h.name,
        size: h.size,
        sha256,
        from: this.#peer,
        ms: Math.round(ms),
        rate: Math.round(h.size / Math.max(1e-3, ms / 1000)),
      })
    }\n`);
    this.#io.stderr(
      `linkweave receive: ${h.name} arrived intact (${formatRate(h.size / (ms / 1000))})\n`,
    );
    void hungUp.then(() => this.#onDone(true));
  }

  #fail(error: string, tell: boolean): void {
    this.#over = true;
    this.#progress?.finish(this.#got);
    if (this.#fd !== undefined) {
      try {
        closeSync(this.#fd);
      } catch { /* gone already */ }
      this.#fd = undefined;
    }
    if (this.#part !== undefined) {
      try {
        unlinkSync(this.#part);
      } catch { /* gone already */ }
      this.#part = undefined;
    }
    let hungUp = Promise.resolve();
    if (tell) {
      this.#send({ ok: false, error });
      hungUp = this.#hangUp();
    }
    this.#meter.closed = true;
    const name = this.#header?.name;
    this.#io.stdout(`${JSON.stringify({ ok: false, name, from: this.#peer, error })}\n`);
    this.#io.stderr(
      `linkweave receive: ${name ?? "a transfer"} from ${this.#peer} failed: ${error}\n`,
    );
    void hungUp.then(() => this.#onDone(false));
  }

  /**
   * Close once the sender had the last word: it closes when it has read it
   * (then `disconnected` comes), or after {@linkcode LAST_WORD_MS}. Closing
   * at once could let a process that exits next (`--once`) cut the link
   * before the answer left.
   */
  #hangUp(): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#peerGone = undefined;
        this.#conn.close();
        resolve();
      };
      const timer = setTimeout(done, LAST_WORD_MS);
      this.#peerGone = done;
    });
  }

  #send(obj: Record<string, unknown>): void {
    try {
      const data = reply(obj);
      this.#conn.sendData(data);
      this.#meter.sent += data.byteLength;
    } catch {
      // The sender went away: its side says so.
    }
  }
}

async function run(args: string[], io: Io): Promise<number> {
  const p = parseArgs(args, {
    ...DEVICE_OPTIONS,
    once: {},
    overwrite: {},
    "max-size": { value: true },
    json: {},
    "no-bench": {},
  });
  const [name, dir] = positionals(p, ["NAME", "DIR"]) as [string, string];
  const maxSize = intOption(p, "max-size", {
    min: 0,
    max: Number.MAX_SAFE_INTEGER,
    default: Number.MAX_SAFE_INTEGER,
  });
  try {
    if (!statSync(dir).isDirectory()) throw new Error("not a directory");
  } catch (e) {
    throw new UsageError(`DIR "${dir}" is not a directory (${(e as Error).message})`);
  }
  const { device } = await startDevice(p, io, "receive");
  let stop!: (code: number) => void;
  const stopped = new Promise<number>((resolve) => stop = resolve);
  const running = new Set<Incoming>();
  let server;
  try {
    server = device.createServer(name);
    server.on("connectionAccepted", (conn) => {
      const t = new Incoming(
        conn,
        io,
        { dir, name, overwrite: p.flags.has("overwrite"), maxSize },
        (ok) => {
          running.delete(t);
          if (p.flags.has("once")) stop(ok ? 0 : 1);
        },
      );
      running.add(t);
    });
    server.on("serverStopped", (reason) => {
      io.stderr(`linkweave receive: server "${name}" stopped: ${explainCode(reason, { name })}\n`);
      stop(1);
    });
    server.start();
  } catch (e) {
    await device.close();
    const code = (e as { code?: number }).code;
    if (code === 32390206) throw new UsageError((e as Error).message);
    throw new Error(`Cannot start server "${name}": ${explainCode(code ?? 0, { name })}`);
  }
  const bench = p.flags.has("no-bench") ? undefined : startBenchServer(device, io);
  io.stderr(`linkweave receive: receiving files on "${name}" into ${dir}\n`);
  const undo = onInterrupt(() => stop(0));
  const code = await stopped;
  undo();
  for (const t of running) t.abort();
  server.close();
  bench?.close();
  await device.close();
  return code;
}

/** The `receive` command. */
export const receiveCommand: Command = {
  name: "receive",
  summary: "receive files from `linkweave send` into a directory, checked by size and SHA-256",
  help: HELP,
  run,
};

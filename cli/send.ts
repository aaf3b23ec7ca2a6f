/**
 * `linkweave send DEVICE NAME FILE`: send a file to a peer running
 * `linkweave receive NAME DIR` (the protocol: `_transfer.ts`, `docs/cli.md`).
 *
 * @module
 */
import { open, stat } from "node:fs/promises";
import { basename } from "node:path";
import { MAX_SEND_DATA } from "../link_enhance.ts";
import { parseArgs, positionals, secondsOption, UsageError } from "./_args.ts";
import {
  connectTo,
  DEVICE_HELP,
  DEVICE_OPTIONS,
  explainCode,
  sendPaced,
  startDevice,
} from "./_device.ts";
import { formatBytes, formatRate, Progress } from "./_progress.ts";
import { meters } from "./_snapshot.ts";
import { badName, Digest, encodeHeader, TRANSFER_VERSION } from "./_transfer.ts";
import type { Command, Io } from "./mod.ts";

const HELP = `Usage: linkweave send [options] DEVICE NAME FILE

Sends FILE to the device DEVICE, whose \`linkweave receive NAME DIR\` writes it
into DIR under FILE's base name. The content goes in 1024-byte linkEnhance
messages behind a header with its size and SHA-256; the receiver checks both
and keeps the file only when they match, then says so: this command exits 0
only then.

Progress (bytes the receiver confirmed, rate, time left) goes to standard
error: a bar on a terminal, a plain line every second otherwise. At the end
one line on standard output:
  sent photo.jpg (4.19 MB) to 02:00:00:00:00:0A in 0.41 s, 10.2 MB/s, sha256 3a7b...
or with --json:
  {"ok":true,"file":"photo.jpg","size":N,"sha256":"...","to":"ID","ms":N,"rate":N}

Options:
  --timeout S    give up when the receiver says nothing for S seconds while
                 bytes are outstanding (1..3600, default 30)
  --json         the result as a JSON line
${DEVICE_HELP}
Exit codes: 0 the receiver has the file intact, 1 the connect failed (the code
explained), FILE cannot be read, the receiver refused it or found it damaged
or short, or went away, 2 wrong usage.
`;

/** What the receiver said. */
interface Word {
  got?: number;
  ok?: boolean;
  error?: string;
  sha256?: string;
}

async function run(args: string[], io: Io): Promise<number> {
  const p = parseArgs(args, { ...DEVICE_OPTIONS, timeout: { value: true }, json: {} });
  const [peer, name, file] = positionals(p, ["DEVICE", "NAME", "FILE"]) as string[];
  const timeout = secondsOption(p, "timeout", { min: 1, max: 3600, default: 30 });
  const base = basename(file);
  const why = badName(base);
  if (why !== undefined) throw new UsageError(why);
  let size: number;
  try {
    const s = await stat(file);
    if (!s.isFile()) throw new Error("not a regular file");
    size = s.size;
  } catch (e) {
    throw new Error(`Cannot read "${file}": ${(e as Error).message}`);
  }
  // First pass: the SHA-256 for the header.
  const digest = new Digest();
  const buf = new Uint8Array(64 * 1024);
  const fh = await open(file, "r").catch((e) => {
    throw new Error(`Cannot read "${file}": ${(e as Error).message}`);
  });
  try {
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      digest.update(buf.subarray(0, bytesRead));
    }
  } finally {
    await fh.close();
  }
  const sha256 = digest.hex();

  const { device } = await startDevice(p, io, "send");
  try {
    const conn = await connectTo(device, { peer, name });
    const id = conn.getPeerDeviceId();
    const meter = meters.open(conn, { peer: id, name, role: "client", use: "send" });
    const progress = new Progress(io, { label: `send ${base}`, total: size });
    let confirmed = 0;
    let heard = performance.now();
    let settle!: (w: Word) => void;
    let settled = false;
    const final = new Promise<Word>((resolve) =>
      settle = (w) => {
        settled = true;
        resolve(w);
      }
    );
    conn.on("dataReceived", (data) => {
      meter.received += data.byteLength;
      heard = performance.now();
      let w: Word;
      try {
        w = JSON.parse(new TextDecoder().decode(data));
      } catch {
        settle({ ok: false, error: "the receiver answered with something else than JSON" });
        return;
      }
      if (typeof w.got === "number") {
        confirmed = w.got;
        progress.update(confirmed);
      }
      if (w.ok !== undefined) settle(w);
    });
    conn.on("disconnected", (reason) => {
      meter.closed = true;
      settle({
        ok: false,
        error: `the receiver went away after confirming ${confirmed} of ${size} bytes: ${
          explainCode(reason, { peer: id, name })
        }`,
      });
    });
    const silence = setInterval(() => {
      if (performance.now() - heard > timeout) {
        settle({ ok: false, error: `the receiver said nothing for ${timeout / 1000} s` });
      }
    }, 250);
    const t0 = performance.now();
    let failed: string | undefined;
    const sending = (async () => {
      await sendPaced(
        conn,
        encodeHeader({
          linkweave: "file",
          v: TRANSFER_VERSION,
          name: base,
          size,
          sha256,
        }),
      );
      const f = await open(file, "r");
      try {
        let sent = 0;
        // The receiver's last word (a refusal, a failure) ends the sending.
        while (sent < size && !settled) {
          const { bytesRead } = await f.read(buf, 0, Math.min(buf.length, size - sent), null);
          if (bytesRead === 0) throw new Error(`"${file}" got shorter while it was sent`);
          for (let at = 0; at < bytesRead; at += MAX_SEND_DATA) {
            const piece = buf.subarray(at, Math.min(bytesRead, at + MAX_SEND_DATA));
            await sendPaced(conn, piece);
            meter.sent += piece.length;
            // Room in the send queue means bytes are moving: that counts as heard.
            heard = performance.now();
          }
          sent += bytesRead;
        }
      } finally {
        await f.close();
      }
    })().catch((e) => {
      failed = (e as Error).message;
      settle({ ok: false, error: failed });
    });
    const word = await final;
    clearInterval(silence);
    await sending;
    const ms = performance.now() - t0;
    meter.closed = true;
    conn.close();
    if (word.ok !== true) {
      progress.finish(confirmed);
      io.stderr(`linkweave send: ${base} was not delivered: ${word.error ?? "no reason given"}\n`);
      return 1;
    }
    progress.finish(size);
    if (word.sha256 !== undefined && word.sha256 !== sha256) {
      io.stderr(`linkweave send: the receiver kept a file with another SHA-256 (${word.sha256})\n`);
      return 1;
    }
    const rate = size / (ms / 1000);
    io.stdout(
      p.flags.has("json")
        ? `${
          JSON.stringify({
            ok: true,
            file: base,
            size,
            sha256,
            to: id,
            ms: Math.round(ms),
            rate: Math.round(rate),
          })
        }\n`
        : `sent ${base} (${formatBytes(size)}) to ${id} in ${(ms / 1000).toFixed(2)} s, ${
          formatRate(rate)
        }, sha256 ${sha256}\n`,
    );
    return 0;
  } finally {
    await device.close();
  }
}

/** The `send` command. */
export const sendCommand: Command = {
  name: "send",
  summary: "send a file to a peer's `linkweave receive`, checked by size and SHA-256",
  help: HELP,
  run,
};

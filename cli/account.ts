/**
 * `linkweave account`: where the account secret comes from, its
 * fingerprint, and making a new secret file (`docs/security.md`).
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { randomBytes } from "node:crypto";
import { chmodSync, closeSync, mkdirSync, openSync, writeSync } from "node:fs";
import { dirname, resolve } from "node:path";
import process from "node:process";
import { accountStatus } from "../diagnostics.ts";
import { parseArgs, positionals, UsageError } from "./_args.ts";
import type { Command, Io } from "./mod.ts";

const HELP = `Usage: linkweave account [show] [--json]
       linkweave account create FILE [--json]

Devices that share an account secret trust each other (docs/security.md).
A device takes its secret from LINKWEAVE_ACCOUNT (the secret itself), else
LINKWEAVE_ACCOUNT_FILE (a file holding it), else a per-user secret in the
state directory, created on first use, which keeps the device on loopback.

show     (the default) says where this shell's devices take the secret from,
         and its fingerprint: two devices share the account exactly when
         their fingerprints match. The secret is never printed.
           source       LINKWEAVE_ACCOUNT_FILE
           file         /etc/linkweave/account (mode 0600)
           fingerprint  3e54:3d0d:ede4:9a44
create   writes a new random secret (32 bytes, base64) to FILE, which must not
         exist, readable by you only (mode 0600; missing folders are made
         with mode 0700), and prints its fingerprint. Copy FILE to every
         device of the account (scp -p keeps the mode), and set
         LINKWEAVE_ACCOUNT_FILE=FILE there.

Options:
  --json       {"source","file","mode","exists","fingerprint"} for show,
               {"file","fingerprint"} for create

Exit codes: 0 done, 1 the secret cannot be read (show: LINKWEAVE_ACCOUNT_FILE
missing or empty) or FILE exists or cannot be written (create), 2 wrong usage.
`;

function run(args: string[], io: Io): number {
  const p = parseArgs(args, { json: {} });
  const [verb = "show", ...rest] = p.positionals;
  const json = p.flags.has("json");
  if (verb === "show") {
    positionals({ ...p, positionals: rest }, []);
    const a = accountStatus(process.env);
    if (json) {
      io.stdout(
        `${JSON.stringify({ ...a, mode: a.mode === undefined ? undefined : octal(a.mode) })}\n`,
      );
    } else {
      const rows: [string, string][] = [["source", a.source]];
      if (a.file !== undefined) {
        rows.push([
          "file",
          `${a.file}${a.mode === undefined ? "" : ` (mode ${octal(a.mode)})`}${
            a.exists ? "" : a.source === "per-user" ? " (not created yet)" : " (missing)"
          }`,
        ]);
      }
      if (a.fingerprint !== undefined) rows.push(["fingerprint", a.fingerprint]);
      if (a.error !== undefined) rows.push(["error", a.error]);
      io.stdout(rows.map(([k, v]) => `${k.padEnd(11)}  ${v}\n`).join(""));
    }
    if (a.source === "LINKWEAVE_ACCOUNT_FILE" && !a.exists) {
      io.stderr(
        `linkweave account: LINKWEAVE_ACCOUNT_FILE="${a.file}" cannot be used: ${
          a.error ?? "missing or empty"
        } (linkweave account create ${a.file})\n`,
      );
      return 1;
    }
    if (a.mode !== undefined && (a.mode & 0o077) !== 0) {
      io.stderr(`linkweave account: ${a.file} is open to others: chmod 600 ${a.file}\n`);
    }
    return 0;
  }
  if (verb === "create") {
    const [file] = positionals({ ...p, positionals: rest }, ["FILE"]) as [string];
    const path = resolve(file);
    const secret = `${Buffer.from(randomBytes(32)).toString("base64")}\n`;
    let fd: number;
    try {
      mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
      fd = openSync(path, "wx", 0o600);
    } catch (e) {
      const code = (e as { code?: string }).code;
      throw new Error(
        code === "EEXIST"
          ? `Cannot create "${file}": it exists (it may be the account of other devices; ` +
            "remove it first to make a new one)"
          : `Cannot create "${file}": ${(e as Error).message}`,
      );
    }
    try {
      // The mode given to open is masked by the umask; this one is not.
      chmodSync(path, 0o600);
      writeSync(fd, secret);
    } finally {
      closeSync(fd);
    }
    const { fingerprint } = accountStatus({ LINKWEAVE_ACCOUNT_FILE: path });
    if (json) {
      io.stdout(`${JSON.stringify({ file: path, fingerprint })}\n`);
    } else {
      io.stdout(`file         ${path} (mode 0600)\nfingerprint  ${fingerprint}\n`);
    }
    io.stderr(
      `linkweave account: copy ${path} to each device of the account (scp -p keeps its mode) ` +
        `and set LINKWEAVE_ACCOUNT_FILE=${path} there\n`,
    );
    return 0;
  }
  throw new UsageError(`unknown action "${verb}" (show or create)`);
}

function octal(mode: number): string {
  return `0${(mode & 0o777).toString(8)}`;
}

/** The `account` command. */
export const accountCommand: Command = {
  name: "account",
  summary: "show where the account secret comes from and its fingerprint; create a secret file",
  help: HELP,
  run: (args, io) => Promise.resolve().then(() => run(args, io)),
};

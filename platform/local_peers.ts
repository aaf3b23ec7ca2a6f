/**
 * The local registry: how devices of one user on one machine find each
 * other with no configuration, whatever address they listen on. Each
 * running device writes one record (`core/discovery/local_record.ts`) into
 * the per-user runtime directory and removes it when it closes; lookups
 * read the directory, skip records of dead processes (and delete them), of
 * other network namespaces, and this device's own.
 *
 * The directory is `$XDG_RUNTIME_DIR/linkweave/peers` when
 * `XDG_RUNTIME_DIR` is set (an absolute path), else
 * `<tmpdir>/linkweave-<uid>/peers`. Both linkweave folders are created with
 * mode 0700 and must be directories (not links) owned by this user with no
 * access for others, or the registry refuses to run; records are written
 * with mode 0600. So only the same user's processes read or write it.
 *
 * Works on Deno, Bun and Node (`node:fs`). Reads are synchronous and small
 * (at most {@linkcode MAX_LOCAL_RECORDS} files of at most 1 KiB each), done
 * when a dial needs an address.
 *
 * @module
 */
import {
  chmodSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { isAbsolute, join } from "node:path";
import process from "node:process";
import {
  decodeLocalRecord,
  encodeLocalRecord,
  type LocalRecord,
  localRecordName,
  MAX_LOCAL_RECORD_SIZE,
  usableRecords,
} from "../core/discovery/local_record.ts";
import type { DeviceDirectory, KnownDevice } from "../core/discovery/finder.ts";
import { isAlive, networkNamespace, selfStamp } from "./_process.ts";

/** The most record files one lookup reads. */
export const MAX_LOCAL_RECORDS = 256;

const RECORD_FILE = /^\d+-[0-9a-f]{16}\.json$/;

/**
 * The per-user runtime directory of linkweave: `$XDG_RUNTIME_DIR/linkweave`,
 * or `<tmpdir>/linkweave-<uid>` when `XDG_RUNTIME_DIR` is unset, empty or
 * relative.
 *
 * @param env The environment (`XDG_RUNTIME_DIR`). @default {process.env}
 * @returns The directory (it may not exist yet).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.equal(runtimeDirectory({ XDG_RUNTIME_DIR: "/run/user/1000" }), "/run/user/1000/linkweave");
 * ```
 */
export function runtimeDirectory(env: Record<string, string | undefined> = process.env): string {
  const xdg = env.XDG_RUNTIME_DIR;
  if (xdg !== undefined && xdg !== "" && isAbsolute(xdg)) return join(xdg, "linkweave");
  const uid = typeof process.getuid === "function" ? process.getuid() : "user";
  return join(tmpdir(), `linkweave-${uid}`);
}

/**
 * Make a private directory (mode 0700) or check that an existing one is
 * private: a directory, not a link, owned by this user, no access for others.
 *
 * @param dir The directory.
 * @throws {Error} Naming the directory and what is wrong with it.
 */
export function privateDirectory(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = lstatSync(dir);
  const uid = typeof process.getuid === "function" ? process.getuid() : undefined;
  if (!st.isDirectory()) throw new Error(`"${dir}" is not a directory`);
  if (uid !== undefined && st.uid !== uid) {
    throw new Error(`"${dir}" belongs to user ${st.uid}, not to this user (${uid})`);
  }
  if ((st.mode & 0o077) !== 0) chmodSync(dir, 0o700);
}

/** Options of {@linkcode openLocalPeers}. */
export interface LocalPeersOptions {
  /** This device: its id, nonce, TCP port and the address to dial it at from this machine. */
  self: { deviceId: string; nonce: string; port: number; host: string };
  /** The registry directory. @default {join(runtimeDirectory(env), "peers")} */
  dir?: string;
  /** The environment. @default {process.env} */
  env?: Record<string, string | undefined>;
  /** The host's monotonic clock, for `lastSeen`. @default {performance.now} */
  now?: () => number;
  /** Another live process registered this device's id (called once per runtime). */
  onClash?(record: LocalRecord): void;
}

/** The registry of one running device: its own record, and the others'. */
export interface LocalPeers extends DeviceDirectory {
  /** The directory. */
  readonly dir: string;
  /** This device's record file. */
  readonly file: string;
  /**
   * The live records of other devices this one may use, by id.
   *
   * @returns The records.
   */
  records(): Map<string, LocalRecord>;
}

/**
 * Register this device and open the registry.
 *
 * @param options This device, the directory and the callbacks.
 * @returns The registry; `close()` removes the record.
 * @throws {Error} When the directory is not private or not writable (the
 *   message names it).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { mkdtemp, rm } from "node:fs/promises";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 * const dir = await mkdtemp(join(tmpdir(), "lw-local-"));
 * try {
 *   const a = await openLocalPeers({ dir, self: { deviceId: "02:00:00:00:00:0A", nonce: "000000000000000a", port: 4001, host: "127.0.0.1" } });
 *   const b = await openLocalPeers({ dir, self: { deviceId: "02:00:00:00:00:0B", nonce: "000000000000000b", port: 4002, host: "127.0.0.1" } });
 *   assert.equal(a.find("02:00:00:00:00:0B")?.addresses[0].port, 4002);
 *   await b.close();
 *   assert.equal(a.find("02:00:00:00:00:0B"), undefined);
 *   await a.close();
 * } finally {
 *   await rm(dir, { recursive: true, force: true });
 * }
 * ```
 */
export function openLocalPeers(options: LocalPeersOptions): Promise<LocalPeers> {
  try {
    return Promise.resolve(open(options));
  } catch (e) {
    return Promise.reject(e);
  }
}

function open(options: LocalPeersOptions): LocalPeers {
  const dir = options.dir ?? join(runtimeDirectory(options.env), "peers");
  const now = options.now ?? (() => performance.now());
  const netns = networkNamespace();
  const { self } = options;
  const record: LocalRecord = {
    deviceId: self.deviceId.toUpperCase(),
    host: self.host,
    port: self.port,
    ...selfStamp(),
    nonce: self.nonce,
    netns,
    since: Date.now(),
  };
  const file = join(dir, localRecordName(record));
  const clashes = new Set<string>();
  let closed = false;

  const write = () => {
    if (options.dir === undefined) privateDirectory(join(dir, ".."));
    privateDirectory(dir);
    const tmp = join(dir, `.${localRecordName(record)}.tmp`);
    writeFileSync(tmp, encodeLocalRecord(record), { mode: 0o600 });
    renameSync(tmp, file);
  };
  try {
    write();
  } catch (e) {
    throw new Error(
      `Cannot register in the local registry "${dir}": ${(e as Error).message}`,
      { cause: e },
    );
  }

  const scan = (): LocalRecord[] => {
    let names: string[];
    try {
      names = readdirSync(dir).filter((n) => RECORD_FILE.test(n)).slice(0, MAX_LOCAL_RECORDS);
    } catch {
      return [];
    }
    const live: LocalRecord[] = [];
    for (const name of names) {
      const path = join(dir, name);
      let r: LocalRecord | undefined;
      try {
        if (statSync(path).size > MAX_LOCAL_RECORD_SIZE) continue;
        r = decodeLocalRecord(readFileSync(path, "utf8"));
      } catch {
        continue; // removed meanwhile
      }
      if (r === undefined || localRecordName(r) !== name) continue;
      if (!isAlive(r)) {
        try {
          unlinkSync(path); // a dead process's record: clean it
        } catch { /* another process cleaned it */ }
        continue;
      }
      if (r.deviceId === record.deviceId && r.nonce !== record.nonce && !clashes.has(r.nonce)) {
        clashes.add(r.nonce);
        try {
          options.onClash?.(r);
        } catch { /* a throwing listener does not stop the registry */ }
      }
      live.push(r);
    }
    return live;
  };
  const records = () =>
    closed ? new Map<string, LocalRecord>() : usableRecords(scan(), { nonce: record.nonce, netns });
  const known = (r: LocalRecord): KnownDevice => ({
    deviceId: r.deviceId,
    addresses: [{ host: r.host, port: r.port, source: "local" }],
    lastSeen: now(),
  });

  return {
    dir,
    file,
    records,
    find(deviceId) {
      if (deviceId.toUpperCase() === record.deviceId) return undefined;
      const r = records().get(deviceId.toUpperCase());
      return r === undefined ? undefined : known(r);
    },
    list() {
      return [...records().values()].filter((r) => r.deviceId !== record.deviceId).map(known);
    },
    announce() {
      if (closed) return;
      try {
        statSync(file);
      } catch {
        try {
          write(); // removed under us (a cleaned runtime directory): register again
        } catch { /* the next announce tries again */ }
      }
    },
    close() {
      if (!closed) {
        closed = true;
        try {
          unlinkSync(file);
        } catch { /* already gone */ }
      }
      return Promise.resolve();
    },
  };
}

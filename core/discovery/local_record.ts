/**
 * The local registry's record: what a running device writes into the
 * per-user runtime directory so that other devices of the same user on the
 * same machine find it with no configuration (`platform/local_peers.ts`
 * does the file I/O). Pure: the format, its limits and the staleness rule.
 *
 * A record is one JSON object in a file named `<pid>-<nonce>.json`:
 *
 * ```json
 * {"v":1,"deviceId":"02:8F:...","host":"127.0.0.1","port":38470,"pid":4242,
 *  "start":"123456","nonce":"0123456789abcdef","netns":"net:[4026531840]","since":1767225600000}
 * ```
 *
 * - `v`: the record version, {@linkcode LOCAL_RECORD_VERSION}; other versions are ignored.
 * - `host`, `port`: where the device accepts links from this machine ({@linkcode localDialHost}).
 * - `pid`, `start`: the process and its start time (field 22 of
 *   `/proc/<pid>/stat`, `null` where there is no `/proc`): together they
 *   tell a live holder from a dead one whose pid was reused.
 * - `netns`: the network namespace (`/proc/self/ns/net` link), `null` when
 *   unknown: a device in another namespace cannot be reached at its loopback
 *   address, so its record is skipped.
 * - `since`: when it registered (ms since the epoch); of two live records of
 *   one id, the earlier one wins.
 *
 * @module
 */
import { isDeviceId } from "../device/config.ts";
import { isWildcard } from "./subnet.ts";

/** The version of the record format. */
export const LOCAL_RECORD_VERSION = 1;
/** The largest record file read, in bytes. */
export const MAX_LOCAL_RECORD_SIZE = 1024;

/** A process, told apart from a later one with the same pid. */
export interface ProcessStamp {
  /** The process id. */
  pid: number;
  /** Its start time as the kernel reports it, or `null` when unknown. */
  start: string | null;
}

/** What a device registers. */
export interface LocalRecord extends ProcessStamp {
  /** Its device id, upper-case. */
  deviceId: string;
  /** Where it accepts links from this machine. */
  host: string;
  /** Its TCP port. */
  port: number;
  /** Its runtime nonce (16 hex digits). */
  nonce: string;
  /** Its network namespace, or `null` when unknown. */
  netns: string | null;
  /** When it registered, in ms since the epoch. */
  since: number;
}

/**
 * The address other processes on this machine dial for a device that
 * listens on `bind`: loopback for a wildcard, else the address itself.
 *
 * @param bind The listen address.
 * @returns The address to dial.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.equal(localDialHost("0.0.0.0"), "127.0.0.1");
 * assert.equal(localDialHost("::"), "::1");
 * assert.equal(localDialHost("10.0.0.5"), "10.0.0.5");
 * ```
 */
export function localDialHost(bind: string): string {
  if (!isWildcard(bind)) return bind;
  return bind === "::" ? "::1" : "127.0.0.1";
}

/**
 * The file name of a record.
 *
 * @param record Its pid and nonce.
 * @returns `<pid>-<nonce>.json`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.equal(localRecordName({ pid: 42, nonce: "00000000000000ff" }), "42-00000000000000ff.json");
 * ```
 */
export function localRecordName(record: Pick<LocalRecord, "pid" | "nonce">): string {
  return `${record.pid}-${record.nonce}.json`;
}

/**
 * Encode a record.
 *
 * @param record The record.
 * @returns Its JSON text.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const r = {
 *   deviceId: "02:00:00:00:00:01", host: "127.0.0.1", port: 4000, pid: 7, start: "99",
 *   nonce: "0000000000000001", netns: null, since: 1,
 * };
 * assert.deepEqual(decodeLocalRecord(encodeLocalRecord(r)), r);
 * ```
 */
export function encodeLocalRecord(record: LocalRecord): string {
  const { deviceId, host, port, pid, start, nonce, netns, since } = record;
  return JSON.stringify({
    v: LOCAL_RECORD_VERSION,
    deviceId,
    host,
    port,
    pid,
    start,
    nonce,
    netns,
    since,
  });
}

const HOST = /^[0-9A-Za-z.:%_-]{1,255}$/;
const NONCE = /^[0-9a-f]{16}$/;

function nullableString(v: unknown): v is string | null {
  return v === null || (typeof v === "string" && v.length <= 128);
}

/**
 * Decode a record; anything malformed, too large or of another version
 * gives `undefined`. Never throws.
 *
 * @param text The file's text.
 * @returns The record, or `undefined`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.equal(decodeLocalRecord("{}"), undefined);
 * assert.equal(decodeLocalRecord("not json"), undefined);
 * ```
 */
export function decodeLocalRecord(text: string): LocalRecord | undefined {
  if (typeof text !== "string" || text.length > MAX_LOCAL_RECORD_SIZE) return undefined;
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof o !== "object" || o === null || o.v !== LOCAL_RECORD_VERSION) return undefined;
  const { deviceId, host, port, pid, start, nonce, netns, since } = o;
  if (
    !isDeviceId(deviceId) || typeof host !== "string" || !HOST.test(host) ||
    typeof port !== "number" || !Number.isInteger(port) || port < 1 || port > 65535 ||
    typeof pid !== "number" || !Number.isInteger(pid) || pid < 1 ||
    !nullableString(start) || typeof nonce !== "string" || !NONCE.test(nonce) ||
    !nullableString(netns) || typeof since !== "number" || !Number.isFinite(since)
  ) {
    return undefined;
  }
  return { deviceId: deviceId.toUpperCase(), host, port, pid, start, nonce, netns, since };
}

/** What a probe of a process found. */
export interface ProcessProbe {
  /** Whether a process with that pid exists. */
  alive: boolean;
  /** Its start time, or `null` when unknown. */
  start: string | null;
}

/**
 * The staleness rule: a stamp is live when a process with its pid exists
 * and, where both start times are known, started at the same time (so a
 * reused pid is not taken for the old process).
 *
 * @param stamp The recorded pid and start time.
 * @param probe What the machine says about that pid now.
 * @returns `true` when the recorded process still runs.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.ok(isLiveStamp({ pid: 5, start: "10" }, { alive: true, start: "10" }));
 * assert.ok(!isLiveStamp({ pid: 5, start: "10" }, { alive: true, start: "11" })); // pid reused
 * assert.ok(!isLiveStamp({ pid: 5, start: null }, { alive: false, start: null }));
 * ```
 */
export function isLiveStamp(stamp: ProcessStamp, probe: ProcessProbe): boolean {
  if (!probe.alive) return false;
  return stamp.start === null || probe.start === null || stamp.start === probe.start;
}

/**
 * Of the live records, the ones another device may use: not its own
 * (`nonce`), in its network namespace when both are known, one per id (the
 * earliest registered).
 *
 * @param records Live records.
 * @param self This runtime's nonce and network namespace.
 * @returns The usable records by id.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const r = (nonce: string, since: number) => ({
 *   deviceId: "02:00:00:00:00:01", host: "127.0.0.1", port: since, pid: 1, start: null,
 *   nonce, netns: null, since,
 * });
 * const use = usableRecords([r("0000000000000002", 20), r("0000000000000003", 10)], { nonce: "0000000000000009", netns: null });
 * assert.equal(use.get("02:00:00:00:00:01")?.port, 10);
 * ```
 */
export function usableRecords(
  records: readonly LocalRecord[],
  self: { nonce: string; netns: string | null },
): Map<string, LocalRecord> {
  const out = new Map<string, LocalRecord>();
  for (const r of records) {
    if (r.nonce === self.nonce) continue;
    if (r.netns !== null && self.netns !== null && r.netns !== self.netns) continue;
    const seen = out.get(r.deviceId);
    if (seen === undefined || r.since < seen.since) out.set(r.deviceId, r);
  }
  return out;
}

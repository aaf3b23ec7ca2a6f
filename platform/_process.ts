/**
 * Processes of this machine, for the local registry and identity locks:
 * this process's stamp (pid and start time), whether a recorded process
 * still runs, and the network namespace. Linux reads `/proc`; elsewhere the
 * start time is unknown and liveness is `kill(pid, 0)`.
 *
 * @module
 */
import { readFileSync, readlinkSync } from "node:fs";
import process from "node:process";
import {
  isLiveStamp,
  type ProcessProbe,
  type ProcessStamp,
} from "../core/discovery/local_record.ts";

/**
 * What `/proc` (or `kill(pid, 0)`) says about a pid now.
 *
 * @param pid The process id.
 * @returns Whether it exists, and its start time when known.
 */
export function probeProcess(pid: number): ProcessProbe {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return { alive: true, start: fields[19] ?? null };
  } catch (e) {
    if ((e as { code?: string }).code === "ENOENT" && hasProc()) {
      return { alive: false, start: null };
    }
  }
  try {
    process.kill(pid, 0);
    return { alive: true, start: null };
  } catch (e) {
    return { alive: (e as { code?: string }).code === "EPERM", start: null };
  }
}

let procMounted: boolean | undefined;
function hasProc(): boolean {
  if (procMounted === undefined) {
    try {
      readFileSync("/proc/self/stat");
      procMounted = true;
    } catch {
      procMounted = false;
    }
  }
  return procMounted;
}

/**
 * This process's stamp.
 *
 * @returns Its pid and start time.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import process from "node:process";
 * assert.equal(selfStamp().pid, process.pid);
 * ```
 */
export function selfStamp(): ProcessStamp {
  return { pid: process.pid, start: probeProcess(process.pid).start };
}

/**
 * Whether the process of a stamp still runs (the rule of `isLiveStamp`).
 *
 * @param stamp The recorded pid and start time.
 * @returns `true` when it runs.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.ok(isAlive(selfStamp()));
 * ```
 */
export function isAlive(stamp: ProcessStamp): boolean {
  return isLiveStamp(stamp, probeProcess(stamp.pid));
}

/**
 * This process's network namespace (`net:[4026531840]`), or `null` when the
 * system does not say.
 *
 * @returns The namespace's name.
 */
export function networkNamespace(): string | null {
  try {
    return readlinkSync("/proc/self/ns/net");
  } catch {
    return null;
  }
}

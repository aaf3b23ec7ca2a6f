/**
 * The device daemon's manifest (`docs/daemon.md`, "Manifest"): which
 * abilities it may start when a collaboration request asks for one that no
 * attached application registered, and how. A JSON file:
 *
 * ```json
 * {
 *   "abilities": [
 *     {
 *       "bundleName": "com.example.remotephotodemo",
 *       "moduleName": "entry",
 *       "abilityName": "EntryAbility",
 *       "command": "deno",
 *       "args": ["run", "-A", "examples/ability_sink_001.ts"],
 *       "cwd": "/home/me/linkweave",
 *       "env": { "LINKWEAVE_TRACE": "1" },
 *       "startOptions": "START_IN_BACKGROUND",
 *       "log": "/tmp/sink.log"
 *     }
 *   ]
 * }
 * ```
 *
 * Pure: the caller reads the file and resolves relative paths.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const m = parseManifest(JSON.stringify({ abilities: [{
 *   bundleName: "b", moduleName: "m", abilityName: "a", command: "/bin/true",
 * }] }), "test");
 * assert.equal(m.abilities[0].command, "/bin/true");
 * assert.deepEqual(m.abilities[0].args, []);
 * assert.throws(() => parseManifest("{}", "test"), /"abilities"/);
 * ```
 *
 * @module
 */
import { abilityKey } from "../ability/mod.ts";

/** How a launched ability starts, in Linux terms (`docs/daemon.md`). */
export type StartMode = "START_IN_FOREGROUND" | "START_IN_BACKGROUND";

/** One ability the daemon may start. */
export interface ManifestEntry {
  /** Its bundle name. */
  bundleName: string;
  /** Its module name. */
  moduleName: string;
  /** Its ability name. */
  abilityName: string;
  /** The program to run. */
  command: string;
  /** Its arguments. @default {[]} */
  args: string[];
  /** Its working directory (relative: to the manifest's folder). @default {the manifest's folder} */
  cwd?: string;
  /** Variables added to the daemon's environment. @default {{}} */
  env: Record<string, string>;
  /** Pin the start mode; unset, the caller's `startOptions` decides. */
  startOptions?: StartMode;
  /** Where a background start's output goes (appended). @default {discarded} */
  log?: string;
}

/** A parsed manifest. */
export interface Manifest {
  /** The abilities, in file order. */
  abilities: ManifestEntry[];
}

/** The most entries a manifest may list. */
export const MAX_MANIFEST_ENTRIES = 1024;

const START_MODES: readonly StartMode[] = ["START_IN_FOREGROUND", "START_IN_BACKGROUND"];

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * The key of an ability: its bundle, module and ability names joined by
 * NUL characters (the same key `abilityConnectionManager` serves it by).
 *
 * @param a The names.
 * @returns The key.
 */
export function manifestKey(
  a: { bundleName: string; moduleName: string; abilityName: string },
): string {
  return abilityKey(a.bundleName, a.moduleName, a.abilityName);
}

/**
 * Parse and check a manifest.
 *
 * @param text The file's text.
 * @param source Where it came from (for messages).
 * @returns The manifest.
 * @throws {Error} Naming the file, the entry and the field that is wrong.
 */
export function parseManifest(text: string, source: string): Manifest {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new Error(`Invalid manifest "${source}": not JSON (${(e as Error).message})`);
  }
  if (!isRecord(doc) || !Array.isArray(doc.abilities)) {
    throw new Error(`Invalid manifest "${source}": expected an object with "abilities": [...]`);
  }
  if (doc.abilities.length > MAX_MANIFEST_ENTRIES) {
    throw new Error(
      `Invalid manifest "${source}": ${doc.abilities.length} abilities, over ${MAX_MANIFEST_ENTRIES}`,
    );
  }
  const seen = new Set<string>();
  const abilities = doc.abilities.map((raw, i) => {
    const where = `Invalid manifest "${source}", ability ${i}`;
    if (!isRecord(raw)) throw new Error(`${where}: expected an object`);
    const str = (field: string, optional = false): string | undefined => {
      const v = raw[field];
      if (v === undefined && optional) return undefined;
      if (typeof v !== "string" || v === "") {
        throw new Error(`${where}: "${field}" must be a non-empty string`);
      }
      return v;
    };
    const args = raw.args ?? [];
    if (!Array.isArray(args) || !args.every((a) => typeof a === "string")) {
      throw new Error(`${where}: "args" must be an array of strings`);
    }
    const env = raw.env ?? {};
    if (!isRecord(env) || !Object.values(env).every((v) => typeof v === "string")) {
      throw new Error(`${where}: "env" must be an object of strings`);
    }
    const start = raw.startOptions;
    if (start !== undefined && !START_MODES.includes(start as StartMode)) {
      throw new Error(
        `${where}: "startOptions" must be "START_IN_FOREGROUND" or "START_IN_BACKGROUND"`,
      );
    }
    const entry: ManifestEntry = {
      bundleName: str("bundleName")!,
      moduleName: str("moduleName")!,
      abilityName: str("abilityName")!,
      command: str("command")!,
      args: args as string[],
      env: env as Record<string, string>,
    };
    const cwd = str("cwd", true);
    if (cwd !== undefined) entry.cwd = cwd;
    if (start !== undefined) entry.startOptions = start as StartMode;
    const log = str("log", true);
    if (log !== undefined) entry.log = log;
    const key = manifestKey(entry);
    if (seen.has(key)) {
      throw new Error(
        `${where}: ${entry.bundleName}/${entry.moduleName}/${entry.abilityName} is listed twice`,
      );
    }
    seen.add(key);
    return entry;
  });
  return { abilities };
}

/**
 * What the link-level hostile suites share: a victim device process
 * (`_victim.ts`), a legitimate client process (`_client.ts`) that keeps
 * using it, and a watch on the victim's memory and open files read from
 * `/proc/<pid>/`.
 *
 * @module
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { type Child, start } from "../_script.ts";

/** RSS (KiB) and open file descriptors of a process. */
export interface Usage {
  /** Resident set size, KiB. */
  rss: number;
  /** Open file descriptors. */
  fds: number;
}

/**
 * The RSS and open files of a process now.
 *
 * @param pid The process.
 * @returns Its usage.
 */
export function usage(pid: number): Usage {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return {
    rss: Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0),
    fds: readdirSync(`/proc/${pid}/fd`).length,
  };
}

/** A victim process and the watch on it. */
export interface Victim {
  /** The process. */
  child: Child;
  /** Its device id. */
  id: string;
  /** Its TCP port. */
  port: number;
  /** Its pid. */
  pid: number;
  /** Its usage when the watch started. */
  base: Usage;
  /** The highest RSS and fd count seen since the watch started (sampled every 20 ms). */
  peak(): Usage;
  /** Start the watch over: `base` and `peak` from now. */
  rebase(): void;
  /** JSON lines it printed. */
  lines(): Record<string, unknown>[];
  /** Stop the watch and kill the process. */
  kill(): void;
}

/** JSON lines of a text. */
export function jsonLines(text: string): Record<string, unknown>[] {
  return text.split("\n").filter((l) => l.startsWith("{")).map((l) => {
    try {
      return JSON.parse(l);
    } catch {
      return {};
    }
  });
}

/**
 * Start a victim device on loopback and watch it.
 *
 * @param id Its device id.
 * @param env More `LINKWEAVE_*` settings (limits, timeouts).
 * @param prefix A command to run it under (`ip netns exec <ns>`).
 * @returns The victim, listening.
 */
export async function startVictim(
  id: string,
  env: Record<string, string> = {},
  prefix: string[] = [],
): Promise<Victim> {
  const child = start("tests/hostile/_victim.ts", {
    LINKWEAVE_SECURITY: "none",
    LINKWEAVE_DEVICE_ID: id,
    LINKWEAVE_PORT: "0",
    LINKWEAVE_DISCOVERY: "off",
    ...env,
  }, prefix);
  try {
    const m = await child.waitFor(/"ready":true,"id":"[^"]+","port":(\d+)/);
    const pid = child.proc.pid!;
    let base = usage(pid);
    let peak = { ...base };
    const timer = setInterval(() => {
      try {
        const u = usage(pid);
        peak = { rss: Math.max(peak.rss, u.rss), fds: Math.max(peak.fds, u.fds) };
      } catch {
        // gone
      }
    }, 20);
    return {
      child,
      id,
      port: Number(m[1]),
      pid,
      get base() {
        return base;
      },
      peak: () => {
        const u = usage(pid);
        return { rss: Math.max(peak.rss, u.rss), fds: Math.max(peak.fds, u.fds) };
      },
      rebase() {
        base = usage(pid);
        peak = { ...base };
      },
      lines: () => jsonLines(child.out),
      kill() {
        clearInterval(timer);
        child.kill();
      },
    };
  } catch (e) {
    child.kill();
    throw e;
  }
}

/** One round of the legitimate client. */
export interface Round {
  /** Its number. */
  round: number;
  /** When it started and ended (`Date.now()`). */
  start: number;
  /** When it ended. */
  end: number;
  /** A new device's connection: "ok" or why not. */
  fresh: string;
  /** The kept connection's echo: "ok" or why not. */
  kept: string;
}

/** A legitimate client process. */
export interface Client {
  /** The process. */
  child: Child;
  /** Its rounds so far. */
  rounds(): Round[];
  /**
   * Wait until a round that started after `t` has ended.
   *
   * @param t A time (`Date.now()`).
   * @param ms At most this long.
   * @returns That round.
   */
  roundAfter(t: number, ms?: number): Promise<Round>;
}

/**
 * Start the legitimate client of a victim and wait until its kept
 * connection is up.
 *
 * @param v The victim.
 * @param idPrefix The first four bytes of its devices' ids (`02:C1:1E:00`).
 * @param env More settings.
 * @param where The victim's address (default loopback) and a command to run the client under.
 * @returns The client.
 */
export async function startClient(
  v: Victim,
  idPrefix = "02:C1:1E:00",
  env: Record<string, string> = {},
  where: { host?: string; prefix?: string[] } = {},
): Promise<Client> {
  const child = start("tests/hostile/_client.ts", {
    LINKWEAVE_SECURITY: "none",
    LW_VICTIM: v.id,
    LW_EVERY: "50",
    LW_ID: idPrefix,
    LINKWEAVE_PEERS: `${v.id}@${where.host ?? "127.0.0.1"}:${v.port}`,
    LINKWEAVE_DISCOVERY: "off",
    ...env,
  }, where.prefix);
  const rounds = () =>
    jsonLines(child.out).filter((l) => l.round !== undefined) as never as Round[];
  try {
    await child.waitFor(/"ready":true/);
  } catch (e) {
    child.kill();
    throw e;
  }
  return {
    child,
    rounds,
    async roundAfter(t, ms = 10_000) {
      const until = Date.now() + ms;
      while (Date.now() < until) {
        const r = rounds().find((r) => r.start >= t);
        if (r !== undefined) return r;
        await new Promise((res) => setTimeout(res, 20));
      }
      throw new Error(`No client round after ${t} within ${ms} ms:\n${child.out}\n${child.err}`);
    },
  };
}

/**
 * Assert that the client was served during an attack that ran from `from`
 * until now, and after it: at least one round overlapped the attack, one
 * started after it, and every one of them succeeded (both the kept and a
 * fresh connection).
 *
 * @param c The client.
 * @param from When the attack started (`Date.now()`).
 * @returns The rounds.
 */
export async function assertServed(c: Client, from: number): Promise<Round[]> {
  const to = Date.now();
  const after = await c.roundAfter(to);
  const rounds = c.rounds().filter((r) => r.end >= from && r.start <= after.start);
  const during = rounds.filter((r) => r.start <= to);
  const log = `\n${c.child.out}\n${c.child.err}`;
  assert.ok(during.length >= 1, `no client round during the attack (${to - from} ms)${log}`);
  for (const r of rounds) {
    assert.deepEqual([r.fresh, r.kept], ["ok", "ok"], `round ${r.round}${log}`);
  }
  return rounds;
}

/**
 * Wait until `probe` holds, polling every 20 ms.
 *
 * @param probe The condition.
 * @param ms At most this long.
 * @param what For the error.
 */
export async function until(probe: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!probe()) {
    if (Date.now() > end) throw new Error(`Timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Sleep.
 *
 * @param ms How long.
 */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * `npm start` (`scripts/start.ts`) as a new user runs it: two device
 * processes on loopback, a live report, a summary, exit 0; and a clear
 * failure, with no process left behind, when a device dies mid-run.
 *
 * @module
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { describe, it } from "node:test";

/** The repository root: the nearest directory above this file with `scripts/start.ts`
 * (this file also runs bundled from `dist/node-tests/tests/`). */
function root(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "scripts", "start.ts"))) {
    const up = dirname(dir);
    if (up === dir) throw new Error("Cannot find scripts/start.ts above the test");
    dir = up;
  }
  return dir;
}

const ROOT = root();

interface Run {
  proc: ChildProcess;
  /** Stdout and stderr so far. */
  output(): string;
  /** The exit code (a signal counts as a failure), or a rejection after `ms`. */
  exit(ms: number): Promise<number>;
  /** Resolves with the first match of `re` in the output (or rejects after `ms`). */
  waitFor(re: RegExp, ms: number): Promise<RegExpMatchArray>;
}

/** Run `deno run -A scripts/start.ts`, as `npm start` does, with stdout a pipe. */
function start(args: string[], env: Record<string, string> = {}): Run {
  const proc = spawn(join(ROOT, "node_modules", ".bin", "deno"), [
    "run",
    "-A",
    "scripts/start.ts",
    ...args,
  ], {
    cwd: ROOT,
    env: { ...process.env, NO_COLOR: "1", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let text = "";
  const decoder = new TextDecoder();
  proc.stdout!.on("data", (b: Uint8Array) => (text += decoder.decode(b, { stream: true })));
  proc.stderr!.on("data", (b: Uint8Array) => (text += decoder.decode(b, { stream: true })));
  const exited = new Promise<number>((resolve) =>
    proc.on("close", (code, signal) => resolve(signal === null ? code ?? 1 : 128))
  );
  const bounded = <T>(p: Promise<T>, ms: number, what: string): Promise<T> => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    return Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          proc.kill("SIGKILL");
          reject(new Error(`${what} within ${ms} ms; output:\n${text}`));
        }, ms);
      }),
    ]).finally(() => clearTimeout(timer));
  };
  return {
    proc,
    output: () => text,
    exit: (ms) => bounded(exited, ms, "npm start did not exit"),
    waitFor: (re, ms) =>
      bounded(
        (async () => {
          for (;;) {
            const m = re.exec(text);
            if (m !== null) return m;
            await new Promise((r) => setTimeout(r, 20));
          }
        })(),
        ms,
        `no ${re} in the output`,
      ),
  };
}

/** Whether a process runs (a zombie, killed but not yet reaped, does not). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

describe("npm start", { timeout: 50_000 }, () => {
  it("runs two devices, reports, summarises and exits 0", { timeout: 25_000 }, async () => {
    const run = start([], { LINKWEAVE_DEMO_SECONDS: "2" });
    const code = await run.exit(20_000);
    const out = run.output();
    assert.equal(code, 0, out);
    assert.match(out, /server {2}02:00:00:00:00:01 .* listening on 127\.0\.0\.1:\d+/);
    assert.match(out, /client {2}02:00:00:00:00:02 .* listening on 127\.0\.0\.1:\d+/);
    assert.match(out, /connected 5 connections by name/);
    assert.match(out, /^ +\d+\.\d s .*connections 5 +messages\/s [\d,]+ +MB\/s/m, "a live line");
    assert.match(out, /^Summary$/m);
    const rate = /throughput +([\d,]+) messages\/s, ([\d.]+) MB\/s/.exec(out);
    assert.ok(rate !== null, out);
    assert.ok(Number(rate[1].replaceAll(",", "")) > 0, rate[0]);
    assert.ok(Number(rate[2]) > 0, rate[0]);
    assert.match(out, /in order and intact/);
    assert.match(out, /over 1 link \(2 TCP connections\)/, "the demo link has 2 channels");
    assert.match(out, /channels +#1 tcp from 127\.0\.0\.1:\d+, RTT .*\n +#2 tcp from/);
    assert.match(out, /latency +RTT idle p50 [\d.]+ ms p99 [\d.]+ ms; under load p50 [\d.]+ ms/);
    assert.match(out, /both devices exited cleanly/);
    for (const m of out.matchAll(/pid (\d+)/g)) assert.ok(!alive(Number(m[1])), `pid ${m[1]} left`);
  });

  it("keeps 16 busy connections between two Deno devices intact", { timeout: 25_000 }, async () => {
    // Two processes, 16 senders paced by drain: the load under which Deno's
    // socket adapter once let a write made from onDrain overtake queued bytes.
    const run = start(["--bulk", "16", "--server", "deno", "--client", "deno"], {
      LINKWEAVE_DEMO_SECONDS: "2",
    });
    const code = await run.exit(20_000);
    const out = run.output();
    assert.equal(code, 0, out);
    assert.match(out, /in order and intact/);
  });

  it("fails clearly and leaves no process behind when a device dies", {
    timeout: 25_000,
  }, async () => {
    const run = start(["--seconds", "8"]);
    const server = Number((await run.waitFor(/server .* pid (\d+)/, 15_000))[1]);
    const client = Number((await run.waitFor(/client .* pid (\d+)/, 15_000))[1]);
    await run.waitFor(/connected 5 connections/, 10_000);
    process.kill(server, "SIGKILL");
    const code = await run.exit(10_000);
    const out = run.output();
    assert.equal(code, 1, out);
    assert.match(out, /linkweave demo failed: .*(server device|disconnected)/, out);
    assert.doesNotMatch(out, /both devices exited cleanly/);
    await new Promise((r) => setTimeout(r, 100));
    assert.ok(!alive(client), "the client device was stopped");
  });
});

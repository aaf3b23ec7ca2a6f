/**
 * Headless Chromium driven over the DevTools protocol on a pipe
 * (`--remote-debugging-pipe`: messages are JSON ended by a NUL byte, written
 * to the browser's fd 3 and read from its fd 4), enough to open a page,
 * evaluate an expression in it and take a screenshot. Debian: `chromium`.
 *
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Buffer } from "node:buffer";
import process from "node:process";
import type { Readable, Writable } from "node:stream";

/** A page open in a headless Chromium. */
export interface Page {
  /** Evaluate an expression in the page; its value (JSON-serializable). */
  evaluate<T>(expression: string): Promise<T>;
  /** A PNG of the viewport. */
  screenshot(): Promise<Uint8Array>;
  /** Close the browser and remove its profile. */
  close(): Promise<void>;
}

/**
 * Start Chromium and open `url` in a viewport of `width` x `height`.
 *
 * @param url The page.
 * @param size The viewport. @default {{ width: 1000, height: 700 }}
 * @returns The page.
 */
export async function openPage(
  url: string,
  size: { width: number; height: number } = { width: 1000, height: 700 },
): Promise<Page> {
  const profile = mkdtempSync(join(tmpdir(), "lw-cli-chromium-"));
  const proc: ChildProcess = spawn("chromium", [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--hide-scrollbars",
    "--remote-debugging-pipe",
    `--user-data-dir=${profile}`,
    "about:blank",
  ], { stdio: ["ignore", "ignore", "ignore", "pipe", "pipe"] });
  const out = proc.stdio[3] as Writable;
  const input = proc.stdio[4] as Readable;
  out.on("error", () => {});
  const waiting = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  let next = 1;
  let buf = "";
  input.on("data", (b: Uint8Array) => {
    buf += new TextDecoder().decode(b);
    for (let i = buf.indexOf("\0"); i >= 0; i = buf.indexOf("\0")) {
      const m = JSON.parse(buf.slice(0, i));
      buf = buf.slice(i + 1);
      const w = m.id === undefined ? undefined : waiting.get(m.id);
      if (w === undefined) continue;
      waiting.delete(m.id);
      if (m.error !== undefined) w.reject(new Error(`${m.error.message}`));
      else w.resolve(m.result);
    }
  });
  const exited = new Promise<void>((resolve) => proc.on("exit", () => resolve()));
  proc.on("exit", () => {
    for (const w of waiting.values()) w.reject(new Error("chromium exited"));
    waiting.clear();
  });
  // deno-lint-ignore no-explicit-any
  const call = (method: string, params: object = {}, sessionId?: string): Promise<any> =>
    new Promise((resolve, reject) => {
      const id = next++;
      waiting.set(id, { resolve, reject });
      out.write(`${JSON.stringify({ id, method, params, sessionId })}\0`);
    });
  const close = async () => {
    await Promise.race([call("Browser.close").catch(() => {}), exited]);
    const timer = setTimeout(() => {
      if (proc.exitCode === null && proc.pid !== undefined) process.kill(proc.pid, "SIGKILL");
    }, 3000);
    await exited;
    clearTimeout(timer);
    rmSync(profile, { recursive: true, force: true });
  };
  try {
    const { targetId } = await call("Target.createTarget", { url: "about:blank" });
    const { sessionId } = await call("Target.attachToTarget", { targetId, flatten: true });
    await call("Emulation.setDeviceMetricsOverride", {
      ...size,
      deviceScaleFactor: 1,
      mobile: false,
    }, sessionId);
    await call("Page.navigate", { url }, sessionId);
    return {
      async evaluate<T>(expression: string): Promise<T> {
        const r = await call("Runtime.evaluate", { expression, returnByValue: true }, sessionId);
        if (r.exceptionDetails !== undefined) {
          throw new Error(`In the page: ${r.exceptionDetails.text} (${expression})`);
        }
        return r.result.value as T;
      },
      async screenshot(): Promise<Uint8Array> {
        const r = await call("Page.captureScreenshot", { format: "png" }, sessionId);
        return new Uint8Array(Buffer.from(r.data, "base64"));
      },
      close,
    };
  } catch (e) {
    await close();
    throw e;
  }
}

/**
 * Pick the socket adapter of the runtime this code runs on.
 *
 * @module
 */
import type { SocketPlatform } from "../core/socket/platform.ts";
import { bunSocketPlatform } from "./bun/mod.ts";
import { denoSocketPlatform } from "./deno/mod.ts";
import { nodeSocketPlatform } from "./node/mod.ts";

/**
 * The runtime: `"Bun" in globalThis` first (Bun also defines `process`), then
 * `"Deno" in globalThis`, else Node.
 *
 * @returns `bun`, `deno` or `node`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.ok(["bun", "deno", "node"].includes(detectRuntime()));
 * ```
 */
export function detectRuntime(): "bun" | "deno" | "node" {
  if ("Bun" in globalThis) return "bun";
  if ("Deno" in globalThis) return "deno";
  return "node";
}

/**
 * The socket adapter of the current runtime.
 *
 * @returns The adapter.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.equal(autoSocketPlatform().name, detectRuntime());
 * ```
 */
export function autoSocketPlatform(): SocketPlatform {
  const rt = detectRuntime();
  return rt === "bun" ? bunSocketPlatform : rt === "deno" ? denoSocketPlatform : nodeSocketPlatform;
}

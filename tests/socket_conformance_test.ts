/**
 * Runs the socket conformance suite on this runtime's own adapter (Deno's on
 * Deno, Bun's on Bun, Node's in the esbuild bundle on Node). Run with
 * `--linkweave-keep-alive-child <mode>`, it is the child process of the
 * keep-alive test instead.
 *
 * @module
 */
import process from "node:process";
import { fileURLToPath } from "node:url";
import { autoSocketPlatform } from "../platform/auto.ts";
import { KEEP_ALIVE_CHILD, keepAliveChild, socketConformance } from "./conformance/socket.ts";

const child = process.argv.indexOf(KEEP_ALIVE_CHILD);
if (child >= 0) await keepAliveChild(autoSocketPlatform(), process.argv[child + 1]);
else socketConformance(autoSocketPlatform(), { entry: fileURLToPath(import.meta.url) });

/**
 * Runs the socket conformance suite on this runtime's own adapter (Deno's on
 * Deno, Bun's on Bun, Node's in the esbuild bundle on Node). Run with
 * `--linkweave-socket-child <mode>`, it is a child process of the tests
 * instead (see `socketChild`).
 *
 * @module
 */
import process from "node:process";
import { fileURLToPath } from "node:url";
import { autoSocketPlatform } from "../platform/auto.ts";
import { SOCKET_CHILD, socketChild, socketConformance } from "./conformance/socket.ts";

const child = process.argv.indexOf(SOCKET_CHILD);
if (child >= 0) await socketChild(autoSocketPlatform(), process.argv[child + 1]);
else socketConformance(autoSocketPlatform(), { entry: fileURLToPath(import.meta.url) });

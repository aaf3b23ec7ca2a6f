/**
 * Runs the socket conformance suite on this runtime's own adapter (Deno's on
 * Deno, Bun's on Bun, Node's in the esbuild bundle on Node).
 *
 * @module
 */
import { autoSocketPlatform } from "../platform/auto.ts";
import { socketConformance } from "./conformance/socket.ts";

socketConformance(autoSocketPlatform());

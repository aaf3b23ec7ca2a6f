/**
 * The Deno runtime's platform: its socket adapter.
 *
 * @module
 */
export { denoSocketPlatform } from "./socket.ts";

/**
 * The Node runtime's platform: its socket adapter.
 *
 * @module
 */
export { nodeSocketPlatform } from "./socket.ts";

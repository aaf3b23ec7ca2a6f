/**
 * The Bun runtime's platform: its socket adapter.
 *
 * @module
 */
export { bunSocketPlatform } from "./socket.ts";

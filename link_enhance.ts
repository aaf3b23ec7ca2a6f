/**
 * `linkEnhance` (OpenHarmony `@ohos.distributedsched.linkEnhance`, API 20)
 * for Deno, Bun and Node: named servers and connections between devices,
 * over one multiplexed link per pair of devices. Import it as
 * `import { linkEnhance } from "@linkweave/linkweave"`.
 *
 * The process runs as one device, shared with the other APIs (`device.ts`).
 * Its id, port, peers and limits come from {@linkcode configure} or, when
 * that is not called, from `LINKWEAVE_*` environment variables (see
 * `docs/link-enhance.md`).
 *
 * @example A server and a client in one process (two devices)
 * ```ts
 * import assert from "node:assert/strict";
 * const a = createDevice({ deviceId: "02:00:00:00:00:01", port: 0, discovery: "off" });
 * const port = (await a.runtime()).port;
 * const b = createDevice({
 *   deviceId: "02:00:00:00:00:02", port: 0, discovery: "off",
 *   peers: [`02:00:00:00:00:01@127.0.0.1:${port}`],
 * });
 * const server = a.createServer("demo");
 * const got = new Promise<number>((resolve) =>
 *   server.on("connectionAccepted", (c) => c.on("dataReceived", (d) => resolve(d.byteLength)))
 * );
 * server.start();
 * const conn = b.createConnection("02:00:00:00:00:01", "demo");
 * conn.on("connectResult", (r) => r.success && conn.sendData(new ArrayBuffer(3)));
 * conn.connect();
 * assert.equal(await got, 3);
 * conn.close();
 * server.close();
 * await a.close();
 * await b.close();
 * ```
 *
 * @module
 */
import type { Connection, Server } from "./core/link_enhance/mod.ts";
import { processDevice } from "./device.ts";

export { configure, createDevice } from "./device.ts";
export type { Device, Pairing, PairingOffer } from "./device.ts";
export {
  Connection,
  ConnectionState,
  LINGER_MS,
  MAX_SEND_DATA,
  Server,
} from "./core/link_enhance/mod.ts";
export type {
  AbortOptions,
  ConnectionEvents,
  ConnectResult,
  ServerEvents,
} from "./core/link_enhance/mod.ts";
export type { DeviceOptions, Limits, StaticPeer } from "./core/device/config.ts";
export type { DeviceRuntime } from "./core/device/driver.ts";
export type { KnownAddress, KnownDevice, PeerSource } from "./core/discovery/finder.ts";
export type { TrustedDevice } from "./platform/security.ts";

/**
 * Create a server. After `start()`, peers can connect to it by name.
 *
 * @param name The server name, 1..255 UTF-8 bytes, unique in the process
 *   (case-insensitively).
 * @returns The server.
 * @throws {TypeError} 32390206 for a bad name.
 * @throws {BusinessError} 32390203 when the name is taken.
 *
 * @example
 * ```ts
 * const server = createServer("example-server");
 * server.close();
 * ```
 */
export function createServer(name: string): Server {
  return processDevice().createServer(name);
}

/**
 * Create a connection to a peer device's server; `connect()` starts it.
 *
 * @param deviceId The peer's device id (BLE MAC form, `AA:BB:CC:DD:EE:FF`).
 * @param name The peer's server name, 1..255 UTF-8 bytes.
 * @returns The connection.
 * @throws {TypeError} 32390206 for a bad id or name.
 *
 * @example
 * ```ts
 * const conn = createConnection("00:11:22:33:44:55", "demo");
 * conn.close();
 * ```
 */
export function createConnection(deviceId: string, name: string): Connection {
  return processDevice().createConnection(deviceId, name);
}

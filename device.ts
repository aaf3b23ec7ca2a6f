/**
 * The device: one per process unless made explicitly, shared by every API
 * (`linkEnhance`, `abilityConnectionManager`, `distributedDeviceManager`).
 * It composes the device driver, the TCP transport, discovery, the framing
 * codec and the image codec, and hands the APIs their view of it. Its id,
 * port, peers and limits come from {@linkcode configure} or, when that is
 * not called, from `LINKWEAVE_*` environment variables (`docs/config.md`).
 *
 * @example Two devices in one process
 * ```ts
 * import assert from "node:assert/strict";
 * const a = createDevice({ deviceId: "02:00:00:00:00:0A", port: 0, discovery: "off" });
 * const runtime = await a.runtime();
 * assert.equal(runtime.deviceId, "02:00:00:00:00:0A");
 * assert.deepEqual(a.links(), []);
 * await a.close();
 * ```
 *
 * @module
 */
import process from "node:process";
import { ErrorCode } from "./core/error_codes.ts";
import { BusinessError } from "./core/errors.ts";
import { type DeviceConfig, type DeviceOptions, resolveConfig } from "./core/device/config.ts";
import type { KnownDevice, PeerFinder } from "./core/discovery/finder.ts";
import { DeviceDriver, type DeviceRuntime } from "./core/device/driver.ts";
import type { DeviceHost } from "./core/device/host.ts";
import { type Connection, LinkEnhance, type Server } from "./core/link_enhance/mod.ts";
import { AbilityConnectionManager } from "./core/ability/mod.ts";
import type { ImageCodec } from "./core/ability/pixel_map.ts";
import { runtimeHost } from "./platform/host.ts";
import { claimIdentity, type HeldIdentity } from "./platform/identity.ts";
import { startPeerFinder } from "./_peer_finder.ts";
import { nativeCrc } from "./platform/crc.ts";
import { tcpTransport } from "./platform/tcp_transport.ts";
import { createCodec } from "./wasm/mod.ts";
import { createImageCodec } from "./wasm/image.ts";

export type { DeviceOptions, Limits, StaticPeer } from "./core/device/config.ts";
export type { DeviceRuntime } from "./core/device/driver.ts";
export type { KnownAddress, KnownDevice, PeerSource } from "./core/discovery/finder.ts";

/** A device: its APIs and its runtime. */
export interface Device {
  /** Create a linkEnhance server on this device. */
  createServer(name: string): Server;
  /** Create a linkEnhance client connection from this device. */
  createConnection(deviceId: string, name: string): Connection;
  /** This device's `abilityConnectionManager` (sessions, abilities, streams). */
  readonly abilityConnectionManager: AbilityConnectionManager;
  /** The configuration in effect. */
  config(): DeviceConfig;
  /** Start the device now (it also starts on first use) and get its running state. */
  runtime(): Promise<DeviceRuntime>;
  /**
   * linkweave extension: the devices discovery knows now (local registry and
   * multicast), with their addresses; `[]` before the device started or
   * with discovery off.
   */
  knownDevices(): KnownDevice[];
  /** linkweave extension: the peers this device has a link to now; `[]` before it started. */
  links(): string[];
  /** linkweave extension: this device's id, once known (configured, or chosen at start). */
  id(): string | undefined;
  /** Stop the device: end its sessions, close its links, listener and discovery. */
  close(): Promise<void>;
}

let imageCodec: ImageCodec | undefined;

/**
 * linkweave extension: a separate device in this process, with its own id,
 * port and links (tests, benchmarks, gateways). The module-level functions
 * of every API use the process's default device ({@linkcode processDevice}).
 *
 * @param options Its configuration; unset fields come from `LINKWEAVE_*`.
 * @param host The machine. @default {runtimeHost()}
 * @returns The device.
 * @throws {TypeError} For a malformed option (code 401).
 */
export function createDevice(options: DeviceOptions = {}, host?: DeviceHost): Device {
  let config: DeviceConfig | undefined = resolveConfig(options, process.env);
  let started: Promise<DeviceDriver> | undefined;
  let running: DeviceDriver | undefined;
  let finder: PeerFinder | undefined;
  let identity: HeldIdentity | undefined;
  const h = host ?? runtimeHost();
  const cfg = () => config ??= resolveConfig(options, process.env);
  const start = async () => {
    let c = cfg();
    // No id configured: take the first identity no live process holds (a given host decides itself).
    if (c.deviceId === undefined && host === undefined) {
      identity = await claimIdentity();
      c = { ...c, deviceId: identity.deviceId };
    }
    running = await DeviceDriver.start({
      config: c,
      host: h,
      codec: createCodec({ crc: nativeCrc() }),
      transports: [
        tcpTransport(h.sockets, { bind: c.bind, port: c.port, portExplicit: c.portExplicit }),
      ],
      finder: c.discovery === "auto"
        ? async (self) => finder = await startPeerFinder(h, c, self)
        : undefined,
    }).catch(async (e) => {
      await identity?.release();
      throw e;
    });
    return running;
  };
  const driver = () => started ??= start();
  const linkEnhance = new LinkEnhance({ config: cfg, host: h, driver });
  const ability = new AbilityConnectionManager({
    config: cfg,
    host: h,
    driver,
    imageCodec: () => imageCodec ??= createImageCodec(),
  });
  return {
    createServer: (name) => linkEnhance.createServer(name),
    createConnection: (deviceId, name) => linkEnhance.createConnection(deviceId, name),
    abilityConnectionManager: ability,
    config: cfg,
    runtime: () => linkEnhance.driver(),
    knownDevices: () => finder?.list() ?? [],
    links: () => [...(running?.links().keys() ?? [])],
    id: () => running?.deviceId ?? cfg().deviceId,
    close: async () => {
      ability.shutdown();
      linkEnhance.shutdown();
      if (started !== undefined) await (await started.catch(() => undefined))?.close();
      await identity?.release();
      config = undefined;
      running = undefined;
    },
  };
}

let options: DeviceOptions = {};
let defaultDevice: Device | undefined;
let used = false;

/**
 * The process's default device, made on first use from {@linkcode configure}'s
 * options and `LINKWEAVE_*`; every API's module-level functions use it.
 *
 * @returns The device.
 */
export function processDevice(): Device {
  used = true;
  return defaultDevice ??= createDevice(options);
}

/**
 * Configure the process's device before first use: its id, TCP port, listen
 * address, static peers, discovery, limits (a linkweave extension that can
 * raise OpenHarmony's 10 servers / 10 connections) and timeouts. Fields not
 * given come from `LINKWEAVE_*` environment variables.
 *
 * @param config The options.
 * @throws {BusinessError} 32390300 once the device is in use.
 * @throws {TypeError} For a malformed option (code 401).
 *
 * @example
 * ```ts
 * configure({ limits: { connections: 100 } });
 * ```
 */
export function configure(config: DeviceOptions): void {
  if (used) {
    throw new BusinessError(
      ErrorCode.INTERNAL_ERROR,
      "Cannot configure: the device is already in use; call configure() first",
    );
  }
  resolveConfig(config, process.env);
  options = { ...config };
  defaultDevice = undefined;
}

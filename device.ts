/**
 * The device: one per process unless made explicitly, shared by every API
 * (`linkEnhance`, `abilityConnectionManager`, `distributedDeviceManager`).
 * It composes the device driver, the TCP transport, discovery, security, the
 * framing codec and the image codec, and hands the APIs their view of it.
 * Its id, port, peers and limits come from {@linkcode configure} or, when
 * that is not called, from `LINKWEAVE_*` environment variables
 * (`docs/config.md`).
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
import {
  type DeviceConfig,
  type DeviceOptions,
  normalizeDeviceId,
  resolveConfig,
} from "./core/device/config.ts";
import type { KnownDevice, PeerFinder } from "./core/discovery/finder.ts";
import { DeviceDriver, type DeviceRuntime, type LinkInfo } from "./core/device/driver.ts";
import type { DeviceSurface } from "./core/device/driver_options.ts";
import { AttachedDevice } from "./core/daemon/client.ts";
import {
  connectDaemonSocket,
  defaultDaemonSocket,
  socketExists,
} from "./platform/_daemon_socket.ts";
import type { DeviceHost } from "./core/device/host.ts";
import { type Connection, LinkEnhance, type Server } from "./core/link_enhance/mod.ts";
import { AbilityConnectionManager } from "./core/ability/mod.ts";
import type { ImageCodec } from "./core/ability/pixel_map.ts";
import { runtimeHost } from "./platform/host.ts";
import { claimIdentity, type HeldIdentity } from "./platform/identity.ts";
import { startPeerFinder } from "./_peer_finder.ts";
import { type DeviceSecurity, deviceSecurity, isLoopback } from "./_security.ts";
import type { TrustedDevice } from "./platform/security.ts";
import { newCode, passkey } from "./core/proto/handshake/pairing.ts";
import { ParameterError } from "./core/errors.ts";
import { nativeCrc } from "./platform/crc.ts";
import { deviceTransports } from "./_transports.ts";
import { createCodec } from "./wasm/mod.ts";
import { createImageCodec } from "./wasm/image.ts";

export type {
  DaemonChoice,
  DeviceConfig,
  DeviceOptions,
  Limits,
  OpenHarmonyOptions,
  PeerOptions,
  ProfileName,
  StaticPeer,
  TransportName,
} from "./core/device/config.ts";
export type { DeviceHost } from "./core/device/host.ts";
export type {
  ChannelHealth,
  DeviceRuntime,
  LinkChannelInfo,
  LinkInfo,
} from "./core/device/driver.ts";
export type { KnownAddress, KnownDevice, PeerSource } from "./core/discovery/finder.ts";
export type { PeerAddress } from "./core/discovery/wire.ts";
export type { TrustedDevice } from "./platform/security.ts";

let imageCodec: ImageCodec | undefined;

/** A device: its APIs and its runtime. */
export interface Device {
  /** Create a linkEnhance server on this device. */
  createServer(name: string): Server;
  /** Create a linkEnhance client connection from this device. */
  createConnection(deviceId: string, name: string): Connection;
  /** This device's `abilityConnectionManager` (abilities, sessions, streams). */
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
  /**
   * linkweave extension: the devices this one trusts (pinned in its account,
   * or paired); `[]` before the device started or with `security: "none"`.
   */
  trustedDevices(): TrustedDevice[];
  /**
   * linkweave extension: stop trusting a device: its key is refused from now
   * on, and its link (if any) is dropped at once.
   *
   * @param deviceId The device.
   * @returns Whether it was trusted.
   */
  revoke(deviceId: string): boolean;
  /**
   * linkweave extension: pair with a device that is not in this one's
   * account, with a 6-digit code a person reads on one and types on the
   * other (`docs/security.md`).
   */
  readonly pairing: Pairing;
  /** linkweave extension: the peers this device has a link to now; `[]` before it started. */
  links(): string[];
  /**
   * linkweave extension: the links open now, each with its channels and
   * what they measured (kind, MTU, round trip, delivery rate, bytes in
   * flight, health); `[]` before the device started, and in an app
   * attached to a daemon (the daemon owns the links). Read-only figures,
   * for monitoring (`docs/link-enhance.md`).
   */
  linkStats(): LinkInfo[];
  /** linkweave extension: this device's id, once known (configured, or chosen at start). */
  id(): string | undefined;
  /** Stop the device: end its sessions, close its links, listener and discovery. */
  close(): Promise<void>;
  /** linkweave extension: `await using device = createDevice()` closes it when the scope ends. */
  [Symbol.asyncDispose](): Promise<void>;
}

/** A pairing offer: the code to show, and the outcome. */
export interface PairingOffer {
  /** The 6-digit code to show the person. */
  code: string;
  /** The device that entered it; rejects when the attempt fails or the offer expires. */
  paired: Promise<TrustedDevice>;
}

/** Pairing with devices outside this one's account. */
export interface Pairing {
  /**
   * Show a code: the first device that enters it pairs with this one.
   *
   * @param options How long the offer stands. @default {{ timeout: 120000 }}
   * @returns The code and the outcome.
   */
  offer(options?: { timeout?: number }): Promise<PairingOffer>;
  /**
   * Enter the code another device shows.
   *
   * @param target That device's address, `host:port`.
   * @param code The 6 digits.
   * @returns The device paired with.
   */
  enter(target: string, code: string): Promise<TrustedDevice>;
}

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
  let started: Promise<DeviceDriver | AttachedDevice> | undefined;
  let running: DeviceDriver | AttachedDevice | undefined;
  let finder: PeerFinder | undefined;
  let identity: HeldIdentity | undefined;
  const h = host ?? runtimeHost();
  const cfg = () => config ??= resolveConfig(options, process.env);
  let secured: DeviceSecurity | undefined;
  const start = async () => {
    let c = cfg();
    const attached = await attachToDaemon(c, h);
    if (attached !== undefined) return running = attached;
    const t = await deviceTransports(h, c, { remembered: (id) => secured?.trust.addressOf(id) });
    identity = t.identity;
    c = { ...c, deviceId: c.deviceId ?? identity?.deviceId };
    // No id configured: take the first identity no live process holds (a given host decides itself).
    if (c.deviceId === undefined && host === undefined) {
      identity = await claimIdentity();
      c = { ...c, deviceId: identity.deviceId };
    }
    const deviceId = c.deviceId ?? await h.defaultDeviceId();
    c = { ...c, deviceId };
    secured = deviceSecurity(c, deviceId, identity?.dir);
    if (secured?.account.source === "per-user" && !isLoopback(c.bind)) {
      h.warn(
        `linkweave: listening on 127.0.0.1, not ${c.bind}: this device has no account of its own ` +
          "(set LINKWEAVE_ACCOUNT or LINKWEAVE_ACCOUNT_FILE to reach other machines)",
      );
      c = { ...c, bind: "127.0.0.1" };
    }
    running = await DeviceDriver.start({
      config: c,
      host: h,
      codec: createCodec({ crc: nativeCrc() }),
      transports: t.transports(c),
      profiles: t.profiles,
      finder: t.finder(
        c.discovery === "auto"
          ? async (self) => finder = await startPeerFinder(h, c, self, secured?.seal)
          : undefined,
      ),
      security: secured?.security,
      remembered: (id) => secured?.trust.addressOf(id),
    }).catch(async (e) => {
      await t.release();
      await identity?.release();
      throw e;
    });
    return running;
  };
  const driver = () => started ??= start();
  const api = new LinkEnhance({ config: cfg, host: h, driver });
  const ability = new AbilityConnectionManager({
    config: cfg,
    host: h,
    driver,
    imageCodec: () => imageCodec ??= createImageCodec(),
  });
  return {
    createServer: (name) => api.createServer(name),
    createConnection: (deviceId, name) => api.createConnection(deviceId, name),
    abilityConnectionManager: ability,
    config: cfg,
    runtime: () => api.driver(),
    knownDevices: () =>
      running instanceof AttachedDevice
        ? running.known().map((deviceId) => ({ deviceId, addresses: [], lastSeen: h.now() }))
        : finder?.list() ?? [],
    links: () => [...(running?.links().keys() ?? [])],
    linkStats: () => running instanceof AttachedDevice ? [] : running?.linkStats() ?? [],
    id: () => running?.deviceId ?? cfg().deviceId,
    trustedDevices: () => secured?.trust.list() ?? [],
    revoke: (deviceId) => {
      const id = normalizeDeviceId(deviceId, 401);
      notAttached(running, "revoke a device");
      const was = secured?.trust.revoke(id) ?? false;
      if (was) void started?.then((d) => (d as DeviceDriver).dropPeer(id), () => {});
      return was;
    },
    pairing: {
      offer: async (o = {}) => {
        const d = notAttached(await api.driver(), "offer pairing");
        const s = needSecurity(secured, "offer pairing");
        const code = newCode(s.security.crypto);
        const paired = d.offerPairing(code, o.timeout ?? 120_000).then((p) =>
          s.trust.list().find((t) => t.id === p.id)!
        );
        paired.catch(() => {}); // the caller decides whether to wait for it
        return { code, paired };
      },
      enter: async (target, code) => {
        const d = notAttached(await api.driver(), "pair");
        const s = needSecurity(secured, "pair");
        if (passkey(code) === undefined) {
          throw new ParameterError(
            `Invalid pairing code ${JSON.stringify(code)}: expected six digits`,
          );
        }
        const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(target);
        if (m === null) {
          throw new ParameterError(
            `Invalid pairing target ${JSON.stringify(target)}: expected "host:port"`,
          );
        }
        const p = await d.pair({ host: m[1], port: Number(m[2]) }, code);
        s.trust.remember(p.id, target);
        return s.trust.list().find((t) => t.id === p.id)!;
      },
    },
    close: async () => {
      ability.shutdown();
      api.shutdown();
      if (started !== undefined) await (await started.catch(() => undefined))?.close();
      await identity?.release();
      config = undefined;
      running = undefined;
    },
    [Symbol.asyncDispose](): Promise<void> {
      return this.close();
    },
  };
}

/** How long an application waits for a daemon's welcome (ms). */
const ATTACH_TIMEOUT = 3000;
/** How long it waits when it only looks for a daemon on the default socket (ms). */
const PROBE_TIMEOUT = 1000;

/**
 * The attach choice (`docs/daemon.md`): a device daemon's device when the
 * configuration asks for one (`daemon`, `LINKWEAVE_DAEMON`: attach or
 * fail), or, by default, when a daemon answers on the default socket;
 * `undefined`: run the device embedded.
 */
async function attachToDaemon(
  c: DeviceConfig,
  host: DeviceHost,
): Promise<AttachedDevice | undefined> {
  if (c.daemon === "off") return undefined;
  const required = c.daemon !== "auto";
  const path = (typeof c.daemon === "object" ? c.daemon.socket : undefined) ??
    defaultDaemonSocket(process.env);
  // No socket file: no daemon, and no connect attempt either.
  if (!required && !socketExists(path)) return undefined;
  const timeout = required ? ATTACH_TIMEOUT : PROBE_TIMEOUT;
  let socket: Awaited<ReturnType<typeof connectDaemonSocket>> | undefined;
  const device = new AttachedDevice({
    host,
    socket: path,
    pid: process.pid,
    transport: {
      write: (bytes) => socket?.write(bytes),
      get queued() {
        return socket?.queued ?? 0;
      },
      close: () => socket?.close(),
    },
  });
  try {
    socket = await connectDaemonSocket(path, {
      bytes: (b) => device.handleBytes(b),
      drained: () => device.handleDrained(),
      closed: (m) => device.handleClosed(m),
    });
    let timer: unknown;
    await Promise.race([
      device.attach(),
      new Promise<never>((_, reject) => {
        timer = host.setTimer(
          () => reject(new Error(`Cannot attach to "${path}": no welcome in ${timeout} ms`)),
          timeout,
        );
      }),
    ]).finally(() => host.clearTimer(timer));
  } catch (e) {
    socket?.close();
    if (required) throw e;
    return undefined; // no daemon answers: embedded
  }
  socket.unref();
  return device;
}

/** The embedded driver; an application attached to a daemon gets an error naming the action. */
function notAttached(d: DeviceSurface | undefined, action: string): DeviceDriver {
  if (d instanceof AttachedDevice) {
    throw new BusinessError(
      ErrorCode.INTERNAL_ERROR,
      `Cannot ${action}: this application is attached to the device daemon, which owns the device`,
    );
  }
  return d as DeviceDriver;
}

function needSecurity(s: DeviceSecurity | undefined, action: string): DeviceSecurity {
  if (s === undefined) {
    throw new BusinessError(
      ErrorCode.INTERNAL_ERROR,
      `Cannot ${action}: this device runs with security: "none"`,
    );
  }
  return s;
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

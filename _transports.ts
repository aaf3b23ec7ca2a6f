/**
 * Composes the transports, link profiles and peer lookup of a device made by
 * `createDevice`: a private root module.
 *
 * - **IP** (`tcp` channels) when `transports` has `ip`.
 * - **BLE** through BlueZ when `transports` has `bluez`: on the configured
 *   adapter, else the first powered one. By default (no `transports`, no
 *   `adapter` configured) BlueZ is used only when it is there: no system
 *   bus, no bluetoothd, no adapter or none powered means IP only, silently
 *   (a D-Bus policy refusing this user is said once). When `transports` or
 *   `adapter` is configured, BlueZ is required and each of those is an
 *   error that says what to do. One device per adapter: it holds the
 *   adapter's lock (`$XDG_STATE_HOME/linkweave/adapters/<address>/lock`); a
 *   second device gets an error (configured) or runs IP only (default).
 *   With BLE in use and no configured id, the device id is the adapter's
 *   address, and the device holds that id's identity (its key and trust):
 *   `identities/default` for `hci0`, whose address that identity already
 *   takes in IP-only runs (`platform/identity.ts`), else `ids/<address>`.
 * - **Profiles**: BLE links use `profile` (or a peer's own, from the map form
 *   of `peers`); the listener serves linkweave's GATT service unless every
 *   BLE link is `openharmony`, and OpenHarmony's service when any is.
 * - **Which path a peer is dialled on** (`docs/bluez.md`): a static IP
 *   address is used first (the driver's rule); then a peer configured with
 *   the `openharmony` profile is dialled over BLE only; any other peer over
 *   IP when discovery (or pairing) knows an address for it, else over BLE at
 *   its id as a Bluetooth address. When both are known, a dial that follows
 *   an IP dial to the same peer within {@linkcode FALLBACK_WINDOW} ms (the IP
 *   dial failed, or its link died at once) goes over BLE, and the next over
 *   IP again: BLE is the backup.
 *
 * @module
 */
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import process from "node:process";
import type { PeerAddress, PeerFinder, Transport } from "./core/device/channel.ts";
import type { DeviceConfig, ProfileName } from "./core/device/config.ts";
import type { EndpointOptions } from "./core/device/endpoint.ts";
import type { ProfileFactory } from "./core/device/profile.ts";
import type { DeviceHost } from "./core/device/host.ts";
import { socketErrorCode } from "./core/error_codes.ts";
import { PlatformError } from "./core/errors.ts";
import { randomDevid } from "./core/proto/openharmony/machine.ts";
import { OhProfileLink, ProfileIds } from "./core/proto/openharmony/profile_link.ts";
import { bleTransport } from "./platform/ble_transport.ts";
import { type Adapter, type Bluez, openBluez } from "./platform/bluez/mod.ts";
import { DBusError, DBusErrorName } from "./platform/bluez/dbus/errors.ts";
import {
  DEFAULT_IDENTITY,
  type HeldIdentity,
  IDENTITIES_DIR,
  LOCK_FILE,
  stateDirectory,
  tryLock,
} from "./platform/identity.ts";
import { tcpTransport } from "./platform/tcp_transport.ts";

/** How long the default (unconfigured) BlueZ probe may take (ms). */
export const PROBE_TIMEOUT = 3000;
/** A dial within this many ms of an IP dial to the same peer goes over BLE (ms). */
export const FALLBACK_WINDOW = 5000;

/** A device's transports and what goes with them. */
export interface DeviceTransports {
  /**
   * With BLE in use and no configured id: the identity the adapter gives
   * (its address as the device id), held (locked) by this device; the
   * caller releases it when the device closes.
   */
  identity?: HeldIdentity;
  /**
   * The transports for the driver.
   *
   * @param config The configuration the device starts with (TCP listens at its `bind`, which
   *   the security rules may have changed since).
   * @returns The transports.
   */
  transports(config: DeviceConfig): Transport[];
  /** The link profiles for the driver. */
  profiles: NonNullable<EndpointOptions["profiles"]>;
  /**
   * The driver's peer-finder factory: the IP finder (when IP discovery runs)
   * with BLE added as this module describes.
   *
   * @param ip Makes the IP finder, or `undefined` without IP discovery.
   * @returns The factory, or `undefined` when there is nothing to find with.
   */
  finder(
    ip: ((self: FinderSelf) => Promise<PeerFinder>) | undefined,
  ): ((self: FinderSelf) => Promise<PeerFinder>) | undefined;
  /** Undo everything (the device failed to start). */
  release(): Promise<void>;
}

/** What a finder factory is told about the device. */
export interface FinderSelf {
  /** Its id. */
  deviceId: string;
  /** Its runtime nonce. */
  nonce: string;
  /** Its TCP port. */
  port: number;
}

/** BlueZ in use: the handle, the adapter, the adapter's lock, the identity it gives. */
interface Ble {
  bluez: Bluez;
  adapter: Adapter;
  unlock: () => Promise<void>;
  identity: HeldIdentity | undefined;
}

/**
 * The transports of a device about to start.
 *
 * @param host The machine.
 * @param config Its configuration.
 * @param options Addresses remembered at pairing.
 * @returns The transports; rejects when BlueZ is required and cannot be used.
 */
export async function deviceTransports(
  host: DeviceHost,
  config: DeviceConfig,
  options: { remembered?: (deviceId: string) => PeerAddress | undefined } = {},
): Promise<DeviceTransports> {
  const ip = config.transports.includes("ip");
  const ble = config.transports.includes("bluez") ? await openBle(host, config) : undefined;
  const transports: Transport[] = [];
  let closed = false;
  const close = async () => {
    if (closed || ble === undefined) return;
    closed = true;
    await ble.bluez.close().catch(() => {});
    await ble.unlock();
  };
  let bleListener: { close(): Promise<void> } | undefined;
  if (ble !== undefined) {
    const profileFor = (peer: string): ProfileName => config.peerProfiles[peer] ?? config.profile;
    const serve: ProfileName[] = [];
    if (config.profile === "linkweave") serve.push("linkweave");
    if (
      config.profile === "openharmony" ||
      Object.values(config.peerProfiles).includes("openharmony")
    ) {
      serve.push("openharmony");
    }
    const t = bleTransport({
      adapter: ble.adapter,
      profileFor,
      serve,
      connectTimeout: config.connectTimeout,
      log: (m) => host.warn(`linkweave: ${m}`),
      onIdle: () => void close(),
    });
    transports.push({
      kind: t.kind,
      dial: (address, events) => t.dial(address, events),
      listen: async (events) => (bleListener = await t.listen(events)),
    });
  }

  const profiles: Record<string, ProfileFactory> = {};
  const bundleName = config.bundleName;
  if (bundleName !== undefined) {
    // One presented id and one general-id space per device run.
    const devid = config.openharmony.devid ?? randomDevid();
    const ids = new ProfileIds();
    profiles.openharmony = (peerId) =>
      new OhProfileLink({
        peerId,
        bundleName,
        devid,
        devtype: config.openharmony.devtype,
        ids,
      });
  }
  return {
    identity: ble?.identity,
    transports: (c) =>
      ip
        ? [
          ...transports,
          tcpTransport(host.sockets, { bind: c.bind, port: c.port, portExplicit: c.portExplicit }),
        ]
        : transports,
    profiles,
    finder(ipFinder) {
      if (ble === undefined) return ip ? ipFinder : undefined;
      return async (self) => {
        let inner: PeerFinder | undefined;
        if (ip && ipFinder !== undefined) {
          try {
            inner = await ipFinder(self);
          } catch (e) {
            host.warn(`linkweave: discovery unavailable: ${(e as Error).message}`);
          }
        }
        return withBle(host, config, ip ? inner : undefined, ip ? options.remembered : undefined);
      };
    },
    release: async () => {
      await bleListener?.close().catch(() => {});
      await close();
    },
  };
}

/** Open BlueZ for a device, or `undefined` when it is not there and not required. */
async function openBle(host: DeviceHost, config: DeviceConfig): Promise<Ble | undefined> {
  const required = config.transportsExplicit || config.adapter !== undefined;
  let bluez: Bluez | undefined;
  const held: (() => Promise<void>)[] = [];
  const busy = (adapter: Adapter) =>
    new PlatformError(
      socketErrorCode(16), // EBUSY
      `Cannot use adapter "${adapter.name}" (${adapter.address}) for BLE: another linkweave ` +
        "device holds it (one device per adapter: pick another with LINKWEAVE_ADAPTER, or use " +
        "LINKWEAVE_TRANSPORTS=ip)",
      { data: { platform: "bluez", name: "EBUSY" } },
    );
  try {
    const opening = openBluez({
      keepAlive: false,
      logger: (m) => host.warn(`linkweave: ${m}`),
    });
    bluez = required ? await opening : await within(opening, PROBE_TIMEOUT);
    const adapter = bluez.adapter(config.adapter);
    adapter.requirePowered(`Cannot use adapter "${adapter.name}" for BLE`);
    const address = adapter.address;
    const stateDir = stateDirectory(process.env);
    // One device per adapter.
    const unlockAdapter = await lockIn(join(stateDir, "adapters", address.replaceAll(":", "-")));
    if (unlockAdapter === undefined) throw busy(adapter);
    held.push(unlockAdapter);
    let identity: HeldIdentity | undefined;
    if (config.deviceId === undefined) {
      // The adapter's address is the device id, and its identity (key, trust)
      // is the one IP-only runs of this machine use for that id: `default`
      // for hci0 (platform/identity.ts), else one folder per address.
      const hci0 = adapter.name === "hci0";
      const dir = hci0
        ? join(stateDir, IDENTITIES_DIR, DEFAULT_IDENTITY)
        : join(stateDir, "ids", address.replaceAll(":", "-"));
      const release = await lockIn(dir);
      if (release === undefined) throw busy(adapter);
      identity = { name: hci0 ? DEFAULT_IDENTITY : address, deviceId: address, dir, release };
    }
    return { bluez, adapter, unlock: unlockAdapter, identity };
  } catch (e) {
    await bluez?.close().catch(() => {});
    for (const release of held) await release();
    if (required) throw e;
    // By default BLE is used only when it is there; a policy that refuses
    // this user is worth saying (the user probably wants BLE).
    if (e instanceof DBusError && e.dbusName === DBusErrorName.ACCESS_DENIED) {
      host.warn(`linkweave: BLE unavailable, using IP only: ${e.message}`);
    }
    return undefined;
  }
}

/** Take the lock file of a folder (made if missing), as identities are locked. */
async function lockIn(dir: string): Promise<(() => Promise<void>) | undefined> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  return await tryLock(join(dir, LOCK_FILE));
}

/** A promise, or a timeout error (closing what it brings later). */
function within(p: Promise<Bluez>, ms: number): Promise<Bluez> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new DBusError(DBusErrorName.NO_REPLY, "Cannot reach BlueZ", { text: "no answer" }));
      void p.then((b) => b.close(), () => {});
    }, ms);
    p.then((b) => {
      clearTimeout(timer);
      resolve(b);
    }, (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

/** The driver's finder with BLE: the rules of this module's documentation. */
function withBle(
  host: DeviceHost,
  config: DeviceConfig,
  inner: PeerFinder | undefined,
  remembered: ((deviceId: string) => PeerAddress | undefined) | undefined,
): PeerFinder {
  const lastIp = new Map<string, number>();
  const ble = (id: string): PeerAddress => ({ transport: "ble", host: id, port: 0 });
  return {
    lookup(id) {
      if (config.peerProfiles[id] === "openharmony") return ble(id);
      const known = inner?.lookup(id) ?? remembered?.(id);
      if (known === undefined) {
        inner?.announce();
        return ble(id);
      }
      const now = host.now();
      const last = lastIp.get(id);
      if (last !== undefined && now - last < FALLBACK_WINDOW) {
        lastIp.delete(id);
        return ble(id);
      }
      if (lastIp.size > 256) lastIp.clear();
      lastIp.set(id, now);
      return known;
    },
    announce: () => inner?.announce(),
    close: async () => await inner?.close(),
  };
}

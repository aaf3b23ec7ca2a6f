/**
 * One peer finder over several directories of devices: the local registry
 * (devices of this user on this machine) first, then multicast discovery.
 * It has the shape the device runtime consumes (`lookup`, `announce`,
 * `close`) and lists every known device with its addresses (`list`), for the
 * device manager and the command line. Pure: the directories do the I/O.
 *
 * @module
 */
import { isDeviceId } from "../device/config.ts";
import type { PeerFinder as ChannelPeerFinder } from "../device/channel.ts";
import type { Discovery } from "./driver.ts";
import { Capability, type PeerAddress } from "./wire.ts";

/** Where an address was learned. */
export type PeerSource = "local" | "multicast";

/** An address of a known device. */
export interface KnownAddress extends PeerAddress {
  /** Where it was learned. */
  source: PeerSource;
}

/** A device a finder knows. */
export interface KnownDevice {
  /** Its device id, upper-case. */
  deviceId: string;
  /** Its TCP addresses, the one dials use first. */
  addresses: KnownAddress[];
  /** When it was last heard of, on the host's monotonic clock (ms). */
  lastSeen: number;
  /** The highest discovery wire version both speak (multicast only). */
  version?: number;
  /** Its capability bits (multicast only). */
  capabilities?: number;
}

/** A source of known devices. */
export interface DeviceDirectory {
  /**
   * A device by id.
   *
   * @param deviceId The id, upper-case.
   * @returns The device, or `undefined`.
   */
  find(deviceId: string): KnownDevice | undefined;
  /**
   * Every device it knows.
   *
   * @returns The devices.
   */
  list(): KnownDevice[];
  /** Ask the network now (or re-read the registry). */
  announce(): void;
  /**
   * A dial to this address of the device reached another device: stop
   * offering it for the device (directories that learn from the network).
   *
   * @param deviceId The id, upper-case.
   * @param address The address dialled.
   */
  refute?(deviceId: string, address: PeerAddress): void;
  /**
   * Stop.
   *
   * @returns When stopped.
   */
  close(): Promise<void>;
}

/** What the device driver consumes (`core/device/channel.ts`), plus `list()`. */
export interface PeerFinder extends ChannelPeerFinder {
  /**
   * Every known device with its addresses, merged over the directories.
   *
   * @returns The devices, in the order the directories list them.
   */
  list(): KnownDevice[];
}

/**
 * Multicast discovery as a directory: each peer's established endpoint, then
 * the further addresses it announced. Peers without the `LINK_TCP`
 * capability are listed with no address.
 *
 * @param discovery A running discovery.
 * @returns The directory.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const d = multicastDirectory({
 *   deviceId: "02:00:00:00:00:01", nonce: "0000000000000001",
 *   lookup: () => undefined, peers: () => [], announce() {}, refute() {}, close: async () => {},
 * });
 * assert.deepEqual(d.list(), []);
 * ```
 */
export function multicastDirectory(discovery: Discovery): DeviceDirectory {
  const known = (p: ReturnType<Discovery["peers"]>[number]): KnownDevice => ({
    deviceId: p.deviceId,
    addresses: (p.capabilities & Capability.LINK_TCP) === 0 ? [] : [
      { host: p.host, port: p.port, source: "multicast" },
      ...p.addresses.map((a) => ({ host: a.host, port: a.port, source: "multicast" as const })),
    ],
    lastSeen: p.lastSeen,
    version: p.version,
    capabilities: p.capabilities,
  });
  return {
    find: (deviceId) => {
      const p = discovery.lookup(deviceId);
      return p === undefined ? undefined : known(p);
    },
    list: () => discovery.peers().map(known),
    announce: () => discovery.announce(),
    refute: (deviceId, address) => discovery.refute(deviceId, address),
    close: () => discovery.close(),
  };
}

/**
 * A finder over directories, asked in order: `lookup` takes the first
 * address of the first directory that knows the device, `addresses` all of
 * that directory's addresses of it (no repeats); `list` merges the
 * devices by id (addresses in directory order, without repeats).
 *
 * @param directories The directories, most trusted first (local registry, then multicast).
 * @returns The finder.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const local = {
 *   find: (id: string) => id === "02:00:00:00:00:02"
 *     ? { deviceId: id, addresses: [{ host: "127.0.0.1", port: 4000, source: "local" as const }], lastSeen: 5 }
 *     : undefined,
 *   list: () => [],
 *   announce() {},
 *   close: async () => {},
 * };
 * const finder = combineDirectories([local]);
 * assert.deepEqual(finder.lookup("02:00:00:00:00:02"), { host: "127.0.0.1", port: 4000 });
 * assert.equal(finder.lookup("02:00:00:00:00:03"), undefined);
 * ```
 */
export function combineDirectories(directories: readonly DeviceDirectory[]): PeerFinder {
  const dirs = [...directories];
  return {
    lookup(deviceId) {
      if (!isDeviceId(deviceId)) return undefined;
      const id = deviceId.toUpperCase();
      for (const d of dirs) {
        const a = d.find(id)?.addresses[0];
        if (a !== undefined) return { host: a.host, port: a.port };
      }
      return undefined;
    },
    addresses(deviceId) {
      if (!isDeviceId(deviceId)) return [];
      const id = deviceId.toUpperCase();
      for (const d of dirs) {
        const found = d.find(id)?.addresses ?? [];
        const out: PeerAddress[] = [];
        for (const a of found) {
          if (!out.some((b) => b.host === a.host && b.port === a.port)) {
            out.push({ host: a.host, port: a.port });
          }
        }
        if (out.length > 0) return out;
      }
      return [];
    },
    list() {
      const out = new Map<string, KnownDevice>();
      for (const d of dirs) {
        for (const dev of d.list()) {
          const seen = out.get(dev.deviceId);
          if (seen === undefined) {
            out.set(dev.deviceId, { ...dev, addresses: [...dev.addresses] });
            continue;
          }
          for (const a of dev.addresses) {
            if (!seen.addresses.some((b) => b.host === a.host && b.port === a.port)) {
              seen.addresses.push(a);
            }
          }
          seen.lastSeen = Math.max(seen.lastSeen, dev.lastSeen);
          seen.version ??= dev.version;
          seen.capabilities ??= dev.capabilities;
        }
      }
      return [...out.values()];
    },
    announce() {
      for (const d of dirs) d.announce();
    },
    refuted(deviceId, address) {
      if (!isDeviceId(deviceId)) return;
      for (const d of dirs) d.refute?.(deviceId.toUpperCase(), address);
    },
    async close() {
      await Promise.allSettled(dirs.map((d) => d.close()));
    },
  };
}

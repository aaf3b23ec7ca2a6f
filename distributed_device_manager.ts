/**
 * `distributedDeviceManager` (OpenHarmony `@ohos.distributedDeviceManager`),
 * as much as finding a collaboration peer needs: a {@linkcode DeviceManager}
 * lists the devices the process's device knows (its static peers, the
 * devices discovery found, the peers it has a link to), tells this device's
 * network id and name, and reports devices coming and going.
 *
 * A device's `networkId` (and `deviceId`) is its linkweave device id
 * (`AA:BB:CC:DD:EE:FF`): what `PeerInfo.deviceId` of
 * `abilityConnectionManager` takes. `deviceName` is the host name for this
 * device and the device id for peers (discovery carries no names);
 * `deviceType` is `"pc"`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "./device.ts";
 * const d = createDevice({
 *   deviceId: "02:00:00:00:00:D1", port: 0, discovery: "off",
 *   peers: ["02:00:00:00:00:D2@127.0.0.1:9"],
 * });
 * const dm = createDeviceManager("com.example.demo", { device: d });
 * assert.deepEqual(dm.getAvailableDeviceListSync().map((x) => x.networkId), ["02:00:00:00:00:D2"]);
 * assert.equal(dm.getLocalDeviceNetworkId(), "02:00:00:00:00:D1");
 * releaseDeviceManager(dm);
 * await d.close();
 * ```
 *
 * @module
 */
import { hostname } from "node:os";
import { ParameterError } from "./core/errors.ts";
import { BusinessError } from "./core/errors.ts";
import { utf8Length } from "./core/_utf8.ts";
import { type Device, processDevice } from "./device.ts";

/** A device as the manager lists it. */
export interface DeviceBasicInfo {
  /** Its id (the linkweave device id). */
  deviceId: string;
  /** Its name. */
  deviceName: string;
  /** Its type: `"pc"`. */
  deviceType: string;
  /** Its network id: what `PeerInfo.deviceId` takes. */
  networkId?: string;
}

/** How a device's state changed. */
export const DeviceStateChange = {
  /** Unknown. */
  UNKNOWN: 0,
  /** It became available. */
  AVAILABLE: 1,
  /** It is no longer available. */
  UNAVAILABLE: 2,
} as const;

/** What a `deviceStateChange` callback receives. */
export interface DeviceStateChangeInfo {
  /** `DeviceStateChange`. */
  action: number;
  /** The device. */
  device: DeviceBasicInfo;
}

/** Options of {@linkcode createDeviceManager} (a linkweave extension). */
export interface DeviceManagerOptions {
  /** The device to manage. @default {the process's device} */
  device?: Device;
  /** How often the list is compared for `deviceStateChange` (ms). @default {1000} */
  pollInterval?: number;
}

/** The `getLocalDeviceType()` value of a PC (OpenHarmony's `DEVICE_TYPE_PC`). */
const DEVICE_TYPE_PC = 0x0c;

declare const Deno: { unrefTimer(id: number): void } | undefined;

function unref(t: unknown): void {
  if (typeof t === "number") {
    if (typeof Deno !== "undefined") Deno.unrefTimer(t);
  } else {
    (t as { unref?: () => void }).unref?.();
  }
}

/** Finds devices and reports their changes. */
export class DeviceManager {
  #device: Device;
  #bundleName: string;
  #interval: number;
  #listeners = new Set<(info: DeviceStateChangeInfo) => void>();
  #timer: ReturnType<typeof setInterval> | undefined;
  #last = new Map<string, DeviceBasicInfo>();
  #released = false;

  /**
   * @internal Use {@linkcode createDeviceManager}.
   * @param bundleName The application's bundle name.
   * @param options The device and the poll interval.
   */
  constructor(bundleName: string, options: DeviceManagerOptions = {}) {
    this.#bundleName = bundleName;
    this.#device = options.device ?? processDevice();
    this.#interval = options.pollInterval ?? 1000;
    // The device starts now, so discovery and links are known soon.
    this.#device.runtime().catch(() => {});
  }

  /** The bundle name it was made for. */
  get bundleName(): string {
    return this.#bundleName;
  }

  #live(action: string): void {
    if (this.#released) {
      throw new BusinessError(401, `Cannot ${action}: the device manager was released`);
    }
  }

  /**
   * The devices known now: static peers, discovered devices, linked peers.
   *
   * @returns The devices.
   */
  getAvailableDeviceListSync(): DeviceBasicInfo[] {
    this.#live("list devices");
    const ids = new Set<string>();
    for (const p of this.#device.config().peers) ids.add(p.deviceId);
    for (const k of this.#device.knownDevices()) ids.add(k.deviceId);
    for (const id of this.#device.links()) ids.add(id);
    return [...ids].map((id) => ({
      deviceId: id,
      deviceName: id,
      deviceType: "pc",
      networkId: id,
    }));
  }

  /**
   * The devices known now.
   *
   * @returns The devices.
   */
  getAvailableDeviceList(): Promise<DeviceBasicInfo[]> {
    try {
      return Promise.resolve(this.getAvailableDeviceListSync());
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * This device's network id.
   *
   * @returns The id; `""` while the device is starting and chose no id yet.
   */
  getLocalDeviceNetworkId(): string {
    this.#live("get the network id");
    return this.#device.id() ?? "";
  }

  /**
   * This device's id (the same as its network id).
   *
   * @returns The id.
   */
  getLocalDeviceId(): string {
    return this.getLocalDeviceNetworkId();
  }

  /**
   * This device's name: the host name.
   *
   * @returns The name.
   */
  getLocalDeviceName(): string {
    this.#live("get the device name");
    return hostname();
  }

  /**
   * This device's type.
   *
   * @returns `0x0C` (PC).
   */
  getLocalDeviceType(): number {
    this.#live("get the device type");
    return DEVICE_TYPE_PC;
  }

  /**
   * Hear about devices becoming available or unavailable (checked every
   * `pollInterval`).
   *
   * @param type `"deviceStateChange"`.
   * @param callback The callback.
   * @throws {TypeError} 401 for a bad argument.
   */
  on(type: "deviceStateChange", callback: (info: DeviceStateChangeInfo) => void): void {
    this.#live("listen");
    if (type !== "deviceStateChange") {
      throw new ParameterError(
        `Invalid event type ${JSON.stringify(type)}: expected "deviceStateChange"`,
      );
    }
    if (typeof callback !== "function") {
      throw new ParameterError("Invalid callback: expected a function");
    }
    this.#listeners.add(callback);
    if (this.#timer === undefined) {
      for (const d of this.getAvailableDeviceListSync()) this.#last.set(d.deviceId, d);
      this.#timer = setInterval(() => this.#poll(), this.#interval);
      unref(this.#timer);
    }
  }

  /**
   * Stop hearing about devices.
   *
   * @param type `"deviceStateChange"`.
   * @param callback The callback; every callback when absent.
   * @throws {TypeError} 401 for a bad type.
   */
  off(type: "deviceStateChange", callback?: (info: DeviceStateChangeInfo) => void): void {
    if (type !== "deviceStateChange") {
      throw new ParameterError(
        `Invalid event type ${JSON.stringify(type)}: expected "deviceStateChange"`,
      );
    }
    if (callback === undefined) this.#listeners.clear();
    else this.#listeners.delete(callback);
    if (this.#listeners.size === 0) this.#stop();
  }

  #poll(): void {
    const now = new Map(this.getAvailableDeviceListSync().map((d) => [d.deviceId, d]));
    const changes: DeviceStateChangeInfo[] = [];
    for (const [id, d] of now) {
      if (!this.#last.has(id)) changes.push({ action: DeviceStateChange.AVAILABLE, device: d });
    }
    for (const [id, d] of this.#last) {
      if (!now.has(id)) changes.push({ action: DeviceStateChange.UNAVAILABLE, device: d });
    }
    this.#last = now;
    for (const c of changes) {
      for (const cb of [...this.#listeners]) {
        try {
          cb(c);
        } catch (error) {
          console.error("linkweave: a deviceStateChange callback threw:", error);
        }
      }
    }
  }

  #stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** @internal Stop and forget everything (`releaseDeviceManager`). */
  release(): void {
    this.#listeners.clear();
    this.#stop();
    this.#released = true;
  }
}

/**
 * A device manager for an application.
 *
 * @param bundleName The application's bundle name (1..255 UTF-8 bytes).
 * @param options linkweave extension: the device and the poll interval.
 * @returns The manager.
 * @throws {TypeError} 401 for a bad bundle name.
 */
export function createDeviceManager(
  bundleName: string,
  options: DeviceManagerOptions = {},
): DeviceManager {
  if (typeof bundleName !== "string" || bundleName === "" || utf8Length(bundleName) > 255) {
    throw new ParameterError(
      `Invalid bundleName ${JSON.stringify(bundleName)}: expected 1..255 UTF-8 bytes`,
    );
  }
  return new DeviceManager(bundleName, options);
}

/**
 * Release a device manager: its listeners stop.
 *
 * @param deviceManager The manager.
 * @throws {TypeError} 401 for something that is not a manager.
 */
export function releaseDeviceManager(deviceManager: DeviceManager): void {
  if (!(deviceManager instanceof DeviceManager)) {
    throw new ParameterError("Invalid deviceManager: expected a DeviceManager");
  }
  deviceManager.release();
}

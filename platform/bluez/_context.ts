/**
 * What the BlueZ modules share: interface names, paths, and the context a
 * {@linkcode Bluez} hands to its adapters, links and servers.
 *
 * @module
 */
import type { DBusConnection } from "./dbus/connection.ts";
import type { Libc } from "./dbus/_ffi.ts";
import type { ObjectTree } from "./_objects.ts";

/** BlueZ's interfaces used here. */
export const Iface = {
  ADAPTER: "org.bluez.Adapter1",
  DEVICE: "org.bluez.Device1",
  SERVICE: "org.bluez.GattService1",
  CHAR: "org.bluez.GattCharacteristic1",
  GATT_MANAGER: "org.bluez.GattManager1",
  ADV_MANAGER: "org.bluez.LEAdvertisingManager1",
  ADVERTISEMENT: "org.bluez.LEAdvertisement1",
} as const;

/** What the parts of this module share. */
export interface BluezContext {
  /** The bus. */
  bus: DBusConnection;
  /** BlueZ's objects. */
  tree: ObjectTree;
  /** The C library when the fd path is usable. */
  libc: Libc | undefined;
  /** Log once. */
  log(message: string): void;
  /** Listen for bluetoothd leaving the bus. */
  onGone(cb: () => void): () => void;
  /** Devices this process connects to as a central (a server must not take them for centrals). */
  outgoing: Set<string>;
  /** Whether BlueZ's sockets keep the process alive while open. */
  keepAlive: boolean;
}

/** The object path of a device under an adapter. */
export function devicePath(adapterPath: string, address: string): string {
  return `${adapterPath}/dev_${address.toUpperCase().replaceAll(":", "_")}`;
}

/**
 * BLE through BlueZ over D-Bus, as a transport: adapters, scanning, and GATT
 * links in both roles whose channels are duplex byte paths (one per
 * characteristic pair of a {@linkcode GattProfile}).
 *
 * @module
 */
export {
  Adapter,
  type AdapterInfo,
  Bluez,
  type BluezOptions,
  checkAddress,
  type DeviceInfo,
  Discovery,
  type DiscoveryEventMap,
  type DiscoveryOptions,
  openBluez,
} from "./bluez.ts";
export {
  type ChannelEventMap,
  type ChannelSink,
  type CloseReason,
  GattChannel,
  GattLink,
  type LinkClose,
  type LinkEventMap,
  MAX_UNREAD_VALUES,
  MIN_ATT_MTU,
} from "./channel.ts";
export type { ConnectOptions, DeviceConnectOptions } from "./_central.ts";
export { GattServer, type ServeOptions, type ServerEventMap } from "./_peripheral.ts";
export { devicePath, Iface } from "./_context.ts";
export {
  type ChannelSpec,
  type CharacteristicSpec,
  checkProfile,
  type GattProfile,
  LINKWEAVE_SERVICE,
  linkweaveProfile,
  MAX_LINKWEAVE_CHANNELS,
  normalizeUuid,
  OPENHARMONY_PROFILE,
  OPENHARMONY_SERVICE,
} from "./profile.ts";

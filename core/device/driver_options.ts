/**
 * The device driver's options and the running device as its users see it
 * (see `driver.ts`).
 *
 * @module
 */
import type { DeviceConfig } from "./config.ts";
import type { Codec } from "../proto/frame.ts";
import type { PeerAddress, PeerFinder, Transport } from "./channel.ts";
import type { EndpointOptions } from "./endpoint.ts";
import type { DeviceHost } from "./host.ts";

/** Options of `DeviceDriver.connect`. */
export interface DriverConnectOptions {
  /** Give up after this long (ms). @default {config.connectTimeout} */
  timeout?: number;
  /** Service kind. @default {0} */
  kind?: number;
  /** Bundle name. @default {""} */
  bundle?: string;
}

/** Options of `DeviceDriver.start`. */
export interface DriverOptions {
  /** The configuration (device id resolved or to be resolved). */
  config: DeviceConfig;
  /** The machine: clock, timers, holds, identity, warnings. */
  host: DeviceHost;
  /** The framing codec. */
  codec: Codec;
  /** The transports to listen on and dial with; the first one is the default. */
  transports: readonly Transport[];
  /** Makes a peer finder once the device knows its id and address. */
  finder?: (self: { deviceId: string; nonce: string; port: number }) => Promise<PeerFinder>;
  /** Identity, account, trust and crypto of the authenticated handshake; absent: `security: "none"`. */
  security?: EndpointOptions["security"];
  /** More addresses to try for a peer (remembered at pairing), after the static list and the finder. */
  remembered?: (deviceId: string) => PeerAddress | undefined;
  /** Links of other profiles, by name (see `core/device/profile.ts`). */
  profiles?: EndpointOptions["profiles"];
}

/** A device paired with this one. */
export interface PairedPeer {
  /** Its device id. */
  id: string;
  /** Its key. */
  publicKey: Uint8Array;
}

/** A running device, as its users see it. */
export interface DeviceRuntime {
  /** This device's id. */
  readonly deviceId: string;
  /** This runtime's nonce (new at every start). */
  readonly nonce: string;
  /** The TCP port it listens on (0 without TCP). */
  readonly port: number;
  /** The address it listens on. */
  readonly bind: string;
  /**
   * Links currently open, by peer id, with their channel counts.
   *
   * @returns The links.
   */
  links(): Map<string, number>;
}

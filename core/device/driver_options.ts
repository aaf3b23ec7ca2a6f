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
import type { Acceptor, Port, PortDriver } from "./port.ts";

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

/**
 * What the API layers (`linkEnhance`, `abilityConnectionManager`) use of a
 * device: the seam between them and whoever runs the device. The embedded
 * {@linkcode DeviceDriver} (`driver.ts`) implements it, and so does an app
 * attached to a device daemon (`core/daemon/client.ts`), so the API layers
 * run unchanged on either.
 */
export interface DeviceSurface extends DeviceRuntime, PortDriver {
  /**
   * Set who answers incoming connections of one service kind.
   *
   * @param kind The service kind (`ServiceKind`).
   * @param acceptor Returns a port to accept, or a code to refuse.
   */
  setAcceptor(kind: number, acceptor: Acceptor): void;
  /**
   * Hear about a listener that died (nothing more is accepted).
   *
   * @param fn The callback.
   */
  onListenerFailed(fn: (error: Error) => void): void;
  /**
   * Open a connection to a peer's service; the port hears `onOpened`,
   * `onRejected` or `onFailed`.
   *
   * @param peerId The peer's device id.
   * @param name The service name.
   * @param port The connection.
   * @param options Timeout, service kind and bundle name.
   */
  connect(peerId: string, name: string, port: Port, options?: DriverConnectOptions): void;
  /**
   * Keep the process alive until queued bytes are written, or `ms` passed.
   *
   * @param ms The longest wait.
   */
  linger(ms: number): void;
  /**
   * Name the services of one kind this process answers now (linkEnhance
   * server names in lower case, ability keys): a device daemon routes
   * incoming connections by them. The embedded driver answers everything
   * itself and needs no list.
   *
   * @param kind The service kind.
   * @param names Every name served now (replaces the previous list).
   */
  serve?(kind: number, names: readonly string[]): void;
}

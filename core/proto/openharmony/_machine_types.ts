/**
 * The types, options, limits and id helpers of an OpenHarmony link
 * ({@linkcode OhLink} in `machine.ts`, which re-exports the public ones): its
 * events, transmits, options, the general-id allocator shared by a device's
 * links, and the record of one connection.
 *
 * @module
 */
import type { LinkEvent } from "../link/mod.ts";
import { GENERAL_ID_BASE, type OhCharacteristic, OhLimits } from "./wire.ts";

/** Our GATT role on the BLE connection. */
export type OhRole = "server" | "client";

/** What an OpenHarmony link reports: a {@linkcode LinkEvent}, or a merge. */
export type OhLinkEvent =
  | LinkEvent
  | {
    /**
     * The peer moved a connection to another link (MERGE): the connection
     * `stream` now belongs on the link where our connection `into` is. Move
     * it with {@linkcode OhLink.release} and {@linkcode OhLink.adopt}; until
     * then it stays here.
     */
    type: "merge";
    stream: number;
    owner: unknown;
    into: number;
  };

/** Bytes to send: a notification (server role) or a write without response (client role). */
export interface OhTransmit {
  /** The characteristic. */
  char: OhCharacteristic;
  /** The GATT value (BleTransHeader + chunk); ours, not reused. */
  bytes: Uint8Array;
}

/** Options of {@linkcode OhLink.open}. */
export interface OhOpenOptions {
  /** Tag returned in every event of the stream. */
  owner?: unknown;
  /**
   * What kind of service; this profile carries `ServiceKind.LINK_ENHANCE`
   * only (others are rejected with 801). @default {ServiceKind.LINK_ENHANCE}
   */
  kind?: number;
  /** The bundle name to send (the connecting app's). @default {OhLinkOptions.bundleName} */
  bundle?: string;
  /** The current time (ms); the 10 s connect timer starts here. @default {the latest time given} */
  now?: number;
}

/** A connection lifted out of a link by {@linkcode OhLink.release}. */
export interface OhConnection {
  /** Our general id (the stream). */
  stream: number;
  /** The peer's general id. */
  peerId: number;
  /** The server name. */
  name: string;
  /** Whether we opened it (it holds a reference on its link). */
  client: boolean;
  /** The owner tag of its events. */
  owner: unknown;
}

/**
 * General ids `(11 << 26) + counter`, counter a uint16 from 1, skipping ids
 * in use (as OpenHarmony numbers them per process). Share one between the
 * links of a device so ids are unique across its links (MERGE names them).
 */
export class GeneralIds {
  #counter = 0;
  #used = new Set<number>();

  /**
   * A fresh id.
   *
   * @returns The id.
   * @throws {RangeError} When all 65536 ids are in use.
   */
  allocate(): number {
    for (let tries = 0; tries <= 0xffff; tries++) {
      this.#counter = (this.#counter + 1) & 0xffff;
      const id = GENERAL_ID_BASE + this.#counter;
      if (!this.#used.has(id)) {
        this.#used.add(id);
        return id;
      }
    }
    throw new RangeError("No free general id");
  }

  /**
   * Give an id back.
   *
   * @param id The id.
   */
  release(id: number): void {
    this.#used.delete(id);
  }
}

/** Default bound of a connection's send queue, in payload bytes. */
export const DEFAULT_OH_SEND_QUEUE_BYTES: number = 64 * 1024;
/**
 * Most bytes of control messages (basic info, reference counts, HANDSHAKE,
 * ACK, RESET, MERGE) waiting to be sent; beyond it a message is not queued,
 * as a full send queue refuses a post on an OpenHarmony device. With each
 * connection's data bound, it bounds what a peer can make a link hold for
 * sending.
 */
export const OH_CONTROL_BACKLOG_BYTES: number = 64 * 1024;
/** Default most connections on one link (ours and the peer's together). */
export const DEFAULT_OH_MAX_CONNECTIONS = 64;

/** Options of an {@linkcode OhLink}. */
export interface OhLinkOptions {
  /** Our GATT role: `server` (a central connected to us) or `client` (we connected). */
  role: OhRole;
  /**
   * Our app's bundle name: sent in our HANDSHAKEs, and the bundle name an
   * incoming HANDSHAKE must carry (OpenHarmony matches servers by name and
   * bundle name; an OpenHarmony app sends its own bundle name).
   */
  bundleName: string;
  /** The time the BLE connection came up (ms). */
  now: number;
  /**
   * The device id we present in basic info. Not the board's real id by
   * default: a random 64-hex-digit id per link.
   * @default {randomDevid()}
   */
  devid?: string;
  /** The device type id we present (0x0E phone, 0x0C PC, 0xFF unknown). @default {0} */
  devtype?: number;
  /**
   * Ask the peer for its networkId instead of its UDID (feature bit 3 in our
   * basic info as client). @default {true}
   */
  requestNetworkId?: boolean;
  /**
   * Refuse an incoming HANDSHAKE whose bundle name is not `bundleName` (ASCII
   * case-insensitive) with an error ACK, as OpenHarmony does. When `false`,
   * every HANDSHAKE reaches the `open` event, which carries its bundle name,
   * and the app layer matches (name, bundle name) itself (a device serving
   * several apps). @default {true}
   */
  matchBundle?: boolean;
  /** The ATT MTU, when known; 23 is used until it is. */
  mtu?: number;
  /** The device's general-id allocator. @default {new GeneralIds()} */
  ids?: GeneralIds;
  /** Most connections on this link; further HANDSHAKEs go unanswered. @default {64} */
  maxConnections?: number;
  /** Bound of each connection's send queue (payload bytes). @default {65536} */
  sendQueueBytes?: number;
}

/** The state of a connection: `pending` waits for basic info, `opening` for its ACK. */
export type ConnState = "pending" | "opening" | "incoming" | "open" | "rejected";

/** One connection on a link. */
export interface Conn {
  id: number;
  peerId: number;
  name: string;
  bundle: string;
  owner: unknown;
  client: boolean;
  state: ConnState;
  deadline: number;
  queued: number;
  wantDrain: boolean;
}

/**
 * A random device id (64 upper-case hex digits), the shape of a UDID.
 *
 * @returns The id.
 */
export function randomDevid(): string {
  const b = crypto.getRandomValues(new Uint8Array(32));
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("").toUpperCase();
}

/**
 * An ATT MTU in range: 23 (the default) for one not known, at most 65535.
 *
 * @param mtu The ATT MTU.
 * @returns The MTU used.
 */
export function clampMtu(mtu: number): number {
  if (!Number.isFinite(mtu)) return OhLimits.DEFAULT_MTU;
  return Math.min(65535, Math.max(OhLimits.DEFAULT_MTU, Math.floor(mtu)));
}

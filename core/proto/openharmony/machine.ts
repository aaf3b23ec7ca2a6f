/**
 * The `openharmony` profile's link: one BLE connection to an OpenHarmony
 * device (or anything that speaks its protocol), in either GATT role,
 * sans-IO. It answers and behaves as OpenHarmony's dsoftbus does: basic info
 * first, reference counting of the BLE connection, HANDSHAKE / ACK / RESET /
 * NORMAL per connection, OpenHarmony's timers and its reactions to bad input.
 *
 * Its events and commands mirror the `linkweave` profile's `Link`
 * (`core/proto/link/mod.ts`: `open(name, { owner, kind, bundle })`,
 * `accept(stream, owner)`, events carrying the owner), so one link interface
 * can carry both: stream = our general id of a connection.
 *
 * Inputs: `handleBytes(char, bytes, now)` for a GATT write (server role) or
 * notification (client role) on 2B00/2B01, `handleMtu`, `handleDisconnected`,
 * `handleTimeout(now)`, `handleWritable`; commands `open`, `accept`,
 * `reject`, `send`, `closeStream`, `close`, `abort`. Outputs:
 * `pollTransmit(now)` (which characteristic, which bytes; a notification in
 * the server role, a write without response in the client role),
 * `pollTimeout()`, `pollEvent()`. Nothing here does I/O or reads a clock.
 *
 * Rules, in one place (OpenHarmony's, `docs/openharmony-ble.md` gives the
 * sources):
 * - The client sends basic info on 2B00 at once; the server answers only the
 *   client's. Both have 5 s (the server counts from the MTU exchange, and
 *   drops a client that does not exchange the MTU within 10 s). Anything on
 *   2B00 before that is taken as basic info; bad basic info drops the link.
 * - General messages (module 102) are only sent once basic info is
 *   exchanged and while the link is not closing; a HANDSHAKE that arrives
 *   before cannot be answered and the link is dropped 200 ms later.
 * - Every connection we open holds one reference on the link: `+1` before its
 *   HANDSHAKE, `-1` 100 ms after its RESET (at once when the peer resets it).
 *   When our count reaches 0 we send the `-1` and drop the link 5.5 s after
 *   it went out unless the peer takes a reference (200 ms, without a
 *   message, for a peer that lacks the remote-disconnect feature). A peer's
 *   release that brings our count to 0 drops the link at once.
 * - A HANDSHAKE is answered by ACK (err 0) when accepted, or by an error ACK
 *   and RESET; its bundle name must match ours (ASCII case-insensitive).
 *   Our HANDSHAKE must be answered within 10 s, or we send RESET and report
 *   a timeout. NORMAL payloads of 1..1024 bytes are delivered; others are
 *   dropped, the link stays.
 * - A link on which no connection was ever opened is dropped after 60 s
 *   without traffic.
 *
 * @example Our GATT client against our GATT server, in memory
 * ```ts
 * import assert from "node:assert/strict";
 * const client = new OhLink({ role: "client", bundleName: "com.example.demo", now: 0, mtu: 185 });
 * const server = new OhLink({ role: "server", bundleName: "com.example.demo", now: 0, mtu: 185 });
 * const pump = () => {
 *   for (let moved = true; moved;) {
 *     moved = false;
 *     for (const [from, to] of [[client, server], [server, client]]) {
 *       for (let t = from.pollTransmit(0); t; t = from.pollTransmit(0)) {
 *         to.handleBytes(t.char, t.bytes, 0);
 *         moved = true;
 *       }
 *     }
 *   }
 * };
 * const s = client.open("demo", { now: 0 });
 * pump();
 * const open = server.pollEvent();
 * assert.ok(open?.type === "open" && open.name === "demo");
 * server.accept(open.stream);
 * pump();
 * assert.deepEqual(client.pollEvent(), { type: "opened", stream: s, owner: undefined });
 * client.send(s, new Uint8Array([1, 2, 3]));
 * pump();
 * const data = server.pollEvent();
 * assert.ok(data?.type === "data" && data.data.byteLength === 3);
 * ```
 *
 * @module
 */
import { DisconnectReason, ErrorCode } from "../../error_codes.ts";
import { type LinkEvent, ServiceKind } from "../link/mod.ts";
import { Queue } from "../_queue.ts";
import { linkEnhanceCode, softbusCode } from "./codes.ts";
import { Reassembler } from "./reassembly.ts";
import {
  ackPayload,
  type BasicInfo,
  decodeConnPktHead,
  encodeBasicInfo,
  encodeGeneralMessage,
  encodeRcMessage,
  Feature,
  fragment,
  GENERAL_ID_BASE,
  handshakePayload,
  HeaderSize,
  Module,
  MsgType,
  type OhCharacteristic,
  OhLimits,
  OhTimers,
  parseBasicInfo,
  parseGeneral,
  parseRc,
  resetPayload,
  sameIgnoringCase,
  SoftbusError,
  validName,
} from "./wire.ts";
import { utf8Length } from "./_json.ts";

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

type ConnState = "pending" | "opening" | "incoming" | "open" | "rejected";

interface Conn {
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

interface Outgoing {
  char: OhCharacteristic;
  data: Uint8Array;
  control: boolean;
  writes?: Uint8Array[];
  next: number;
  stream?: number;
  onSent?: (now: number) => void;
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

/** One BLE connection speaking OpenHarmony's protocol. */
export class OhLink {
  /** Returned as `link` in `open` events (the driver's handle on this link). */
  tag: unknown;
  /** Our GATT role. */
  readonly role: OhRole;
  /** Our bundle name. */
  readonly bundleName: string;
  /** The device id we present. */
  readonly devid: string;
  #devtype: number;
  #requestNetworkId: boolean;
  #matchBundle: boolean;
  #ids: GeneralIds;
  #maxConns: number;
  #sendQueueBytes: number;
  #mtu: number;
  #mtuKnown: boolean;
  #conns = new Map<number, Conn>();
  #events = new Queue<OhLinkEvent>();
  #tx = new Queue<Outgoing>();
  #rx = new Reassembler();
  #writable = true;
  #state: "open" | "closing" | "closed" = "open";
  #peer: BasicInfo | undefined;
  #infoDone = false;
  #transSeq = 0;
  #pktSeq = 0;
  #rcSeq = 0;
  #rc = 0;
  #negotiating = false;
  #dropAt: number | undefined;
  #dropWhy = "";
  #mtuAt: number | undefined;
  #infoAt: number | undefined;
  #idleAt: number | undefined;
  #idleCancelled = false;
  #releases: number[] = [];
  #now: number;
  #backlog = 0;
  #controlBytes = 0;

  /**
   * A link on a BLE connection that is up (as client: subscribed, MTU exchanged).
   *
   * @param options Role, identity, clock and limits.
   * @throws {TypeError} For a bad bundle name or device id.
   */
  constructor(options: OhLinkOptions) {
    if (!validName(options.bundleName)) {
      throw new TypeError(`Invalid bundle name ${JSON.stringify(options.bundleName)}`);
    }
    const devid = options.devid;
    if (devid !== undefined && (utf8Length(devid) > OhLimits.MAX_DEVID_BYTES || devid === "")) {
      throw new TypeError(`Invalid device id ${JSON.stringify(devid)}: expected 1..64 bytes`);
    }
    this.role = options.role;
    this.bundleName = options.bundleName;
    this.devid = options.devid ?? randomDevid();
    this.#devtype = options.devtype ?? 0;
    this.#requestNetworkId = options.requestNetworkId ?? true;
    this.#matchBundle = options.matchBundle ?? true;
    this.#ids = options.ids ?? new GeneralIds();
    this.#maxConns = options.maxConnections ?? DEFAULT_OH_MAX_CONNECTIONS;
    this.#sendQueueBytes = options.sendQueueBytes ?? DEFAULT_OH_SEND_QUEUE_BYTES;
    this.#mtuKnown = options.mtu !== undefined;
    this.#mtu = clampMtu(options.mtu ?? OhLimits.DEFAULT_MTU);
    const now = this.#now = options.now;
    if (this.role === "client") {
      this.#infoAt = now + OhTimers.BASIC_INFO;
      const features = Feature.REMOTE_DISCONNECT |
        (this.#requestNetworkId ? Feature.NETWORK_ID : 0);
      this.#sendBasicInfo(features, now);
    } else if (this.#mtuKnown) {
      this.#infoAt = now + OhTimers.BASIC_INFO;
    } else {
      this.#mtuAt = now + OhTimers.MTU_WAIT;
    }
  }

  /** `open`, `closing` (our graceful close under way) or `closed`. */
  get state(): "open" | "closing" | "closed" {
    return this.#state;
  }

  /** Whether basic info has been exchanged. */
  get ready(): boolean {
    return this.#infoDone;
  }

  /** The peer's basic info, once received. */
  get peer(): BasicInfo | undefined {
    return this.#peer;
  }

  /** The ATT MTU in use. */
  get mtu(): number {
    return this.#mtu;
  }

  /** Our reference count of the link. */
  get references(): number {
    return this.#rc;
  }

  /** Number of connections not yet closed. */
  get streams(): number {
    return this.#conns.size;
  }

  /** Bytes of messages queued and not yet fully handed out. */
  get backlog(): number {
    return this.#backlog;
  }

  /** Whether nothing waits to be transmitted. */
  get idle(): boolean {
    return this.#tx.length === 0;
  }

  /** Payload bytes held for a half-assembled incoming message. */
  get reassemblyBytes(): number {
    return this.#rx.buffered;
  }

  // ------------------------------------------------------------- inputs

  /**
   * A GATT value arrived: a write from the client (server role) or a
   * notification from the server (client role).
   *
   * @param char The characteristic.
   * @param bytes The value.
   * @param now The current time (ms).
   */
  handleBytes(char: OhCharacteristic, bytes: Uint8Array, now: number): void {
    if (this.#state === "closed") return;
    this.#tick(now);
    if (this.#mtuAt !== undefined) this.#mtuSettled(now);
    const r = this.#rx.push(bytes);
    if (r.type !== "message") return;
    if (char === "2B00") this.#netMessage(r.data, now);
    else this.#connMessage(r.data, now);
  }

  /**
   * The ATT MTU is known or changed.
   *
   * @param mtu The ATT MTU.
   * @param now The current time (ms).
   */
  handleMtu(mtu: number, now: number): void {
    if (this.#state === "closed") return;
    this.#tick(now);
    this.#mtu = clampMtu(mtu);
    this.#mtuKnown = true;
    if (this.#mtuAt !== undefined) this.#mtuSettled(now);
  }

  /**
   * The BLE connection is gone.
   *
   * @param message Why, for the `linkClosed` event.
   */
  handleDisconnected(message = "BLE connection lost"): void {
    if (this.#state !== "closed") this.#lose(message);
  }

  /**
   * Whether `pollTransmit` may hand out bytes (the driver's writes report
   * backpressure).
   *
   * @param writable Whether the BLE connection takes more.
   */
  handleWritable(writable: boolean): void {
    this.#writable = writable;
  }

  /**
   * Timers are due.
   *
   * @param now The current time (ms).
   */
  handleTimeout(now: number): void {
    if (this.#state === "closed") return;
    this.#tick(now);
    while (this.#releases.length > 0 && this.#releases[0] <= now) {
      this.#releases.shift();
      this.#updateRc(-1, now);
      if (this.#isClosed()) return;
    }
    for (const c of [...this.#conns.values()]) {
      if (c.deadline > now) continue;
      if (c.state === "pending" || c.state === "opening") {
        this.#connectTimeout(c, now);
        if (this.#isClosed()) return;
      } else if (c.state === "rejected") {
        this.#forget(c);
        this.#updateRc(-1, now);
        if (this.#isClosed()) return;
      }
    }
    if (this.#mtuAt !== undefined && this.#mtuAt <= now) {
      this.#lose(`No ATT MTU exchange within ${OhTimers.MTU_WAIT} ms`);
    } else if (this.#infoAt !== undefined && this.#infoAt <= now) {
      this.#lose(`No basic info within ${OhTimers.BASIC_INFO} ms`);
    } else if (this.#dropAt !== undefined && this.#dropAt <= now) {
      this.#lose(this.#dropWhy);
    } else if (this.#idleAt !== undefined && this.#idleAt <= now) {
      this.#lose(`Link idle for ${OhTimers.IDLE} ms with no connection`);
    }
  }

  /**
   * When `handleTimeout` should next be called.
   *
   * @returns A time (ms), or `undefined` when no timer runs.
   */
  pollTimeout(): number | undefined {
    if (this.#state === "closed") return undefined;
    let t = Math.min(
      this.#mtuAt ?? Infinity,
      this.#infoAt ?? Infinity,
      this.#dropAt ?? Infinity,
      this.#idleAt ?? Infinity,
      this.#releases[0] ?? Infinity,
    );
    for (const c of this.#conns.values()) {
      if (c.state === "pending" || c.state === "opening" || c.state === "rejected") {
        t = Math.min(t, c.deadline);
      }
    }
    return t === Infinity ? undefined : t;
  }

  /**
   * The next event, if any.
   *
   * @returns The event.
   */
  pollEvent(): OhLinkEvent | undefined {
    return this.#events.shift();
  }

  /**
   * The next GATT value to send, if any.
   *
   * @param now The current time (ms).
   * @returns The characteristic and bytes, or `undefined`.
   */
  pollTransmit(now: number): OhTransmit | undefined {
    if (this.#state === "closed" || !this.#writable) return undefined;
    this.#tick(now);
    const m = this.#tx.peek();
    if (m === undefined) return undefined;
    if (m.writes === undefined) {
      m.writes = fragment(m.data, this.#mtu, this.#transSeq);
      this.#transSeq = (this.#transSeq + 1) >>> 0;
    }
    const bytes = m.writes[m.next++];
    if (m.next === m.writes.length) {
      this.#tx.shift();
      this.#backlog -= m.data.length;
      if (m.control) this.#controlBytes -= m.data.length;
      m.onSent?.(now);
      if (this.#state === "closing" && this.#tx.length === 0) {
        this.#finish("Link closed");
      }
    }
    return { char: m.char, bytes };
  }

  // ----------------------------------------------------------- commands

  /**
   * Open a connection to the peer's server `name` (sent once basic info is
   * exchanged). Answered by `opened`, `rejected` (with a linkEnhance code)
   * or `closed`.
   *
   * @param name The server name (1..255 UTF-8 bytes).
   * @param options The time and the bundle name to send.
   * @returns The stream (our general id).
   * @throws {TypeError} For a bad name or bundle name.
   * @throws {RangeError} When the link holds too many connections.
   */
  open(name: string, options: OhOpenOptions = {}): number {
    const bundle = options.bundle ?? this.bundleName;
    const owner = options.owner;
    if (!validName(name)) throw new TypeError(`Invalid server name ${JSON.stringify(name)}`);
    if (!validName(bundle)) throw new TypeError(`Invalid bundle name ${JSON.stringify(bundle)}`);
    if (this.#conns.size >= this.#maxConns) {
      throw new RangeError(`Cannot open a connection: ${this.#maxConns} already open`);
    }
    const now = options.now ?? this.#now;
    this.#tick(now);
    const id = this.#ids.allocate();
    if (this.#state !== "open") {
      this.#ids.release(id);
      this.#events.push({
        type: "closed",
        stream: id,
        owner,
        reason: DisconnectReason.LINK_CLOSED,
      });
      return id;
    }
    if ((options.kind ?? ServiceKind.LINK_ENHANCE) !== ServiceKind.LINK_ENHANCE) {
      this.#ids.release(id);
      this.#events.push({
        type: "rejected",
        stream: id,
        owner,
        code: ErrorCode.CAPABILITY_NOT_SUPPORTED,
      });
      return id;
    }
    const c = this.#conn(id, 0, name, true, "pending");
    c.bundle = bundle;
    c.owner = owner;
    c.deadline = now + OhTimers.CONNECT;
    if (this.#infoDone) this.#startConnect(c, now);
    return id;
  }

  /**
   * Accept an incoming connection (after its `open` event).
   *
   * @param stream The stream.
   * @param owner Tag returned in every later event of the stream.
   */
  accept(stream: number, owner?: unknown): void {
    const c = this.#conns.get(stream);
    if (c === undefined || c.state !== "incoming" || this.#state === "closed") return;
    c.owner = owner;
    if (!this.#postGeneral(MsgType.HANDSHAKE_ACK, c, ackPayload(0), this.#now)) {
      this.#forget(c);
      this.#pktSeq++;
      this.#events.push({ type: "closed", stream, owner, reason: DisconnectReason.LINK_CLOSED });
      this.#resetFailed(this.#now);
      return;
    }
    c.state = "open";
  }

  /**
   * Refuse an incoming connection (after its `open` event): an error ACK,
   * then RESET.
   *
   * @param stream The stream.
   * @param code A linkEnhance code for the peer's `connectResult`
   *   (32390201 when no such server is started).
   */
  reject(stream: number, code: number): void {
    const c = this.#conns.get(stream);
    if (c === undefined || c.state !== "incoming" || this.#state === "closed") return;
    this.#refuse(c, softbusCode(code), this.#now);
  }

  /**
   * The state of a stream, in the words of {@linkcode Link.streamState}.
   *
   * @param stream The stream.
   * @returns Its state; `closed` for an unknown one.
   */
  streamState(stream: number): "opening" | "incoming" | "open" | "closed" {
    const s = this.#conns.get(stream)?.state;
    return s === "pending" || s === "opening"
      ? "opening"
      : s === "incoming" || s === "open"
      ? s
      : "closed";
  }

  /**
   * Queue a message (NORMAL) on an open connection.
   *
   * @param stream The stream.
   * @param data 1..1024 bytes (copied).
   * @returns `false` when the connection's send queue is full, the link is
   *   closing, or the connection is not open (nothing queued).
   * @throws {RangeError} For an empty message or one over 1024 bytes.
   */
  send(stream: number, data: Uint8Array): boolean {
    if (data.length === 0 || data.length > OhLimits.MAX_NORMAL) {
      throw new RangeError(`Message of ${data.length} bytes: expected 1..${OhLimits.MAX_NORMAL}`);
    }
    const c = this.#conns.get(stream);
    if (c === undefined || c.state !== "open" || this.#state !== "open") return false;
    if (c.queued > 0 && c.queued + data.length > this.#sendQueueBytes) {
      c.wantDrain = true;
      return false;
    }
    const len = data.length;
    const posted = this.#postGeneral(MsgType.NORMAL, c, data, this.#now, () => {
      c.queued -= len;
      if (c.wantDrain && c.queued * 2 <= this.#sendQueueBytes && this.#conns.get(c.id) === c) {
        c.wantDrain = false;
        this.#events.push({ type: "drain", stream: c.id, owner: c.owner });
      }
    });
    if (!posted) return false;
    c.queued += len;
    if (c.queued * 2 >= this.#sendQueueBytes) c.wantDrain = true;
    return true;
  }

  /**
   * Payload bytes queued on a connection and not yet handed out.
   *
   * @param stream The stream.
   * @returns Bytes.
   */
  bufferedAmount(stream: number): number {
    return this.#conns.get(stream)?.queued ?? 0;
  }

  /**
   * Close a connection: what was queued goes first, then RESET (the peer
   * sees `closed` with `-425918059`). A connection we opened releases its
   * reference 100 ms later. No event is reported locally.
   *
   * @param stream The stream.
   * @param now The current time (ms).
   */
  closeStream(stream: number, now: number = this.#now): void {
    const c = this.#conns.get(stream);
    if (c === undefined || this.#state === "closed") return;
    this.#tick(now);
    switch (c.state) {
      case "pending":
        this.#forget(c);
        return;
      case "incoming":
        this.#refuse(c, SoftbusError.CONN_FAIL, now);
        return;
      case "rejected":
        this.#forget(c);
        this.#releases.push(now + OhTimers.DISCONNECT_DELAY);
        return;
      default:
        this.#forget(c);
        this.#sendReset(c, now);
    }
  }

  /**
   * Close the link: every connection is closed as by `closeStream` (RESET),
   * and `linkClosed` follows once everything queued was handed out; the
   * driver then disconnects.
   *
   * @param now The current time (ms).
   */
  close(now: number = this.#now): void {
    if (this.#state !== "open") return;
    for (const id of [...this.#conns.keys()]) this.closeStream(id, now);
    this.#releases = [];
    this.#state = "closing";
    if (this.#tx.length === 0) this.#finish("Link closed");
  }

  /**
   * Drop the link at once: every open connection gets `closed` with
   * `-425918060`.
   *
   * @param message Why.
   */
  abort(message = "Link aborted"): void {
    if (this.#state !== "closed") this.#lose(message);
  }

  /**
   * Lift a connection out of this link without a word to the peer (after a
   * `merge` event), to {@linkcode OhLink.adopt} it on the link it moved to.
   *
   * @param stream The stream.
   * @returns The connection, or `undefined` when it is not open here.
   */
  release(stream: number): OhConnection | undefined {
    const c = this.#conns.get(stream);
    if (c === undefined || c.state !== "open") return undefined;
    this.#conns.delete(stream);
    return { stream: c.id, peerId: c.peerId, name: c.name, client: c.client, owner: c.owner };
  }

  /**
   * Take over a connection released by another link of the same peer.
   *
   * @param conn The connection.
   * @throws {RangeError} When the stream is already in use here.
   */
  adopt(conn: OhConnection): void {
    if (this.#conns.has(conn.stream)) throw new RangeError(`Stream ${conn.stream} is in use`);
    this.#conn(conn.stream, conn.peerId, conn.name, conn.client, "open").owner = conn.owner;
  }

  // ---------------------------------------------------------- receiving

  #netMessage(msg: Uint8Array, now: number): void {
    if (this.#infoDone || this.#negotiating) return; // OpenHarmony dispatches it to nobody
    const info = parseBasicInfo(msg);
    if (typeof info === "string") {
      this.#lose(`Bad basic info from the peer: ${info}`);
      return;
    }
    this.#peer = info;
    this.#infoDone = true;
    this.#infoAt = undefined;
    if (this.role === "server") {
      this.#sendBasicInfo(info.features | Feature.REMOTE_DISCONNECT, now);
    }
    this.#touch(now);
    for (const c of [...this.#conns.values()]) {
      if (c.state === "pending") this.#startConnect(c, now);
    }
  }

  #connMessage(msg: Uint8Array, now: number): void {
    const head = decodeConnPktHead(msg);
    if (head === undefined) return;
    this.#touch(now);
    const body = msg.subarray(HeaderSize.CONN_PKT);
    if (head.module === Module.CONNECTION) {
      const rc = parseRc(body);
      if (typeof rc !== "string") this.#peerRc(rc.delta, rc.refNum, now);
      return;
    }
    if (head.module !== Module.BLE_GENERAL || body.length === 0) return;
    const g = parseGeneral(body);
    if (typeof g === "string") return;
    if (g.msgType === MsgType.HANDSHAKE) {
      this.#handshake(g.localId, g.name, g.bundleName, now);
      return;
    }
    const c = this.#conns.get(g.peerId);
    if (c === undefined) return;
    switch (g.msgType) {
      case MsgType.NORMAL:
        if (c.state === "open" && g.data.length > 0 && g.data.length <= OhLimits.MAX_NORMAL) {
          const data = g.data.slice().buffer;
          this.#events.push({ type: "data", stream: c.id, owner: c.owner, data });
        }
        return;
      case MsgType.HANDSHAKE_ACK:
        if (c.state !== "opening") return;
        if (g.err !== 0) {
          c.state = "rejected";
          const code = linkEnhanceCode(g.err);
          this.#events.push({ type: "rejected", stream: c.id, owner: c.owner, code });
          return;
        }
        c.peerId = g.localId;
        c.state = "open";
        this.#events.push({ type: "opened", stream: c.id, owner: c.owner });
        return;
      case MsgType.RESET:
        this.#forget(c);
        if (c.state === "open") {
          this.#events.push({
            type: "closed",
            stream: c.id,
            owner: c.owner,
            reason: DisconnectReason.PEER_DISCONNECTED,
          });
        } else if (c.state === "opening" || c.state === "pending") {
          const code = ErrorCode.INTERNAL_ERROR;
          this.#events.push({ type: "rejected", stream: c.id, owner: c.owner, code });
        }
        if (c.client && c.state !== "pending") this.#updateRc(-1, now);
        return;
      case MsgType.MERGE:
        this.#updateRc(-1, now);
        if (this.#state !== "closed" && c.state === "open" && g.updateHandle !== c.id) {
          this.#events.push({ type: "merge", stream: c.id, owner: c.owner, into: g.updateHandle });
        }
        return;
    }
  }

  #handshake(peerId: number, name: string, bundleName: string, now: number): void {
    if (this.#conns.size >= this.#maxConns || this.#state !== "open") return;
    const c = this.#conn(this.#ids.allocate(), peerId, name, false, "incoming");
    this.#cancelIdle();
    // Before basic info the ACK cannot be posted: #refuse then lets go of the link.
    c.bundle = bundleName;
    const mismatch = this.#matchBundle && !sameIgnoringCase(bundleName, this.bundleName);
    if (!this.#canPostGeneral() || mismatch) {
      this.#refuse(c, SoftbusError.SERVER_NOT_OPENED, now);
      return;
    }
    this.#events.push({
      type: "open",
      link: this.tag,
      stream: c.id,
      name,
      kind: ServiceKind.LINK_ENHANCE,
      bundle: bundleName,
    });
  }

  #peerRc(delta: number, peerRc: number, now: number): void {
    this.#rc = (this.#rc + delta) | 0;
    if (peerRc > 0) {
      if (this.#negotiating) this.#resume();
      return;
    }
    if (this.#rc <= 0) {
      this.#lose("Link closed by the peer: no references left");
      return;
    }
    this.#postRc(0, now);
  }

  // ------------------------------------------------------------ sending

  #sendBasicInfo(features: number, now: number): void {
    const omitDevid = this.#peer?.devtype === 0xff;
    const msg = encodeBasicInfo({
      ...(omitDevid ? {} : { devid: this.devid }),
      type: this.role === "client" ? 1 : 2,
      devtype: this.#devtype,
      features,
    });
    this.#enqueue({ char: "2B00", data: msg, control: true, next: 0 }, now);
  }

  #startConnect(c: Conn, now: number): void {
    this.#updateRc(1, now);
    this.#cancelIdle();
    if (!this.#postGeneral(MsgType.HANDSHAKE, c, handshakePayload(c.name, c.bundle), now)) {
      return; // cannot happen: +1 leaves the link ready
    }
    c.state = "opening";
  }

  #connectTimeout(c: Conn, now: number): void {
    this.#forget(c);
    const code = ErrorCode.CONNECT_TIMEOUT;
    this.#events.push({ type: "rejected", stream: c.id, owner: c.owner, code });
    if (c.state === "opening") this.#sendReset(c, now);
  }

  /** Error ACK, then RESET (the connection is forgotten). */
  #refuse(c: Conn, err: number, now: number): void {
    this.#forget(c);
    if (!this.#postGeneral(MsgType.HANDSHAKE_ACK, c, ackPayload(err), now)) {
      this.#pktSeq++;
      this.#resetFailed(now);
      return;
    }
    this.#postGeneral(MsgType.RESET, c, resetPayload(), now);
  }

  /** RESET; a connection we opened lets go of its reference 100 ms later. */
  #sendReset(c: Conn, now: number): void {
    if (!this.#postGeneral(MsgType.RESET, c, resetPayload(), now)) {
      this.#resetFailed(now);
      return;
    }
    if (c.client) this.#releases.push(now + OhTimers.DISCONNECT_DELAY);
  }

  /** A RESET could not be posted: OpenHarmony lets go of the link (`ConnDisconnectDevice`). */
  #resetFailed(now: number): void {
    this.#updateRc(-1, now);
  }

  #canPostGeneral(): boolean {
    return this.#infoDone && !this.#negotiating && this.#state !== "closed";
  }

  #postGeneral(
    msgType: number,
    c: Conn,
    payload: Uint8Array,
    now: number,
    onSent?: () => void,
  ): boolean {
    const seq = this.#pktSeq++;
    if (!this.#canPostGeneral()) return false;
    const data = encodeGeneralMessage({ seq, msgType, localId: c.id, peerId: c.peerId, payload });
    const control = msgType !== MsgType.NORMAL;
    return this.#enqueue({ char: "2B01", data, control, next: 0, stream: c.id, onSent }, now);
  }

  #postRc(delta: number, now: number, onSent?: (now: number) => void): void {
    const data = encodeRcMessage(this.#rcSeq++, { delta, refNum: this.#rc, challenge: 0 });
    this.#enqueue({ char: "2B01", data, control: true, next: 0, onSent }, now);
  }

  /** Queue a message; `false` (not sent, as a full send queue on a device) past the backlog bound. */
  #enqueue(m: Outgoing, now: number): boolean {
    if (this.#state === "closed") return false;
    if (m.control) {
      if (this.#controlBytes + m.data.length > OH_CONTROL_BACKLOG_BYTES) return false;
      this.#controlBytes += m.data.length;
    }
    this.#backlog += m.data.length;
    this.#tx.push(m);
    this.#touch(now);
    return true;
  }

  /** Our own reference change (`ConnBleUpdateConnectionRc`). */
  #updateRc(delta: number, now: number): void {
    if (this.#state === "closed") return;
    this.#rc = (this.#rc + delta) | 0;
    if (this.#rc > 0) {
      if (this.#negotiating) this.#resume();
      this.#postRc(delta, now);
      return;
    }
    this.#negotiating = true;
    if (((this.#peer?.features ?? 0) & Feature.REMOTE_DISCONNECT) === 0) {
      this.#dropAt ??= now + OhTimers.CLOSING;
      this.#dropWhy = "Link released: the peer does not negotiate closing";
      return;
    }
    this.#postRc(delta, now, (sent) => {
      if (this.#negotiating && this.#dropAt === undefined) {
        this.#dropAt = sent + OhTimers.NEGOTIATION_CLOSING;
        this.#dropWhy = "Link released: the peer did not close it";
      }
    });
  }

  #resume(): void {
    this.#negotiating = false;
    this.#dropAt = undefined;
  }

  // ------------------------------------------------------------ helpers

  #conn(id: number, peerId: number, name: string, client: boolean, state: ConnState): Conn {
    const c: Conn = {
      id,
      peerId,
      name,
      client,
      bundle: this.bundleName,
      owner: undefined,
      state,
      deadline: Infinity,
      queued: 0,
      wantDrain: false,
    };
    this.#conns.set(id, c);
    return c;
  }

  #forget(c: Conn): void {
    if (this.#conns.get(c.id) === c) {
      this.#conns.delete(c.id);
      this.#ids.release(c.id);
    }
  }

  #tick(now: number): void {
    if (now > this.#now) this.#now = now;
  }

  #touch(now: number): void {
    if (this.#infoDone && !this.#idleCancelled) this.#idleAt = now + OhTimers.IDLE;
  }

  #cancelIdle(): void {
    this.#idleCancelled = true;
    this.#idleAt = undefined;
  }

  #mtuSettled(now: number): void {
    this.#mtuAt = undefined;
    if (!this.#infoDone) this.#infoAt ??= now + OhTimers.BASIC_INFO;
  }

  #isClosed(): boolean {
    return this.#state === "closed";
  }

  /** The link is gone: every connection learns it, nothing more is sent. */
  #lose(message: string): void {
    for (const c of this.#conns.values()) {
      if (c.state === "open" || c.state === "opening" || c.state === "pending") {
        const reason = DisconnectReason.LINK_CLOSED;
        this.#events.push({ type: "closed", stream: c.id, owner: c.owner, reason });
      }
      this.#ids.release(c.id);
    }
    this.#finish(message);
  }

  #finish(message: string): void {
    if (this.#state === "closed") return;
    this.#state = "closed";
    for (const c of this.#conns.values()) this.#ids.release(c.id);
    this.#conns.clear();
    this.#tx.clear();
    this.#backlog = this.#controlBytes = 0;
    this.#rx.clear();
    this.#releases = [];
    this.#mtuAt =
      this.#infoAt =
      this.#dropAt =
      this.#idleAt =
        undefined;
    this.#events.push({ type: "linkClosed", reason: DisconnectReason.LINK_CLOSED, message });
  }
}

function clampMtu(mtu: number): number {
  if (!Number.isFinite(mtu)) return OhLimits.DEFAULT_MTU;
  return Math.min(65535, Math.max(OhLimits.DEFAULT_MTU, Math.floor(mtu)));
}

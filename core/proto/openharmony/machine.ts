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
 * This file holds the link and its commands. Beside it: the connections'
 * table and the general messages that act on them (HANDSHAKE / ACK / RESET
 * / NORMAL / MERGE) in `_conns.ts`; the BLE connection under them (basic
 * info, MTU, send queue, reassembly, reference counting, the link's timers)
 * in `_bearer.ts`; the types, options and limits in `_machine_types.ts`
 * (re-exported here).
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
import { ServiceKind } from "../link/mod.ts";
import { Queue } from "../_queue.ts";
import { softbusCode } from "./codes.ts";
import {
  ackPayload,
  type BasicInfo,
  MsgType,
  type OhCharacteristic,
  OhLimits,
  OhTimers,
  SoftbusError,
  validName,
} from "./wire.ts";
import { utf8Length } from "../../_utf8.ts";
import { OhBearer } from "./_bearer.ts";
import { OhConns } from "./_conns.ts";
import {
  type Conn,
  DEFAULT_OH_MAX_CONNECTIONS,
  DEFAULT_OH_SEND_QUEUE_BYTES,
  GeneralIds,
  type OhConnection,
  type OhLinkEvent,
  type OhLinkOptions,
  type OhOpenOptions,
  type OhRole,
  type OhTransmit,
  randomDevid,
} from "./_machine_types.ts";

export {
  DEFAULT_OH_MAX_CONNECTIONS,
  DEFAULT_OH_SEND_QUEUE_BYTES,
  GeneralIds,
  OH_CONTROL_BACKLOG_BYTES,
  type OhConnection,
  type OhLinkEvent,
  type OhLinkOptions,
  type OhOpenOptions,
  type OhRole,
  type OhTransmit,
  randomDevid,
} from "./_machine_types.ts";

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
  #ids: GeneralIds;
  #maxConns: number;
  #sendQueueBytes: number;
  #conns = new Map<number, Conn>();
  #events = new Queue<OhLinkEvent>();
  #b: OhBearer;
  #cs: OhConns;

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
    this.#ids = options.ids ?? new GeneralIds();
    this.#maxConns = options.maxConnections ?? DEFAULT_OH_MAX_CONNECTIONS;
    this.#sendQueueBytes = options.sendQueueBytes ?? DEFAULT_OH_SEND_QUEUE_BYTES;
    this.#b = new OhBearer({
      role: this.role,
      devid: this.devid,
      devtype: options.devtype ?? 0,
      requestNetworkId: options.requestNetworkId ?? true,
      mtu: options.mtu,
      now: options.now,
      events: this.#events,
      hooks: {
        ready: (now) => this.#cs.ready(now),
        lost: () => this.#cs.lost(),
        finished: () => this.#cs.clear(),
      },
    });
    this.#cs = new OhConns({
      link: this,
      bundleName: this.bundleName,
      matchBundle: options.matchBundle ?? true,
      ids: this.#ids,
      maxConnections: this.#maxConns,
      conns: this.#conns,
      events: this.#events,
      bearer: this.#b,
    });
  }

  /** `open`, `closing` (our graceful close under way) or `closed`. */
  get state(): "open" | "closing" | "closed" {
    return this.#b.state;
  }

  /** Whether basic info has been exchanged. */
  get ready(): boolean {
    return this.#b.ready;
  }

  /** The peer's basic info, once received. */
  get peer(): BasicInfo | undefined {
    return this.#b.peer;
  }

  /** The ATT MTU in use. */
  get mtu(): number {
    return this.#b.mtu;
  }

  /** Our reference count of the link. */
  get references(): number {
    return this.#b.references;
  }

  /** Number of connections not yet closed. */
  get streams(): number {
    return this.#conns.size;
  }

  /** Bytes of messages queued and not yet fully handed out. */
  get backlog(): number {
    return this.#b.backlog;
  }

  /** Whether nothing waits to be transmitted. */
  get idle(): boolean {
    return this.#b.idle;
  }

  /** Payload bytes held for a half-assembled incoming message. */
  get reassemblyBytes(): number {
    return this.#b.reassemblyBytes;
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
    const body = this.#b.receive(char, bytes, now);
    if (body !== undefined) this.#cs.general(body, now);
  }

  /**
   * The ATT MTU is known or changed.
   *
   * @param mtu The ATT MTU.
   * @param now The current time (ms).
   */
  handleMtu(mtu: number, now: number): void {
    this.#b.handleMtu(mtu, now);
  }

  /**
   * The BLE connection is gone.
   *
   * @param message Why, for the `linkClosed` event.
   */
  handleDisconnected(message = "BLE connection lost"): void {
    if (this.#b.state !== "closed") this.#b.lose(message);
  }

  /**
   * Whether `pollTransmit` may hand out bytes (the driver's writes report
   * backpressure).
   *
   * @param writable Whether the BLE connection takes more.
   */
  handleWritable(writable: boolean): void {
    this.#b.handleWritable(writable);
  }

  /**
   * Timers are due.
   *
   * @param now The current time (ms).
   */
  handleTimeout(now: number): void {
    if (!this.#b.handleReleases(now)) return;
    if (!this.#cs.handleTimeout(now)) return;
    this.#b.handleLinkTimers(now);
  }

  /**
   * When `handleTimeout` should next be called.
   *
   * @returns A time (ms), or `undefined` when no timer runs.
   */
  pollTimeout(): number | undefined {
    if (this.#b.state === "closed") return undefined;
    const t = this.#cs.timeout(this.#b.timeout());
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
    return this.#b.transmit(now);
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
    const now = options.now ?? this.#b.now;
    this.#b.tick(now);
    const id = this.#ids.allocate();
    if (this.#b.state !== "open") {
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
    const c = this.#cs.add(id, 0, name, true, "pending");
    c.bundle = bundle;
    c.owner = owner;
    c.deadline = now + OhTimers.CONNECT;
    if (this.#b.ready) this.#cs.startConnect(c, now);
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
    if (c === undefined || c.state !== "incoming" || this.#b.state === "closed") return;
    c.owner = owner;
    if (!this.#b.postGeneral(MsgType.HANDSHAKE_ACK, c, ackPayload(0), this.#b.now)) {
      this.#cs.forget(c);
      this.#b.skipSeq();
      this.#events.push({ type: "closed", stream, owner, reason: DisconnectReason.LINK_CLOSED });
      this.#cs.resetFailed(this.#b.now);
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
    if (c === undefined || c.state !== "incoming" || this.#b.state === "closed") return;
    this.#cs.refuse(c, softbusCode(code), this.#b.now);
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
    if (c === undefined || c.state !== "open" || this.#b.state !== "open") return false;
    if (c.queued > 0 && c.queued + data.length > this.#sendQueueBytes) {
      c.wantDrain = true;
      return false;
    }
    const len = data.length;
    const posted = this.#b.postGeneral(MsgType.NORMAL, c, data, this.#b.now, () => {
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
  closeStream(stream: number, now: number = this.#b.now): void {
    const c = this.#conns.get(stream);
    if (c === undefined || this.#b.state === "closed") return;
    this.#b.tick(now);
    switch (c.state) {
      case "pending":
        this.#cs.forget(c);
        return;
      case "incoming":
        this.#cs.refuse(c, SoftbusError.CONN_FAIL, now);
        return;
      case "rejected":
        this.#cs.forget(c);
        this.#b.releaseLater(now);
        return;
      default:
        this.#cs.forget(c);
        this.#cs.sendReset(c, now);
    }
  }

  /**
   * Close the link: every connection is closed as by `closeStream` (RESET),
   * and `linkClosed` follows once everything queued was handed out; the
   * driver then disconnects.
   *
   * @param now The current time (ms).
   */
  close(now: number = this.#b.now): void {
    if (this.#b.state !== "open") return;
    for (const id of [...this.#conns.keys()]) this.closeStream(id, now);
    this.#b.closing();
  }

  /**
   * Drop the link at once: every open connection gets `closed` with
   * `-425918060`.
   *
   * @param message Why.
   */
  abort(message = "Link aborted"): void {
    if (this.#b.state !== "closed") this.#b.lose(message);
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
    this.#cs.add(conn.stream, conn.peerId, conn.name, conn.client, "open").owner = conn.owner;
  }
}

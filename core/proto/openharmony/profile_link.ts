/**
 * The `openharmony` profile as a {@linkcode ProfileLink}: an {@linkcode OhLink}
 * (one BLE connection speaking OpenHarmony's protocol) behind the one link
 * interface of the endpoint, so `linkEnhance` runs over it unchanged.
 *
 * Its channel is the BLE transport's `openharmony` channel, whose bytes are
 * the records of `gatt_records.ts`: the first says our GATT role and the ATT
 * MTU (the link is made then: a GATT client sends basic info at once), then
 * every GATT value with its characteristic both ways, and MTU changes. What
 * the endpoint asks before the first record (opening connections, closing)
 * waits for it.
 *
 * - Streams are OpenHarmony's general ids; every stream event carries the
 *   owner given to `open` or `accept`, as the `linkweave` profile's do.
 * - `open` sends the device's bundle name when the caller gives none (the
 *   linkEnhance API gives none): OpenHarmony matches servers by name and
 *   bundle name.
 * - A MERGE from the peer is not acted on: the endpoint keeps one link per
 *   peer, and a connection the peer moves keeps working where it is (see the
 *   differences in `docs/openharmony-ble.md`).
 * - A link has one channel (one BLE connection). A second channel offered
 *   for the same peer while the first is open carries nothing: its bytes are
 *   ignored and nothing is written to it.
 *
 * @example Two links joined in memory through their channel bytes
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeUpRecord } from "./gatt_records.ts";
 * const client = new OhProfileLink({ peerId: "00:00:00:00:00:02", bundleName: "com.example.demo" });
 * const server = new OhProfileLink({ peerId: "00:00:00:00:00:01", bundleName: "com.example.demo" });
 * client.addChannel(1, { now: 0 });
 * server.addChannel(1, { now: 0 });
 * client.handleBytes(1, encodeUpRecord(1, 185), 0);
 * server.handleBytes(1, encodeUpRecord(2, 185), 0);
 * // What one link writes is what the transport delivers to the other.
 * const pump = () => {
 *   for (let moved = true; moved;) {
 *     moved = false;
 *     for (const [from, to] of [[client, server], [server, client]]) {
 *       for (let t = from.pollTransmit(0); t; t = from.pollTransmit(0)) {
 *         to.handleBytes(1, t.bytes, 0);
 *         moved = true;
 *       }
 *     }
 *   }
 * };
 * const s = client.open("demo", { owner: "mine" });
 * pump();
 * const open = server.pollEvent();
 * assert.ok(open?.type === "open" && open.name === "demo" && open.bundle === "com.example.demo");
 * server.accept(open.stream, "theirs");
 * pump();
 * assert.deepEqual(client.pollEvent(), { type: "opened", stream: s, owner: "mine" });
 * ```
 *
 * @module
 */
import { DisconnectReason, ErrorCode } from "../../error_codes.ts";
import type { ProfileLink } from "../../device/profile.ts";
import type { ChannelId, ChannelOptions, LinkEvent, OpenOptions, Transmit } from "../link/mod.ts";
import { encodeValueRecord, GattRecordReader } from "./gatt_records.ts";
import { GeneralIds, OhLink } from "./machine.ts";
import { validName } from "./wire.ts";

/**
 * General ids shared by a device's `openharmony` links, which can hand a
 * link an id chosen in advance (for connections opened before the link's
 * BLE connection said its role).
 */
export class ProfileIds extends GeneralIds {
  #next: number | undefined;

  /**
   * @internal The id the next `allocate` returns.
   *
   * @param id The id (already allocated), or `undefined`.
   */
  handOut(id: number | undefined): void {
    this.#next = id;
  }

  /**
   * A fresh id, or the one handed out.
   *
   * @returns The id.
   */
  override allocate(): number {
    const id = this.#next;
    if (id === undefined) return super.allocate();
    this.#next = undefined;
    return id;
  }
}

/** Options of an {@linkcode OhProfileLink}. */
export interface OhProfileOptions {
  /** The peer's id (its BLE address). */
  peerId: string;
  /** The app's bundle name: sent in HANDSHAKEs, required of incoming ones. */
  bundleName: string;
  /** The device id presented in basic info. @default {a random id per link} */
  devid?: string;
  /** The device type presented. @default {0} */
  devtype?: number;
  /** Ask the peer for its networkId rather than its UDID. @default {true} */
  requestNetworkId?: boolean;
  /** The device's general ids. @default {new ProfileIds()} */
  ids?: ProfileIds;
  /** Most connections on the link. @default {64} */
  maxConnections?: number;
  /** Bound of each connection's send queue (bytes). @default {65536} */
  sendQueueBytes?: number;
}

/** Most GATT values handed to the channel in one write. */
const VALUES_PER_WRITE = 16;

interface PendingOpen {
  stream: number;
  name: string;
  owner: unknown;
  kind: number | undefined;
  bundle: string;
}

/** An `openharmony` link behind the endpoint's link interface. */
export class OhProfileLink implements ProfileLink {
  /** The peer's id. */
  readonly peerId: string;
  #o: OhProfileOptions;
  #ids: ProfileIds;
  #tag: unknown;
  #link: OhLink | undefined;
  #channel: ChannelId | undefined;
  #reader = new GattRecordReader();
  #pending: PendingOpen[] = [];
  #events: LinkEvent[] = [];
  #state: "open" | "closing" | "closed" = "open";
  #lastReceived = -Infinity;
  #now = 0;

  /** @param options Peer, app identity and limits. */
  constructor(options: OhProfileOptions) {
    if (!validName(options.bundleName)) {
      throw new TypeError(`Invalid bundle name ${JSON.stringify(options.bundleName)}`);
    }
    this.peerId = options.peerId;
    this.#o = options;
    this.#ids = options.ids ?? new ProfileIds();
  }

  /** The driver's tag, returned as `link` in `open` events. */
  get tag(): unknown {
    return this.#tag;
  }

  set tag(tag: unknown) {
    this.#tag = tag;
    if (this.#link !== undefined) this.#link.tag = tag;
  }

  /** The protocol machine, once the BLE connection said it is up. */
  get machine(): OhLink | undefined {
    return this.#link;
  }

  /** `open`, `closing` or `closed`. */
  get state(): "open" | "closing" | "closed" {
    return this.#link?.state ?? this.#state;
  }

  /** Whether nothing waits to be transmitted. */
  get idle(): boolean {
    return this.#link?.idle ?? true;
  }

  /** Bytes the peer makes the link hold now (reassembly and an incomplete record). */
  get held(): number {
    return (this.#link?.reassemblyBytes ?? 0) + this.#reader.buffered;
  }

  /** Time of the last byte received (ms). */
  get lastReceived(): number {
    return this.#lastReceived;
  }

  /** Connections not yet closed. */
  get streams(): number {
    return (this.#link?.streams ?? 0) + this.#pending.length;
  }

  /**
   * Add the channel (one: a second one carries nothing).
   *
   * @param id The channel.
   * @param options The time.
   */
  addChannel(id: ChannelId, options: ChannelOptions): void {
    this.#now = options.now;
    this.#channel ??= id;
  }

  /**
   * Records arrived on the channel.
   *
   * @param id The channel.
   * @param bytes The bytes.
   * @param now The current time (ms).
   */
  handleBytes(id: ChannelId, bytes: Uint8Array, now: number): void {
    if (id !== this.#channel || this.state === "closed") return;
    this.#now = now;
    this.#lastReceived = now;
    this.#reader.push(bytes, (r) => {
      if (r.type === "up") {
        if (this.#link === undefined) this.#up(r.role === 1 ? "client" : "server", r.mtu, now);
      } else if (this.#link === undefined) {
        this.abort("Bad channel bytes: a GATT value before the connection was up");
      } else if (r.type === "value") {
        this.#link.handleBytes(r.char, r.value, now);
      } else {
        this.#link.handleMtu(r.mtu, now);
      }
    });
    const problem = this.#reader.problem;
    if (problem !== undefined) this.abort(`Bad channel bytes: ${problem}`);
  }

  #up(role: "client" | "server", mtu: number, now: number): void {
    const o = this.#o;
    const link = new OhLink({
      role,
      bundleName: o.bundleName,
      now,
      devid: o.devid,
      devtype: o.devtype,
      requestNetworkId: o.requestNetworkId,
      mtu,
      ids: this.#ids,
      maxConnections: o.maxConnections,
      sendQueueBytes: o.sendQueueBytes,
    });
    link.tag = this.#tag;
    this.#link = link;
    for (const p of this.#pending.splice(0)) {
      this.#ids.handOut(p.stream);
      try {
        link.open(p.name, { owner: p.owner, kind: p.kind, bundle: p.bundle, now });
      } catch {
        this.#ids.handOut(undefined);
        this.#ids.release(p.stream);
        this.#events.push({
          type: "rejected",
          stream: p.stream,
          owner: p.owner,
          code: ErrorCode.INTERNAL_ERROR,
        });
      }
    }
    if (this.#state !== "open") link.close(now);
  }

  /**
   * The channel's writability changed.
   *
   * @param id The channel.
   * @param writable Whether it takes more.
   */
  handleWritable(id: ChannelId, writable: boolean): void {
    if (id === this.#channel) this.#link?.handleWritable(writable);
  }

  /**
   * The channel closed: the BLE connection is gone.
   *
   * @param id The channel.
   * @param message Why.
   */
  handleChannelClosed(id: ChannelId, message?: string): void {
    if (id !== this.#channel) return;
    this.#channel = undefined;
    const why = message ?? "BLE connection lost";
    if (this.#link !== undefined) this.#link.handleDisconnected(why);
    else this.#finish(why);
  }

  /**
   * Timers are due.
   *
   * @param now The current time (ms).
   */
  handleTimeout(now: number): void {
    this.#now = now;
    this.#link?.handleTimeout(now);
  }

  /**
   * When `handleTimeout` is next due.
   *
   * @returns A time (ms), or `undefined`.
   */
  pollTimeout(): number | undefined {
    return this.#link?.pollTimeout();
  }

  /**
   * The next event.
   *
   * @returns The event, or `undefined`.
   */
  pollEvent(): LinkEvent | undefined {
    if (this.#events.length > 0) return this.#events.shift();
    for (let e = this.#link?.pollEvent(); e !== undefined; e = this.#link?.pollEvent()) {
      // A MERGE names a connection on another link of the same peer; the
      // endpoint has one link per peer, so the connection stays here.
      if (e.type !== "merge") return e;
    }
    return undefined;
  }

  /**
   * The next bytes for the channel: up to 16 GATT values as records.
   *
   * @param now The current time (ms).
   * @returns The bytes, or `undefined`.
   */
  pollTransmit(now: number): Transmit | undefined {
    const link = this.#link;
    const channel = this.#channel;
    if (link === undefined || channel === undefined) return undefined;
    this.#now = now;
    const records: Uint8Array[] = [];
    let size = 0;
    for (let i = 0; i < VALUES_PER_WRITE; i++) {
      const t = link.pollTransmit(now);
      if (t === undefined) break;
      const r = encodeValueRecord(t.char, t.bytes);
      records.push(r);
      size += r.length;
    }
    if (records.length === 0) return undefined;
    if (records.length === 1) return { channel, bytes: records[0] };
    const bytes = new Uint8Array(size);
    let at = 0;
    for (const r of records) {
      bytes.set(r, at);
      at += r.length;
    }
    return { channel, bytes };
  }

  /**
   * Open a connection to the peer's server.
   *
   * @param name The server name.
   * @param options Owner, kind and bundle name (the device's when empty).
   * @returns The stream (our general id).
   * @throws {TypeError} For a bad name or bundle name.
   */
  open(name: string, options: OpenOptions = {}): number {
    const bundle = options.bundle || this.#o.bundleName;
    if (this.#link !== undefined) {
      return this.#link.open(name, {
        owner: options.owner,
        kind: options.kind,
        bundle,
        now: this.#now,
      });
    }
    if (!validName(name)) throw new TypeError(`Invalid server name ${JSON.stringify(name)}`);
    if (!validName(bundle)) throw new TypeError(`Invalid bundle name ${JSON.stringify(bundle)}`);
    const stream = this.#ids.allocate();
    if (this.#state !== "open") {
      this.#ids.release(stream);
      this.#events.push({
        type: "closed",
        stream,
        owner: options.owner,
        reason: DisconnectReason.LINK_CLOSED,
      });
      return stream;
    }
    this.#pending.push({ stream, name, owner: options.owner, kind: options.kind, bundle });
    return stream;
  }

  /**
   * Accept an incoming connection.
   *
   * @param id The stream.
   * @param owner Its owner tag.
   */
  accept(id: number, owner?: unknown): void {
    this.#link?.accept(id, owner);
  }

  /**
   * Refuse an incoming connection.
   *
   * @param id The stream.
   * @param code The linkEnhance code the peer's app sees.
   */
  reject(id: number, code: number): void {
    this.#link?.reject(id, code);
  }

  /**
   * Queue a message (NORMAL, 1..1024 bytes).
   *
   * @param id The stream.
   * @param data The message (copied).
   * @returns `false` when it was not queued (queue full, not open, or too large).
   */
  send(id: number, data: Uint8Array): boolean {
    try {
      return this.#link?.send(id, data) ?? false;
    } catch {
      return false;
    }
  }

  /**
   * Bytes queued on a stream.
   *
   * @param id The stream.
   * @returns Bytes.
   */
  bufferedAmount(id: number): number {
    return this.#link?.bufferedAmount(id) ?? 0;
  }

  /**
   * Close a stream (RESET after what is queued).
   *
   * @param id The stream.
   */
  closeStream(id: number): void {
    const i = this.#pending.findIndex((p) => p.stream === id);
    if (i >= 0) {
      this.#pending.splice(i, 1);
      this.#ids.release(id);
      return;
    }
    this.#link?.closeStream(id, this.#now);
  }

  /** Close the link gracefully. */
  close(): void {
    if (this.#link !== undefined) {
      this.#link.close(this.#now);
      return;
    }
    if (this.#state !== "open") return;
    this.#state = "closing";
    this.#finish("Link closed");
  }

  /**
   * Drop the link at once.
   *
   * @param message Why.
   */
  abort(message: string = "Link aborted"): void {
    if (this.#link !== undefined) this.#link.abort(message);
    else this.#finish(message);
  }

  /** Closed before the BLE connection said it was up. */
  #finish(message: string): void {
    if (this.#state === "closed") return;
    this.#state = "closed";
    for (const p of this.#pending.splice(0)) {
      this.#ids.release(p.stream);
      this.#events.push({
        type: "closed",
        stream: p.stream,
        owner: p.owner,
        reason: DisconnectReason.LINK_CLOSED,
      });
    }
    this.#events.push({ type: "linkClosed", reason: DisconnectReason.LINK_CLOSED, message });
  }
}

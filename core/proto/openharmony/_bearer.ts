/**
 * The BLE connection under an OpenHarmony link's connections, sans-IO: basic
 * info, the ATT MTU, the send queue (messages fragmented by the MTU when
 * handed out, its byte bounds), the reassembly of what arrives, the reference
 * count and its closing negotiation, the link's timers (MTU exchange, basic
 * info, idle, drop) and the link's life (`open`, `closing`, `closed`).
 * {@linkcode OhLink} (`machine.ts`) owns one and keeps the connections; the
 * rules are in its module doc.
 *
 * @module
 */
import { DisconnectReason } from "../../error_codes.ts";
import { Queue } from "../_queue.ts";
import { Reassembler } from "./reassembly.ts";
import {
  type BasicInfo,
  decodeConnPktHead,
  encodeBasicInfo,
  encodeGeneralMessage,
  encodeRcMessage,
  Feature,
  fragment,
  HeaderSize,
  Module,
  MsgType,
  type OhCharacteristic,
  OhLimits,
  OhTimers,
  parseBasicInfo,
  parseRc,
} from "./wire.ts";
import {
  clampMtu,
  OH_CONTROL_BACKLOG_BYTES,
  type OhLinkEvent,
  type OhRole,
  type OhTransmit,
} from "./_machine_types.ts";

interface Outgoing {
  char: OhCharacteristic;
  data: Uint8Array;
  control: boolean;
  writes?: Uint8Array[];
  next: number;
  stream?: number;
  onSent?: (now: number) => void;
}

/** What the bearer tells the link that owns it. */
export interface BearerHooks {
  /** Basic info was exchanged: connections may start. */
  ready(now: number): void;
  /** The link is lost: every connection learns it (before `finished`). */
  lost(): void;
  /** The link is closed: the connections are let go of. */
  finished(): void;
}

/** Options of an {@linkcode OhBearer}. */
export interface BearerOptions {
  /** Our GATT role. */
  role: OhRole;
  /** The device id we present. */
  devid: string;
  /** The device type id we present. */
  devtype: number;
  /** Whether to ask for the peer's networkId. */
  requestNetworkId: boolean;
  /** The ATT MTU, when known. */
  mtu?: number;
  /** The time the BLE connection came up (ms). */
  now: number;
  /** The link's event queue (`linkClosed` goes there). */
  events: Queue<OhLinkEvent>;
  /** What to tell the link. */
  hooks: BearerHooks;
}

/** The BLE connection of one {@linkcode OhLink}. */
export class OhBearer {
  readonly #role: OhRole;
  readonly #devid: string;
  #devtype: number;
  #events: Queue<OhLinkEvent>;
  #hooks: BearerHooks;
  #mtu: number;
  #mtuKnown: boolean;
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
   * The bearer of a link on a BLE connection that is up; the client sends
   * its basic info at once.
   *
   * @param options Role, identity, MTU, clock, events and hooks.
   */
  constructor(options: BearerOptions) {
    this.#role = options.role;
    this.#devid = options.devid;
    this.#devtype = options.devtype;
    this.#events = options.events;
    this.#hooks = options.hooks;
    this.#mtuKnown = options.mtu !== undefined;
    this.#mtu = clampMtu(options.mtu ?? OhLimits.DEFAULT_MTU);
    const now = this.#now = options.now;
    if (this.#role === "client") {
      this.#infoAt = now + OhTimers.BASIC_INFO;
      const features = Feature.REMOTE_DISCONNECT |
        (options.requestNetworkId ? Feature.NETWORK_ID : 0);
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

  /** The latest time given (ms). */
  get now(): number {
    return this.#now;
  }

  // ------------------------------------------------------------- inputs

  /**
   * A GATT value arrived. Basic info (2B00) and reference counts are handled
   * here.
   *
   * @param char The characteristic.
   * @param bytes The value.
   * @param now The current time (ms).
   * @returns The body of a complete BLE general message (not empty), for the link.
   */
  receive(char: OhCharacteristic, bytes: Uint8Array, now: number): Uint8Array | undefined {
    if (this.#state === "closed") return undefined;
    this.tick(now);
    if (this.#mtuAt !== undefined) this.#mtuSettled(now);
    const r = this.#rx.push(bytes);
    if (r.type !== "message") return undefined;
    if (char === "2B00") {
      this.#netMessage(r.data, now);
      return undefined;
    }
    const msg = r.data;
    const head = decodeConnPktHead(msg);
    if (head === undefined) return undefined;
    this.touch(now);
    const body = msg.subarray(HeaderSize.CONN_PKT);
    if (head.module === Module.CONNECTION) {
      const rc = parseRc(body);
      if (typeof rc !== "string") this.#peerRc(rc.delta, rc.refNum, now);
      return undefined;
    }
    if (head.module !== Module.BLE_GENERAL || body.length === 0) return undefined;
    return body;
  }

  /**
   * The ATT MTU is known or changed.
   *
   * @param mtu The ATT MTU.
   * @param now The current time (ms).
   */
  handleMtu(mtu: number, now: number): void {
    if (this.#state === "closed") return;
    this.tick(now);
    this.#mtu = clampMtu(mtu);
    this.#mtuKnown = true;
    if (this.#mtuAt !== undefined) this.#mtuSettled(now);
  }

  /**
   * Whether `transmit` may hand out bytes.
   *
   * @param writable Whether the BLE connection takes more.
   */
  handleWritable(writable: boolean): void {
    this.#writable = writable;
  }

  /**
   * Timers are due: first the references to let go of.
   *
   * @param now The current time (ms).
   * @returns Whether the link is still there.
   */
  handleReleases(now: number): boolean {
    if (this.#state === "closed") return false;
    this.tick(now);
    while (this.#releases.length > 0 && this.#releases[0] <= now) {
      this.#releases.shift();
      this.updateRc(-1, now);
      if (this.#isClosed()) return false;
    }
    return true;
  }

  /**
   * Timers are due: then the link's own (after the connections').
   *
   * @param now The current time (ms).
   */
  handleLinkTimers(now: number): void {
    if (this.#mtuAt !== undefined && this.#mtuAt <= now) {
      this.lose(`No ATT MTU exchange within ${OhTimers.MTU_WAIT} ms`);
    } else if (this.#infoAt !== undefined && this.#infoAt <= now) {
      this.lose(`No basic info within ${OhTimers.BASIC_INFO} ms`);
    } else if (this.#dropAt !== undefined && this.#dropAt <= now) {
      this.lose(this.#dropWhy);
    } else if (this.#idleAt !== undefined && this.#idleAt <= now) {
      this.lose(`Link idle for ${OhTimers.IDLE} ms with no connection`);
    }
  }

  /**
   * The earliest of the link's timers.
   *
   * @returns A time (ms), or `Infinity`.
   */
  timeout(): number {
    return Math.min(
      this.#mtuAt ?? Infinity,
      this.#infoAt ?? Infinity,
      this.#dropAt ?? Infinity,
      this.#idleAt ?? Infinity,
      this.#releases[0] ?? Infinity,
    );
  }

  /**
   * The next GATT value to send, if any.
   *
   * @param now The current time (ms).
   * @returns The characteristic and bytes, or `undefined`.
   */
  transmit(now: number): OhTransmit | undefined {
    if (this.#state === "closed" || !this.#writable) return undefined;
    this.tick(now);
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
        this.finish("Link closed");
      }
    }
    return { char: m.char, bytes };
  }

  // ---------------------------------------------------------- receiving

  #netMessage(msg: Uint8Array, now: number): void {
    if (this.#infoDone || this.#negotiating) return; // OpenHarmony dispatches it to nobody
    const info = parseBasicInfo(msg);
    if (typeof info === "string") {
      this.lose(`Bad basic info from the peer: ${info}`);
      return;
    }
    this.#peer = info;
    this.#infoDone = true;
    this.#infoAt = undefined;
    if (this.#role === "server") {
      this.#sendBasicInfo(info.features | Feature.REMOTE_DISCONNECT, now);
    }
    this.touch(now);
    this.#hooks.ready(now);
  }

  #peerRc(delta: number, peerRc: number, now: number): void {
    this.#rc = (this.#rc + delta) | 0;
    if (peerRc > 0) {
      if (this.#negotiating) this.#resume();
      return;
    }
    if (this.#rc <= 0) {
      this.lose("Link closed by the peer: no references left");
      return;
    }
    this.#postRc(0, now);
  }

  // ------------------------------------------------------------ sending

  #sendBasicInfo(features: number, now: number): void {
    const omitDevid = this.#peer?.devtype === 0xff;
    const msg = encodeBasicInfo({
      ...(omitDevid ? {} : { devid: this.#devid }),
      type: this.#role === "client" ? 1 : 2,
      devtype: this.#devtype,
      features,
    });
    this.#enqueue({ char: "2B00", data: msg, control: true, next: 0 }, now);
  }

  /**
   * Whether general messages (module 102) may be sent: basic info is
   * exchanged and the link is not closing down.
   *
   * @returns Whether.
   */
  canPostGeneral(): boolean {
    return this.#infoDone && !this.#negotiating && this.#state !== "closed";
  }

  /**
   * Queue a general message of a connection (it takes a sequence number
   * even when it cannot be sent).
   *
   * @param msgType The message type.
   * @param c The connection's ids: ours (`id`) and the peer's.
   * @param payload The payload.
   * @param now The current time (ms).
   * @param onSent Called once it is fully handed out.
   * @returns Whether it was queued.
   */
  postGeneral(
    msgType: number,
    c: { id: number; peerId: number },
    payload: Uint8Array,
    now: number,
    onSent?: () => void,
  ): boolean {
    const seq = this.#pktSeq++;
    if (!this.canPostGeneral()) return false;
    const data = encodeGeneralMessage({ seq, msgType, localId: c.id, peerId: c.peerId, payload });
    const control = msgType !== MsgType.NORMAL;
    return this.#enqueue({ char: "2B01", data, control, next: 0, stream: c.id, onSent }, now);
  }

  /** A general message that could not be posted still takes a sequence number. */
  skipSeq(): void {
    this.#pktSeq++;
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
    this.touch(now);
    return true;
  }

  /**
   * Our own reference change (`ConnBleUpdateConnectionRc`).
   *
   * @param delta `+1` or `-1`.
   * @param now The current time (ms).
   */
  updateRc(delta: number, now: number): void {
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

  /**
   * Let go of a reference 100 ms from now (after a RESET of a connection we opened).
   *
   * @param now The current time (ms).
   */
  releaseLater(now: number): void {
    this.#releases.push(now + OhTimers.DISCONNECT_DELAY);
  }

  #resume(): void {
    this.#negotiating = false;
    this.#dropAt = undefined;
  }

  // ------------------------------------------------------------ helpers

  /**
   * Time moves on.
   *
   * @param now The current time (ms).
   */
  tick(now: number): void {
    if (now > this.#now) this.#now = now;
  }

  /**
   * Traffic: the idle timer starts again (unless a connection was ever opened).
   *
   * @param now The current time (ms).
   */
  touch(now: number): void {
    if (this.#infoDone && !this.#idleCancelled) this.#idleAt = now + OhTimers.IDLE;
  }

  /** A connection was opened on the link: it is never dropped for being idle. */
  cancelIdle(): void {
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

  /** Close gracefully: no more releases; `linkClosed` once everything queued was handed out. */
  closing(): void {
    this.#releases = [];
    this.#state = "closing";
    if (this.#tx.length === 0) this.finish("Link closed");
  }

  /**
   * The link is gone: every connection learns it, nothing more is sent.
   *
   * @param message Why, for the `linkClosed` event.
   */
  lose(message: string): void {
    this.#hooks.lost();
    this.finish(message);
  }

  /**
   * The link is closed: nothing is held any more, `linkClosed` is reported.
   *
   * @param message Why, for the `linkClosed` event.
   */
  finish(message: string): void {
    if (this.#state === "closed") return;
    this.#state = "closed";
    this.#hooks.finished();
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

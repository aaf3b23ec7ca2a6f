/**
 * The transport-level BLE API: a {@linkcode GattLink} (one BLE connection in
 * either role) carries {@linkcode GattChannel}s, one duplex byte path per
 * channel of the profile. A channel moves whole GATT values: each `write` is
 * one write without response (central) or one notification (peripheral), at
 * most `maxPayload` = ATT MTU - 3 bytes; each `data` event is one value
 * received. Framing, fragmentation and reassembly belong to the layer above.
 *
 * @module
 */
import { socketErrorCode } from "../../core/error_codes.ts";
import { type BusinessError, ParameterError, PlatformError } from "../../core/errors.ts";
import { Emitter } from "../../core/emitter.ts";
import type { GattProfile } from "./profile.ts";

/** Where a channel's outgoing values go. */
export interface ChannelSink {
  /** `fd`: a socket from `AcquireWrite`/`AcquireNotify`; `dbus`: `WriteValue` or `PropertiesChanged`. */
  readonly kind: "fd" | "dbus";
  /**
   * Send one value. It is always taken; `false` asks the caller to wait for
   * the sink's drain before sending more.
   */
  send(bytes: Uint8Array): boolean;
}

/** Events of a {@linkcode GattChannel}. */
export interface ChannelEventMap extends Record<string, unknown> {
  /** One GATT value arrived (owned by the listener). */
  data: Uint8Array;
  /** Writing may go on after `write` returned `false`. */
  drain: undefined;
}

/** ATT's smallest MTU: what a link uses until a larger one is known. */
export const MIN_ATT_MTU = 23;

/**
 * Most values a channel keeps while nobody listens to `data` yet (a link is
 * live before its user has attached listeners); later ones are dropped.
 * At most 256 x 514 bytes per channel.
 */
export const MAX_UNREAD_VALUES = 256;

/** One duplex byte path of a link: a characteristic pair of the profile. */
export class GattChannel {
  /** The channel's index in the profile. */
  readonly index: number;
  #events = new Emitter<ChannelEventMap>();
  #sink: ChannelSink | undefined;
  #pending: Uint8Array[] = [];
  #told = false;
  #closed: BusinessError<unknown> | undefined;
  #mtu: () => number;
  #describe: () => string;
  #unread: Uint8Array[] | undefined = [];

  /**
   * @param index Its index.
   * @param mtu The link's current ATT MTU.
   * @param describe The link, for messages.
   */
  constructor(index: number, mtu: () => number, describe: () => string) {
    this.index = index;
    this.#mtu = mtu;
    this.#describe = describe;
  }

  /** The largest value one `write` may carry: ATT MTU - 3. */
  get maxPayload(): number {
    return this.#mtu() - 3;
  }

  /** How outgoing values travel now: `fd`, `dbus`, or `none` (not yet subscribed by the peer). */
  get path(): "fd" | "dbus" | "none" {
    return this.#sink?.kind ?? "none";
  }

  /** Values waiting for the peer to subscribe. */
  get pending(): number {
    return this.#pending.length;
  }

  /**
   * Listen to `data` or `drain`.
   *
   * @param type The event.
   * @param cb The listener.
   */
  on<K extends keyof ChannelEventMap>(type: K, cb: (payload: ChannelEventMap[K]) => void): void {
    this.#events.on(type, cb);
    if (type === "data" && this.#unread !== undefined) {
      // Values that arrived before the first listener, in order.
      const early = this.#unread;
      this.#unread = undefined;
      for (const v of early) this.#events.emit("data", v);
    }
  }

  /**
   * Stop listening.
   *
   * @param type The event.
   * @param cb The listener (all of that type when omitted).
   */
  off<K extends keyof ChannelEventMap>(type: K, cb?: (payload: ChannelEventMap[K]) => void): void {
    this.#events.off(type, cb);
  }

  /**
   * Send one GATT value (copied).
   *
   * @param bytes At most `maxPayload` bytes.
   * @returns `true` while more may be written at once; `false` to wait for `drain`.
   * @throws {ParameterError} When the value is larger than `maxPayload` or empty.
   * @throws {PlatformError} `ENOTCONN` (2301107) when the link is closed.
   */
  write(bytes: Uint8Array): boolean {
    if (this.#closed !== undefined) {
      throw new PlatformError(
        socketErrorCode("ENOTCONN"),
        `Cannot write to channel ${this.index} of ${this.#describe()}: the link is closed`,
        { data: { platform: "bluez", name: "ENOTCONN" }, cause: this.#closed },
      );
    }
    const max = this.maxPayload;
    if (bytes.length === 0 || bytes.length > max) {
      throw new ParameterError(
        `Cannot write ${bytes.length} bytes to channel ${this.index} of ${this.#describe()}: ` +
          `a GATT value holds 1..${max} bytes at ATT MTU ${max + 3}`,
      );
    }
    if (this.#sink === undefined) {
      this.#pending.push(bytes.slice());
      this.#told = true;
      return false;
    }
    const more = this.#sink.send(bytes);
    if (!more) this.#told = true;
    return more;
  }

  /** @internal Use another sink (or none); waiting values go to it. */
  setSink(sink: ChannelSink | undefined): void {
    this.#sink = sink;
    if (sink === undefined || this.#closed !== undefined) return;
    let more = true;
    for (const p of this.#pending.splice(0)) more = sink.send(p);
    if (more) this.sinkDrained();
  }

  /** @internal The sink can take more. */
  sinkDrained(): void {
    if (!this.#told || this.#sink === undefined || this.#closed !== undefined) return;
    this.#told = false;
    this.#events.emit("drain", undefined);
  }

  /** @internal A value arrived. */
  deliver(bytes: Uint8Array): void {
    if (this.#closed !== undefined) return;
    if (this.#unread !== undefined) {
      if (this.#unread.length < MAX_UNREAD_VALUES) this.#unread.push(bytes);
      return;
    }
    this.#events.emit("data", bytes);
  }

  /** @internal The link closed. */
  shut(error: BusinessError<unknown>): void {
    if (this.#closed !== undefined) return;
    this.#closed = error;
    this.#sink = undefined;
    this.#pending = [];
    this.#unread = undefined;
    this.#events.clear();
  }
}

/** Why a link closed. */
export type CloseReason =
  | "local"
  | "disconnected"
  | "adapter-off"
  | "bluez-gone"
  | "error";

/** The `close` event of a {@linkcode GattLink}. */
export interface LinkClose {
  /**
   * `local`: `close()` was called; `disconnected`: the peer disconnected or
   * the link was lost (out of range; BlueZ does not tell these apart);
   * `adapter-off`: the adapter was powered off or removed; `bluez-gone`:
   * bluetoothd left the bus; `error`: a GATT operation failed (`error`).
   */
  reason: CloseReason;
  /** What failed, for `error` (and the BlueZ error behind the others, when known). */
  error?: BusinessError<unknown>;
}

/** Events of a {@linkcode GattLink}. */
export interface LinkEventMap extends Record<string, unknown> {
  /** The link closed (once). */
  close: LinkClose;
  /** The ATT MTU changed (peripheral role: learned from the central's requests). */
  mtu: number;
}

/** One BLE connection in either role, with one channel per profile channel. */
export class GattLink {
  /** `central`: we connected; `peripheral`: a central connected to our service. */
  readonly role: "central" | "peripheral";
  /** The peer's Bluetooth address (`AA:BB:CC:DD:EE:FF`). */
  readonly peer: string;
  /** Our adapter's address. */
  readonly local: string;
  /** The profile it speaks. */
  readonly profile: GattProfile;
  /** Its channels, in profile order. */
  readonly channels: readonly GattChannel[];
  #events = new Emitter<LinkEventMap>();
  #mtu = MIN_ATT_MTU;
  #closed: LinkClose | undefined;
  #teardown: (reason: CloseReason) => Promise<void>;
  #done: Promise<LinkClose>;
  #resolveDone!: (c: LinkClose) => void;
  #tornDown: Promise<void> = Promise.resolve();

  /**
   * @internal Made by an adapter's `connect` or `serve`.
   */
  constructor(
    init: {
      role: "central" | "peripheral";
      peer: string;
      local: string;
      profile: GattProfile;
      teardown: (reason: CloseReason) => Promise<void>;
    },
  ) {
    this.role = init.role;
    this.peer = init.peer;
    this.local = init.local;
    this.profile = init.profile;
    this.#teardown = init.teardown;
    const describe = () => `the BLE link to "${this.peer}"`;
    this.channels = init.profile.channels.map((_, i) =>
      new GattChannel(i, () => this.#mtu, describe)
    );
    this.#done = new Promise((r) => (this.#resolveDone = r));
  }

  /** The ATT MTU (payload per value: MTU - 3). */
  get mtu(): number {
    return this.#mtu;
  }

  /** Whether it is closed. */
  get closed(): boolean {
    return this.#closed !== undefined;
  }

  /** Resolves when it closes, with why. */
  get done(): Promise<LinkClose> {
    return this.#done;
  }

  /**
   * Listen to `close` or `mtu`.
   *
   * @param type The event.
   * @param cb The listener.
   */
  on<K extends keyof LinkEventMap>(type: K, cb: (payload: LinkEventMap[K]) => void): void {
    this.#events.on(type, cb);
  }

  /**
   * Stop listening.
   *
   * @param type The event.
   * @param cb The listener (all of that type when omitted).
   */
  off<K extends keyof LinkEventMap>(type: K, cb?: (payload: LinkEventMap[K]) => void): void {
    this.#events.off(type, cb);
  }

  /** @internal A larger (or known) ATT MTU. */
  setMtu(mtu: number): void {
    if (mtu === this.#mtu || mtu < MIN_ATT_MTU || this.#closed !== undefined) return;
    this.#mtu = mtu;
    this.#events.emit("mtu", mtu);
  }

  /** @internal The link ended. */
  finish(reason: CloseReason, error?: BusinessError<unknown>): void {
    if (this.#closed !== undefined) return;
    const info: LinkClose = error === undefined ? { reason } : { reason, error };
    this.#closed = info;
    const why = error ?? new PlatformError(
      socketErrorCode(reason === "local" ? "ECONNABORTED" : "ECONNRESET"),
      `The BLE link to "${this.peer}" closed (${reason})`,
      { data: { platform: "bluez", name: reason } },
    );
    for (const c of this.channels) c.shut(why);
    this.#tornDown = this.#teardown(reason).catch(() => {});
    this.#events.emit("close", info);
    this.#events.clear();
    this.#resolveDone(info);
  }

  /**
   * Close the link: a central disconnects; a peripheral drops its sockets and
   * disconnects the central.
   *
   * @returns When it is closed.
   */
  async close(): Promise<void> {
    this.finish("local");
    await this.#tornDown;
  }
}

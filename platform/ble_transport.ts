/**
 * The BLE transport: channels over BLE GATT links through BlueZ
 * (`platform/bluez/`), for the device driver's channel contract
 * (`core/device/channel.ts`). Its kind and address transport are `ble`; a
 * peer's address is its Bluetooth address (`{ transport: "ble", host:
 * "AA:BB:CC:DD:EE:FF", port: 0 }`).
 *
 * - **Dial**: connect to the address as a GATT client (scanning for it when
 *   BlueZ does not know it yet, BlueZ's transient errors retried) with the
 *   profile chosen for that peer.
 * - **Listen**: serve the profiles' GATT services as a peripheral,
 *   advertising them; a central that connects and writes becomes a channel.
 *   A central that writes nothing within 10 s is disconnected (a BlueZ
 *   peripheral serves one central at a time). An adapter that powers off
 *   closes its links; the services are served again when it powers on.
 *
 * Two kinds of channel:
 * - `linkweave`: the first characteristic pair of linkweave's service as a
 *   byte stream, which the link's own handshake runs over unchanged. Writes
 *   are cut into GATT values of ATT MTU - 3 bytes; values arrive in order
 *   and are handed on as bytes. Its `mtu` (the link's frame size) is ATT MTU
 *   - 3, and at least {@linkcode MIN_BLE_FRAME}, so frame headers stay a
 *   small share at small MTUs (a frame may span values: the stream is
 *   reliable and ordered).
 * - `openharmony`: one BLE connection to OpenHarmony's service (2B00 and
 *   2B01 both ways) as the records of `core/proto/openharmony/gatt_records.ts`
 *   (each value with its characteristic, our GATT role and the ATT MTU
 *   first, MTU changes), with `profile: "openharmony"` and the peer's
 *   address in its info. Its values go through D-Bus (`WriteValue`, or
 *   `PropertiesChanged` as a server), never BlueZ's sockets: OpenHarmony
 *   reassembles both characteristics in one buffer, so their values must
 *   reach the peer in the order they were sent, which D-Bus keeps and two
 *   separate sockets would not.
 *
 * Backpressure: a channel takes every write, keeps what the GATT channel
 * cannot take yet, and returns `false` until it has passed everything on
 * (then `onDrain`). Link loss (out of range, the peer disconnecting, the
 * adapter powering off, bluetoothd leaving) closes the channel with the
 * reason.
 *
 * @module
 */
import { socketErrorCode } from "../core/error_codes.ts";
import { type BusinessError, PlatformError } from "../core/errors.ts";
import type {
  Channel,
  ChannelEvents,
  ChannelInfo,
  ListenEvents,
  PeerAddress,
  Transport,
  TransportListener,
} from "../core/device/channel.ts";
import type { ProfileName } from "../core/device/config.ts";
import {
  encodeMtuRecord,
  encodeUpRecord,
  encodeValueRecord,
  GattRecordReader,
  type GattRole,
} from "../core/proto/openharmony/gatt_records.ts";
import {
  type Adapter,
  checkAddress,
  type GattChannel,
  type GattLink,
  type GattProfile,
  type GattServer,
  type LinkClose,
  linkweaveProfile,
  OPENHARMONY_PROFILE,
} from "./bluez/mod.ts";

/** The smallest frame size a `linkweave` BLE channel offers its link. */
export const MIN_BLE_FRAME = 244;

/** How long a central that connected may stay silent before it is disconnected (ms). */
export const FIRST_VALUE_TIMEOUT = 10_000;

/** How long closing a channel waits for its values to go out before it disconnects (ms). */
const CLOSE_LINGER = 2_000;

/** Options of {@linkcode bleTransport}. */
export interface BleTransportOptions {
  /** The adapter. */
  adapter: Adapter;
  /** The profile of links to a peer (dials). @default {() => "linkweave"} */
  profileFor?: (peer: string) => ProfileName;
  /** The profiles whose GATT services a listener serves. @default {["linkweave"]} */
  serve?: readonly ProfileName[];
  /** Time for one dial: scan, connect, services, subscriptions (ms). @default {10000} */
  connectTimeout?: number;
  /** Use BlueZ's sockets for `linkweave` channels where the runtime can. @default {true} */
  fdPath?: boolean;
  /** Notable events, with advice (each message once). @default {none} */
  log?: (message: string) => void;
  /** Called once the listener closed and every link it made or dialled has closed. */
  onIdle?: () => void;
}

/** The GATT layout of a profile. */
function gattProfile(p: ProfileName): GattProfile {
  return p === "openharmony" ? OPENHARMONY_PROFILE : linkweaveProfile(1);
}

/** A timer that never keeps the process alive. */
function unrefTimer(fn: () => void, ms: number): ReturnType<typeof setTimeout> {
  const t = setTimeout(fn, ms);
  if (typeof t === "number") {
    (globalThis as { Deno?: { unrefTimer(id: number): void } }).Deno?.unrefTimer(t);
  } else {
    (t as { unref?: () => void }).unref?.();
  }
  return t;
}

/**
 * Channel events run one per microtask, in order, each after the microtasks
 * the one before queued. BlueZ hands over many values at once (several
 * D-Bus messages or socket packets read in one go); delivered in one
 * synchronous run, a value could reach the API layer before work the
 * previous one started (an accepted connection is announced in a
 * microtask): a peer's first message right after the connection's answer
 * would be lost. One queue for every BLE channel keeps their order too.
 */
const pending: (() => void)[] = [];
let draining = false;

function runEvent(fn: () => void): void {
  pending.push(fn);
  if (!draining) {
    draining = true;
    queueMicrotask(nextEvent);
  }
}

function nextEvent(): void {
  const fn = pending.shift();
  if (fn === undefined) {
    draining = false;
    return;
  }
  try {
    fn();
  } finally {
    // After what `fn` queued.
    queueMicrotask(nextEvent);
  }
}

/** A channel's events, each run through {@linkcode runEvent}. */
function serial(events: ChannelEvents): ChannelEvents {
  return {
    onData: (bytes) => runEvent(() => events.onData(bytes)),
    onDrain: () => runEvent(() => events.onDrain()),
    onClose: (error) => runEvent(() => events.onClose(error)),
  };
}

/** What a closed link tells its channel. */
function closeError(link: GattLink, c: LinkClose): BusinessError<unknown> | undefined {
  if (c.reason === "local") return undefined;
  if (c.error !== undefined && c.reason === "error") return c.error;
  const why = c.reason === "disconnected"
    ? "the device disconnected or went out of range"
    : c.reason === "adapter-off"
    ? "the adapter was powered off"
    : c.reason === "bluez-gone"
    ? "bluetoothd stopped"
    : "a GATT operation failed";
  return new PlatformError(
    socketErrorCode("ECONNRESET"),
    `The BLE link to "${link.peer}" closed: ${why}`,
    { data: { platform: "bluez", name: c.reason }, cause: c.error },
  );
}

/**
 * Values for a GATT channel: taken at once while it accepts, kept in order
 * while it asks to wait.
 */
class ValueQueue {
  #queue: { gatt: GattChannel; value: Uint8Array }[] = [];
  #waiting: GattChannel | undefined;
  #onEmpty: () => void;

  constructor(onEmpty: () => void) {
    this.#onEmpty = onEmpty;
  }

  /** Whether values wait (or the last one is still being taken). */
  get busy(): boolean {
    return this.#waiting !== undefined || this.#queue.length > 0;
  }

  /** Send a value (lent: copied if it must wait). */
  push(gatt: GattChannel, value: Uint8Array): void {
    if (this.busy) {
      this.#queue.push({ gatt, value: value.slice() });
      return;
    }
    if (!gatt.write(value)) this.#wait(gatt);
  }

  #wait(gatt: GattChannel): void {
    this.#waiting = gatt;
    gatt.on("drain", () => {
      gatt.off("drain");
      this.#waiting = undefined;
      this.#pump();
    });
  }

  #pump(): void {
    while (this.#queue.length > 0 && this.#waiting === undefined) {
      const { gatt, value } = this.#queue.shift()!;
      if (!gatt.write(value)) this.#wait(gatt);
    }
    if (!this.busy) this.#onEmpty();
  }
}

/** What both channel kinds share: backpressure, closing, link loss. */
abstract class BleChannel implements Channel {
  abstract readonly info: ChannelInfo;
  protected readonly link: GattLink;
  protected readonly events: ChannelEvents;
  protected readonly queue: ValueQueue;
  #told = false;
  #closing = false;
  #closed = false;

  constructor(link: GattLink, events: ChannelEvents) {
    this.link = link;
    this.events = serial(events);
    this.queue = new ValueQueue(() => this.#emptied());
    link.on("close", (c) => {
      if (this.#closed) return;
      this.#closed = true;
      this.events.onClose(closeError(link, c));
    });
  }

  /** Bytes for the owner, after what the channel said before. */
  received(bytes: Uint8Array): void {
    this.events.onData(bytes);
  }

  /** Hand the values of `bytes` to the GATT channels (may throw on a broken link). */
  protected abstract send(bytes: Uint8Array): void;

  write(bytes: Uint8Array): boolean {
    if (this.#closed || this.#closing || this.link.closed) return false;
    try {
      this.send(bytes);
    } catch (e) {
      // The link closed under us (its close event follows), or a value did not fit.
      if (!this.link.closed) void this.link.close();
      void e;
      return false;
    }
    if (!this.queue.busy) return true;
    this.#told = true;
    return false;
  }

  #emptied(): void {
    if (this.#closing) {
      void this.link.close();
      return;
    }
    if (this.#told) {
      this.#told = false;
      this.events.onDrain();
    }
  }

  close(): void {
    if (this.#closing || this.#closed) return;
    this.#closing = true;
    if (!this.queue.busy) {
      void this.link.close();
      return;
    }
    unrefTimer(() => void this.link.close(), CLOSE_LINGER);
  }
}

/** linkweave's profile: the first characteristic pair as a byte stream. */
class LinkweaveChannel extends BleChannel {
  readonly info: ChannelInfo;
  #gatt: GattChannel;

  constructor(link: GattLink, events: ChannelEvents) {
    super(link, events);
    this.#gatt = link.channels[0];
    this.info = {
      kind: "ble",
      mtu: Math.min(65535, Math.max(MIN_BLE_FRAME, link.mtu - 3)),
      remote: link.peer,
    };
    this.#gatt.on("data", (v) => this.events.onData(v));
  }

  protected send(bytes: Uint8Array): void {
    const max = this.#gatt.maxPayload;
    for (let off = 0; off < bytes.length; off += max) {
      this.queue.push(this.#gatt, bytes.subarray(off, Math.min(bytes.length, off + max)));
    }
  }
}

const CHARS = ["2B00", "2B01"] as const;

/** OpenHarmony's profile: both characteristics as records of one stream. */
class OpenHarmonyChannel extends BleChannel {
  readonly info: ChannelInfo;
  #reader = new GattRecordReader();

  constructor(link: GattLink, role: GattRole, events: ChannelEvents) {
    super(link, events);
    this.info = {
      kind: "ble",
      mtu: link.mtu,
      remote: link.peer,
      profile: "openharmony",
      peer: link.peer,
    };
    this.events.onData(encodeUpRecord(role, link.mtu));
    link.on("mtu", (mtu) => this.events.onData(encodeMtuRecord(mtu)));
    for (const [i, ch] of link.channels.entries()) {
      ch.on("data", (v) => this.events.onData(encodeValueRecord(CHARS[i], v)));
    }
  }

  protected send(bytes: Uint8Array): void {
    this.#reader.push(bytes, (r) => {
      if (r.type === "value") {
        this.queue.push(this.link.channels[r.char === "2B00" ? 0 : 1], r.value);
      }
    });
    if (this.#reader.problem !== undefined) throw new Error(this.#reader.problem);
  }
}

/**
 * A BLE transport over one adapter.
 *
 * @param options The adapter, profiles, timeouts and logging.
 * @returns The transport (kind `ble`).
 */
export function bleTransport(options: BleTransportOptions): Transport {
  const { adapter } = options;
  const profileFor = options.profileFor ?? (() => "linkweave");
  const serve = options.serve ?? ["linkweave"];
  const log = options.log ?? (() => {});
  const links = new Set<GattLink>();
  let listening = false;
  let listenerClosed = false;
  let idleSent = false;
  const checkIdle = () => {
    if (listenerClosed && links.size === 0 && !idleSent) {
      idleSent = true;
      options.onIdle?.();
    }
  };
  const track = (link: GattLink) => {
    links.add(link);
    void link.done.then(() => {
      links.delete(link);
      checkIdle();
    });
  };

  return {
    kind: "ble",

    async dial(address: PeerAddress, events: ChannelEvents): Promise<Channel> {
      const mac = checkAddress(address.host);
      const profile = profileFor(mac);
      const link = await adapter.connect(mac, gattProfile(profile), {
        timeout: options.connectTimeout,
        fdPath: profile === "openharmony" ? false : options.fdPath,
      });
      track(link);
      return profile === "openharmony"
        ? new OpenHarmonyChannel(link, 1, events)
        : new LinkweaveChannel(link, events);
    },

    async listen(events: ListenEvents): Promise<TransportListener> {
      if (listening) throw new Error("The BLE transport listens once");
      listening = true;
      const servers = new Set<GattServer>();
      const active = new Set<string>();
      let stopPower = () => {};
      const incoming = (link: GattLink, profile: ProfileName) => {
        track(link);
        const silent = unrefTimer(() => {
          // Serving both profiles, a central's link on the service it does
          // not use stays quiet: it is left alone (disconnecting would cut
          // the other one).
          if (active.has(link.peer)) return;
          log(
            `The BLE central "${link.peer}" wrote nothing within ${FIRST_VALUE_TIMEOUT} ms and was disconnected`,
          );
          void link.close();
        }, FIRST_VALUE_TIMEOUT);
        void link.done.then(() => clearTimeout(silent));
        // The channel is made on the central's first value (it speaks first
        // in both profiles): by then BlueZ has told the ATT MTU.
        const watched = profile === "openharmony" ? link.channels : [link.channels[0]];
        let made = false;
        for (const [i, gatt] of watched.entries()) {
          gatt.on("data", (first) => {
            if (made) return;
            made = true;
            clearTimeout(silent);
            active.add(link.peer);
            void link.done.then(() => active.delete(link.peer));
            for (const g of watched) g.off("data");
            // What the channel says while it is made waits for its handlers.
            // The channel's events run in later microtasks, once its handlers are known.
            const to: { ev?: ChannelEvents } = {};
            const relay: ChannelEvents = {
              onData: (b) => to.ev!.onData(b),
              onDrain: () => to.ev!.onDrain(),
              onClose: (e) => to.ev!.onClose(e),
            };
            const ch = profile === "openharmony"
              ? new OpenHarmonyChannel(link, 2, relay)
              : new LinkweaveChannel(link, relay);
            to.ev = events.onChannel(ch);
            ch.received(profile === "openharmony" ? encodeValueRecord(CHARS[i], first) : first);
          });
        }
      };
      const start = async () => {
        for (const profile of serve) {
          const server = await adapter.serve(gattProfile(profile), {
            fdPath: profile === "openharmony" ? false : options.fdPath,
          });
          servers.add(server);
          server.on("connection", (link) => incoming(link, profile));
          server.on("close", ({ reason }) => {
            servers.delete(server);
            if (reason === "bluez-gone" && !listenerClosed) {
              events.onFailed(
                new PlatformError(
                  socketErrorCode("ECONNRESET"),
                  `The BLE listener on adapter "${adapter.name}" stopped: bluetoothd left the system bus (restart it with \`sudo systemctl restart bluetooth\`)`,
                  { data: { platform: "bluez", name: reason } },
                ),
              );
            }
          });
        }
      };
      const stop = async () => {
        const old = [...servers];
        servers.clear();
        await Promise.all(old.map((s) => s.close()));
      };
      try {
        await start();
      } catch (e) {
        await stop();
        throw e;
      }
      let off = false;
      stopPower = adapter.onPowerChange((on) => {
        if (listenerClosed || on === !off) return;
        off = !on;
        if (!on) {
          log(
            `Adapter "${adapter.name}" was powered off: its BLE links closed; linkweave serves it again once it is powered on (\`bluetoothctl power on\`, \`rfkill unblock bluetooth\`)`,
          );
          return;
        }
        // The old services may still be unregistering: new ones take new paths.
        void stop().then(start).then(
          () => log(`Adapter "${adapter.name}" is powered on: serving BLE again`),
          (e) =>
            log(`Cannot serve BLE again on adapter "${adapter.name}": ${(e as Error).message}`),
        );
      });
      return {
        address: { transport: "ble", host: adapter.address, port: 0 },
        close: async () => {
          if (listenerClosed) return;
          listenerClosed = true;
          stopPower();
          await stop();
          checkIdle();
        },
      };
    },
  };
}

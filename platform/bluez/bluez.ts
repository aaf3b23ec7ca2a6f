/**
 * BlueZ over D-Bus: adapters (power, discovery with filters), and BLE links
 * in both roles through {@linkcode Adapter.connect} (central) and
 * {@linkcode Adapter.serve} (peripheral).
 *
 * @module
 */
import { socketErrorCode } from "../../core/error_codes.ts";
import { ParameterError, PlatformError } from "../../core/errors.ts";
import { Emitter } from "../../core/emitter.ts";
import type { GattLink } from "./channel.ts";
import { connectBus, type DBusConnection, type Subscription } from "./dbus/connection.ts";
import { DBusError, DBusErrorName } from "./dbus/errors.ts";
import { type Libc, loadLibc } from "./dbus/_ffi.ts";
import { Variant } from "./dbus/marshal.ts";
import { bluezError } from "./_hints.ts";
import { type BluezContext, devicePath, Iface } from "./_context.ts";
import { BLUEZ, ObjectTree, type Props } from "./_objects.ts";
import { checkProfile, type GattProfile, normalizeUuid } from "./profile.ts";
import {
  connectCentral,
  connectDevice,
  type ConnectOptions,
  type DeviceConnectOptions,
} from "./_central.ts";
import { GattServer, type ServeOptions } from "./_peripheral.ts";

/** Options of {@linkcode openBluez}. */
export interface BluezOptions {
  /** A connection to share (it stays open on `close`). @default {a new system bus connection} */
  bus?: DBusConnection;
  /** The bus address when connecting. @default {DBUS_SYSTEM_BUS_ADDRESS, else the system bus} */
  address?: string;
  /**
   * Use BlueZ's socket fast path (`AcquireWrite`/`AcquireNotify`) where the
   * runtime can pass file descriptors (Deno with `--allow-ffi`, Bun). Without
   * it (and always on Node 20) values travel as D-Bus calls and signals.
   * @default {true}
   */
  fdPath?: boolean;
  /** Called once per notable event (a link lost, bluetoothd gone), with advice. */
  logger?: (message: string) => void;
  /**
   * Whether the open handle keeps the process alive. With `false`, neither
   * the bus connection nor BlueZ's sockets do (as an unref'd socket): the
   * process lives while a call waits for BlueZ or something else holds it.
   * @default {true}
   */
  keepAlive?: boolean;
}

/**
 * Connect to BlueZ.
 *
 * @param options Bus, fd path, logger.
 * @returns The handle.
 * @throws {DBusError} With advice: no system bus, policy refusal, bluetoothd not running.
 *
 * @example
 * ```ts ignore
 * const bluez = await openBluez();
 * const adapter = bluez.adapter();          // the first powered adapter
 * const link = await adapter.connect("AA:BB:CC:DD:EE:FF", linkweaveProfile(2));
 * link.channels[0].on("data", (v) => console.log(v.length));
 * link.channels[0].write(new Uint8Array([1, 2, 3]));
 * ```
 */
export async function openBluez(options: BluezOptions = {}): Promise<Bluez> {
  const wantFds = options.fdPath !== false;
  let bus: DBusConnection;
  try {
    bus = options.bus ?? await connectBus({ address: options.address, unixFds: wantFds });
  } catch (e) {
    throw bluezError(e, "Cannot reach BlueZ");
  }
  try {
    const tree = await ObjectTree.open(bus);
    const libc = wantFds && bus.unixFds ? await loadLibc() : undefined;
    const keepAlive = options.keepAlive !== false;
    if (!keepAlive && options.bus === undefined) bus.unref();
    return new Bluez(bus, tree, libc, options.bus === undefined, options.logger, keepAlive);
  } catch (e) {
    if (options.bus === undefined) bus.close();
    throw bluezError(e, "Cannot reach BlueZ");
  }
}

/** An adapter as BlueZ lists it. */
export interface AdapterInfo {
  /** `hci0`. */
  name: string;
  /** Its object path. */
  path: string;
  /** Its Bluetooth address. */
  address: string;
  /** Its alias. */
  alias: string;
  /** Whether it is powered. */
  powered: boolean;
}

/** BlueZ, through one bus connection. */
export class Bluez {
  /** The bus connection. */
  readonly bus: DBusConnection;
  #tree: ObjectTree;
  #libc: Libc | undefined;
  #ownBus: boolean;
  #logged = new Set<string>();
  #logger: (message: string) => void;
  #gone = new Set<() => void>();
  #nameWatch: Promise<Subscription>;
  #closed = false;
  #servers = new Set<GattServer>();
  #links = new Set<GattLink>();
  #outgoing = new Set<string>();
  #keepAlive: boolean;

  /** @internal Use {@linkcode openBluez}. */
  constructor(
    bus: DBusConnection,
    tree: ObjectTree,
    libc: Libc | undefined,
    ownBus: boolean,
    logger?: (message: string) => void,
    keepAlive = true,
  ) {
    this.#keepAlive = keepAlive;
    this.bus = bus;
    this.#tree = tree;
    this.#libc = libc;
    this.#ownBus = ownBus;
    this.#logger = logger ?? (() => {});
    // A device we connected as a central stops being "outgoing" once it disconnects.
    tree.listen((c) => {
      if (c.iface !== Iface.DEVICE || !this.#outgoing.has(c.path)) return;
      if (c.kind === "removed" || c.props.get("Connected") === false) this.#outgoing.delete(c.path);
    });
    this.#nameWatch = bus.watchName(BLUEZ, (owner) => {
      if (owner !== undefined) return;
      this.#log(
        "bluetoothd left the system bus: every BLE link closed; restart it with `sudo systemctl restart bluetooth`",
      );
      for (const cb of [...this.#gone]) cb();
    });
  }

  /** Whether BLE values can travel through BlueZ's sockets (`AcquireWrite`/`AcquireNotify`). */
  get fdPath(): boolean {
    return this.#libc !== undefined;
  }

  #log(message: string): void {
    if (this.#logged.has(message)) return;
    this.#logged.add(message);
    if (this.#logged.size > 1000) this.#logged.clear();
    this.#logger(message);
  }

  /** @internal */
  get context(): BluezContext {
    return this.#context ??= this.#makeContext();
  }

  #context: BluezContext | undefined;

  #makeContext(): BluezContext {
    return {
      bus: this.bus,
      tree: this.#tree,
      libc: this.#libc,
      log: (m) => this.#log(m),
      onGone: (cb) => {
        this.#gone.add(cb);
        return () => this.#gone.delete(cb);
      },
      outgoing: this.#outgoing,
      keepAlive: this.#keepAlive,
    };
  }

  /** @internal Track what must close with this handle. */
  track(item: GattLink | GattServer): void {
    if ("channels" in item) {
      this.#links.add(item);
      void item.done.then(() => this.#links.delete(item));
    } else {
      this.#servers.add(item);
    }
  }

  /**
   * Every adapter BlueZ knows.
   *
   * @returns The adapters, by name.
   */
  adapters(): AdapterInfo[] {
    return this.#tree.find(Iface.ADAPTER, "/org/bluez").map(([path, p]) => adapterInfo(path, p));
  }

  /**
   * One adapter.
   *
   * @param name Its name (`hci0`). @default {the first powered adapter, else the first}
   * @returns The adapter.
   * @throws {DBusError} `DoesNotExist` (ENOENT) when there is none or no such one, with advice.
   */
  adapter(name?: string): Adapter {
    const all = this.adapters();
    const pick = name === undefined
      ? all.find((a) => a.powered) ?? all[0]
      : all.find((a) => a.name === name);
    if (pick === undefined) {
      throw new DBusError(
        "org.bluez.Error.DoesNotExist",
        name === undefined ? "Cannot find a Bluetooth adapter" : `Cannot find adapter "${name}"`,
        {
          text: all.length === 0
            ? "BlueZ lists no adapter: check `bluetoothctl list`, `rfkill list`, and that the controller's firmware loaded (`dmesg | grep -i bluetooth`)"
            : `BlueZ lists ${all.map((a) => `"${a.name}"`).join(", ")}`,
        },
      );
    }
    return new Adapter(this, pick.path);
  }

  /**
   * Close every link and server made through this handle, stop following
   * BlueZ, and close the bus connection unless it was given.
   *
   * @returns When closed.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all([...this.#links].map((l) => l.close()));
    await Promise.all([...this.#servers].map((s) => s.close()));
    await (await this.#nameWatch.catch(() => undefined))?.close().catch(() => {});
    await this.#tree.close().catch(() => {});
    if (this.#ownBus) this.bus.close();
  }
}

function adapterInfo(path: string, p: Props): AdapterInfo {
  return {
    name: path.slice(path.lastIndexOf("/") + 1),
    path,
    address: String(p.get("Address") ?? ""),
    alias: String(p.get("Alias") ?? ""),
    powered: p.get("Powered") === true,
  };
}

/** A device an adapter knows (seen by a scan, or connected). */
export interface DeviceInfo {
  /** Its address. */
  address: string;
  /** Its object path. */
  path: string;
  /** Its name or alias, if it gave one. */
  name?: string;
  /** Signal strength of the last advertisement seen, in dBm. */
  rssi?: number;
  /** Service UUIDs it advertises (lower case). */
  uuids: string[];
  /** Whether it is connected. */
  connected: boolean;
}

function deviceInfo(path: string, p: Props): DeviceInfo {
  const d: DeviceInfo = {
    address: String(p.get("Address") ?? ""),
    path,
    uuids: ((p.get("UUIDs") as string[] | undefined) ?? []).map((u) => u.toLowerCase()),
    connected: p.get("Connected") === true,
  };
  const name = p.get("Name") ?? p.get("Alias");
  if (typeof name === "string") d.name = name;
  if (typeof p.get("RSSI") === "number") d.rssi = p.get("RSSI") as number;
  return d;
}

/** Options of {@linkcode Adapter.discover}. */
export interface DiscoveryOptions {
  /** Only devices advertising one of these service UUIDs. */
  uuids?: string[];
  /** Only devices at least this strong, in dBm. */
  rssi?: number;
  /** Only devices whose address or name starts with this. */
  pattern?: string;
  /** Report every advertisement, not only changes. @default {false} */
  duplicateData?: boolean;
  /** Stop when this aborts. */
  signal?: AbortSignal;
}

/** Events of a {@linkcode Discovery}. */
export interface DiscoveryEventMap extends Record<string, unknown> {
  /** A device was seen (again). */
  device: DeviceInfo;
}

/** A running scan; stop it with `stop()`. */
export class Discovery {
  #events = new Emitter<DiscoveryEventMap>();
  #stop: () => Promise<void>;
  #stopped = false;

  /** @internal */
  constructor(stop: () => Promise<void>) {
    this.#stop = stop;
  }

  /**
   * Listen to `device`.
   *
   * @param type `device`.
   * @param cb The listener.
   */
  on(type: "device", cb: (d: DeviceInfo) => void): void {
    this.#events.on(type, cb);
  }

  /** @internal */
  report(d: DeviceInfo): void {
    if (!this.#stopped) this.#events.emit("device", d);
  }

  /**
   * Stop scanning.
   *
   * @returns When BlueZ stopped.
   */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#events.clear();
    await this.#stop();
  }
}

/** One Bluetooth adapter. */
export class Adapter {
  /** Its object path (`/org/bluez/hci0`). */
  readonly path: string;
  /** Its name (`hci0`). */
  readonly name: string;
  #bluez: Bluez;
  #ctx: BluezContext;

  /** @internal Use {@linkcode Bluez.adapter}. */
  constructor(bluez: Bluez, path: string) {
    this.#bluez = bluez;
    this.#ctx = bluez.context;
    this.path = path;
    this.name = path.slice(path.lastIndexOf("/") + 1);
  }

  #props(): Props {
    const p = this.#ctx.tree.props(this.path, Iface.ADAPTER);
    if (p === undefined) {
      throw new DBusError("org.bluez.Error.DoesNotExist", `Cannot use adapter "${this.name}"`, {
        text: "it was removed",
      });
    }
    return p;
  }

  /** Its Bluetooth address: the device id of this board under BlueZ. */
  get address(): string {
    return String(this.#props().get("Address") ?? "");
  }

  /** Whether it is powered. */
  get powered(): boolean {
    return this.#props().get("Powered") === true;
  }

  /**
   * Follow the adapter's power (`rfkill`, `bluetoothctl power off`, a
   * controller reset).
   *
   * @param cb Called with the new state when it changes (`false` when the
   *   adapter goes away).
   * @returns Stop following.
   */
  onPowerChange(cb: (powered: boolean) => void): () => void {
    return this.#ctx.tree.listen((c) => {
      if (c.path !== this.path || c.iface !== Iface.ADAPTER) return;
      if (c.kind === "removed") cb(false);
      else if (c.props.has("Powered")) cb(c.props.get("Powered") === true);
    });
  }

  /** Devices it knows. */
  devices(): DeviceInfo[] {
    return this.#ctx.tree.find(Iface.DEVICE, this.path).map(([path, p]) => deviceInfo(path, p));
  }

  /**
   * Power it on or off.
   *
   * @param on The power state.
   * @returns When BlueZ reports the new state.
   */
  async setPowered(on: boolean): Promise<void> {
    const action = `Cannot power ${on ? "on" : "off"} adapter "${this.name}"`;
    try {
      await this.#ctx.bus.call({
        destination: BLUEZ,
        path: this.path,
        interface: "org.freedesktop.DBus.Properties",
        member: "Set",
        signature: "ssv",
        body: [Iface.ADAPTER, "Powered", new Variant("b", on)],
      });
      await this.#ctx.tree.waitFor(() => (this.powered === on ? true : undefined), {
        timeout: 5000,
        onTimeout: () =>
          new DBusError(DBusErrorName.NO_REPLY, action, {
            text: "BlueZ did not report the change",
          }),
      });
    } catch (e) {
      throw bluezError(e, action);
    }
  }

  /** @internal Fail with advice unless powered. */
  requirePowered(action: string): void {
    if (!this.powered) {
      throw bluezError(
        new DBusError("org.bluez.Error.NotReady", action, {
          text: `adapter "${this.name}" is powered off`,
        }),
        action,
      );
    }
  }

  /**
   * Scan for LE devices.
   *
   * @param options Filters and an abort signal.
   * @returns The running scan; its `device` events report matching devices
   *   (those BlueZ already knew first).
   */
  async discover(options: DiscoveryOptions = {}): Promise<Discovery> {
    const action = `Cannot scan with adapter "${this.name}"`;
    this.requirePowered(action);
    const uuids = (options.uuids ?? []).map(normalizeUuid);
    const filter = new Map<string, Variant>([["Transport", new Variant("s", "le")]]);
    if (uuids.length > 0) filter.set("UUIDs", new Variant("as", uuids));
    if (options.rssi !== undefined) filter.set("RSSI", new Variant("n", options.rssi));
    if (options.pattern !== undefined) filter.set("Pattern", new Variant("s", options.pattern));
    if (options.duplicateData) filter.set("DuplicateData", new Variant("b", true));
    const call = (member: string, signature = "", body: unknown[] = []) =>
      this.#ctx.bus.call({
        destination: BLUEZ,
        path: this.path,
        interface: Iface.ADAPTER,
        member,
        signature,
        body,
      });
    const matches = (d: DeviceInfo) =>
      (uuids.length === 0 || d.uuids.some((u) => uuids.includes(u))) &&
      (options.rssi === undefined || d.rssi === undefined || d.rssi >= options.rssi) &&
      (options.pattern === undefined || d.address.startsWith(options.pattern.toUpperCase()) ||
        (d.name ?? "").startsWith(options.pattern));
    let unlisten = () => {};
    const discovery = new Discovery(async () => {
      unlisten();
      options.signal?.removeEventListener("abort", onAbort);
      await call("StopDiscovery").catch(() => {});
    });
    const onAbort = () => void discovery.stop();
    try {
      // SetDiscoveryFilter first, always (and dbusmock's bluez5 needs it).
      await call("SetDiscoveryFilter", "a{sv}", [filter]);
      await call("StartDiscovery");
    } catch (e) {
      throw bluezError(e, action);
    }
    const prefix = `${this.path}/`;
    unlisten = this.#ctx.tree.listen((c) => {
      if (c.iface !== Iface.DEVICE || c.kind === "removed" || !c.path.startsWith(prefix)) return;
      const p = this.#ctx.tree.props(c.path, Iface.DEVICE);
      if (p === undefined) return;
      const d = deviceInfo(c.path, p);
      if (matches(d)) discovery.report(d);
    });
    options.signal?.addEventListener("abort", onAbort, { once: true });
    queueMicrotask(() => {
      for (const d of this.devices()) if (matches(d)) discovery.report(d);
    });
    return discovery;
  }

  /**
   * Scan until a device shows up.
   *
   * @param address Its address.
   * @param options `uuids` to filter the scan by, `timeout` ms (@default {10000}), `signal`.
   * @returns The device.
   * @throws {PlatformError} `EHOSTUNREACH` (2301113) when it was not seen in time.
   */
  async findDevice(
    address: string,
    options: { uuids?: string[]; timeout?: number; signal?: AbortSignal } = {},
  ): Promise<DeviceInfo> {
    const want = checkAddress(address);
    const known = this.devices().find((d) => d.address.toUpperCase() === want);
    if (known !== undefined) return known;
    const timeout = options.timeout ?? 10_000;
    const scan = await this.discover({ uuids: options.uuids, signal: options.signal });
    try {
      return await new Promise<DeviceInfo>((resolve, reject) => {
        const timer = setTimeout(() => reject(notFound(want, timeout)), timeout);
        scan.on("device", (d) => {
          if (d.address.toUpperCase() !== want) return;
          clearTimeout(timer);
          resolve(d);
        });
        options.signal?.addEventListener("abort", () => {
          clearTimeout(timer);
          reject(options.signal!.reason);
        }, { once: true });
      });
    } finally {
      await scan.stop();
    }
  }

  /**
   * Connect a device without opening GATT channels (see
   * {@linkcode Adapter.connect} for links).
   *
   * @param address Its address.
   * @param options Timeout, attempts, UUIDs to scan for, abort signal.
   * @returns The device, connected.
   */
  async connectDevice(address: string, options: DeviceConnectOptions = {}): Promise<DeviceInfo> {
    const path = await connectDevice(this.#ctx, this, checkAddress(address), options);
    const p = this.#ctx.tree.props(path, Iface.DEVICE);
    const d = deviceInfo(path, p ?? new Map());
    // BlueZ answered Connect: connected, whatever a stale property says.
    d.connected = true;
    return d;
  }

  /**
   * Disconnect a device (every link to it closes).
   *
   * @param address Its address.
   * @returns When BlueZ answered.
   */
  async disconnectDevice(address: string): Promise<void> {
    const path = devicePath(this.path, checkAddress(address));
    try {
      await this.#ctx.bus.call({
        destination: BLUEZ,
        path,
        interface: Iface.DEVICE,
        member: "Disconnect",
      });
    } catch (e) {
      throw bluezError(e, `Cannot disconnect "${address}"`);
    }
  }

  /**
   * Connect to a peripheral serving a profile (central role): find it
   * (scanning if needed), connect (retrying BlueZ's transient errors), wait
   * for its services, subscribe, and open one channel per profile channel,
   * through BlueZ's sockets when the fd path is available.
   *
   * @param address The peripheral's address.
   * @param profile The GATT layout.
   * @param options Timeout, attempts, fd path, abort signal.
   * @returns The link.
   */
  async connect(
    address: string,
    profile: GattProfile,
    options: ConnectOptions = {},
  ): Promise<GattLink> {
    checkProfile(profile);
    const link = await connectCentral(this.#ctx, this, checkAddress(address), profile, options);
    this.#bluez.track(link);
    return link;
  }

  /**
   * Serve a profile (peripheral role): register the GATT application and an
   * advertisement carrying the profile's service UUID. Each central that
   * connects becomes a link (`connection` event).
   *
   * @param profile The GATT layout.
   * @param options Advertising, local name, fd path.
   * @returns The server.
   */
  async serve(profile: GattProfile, options: ServeOptions = {}): Promise<GattServer> {
    checkProfile(profile);
    const server = await GattServer.start(this.#ctx, this, profile, options);
    this.#bluez.track(server);
    return server;
  }
}

/**
 * A Bluetooth address in upper case, checked.
 *
 * @param address `aa:bb:cc:dd:ee:ff` or `AA:BB:...`.
 * @returns The address in upper case.
 * @throws {ParameterError} When it is not an address.
 */
export function checkAddress(address: string): string {
  if (!/^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$/.test(address)) {
    throw new ParameterError(`Invalid Bluetooth address "${address}": expected AA:BB:CC:DD:EE:FF`);
  }
  return address.toUpperCase();
}

function notFound(address: string, ms: number): PlatformError {
  return new PlatformError(
    socketErrorCode("EHOSTUNREACH"),
    `Cannot find "${address}": it was not seen within ${ms} ms (out of range, not advertising, or powered off)`,
    { data: { platform: "bluez", name: "EHOSTUNREACH" } },
  );
}

/**
 * The peripheral role: a GATT application (`GattManager1.RegisterApplication`)
 * serving a profile's characteristics, and an advertisement
 * (`LEAdvertisingManager1`) carrying its service UUID. A central that
 * connects becomes a {@linkcode GattLink}; its writes arrive on the channels,
 * and channel writes go out as notifications, through sockets handed to
 * bluetoothd (`AcquireWrite`/`AcquireNotify`) when the fd path is available.
 *
 * BlueZ's server side does not say which central a notification is for (it
 * goes to every subscribed central), and writes from every central share one
 * socket. A server therefore serves one central at a time: another central
 * that connects meanwhile is disconnected (and its D-Bus writes refused with
 * `NotPermitted`).
 *
 * @module
 */
import { Emitter } from "../../core/emitter.ts";
import type { Adapter } from "./bluez.ts";
import { type ChannelSink, GattLink, MIN_ATT_MTU } from "./channel.ts";
import type { ExportedInterface, MethodResult } from "./dbus/connection.ts";
import { DBusError } from "./dbus/errors.ts";
import type { Variant } from "./dbus/marshal.ts";
import type { Message } from "./dbus/message.ts";
import { type BluezContext, Iface } from "./_context.ts";
import { bluezError } from "./_hints.ts";
import { BLUEZ } from "./_objects.ts";
import { PacketSocket } from "./_packet_socket.ts";
import type { CharacteristicSpec, GattProfile } from "./profile.ts";

/** Options of {@linkcode Adapter.serve}. */
export interface ServeOptions {
  /** Advertise the service (connectable, with its UUID). @default {true} */
  advertise?: boolean;
  /** The name to advertise. @default {none: BlueZ's adapter alias is not sent} */
  localName?: string;
  /** Offer bluetoothd sockets (`AcquireWrite`/`AcquireNotify`) when the runtime can pass descriptors. @default {true} */
  fdPath?: boolean;
}

/** Events of a {@linkcode GattServer}. */
export interface ServerEventMap extends Record<string, unknown> {
  /** A central connected. */
  connection: GattLink;
  /** The server stopped (`close()`, bluetoothd gone, adapter off). */
  close: { reason: "local" | "bluez-gone" | "adapter-off" };
}

/** A characteristic we serve. */
interface Served {
  spec: CharacteristicSpec;
  path: string;
  value: Uint8Array;
  notifying: boolean;
  notifySock: PacketSocket | undefined;
  writeSocks: Set<PacketSocket>;
  exported?: ExportedInterface;
}

let counter = 0;

const NOT_PERMITTED = "org.bluez.Error.NotPermitted";

/** A served profile, with its advertisement and its central. */
export class GattServer {
  /** The profile served. */
  readonly profile: GattProfile;
  #ctx: BluezContext;
  #adapter: Adapter;
  #events = new Emitter<ServerEventMap>();
  #appPath: string;
  #advPath: string | undefined;
  #advertising = false;
  #chars = new Map<string, Served>();
  #exports: ExportedInterface[] = [];
  #stopManager: () => void = () => {};
  #link: GattLink | undefined;
  #linkDevice: string | undefined;
  #unlisten: () => void = () => {};
  #offGone: () => void = () => {};
  #closed = false;
  #fd: boolean;

  private constructor(ctx: BluezContext, adapter: Adapter, profile: GattProfile, fd: boolean) {
    this.#ctx = ctx;
    this.#adapter = adapter;
    this.profile = profile;
    this.#fd = fd;
    this.#appPath = `/org/linkweave/bluez/${adapter.name}/app${++counter}`;
  }

  /** @internal Use {@linkcode Adapter.serve}. */
  static async start(
    ctx: BluezContext,
    adapter: Adapter,
    profile: GattProfile,
    options: ServeOptions,
  ): Promise<GattServer> {
    const action = `Cannot serve the ${profile.name} GATT service on adapter "${adapter.name}"`;
    adapter.requirePowered(action);
    const server = new GattServer(
      ctx,
      adapter,
      profile,
      ctx.libc !== undefined && options.fdPath !== false,
    );
    try {
      await server.#register(options);
    } catch (e) {
      await server.close();
      throw bluezError(e, action);
    }
    return server;
  }

  /** Whether the advertisement is registered. */
  get advertising(): boolean {
    return this.#advertising;
  }

  /** The central's link, while one is connected. */
  get link(): GattLink | undefined {
    return this.#link;
  }

  /** The application's object path. */
  get path(): string {
    return this.#appPath;
  }

  /**
   * Listen to `connection` or `close`.
   *
   * @param type The event.
   * @param cb The listener.
   */
  on<K extends keyof ServerEventMap>(type: K, cb: (payload: ServerEventMap[K]) => void): void {
    this.#events.on(type, cb);
  }

  /**
   * Stop listening.
   *
   * @param type The event.
   * @param cb The listener (all of that type when omitted).
   */
  off<K extends keyof ServerEventMap>(type: K, cb?: (payload: ServerEventMap[K]) => void): void {
    this.#events.off(type, cb);
  }

  async #register(options: ServeOptions): Promise<void> {
    const { bus, tree } = this.#ctx;
    this.#stopManager = bus.addObjectManager(this.#appPath);
    const servicePath = `${this.#appPath}/service0`;
    this.#exports.push(bus.export(servicePath, {
      name: Iface.SERVICE,
      properties: {
        UUID: { signature: "s", get: () => this.profile.service },
        Primary: { signature: "b", get: () => true },
        Includes: { signature: "ao", get: () => [] },
      },
    }));
    for (const [i, spec] of this.profile.characteristics.entries()) {
      const served: Served = {
        spec,
        path: `${servicePath}/char${i}`,
        value: new Uint8Array(0),
        notifying: false,
        notifySock: undefined,
        writeSocks: new Set(),
      };
      this.#chars.set(spec.uuid, served);
      served.exported = bus.export(served.path, this.#characteristic(served, servicePath));
      this.#exports.push(served.exported);
    }
    // Centrals connecting and going, the adapter, bluetoothd.
    this.#unlisten = tree.listen((c) => {
      if (c.iface === Iface.DEVICE && c.path.startsWith(`${this.#adapter.path}/`)) {
        const connected = tree.props(c.path, Iface.DEVICE)?.get("Connected") === true;
        if (c.kind !== "removed" && connected) this.#central(c.path);
        else if (c.path === this.#linkDevice) this.#link?.finish("disconnected");
      } else if (c.path === this.#adapter.path && c.iface === Iface.ADAPTER) {
        if (c.kind === "removed" || c.props.get("Powered") === false) {
          void this.#shut("adapter-off");
        }
      }
    });
    this.#offGone = this.#ctx.onGone(() => void this.#shut("bluez-gone"));
    await bus.call({
      destination: BLUEZ,
      path: this.#adapter.path,
      interface: Iface.GATT_MANAGER,
      member: "RegisterApplication",
      signature: "oa{sv}",
      body: [this.#appPath, new Map()],
    });
    if (options.advertise === false) return;
    const advPath = `/org/linkweave/bluez/${this.#adapter.name}/adv${counter}`;
    const props: Record<string, { signature: string; get(): unknown }> = {
      Type: { signature: "s", get: () => "peripheral" },
      ServiceUUIDs: { signature: "as", get: () => [this.profile.service] },
      Discoverable: { signature: "b", get: () => true },
    };
    if (options.localName !== undefined) {
      props.LocalName = { signature: "s", get: () => options.localName };
    }
    this.#exports.push(bus.export(advPath, {
      name: Iface.ADVERTISEMENT,
      methods: {
        Release: {
          handler: () => {
            this.#advertising = false;
            this.#ctx.log(
              `BlueZ stopped advertising the ${this.profile.name} service on "${this.#adapter.name}"`,
            );
          },
        },
      },
      properties: props,
    }));
    this.#advPath = advPath;
    await bus.call({
      destination: BLUEZ,
      path: this.#adapter.path,
      interface: Iface.ADV_MANAGER,
      member: "RegisterAdvertisement",
      signature: "oa{sv}",
      body: [advPath, new Map()],
    });
    this.#advertising = true;
  }

  /** A central connected (or wrote): its link, if it is the one we serve. */
  #central(devicePath: string): GattLink | undefined {
    if (this.#closed || this.#ctx.outgoing.has(devicePath)) return undefined;
    // A call from a central that already left (a late write) makes no link.
    if (this.#ctx.tree.props(devicePath, Iface.DEVICE)?.get("Connected") !== true) return undefined;
    if (this.#link !== undefined) {
      if (devicePath === this.#linkDevice) return this.#link;
      // BlueZ mixes every central's writes into one socket and notifies all
      // of them: a second central is disconnected rather than confused with
      // the first.
      this.#ctx.log(
        `A second central connected to the ${this.profile.name} service on "${this.#adapter.name}" and was disconnected: a BlueZ peripheral serves one central at a time`,
      );
      void this.#ctx.bus.call({
        destination: BLUEZ,
        path: devicePath,
        interface: Iface.DEVICE,
        member: "Disconnect",
      }).catch(() => {});
      return undefined;
    }
    const props = this.#ctx.tree.props(devicePath, Iface.DEVICE);
    const peer = String(props?.get("Address") ?? devicePath.slice(-17).replaceAll("_", ":"));
    const link: GattLink = new GattLink({
      role: "peripheral",
      peer,
      local: this.#adapter.address,
      profile: this.profile,
      teardown: async (reason) => {
        if (this.#link === link) {
          this.#link = undefined;
          this.#linkDevice = undefined;
          // Sockets bluetoothd acquired are shared by every central: values
          // still in them belong to this one. Closed now, the next central
          // gets fresh ones (bluetoothd acquires again), never its tail.
          this.#dropSockets();
        }
        if (reason === "disconnected") {
          this.#ctx.log(`The BLE central "${peer}" disconnected (or went out of range)`);
        }
        if (reason === "local" && !this.#ctx.bus.closed) {
          await this.#ctx.bus.call({
            destination: BLUEZ,
            path: devicePath,
            interface: Iface.DEVICE,
            member: "Disconnect",
          }).catch(() => {});
        }
      },
    });
    this.#link = link;
    this.#linkDevice = devicePath;
    this.#updateSinks();
    this.#events.emit("connection", link);
    return link;
  }

  /**
   * The central stopped listening to a characteristic a channel notifies on
   * (bluetoothd hung up its socket, or called `StopNotify`): its client went
   * away (the program ended) even if the BLE connection stays up. The link
   * ends, so a new client on the same central starts a new one.
   */
  #unsubscribed(): void {
    if (this.#closed) return;
    this.#link?.finish("disconnected");
  }

  /** Close the sockets bluetoothd acquired; the channels fall back until it acquires new ones. */
  #dropSockets(): void {
    for (const served of this.#chars.values()) {
      served.notifySock?.close();
      for (const w of [...served.writeSocks]) w.close();
    }
  }

  /** The link a call from bluetoothd belongs to, by its `device` option. */
  #linkFor(options: Map<string, Variant>): GattLink {
    const device = options.get("device")?.value as string | undefined;
    const link = device === undefined ? this.#link : this.#central(device);
    if (link === undefined) {
      throw new DBusError(NOT_PERMITTED, "Refused a write", {
        text: "this service serves another central",
      });
    }
    const mtu = options.get("mtu")?.value;
    if (typeof mtu === "number" && mtu >= MIN_ATT_MTU) link.setMtu(mtu);
    return link;
  }

  /** A central's value, to every channel that `served` feeds. */
  #incoming(served: Served, link: GattLink, bytes: Uint8Array): void {
    for (const [i, ch] of this.profile.channels.entries()) {
      if (ch.write === served.spec.uuid) link.channels[i].deliver(bytes);
    }
  }

  /** Point each channel's outgoing side at its characteristic's current state. */
  #updateSinks(): void {
    const link = this.#link;
    if (link === undefined) return;
    for (const [i, ch] of this.profile.channels.entries()) {
      const served = this.#chars.get(ch.notify)!;
      const channel = link.channels[i];
      let sink: ChannelSink | undefined;
      if (served.notifySock !== undefined) {
        const sock = served.notifySock;
        sink = { kind: "fd", send: (b) => sock.send(b) };
      } else if (served.notifying) {
        sink = {
          kind: "dbus",
          send: (b) => {
            served.value = b.slice();
            served.exported?.propertiesChanged(["Value"]);
            if (!this.#ctx.bus.congested) return true;
            void this.#ctx.bus.whenWritable().then(() => channel.sinkDrained());
            return false;
          },
        };
      }
      channel.setSink(sink);
    }
  }

  #characteristic(served: Served, servicePath: string) {
    const { spec } = served;
    const flags = spec.flags;
    const libc = this.#ctx.libc;
    const properties: Record<string, { signature: string; get(): unknown }> = {
      UUID: { signature: "s", get: () => spec.uuid },
      Service: { signature: "o", get: () => servicePath },
      Flags: { signature: "as", get: () => flags },
      Value: { signature: "ay", get: () => served.value },
      Notifying: { signature: "b", get: () => served.notifying },
    };
    // The presence of WriteAcquired/NotifyAcquired tells bluetoothd that it
    // may ask for a socket.
    const offerWrite = this.#fd && flags.includes("write-without-response");
    const offerNotify = this.#fd && flags.includes("notify");
    if (offerWrite) {
      properties.WriteAcquired = {
        signature: "b",
        get: () => served.writeSocks.size > 0,
      };
    }
    if (offerNotify) {
      properties.NotifyAcquired = { signature: "b", get: () => served.notifySock !== undefined };
    }
    const methods: Record<string, {
      in?: string;
      out?: string;
      handler(args: unknown[], call: Message): MethodResult | Promise<MethodResult>;
    }> = {
      ReadValue: {
        in: "a{sv}",
        out: "ay",
        handler: ([options]) => {
          this.#linkFor(options as Map<string, Variant>);
          return [served.value];
        },
      },
      WriteValue: {
        in: "aya{sv}",
        handler: ([value, options]) => {
          const link = this.#linkFor(options as Map<string, Variant>);
          this.#incoming(served, link, value as Uint8Array);
        },
      },
      StartNotify: {
        handler: () => {
          if (served.notifying) return;
          served.notifying = true;
          served.exported?.propertiesChanged(["Notifying"]);
          this.#updateSinks();
        },
      },
      StopNotify: {
        handler: () => {
          if (!served.notifying) return;
          served.notifying = false;
          served.exported?.propertiesChanged(["Notifying"]);
          this.#updateSinks();
          this.#unsubscribed();
        },
      },
      Confirm: { handler: () => {} },
    };
    if (offerWrite && libc !== undefined) {
      methods.AcquireWrite = {
        in: "a{sv}",
        out: "hq",
        handler: ([options]) => {
          const link = this.#linkFor(options as Map<string, Variant>);
          const pair = libc.seqpacketPair();
          if (typeof pair === "number") {
            throw new DBusError("org.bluez.Error.Failed", "x", {
              text: `socketpair failed: errno ${-pair}`,
            });
          }
          const sock: PacketSocket = new PacketSocket(libc, pair[0], {
            onPacket: (b) => {
              const l = this.#link;
              if (l !== undefined) this.#incoming(served, l, b);
            },
            onDrain: () => {},
            onClose: () => {
              served.writeSocks.delete(sock);
              if (!this.#closed) served.exported?.propertiesChanged(["WriteAcquired"]);
            },
          }, this.#ctx.keepAlive);
          served.writeSocks.add(sock);
          queueMicrotask(() => served.exported?.propertiesChanged(["WriteAcquired"]));
          return { body: [0, link.mtu], fds: [pair[1]] };
        },
      };
    }
    if (offerNotify && libc !== undefined) {
      methods.AcquireNotify = {
        in: "a{sv}",
        out: "hq",
        handler: ([options]) => {
          const link = this.#linkFor(options as Map<string, Variant>);
          const pair = libc.seqpacketPair();
          if (typeof pair === "number") {
            throw new DBusError("org.bluez.Error.Failed", "x", {
              text: `socketpair failed: errno ${-pair}`,
            });
          }
          // A socket acquired again replaces the old one without ending the link.
          const old = served.notifySock;
          served.notifySock = undefined;
          old?.close();
          const sock: PacketSocket = new PacketSocket(libc, pair[0], {
            onPacket: () => {}, // indication confirmations
            onDrain: () => {
              for (const [i, ch] of this.profile.channels.entries()) {
                if (ch.notify === spec.uuid) this.#link?.channels[i].sinkDrained();
              }
            },
            onClose: () => {
              if (served.notifySock !== sock) return;
              served.notifySock = undefined;
              if (!this.#closed) served.exported?.propertiesChanged(["NotifyAcquired"]);
              this.#updateSinks();
              this.#unsubscribed();
            },
          }, this.#ctx.keepAlive);
          served.notifySock = sock;
          queueMicrotask(() => served.exported?.propertiesChanged(["NotifyAcquired"]));
          this.#updateSinks();
          return { body: [0, link.mtu], fds: [pair[1]] };
        },
      };
    }
    return { name: Iface.CHAR, properties, methods };
  }

  async #shut(reason: "local" | "bluez-gone" | "adapter-off"): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#unlisten();
    this.#offGone();
    const link = this.#link;
    if (link !== undefined) {
      if (reason === "local") await link.close();
      else link.finish(reason);
    }
    for (const served of this.#chars.values()) {
      served.notifySock?.close();
      for (const s of served.writeSocks) s.close();
    }
    const { bus } = this.#ctx;
    if (reason !== "bluez-gone" && !bus.closed) {
      if (this.#advertising && this.#advPath !== undefined) {
        await bus.call({
          destination: BLUEZ,
          path: this.#adapter.path,
          interface: Iface.ADV_MANAGER,
          member: "UnregisterAdvertisement",
          signature: "o",
          body: [this.#advPath],
        }).catch(() => {});
      }
      await bus.call({
        destination: BLUEZ,
        path: this.#adapter.path,
        interface: Iface.GATT_MANAGER,
        member: "UnregisterApplication",
        signature: "o",
        body: [this.#appPath],
      }).catch(() => {});
    }
    this.#advertising = false;
    for (const e of this.#exports.splice(0).reverse()) e.unexport();
    this.#stopManager();
    this.#events.emit("close", { reason });
    this.#events.clear();
  }

  /**
   * Stop serving: disconnect the central, unregister the advertisement and
   * the application.
   *
   * @returns When done.
   */
  async close(): Promise<void> {
    await this.#shut("local");
  }
}

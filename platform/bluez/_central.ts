/**
 * The central role: connect to a peripheral serving a profile and open its
 * channels (notifications in, writes without response out), through
 * BlueZ's sockets when the fd path is available, else through D-Bus.
 *
 * @module
 */
import type { BusinessError } from "../../core/errors.ts";
import type { Adapter } from "./bluez.ts";
import { type ChannelSink, type GattChannel, GattLink } from "./channel.ts";
import type { Subscription } from "./dbus/connection.ts";
import { DBusError, DBusErrorName, isDBusError } from "./dbus/errors.ts";
import { Variant } from "./dbus/marshal.ts";
import type { Message } from "./dbus/message.ts";
import { type BluezContext, devicePath, Iface } from "./_context.ts";
import { bluezError } from "./_hints.ts";
import { BLUEZ, type Props } from "./_objects.ts";
import { PacketSocket } from "./_packet_socket.ts";
import type { GattProfile } from "./profile.ts";

/** Options of {@linkcode Adapter.connect}. */
export interface ConnectOptions {
  /**
   * Time for everything (scan, connect, services, subscriptions), ms.
   * OpenHarmony gives a connection 10 s. @default {10000}
   */
  timeout?: number;
  /** `Device1.Connect` tries when BlueZ reports a transient error. @default {4} */
  attempts?: number;
  /** Use BlueZ's sockets when the runtime can pass descriptors. @default {true} */
  fdPath?: boolean;
  /** `WriteValue` calls in flight per channel without the fd path. @default {8} */
  maxWritesInFlight?: number;
  /** Abort connecting. */
  signal?: AbortSignal;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** How long a socket hang-up waits for BlueZ to say why before the link closes as `disconnected`. */
const HANGUP_GRACE_MS = 1000;

/** A BlueZ method call on an object (the device by default), within the connect deadline. */
type Call = (
  member: string,
  on?: string,
  iface?: string,
  signature?: string,
  body?: unknown[],
) => Promise<Message>;

/** Whether a `Connect` failure is worth another try. */
function transient(e: DBusError): "retry" | "wait" | undefined {
  if (e.dbusName === "org.bluez.Error.InProgress") return "wait";
  if (e.dbusName === "org.bluez.Error.NotReady") return "retry";
  if (e.dbusName === "org.bluez.Error.ConnectionAttemptFailed") return "retry";
  if (
    e.dbusName === "org.bluez.Error.Failed" &&
    /abort-by-local|connection-attempt|Software caused connection abort/i.test(e.text)
  ) {
    return "retry";
  }
  return undefined;
}

/** Options of {@linkcode connectDevice}. */
export interface DeviceConnectOptions {
  /** Time for scanning and connecting, ms. @default {10000} */
  timeout?: number;
  /** `Device1.Connect` tries when BlueZ reports a transient error. @default {4} */
  attempts?: number;
  /** Service UUIDs to scan for when the device is not known yet. */
  uuids?: string[];
  /** Abort connecting. */
  signal?: AbortSignal;
}

/**
 * Connect a device (no GATT): find it, scanning if BlueZ does not know it,
 * then `Device1.Connect`, retrying BlueZ's transient errors: `InProgress`
 * (wait for the other attempt, then try again), `le-connection-abort-by-local`
 * and `ConnectionAttemptFailed` (back off 100, 200, 400 ms...), `NotReady`
 * while the adapter is powered (it is starting). `AlreadyConnected` counts as
 * connected.
 *
 * @internal Use {@linkcode Adapter.connectDevice}.
 */
export async function connectDevice(
  ctx: BluezContext,
  adapter: Adapter,
  address: string,
  options: DeviceConnectOptions,
): Promise<string> {
  const action = `Cannot connect to "${address}" over BLE`;
  const timeout = options.timeout ?? 10_000;
  const deadline = Date.now() + timeout;
  const left = () => Math.max(1, deadline - Date.now());
  const { bus, tree } = ctx;
  adapter.requirePowered(action);
  const path = devicePath(adapter.path, address);
  if (tree.props(path, Iface.DEVICE) === undefined) {
    await adapter.findDevice(address, {
      uuids: options.uuids,
      timeout: left(),
      signal: options.signal,
    });
  }
  const device = () => tree.props(path, Iface.DEVICE);
  // Our own servers must not take this device for a central connecting to
  // them (the mark goes when it disconnects).
  ctx.outgoing.add(path);
  const attempts = options.attempts ?? 4;
  for (let attempt = 1;; attempt++) {
    try {
      await bus.call({ destination: BLUEZ, path, interface: Iface.DEVICE, member: "Connect" }, {
        timeout: left(),
        signal: options.signal,
      });
      return path;
    } catch (e) {
      if (isDBusError(e, "org.bluez.Error.AlreadyConnected")) return path;
      const kind = e instanceof DBusError ? transient(e) : undefined;
      const give = kind === undefined || attempt >= attempts || Date.now() >= deadline ||
        (isDBusError(e, "org.bluez.Error.NotReady") && !adapter.powered);
      if (give) {
        if (device()?.get("Connected") !== true) ctx.outgoing.delete(path);
        throw bluezError(e, action);
      }
      if (kind === "wait") {
        // Someone else is connecting it: wait for the outcome, then try again.
        const connected = await tree.waitFor(
          () => (device()?.get("Connected") === true ? true : undefined),
          {
            timeout: Math.min(left(), 1000),
            signal: options.signal,
            onTimeout: () => new Error("not yet"),
          },
        ).catch(() => false);
        if (connected) return path;
      } else {
        await sleep(Math.min(left(), 100 * 2 ** (attempt - 1)));
      }
    }
  }
}

/**
 * Connect to `address` and open the profile's channels.
 *
 * @internal Use {@linkcode Adapter.connect}.
 */
export async function connectCentral(
  ctx: BluezContext,
  adapter: Adapter,
  address: string,
  profile: GattProfile,
  options: ConnectOptions,
): Promise<GattLink> {
  const action = `Cannot connect to "${address}" over BLE`;
  const timeout = options.timeout ?? 10_000;
  const deadline = Date.now() + timeout;
  const left = () => Math.max(1, deadline - Date.now());
  const { bus, tree } = ctx;
  const path = await connectDevice(ctx, adapter, address, {
    timeout,
    attempts: options.attempts,
    uuids: [profile.service],
    signal: options.signal,
  });
  const call: Call = (member, on = path, iface = Iface.DEVICE, signature = "", body = []) =>
    bus.call({ destination: BLUEZ, path: on, interface: iface, member, signature, body }, {
      timeout: left(),
      signal: options.signal,
    });
  const device = () => tree.props(path, Iface.DEVICE);
  let ok = false;
  try {
    // Services resolved (or the link lost meanwhile).
    const state = await tree.waitFor(() => {
      const d = device();
      if (d === undefined || d.get("Connected") === false) return "lost";
      return d.get("ServicesResolved") === true ? "resolved" : undefined;
    }, {
      timeout: left(),
      signal: options.signal,
      onTimeout: () =>
        new DBusError(DBusErrorName.NO_REPLY, action, {
          text: `its services were not resolved within ${timeout} ms`,
        }),
    });
    if (state === "lost") {
      throw new DBusError("org.bluez.Error.NotConnected", action, {
        text: "the device disconnected while its services were resolved",
      });
    }
    const link = await openChannels(ctx, adapter, path, address, profile, options, call, action);
    ok = true;
    return link;
  } finally {
    if (!ok) await call("Disconnect").catch(() => {});
  }
}

async function openChannels(
  ctx: BluezContext,
  adapter: Adapter,
  path: string,
  address: string,
  profile: GattProfile,
  options: ConnectOptions,
  call: Call,
  action: string,
): Promise<GattLink> {
  const { bus, tree, libc } = ctx;
  const service = tree.find(Iface.SERVICE, path).find(([, p]) =>
    String(p.get("UUID")).toLowerCase() === profile.service
  );
  if (service === undefined) {
    throw new DBusError("org.bluez.Error.DoesNotExist", action, {
      text: `it does not serve the ${profile.name} service "${profile.service}"`,
    });
  }
  const chars = new Map<string, [string, Props]>();
  for (const [p, props] of tree.find(Iface.CHAR, service[0])) {
    chars.set(String(props.get("UUID")).toLowerCase(), [p, props]);
  }
  const charPath = (uuid: string) => {
    const c = chars.get(uuid);
    if (c === undefined) {
      throw new DBusError("org.bluez.Error.DoesNotExist", action, {
        text: `its ${profile.name} service lacks characteristic "${uuid}"`,
      });
    }
    return c[0];
  };
  const useFd = libc !== undefined && options.fdPath !== false;
  const sockets: PacketSocket[] = [];
  const subs: Subscription[] = [];
  const notifying: string[] = [];
  let unlisten = () => {};
  let offGone = () => {};
  let hangup: ReturnType<typeof setTimeout> | undefined;
  const link: GattLink = new GattLink({
    role: "central",
    peer: address,
    local: adapter.address,
    profile,
    teardown: async (reason) => {
      clearTimeout(hangup);
      unlisten();
      offGone();
      for (const s of sockets) s.close();
      await Promise.all(subs.map((s) => s.close().catch(() => {})));
      if (reason === "disconnected") {
        ctx.log(
          `The BLE link to "${address}" was lost (the device disconnected or went out of range)`,
        );
      }
      if (reason === "local" && !bus.closed) {
        await Promise.all(notifying.map((p) => call("StopNotify", p, Iface.CHAR).catch(() => {})));
        await call("Disconnect").catch(() => {});
      }
    },
  });
  const mtuOf = (
    props: Props,
  ) => (typeof props.get("MTU") === "number" ? props.get("MTU") as number : 0);
  // A socket hang-up comes with (or just before) the news of why: the device
  // disconnected, the adapter went off, bluetoothd left. Give that news a
  // moment to arrive, so the close reason is the real one.
  const lost = (why: BusinessError<unknown>) => {
    hangup ??= setTimeout(() => link.finish("disconnected", why), HANGUP_GRACE_MS);
  };
  try {
    for (const [, props] of chars.values()) if (mtuOf(props) > 0) link.setMtu(mtuOf(props));
    // Incoming: one subscription per notifying characteristic, to every
    // channel it feeds.
    const byNotify = new Map<string, GattChannel[]>();
    for (const [i, ch] of profile.channels.entries()) {
      const p = charPath(ch.notify);
      byNotify.set(p, [...(byNotify.get(p) ?? []), link.channels[i]]);
    }
    for (const [p, channels] of byNotify) {
      const deliver = (b: Uint8Array) => {
        for (const c of channels) c.deliver(b);
      };
      if (useFd) {
        const acquired = await acquire(call, p, "AcquireNotify");
        if (acquired !== undefined) {
          link.setMtu(acquired.mtu);
          sockets.push(
            new PacketSocket(libc, acquired.fd, {
              onPacket: deliver,
              onDrain: () => {},
              onClose: (e) => lost(e ?? closedSocket(address)),
            }, ctx.keepAlive),
          );
          continue;
        }
      }
      subs.push(
        await bus.subscribe({
          sender: BLUEZ,
          interface: "org.freedesktop.DBus.Properties",
          member: "PropertiesChanged",
          path: p,
        }, (m) => {
          if (m.body[0] !== Iface.CHAR) return;
          const v = (m.body[1] as Map<string, Variant>).get("Value");
          if (v !== undefined && v.value instanceof Uint8Array) deliver(v.value);
        }),
      );
      await call("StartNotify", p, Iface.CHAR);
      notifying.push(p);
    }
    // Outgoing: one sink per channel.
    const limit = options.maxWritesInFlight ?? 8;
    for (const [i, ch] of profile.channels.entries()) {
      const p = charPath(ch.write);
      const channel = link.channels[i];
      if (useFd) {
        const acquired = await acquire(call, p, "AcquireWrite");
        if (acquired !== undefined) {
          link.setMtu(acquired.mtu);
          const sock = new PacketSocket(libc, acquired.fd, {
            onPacket: () => {},
            onDrain: () => channel.sinkDrained(),
            onClose: (e) => lost(e ?? closedSocket(address)),
          }, ctx.keepAlive);
          sockets.push(sock);
          channel.setSink({ kind: "fd", send: (b) => sock.send(b) });
          continue;
        }
      }
      channel.setSink(
        writeValueSink(
          ctx,
          p,
          channel,
          limit,
          (e) => link.finish("error", bluezError(e, `Cannot write to "${address}"`)),
        ),
      );
    }
  } catch (e) {
    link.finish("error");
    throw bluezError(e, action);
  }
  // Loss: the device disconnects or goes, the adapter powers off, bluetoothd leaves.
  unlisten = tree.listen((c) => {
    if (c.path === path && c.iface === Iface.DEVICE) {
      if (c.kind === "removed" || c.props.get("Connected") === false) link.finish("disconnected");
    } else if (c.path === adapter.path && c.iface === Iface.ADAPTER) {
      if (c.kind === "removed" || c.props.get("Powered") === false) link.finish("adapter-off");
    }
  });
  offGone = ctx.onGone(() => link.finish("bluez-gone"));
  if (tree.props(path, Iface.DEVICE)?.get("Connected") !== true) link.finish("disconnected");
  return link;
}

function closedSocket(address: string): BusinessError<unknown> {
  return new DBusError(DBusErrorName.DISCONNECTED, `The BLE link to "${address}" closed`, {
    text: "bluetoothd hung up the GATT socket",
  });
}

/** `AcquireWrite`/`AcquireNotify`, or `undefined` when BlueZ does not offer it for this characteristic. */
async function acquire(
  call: Call,
  path: string,
  member: "AcquireWrite" | "AcquireNotify",
): Promise<{ fd: number; mtu: number } | undefined> {
  try {
    const r = await call(member, path, Iface.CHAR, "a{sv}", [new Map()]);
    const fd = r.fds[r.body[0] as number];
    if (fd === undefined) return undefined;
    return { fd, mtu: r.body[1] as number };
  } catch (e) {
    if (
      isDBusError(
        e,
        "org.bluez.Error.NotSupported",
        "org.bluez.Error.NotPermitted",
        DBusErrorName.UNKNOWN_METHOD,
      )
    ) {
      return undefined;
    }
    throw e;
  }
}

/** Writes without response as `WriteValue` calls, at most `limit` in flight. */
function writeValueSink(
  ctx: BluezContext,
  path: string,
  channel: GattChannel,
  limit: number,
  fail: (e: unknown) => void,
): ChannelSink {
  let inFlight = 0;
  const options = new Map([["type", new Variant("s", "command")]]);
  return {
    kind: "dbus",
    send(bytes) {
      inFlight++;
      ctx.bus.call({
        destination: BLUEZ,
        path,
        interface: Iface.CHAR,
        member: "WriteValue",
        signature: "aya{sv}",
        body: [bytes.slice(), options],
      }).then(() => {
        inFlight--;
        if (inFlight < limit) channel.sinkDrained();
      }, (e) => {
        inFlight--;
        fail(e);
      });
      return inFlight < limit;
    },
  };
}

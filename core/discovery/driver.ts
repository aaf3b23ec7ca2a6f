/**
 * The one driver of multicast discovery: joins a {@linkcode DiscoveryMachine}
 * to UDP sockets of a {@linkcode SocketPlatform} and to the timers of an
 * injected {@linkcode Clock}. It never reads the global clock or timers.
 *
 * Sockets: one receiver bound to the group address itself (so the kernel
 * delivers only datagrams sent to the group, never unicast ones) on the
 * discovery port with `SO_REUSEADDR` (several devices on one host share it),
 * joined to the group on each interface discovery runs on; and one sender
 * per interface, bound to that interface's address, which makes the kernel
 * send on that interface and gives peers that source address. Sockets and
 * timers are unref'd: discovery alone never keeps a process alive.
 *
 * Warnings a peer can provoke (an id clash, two runtimes claiming one id, an
 * unknown major version) go to `warn`, rate-limited per kind
 * ({@linkcode WarningLimiter}); every event goes to `onEvent`.
 *
 * @module
 */
import type { IdSeal, PeerAddress } from "./wire.ts";
import type { DatagramHandle, IpEndpoint, SocketPlatform } from "../socket/platform.ts";
import { normalizeDeviceId } from "../device/config.ts";
import type { DeviceConfig } from "../device/config.ts";
import { ParameterError } from "../errors.ts";
import { type DiscoveryEvent, DiscoveryMachine } from "./machine.ts";
import { WarningLimiter } from "./rate_limit.ts";
import { isLoopback, isWildcard, parseIPv4, type Subnet } from "./subnet.ts";
import type { DiscoveredPeer } from "./table.ts";
import { DISCOVERY_GROUP, DISCOVERY_PORT, MAX_ADDRESSES, WIRE_MAJOR } from "./wire.ts";
import { trace } from "../trace.ts";

/** Time and timers (a `DeviceHost` is one). */
export interface Clock {
  /** Milliseconds on a monotonic clock. */
  now(): number;
  /** Call `fn` after `ms` milliseconds; the timer alone does not keep the process alive. */
  setTimer(fn: () => void, ms: number): unknown;
  /** Cancel a timer from `setTimer`. */
  clearTimer(timer: unknown): void;
}

/** Options of {@linkcode startDiscovery}. */
export interface DiscoveryOptions {
  /** The sockets to use. */
  platform: SocketPlatform;
  /** Time and timers. */
  clock: Clock;
  /** This device's id. */
  deviceId: string;
  /** This runtime's nonce (see `randomNonce`). */
  nonce: string;
  /** The device's TCP port, announced to peers. */
  port: number;
  /**
   * The interfaces to run on (see `selectInterfaces`): announcements are
   * sent on each, and accepted only from sources inside their subnets.
   */
  interfaces: readonly Subnet[];
  /** The multicast group. @default {"239.255.76.87"} */
  group?: string;
  /** The UDP port of discovery. @default {38471} */
  discoveryPort?: number;
  /** The fast announcement interval, in ms (the first 4 announcements). @default {1000} */
  interval?: number;
  /** The steady announcement interval, in ms. @default {5 x interval, at most 10000} */
  steadyInterval?: number;
  /** How many peer ids are kept. @default {256} */
  maxPeers?: number;
  /** How many ids one source address may announce. @default {32} */
  maxIdsPerHost?: number;
  /** The longest a peer is remembered after it was last heard, in ms. @default {30000} */
  maxTtl?: number;
  /** Seal device ids with the account (see `IdSeal`). */
  seal?: IdSeal;
  /** Every event of the machine (learned, lost, contender, clash, refused). */
  onEvent?(event: DiscoveryEvent): void;
  /** A warning line for the user, rate-limited per kind. */
  warn?(message: string): void;
  /** A send or receive failed; discovery keeps going. */
  onError?(error: unknown): void;
}

/** A running discovery. */
export interface Discovery {
  /** This device's id. */
  readonly deviceId: string;
  /** This runtime's nonce. */
  readonly nonce: string;
  /**
   * A peer by id (its established endpoint).
   *
   * @param deviceId The id, any case.
   * @returns The peer, or `undefined` when unknown.
   */
  lookup(deviceId: string): DiscoveredPeer | undefined;
  /**
   * Every known peer.
   *
   * @returns The peers.
   */
  peers(): DiscoveredPeer[];
  /** Announce now, asking every device to answer at once. */
  announce(): void;
  /**
   * A dial to this address of the id reached another device: stop dialling
   * it for the id (the table's rule 6).
   *
   * @param deviceId The id.
   * @param address The address dialled.
   */
  refute(deviceId: string, address: PeerAddress): void;
  /**
   * Say goodbye and close the sockets; idempotent.
   *
   * @returns When the sockets are closed.
   */
  close(): Promise<void>;
}

/**
 * Whether a device with this configuration runs multicast discovery:
 * `discovery` is `auto` and the device listens on an IPv4 address that is
 * not loopback, or on every interface (`0.0.0.0` or `::`). Devices on one
 * host find each other through the local registry instead.
 *
 * @param config The device configuration (its `discovery` and `bind`).
 * @returns Whether to call {@linkcode startDiscovery}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.ok(shouldMulticast({ discovery: "auto", bind: "0.0.0.0" }));
 * assert.ok(shouldMulticast({ discovery: "auto", bind: "192.168.1.20" }));
 * assert.ok(!shouldMulticast({ discovery: "auto", bind: "127.0.0.1" }));
 * assert.ok(!shouldMulticast({ discovery: "off", bind: "0.0.0.0" }));
 * ```
 */
export function shouldMulticast(config: Pick<DeviceConfig, "discovery" | "bind">): boolean {
  const { discovery, bind } = config;
  return discovery === "auto" && !isLoopback(bind) &&
    (isWildcard(bind) || parseIPv4(bind) !== undefined);
}

function warning(event: DiscoveryEvent): [string, string] | undefined {
  switch (event.type) {
    case "clash":
      return [
        "clash",
        `linkweave: device id clash: ${event.host}:${event.port} also announces ${event.deviceId}`,
      ];
    case "contender":
      if (event.sameRuntime) return undefined;
      return [
        "contender",
        `linkweave: two runtimes announce ${event.deviceId}: dials keep going to ${event.established.host}:${event.established.port}, not to ${event.host}:${event.port}, until the first falls silent`,
      ];
    case "refused":
      if (event.reason !== "version") return undefined;
      return [
        "version",
        `linkweave: ignoring discovery announcements of version ${event.major} from ${event.host} (this device speaks version ${WIRE_MAJOR})`,
      ];
    default:
      return undefined;
  }
}

/**
 * Start discovery (see the module documentation for the sockets).
 *
 * @param options The platform, clock, this device, the interfaces and the callbacks.
 * @returns The running discovery.
 * @throws {ParameterError} When an option is invalid.
 * @throws {BusinessError} When a socket cannot be bound or the group joined
 *   (code `2301000 + errno`).
 *
 * @example
 * ```ts
 * import { autoSocketPlatform } from "../../platform/auto.ts";
 * import { runtimeHost } from "../../platform/host.ts";
 * import { randomNonce } from "./wire.ts";
 * const found: string[] = [];
 * const discovery = await startDiscovery({
 *   platform: autoSocketPlatform(),
 *   clock: runtimeHost(),
 *   deviceId: "02:00:00:00:00:01",
 *   nonce: randomNonce(),
 *   port: 38470,
 *   interfaces: [{ address: "127.0.0.1", prefixLength: 8 }], // loopback: for the example only
 *   discoveryPort: 40000 + Math.floor(Math.random() * 20000),
 *   onEvent: (e) => e.type === "learned" && found.push(`${e.peer.deviceId} at ${e.peer.host}`),
 * });
 * discovery.announce(); // peers answer at once
 * await discovery.close();
 * ```
 */
export async function startDiscovery(options: DiscoveryOptions): Promise<Discovery> {
  const { platform, clock } = options;
  const group = options.group ?? DISCOVERY_GROUP;
  const discoveryPort = options.discoveryPort ?? DISCOVERY_PORT;
  const interfaces = [...options.interfaces];
  if (interfaces.length === 0) {
    throw new ParameterError("Cannot start discovery: no IPv4 interface to run on");
  }
  for (const i of interfaces) {
    if (parseIPv4(i.address) === undefined) {
      throw new ParameterError(
        `Cannot start discovery: interface address ${JSON.stringify(i.address)} is not IPv4`,
      );
    }
  }
  const g = parseIPv4(group);
  if (g === undefined || g >>> 28 !== 0xe) {
    throw new ParameterError(
      `Cannot start discovery: group ${JSON.stringify(group)} is not an IPv4 multicast address`,
    );
  }
  if (!Number.isInteger(discoveryPort) || discoveryPort < 1 || discoveryPort > 65535) {
    throw new ParameterError(
      `Cannot start discovery: invalid discovery port ${
        JSON.stringify(discoveryPort)
      }: expected an integer in 1..65535`,
    );
  }
  const machine = new DiscoveryMachine({
    deviceId: options.deviceId,
    nonce: options.nonce,
    port: options.port,
    interval: options.interval,
    steadyInterval: options.steadyInterval,
    maxPeers: options.maxPeers,
    maxIdsPerHost: options.maxIdsPerHost,
    maxTtl: options.maxTtl,
    networks: interfaces,
    addresses: furtherAddresses(interfaces, options.port),
    seal: options.seal,
  }, clock.now());
  const dest: IpEndpoint = { address: group, port: discoveryPort, family: "IPv4" };
  const limiter = new WarningLimiter();
  const report = (e: unknown) => {
    try {
      options.onError?.(e);
    } catch { /* a throwing listener does not stop discovery */ }
  };

  let closed = false;
  let timer: unknown;
  let timerAt: number | undefined;
  const senders: DatagramHandle[] = [];

  const emit = (ev: DiscoveryEvent) => {
    try {
      options.onEvent?.(ev);
    } catch (e) {
      report(e);
    }
    const w = warning(ev);
    if (w === undefined || options.warn === undefined) return;
    const suppressed = limiter.allow(w[0], clock.now());
    if (suppressed === undefined) return;
    try {
      options.warn(suppressed > 0 ? `${w[1]} (${suppressed} similar suppressed)` : w[1]);
    } catch (e) {
      report(e);
    }
  };
  const pump = () => {
    for (let bytes = machine.pollTransmit(); bytes !== undefined; bytes = machine.pollTransmit()) {
      for (const s of senders) s.send(bytes, dest)?.catch(report);
    }
    for (let ev = machine.pollEvent(); ev !== undefined; ev = machine.pollEvent()) emit(ev);
    if (closed) return;
    const at = machine.pollTimeout();
    if (at === timerAt) return;
    if (timer !== undefined) clock.clearTimer(timer);
    timer = undefined;
    timerAt = at;
    if (at === undefined) return;
    timer = clock.setTimer(() => {
      timer = undefined;
      timerAt = undefined;
      if (closed) return;
      machine.handleTimeout(clock.now());
      pump();
    }, Math.max(0, Math.ceil(at - clock.now())));
  };

  const receiver = await platform.udpBind({
    local: { address: group, port: discoveryPort, family: "IPv4" },
    reuseAddress: true,
  }, {
    onMessage(bytes, from) {
      if (closed) return;
      machine.handleDatagram(bytes, from.address, clock.now());
      pump();
    },
    onError: report,
  });
  receiver.unref();
  try {
    for (const i of interfaces) {
      receiver.addMembership(group, i.address);
      const s = await platform.udpBind({
        local: { address: i.address, port: 0, family: "IPv4" },
      }, { onMessage() {}, onError: report });
      s.unref();
      senders.push(s);
      s.setOption("multicastTTL", 1);
      s.setOption("multicastLoopback", true);
    }
  } catch (e) {
    await Promise.allSettled([receiver.close(), ...senders.map((s) => s.close())]);
    throw e;
  }
  machine.handleTimeout(clock.now());
  pump();

  let closing: Promise<void> | undefined;
  return {
    deviceId: normalizeDeviceId(options.deviceId),
    nonce: options.nonce,
    lookup: (deviceId) => machine.table.lookup(deviceId),
    peers: () => machine.table.peers(),
    refute(deviceId, address) {
      if (machine.table.refute(deviceId, address.host, address.port, clock.now())) {
        trace("discoveryRefuted", { peer: deviceId, address: `${address.host}:${address.port}` });
      }
    },
    announce() {
      if (closed) return;
      machine.announce(clock.now());
      pump();
    },
    close() {
      closing ??= (async () => {
        machine.close(clock.now());
        const bye = machine.pollTransmit();
        closed = true;
        if (timer !== undefined) clock.clearTimer(timer);
        timer = undefined;
        if (bye !== undefined) {
          await Promise.allSettled(senders.map((s) => s.send(bye, dest)));
        }
        await Promise.allSettled([receiver.close(), ...senders.map((s) => s.close())]);
      })();
      return closing;
    },
  };
}

/**
 * What a device with several interfaces announces besides the source
 * address of each announcement: every interface's address with its TCP
 * port (at most `MAX_ADDRESSES`), so a peer hearing it on one interface
 * learns the others and can open a channel of the link over each path. A
 * device on one interface announces none (the source says it all).
 *
 * @param interfaces The interfaces discovery runs on.
 * @param port The device's TCP port.
 * @returns The addresses to announce.
 */
export function furtherAddresses(interfaces: readonly Subnet[], port: number): PeerAddress[] {
  if (interfaces.length < 2) return [];
  return interfaces.slice(0, MAX_ADDRESSES).map((i) => ({ host: i.address, port }));
}

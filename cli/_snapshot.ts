/**
 * The monitor's data model: one small typed snapshot of a device (its
 * links, their channels, and the logical connections of this process), and
 * the meters the commands count their connections' bytes with.
 *
 * Where the figures come from today:
 * - links and their channel count: `DeviceRuntime.links()`;
 * - a link's round trip: {@linkcode probeRtt}, the time a refused open on
 *   the live link takes (one round trip on the link, measured with the
 *   public API);
 * - bytes and rates: the connections of this process ({@linkcode Meters}),
 *   summed per link.
 * - each channel's kind, round trip, bytes in flight and health:
 *   `Device.linkStats()`; its rates: the change of its byte counts between
 *   two snapshots ({@linkcode ChannelRates}). {@linkcode channelsOf} is the
 *   one place that turns them into the snapshot.
 *
 * @module
 */
import type { Connection, ConnectResult, Device, DeviceRuntime } from "../link_enhance.ts";
import type { LinkChannelInfo, LinkInfo } from "../device.ts";
import { ErrorCode } from "../mod.ts";

/** The version of the snapshot's shape. */
export const SNAPSHOT_VERSION = 1;

/** A channel of a link. Figures the device does not report (yet) are `null`. */
export interface ChannelSnapshot {
  /** Its index in the link (1-based). */
  id: number;
  /** `tcp`, `ble`, ..., or `null` when unknown. */
  kind: string | null;
  /** The channel's round trip (ms). */
  rtt: number | null;
  /** Bytes per second written to the channel. */
  txRate: number | null;
  /** Bytes per second read from the channel. */
  rxRate: number | null;
  /** Bytes written and not yet acknowledged. */
  inFlight: number | null;
  /** `up`, or `unmeasured` for a profile that keeps no figures (OpenHarmony's BLE). */
  health: string | null;
}

/** A link to a peer. */
export interface LinkSnapshot {
  /** The peer's device id. */
  peer: string;
  /** Its channels. */
  channels: ChannelSnapshot[];
  /** The last round trip measured on it (ms), or `null`. */
  rtt: number | null;
  /** Payload bytes per second this process's connections sent over it. */
  txRate: number;
  /** Payload bytes per second this process's connections received over it. */
  rxRate: number;
  /** Payload bytes sent by this process's connections, in all. */
  sent: number;
  /** Payload bytes received by this process's connections, in all. */
  received: number;
}

/** A logical connection of this process. */
export interface ConnectionSnapshot {
  /** The peer's device id. */
  peer: string;
  /** The server name. */
  name: string;
  /** `client` (this side connected) or `server` (accepted). */
  role: "client" | "server";
  /** The command's use of it: `netcat`, `send`, `receive`, `bench`, `probe`. */
  use: string;
  /** `connected` or `closed`. */
  state: "connected" | "closed";
  /** Payload bytes sent. */
  sent: number;
  /** Payload bytes received. */
  received: number;
  /** Bytes per second sent over the last interval. */
  txRate: number;
  /** Bytes per second received over the last interval. */
  rxRate: number;
  /** Bytes waiting in its send queue. */
  buffered: number;
}

/** What `linkweave monitor` shows, once per interval. */
export interface MonitorSnapshot {
  /** {@linkcode SNAPSHOT_VERSION}. */
  v: number;
  /** When it was taken (ms since the epoch). */
  at: number;
  /** The device. */
  device: { id: string; port: number; bind: string };
  /** Its links. */
  links: LinkSnapshot[];
  /** This process's connections (closed ones stay for one snapshot). */
  connections: ConnectionSnapshot[];
}

/** The byte counts of one connection. */
export class Meter {
  /** The peer. */
  readonly peer: string;
  /** The server name. */
  readonly name: string;
  /** Who opened it. */
  readonly role: "client" | "server";
  /** What the command uses it for. */
  readonly use: string;
  /** Payload bytes sent. */
  sent = 0;
  /** Payload bytes received. */
  received = 0;
  /** Whether it closed. */
  closed = false;
  /** The connection, for its send queue. */
  readonly conn: Connection | undefined;
  #lastSent = 0;
  #lastReceived = 0;
  #lastAt: number;

  /**
   * @param conn The connection (for `bufferedAmount`), if any.
   * @param init Its peer, name, role and use.
   */
  constructor(
    conn: Connection | undefined,
    init: { peer: string; name: string; role: "client" | "server"; use: string },
  ) {
    this.conn = conn;
    this.peer = init.peer;
    this.name = init.name;
    this.role = init.role;
    this.use = init.use;
    this.#lastAt = performance.now();
  }

  /**
   * The rates since the previous call, and start a new interval.
   *
   * @param now The time (ms, `performance.now()`).
   * @returns Bytes per second each way.
   */
  rates(now: number): { txRate: number; rxRate: number } {
    const s = Math.max(1e-3, (now - this.#lastAt) / 1000);
    const out = {
      txRate: Math.round((this.sent - this.#lastSent) / s),
      rxRate: Math.round((this.received - this.#lastReceived) / s),
    };
    this.#lastSent = this.sent;
    this.#lastReceived = this.received;
    this.#lastAt = now;
    return out;
  }
}

/** The meters of one process's connections. */
export class Meters {
  #all = new Set<Meter>();

  /**
   * Count a connection.
   *
   * @param conn The connection.
   * @param init Its peer, name, role and use.
   * @returns Its meter (count with `sent`/`received`, set `closed`).
   */
  open(
    conn: Connection | undefined,
    init: { peer: string; name: string; role: "client" | "server"; use: string },
  ): Meter {
    const m = new Meter(conn, init);
    this.#all.add(m);
    return m;
  }

  /**
   * Every meter, then forget the closed ones (each is listed once after it closed).
   *
   * @returns The meters.
   */
  take(): Meter[] {
    const out = [...this.#all];
    for (const m of out) if (m.closed) this.#all.delete(m);
    return out;
  }
}

/** The meters of this process: every command counts its connections here. */
export const meters: Meters = new Meters();

/** Each channel's rates, from the change of its byte counts since the last snapshot. */
export class ChannelRates {
  #last = new Map<string, { at: number; sent: number; received: number }>();

  /**
   * The rates of one channel now, and remember its counts.
   *
   * @param key The channel (peer and index).
   * @param info What the device reports of it.
   * @param now The time (ms).
   * @returns Bytes per second each way, `null` on the first sight.
   */
  take(
    key: string,
    info: LinkChannelInfo,
    now: number,
  ): { txRate: number | null; rxRate: number | null } {
    const last = this.#last.get(key);
    this.#last.set(key, { at: now, sent: info.sent, received: info.received });
    const dt = last === undefined ? 0 : (now - last.at) / 1000;
    if (last === undefined || dt <= 0) return { txRate: null, rxRate: null };
    return {
      txRate: Math.max(0, info.sent - last.sent) / dt,
      rxRate: Math.max(0, info.received - last.received) / dt,
    };
  }

  /**
   * Forget the channels not seen in the last snapshot.
   *
   * @param seen The keys of the channels seen.
   */
  keep(seen: ReadonlySet<string>): void {
    for (const k of this.#last.keys()) if (!seen.has(k)) this.#last.delete(k);
  }
}

/**
 * The channels of a link, as the snapshot shows them.
 *
 * @param count The link's channel count.
 * @param infos What the device reports of its channels, when it does.
 * @param rates Per-channel rates, with `key` naming the link.
 * @returns The channels; figures not reported are `null`.
 */
export function channelsOf(
  count: number,
  infos?: readonly LinkChannelInfo[],
  rates?: { of: ChannelRates; key: string; now: number; seen: Set<string> },
): ChannelSnapshot[] {
  return Array.from({ length: Math.max(count, infos?.length ?? 0) }, (_, i) => {
    const info = infos?.[i];
    if (info === undefined) {
      return {
        id: i + 1,
        kind: null,
        rtt: null,
        txRate: null,
        rxRate: null,
        inFlight: null,
        health: null,
      };
    }
    const key = `${rates?.key}#${i + 1}`;
    rates?.seen.add(key);
    const r = rates?.of.take(key, info, rates.now) ?? { txRate: null, rxRate: null };
    return {
      id: i + 1,
      kind: info.kind,
      rtt: info.rtt ?? null,
      ...r,
      inFlight: info.health === "unmeasured" ? null : info.inFlight,
      health: info.health,
    };
  });
}

/**
 * Take a snapshot.
 *
 * @param runtime The running device.
 * @param options The meters, the round trips measured per peer, the clock.
 * @returns The snapshot.
 */
export function snapshot(
  runtime: DeviceRuntime,
  options: {
    meters?: Meters;
    rtts?: ReadonlyMap<string, number>;
    now?: number;
    /** `Device.linkStats()` now, for the channels' own figures. */
    stats?: readonly LinkInfo[];
    /** Where the channels' rates are kept between snapshots. */
    channelRates?: ChannelRates;
  } = {},
): MonitorSnapshot {
  const now = options.now ?? performance.now();
  const connections: ConnectionSnapshot[] = (options.meters ?? meters).take().map((m) => ({
    peer: m.peer,
    name: m.name,
    role: m.role,
    use: m.use,
    state: m.closed ? "closed" : "connected",
    sent: m.sent,
    received: m.received,
    ...m.rates(now),
    buffered: m.closed ? 0 : m.conn?.bufferedAmount ?? 0,
  }));
  const seen = new Set<string>();
  const links: LinkSnapshot[] = [...runtime.links()].sort(([a], [b]) => a < b ? -1 : 1).map((
    [peer, count],
  ) => {
    const mine = connections.filter((c) => c.peer === peer);
    const sum = (f: (c: ConnectionSnapshot) => number) => mine.reduce((n, c) => n + f(c), 0);
    return {
      peer,
      channels: channelsOf(
        count,
        options.stats?.find((l) => l.peer === peer)?.channels,
        options.channelRates && { of: options.channelRates, key: peer, now, seen },
      ),
      rtt: options.rtts?.get(peer) ?? null,
      txRate: sum((c) => c.txRate),
      rxRate: sum((c) => c.rxRate),
      sent: sum((c) => c.sent),
      received: sum((c) => c.received),
    };
  });
  options.channelRates?.keep(seen);
  return {
    v: SNAPSHOT_VERSION,
    at: Date.now(),
    device: { id: runtime.deviceId, port: runtime.port, bind: runtime.bind },
    links,
    connections,
  };
}

/** The server name a round-trip probe opens (no server is expected to have it). */
export const PROBE_NAME = "linkweave.probe";

/**
 * One round trip on the link to a peer, with the public API: the time an
 * open of {@linkcode PROBE_NAME} takes to be refused (or accepted, then
 * closed at once). Over a live link that is one round trip plus the peer's
 * handling; without a link it includes dialling and the handshake.
 *
 * @param device The device.
 * @param peer The peer's id.
 * @param timeout Give up after this long (ms). @default {3000}
 * @returns The time in ms, or `undefined` when the peer did not answer.
 */
export async function probeRtt(
  device: Device,
  peer: string,
  timeout = 3000,
): Promise<number | undefined> {
  const conn = device.createConnection(peer, PROBE_NAME);
  const t0 = performance.now();
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const r = await new Promise<ConnectResult | undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), timeout);
      conn.on("connectResult", resolve);
      conn.connect();
    });
    const answered = r !== undefined &&
      (r.success || r.reason === ErrorCode.PEER_SERVER_NOT_STARTED);
    return answered ? performance.now() - t0 : undefined;
  } catch {
    return undefined;
  } finally {
    clearTimeout(timer);
    conn.close();
  }
}

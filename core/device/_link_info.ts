/**
 * What {@linkcode DeviceDriver.linkStats} (`driver.ts`, which exports these
 * types) reports: one {@linkcode LinkInfo} per link with a
 * {@linkcode LinkChannelInfo} per channel, and how it is built from the
 * endpoint's links and the channels' own figures.
 *
 * @module
 */
import type { ChannelInfo } from "./channel.ts";
import type { PeerLink } from "./endpoint.ts";
import type { ChannelHealth } from "../proto/link/mod.ts";

export type { ChannelHealth };

/** One link of a device and its channels, as {@linkcode DeviceDriver.linkStats} reports it. */
export interface LinkInfo {
  /** The peer's device id. */
  readonly peer: string;
  /** Its channels, in the order they joined the link. */
  readonly channels: readonly LinkChannelInfo[];
}

/** One channel of a link and what it measured (read when asked; figures change as data flows). */
export interface LinkChannelInfo {
  /** The transport that made it: `tcp`, `ble`, ... */
  readonly kind: string;
  /** The far end (`192.0.2.7:38470`, a BLE address, ...). */
  readonly remote: string;
  /** Largest frame it carries (bytes). */
  readonly mtu: number;
  /** The latest round trip (ms), or `undefined` before one was measured. */
  readonly rtt: number | undefined;
  /** The smallest recent round trip (ms), or `undefined`. */
  readonly minRtt: number | undefined;
  /** Estimated delivery rate (bytes per second), 0 before measured. */
  readonly rate: number;
  /** Bytes written and not yet acknowledged by the peer. */
  readonly inFlight: number;
  /** Most bytes it may have in flight now. */
  readonly budget: number;
  /** Bytes of frames written to it since it joined. */
  readonly sent: number;
  /** Bytes of frames read from it since it joined. */
  readonly received: number;
  /**
   * `up`, `standby` (a backup channel while another is up), `suspect`
   * (writes went unacknowledged too long: carries nothing new), `leaving`;
   * `unmeasured` for a profile that keeps no figures (OpenHarmony's BLE).
   */
  readonly health: ChannelHealth | "unmeasured";
}

/**
 * The links and what each of their channels measured.
 *
 * @param links The endpoint's links, by peer id.
 * @param infoOf A channel's info, by channel id, while it is known.
 * @returns One entry per link.
 */
export function linkStats(
  links: ReadonlyMap<string, PeerLink>,
  infoOf: (channel: number) => ChannelInfo | undefined,
): LinkInfo[] {
  const out: LinkInfo[] = [];
  for (const [peer, pl] of links) {
    const channels: LinkChannelInfo[] = [];
    for (const id of pl.channels) {
      const info = infoOf(id);
      const s = pl.link.channelStats?.(id);
      channels.push({
        kind: info?.kind ?? "unknown",
        remote: info?.remote ?? "",
        mtu: s?.mtu ?? info?.mtu ?? 0,
        rtt: s?.rtt,
        minRtt: s?.minRtt,
        rate: (s?.rate ?? 0) * 1000,
        inFlight: s?.inFlight ?? 0,
        budget: s?.budget ?? 0,
        sent: s?.sent ?? 0,
        received: s?.received ?? 0,
        health: s?.health ?? "unmeasured",
      });
    }
    out.push({ peer, channels });
  }
  return out;
}

/**
 * The peer finder of a device made by `createDevice`: the local registry
 * (devices of this user on this machine, whatever they listen on) first,
 * then multicast discovery when the device listens off loopback. Either
 * one failing to start leaves the other running, with one warning.
 *
 * With `LINKWEAVE_TRACE=1` it traces discovery as JSON lines on stderr:
 * `{"linkweave":"discovery.learned",...}` (also `expired`, `lost`,
 * `contender`, `clash`, `refused` with its `reason`, and `registered`).
 *
 * @module
 */
import type { IdSeal } from "./core/discovery/wire.ts";
import process from "node:process";
import type { DeviceConfig } from "./core/device/config.ts";
import type { DeviceHost } from "./core/device/host.ts";
import { shouldMulticast, startDiscovery } from "./core/discovery/driver.ts";
import type { DiscoveryEvent } from "./core/discovery/machine.ts";
import {
  combineDirectories,
  type DeviceDirectory,
  multicastDirectory,
  type PeerFinder,
} from "./core/discovery/finder.ts";
import { localDialHost } from "./core/discovery/local_record.ts";
import { selectInterfaces } from "./core/discovery/subnet.ts";
import { openLocalPeers } from "./platform/local_peers.ts";
import { ipv4Interfaces } from "./platform/network_interfaces.ts";

type Trace = (event: string, detail: Record<string, unknown>) => void;

function traceEvent(trace: Trace, e: DiscoveryEvent): void {
  switch (e.type) {
    case "learned": {
      const { deviceId, host, port, nonce, version } = e.peer;
      trace("learned", {
        deviceId,
        host,
        port,
        nonce,
        version,
        source: "multicast",
        promoted: e.promoted,
      });
      break;
    }
    case "lost":
      trace(e.reason === "expired" ? "expired" : "lost", {
        deviceId: e.deviceId,
        reason: e.reason,
      });
      break;
    case "contender":
      trace("contender", {
        deviceId: e.deviceId,
        host: e.host,
        port: e.port,
        nonce: e.nonce,
        sameRuntime: e.sameRuntime,
        dialing: `${e.established.host}:${e.established.port}`,
      });
      break;
    case "clash":
      trace("clash", { deviceId: e.deviceId, host: e.host, port: e.port, nonce: e.nonce });
      break;
    case "refused":
      trace("refused", {
        host: e.host,
        reason: e.reason,
        ...(e.deviceId === undefined ? {} : { deviceId: e.deviceId }),
        ...(e.major === undefined ? {} : { major: e.major }),
      });
      break;
  }
}

/**
 * Start the finder of one device.
 *
 * @param host The machine (sockets, clock, warnings).
 * @param config The device's configuration (`bind`, `discovery`).
 * @param self The device's id, nonce and TCP port.
 * @param seal Seals the id in announcements (a device with an account).
 * @returns The finder (possibly with no directory, when neither could start).
 */
export async function startPeerFinder(
  host: DeviceHost,
  config: DeviceConfig,
  self: { deviceId: string; nonce: string; port: number },
  seal?: IdSeal,
): Promise<PeerFinder> {
  const trace: Trace | undefined = process.env.LINKWEAVE_TRACE === "1"
    ? (event, detail) =>
      console.error(JSON.stringify({ linkweave: `discovery.${event}`, ...detail }))
    : undefined;
  const dirs: DeviceDirectory[] = [];
  try {
    const local = await openLocalPeers({
      self: { ...self, host: localDialHost(config.bind) },
      now: () => host.now(),
      onClash: (r) =>
        host.warn(
          `linkweave: device id clash: process ${r.pid} on this machine also runs ${r.deviceId} (port ${r.port})`,
        ),
    });
    trace?.("registered", { deviceId: self.deviceId, port: self.port, file: local.file });
    const seen = new Set<string>();
    dirs.push({
      ...local,
      find(deviceId) {
        const d = local.find(deviceId);
        const a = d?.addresses[0];
        if (trace !== undefined && a !== undefined && !seen.has(`${deviceId}@${a.port}`)) {
          seen.add(`${deviceId}@${a.port}`);
          trace("learned", { deviceId, host: a.host, port: a.port, source: "local" });
        }
        return d;
      },
    });
  } catch (e) {
    host.warn(`linkweave: local discovery unavailable: ${(e as Error).message}`);
  }
  if (shouldMulticast(config)) {
    try {
      const discovery = await startDiscovery({
        platform: host.sockets,
        clock: host,
        deviceId: self.deviceId,
        nonce: self.nonce,
        port: self.port,
        seal,
        interfaces: selectInterfaces(config.bind, ipv4Interfaces()),
        warn: (message) => host.warn(message),
        onEvent: trace === undefined ? undefined : (e) => traceEvent(trace, e),
      });
      dirs.push(multicastDirectory(discovery));
    } catch (e) {
      host.warn(`linkweave: multicast discovery unavailable: ${(e as Error).message}`);
    }
  }
  return combineDirectories(dirs);
}

/**
 * A device running multicast discovery, as a child process of
 * `discovery_netns_test.ts`, `hostile/discovery_test.ts` and
 * `core/discovery/driver_test.ts` (run inside a network namespace with
 * `ip netns exec`, or directly). Its job comes as JSON in `LW_DISCOVERY_PEER`;
 * it prints one JSON line per event (`ready`, then the machine's events by
 * type: `learned`, `lost`, `contender`, `clash`, `refused`; `warn` for each
 * warning line; `closed`) and reads commands from stdin, one per line:
 * `announce`, `lookup <id>` (prints `{"ev":"lookup","id":...,"host":...,"port":...}`,
 * host and port absent when unknown), `close` (say goodbye and exit). At the
 * end of stdin it exits at once, without a goodbye, like a killed device.
 *
 * With `linger: true` it starts discovery, prints `ready` and returns without
 * closing anything: the process must then exit by itself, because discovery
 * never keeps a process alive.
 *
 * Importing this module without `LW_DISCOVERY_PEER` set only gives
 * {@linkcode testPlatform}.
 *
 * @module
 */
import process from "node:process";
import type { DatagramHandle, SocketPlatform } from "../core/socket/platform.ts";
import { autoSocketPlatform } from "../platform/auto.ts";
import { bindDgram } from "../platform/_node_net.ts";
import { startDiscovery } from "../core/discovery/driver.ts";
import { selectInterfaces } from "../core/discovery/subnet.ts";
import { randomNonce } from "../core/discovery/wire.ts";
import { runtimeHost } from "../platform/host.ts";
import { ipv4Interfaces } from "../platform/network_interfaces.ts";

/** The job of one peer process. */
export interface DiscoveryPeerJob {
  /** Its device id. */
  deviceId: string;
  /** Its nonce. @default {a random one} */
  nonce?: string;
  /** The TCP listen address it announces on. */
  bind: string;
  /** The TCP port it announces. */
  port: number;
  /** The multicast group. */
  group?: string;
  /** The discovery UDP port. */
  discoveryPort?: number;
  /** The fast interval in ms. */
  interval?: number;
  /** The longest a peer is remembered, in ms. */
  maxTtl?: number;
  /** The peer limit. */
  maxPeers?: number;
  /** The limit of ids per source address. */
  maxIdsPerHost?: number;
  /** Print `refused` events too. @default {false} */
  refusals?: boolean;
  /** Exit after this long at the latest, in ms. @default {30000} */
  ms?: number;
  /** Start, print `ready`, and leave everything open (lifetime test). */
  linger?: boolean;
}

/** What {@linkcode testPlatform} found. */
export interface TestPlatform {
  /** The platform to use. */
  platform: SocketPlatform;
  /** Set when the runtime's adapter ignores `reuseAddress`: what was done about it. */
  workaround?: string;
  /** Whether datagram handles have `unref()`. */
  unref: boolean;
}

let probed: Promise<TestPlatform> | undefined;

/**
 * The socket platform of this runtime for discovery tests. When its adapter
 * ignores `reuseAddress` (Bun's `Bun.udpSocket` has no such option), UDP
 * binds go through `node:dgram` of the same runtime instead, which honours
 * it, so several devices can share the discovery port; `workaround` says so.
 *
 * @returns The platform and what the probe found.
 */
export function testPlatform(): Promise<TestPlatform> {
  probed ??= (async () => {
    const auto = autoSocketPlatform();
    const probe = async (platform: SocketPlatform) => {
      const port = 20000 + Math.floor(Math.random() * 20000);
      const local = { address: "127.0.0.1", port, family: "IPv4" as const };
      const a = await platform.udpBind({ local, reuseAddress: true }, { onMessage() {} });
      const unref = typeof (a as DatagramHandle & { unref?: unknown }).unref === "function";
      let b: DatagramHandle | undefined;
      try {
        b = await platform.udpBind({ local, reuseAddress: true }, { onMessage() {} });
      } catch { /* reuseAddress ignored */ }
      await a.close();
      await b?.close();
      return { reuse: b !== undefined, unref };
    };
    const found = await probe(auto);
    if (found.reuse) return { platform: auto, unref: found.unref };
    const platform: SocketPlatform = {
      ...auto,
      udpBind: (options, events) => bindDgram(options, events, auto.name, true),
    };
    return {
      platform,
      workaround: `the ${auto.name} adapter ignores reuseAddress: UDP through node:dgram`,
      unref: (await probe(platform)).unref,
    };
  })();
  return probed;
}

function print(value: object): void {
  console.log(JSON.stringify({ ...value, t: Date.now() }));
}

async function main(job: DiscoveryPeerJob): Promise<void> {
  const { platform } = await testPlatform();
  const discovery = await startDiscovery({
    platform,
    clock: runtimeHost(platform),
    deviceId: job.deviceId,
    nonce: job.nonce ?? randomNonce(),
    port: job.port,
    interfaces: selectInterfaces(job.bind, ipv4Interfaces()),
    group: job.group,
    discoveryPort: job.discoveryPort,
    interval: job.interval,
    maxTtl: job.maxTtl,
    maxPeers: job.maxPeers,
    maxIdsPerHost: job.maxIdsPerHost,
    onEvent: (e) => {
      if (e.type === "learned") print({ ev: "learned", promoted: e.promoted, ...e.peer });
      else if (e.type === "contender") {
        print({ ...e, ev: "contender", type: undefined, established: undefined });
      } else if (e.type !== "refused" || job.refusals) print({ ...e, ev: e.type, type: undefined });
    },
    warn: (message) => print({ ev: "warn", message }),
    onError: (e) => print({ ev: "error", message: String(e) }),
  });
  print({ ev: "ready", nonce: discovery.nonce });
  if (job.linger) return;
  let closing = false;
  const close = async () => {
    if (closing) return;
    closing = true;
    await discovery.close();
    print({ ev: "closed" });
    process.exit(0);
  };
  setTimeout(close, job.ms ?? 30_000);
  let buffered = "";
  process.stdin.on("data", (chunk: Uint8Array | string) => {
    buffered += typeof chunk === "string" ? chunk : new TextDecoder().decode(chunk);
    let nl: number;
    while ((nl = buffered.indexOf("\n")) >= 0) {
      const cmd = buffered.slice(0, nl).trim();
      buffered = buffered.slice(nl + 1);
      if (cmd === "announce") discovery.announce();
      else if (cmd === "close") void close();
      else if (cmd.startsWith("lookup ")) {
        const id = cmd.slice(7).trim();
        const p = discovery.lookup(id);
        print({ ev: "lookup", id, host: p?.host, port: p?.port });
      }
    }
  });
  // The parent went away (or is killing us): exit at once, without a goodbye.
  process.stdin.on("end", () => process.exit(1));
}

const raw = process.env.LW_DISCOVERY_PEER;
if (raw !== undefined && raw !== "") await main(JSON.parse(raw) as DiscoveryPeerJob);

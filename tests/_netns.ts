/**
 * Test networks made of network namespaces: `count` hosts, each with one veth
 * to a bridge in a switch namespace, one /24 between them, a multicast route,
 * all removed by `close()`. Needs root and iproute2.
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import process from "node:process";

/**
 * Run `ip`, throwing with its stderr when it fails.
 *
 * @param args The arguments.
 * @returns Its stdout.
 */
export function ip(...args: string[]): string {
  const r = spawnSync("ip", args, { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`Cannot run "ip ${args.join(" ")}": ${r.stderr}`);
  return r.stdout;
}

/** A bridged test network. */
export interface Lan {
  /** The hosts' namespaces. */
  namespaces: string[];
  /** Their IPv4 addresses, in the same order. */
  addresses: string[];
  /** Delete every namespace (and with them the veths and the bridge). */
  close(): void;
}

/**
 * Create a bridged network of `count` namespaces.
 *
 * @param count How many hosts.
 * @param prefix A short prefix for the names (a few letters).
 * @returns The network.
 */
export function createLan(count: number, prefix: string): Lan {
  const tag = `${process.pid % 10000}${Math.floor(Math.random() * 100)}`;
  const net = `10.${150 + (process.pid % 50)}.${Math.floor(Math.random() * 250)}`;
  const hub = `${prefix}-sw-${tag}`;
  const namespaces = Array.from({ length: count }, (_, i) => `${prefix}${i + 1}-${tag}`);
  const addresses = namespaces.map((_, i) => `${net}.${i + 1}`);
  const lan = {
    namespaces,
    addresses,
    close() {
      for (const ns of [...namespaces, hub]) spawnSync("ip", ["netns", "del", ns]);
    },
  };
  try {
    ip("netns", "add", hub);
    ip("-n", hub, "link", "add", "br0", "type", "bridge", "mcast_snooping", "0");
    ip("-n", hub, "link", "set", "br0", "up");
    for (const [i, ns] of namespaces.entries()) {
      const dev = `${prefix}${i + 1}h${tag}`;
      const port = `${prefix}${i + 1}s${tag}`;
      ip("netns", "add", ns);
      ip("link", "add", dev, "netns", ns, "type", "veth", "peer", "name", port, "netns", hub);
      ip("-n", hub, "link", "set", port, "master", "br0");
      ip("-n", hub, "link", "set", port, "up");
      ip("-n", ns, "addr", "add", `${addresses[i]}/24`, "dev", dev);
      ip("-n", ns, "link", "set", dev, "up");
      ip("-n", ns, "link", "set", "lo", "up");
      ip("-n", ns, "route", "add", "224.0.0.0/4", "dev", dev);
    }
  } catch (e) {
    lan.close();
    throw e;
  }
  return lan;
}

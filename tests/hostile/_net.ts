/**
 * The network of the hostile suites, made of network namespaces the test
 * creates (names start with the suite's prefix, `disc` by default), all
 * removed by `close()`:
 *
 * ```
 *   LAN A (bridge)                     LAN B (bridge)
 *    |-- victim  (ifaces a and b) --------|
 *    |-- real    (a real device)          |-- other   (an attacker on the victim's other interface)
 *    |-- forger  (an attacker on LAN A)
 * ```
 *
 * Needs root and iproute2.
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import process from "node:process";
import { ip } from "../_netns.ts";

/** One host of the network. */
export interface Host {
  /** Its namespace. */
  ns: string;
  /** Its address on LAN A (or on LAN B for `other`). */
  addr: string;
  /** Its interface on that LAN. */
  dev: string;
}

/** The network. */
export interface HostileNet {
  /** The device under attack. */
  victim: Host & { addrB: string; devB: string };
  /** A real device on LAN A. */
  real: Host;
  /** An attacker on LAN A. */
  forger: Host;
  /** An attacker on LAN B, the victim's other interface. */
  other: Host;
  /** LAN A's first three octets (`10.x.y`). */
  lanA: string;
  /** LAN B's first three octets. */
  lanB: string;
  /** Remove every namespace. */
  close(): void;
}

/**
 * Build the network.
 *
 * @param prefix The start of every namespace and interface name (a few letters).
 * @returns The network.
 */
export function createHostileNet(prefix = "disc"): HostileNet {
  const tag = `${process.pid % 10000}${Math.floor(Math.random() * 100)}`;
  const x = 100 + (process.pid % 50);
  const y = Math.floor(Math.random() * 250);
  const lanA = `10.${x}.${y}`;
  const lanB = `10.${x + 60}.${y}`;
  const hub = `${prefix}-sw-${tag}`;
  const names = ["v", "r", "f", "o"].map((n) => `${prefix}${n}-${tag}`);
  const made: string[] = [];
  const close = () => {
    for (const ns of made) spawnSync("ip", ["netns", "del", ns]);
  };
  const link = (ns: string, dev: string, bridge: string, addr: string) => {
    const port = `${dev}s`;
    ip("link", "add", dev, "netns", ns, "type", "veth", "peer", "name", port, "netns", hub);
    ip("-n", hub, "link", "set", port, "master", bridge);
    ip("-n", hub, "link", "set", port, "up");
    ip("-n", ns, "addr", "add", `${addr}/24`, "dev", dev);
    ip("-n", ns, "link", "set", dev, "up");
  };
  try {
    for (const ns of [hub, ...names]) {
      ip("netns", "add", ns);
      made.push(ns);
      ip("-n", ns, "link", "set", "lo", "up");
    }
    for (const br of ["bra", "brb"]) {
      ip("-n", hub, "link", "add", br, "type", "bridge", "mcast_snooping", "0");
      ip("-n", hub, "link", "set", br, "up");
    }
    const [v, r, f, o] = names;
    const dev = (n: string, lan: string) => `${prefix}${n}${lan}${tag}`.slice(0, 15);
    link(v, dev("v", "a"), "bra", `${lanA}.1`);
    link(v, dev("v", "b"), "brb", `${lanB}.1`);
    link(r, dev("r", "a"), "bra", `${lanA}.2`);
    link(f, dev("f", "a"), "bra", `${lanA}.3`);
    link(o, dev("o", "b"), "brb", `${lanB}.4`);
    for (
      const [ns, d] of [[v, dev("v", "a")], [r, dev("r", "a")], [f, dev("f", "a")], [
        o,
        dev("o", "b"),
      ]]
    ) {
      ip("-n", ns, "route", "add", "224.0.0.0/4", "dev", d);
    }
    // the attacker on LAN B can reach the victim's LAN A address through the victim
    ip("-n", o, "route", "add", `${lanA}.0/24`, "via", `${lanB}.1`);
    return {
      victim: {
        ns: v,
        addr: `${lanA}.1`,
        dev: dev("v", "a"),
        addrB: `${lanB}.1`,
        devB: dev("v", "b"),
      },
      real: { ns: r, addr: `${lanA}.2`, dev: dev("r", "a") },
      forger: { ns: f, addr: `${lanA}.3`, dev: dev("f", "a") },
      other: { ns: o, addr: `${lanB}.4`, dev: dev("o", "b") },
      lanA,
      lanB,
      close,
    };
  } catch (e) {
    close();
    throw e;
  }
}

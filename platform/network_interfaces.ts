/**
 * The machine's IPv4 interfaces with their subnets, for discovery (which
 * interfaces it runs on, which sources are on-link). Works on Deno, Bun and
 * Node (`node:os`; Deno asks for `--allow-sys`).
 *
 * @module
 */
import { networkInterfaces } from "node:os";
import type { Subnet } from "../core/discovery/subnet.ts";

/**
 * Every IPv4 address of every interface, with its prefix length.
 *
 * @returns The interfaces' IPv4 subnets (loopback ones marked `internal`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.ok(ipv4Interfaces().every((i) => i.prefixLength >= 0 && i.prefixLength <= 32));
 * ```
 */
export function ipv4Interfaces(): Subnet[] {
  const out: Subnet[] = [];
  for (const [name, addrs] of Object.entries(networkInterfaces())) {
    for (const a of addrs ?? []) {
      if (a.family !== "IPv4" && (a.family as unknown) !== 4) continue;
      const prefixLength = a.cidr === null || a.cidr === undefined
        ? prefixOf(a.netmask)
        : Number(a.cidr.slice(a.cidr.indexOf("/") + 1));
      out.push({ name, address: a.address, prefixLength, internal: a.internal });
    }
  }
  return out;
}

function prefixOf(netmask: string): number {
  return netmask.split(".").reduce((n, part) => {
    let b = Number(part);
    while (b & 0x80) {
      n++;
      b = (b << 1) & 0xff;
    }
    return n;
  }, 0);
}

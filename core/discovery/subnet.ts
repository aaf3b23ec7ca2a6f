/**
 * IPv4 addresses and subnets, as discovery needs them: which interfaces it
 * runs on, and whether a datagram's source is on-link (inside the subnet of
 * one of them). Pure.
 *
 * @module
 */
import { ParameterError } from "../errors.ts";

/** An IPv4 interface address with its prefix: where discovery runs. */
export interface Subnet {
  /** The interface's name (`eth0`), for messages only. */
  name?: string;
  /** The interface's IPv4 address (dotted quad). */
  address: string;
  /** The prefix length of its subnet, 0..32 (`24` for a /24). */
  prefixLength: number;
  /** Whether the interface is a loopback interface. @default {false} */
  internal?: boolean;
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/**
 * An IPv4 address as a 32-bit unsigned number.
 *
 * @param address A dotted quad (an IPv4-mapped IPv6 form `::ffff:a.b.c.d` is accepted).
 * @returns The number, or `undefined` when it is not an IPv4 address.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.equal(parseIPv4("10.0.0.1"), 0x0a000001);
 * assert.equal(parseIPv4("::ffff:127.0.0.1"), 0x7f000001);
 * assert.equal(parseIPv4("10.0.0"), undefined);
 * ```
 */
export function parseIPv4(address: string): number | undefined {
  if (typeof address !== "string") return undefined;
  const a = address.toLowerCase().startsWith("::ffff:") ? address.slice(7) : address;
  if (!IPV4.test(a)) return undefined;
  return a.split(".").reduce((n, part) => n * 256 + Number(part), 0);
}

/**
 * An IPv4 number as a dotted quad.
 *
 * @param n The address as a 32-bit unsigned number.
 * @returns The dotted quad.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.equal(formatIPv4(0xc0a80001), "192.168.0.1");
 * ```
 */
export function formatIPv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");
}

function mask(prefixLength: number): number {
  return prefixLength === 0 ? 0 : (0xffffffff << (32 - prefixLength)) >>> 0;
}

/**
 * Whether an address lies inside an interface's subnet.
 *
 * @param address The address to test (dotted quad).
 * @param subnet The interface address and prefix length.
 * @returns `true` when both are IPv4 and the address is on that subnet.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const lan = { address: "10.1.2.3", prefixLength: 24 };
 * assert.ok(inSubnet("10.1.2.200", lan));
 * assert.ok(!inSubnet("10.1.3.1", lan));
 * ```
 */
export function inSubnet(address: string, subnet: Subnet): boolean {
  const a = parseIPv4(address);
  const s = parseIPv4(subnet.address);
  if (a === undefined || s === undefined) return false;
  const p = subnet.prefixLength;
  if (!Number.isInteger(p) || p < 0 || p > 32) return false;
  const m = mask(p);
  return ((a & m) >>> 0) === ((s & m) >>> 0);
}

/**
 * Whether an address is on-link for any of the subnets.
 *
 * @param address The address (dotted quad).
 * @param subnets The interfaces' subnets.
 * @returns `true` when one subnet contains it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.ok(onLink("192.168.1.9", [{ address: "10.0.0.1", prefixLength: 8 }, { address: "192.168.1.1", prefixLength: 24 }]));
 * ```
 */
export function onLink(address: string, subnets: readonly Subnet[]): boolean {
  return subnets.some((s) => inSubnet(address, s));
}

/**
 * Whether an address is a usable unicast IPv4 host address: not `0.0.0.0/8`,
 * not multicast or reserved (`224.0.0.0` and above).
 *
 * @param address The address.
 * @returns `true` for a unicast IPv4 address.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.ok(isUnicastIPv4("10.0.0.1"));
 * assert.ok(!isUnicastIPv4("239.255.76.87"));
 * assert.ok(!isUnicastIPv4("0.0.0.0"));
 * ```
 */
export function isUnicastIPv4(address: string): boolean {
  const n = parseIPv4(address);
  return n !== undefined && n >>> 24 !== 0 && n < 0xe0000000;
}

/**
 * Whether an address names the loopback interface (`127.0.0.0/8`, `::1`,
 * `localhost`).
 *
 * @param address The address or host name.
 * @returns `true` for a loopback address.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.ok(isLoopback("127.0.0.1") && isLoopback("::1") && !isLoopback("10.0.0.1"));
 * ```
 */
export function isLoopback(address: string): boolean {
  const a = address.toLowerCase();
  return a === "localhost" || a === "::1" || /^(::ffff:)?127\./.test(a);
}

/**
 * Whether an address is a wildcard (`0.0.0.0` or `::`): every interface.
 *
 * @param address The address.
 * @returns `true` for a wildcard.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.ok(isWildcard("0.0.0.0") && isWildcard("::") && !isWildcard("10.0.0.1"));
 * ```
 */
export function isWildcard(address: string): boolean {
  return address === "0.0.0.0" || address === "::";
}

/**
 * The interfaces discovery runs on for a listen address: the interface that
 * has that address, or, for `0.0.0.0` and `::`, every IPv4 interface that is
 * not loopback. Announcements are sent and accepted on these only.
 *
 * @param bind The device's listen address.
 * @param interfaces The machine's IPv4 interfaces.
 * @returns The interfaces to run on (possibly empty for a wildcard).
 * @throws {ParameterError} When `bind` is not an IPv4 address or a
 *   wildcard, or when no interface has that address.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const all = [
 *   { name: "lo", address: "127.0.0.1", prefixLength: 8, internal: true },
 *   { name: "eth0", address: "10.0.0.5", prefixLength: 24 },
 * ];
 * assert.deepEqual(selectInterfaces("0.0.0.0", all).map((i) => i.name), ["eth0"]);
 * assert.deepEqual(selectInterfaces("10.0.0.5", all).map((i) => i.name), ["eth0"]);
 * ```
 */
export function selectInterfaces(bind: string, interfaces: readonly Subnet[]): Subnet[] {
  const ipv4 = interfaces.filter((i) =>
    parseIPv4(i.address) !== undefined && Number.isInteger(i.prefixLength) &&
    i.prefixLength >= 0 && i.prefixLength <= 32
  );
  if (isWildcard(bind)) return ipv4.filter((i) => !i.internal && !isLoopback(i.address));
  if (typeof bind !== "string" || parseIPv4(bind) === undefined) {
    throw new ParameterError(
      `Cannot start discovery: bind address ${
        JSON.stringify(bind)
      } is not an IPv4 address, "0.0.0.0" or "::"`,
    );
  }
  const found = ipv4.filter((i) => parseIPv4(i.address) === parseIPv4(bind));
  if (found.length === 0) {
    throw new ParameterError(
      `Cannot start discovery: no network interface has the address ${JSON.stringify(bind)}`,
    );
  }
  return found.slice(0, 1);
}

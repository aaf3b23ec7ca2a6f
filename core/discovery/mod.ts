/**
 * Discovery: how a device finds its peers' addresses.
 *
 * - `wire.ts`: the version-2 announcement datagram.
 * - `table.ts`: what is known about which peer, and the rules that keep a
 *   forger from redirecting dials.
 * - `machine.ts`: when to announce, answer and expire (sans-IO).
 * - `driver.ts`: the sockets and timers of multicast discovery.
 * - `local_record.ts`: the local registry's record (devices of one user on one machine).
 * - `finder.ts`: one finder over the local registry and multicast.
 *
 * `docs/discovery.md` documents the format, the rules and the limits.
 *
 * @module
 */
export * from "./wire.ts";
export * from "./subnet.ts";
export * from "./table.ts";
export * from "./rate_limit.ts";
export * from "./machine.ts";
export * from "./driver.ts";
export * from "./local_record.ts";
export * from "./finder.ts";

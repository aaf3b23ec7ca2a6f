/**
 * The slots for "our link over N channels" in `npm run bench:multipath`
 * (`bench/multipath_bench.ts`, issue 14). While a slot is `undefined` the
 * benchmark measures and writes only its baselines (single TCP, N parallel
 * TCP connections, kernel MPTCP); once the multi-channel link exists, set
 * them here and the benchmark adds its rows with the targets,
 * measured in the same run, alternating with the baselines.
 *
 * Both get a lab from `scripts/netlab.ts`, already up with the topology's
 * paths: run the receiving device in `lab.command("server", ...)` and the
 * sending one in `lab.command("client", ...)`, one channel per path (path
 * `i` from `lab.paths[i].clientAddress` to `lab.paths[i].serverAddress`).
 * Both must leave no process behind when they resolve; ports below 5200 and
 * above 5400 are free in the lab.
 *
 * @module
 */
import type { Lab } from "../scripts/netlab.ts";

/** What a slot is told besides the lab. */
export interface SlotOptions {
  /** How long the transfer (or the load) lasts, in seconds. */
  seconds: number;
}

/**
 * One bulk transfer from the client to the server over our link with one
 * channel per path of the lab, for `seconds`.
 *
 * @returns Payload Mbit/s delivered to the receiving application (10^6 bits/s).
 */
export type LinkThroughput = (lab: Lab, options: SlotOptions) => Promise<number>;

/**
 * 1 KiB request/response round trips over our link (one channel per path)
 * while another connection of the same link saturates it, for `seconds`.
 *
 * @returns Every round-trip time, in ms.
 */
export type LinkRoundTrips = (lab: Lab, options: SlotOptions) => Promise<number[]>;

/** Our link's throughput over every path of the lab; `undefined` until the link exists. */
export const linkThroughput: LinkThroughput | undefined = undefined;

/** Our link's 1 KiB round trips under bulk load; `undefined` until the link exists. */
export const linkRoundTrips: LinkRoundTrips | undefined = undefined;

/**
 * The peers OpenHarmony's socket examples talk to, in place of their
 * placeholder ports: a TCP server and a UDP socket on 127.0.0.1, started by
 * `examples/api/examples_test.ts` (or by you: `EXAMPLE_TCP_PORT`,
 * `EXAMPLE_UDP_PORT`).
 *
 * @module
 */
import process from "node:process";

/** The TCP server's port. */
export const TCP_PEER_PORT: number = Number(process.env.EXAMPLE_TCP_PORT ?? "18080");
/** The UDP peer's port. */
export const UDP_PEER_PORT: number = Number(process.env.EXAMPLE_UDP_PORT ?? "18081");

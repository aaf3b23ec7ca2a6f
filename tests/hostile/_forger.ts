/**
 * The attacker of `tests/hostile/discovery_test.ts`: a process that sends
 * crafted UDP datagrams (built by the test) with plain `node:dgram`, and
 * optionally listens on TCP to count the dials it receives. Its job comes as
 * JSON in `LW_FORGER` ({@linkcode ForgerJob}), or in the file named by
 * `LW_FORGER=@<path>` (an environment string holds at most 128 KiB). It prints
 * `{"listening":true}` once its listener is up, `{"accepted":n}` at each TCP
 * connection, and `{"sent":n}` when every datagram went out; it stays up
 * (until killed) when it listens, else it exits.
 *
 * @module
 */
import { createSocket, type Socket } from "node:dgram";
import { readFileSync } from "node:fs";
import { createServer } from "node:net";
import process from "node:process";

/** One batch of datagrams from one source address. */
export interface ForgerSend {
  /** The source address to bind (an address of the attacker's namespace). */
  from: string;
  /** The destination: the group or a unicast address. */
  to: string;
  /** The destination port. */
  port: number;
  /** The datagrams, in hex. */
  hex: string[];
}

/** What the attacker does. */
export interface ForgerJob {
  /** The datagrams to send, in order. */
  sends: ForgerSend[];
  /** A pause after every datagram, in ms. @default {0} */
  everyMs?: number;
  /** Wait this long before sending, in ms. @default {0} */
  delayMs?: number;
  /** Listen on TCP here and count connections. */
  listen?: { host: string; port: number };
}

function bytes(hex: string): Uint8Array {
  const b = new Uint8Array(hex.length / 2);
  for (let i = 0; i < b.length; i++) b[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return b;
}

const raw = process.env.LW_FORGER ?? "{}";
const job = JSON.parse(raw.startsWith("@") ? readFileSync(raw.slice(1), "utf8") : raw) as ForgerJob;
if (job.listen !== undefined) {
  let accepted = 0;
  const server = createServer((s) => {
    console.log(JSON.stringify({ accepted: ++accepted }));
    s.on("error", () => {});
    s.on("data", () => {}); // read the victim's hello, answer nothing
  });
  await new Promise<void>((r) => server.listen(job.listen!.port, job.listen!.host, r));
  console.log(JSON.stringify({ listening: true }));
}
await new Promise((r) => setTimeout(r, job.delayMs ?? 0));
const sockets = new Map<string, Socket>();
let sent = 0;
for (const s of job.sends) {
  let sock = sockets.get(s.from);
  if (sock === undefined) {
    const created = createSocket({ type: "udp4" });
    await new Promise<void>((r) => created.bind(0, s.from, r));
    created.setMulticastTTL(1);
    created.on("error", () => {}); // ICMP errors of unicast sends
    sockets.set(s.from, created);
    sock = created;
  }
  for (const h of s.hex) {
    await new Promise<void>((r) => sock!.send(bytes(h), s.port, s.to, () => r()));
    sent++;
    if (job.everyMs) await new Promise((r) => setTimeout(r, job.everyMs));
  }
}
for (const s of sockets.values()) s.close();
console.log(JSON.stringify({ sent }));
if (job.listen === undefined) process.exit(0);

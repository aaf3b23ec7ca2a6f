/**
 * An impostor for the hostile suites: it claims device id `LW_ID` at the
 * victim `LW_HOST:LW_PORT` again and again (every `LW_EVERY` ms, default
 * 100), each time on a new connection with a new runtime nonce, and prints
 * the victim's answer, `{"at":ms,"op":"refuse","reason":...}`, until it is
 * welcomed: then it prints `{"at":ms,"op":"welcome"}`, closes and exits.
 *
 * @module
 */
import process from "node:process";
import { handshake, RawPeer } from "./_raw_peer.ts";

const host = process.env.LW_HOST ?? "127.0.0.1";
const port = Number(process.env.LW_PORT);
const id = process.env.LW_ID!;
const every = Number(process.env.LW_EVERY ?? 100);
for (;;) {
  try {
    const p = await RawPeer.connect(port, host);
    const h = await handshake(p, { id });
    console.log(JSON.stringify({ at: Date.now(), op: h.op, reason: h.reason }));
    p.destroy();
    if (h.op === "welcome") process.exit(0);
  } catch (e) {
    console.log(JSON.stringify({ at: Date.now(), error: (e as Error).message }));
  }
  await new Promise((r) => setTimeout(r, every));
}

/**
 * A linkEnhance device in its own process for the BLE suites, configured by
 * the usual `LINKWEAVE_*` variables (`DBUS_SYSTEM_BUS_ADDRESS` points at the
 * air mock's bus), driven by `LW_DEV_*`:
 *
 * - `LW_DEV_MODE=server`: starts server `LW_DEV_NAME` (`demo`); prints
 *   `accepted <peer>`, `data <len> <hex of the first 8 bytes>` per message
 *   (echoing it back with `LW_DEV_ECHO=1`), `disconnected <reason>`.
 * - `LW_DEV_MODE=client`: opens `LW_DEV_CONNS` (1) connections to server
 *   `LW_DEV_NAME` on `LW_DEV_PEER`; prints `result <i> <success> <reason>`.
 *   With `LW_DEV_MESSAGES=n` each connection sends n messages of 1..1024
 *   bytes (seeded by `LW_DEV_SEED` and its index), one at a time, and checks
 *   each echo: `ok <i> <digest>` when all came back intact, `mismatch <i> <k>`
 *   else. Without, it prints `data <i> <len> <hex prefix>` per message, and
 *   sends `LW_DEV_SEND` (hex) once `LW_DEV_SEND_AFTER` messages came, and
 *   stays connected. With messages, once all are back: `all ok`, then it
 *   disconnects and exits unless `LW_DEV_HOLD=1`. It prints
 *   `disconnected <i> <reason>` when a connection ends.
 *
 * @module
 */
import process from "node:process";
import { linkEnhance } from "../../mod.ts";
import { digest, values } from "../_bluez_data.ts";

const env = process.env;
const name = env.LW_DEV_NAME ?? "demo";
const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
const say = (line: string) => console.log(line);

if (env.LW_DEV_MODE === "server") {
  const server = linkEnhance.createServer(name);
  server.on("connectionAccepted", (c) => {
    say(`accepted ${c.getPeerDeviceId()}`);
    c.on("dataReceived", (d) => {
      const b = new Uint8Array(d);
      say(`data ${b.length} ${hex(b.subarray(0, 8))}`);
      if (env.LW_DEV_ECHO === "1") c.sendData(d.slice(0));
    });
    c.on("disconnected", (reason) => say(`disconnected ${reason}`));
  });
  server.start();
  say("serving");
} else {
  const conns = Number(env.LW_DEV_CONNS ?? 1);
  const messages = Number(env.LW_DEV_MESSAGES ?? 0);
  const seed = Number(env.LW_DEV_SEED ?? 1);
  let done = 0;
  const finished = () => {
    if (++done < conns) return;
    say("all ok");
    if (env.LW_DEV_HOLD !== "1") { for (const c of all) c.disconnect(); }
  };
  const all: linkEnhance.Connection[] = [];
  for (let i = 0; i < conns; i++) {
    const c = linkEnhance.createConnection(env.LW_DEV_PEER!, name);
    all.push(c);
    const sent = values(seed * 100 + i, messages, 1024);
    const got: Uint8Array[] = [];
    c.on("connectResult", (r) => {
      say(`result ${i} ${r.success} ${r.reason}`);
      if (messages === 0) return;
      if (!r.success) return finished();
      c.sendData(sent[0].slice().buffer);
    });
    c.on("dataReceived", (d) => {
      const b = new Uint8Array(d);
      if (messages === 0) {
        say(`data ${i} ${b.length} ${hex(b.subarray(0, 8))}`);
        got.push(b);
        if (env.LW_DEV_SEND !== undefined && got.length === Number(env.LW_DEV_SEND_AFTER ?? 0)) {
          const out = Uint8Array.from(env.LW_DEV_SEND.match(/../g)!, (h) => parseInt(h, 16));
          c.sendData(out.buffer);
          say(`sent ${i} ${env.LW_DEV_SEND}`);
        }
        return;
      }
      const k = got.length;
      got.push(b);
      if (hex(b) !== hex(sent[k])) {
        say(`mismatch ${i} ${k}`);
        return;
      }
      if (got.length < messages) c.sendData(sent[got.length].slice().buffer);
      else {
        say(`ok ${i} ${digest(got)}`);
        finished();
      }
    });
    c.on("disconnected", (reason) => say(`disconnected ${i} ${reason}`));
    c.connect();
  }
}

/**
 * A device process for the network-namespace test: configured by
 * `LINKWEAVE_*` (bound to its namespace's address, discovery on), it starts
 * server "svc", opens 5 connections to each device in `LW_OTHERS` at once,
 * then tries one more, and prints one JSON line with the outcome. It stays
 * up (its server keeps it alive) until killed.
 *
 * @module
 */
import process from "node:process";
import { createDevice } from "../link_enhance.ts";
import type { ConnectResult } from "../link_enhance.ts";

const dev = createDevice();
const server = dev.createServer("svc");
let accepted = 0;
server.on("connectionAccepted", () => accepted++);
server.start();
await dev.runtime();
const others = (process.env.LW_OTHERS ?? "").split(",");
const conns = others.flatMap((id) =>
  Array.from({ length: 5 }, () => dev.createConnection(id, "svc"))
);
const results = await Promise.all(conns.map((c) =>
  new Promise<ConnectResult>((resolve) => {
    c.on("connectResult", resolve);
    c.connect();
  })
));
let eleventh = 0;
try {
  dev.createConnection(others[0], "svc").connect();
} catch (e) {
  eleventh = (e as { code: number }).code;
}
const runtime = await dev.runtime();
console.log(JSON.stringify({
  id: runtime.deviceId,
  ok: results.filter((r) => r.success).length,
  failed: results.filter((r) => !r.success).map((r) => r.reason),
  eleventh,
  links: [...runtime.links()],
}));
setInterval(() => console.log(JSON.stringify({ accepted })), 200);

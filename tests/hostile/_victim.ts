/**
 * The device under attack in `tests/hostile/link_test.ts`: configured by
 * `LINKWEAVE_*` (its id, port, limits, timeouts), it starts a linkEnhance
 * server "echo" that sends every message back, and prints one JSON line per
 * thing a test watches: `{"ready":true,"id":...,"port":...}` once listening,
 * `{"ev":"accepted","peer":...}` and `{"ev":"disconnected","peer":...,
 * "reason":...}` for its connections, `{"ev":"serverStopped",...}` if its
 * server dies, and `{"links":n}` whenever the number of its links changes.
 * It runs until killed.
 *
 * @module
 */
import { createDevice } from "../../link_enhance.ts";

const out = (o: Record<string, unknown>) => console.log(JSON.stringify(o));
const dev = createDevice();
const server = dev.createServer("echo");
server.on("connectionAccepted", (c) => {
  const peer = c.getPeerDeviceId();
  out({ ev: "accepted", peer });
  c.on("dataReceived", (d) => {
    try {
      c.sendData(d);
    } catch {
      // a full send queue: the echo is dropped
    }
  });
  c.on("disconnected", (reason) => out({ ev: "disconnected", peer, reason }));
});
server.on("serverStopped", (reason) => out({ ev: "serverStopped", reason }));
server.start();
const runtime = await dev.runtime();
out({ ready: true, id: runtime.deviceId, port: runtime.port });
let links = 0;
setInterval(() => {
  const n = runtime.links().size;
  if (n !== links) out({ links: links = n });
}, 20);

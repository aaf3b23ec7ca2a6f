/**
 * A device process for the multi-process linkEnhance tests: configured by
 * `LINKWEAVE_*`, it starts an echo server named "echo" and prints
 * `{"ready": port}` once listening.
 *
 * @module
 */
import { createDevice } from "../link_enhance.ts";

const dev = createDevice();
const server = dev.createServer("echo");
server.on("connectionAccepted", (conn) => {
  conn.on("dataReceived", (data) => conn.sendData(data));
});
server.start();
const runtime = await dev.runtime();
console.log(JSON.stringify({ ready: runtime.port, id: runtime.deviceId }));

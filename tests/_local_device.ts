/**
 * A device with no configuration at all, for `local_devices_test.ts`: it
 * starts server "echo" (echoing every message), prints
 * `{"ready":true,"id":...,"port":...}`, and, when `LW_TARGET` names another
 * device's id (test plumbing, not linkweave configuration), connects to that
 * device's "echo" server, sends "hello from <id>", prints
 * `{"echo":...,"peer":...}` (or `{"failed":reason}`), closes the device and
 * exits. Without `LW_TARGET` it runs until killed.
 *
 * @module
 */
import process from "node:process";
import { createDevice } from "../link_enhance.ts";
import type { ConnectResult } from "../link_enhance.ts";

const dev = createDevice();
const server = dev.createServer("echo");
server.on("connectionAccepted", (c) => c.on("dataReceived", (d) => c.sendData(d)));
server.start();
const runtime = await dev.runtime();
console.log(JSON.stringify({ ready: true, id: runtime.deviceId, port: runtime.port }));

const target = process.env.LW_TARGET;
if (target !== undefined && target !== "") {
  const conn = dev.createConnection(target, "echo");
  const result = await new Promise<ConnectResult>((resolve) => {
    conn.on("connectResult", resolve);
    conn.connect();
  });
  if (!result.success) {
    console.log(JSON.stringify({ failed: result.reason }));
  } else {
    const echo = new Promise<string>((resolve) =>
      conn.on("dataReceived", (d) => resolve(new TextDecoder().decode(d)))
    );
    conn.sendData(new TextEncoder().encode(`hello from ${runtime.deviceId}`).buffer);
    console.log(JSON.stringify({ echo: await echo, peer: conn.getPeerDeviceId() }));
    console.log(JSON.stringify({ known: dev.knownDevices() }));
  }
  conn.close();
  server.close();
  await dev.close();
  process.exit(0);
}

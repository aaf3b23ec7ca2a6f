/**
 * A linkEnhance device for `tests/hostile/discovery_test.ts`, configured by
 * `LINKWEAVE_*` (its id, its bind address; discovery on). It starts server
 * "echo" and prints `{"ready":true,"id":...,"port":...}`. With
 * `LW_CONNECT=<id>` it then waits `LW_DELAY` ms (default 0) and opens a
 * connection to that device's "echo" server `LW_COUNT` times (default 5),
 * one every `LW_EVERY` ms (default 300), sends a message on each, waits for the echo, and prints
 * `{"attempt":n,"ok":true,"echo":...}` or `{"attempt":n,"ok":false,"reason":...}`,
 * then `{"done":true}`. It runs until killed.
 *
 * @module
 */
import process from "node:process";
import { createDevice } from "../../link_enhance.ts";
import type { ConnectResult } from "../../link_enhance.ts";

const dev = createDevice();
const server = dev.createServer("echo");
server.on("connectionAccepted", (c) => c.on("dataReceived", (d) => c.sendData(d)));
server.start();
const runtime = await dev.runtime();
console.log(JSON.stringify({ ready: true, id: runtime.deviceId, port: runtime.port }));

const target = process.env.LW_CONNECT;
if (target !== undefined && target !== "") {
  const count = Number(process.env.LW_COUNT ?? 5);
  const every = Number(process.env.LW_EVERY ?? 300);
  await new Promise((res) => setTimeout(res, Number(process.env.LW_DELAY ?? 0)));
  for (let n = 1; n <= count; n++) {
    const conn = dev.createConnection(target, "echo");
    const r = await new Promise<ConnectResult>((resolve) => {
      conn.on("connectResult", resolve);
      conn.connect();
    });
    if (!r.success) {
      console.log(JSON.stringify({ attempt: n, ok: false, reason: r.reason }));
    } else {
      const echo = new Promise<string>((resolve) =>
        conn.on("dataReceived", (d) => resolve(new TextDecoder().decode(d)))
      );
      conn.sendData(new TextEncoder().encode(`ping ${n}`).buffer);
      console.log(
        JSON.stringify({ attempt: n, ok: true, echo: await echo, peer: conn.getPeerDeviceId() }),
      );
    }
    conn.close();
    await new Promise((res) => setTimeout(res, every));
  }
  console.log(JSON.stringify({ done: true }));
}

/**
 * A sender that breaks the file transfer of `linkweave send` on purpose, for
 * the tests of `linkweave receive`: `corrupt` sends the header of the file
 * then its content with one byte flipped; `short` announces the file's size
 * then sends half of it and closes. Prints the receiver's last answer.
 *
 * Usage: `_bad_sender.ts corrupt|short FILE PEER-ID HOST:PORT NAME`
 * (this device: `02:00:00:00:CB:AD`, port 0).
 *
 * @module
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { basename } from "node:path";
import process from "node:process";
import { createDevice, MAX_SEND_DATA } from "../../link_enhance.ts";

const [mode, file, peer, address, name] = process.argv.slice(2);
const content = new Uint8Array(readFileSync(file));
const header = {
  linkweave: "file",
  v: 1,
  name: basename(file),
  size: content.length,
  sha256: createHash("sha256").update(content).digest("hex"),
};
const body = mode === "short" ? content.slice(0, content.length >> 1) : content.slice();
if (mode === "corrupt") body[body.length >> 1] ^= 0x40;

const device = createDevice({
  deviceId: "02:00:00:00:CB:AD",
  port: 0,
  peers: [`${peer}@${address}`],
});
const conn = device.createConnection(peer, name);
let last = "";
const ended = new Promise<void>((resolve) => {
  conn.on("dataReceived", (d) => {
    last = new TextDecoder().decode(d);
    if (last.includes('"ok"')) resolve();
  });
  conn.on("disconnected", () => resolve());
});
const ok = await new Promise<boolean>((resolve) => {
  conn.on("connectResult", (r) => resolve(r.success));
  conn.connect();
});
if (!ok) {
  console.error("bad sender: cannot connect");
  process.exit(1);
}
const send = async (bytes: Uint8Array) => {
  while (conn.bufferedAmount > 512 * 1024) await new Promise((r) => setTimeout(r, 5));
  conn.sendData(bytes.slice().buffer as ArrayBuffer);
};
await send(new TextEncoder().encode(JSON.stringify(header)));
for (let at = 0; at < body.length; at += MAX_SEND_DATA) {
  await send(body.subarray(at, at + MAX_SEND_DATA));
}
if (mode === "short") {
  while (conn.bufferedAmount > 0) await new Promise((r) => setTimeout(r, 5));
  conn.close();
} else {
  await Promise.race([ended, new Promise((r) => setTimeout(r, 10_000))]);
}
console.log(last);
await device.close();
process.exit(0);

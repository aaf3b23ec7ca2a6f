/**
 * A collector: serves `sensors` on this machine's device and prints every
 * reading sensor boards send it, one line each, and a summary line when a
 * board goes away. It runs until stopped (Ctrl-C).
 *
 * On one machine (the board finds the collector through the local registry):
 *
 * ```sh
 * LINKWEAVE_DEVICE_ID=02:00:00:00:5E:01 deno run -A examples/sensor_collector.ts
 * LINKWEAVE_DEVICE_ID=02:00:00:00:5E:02 deno run -A examples/sensor_board.ts 02:00:00:00:5E:01
 * ```
 *
 * Between two machines, both need the same account secret and the collector
 * must listen off loopback; the board names the collector's address:
 *
 * ```sh
 * # collector (192.0.2.10)
 * LINKWEAVE_ACCOUNT_FILE=/etc/linkweave/account LINKWEAVE_BIND=0.0.0.0 \
 *   LINKWEAVE_DEVICE_ID=02:00:00:00:5E:01 deno run -A examples/sensor_collector.ts
 * # board
 * LINKWEAVE_ACCOUNT_FILE=/etc/linkweave/account LINKWEAVE_PEERS=02:00:00:00:5E:01@192.0.2.10:38470 \
 *   deno run -A examples/sensor_board.ts 02:00:00:00:5E:01
 * ```
 *
 * Each reading is one message of at most 1024 bytes (the API's limit): a
 * JSON object `{ seq, at, load1, memFreeMiB, celsius }`. A message that is
 * not such an object is counted as bad and skipped; the collector keeps no
 * more than the last reading per board (memory it holds is one summary per
 * connected board, at most the device's limit of accepted connections).
 *
 * @module
 */
import process from "node:process";
import { linkEnhance } from "../mod.ts";

/** One reading, as `examples/sensor_board.ts` sends it. */
interface Reading {
  seq: number;
  at: number;
  load1: number;
  memFreeMiB: number;
  celsius: number | null;
}

function parse(data: ArrayBuffer): Reading | undefined {
  try {
    const r = JSON.parse(new TextDecoder().decode(data)) as Reading;
    const ok = typeof r === "object" && r !== null && Number.isInteger(r.seq) &&
      typeof r.at === "number" && typeof r.load1 === "number" &&
      typeof r.memFreeMiB === "number" && (r.celsius === null || typeof r.celsius === "number");
    return ok ? r : undefined;
  } catch {
    return undefined;
  }
}

const server = linkEnhance.createServer("sensors");
server.on("connectionAccepted", (conn) => {
  const board = conn.getPeerDeviceId();
  let readings = 0;
  let bad = 0;
  let last: Reading | undefined;
  console.log(`board ${board} connected`);
  conn.on("dataReceived", (data) => {
    const r = parse(data);
    if (r === undefined) {
      bad++;
      return;
    }
    readings++;
    last = r;
    const celsius = r.celsius === null ? "-" : r.celsius.toFixed(1);
    console.log(
      `reading board=${board} seq=${r.seq} load1=${r.load1.toFixed(2)} ` +
        `memFreeMiB=${r.memFreeMiB} celsius=${celsius}`,
    );
  });
  conn.on("disconnected", () => {
    const upTo = last === undefined ? "" : `, last seq ${last.seq}`;
    console.log(`board ${board} gone after ${readings} readings${upTo}, ${bad} bad`);
    conn.close();
  });
});
server.on("serverStopped", (reason) => {
  console.error(`the collector stopped (reason ${reason})`);
  process.exit(1);
});
server.start();
console.log(`collector serving "sensors"`);

/**
 * A sensor board: reads this machine's load, free memory and (where the
 * kernel has one) its first thermal zone, and sends one reading per interval
 * to a collector (`examples/sensor_collector.ts`, which says how to run the
 * two) over a linkEnhance connection named `sensors`.
 *
 * ```sh
 * deno run -A examples/sensor_board.ts COLLECTOR_ID [--interval MS] [--count N]
 * ```
 *
 * `--interval` defaults to 1000 ms; with `--count N` the board sends N
 * readings, disconnects (the collector gets every one of them first) and
 * exits; without, it runs until stopped. When the collector cannot be reached
 * or goes away, the board says so and tries again after 2 s; readings taken
 * meanwhile are not kept (a sensor's reading is only worth its moment).
 *
 * @module
 */
import { readFileSync } from "node:fs";
import { freemem, loadavg } from "node:os";
import process from "node:process";
import { linkEnhance } from "../mod.ts";

function option(name: string, fallback: number): number {
  const at = process.argv.indexOf(name);
  if (at < 0) return fallback;
  const n = Number(process.argv[at + 1]);
  if (!Number.isInteger(n) || n <= 0) {
    console.error(`Invalid ${name} "${process.argv[at + 1]}": expected a positive integer`);
    process.exit(2);
  }
  return n;
}

const collector = process.argv.slice(2).find((a, i, all) =>
  !a.startsWith("--") && !(all[i - 1] ?? "").startsWith("--")
);
if (collector === undefined) {
  console.error("Usage: sensor_board.ts COLLECTOR_ID [--interval MS] [--count N]");
  process.exit(2);
}
const interval = option("--interval", 1000);
const count = process.argv.includes("--count") ? option("--count", 1) : Infinity;

/** The first thermal zone in degrees Celsius, or `null` where there is none. */
function celsius(): number | null {
  try {
    return Number(readFileSync("/sys/class/thermal/thermal_zone0/temp", "utf8")) / 1000;
  } catch {
    return null;
  }
}

let seq = 0;
let timer: ReturnType<typeof setInterval> | undefined;

function run(): void {
  const conn = linkEnhance.createConnection(collector!, "sensors");
  conn.on("connectResult", (r) => {
    if (!r.success) {
      console.error(`cannot reach ${collector} (${r.reason}); trying again in 2 s`);
      conn.close();
      setTimeout(run, 2000);
      return;
    }
    console.log(`connected to ${collector}`);
    timer = setInterval(() => {
      const reading = {
        seq: ++seq,
        at: Date.now(),
        load1: loadavg()[0],
        memFreeMiB: Math.round(freemem() / 2 ** 20),
        celsius: celsius(),
      };
      try {
        conn.sendData(new TextEncoder().encode(JSON.stringify(reading)).buffer);
      } catch (e) {
        console.error(`reading ${seq} dropped: ${(e as Error).message}`);
      }
      if (seq >= count) {
        clearInterval(timer);
        console.log(`sent ${seq} readings`);
        conn.close(); // what was sent still reaches the collector first
      }
    }, interval);
  });
  conn.on("disconnected", () => {
    clearInterval(timer);
    console.error(`${collector} went away; trying again in 2 s`);
    conn.close();
    setTimeout(run, 2000);
  });
  conn.connect();
}

run();

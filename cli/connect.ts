/**
 * `linkweave connect DEVICE NAME`: netcat's connecting side for linkEnhance.
 *
 * @module
 */
import { DisconnectReason } from "../mod.ts";
import { parseArgs, positionals } from "./_args.ts";
import {
  connectTo,
  DEVICE_HELP,
  DEVICE_OPTIONS,
  explainCode,
  onInterrupt,
  sendPaced,
  startDevice,
} from "./_device.ts";
import { dataLine, eventLine, pumpLines } from "./_netcat.ts";
import { meters } from "./_snapshot.ts";
import type { Command, Io } from "./mod.ts";

const HELP = `Usage: linkweave connect [options] DEVICE NAME

Connects to the linkEnhance server NAME on the device DEVICE (its id,
AA:BB:CC:DD:EE:FF). Every line of standard input is sent as one message (a
line over 1024 bytes as several); every message received is written to
standard output as it came. At the end of input the connection closes once
everything was handed over (the peer receives all of it), and the command
exits; it also exits when the peer disconnects.

A failed connect says what its code means:
  32390200  no answer before the connect timeout (not running, not found: see
            linkweave devices, or give --peer ID@HOST:PORT)
  32390201  the device has no started server NAME
  32390204  this device's limit of client connections is reached
  32390300  refused: another account or not paired, a changed key, a limit
A lost connection too: -425918059 the peer closed it, -425918060 the link was
lost.

Options:
  --wait       at the end of input, stay until the peer disconnects
  --json       one JSON line per event and message on standard output:
                 {"event":"connected","peer":"ID","ms":N}
                 {"event":"data","peer":"ID","bytes":N,"text":"..."}  (or "base64")
                 {"event":"disconnected","peer":"ID","reason":CODE}
${DEVICE_HELP}
Exit codes: 0 end of input or the peer disconnected, 1 the connect failed or
the link was lost, 2 wrong usage (a malformed DEVICE or NAME too).
`;

async function run(args: string[], io: Io): Promise<number> {
  const p = parseArgs(args, { ...DEVICE_OPTIONS, wait: {}, json: {} });
  const [peer, name] = positionals(p, ["DEVICE", "NAME"]) as [string, string];
  const json = p.flags.has("json");
  const { device } = await startDevice(p, io, "connect");
  const t0 = performance.now();
  let conn;
  try {
    conn = await connectTo(device, { peer, name });
  } catch (e) {
    await device.close();
    throw e;
  }
  const id = conn.getPeerDeviceId();
  const ms = Math.round(performance.now() - t0);
  const meter = meters.open(conn, { peer: id, name, role: "client", use: "netcat" });
  if (json) io.stdout(eventLine("connected", { peer: id, ms }));
  io.stderr(`linkweave connect: connected to "${name}" on ${id} in ${ms} ms\n`);
  let finish!: (code: number) => void;
  const finished = new Promise<number>((resolve) => finish = resolve);
  conn.on("dataReceived", (data) => {
    meter.received += data.byteLength;
    io.stdout(json ? dataLine(id, data) : new Uint8Array(data));
  });
  conn.on("disconnected", (reason) => {
    meter.closed = true;
    if (json) io.stdout(eventLine("disconnected", { peer: id, reason }));
    io.stderr(`linkweave connect: disconnected: ${explainCode(reason, { peer: id, name })}\n`);
    finish(reason === DisconnectReason.PEER_DISCONNECTED ? 0 : 1);
  });
  const undo = onInterrupt(() => finish(0));
  void pumpLines(io, async (message) => {
    await sendPaced(conn, message);
    meter.sent += message.length;
  }).then(
    () => {
      if (!p.flags.has("wait")) finish(0);
    },
    (e) => {
      // Not connected any more: disconnected says why. Anything else is ours.
      if (conn.toJSON().state !== "connected") return;
      io.stderr(`linkweave connect: cannot send: ${(e as Error).message}\n`);
      finish(1);
    },
  );
  const code = await finished;
  undo();
  meter.closed = true;
  conn.close(); // what was accepted still reaches the peer first
  await device.close();
  return code;
}

/** The `connect` command. */
export const connectCommand: Command = {
  name: "connect",
  summary: "connect to a linkEnhance server: stdin lines to the peer, received data to stdout",
  help: HELP,
  run,
};

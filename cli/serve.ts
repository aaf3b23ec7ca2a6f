/**
 * `linkweave serve NAME`: netcat's listening side for linkEnhance. Starts
 * server NAME; what peers send goes to stdout, lines of stdin go to every
 * connected peer.
 *
 * @module
 */
import type { Connection, Server } from "../link_enhance.ts";
import { DisconnectReason } from "../mod.ts";
import { parseArgs, positionals, UsageError } from "./_args.ts";
import { startBenchServer } from "./bench.ts";
import {
  DEVICE_HELP,
  DEVICE_OPTIONS,
  explainCode,
  onInterrupt,
  sendPaced,
  startDevice,
} from "./_device.ts";
import { dataLine, eventLine, pumpLines } from "./_netcat.ts";
import { type Meter, meters } from "./_snapshot.ts";
import type { Command, Io } from "./mod.ts";

const HELP = `Usage: linkweave serve [options] NAME

Starts the linkEnhance server NAME on this device and waits for peers to
connect (\`linkweave connect THIS-DEVICE NAME\`, or any linkEnhance app).
Every message a peer sends is written to standard output as it came. Every
line of standard input is sent to each connected peer as one message (a line
over 1024 bytes as several). Connections and disconnections are reported on
standard error, with what the reason code means. Runs until interrupted.

The device also answers \`linkweave bench\` (server "linkweave.bench").

Options:
  --once       exit when the first connection ends
  --json       one JSON line per event and message on standard output:
                 {"event":"connected","peer":"ID"}
                 {"event":"data","peer":"ID","bytes":N,"text":"..."}  (or "base64")
                 {"event":"disconnected","peer":"ID","reason":CODE}
  --no-bench   do not answer linkweave bench
${DEVICE_HELP}
Exit codes: 0 stopped (with --once: the peer disconnected), 1 the device or the
server could not start (the code explained), or with --once the link was
lost, 2 wrong usage.
`;

async function run(args: string[], io: Io): Promise<number> {
  const p = parseArgs(args, {
    ...DEVICE_OPTIONS,
    once: {},
    json: {},
    "no-bench": {},
  });
  const [name] = positionals(p, ["NAME"]) as [string];
  const json = p.flags.has("json");
  const { device } = await startDevice(p, io, "serve");
  let server: Server;
  try {
    server = device.createServer(name);
  } catch (e) {
    await device.close();
    const code = (e as { code?: number }).code;
    if (code === 32390206) throw new UsageError((e as Error).message);
    throw new Error(`Cannot create server "${name}": ${explainCode(code ?? 0, { name })}`);
  }
  const open = new Map<Connection, Meter>();
  let stop!: (code: number) => void;
  const stopped = new Promise<number>((resolve) => stop = resolve);
  server.on("serverStopped", (reason) => {
    io.stderr(`linkweave serve: server "${name}" stopped: ${explainCode(reason, { name })}\n`);
    stop(1);
  });
  server.on("connectionAccepted", (conn) => {
    const peer = conn.getPeerDeviceId();
    const meter = meters.open(conn, { peer, name, role: "server", use: "netcat" });
    open.set(conn, meter);
    if (json) io.stdout(eventLine("connected", { peer }));
    io.stderr(`linkweave serve: ${peer} connected\n`);
    conn.on("dataReceived", (data) => {
      meter.received += data.byteLength;
      io.stdout(json ? dataLine(peer, data) : new Uint8Array(data));
    });
    conn.on("disconnected", (reason) => {
      meter.closed = true;
      open.delete(conn);
      if (json) io.stdout(eventLine("disconnected", { peer, reason }));
      io.stderr(`linkweave serve: ${peer} disconnected: ${explainCode(reason, { peer, name })}\n`);
      conn.close();
      if (p.flags.has("once")) stop(reason === DisconnectReason.PEER_DISCONNECTED ? 0 : 1);
    });
  });
  try {
    server.start();
  } catch (e) {
    await device.close();
    const code = (e as { code?: number }).code ?? 0;
    throw new Error(`Cannot start server "${name}": ${explainCode(code, { name })}`);
  }
  const bench = p.flags.has("no-bench") ? undefined : startBenchServer(device, io);
  io.stderr(`linkweave serve: serving "${name}"\n`);
  const undo = onInterrupt(() => stop(0));
  // Lines of stdin go to every connected peer; end of input only ends sending.
  void pumpLines(io, async (message) => {
    for (const [conn, meter] of open) {
      try {
        await sendPaced(conn, message);
        meter.sent += message.length;
      } catch {
        // It went away meanwhile: its disconnected event says so.
      }
    }
  }).catch(() => {});
  const code = await stopped;
  undo();
  for (const conn of open.keys()) conn.close();
  server.close();
  bench?.close();
  await device.close();
  return code;
}

/** The `serve` command. */
export const serveCommand: Command = {
  name: "serve",
  summary: "start a linkEnhance server: received data to stdout, stdin lines to peers",
  help: HELP,
  run,
};

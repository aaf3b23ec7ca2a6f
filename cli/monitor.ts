/**
 * `linkweave monitor`: a device whose links, channels and connections are
 * shown live, in the terminal or (`--web`) on a page served on loopback
 * with throughput charts, both from the one snapshot of `_snapshot.ts`.
 *
 * @module
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { intOption, parseArgs, positionals, secondsOption } from "./_args.ts";
import { startBenchServer } from "./bench.ts";
import { DEVICE_HELP, DEVICE_OPTIONS, onInterrupt, startDevice } from "./_device.ts";
import { formatBytes, formatRate } from "./_progress.ts";
import { ChannelRates, type MonitorSnapshot, probeRtt, snapshot } from "./_snapshot.ts";
import { PAGE } from "./_monitor_page.ts";
import type { Command, Io } from "./mod.ts";

const HELP = `Usage: linkweave monitor [options]

Starts this device, answers \`linkweave bench\` (server "linkweave.bench") and
shows, once per --interval, its links (peer, channels, round trip, rates of
this process's connections over it) and this process's connections (peer,
server name, role, use, rates, bytes, send queue). A peer makes traffic to
watch with \`linkweave bench THIS-DEVICE\`.

The view is redrawn in place on a terminal, and printed as blocks otherwise.
With --json, one snapshot per line instead:
  {"v":1,"at":MS,"device":{"id","port","bind"},
   "links":[{"peer","rtt","txRate","rxRate","sent","received",
             "channels":[{"id","kind","rtt","txRate","rxRate","inFlight","health"}]}],
   "connections":[{"peer","name","role","use","state","sent","received",
                   "txRate","rxRate","buffered"}]}
(rates in bytes/s, times in ms; a channel's rates are null in the first
snapshot, its figures null where the device keeps none). The link's round trip is the time an open of a server
nobody runs ("linkweave.probe") takes to be refused on the live link.

With --web, also serves a page on http://127.0.0.1:PORT/ (loopback only;
requests naming another host are refused): live throughput charts per link
and channel and the tables, from the same snapshots as JSON over
server-sent events (/events, the last 120 first) and the latest (/snapshot).

Options:
  --interval S     time between snapshots (0.2..60, default 1)
  --count N        stop after N snapshots (default: run until interrupted)
  --json           one JSON snapshot per line on standard output
  --web            serve the page on loopback
  --web-port N     its port (0: any free port, the default; the URL is printed)
${DEVICE_HELP}
Exit codes: 0 stopped, 1 the device or the page could not start, 2 wrong usage.
`;

/**
 * The snapshot as text lines.
 *
 * @param s The snapshot.
 * @returns The view.
 */
export function renderView(s: MonitorSnapshot): string {
  const ms = (v: number | null) => v === null ? "-" : `${v.toFixed(2)} ms`;
  const rate = (v: number | null) => v === null ? "-" : formatRate(v);
  const table = (head: string[], rows: string[][]) => {
    const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
    return [head, ...rows].map((r) => `  ${r.map((c, i) => c.padEnd(w[i])).join("  ")}`.trimEnd());
  };
  const out = [
    `linkweave monitor: device ${s.device.id} on ${s.device.bind}:${s.device.port}, ${
      new Date(s.at).toISOString().slice(11, 19)
    }`,
    "",
    `Links (${s.links.length})`,
  ];
  if (s.links.length > 0) {
    const rows: string[][] = [];
    for (const l of s.links) {
      rows.push([
        l.peer,
        String(l.channels.length),
        ms(l.rtt),
        rate(l.txRate),
        rate(l.rxRate),
        formatBytes(l.sent),
        formatBytes(l.received),
      ]);
      for (const c of l.channels) {
        rows.push([
          `  channel ${c.id} ${c.kind ?? ""}`.trimEnd(),
          c.health ?? "-",
          ms(c.rtt),
          rate(c.txRate),
          rate(c.rxRate),
          c.inFlight === null ? "-" : `${formatBytes(c.inFlight)} in flight`,
          "",
        ]);
      }
    }
    out.push(...table(["PEER", "CH", "RTT", "TX", "RX", "SENT", "RECEIVED"], rows));
  }
  out.push("", `Connections (${s.connections.length})`);
  if (s.connections.length > 0) {
    out.push(...table(
      ["PEER", "NAME", "ROLE", "USE", "STATE", "TX", "RX", "SENT", "RECEIVED", "QUEUED"],
      s.connections.map((c) => [
        c.peer,
        c.name,
        c.role,
        c.use,
        c.state,
        rate(c.txRate),
        rate(c.rxRate),
        formatBytes(c.sent),
        formatBytes(c.received),
        formatBytes(c.buffered),
      ]),
    ));
  }
  return `${out.join("\n")}\n`;
}

/** How many past snapshots a page receives when it opens (its charts' width). */
export const WEB_HISTORY = 120;

/** The page's server: the page, one snapshot, and the snapshots as server-sent events. */
class WebView {
  #clients = new Set<ServerResponse>();
  #history: string[] = [];
  #server = createServer((req, res) => this.#handle(req, res));
  #port = 0;

  /**
   * Listen on 127.0.0.1.
   *
   * @param port The port (0: any).
   * @returns The port.
   */
  listen(port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.#server.once("error", reject);
      this.#server.listen(port, "127.0.0.1", () => {
        this.#port = (this.#server.address() as AddressInfo).port;
        resolve(this.#port);
      });
    });
  }

  /**
   * Send a snapshot to every open page.
   *
   * @param s The snapshot.
   */
  publish(s: MonitorSnapshot): void {
    const event = `data: ${JSON.stringify(s)}\n\n`;
    this.#history.push(event);
    if (this.#history.length > WEB_HISTORY) this.#history.shift();
    for (const res of this.#clients) res.write(event);
  }

  /** Stop serving. */
  close(): Promise<void> {
    for (const res of this.#clients) res.end();
    this.#clients.clear();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    // Loopback only, and only under a loopback name: a page elsewhere that
    // rebinds its own name to 127.0.0.1 must not read the snapshots.
    const hosts = [`127.0.0.1:${this.#port}`, `localhost:${this.#port}`];
    if (!hosts.includes(req.headers.host ?? "")) {
      res.writeHead(403, { "content-type": "text/plain" }).end("Forbidden: use 127.0.0.1\n");
      return;
    }
    const path = (req.url ?? "/").split("?")[0];
    if (req.method !== "GET") {
      res.writeHead(405, { allow: "GET" }).end();
    } else if (path === "/") {
      res.writeHead(200, {
        "content-type": "text/html; charset=utf-8",
        "cache-control": "no-store",
        "content-security-policy": "default-src 'self'; script-src 'unsafe-inline'; " +
          "style-src 'unsafe-inline'",
      }).end(PAGE);
    } else if (path === "/snapshot") {
      res.writeHead(200, { "content-type": "application/json", "cache-control": "no-store" })
        .end(this.#history.at(-1)?.slice(6, -2) ?? "null");
    } else if (path === "/events") {
      res.writeHead(200, {
        "content-type": "text/event-stream",
        "cache-control": "no-store",
        connection: "keep-alive",
      });
      res.write(": linkweave monitor\n\n");
      // The recent past first, so a page opened now draws its charts at once.
      res.write(this.#history.join(""));
      this.#clients.add(res);
      req.on("close", () => this.#clients.delete(res));
    } else {
      res.writeHead(404, { "content-type": "text/plain" }).end("Not found\n");
    }
  }
}

async function run(args: string[], io: Io): Promise<number> {
  const p = parseArgs(args, {
    ...DEVICE_OPTIONS,
    interval: { value: true },
    count: { value: true },
    json: {},
    web: {},
    "web-port": { value: true },
  });
  positionals(p, []);
  const interval = secondsOption(p, "interval", { min: 0.2, max: 60, default: 1 });
  const count = intOption(p, "count", { min: 1, max: Number.MAX_SAFE_INTEGER, default: 0 });
  const webPort = intOption(p, "web-port", { min: 0, max: 65535, default: 0 });
  const json = p.flags.has("json");
  const { device, runtime } = await startDevice(p, io, "monitor");
  const bench = startBenchServer(device, io);
  let web: WebView | undefined;
  if (p.flags.has("web")) {
    web = new WebView();
    try {
      const port = await web.listen(webPort);
      io.stderr(`linkweave monitor: web view on http://127.0.0.1:${port}/\n`);
    } catch (e) {
      bench?.close();
      await device.close();
      throw new Error(`Cannot serve the page on 127.0.0.1:${webPort}: ${(e as Error).message}`);
    }
  }
  const rtts = new Map<string, number>();
  const channelRates = new ChannelRates();
  let probing = false;
  const probe = async () => {
    if (probing) return;
    probing = true;
    try {
      for (const peer of runtime.links().keys()) {
        const ms = await probeRtt(device, peer, Math.max(500, interval));
        if (ms === undefined) rtts.delete(peer);
        else rtts.set(peer, ms);
      }
      for (const peer of rtts.keys()) if (!runtime.links().has(peer)) rtts.delete(peer);
    } finally {
      probing = false;
    }
  };
  let stop!: () => void;
  const stopped = new Promise<void>((resolve) => stop = resolve);
  const undo = onInterrupt(() => stop());
  let taken = 0;
  const tick = () => {
    void probe();
    const s = snapshot(runtime, { rtts, stats: device.linkStats(), channelRates });
    web?.publish(s);
    if (json) io.stdout(`${JSON.stringify(s)}\n`);
    else if (io.tty) io.stdout(`\x1b[H\x1b[2J${renderView(s)}`);
    else io.stdout(`${renderView(s)}\n`);
    if (count > 0 && ++taken >= count) stop();
  };
  const timer = setInterval(tick, interval);
  tick();
  await stopped;
  clearInterval(timer);
  undo();
  await web?.close();
  bench?.close();
  await device.close();
  return 0;
}

/** The `monitor` command. */
export const monitorCommand: Command = {
  name: "monitor",
  summary: "live view of this device's links, channels and connections (--web: a page on loopback)",
  help: HELP,
  run,
};

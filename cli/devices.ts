/**
 * `linkweave devices`: the devices this one knows (discovered, trusted,
 * linked) as a table or JSON lines.
 *
 * @module
 */
import { hostname } from "node:os";
import { parseArgs, positionals, secondsOption } from "./_args.ts";
import { DEVICE_HELP, DEVICE_OPTIONS, hostPort, startDevice } from "./_device.ts";
import { formatMs } from "./_progress.ts";
import { probeRtt } from "./_snapshot.ts";
import type { Command, Io } from "./mod.ts";

const HELP = `Usage: linkweave devices [options]

Starts this device, listens for --wait seconds, and lists every device it
knows: found by discovery (other devices of this user on this machine, and
on the network by multicast when this one listens off loopback), trusted
(paired, or pinned in the account), and linked. This device comes first.

  ID                 NAME   TRUST    ADDRESSES                    TRANSPORTS  RTT
  02:00:00:00:00:0A  board  self     127.0.0.1:38470              ip          -
  02:00:00:00:00:0B  -      account  127.0.0.1:40211 (local)      ip          0.52 ms

NAME is the host name for this device; discovery carries no names, so
peers have none. TRUST: "account" (same account, key pinned), "paired", or
"-" (found, not yet linked). ADDRESSES: where discovery or pairing learned it
(local: this machine's registry; multicast; paired). TRANSPORTS: "ip" when an
IP address is known; a BLE peer is reached at its id. RTT: with --rtt, the time
an open takes to be answered on the link (a second open, after the first set
the link up); "-" otherwise or when it did not answer.

Options:
  --wait S     how long to listen before listing (0..60, default 1.5)
  --rtt        measure each device's round trip (opens a link to each)
  --json       one JSON line per device:
                 {"id","name","self","trust","addresses":[{"host","port","source"}],
                  "transports":["ip"],"linked":bool,"rtt":ms|null}
${DEVICE_HELP}
Exit codes: 0 done, 1 the device could not start, 2 wrong usage.
`;

/** One row. */
interface Row {
  id: string;
  name: string | null;
  self: boolean;
  trust: "self" | "account" | "paired" | null;
  addresses: { host: string; port: number; source: string }[];
  transports: string[];
  linked: boolean;
  rtt: number | null;
}

async function run(args: string[], io: Io): Promise<number> {
  const p = parseArgs(args, { ...DEVICE_OPTIONS, wait: { value: true }, rtt: {}, json: {} });
  positionals(p, []);
  const wait = secondsOption(p, "wait", { min: 0, max: 60, default: 1.5 });
  const { device, runtime } = await startDevice(p, io, "devices");
  try {
    await new Promise((r) => setTimeout(r, wait));
    const rows = new Map<string, Row>();
    const row = (id: string): Row => {
      let r = rows.get(id);
      if (r === undefined) {
        r = {
          id,
          name: null,
          self: false,
          trust: null,
          addresses: [],
          transports: [],
          linked: false,
          rtt: null,
        };
        rows.set(id, r);
      }
      return r;
    };
    const self = row(runtime.deviceId);
    self.self = true;
    self.name = hostname();
    self.trust = "self";
    if (runtime.port > 0) {
      self.addresses.push({ host: runtime.bind, port: runtime.port, source: "listening" });
    }
    for (const k of device.knownDevices()) {
      const r = row(k.deviceId);
      for (const a of k.addresses) {
        r.addresses.push({ host: a.host, port: a.port, source: a.source });
      }
    }
    const trusted = () => {
      for (const t of device.trustedDevices()) {
        const r = row(t.id);
        r.trust = t.how;
        if (t.address !== undefined && r.addresses.length === 0) {
          const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(t.address);
          if (m !== null) r.addresses.push({ host: m[1], port: Number(m[2]), source: "paired" });
        }
      }
    };
    trusted();
    for (const r of rows.values()) if (r.addresses.length > 0) r.transports = ["ip"];
    if (p.flags.has("rtt")) {
      await Promise.all(
        [...rows.values()].filter((r) => !r.self).map(async (r) => {
          // The first open sets the link up; the second is one round trip on it.
          if (await probeRtt(device, r.id) === undefined) return;
          const ms = await probeRtt(device, r.id);
          if (ms !== undefined) r.rtt = Math.round(ms * 1000) / 1000;
        }),
      );
    }
    // A link to a device of the account pins its key: trusted from now on.
    trusted();
    for (const id of device.links()) row(id).linked = true;
    if (p.flags.has("json")) {
      io.stdout([...rows.values()].map((r) => `${JSON.stringify(r)}\n`).join(""));
    } else {
      io.stdout(table([...rows.values()]));
    }
    return 0;
  } finally {
    await device.close();
  }
}

function table(rows: Row[]): string {
  const cells = [
    ["ID", "NAME", "TRUST", "ADDRESSES", "TRANSPORTS", "RTT"],
    ...rows.map((r) => [
      r.id,
      r.name ?? "-",
      r.trust ?? "-",
      r.addresses.map((a) =>
        a.source === "listening"
          ? hostPort(a.host, a.port)
          : `${hostPort(a.host, a.port)} (${a.source})`
      ).join(", ") || "-",
      r.transports.join(",") || "-",
      r.rtt === null ? "-" : formatMs(r.rtt),
    ]),
  ];
  const widths = cells[0].map((_, i) => Math.max(...cells.map((c) => c[i].length)));
  return cells.map((c) => c.map((x, i) => i === c.length - 1 ? x : x.padEnd(widths[i])).join("  "))
    .join("\n") + "\n";
}

/** The `devices` command. */
export const devicesCommand: Command = {
  name: "devices",
  summary: "list the devices this one finds, trusts and links to",
  help: HELP,
  run,
};

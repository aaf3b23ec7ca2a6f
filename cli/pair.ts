/**
 * `linkweave pair`: trust between devices that share no account, with a
 * 6-digit code (`docs/security.md`), and the list and revocation of trusted
 * devices.
 *
 * @module
 */
import { networkInterfaces } from "node:os";
import { parseArgs, positionals, secondsOption, UsageError } from "./_args.ts";
import { DEVICE_HELP, DEVICE_OPTIONS, hostPort, onInterrupt, startDevice } from "./_device.ts";
import type { Command, Io } from "./mod.ts";

const HELP = `Usage: linkweave pair offer [--timeout S] [options]
       linkweave pair enter HOST:PORT CODE [options]
       linkweave pair list [--json] [options]
       linkweave pair revoke DEVICE [options]

Pairs this device with one that is not in its account: one side shows a
code, a person types it on the other; from then on each trusts the other's
key (docs/security.md). Trust belongs to a device's identity: run these with
the identity of the device concerned (--id, or LINKWEAVE_DEVICE_ID; else the
first identity no running process holds). A running device reads its trust
when it starts: restart it after a revoke made here.

offer    starts this device and shows a 6-digit code and the address to
         enter it at, then waits (--timeout) for one device to enter it:
           code 123456: on the other device run
             linkweave pair enter 192.0.2.7:38470 123456
           paired with 02:00:00:00:00:0B
enter    enters the code another device shows, at its HOST:PORT; prints
         "paired with ID"
list     the devices this one trusts: ID, HOW (account, paired), SINCE, ADDRESS
revoke   stops trusting DEVICE: its key is refused from now on (it can pair
         or join again only under a new key enrolled on purpose)

Options:
  --timeout S  how long an offer stands (1..3600, default 120)
  --json       JSON lines: {"event":"offer","code","addresses":[...]} and
               {"event":"paired","id","key"} (offer, enter); one
               {"id","key","how","since","address"?} per device (list)
${DEVICE_HELP}
Exit codes: 0 paired (offer, enter), listed, revoked; 1 the pairing failed (a
wrong code, the offer expired, the device did not answer) or DEVICE was not
trusted; 2 wrong usage (a malformed code, address or id too).
`;

/** The addresses a peer can reach a device listening on `bind` at. */
function reachable(bind: string, port: number): string[] {
  if (bind !== "0.0.0.0" && bind !== "::") return [hostPort(bind, port)];
  const out: string[] = [];
  for (const addrs of Object.values(networkInterfaces())) {
    for (const a of addrs ?? []) {
      if (a.internal || (a.family !== "IPv4" && bind === "0.0.0.0")) continue;
      if (a.family === "IPv6" && a.address.startsWith("fe80")) continue;
      out.push(hostPort(a.address, port));
    }
  }
  return out.length > 0 ? out : [hostPort("127.0.0.1", port)];
}

async function run(args: string[], io: Io): Promise<number> {
  const p = parseArgs(args, { ...DEVICE_OPTIONS, timeout: { value: true }, json: {} });
  const [verb, ...rest] = p.positionals;
  const json = p.flags.has("json");
  const line = (obj: Record<string, unknown>, text: string) =>
    io.stdout(json ? `${JSON.stringify(obj)}\n` : `${text}\n`);
  const sub = { ...p, positionals: rest };
  switch (verb) {
    case "offer": {
      positionals(sub, []);
      const timeout = secondsOption(p, "timeout", { min: 1, max: 3600, default: 120 });
      const { device, runtime } = await startDevice(p, io, "pair");
      try {
        const offer = await device.pairing.offer({ timeout });
        const addresses = reachable(runtime.bind, runtime.port);
        line(
          { event: "offer", code: offer.code, addresses, expires: Date.now() + timeout },
          `code ${offer.code}: on the other device run\n  ` +
            addresses.map((a) => `linkweave pair enter ${a} ${offer.code}`).join("\n  "),
        );
        const undo = onInterrupt(() => void device.close());
        try {
          const t = await offer.paired;
          line({ event: "paired", id: t.id, key: t.key }, `paired with ${t.id}`);
          return 0;
        } catch (e) {
          io.stderr(`linkweave pair: the pairing failed: ${(e as Error).message}\n`);
          return 1;
        } finally {
          undo();
        }
      } finally {
        await device.close();
      }
    }
    case "enter": {
      const [target, code] = positionals(sub, ["HOST:PORT", "CODE"]) as [string, string];
      if (!/^\d{6}$/.test(code)) throw new UsageError(`CODE "${code}" is not six digits`);
      if (!/^(\[[^\]]+\]|[^:\s]+):\d{1,5}$/.test(target)) {
        throw new UsageError(`"${target}" is not HOST:PORT`);
      }
      const { device } = await startDevice(p, io, "pair", { discovery: "off" });
      try {
        const t = await device.pairing.enter(target, code);
        line({ event: "paired", id: t.id, key: t.key }, `paired with ${t.id}`);
        return 0;
      } catch (e) {
        if ((e as { code?: number }).code === 401) throw new UsageError((e as Error).message);
        io.stderr(`linkweave pair: the pairing with ${target} failed: ${(e as Error).message}\n`);
        return 1;
      } finally {
        await device.close();
      }
    }
    case "list": {
      positionals(sub, []);
      const { device } = await startDevice(p, io, "pair", { port: 0, discovery: "off" });
      try {
        const all = device.trustedDevices();
        if (json) {
          io.stdout(all.map((t) => `${JSON.stringify(t)}\n`).join(""));
        } else {
          const rows = [
            ["ID", "HOW", "SINCE", "ADDRESS"],
            ...all.map((t) => [t.id, t.how, new Date(t.since).toISOString(), t.address ?? "-"]),
          ];
          const w = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
          io.stdout(
            rows.map((r) => r.map((x, i) => i === r.length - 1 ? x : x.padEnd(w[i])).join("  "))
              .join("\n") + "\n",
          );
        }
        return 0;
      } finally {
        await device.close();
      }
    }
    case "revoke": {
      const [id] = positionals(sub, ["DEVICE"]) as [string];
      if (!/^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$/.test(id)) {
        throw new UsageError(`DEVICE "${id}" is not a device id (AA:BB:CC:DD:EE:FF)`);
      }
      const { device } = await startDevice(p, io, "pair", { port: 0, discovery: "off" });
      try {
        if (!device.revoke(id)) {
          io.stderr(`linkweave pair: ${id.toUpperCase()} is not trusted by this device\n`);
          return 1;
        }
        line({ event: "revoked", id: id.toUpperCase() }, `revoked ${id.toUpperCase()}`);
        return 0;
      } finally {
        await device.close();
      }
    }
    case undefined:
      throw new UsageError("missing action (offer, enter, list or revoke)");
    default:
      throw new UsageError(`unknown action "${verb}" (offer, enter, list or revoke)`);
  }
}

/** The `pair` command. */
export const pairCommand: Command = {
  name: "pair",
  summary: "pair with a device outside the account by a 6-digit code; list and revoke trust",
  help: HELP,
  run,
};

/**
 * `linkweave doctor`: checks what a device needs from this machine, each
 * failure with what to do.
 *
 * @module
 */
import { existsSync, readdirSync, statSync } from "node:fs";
import { createServer } from "node:net";
import { dirname, join } from "node:path";
import process from "node:process";
import {
  accountStatus,
  probeBluez,
  probeMulticast,
  runtimeDirectory,
  stateDirectory,
} from "../diagnostics.ts";
import { parseArgs, positionals } from "./_args.ts";
import type { Command, Io } from "./mod.ts";

const HELP = `Usage: linkweave doctor [options]

Checks what a linkweave device needs from this machine, as configured by the
LINKWEAVE_* variables of this shell (docs/config.md), and says what to do
about each problem:

  runtime      Deno 2, Bun 1.1 or Node 20 or later
  state        the state directory (identities, account, trust): owned by
               you, mode 0700; its secrets (account, keys) mode 0600
  registry     the per-user runtime directory (the local registry)
  account      where the account secret comes from, its fingerprint
  port         the TCP port (LINKWEAVE_PORT, default 38470) on the listen
               address (LINKWEAVE_BIND) can be taken
  multicast    a datagram to discovery's group comes back on each interface
               discovery would use (only when listening off loopback)
  dbus         the system bus answers (DBUS_SYSTEM_BUS_ADDRESS)
  bluez        bluetoothd runs and the bus policy lets you talk to it
  adapter      a Bluetooth adapter exists (LINKWEAVE_ADAPTER) and is powered

BLE checks fail only when BLE is required (LINKWEAVE_TRANSPORTS names bluez,
or LINKWEAVE_ADAPTER is set, or --ble); otherwise a device uses IP only and
they are warnings.

Output, one line per check:
  ok    runtime    deno 2.9.5
  FAIL  state      /home/me/.local/state/linkweave is readable by others (mode 0755)
          fix: chmod 700 /home/me/.local/state/linkweave

Options:
  --ble        require BLE (its checks fail instead of warning)
  --json       one JSON line per check:
                 {"check","status":"ok"|"warn"|"fail","detail","fix"?}

Exit codes: 0 no check failed (warnings allowed), 1 a check failed, 2 wrong usage.
`;

/** One check's outcome. */
interface Check {
  check: string;
  status: "ok" | "warn" | "fail";
  detail: string;
  fix?: string;
}

function runtimeCheck(): Check {
  const g = globalThis as { Deno?: { version: { deno: string } }; Bun?: { version: string } };
  const [name, version, min] = g.Deno !== undefined
    ? ["deno", g.Deno.version.deno, [2, 0]]
    : g.Bun !== undefined
    ? ["bun", g.Bun.version, [1, 1]]
    : ["node", process.versions.node, [20, 0]];
  const [major, minor] = version.split(".").map(Number);
  const ok = major > min[0] || (major === min[0] && minor >= min[1]);
  return ok ? { check: "runtime", status: "ok", detail: `${name} ${version}` } : {
    check: "runtime",
    status: "fail",
    detail: `${name} ${version} is older than ${min.join(".")}`,
    fix: `install ${name} ${min.join(".")} or later`,
  };
}

const uid = typeof process.getuid === "function" ? process.getuid() : undefined;

/** A private folder: ours, no group or other bits. */
function privateDir(check: string, dir: string, what: string): Check {
  if (!existsSync(dir)) {
    let parent = dirname(dir);
    while (!existsSync(parent) && dirname(parent) !== parent) parent = dirname(parent);
    try {
      const s = statSync(parent);
      if (uid !== undefined && s.uid !== uid && uid !== 0 && (s.mode & 0o002) === 0) {
        return {
          check,
          status: "fail",
          detail: `${dir} does not exist and ${parent} is not yours to create it in`,
          fix: `create it: mkdir -p -m 700 ${dir}, or point ${what} elsewhere`,
        };
      }
    } catch { /* reported below by the device itself */ }
    return { check, status: "ok", detail: `${dir} (created on first use)` };
  }
  const s = statSync(dir);
  if (!s.isDirectory()) {
    return {
      check,
      status: "fail",
      detail: `${dir} is not a directory`,
      fix: `move it away, or point ${what} elsewhere`,
    };
  }
  if (uid !== undefined && s.uid !== uid) {
    return {
      check,
      status: "fail",
      detail: `${dir} belongs to uid ${s.uid}, not to you (uid ${uid})`,
      fix: `chown -R ${uid} ${dir}, or point ${what} elsewhere`,
    };
  }
  if ((s.mode & 0o077) !== 0) {
    return {
      check,
      status: "fail",
      detail: `${dir} is open to others (mode ${octal(s.mode)})`,
      fix: `chmod 700 ${dir}`,
    };
  }
  return { check, status: "ok", detail: `${dir} (mode ${octal(s.mode)})` };
}

function octal(mode: number): string {
  return `0${(mode & 0o777).toString(8)}`;
}

function stateCheck(): Check {
  const dir = stateDirectory(process.env);
  const c = privateDir("state", dir, "XDG_STATE_HOME");
  if (c.status !== "ok" || !existsSync(dir)) return c;
  // The secrets inside: the per-user account and every identity's key.
  const secrets = [join(dir, "account")];
  for (const sub of ["identities", "ids"]) {
    try {
      for (const name of readdirSync(join(dir, sub))) secrets.push(join(dir, sub, name, "key"));
    } catch { /* none yet */ }
  }
  const open = secrets.filter((f) => {
    try {
      return (statSync(f).mode & 0o077) !== 0;
    } catch {
      return false;
    }
  });
  if (open.length > 0) {
    return {
      check: "state",
      status: "fail",
      detail: `secrets open to others: ${open.join(", ")}`,
      fix: `chmod 600 ${open.join(" ")}`,
    };
  }
  return c;
}

function registryCheck(): Check {
  const dir = runtimeDirectory(process.env);
  const xdg = process.env.XDG_RUNTIME_DIR;
  const c = privateDir("registry", dir, "XDG_RUNTIME_DIR");
  if (c.status === "ok" && (xdg === undefined || xdg === "")) {
    return {
      check: "registry",
      status: "warn",
      detail: `${dir} (XDG_RUNTIME_DIR is not set)`,
      fix: "log in through a session that sets XDG_RUNTIME_DIR (systemd-logind), or set it",
    };
  }
  return c;
}

function accountCheck(): Check {
  const a = accountStatus(process.env);
  const where = a.source === "LINKWEAVE_ACCOUNT" ? "LINKWEAVE_ACCOUNT" : `${a.source} ${a.file}`;
  if (a.error !== undefined && a.source !== "per-user") {
    return {
      check: "account",
      status: "fail",
      detail: `${where}: ${a.error}`,
      fix: "linkweave account create FILE, then LINKWEAVE_ACCOUNT_FILE=FILE",
    };
  }
  if (!a.exists && a.source === "LINKWEAVE_ACCOUNT_FILE") {
    return {
      check: "account",
      status: "fail",
      detail: `${a.file} is missing or empty`,
      fix: `linkweave account create ${a.file}`,
    };
  }
  if (a.mode !== undefined && (a.mode & 0o077) !== 0) {
    return {
      check: "account",
      status: "fail",
      detail: `${a.file} is open to others (mode ${octal(a.mode)})`,
      fix: `chmod 600 ${a.file}`,
    };
  }
  if (a.source === "per-user") {
    return {
      check: "account",
      status: "warn",
      detail:
        `per-user secret ${a.file}${
          a.exists ? `, fingerprint ${a.fingerprint}` : " (created on first use)"
        }: ` +
        "devices stay on loopback and reach only this user's devices on this machine",
      fix: "to reach other machines: linkweave account create FILE, copy FILE to each " +
        "device, set LINKWEAVE_ACCOUNT_FILE=FILE",
    };
  }
  return { check: "account", status: "ok", detail: `${where}, fingerprint ${a.fingerprint}` };
}

function bindAddress(): string {
  return process.env.LINKWEAVE_BIND || "127.0.0.1";
}

function isLoopback(bind: string): boolean {
  return bind === "localhost" || bind === "::1" || bind.startsWith("127.");
}

async function portCheck(): Promise<Check> {
  const explicit = process.env.LINKWEAVE_PORT !== undefined && process.env.LINKWEAVE_PORT !== "";
  const port = explicit ? Number(process.env.LINKWEAVE_PORT) : 38470;
  const bind = bindAddress();
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    return {
      check: "port",
      status: "fail",
      detail: `LINKWEAVE_PORT="${process.env.LINKWEAVE_PORT}" is not a port`,
      fix: "set LINKWEAVE_PORT to 0..65535, or unset it",
    };
  }
  if (port === 0) return { check: "port", status: "ok", detail: `any free port on ${bind}` };
  const error = await new Promise<string | undefined>((resolve) => {
    const s = createServer();
    s.once("error", (e: Error & { code?: string }) => resolve(e.code ?? e.message));
    s.listen(port, bind, () => s.close(() => resolve(undefined)));
  });
  if (error === undefined) {
    return { check: "port", status: "ok", detail: `${bind}:${port} is free` };
  }
  const who = `see who holds it: ss -ltnp 'sport = :${port}'`;
  if (error === "EADDRINUSE" && !explicit) {
    return {
      check: "port",
      status: "warn",
      detail: `${bind}:${port} is taken: a device started now listens on another port`,
      fix: `fine when another linkweave device holds it; else ${who}`,
    };
  }
  return {
    check: "port",
    status: "fail",
    detail: `cannot listen on ${bind}:${port}: ${error}`,
    fix: error === "EADDRINUSE"
      ? `${who}, or choose another LINKWEAVE_PORT`
      : error === "EADDRNOTAVAIL"
      ? `LINKWEAVE_BIND=${bind} is not an address of this machine (ip -4 addr)`
      : "choose a port above 1023, or another LINKWEAVE_BIND",
  };
}

async function multicastCheck(): Promise<Check> {
  const bind = bindAddress();
  if (process.env.LINKWEAVE_DISCOVERY === "off") {
    return { check: "multicast", status: "ok", detail: "not used (LINKWEAVE_DISCOVERY=off)" };
  }
  if (isLoopback(bind)) {
    return {
      check: "multicast",
      status: "ok",
      detail: `not used: devices listen on ${bind} (this machine's devices find each other ` +
        "through the local registry)",
    };
  }
  const found = await probeMulticast({ bind, timeout: 1000 });
  if (found.length === 0) {
    return {
      check: "multicast",
      status: "fail",
      detail: `no IPv4 interface for LINKWEAVE_BIND=${bind}`,
      fix:
        "bring up a network interface (ip -4 addr), or set LINKWEAVE_BIND to one of its addresses",
    };
  }
  const bad = found.filter((i) => !i.ok);
  const list = found.map((i) => `${i.name} ${i.address}`).join(", ");
  if (bad.length > 0) {
    return {
      check: "multicast",
      status: "fail",
      detail: `no multicast on ${bad.map((i) => `${i.name} (${i.error})`).join(", ")}`,
      fix: `add a multicast route (ip route add 224.0.0.0/4 dev ${bad[0].name}), let UDP to ` +
        "239.255.76.87 through the firewall, or give peers with LINKWEAVE_PEERS",
    };
  }
  return { check: "multicast", status: "ok", detail: `discovery's group answers on ${list}` };
}

async function bleChecks(required: boolean): Promise<Check[]> {
  const soft = required ? "fail" : "warn";
  const ipOnly = required ? "" : " (a device uses IP only)";
  const s = await probeBluez({ timeout: 2000 });
  const out: Check[] = [];
  if (s.bus !== "ok") {
    out.push({
      check: "dbus",
      status: soft,
      detail: `${
        s.bus === "denied" ? "the system bus refused you" : "no system bus"
      } at ${s.address}${ipOnly}`,
      fix: s.bus === "denied"
        ? "check the bus's policy (/etc/dbus-1/system.d, docs/bluez.md)"
        : "start it (sudo systemctl start dbus), or set DBUS_SYSTEM_BUS_ADDRESS",
    });
    return out;
  }
  out.push({ check: "dbus", status: "ok", detail: `system bus at ${s.address}` });
  if (s.bluez !== "ok") {
    out.push({
      check: "bluez",
      status: soft,
      detail: (s.bluez === "absent"
        ? "bluetoothd is not running (no one owns org.bluez)"
        : s.bluez === "denied"
        ? "the bus policy does not let you talk to BlueZ"
        : `BlueZ did not answer: ${s.error}`) + ipOnly,
      fix: s.bluez === "absent"
        ? "install and start it: sudo apt-get install bluez && sudo systemctl start bluetooth"
        : s.bluez === "denied"
        ? "join the bluetooth group (sudo adduser $USER bluetooth, then log in again), or " +
          "install the policy file of docs/bluez.md"
        : "sudo systemctl restart bluetooth; journalctl -u bluetooth says more",
    });
    return out;
  }
  out.push({ check: "bluez", status: "ok", detail: "bluetoothd answers" });
  const wanted = process.env.LINKWEAVE_ADAPTER || undefined;
  const adapter = wanted === undefined
    ? s.adapters.find((a) => a.powered) ?? s.adapters[0]
    : s.adapters.find((a) => a.name === wanted);
  const listed = s.adapters.map((a) => `${a.name} ${a.address}${a.powered ? "" : " (off)"}`)
    .join(", ");
  if (adapter === undefined) {
    out.push({
      check: "adapter",
      status: soft,
      detail: (wanted === undefined
        ? "no Bluetooth adapter"
        : `no adapter ${wanted} (there are: ${listed || "none"})`) + ipOnly,
      fix: wanted === undefined
        ? "plug one in, and check rfkill list and dmesg"
        : "set LINKWEAVE_ADAPTER to one of those, or unset it",
    });
  } else if (!adapter.powered) {
    out.push({
      check: "adapter",
      status: soft,
      detail: `${adapter.name} ${adapter.address} is powered off${ipOnly}`,
      fix: `power it on: rfkill unblock bluetooth; bluetoothctl power on`,
    });
  } else {
    out.push({
      check: "adapter",
      status: "ok",
      detail: `${adapter.name} ${adapter.address} is powered${
        listed.includes(",") ? ` (${listed})` : ""
      }`,
    });
  }
  return out;
}

async function run(args: string[], io: Io): Promise<number> {
  const p = parseArgs(args, { ble: {}, json: {} });
  positionals(p, []);
  const transports = process.env.LINKWEAVE_TRANSPORTS;
  const required = p.flags.has("ble") ||
    (transports !== undefined && transports.split(",").map((t) => t.trim()).includes("bluez")) ||
    (process.env.LINKWEAVE_ADAPTER !== undefined && process.env.LINKWEAVE_ADAPTER !== "");
  const bleWanted = required || transports === undefined || transports === "" ||
    transports.includes("bluez");
  const guard = async (check: string, f: () => Check | Promise<Check>): Promise<Check> => {
    try {
      return await f();
    } catch (e) {
      return { check, status: "fail", detail: `the check failed: ${(e as Error).message}` };
    }
  };
  const checks: Check[] = [
    runtimeCheck(),
    await guard("state", stateCheck),
    await guard("registry", registryCheck),
    await guard("account", accountCheck),
    await guard("port", portCheck),
    await guard("multicast", multicastCheck),
    ...(bleWanted
      ? await bleChecks(required).catch((e) => [
        { check: "bluez", status: "fail" as const, detail: `the check failed: ${e.message}` },
      ])
      : [{ check: "bluez", status: "ok" as const, detail: "not used (LINKWEAVE_TRANSPORTS=ip)" }]),
  ];
  if (p.flags.has("json")) {
    io.stdout(checks.map((c) => `${JSON.stringify(c)}\n`).join(""));
  } else {
    const w = Math.max(...checks.map((c) => c.check.length));
    io.stdout(
      checks.map((c) =>
        `${c.status === "ok" ? "ok  " : c.status.toUpperCase()}  ${
          c.check.padEnd(w)
        }  ${c.detail}\n` +
        (c.fix !== undefined && c.status !== "ok" ? `${" ".repeat(w + 8)}fix: ${c.fix}\n` : "")
      ).join(""),
    );
  }
  return checks.some((c) => c.status === "fail") ? 1 : 0;
}

/** The `doctor` command. */
export const doctorCommand: Command = {
  name: "doctor",
  summary: "check runtime, state directory, account, port, multicast, D-Bus and BlueZ",
  help: HELP,
  run,
};

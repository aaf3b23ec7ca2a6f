/**
 * D-Bus server addresses (`unix:path=...;unix:abstract=...`) and which
 * address each bus has: `DBUS_SYSTEM_BUS_ADDRESS` and
 * `DBUS_SESSION_BUS_ADDRESS` are honoured.
 *
 * @module
 */
import process from "node:process";

/** One Unix-socket address a client can connect to. */
export interface UnixAddress {
  /** A socket path, or an abstract name (Linux). */
  kind: "path" | "abstract";
  /** The path or the abstract name (without its leading NUL). */
  name: string;
  /** The server's GUID, when the address names one. */
  guid?: string;
}

/** The system bus address when `DBUS_SYSTEM_BUS_ADDRESS` is not set. */
export const DEFAULT_SYSTEM_BUS_ADDRESS = "unix:path=/var/run/dbus/system_bus_socket";

function unescape(value: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < value.length; i++) {
    if (value[i] === "%") {
      const hex = value.slice(i + 1, i + 3);
      if (!/^[0-9A-Fa-f]{2}$/.test(hex)) throw new Error(`bad escape "%${hex}"`);
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else {
      bytes.push(...new TextEncoder().encode(value[i]));
    }
  }
  return new TextDecoder().decode(new Uint8Array(bytes));
}

/**
 * The Unix-socket addresses in a D-Bus address string, in order. Other
 * transports (`tcp:`, `unixexec:`, `launchd:`...) are skipped.
 *
 * @param address A D-Bus address: `;`-separated `transport:key=value,...`.
 * @returns The usable addresses (maybe none).
 * @throws {Error} When an entry is malformed.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.deepEqual(parseAddress("tcp:host=x;unix:abstract=/tmp/dbus-A%2cB,guid=12"), [
 *   { kind: "abstract", name: "/tmp/dbus-A,B", guid: "12" },
 * ]);
 * ```
 */
export function parseAddress(address: string): UnixAddress[] {
  const out: UnixAddress[] = [];
  for (const entry of address.split(";")) {
    if (entry === "") continue;
    const colon = entry.indexOf(":");
    if (colon < 0) throw new Error(`"${entry}" has no transport`);
    const transport = entry.slice(0, colon);
    const params = new Map<string, string>();
    for (const kv of entry.slice(colon + 1).split(",")) {
      if (kv === "") continue;
      const eq = kv.indexOf("=");
      if (eq < 0) throw new Error(`"${kv}" is not key=value`);
      params.set(kv.slice(0, eq), unescape(kv.slice(eq + 1)));
    }
    if (transport !== "unix") continue;
    const guid = params.get("guid");
    const path = params.get("path");
    const abstract = params.get("abstract");
    if (path !== undefined) out.push({ kind: "path", name: path, ...(guid ? { guid } : {}) });
    else if (abstract !== undefined) {
      out.push({ kind: "abstract", name: abstract, ...(guid ? { guid } : {}) });
    }
  }
  return out;
}

/** Which bus. */
export type BusKind = "system" | "session";

/**
 * The address string of a bus: `DBUS_SYSTEM_BUS_ADDRESS` (default
 * `unix:path=/var/run/dbus/system_bus_socket`) or `DBUS_SESSION_BUS_ADDRESS`
 * (default `unix:path=$XDG_RUNTIME_DIR/bus`).
 *
 * @param bus Which bus.
 * @returns The address, or `undefined` for a session bus that has none.
 */
export function busAddress(bus: BusKind): string | undefined {
  if (bus === "system") return process.env.DBUS_SYSTEM_BUS_ADDRESS || DEFAULT_SYSTEM_BUS_ADDRESS;
  const env = process.env.DBUS_SESSION_BUS_ADDRESS;
  if (env) return env;
  const runtime = process.env.XDG_RUNTIME_DIR;
  return runtime ? `unix:path=${runtime}/bus` : undefined;
}

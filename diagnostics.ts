/**
 * linkweave's diagnostics: tools for looking at what goes over the air,
 * beside the public APIs. The `linkweave` command (`cli/`) uses this module
 * and the public ones only (DESIGN decision 6).
 *
 * - {@linkcode dissect}: OpenHarmony's BLE protocol in a `btmon -w` capture
 *   (btsnoop) or in text lines `[client|server] <characteristic> <hex>`,
 *   reassembled as OpenHarmony does, one record per message
 *   (`docs/openharmony-ble.md`).
 * - {@linkcode probeBluez}: whether the system bus answers, whether its
 *   policy lets this user talk to BlueZ, and BlueZ's adapters with their
 *   power (what `linkweave doctor` checks).
 * - {@linkcode accountStatus}: where this process's account secret comes
 *   from and its fingerprint (two devices share an account when their
 *   fingerprints match), without revealing or creating it.
 * - {@linkcode probeMulticast}: whether a datagram sent to discovery's
 *   multicast group on each interface discovery would use comes back (the
 *   group's own loopback), on a port of its own.
 * - {@linkcode stateDirectory} and {@linkcode runtimeDirectory}: where a
 *   device keeps its identities, account and trust, and where the local
 *   registry lives.
 *
 * Everything here only reads: it changes no state and starts no device.
 *
 * @example Dissect a capture line
 * ```ts
 * import assert from "node:assert/strict";
 * const [rec] = dissect("2B01 000000050000002a000000000000002a" +
 *   "cefabeba6600000004000000000000000300000012000000020000000100002c0100002c100000007b7d");
 * assert.equal(rec.decoded?.general?.msgTypeName, "RESET");
 * ```
 *
 * @module
 */
import { createHash } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import type { CryptoSuite } from "./core/proto/handshake/crypto.ts";
import { connectBus, type DBusConnection } from "./platform/bluez/dbus/connection.ts";
import { DBusError, DBusErrorName } from "./platform/bluez/dbus/errors.ts";
import { openBluez } from "./platform/bluez/mod.ts";
import { stateDirectory } from "./platform/identity.ts";
import { autoSocketPlatform } from "./platform/auto.ts";
import { ipv4Interfaces } from "./platform/network_interfaces.ts";
import { selectInterfaces } from "./core/discovery/subnet.ts";
import type { DatagramHandle } from "./core/socket/platform.ts";
import { loadAccount } from "./platform/security.ts";

export {
  dissect,
  type DissectOptions,
  type DissectRecord,
  type MessageRecord,
  type NoteRecord,
  type RecordPlace,
  type Sender,
} from "./core/proto/openharmony/dissect.ts";
export type { Decoded, DecodedGeneral, DecodedJson } from "./core/proto/openharmony/decode.ts";
export type { JsonValue } from "./core/proto/openharmony/_json.ts";
export type { OhCharacteristic } from "./core/proto/openharmony/wire.ts";

export { stateDirectory } from "./platform/identity.ts";
export { runtimeDirectory } from "./platform/local_peers.ts";

/** A Bluetooth adapter as BlueZ lists it. */
export interface AdapterStatus {
  /** Its name, `hci0`. */
  name: string;
  /** Its Bluetooth address. */
  address: string;
  /** Whether it is powered. */
  powered: boolean;
}

/** What {@linkcode probeBluez} found. */
export interface BluezStatus {
  /** The system bus address tried. */
  address: string;
  /**
   * `ok`; `unreachable` (no bus at that address, or it did not answer);
   * `denied` (the bus refused this user).
   */
  bus: "ok" | "unreachable" | "denied";
  /**
   * `ok`; `absent` (no process owns `org.bluez`: bluetoothd is not running);
   * `denied` (the bus policy does not let this user talk to BlueZ);
   * `failed` (another error); `null` when the bus was not reached.
   */
  bluez: "ok" | "absent" | "denied" | "failed" | null;
  /** The error of the first step that failed, as the bus said it. */
  error?: string;
  /** BlueZ's adapters (empty unless `bluez` is `ok`). */
  adapters: AdapterStatus[];
}

/**
 * Ask the system bus for BlueZ: reach the bus, find `org.bluez`, list its
 * adapters. Starts nothing and owns nothing.
 *
 * @param options The bus address (else `DBUS_SYSTEM_BUS_ADDRESS`, else the
 *   standard socket) and how long each step may take (ms). @default {{ timeout: 3000 }}
 * @returns What answered.
 *
 * @example On a machine without a bus at that address
 * ```ts
 * import assert from "node:assert/strict";
 * const s = await probeBluez({ address: "unix:path=/nonexistent/bus", timeout: 1000 });
 * assert.equal(s.bus, "unreachable");
 * assert.equal(s.bluez, null);
 * ```
 */
export async function probeBluez(
  options: { address?: string; timeout?: number } = {},
): Promise<BluezStatus> {
  const address = options.address ?? process.env.DBUS_SYSTEM_BUS_ADDRESS ??
    "unix:path=/var/run/dbus/system_bus_socket";
  const timeout = options.timeout ?? 3000;
  const denied = (e: unknown) =>
    e instanceof DBusError &&
    (e.dbusName === DBusErrorName.ACCESS_DENIED || e.dbusName === DBusErrorName.AUTH_FAILED);
  let bus: DBusConnection;
  try {
    bus = await connectBus({ address, connectTimeout: timeout, callTimeout: timeout });
  } catch (e) {
    return {
      address,
      bus: denied(e) ? "denied" : "unreachable",
      bluez: null,
      error: (e as Error).message,
      adapters: [],
    };
  }
  try {
    let owner: string | undefined;
    try {
      owner = await bus.getNameOwner("org.bluez");
    } catch (e) {
      return {
        address,
        bus: "ok",
        bluez: denied(e) ? "denied" : "failed",
        error: (e as Error).message,
        adapters: [],
      };
    }
    if (owner === undefined) {
      return { address, bus: "ok", bluez: "absent", error: "org.bluez has no owner", adapters: [] };
    }
    try {
      const bluez = await openBluez({ bus, keepAlive: false, fdPath: false });
      const adapters = bluez.adapters().map((a) => ({
        name: a.name,
        address: a.address,
        powered: a.powered,
      }));
      await bluez.close().catch(() => {});
      return { address, bus: "ok", bluez: "ok", adapters };
    } catch (e) {
      return {
        address,
        bus: "ok",
        bluez: denied(e) ? "denied" : "failed",
        error: (e as Error).message,
        adapters: [],
      };
    }
  } finally {
    bus.close();
  }
}

/** Where the account secret comes from, as {@linkcode accountStatus} found it. */
export interface AccountStatus {
  /**
   * `LINKWEAVE_ACCOUNT` (the variable holds the secret),
   * `LINKWEAVE_ACCOUNT_FILE` (a file holds it), or `per-user` (a secret this
   * user's devices on this machine share, created on first use: such a device
   * stays on loopback).
   */
  source: "LINKWEAVE_ACCOUNT" | "LINKWEAVE_ACCOUNT_FILE" | "per-user";
  /** The file holding the secret (not for `LINKWEAVE_ACCOUNT`). */
  file?: string;
  /** Whether there is a secret yet (a per-user one is created by the first device). */
  exists: boolean;
  /** The file's permission bits (`0o600` expected). */
  mode?: number;
  /**
   * 16 hex digits in groups of 4 from the account key (SHA-256 of the key):
   * equal on two devices exactly when they share the account; the secret
   * cannot be recovered from it.
   */
  fingerprint?: string;
  /** Why the secret could not be read. */
  error?: string;
}

/**
 * Where this process's account secret comes from (as a device started now
 * would take it, `docs/security.md`) and its fingerprint. Reads only: a
 * missing per-user secret is reported, not created.
 *
 * @param env The environment. @default {process.env}
 * @returns The status.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const a = accountStatus({ LINKWEAVE_ACCOUNT: "lab secret" });
 * assert.equal(a.source, "LINKWEAVE_ACCOUNT");
 * assert.equal(a.fingerprint, accountStatus({ LINKWEAVE_ACCOUNT: "lab secret" }).fingerprint);
 * assert.notEqual(a.fingerprint, accountStatus({ LINKWEAVE_ACCOUNT: "other" }).fingerprint);
 * ```
 */
export function accountStatus(
  env: Record<string, string | undefined> = process.env,
): AccountStatus {
  if (env.LINKWEAVE_ACCOUNT !== undefined && env.LINKWEAVE_ACCOUNT !== "") {
    return {
      source: "LINKWEAVE_ACCOUNT",
      exists: true,
      fingerprint: fingerprint(env.LINKWEAVE_ACCOUNT),
    };
  }
  const named = env.LINKWEAVE_ACCOUNT_FILE;
  const source = named !== undefined && named !== "" ? "LINKWEAVE_ACCOUNT_FILE" : "per-user";
  const file = source === "per-user" ? join(stateDirectory(env), "account") : named!;
  let text: string;
  let mode: number;
  try {
    mode = statSync(file).mode & 0o777;
    text = readFileSync(file, "utf8").trim();
  } catch (e) {
    const missing = (e as { code?: string }).code === "ENOENT";
    return {
      source,
      file,
      exists: false,
      error: missing ? undefined : (e as Error).message,
    };
  }
  if (text === "") return { source, file, exists: false, mode, error: "the file is empty" };
  return { source, file, exists: true, mode, fingerprint: fingerprint(text) };
}

/** The fingerprint of the account key a secret gives (`platform/security.ts` derives the key). */
function fingerprint(secret: string): string {
  const sha256 = (b: Uint8Array) => new Uint8Array(createHash("sha256").update(b).digest());
  // Only SHA-256 is used when a secret is given.
  const suite = { sha256 } as unknown as CryptoSuite;
  const { key } = loadAccount(suite, { secret, env: {}, stateDir: "" });
  const hex = createHash("sha256").update(key).digest("hex").slice(0, 16);
  return hex.match(/.{4}/g)!.join(":");
}

/** The group multicast discovery uses (`docs/discovery.md`). */
export const DISCOVERY_GROUP = "239.255.76.87";

/** One interface as {@linkcode probeMulticast} found it. */
export interface MulticastInterface {
  /** Its name (`eth0`). */
  name: string;
  /** Its IPv4 address. */
  address: string;
  /** Whether the datagram sent on it came back. */
  ok: boolean;
  /** Why not. */
  error?: string;
}

/**
 * Send one datagram to discovery's group on every interface discovery would
 * use for a device listening on `bind`, and see which come back (multicast
 * loopback, TTL 1, a port of this probe's own: real discovery is not
 * disturbed).
 *
 * @param options The listen address discovery would follow, and how long to
 *   wait (ms). @default {{ bind: "0.0.0.0", timeout: 1000 }}
 * @returns One entry per interface (none when there is no usable interface).
 */
export async function probeMulticast(
  options: { bind?: string; timeout?: number } = {},
): Promise<MulticastInterface[]> {
  const interfaces = selectInterfaces(options.bind ?? "0.0.0.0", ipv4Interfaces());
  if (interfaces.length === 0) return [];
  const platform = autoSocketPlatform();
  const results = interfaces.map((i) => ({
    name: i.name ?? "?",
    address: i.address,
    ok: false,
    error: undefined as string | undefined,
  }));
  const tag = Math.random().toString(36).slice(2, 10);
  const handles: DatagramHandle[] = [];
  let heard!: () => void;
  const all = new Promise<void>((resolve) => heard = resolve);
  try {
    const receiver = await platform.udpBind({
      local: { address: DISCOVERY_GROUP, port: 0, family: "IPv4" },
      reuseAddress: true,
    }, {
      onMessage(bytes) {
        const text = new TextDecoder().decode(bytes);
        const r = results.find((x) => text === `linkweave-probe ${tag} ${x.address}`);
        if (r !== undefined) r.ok = true;
        if (results.every((x) => x.ok || x.error !== undefined)) heard();
      },
    });
    handles.push(receiver);
    const port = receiver.localAddress.port;
    for (const r of results) {
      try {
        receiver.addMembership(DISCOVERY_GROUP, r.address);
        const s = await platform.udpBind({
          local: { address: r.address, port: 0, family: "IPv4" },
        }, { onMessage() {} });
        handles.push(s);
        s.setOption("multicastTTL", 1);
        s.setOption("multicastLoopback", true);
        await s.send(
          new TextEncoder().encode(`linkweave-probe ${tag} ${r.address}`),
          { address: DISCOVERY_GROUP, port, family: "IPv4" },
        );
      } catch (e) {
        r.error = (e as Error).message;
      }
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([all, new Promise((r) => timer = setTimeout(r, options.timeout ?? 1000))]);
    clearTimeout(timer);
  } catch (e) {
    for (const r of results) r.error ??= (e as Error).message;
  } finally {
    await Promise.allSettled(handles.map((h) => h.close()));
  }
  for (const r of results) {
    if (!r.ok && r.error === undefined) r.error = "the datagram did not come back";
  }
  return results.map((r) =>
    r.error === undefined ? { name: r.name, address: r.address, ok: r.ok } : r
  );
}

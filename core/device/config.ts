/**
 * Device configuration: the id a device runs as, where it listens, which
 * peers it knows, and its limits. Parsed from `configure({...})` or from the
 * `LINKWEAVE_*` environment variables, so unmodified programs can be started
 * as different devices. Pure: the caller passes the environment in.
 *
 * @module
 */
import { ErrorCode } from "../error_codes.ts";
import { ParameterError } from "../errors.ts";

/** The TCP port a device listens on unless told otherwise. */
export const DEFAULT_PORT = 38470;

/** A statically configured peer: `ID@host:port`. */
export interface StaticPeer {
  /** The peer's device id, upper-case `AA:BB:CC:DD:EE:FF`. */
  deviceId: string;
  /** Its host name or IP address (IPv6 without brackets). */
  host: string;
  /** Its TCP port. */
  port: number;
}

/**
 * Limits of a device: the linkEnhance API's (OpenHarmony's by default), and
 * what peers can make the device hold. `docs/config.md` lists them all.
 */
export interface Limits {
  /** Started servers per process. @default {10} */
  servers: number;
  /** Client connections per process (accepted ones do not count). @default {10} */
  connections: number;
  /** Links (peers) at once; more peers are refused. @default {64} */
  links: number;
  /** Connections open at once on one link, both directions. @default {256} */
  streamsPerLink: number;
  /** Channels that have not finished their handshake; the oldest is dropped first. @default {64} */
  handshakes: number;
  /** Bytes one peer may make the device hold (reassembly, reordering). @default {67108864} */
  linkBudget: number;
  /** Bytes all peers together may make the device hold. @default {268435456} */
  deviceBudget: number;
}

/** The default limits (OpenHarmony's for the API). */
export const DEFAULT_LIMITS: Readonly<Limits> = Object.freeze({
  servers: 10,
  connections: 10,
  links: 64,
  streamsPerLink: 256,
  handshakes: 64,
  linkBudget: 64 * 1024 * 1024,
  deviceBudget: 256 * 1024 * 1024,
});

/** A device's configuration, complete. */
export interface DeviceConfig {
  /** This device's id; `undefined` means "choose one" (adapter address, else a stable random id). */
  deviceId?: string;
  /** TCP listen port; when `portExplicit` is false an ephemeral port is used if it is taken. */
  port: number;
  /** Whether the port was given explicitly. */
  portExplicit: boolean;
  /** Listen address. @default {"127.0.0.1"} */
  bind: string;
  /** Static peers. */
  peers: StaticPeer[];
  /** Multicast discovery: `auto` announces on the bound interface unless it is loopback. */
  discovery: "auto" | "off";
  /** linkEnhance limits. */
  limits: Limits;
  /** How long `connect()` waits before `connectResult` fails with 32390200 (ms). @default {10000} */
  connectTimeout: number;
  /** How long a silent link lives before it is declared lost (ms). @default {5000} */
  keepAliveTimeout: number;
  /** How long a new channel has to finish its handshake (ms). @default {5000} */
  handshakeTimeout: number;
  /**
   * `account`: links are authenticated (account or pairing) and encrypted;
   * `none`: the plain, unauthenticated protocol (benchmarks, closed labs).
   * @default {"account"}
   */
  security: "account" | "none";
  /** An account secret given to `configure` (else `LINKWEAVE_ACCOUNT`, the file, or per-user). */
  account?: string;
}

/** What `configure()` accepts: every field optional. */
export interface DeviceOptions {
  /** This device's id (`AA:BB:CC:DD:EE:FF`). */
  deviceId?: string;
  /** TCP listen port. @default {38470} */
  port?: number;
  /** Listen address. @default {"127.0.0.1"} */
  bind?: string;
  /** Static peers, as objects or as `ID@host:port` strings. */
  peers?: (StaticPeer | string)[];
  /** `auto` or `off`. @default {"auto"} */
  discovery?: "auto" | "off";
  /** Raise (or lower) the limits: a linkweave extension. */
  limits?: Partial<Limits>;
  /** Connect timeout in ms. @default {10000} */
  connectTimeout?: number;
  /** Keep-alive timeout in ms. @default {5000} */
  keepAliveTimeout?: number;
  /** Handshake timeout of a new channel in ms. @default {5000} */
  handshakeTimeout?: number;
  /** `account` (authenticated, encrypted links) or `none`. @default {"account"} */
  security?: "account" | "none";
  /** The account secret (devices with the same one trust each other). */
  account?: string;
}

const MAC = /^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$/;

/**
 * Whether a string is a device id: a BLE MAC in `AA:BB:CC:DD:EE:FF` form.
 *
 * @param id The candidate.
 * @returns `true` for six colon-separated hex pairs.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.ok(isDeviceId("00:11:22:33:44:55"));
 * assert.ok(!isDeviceId("00-11-22-33-44-55"));
 * ```
 */
export function isDeviceId(id: unknown): id is string {
  return typeof id === "string" && MAC.test(id);
}

/**
 * A device id in canonical (upper-case) form.
 *
 * @param id A device id in any case.
 * @param code The error code for a bad id. @default {401}
 * @returns The id in upper case.
 * @throws {ParameterError} When `id` is not a device id.
 */
export function normalizeDeviceId(id: unknown, code: number = ErrorCode.PARAMETER_ERROR): string {
  if (!isDeviceId(id)) {
    throw new ParameterError(
      `Invalid device id ${JSON.stringify(id)}: expected the form "AA:BB:CC:DD:EE:FF"`,
      code,
    );
  }
  return id.toUpperCase();
}

/** Where a value came from, for error messages: an option or a variable. */
type Source = { option: string } | { env: string };

function invalidValue(source: Source, value: unknown, expected: string): ParameterError {
  return new ParameterError(
    "env" in source
      ? `${source.env}=${JSON.stringify(String(value))} is not ${expected}`
      : `Invalid ${source.option} ${JSON.stringify(value)}: expected ${expected}`,
  );
}

function parsePort(value: unknown, source: Source): number {
  const n = typeof value === "string" && /^\d+$/.test(value) ? Number(value) : value;
  if (typeof n !== "number" || !Number.isInteger(n) || n < 0 || n > 65535) {
    throw invalidValue(source, value, "a port (an integer in 0..65535)");
  }
  return n;
}

function parseMs(value: unknown, source: Source): number {
  const n = typeof value === "string" && /^\d+$/.test(value) ? Number(value) : value;
  if (typeof n !== "number" || !Number.isInteger(n) || n <= 0) {
    throw invalidValue(source, value, "a positive integer of milliseconds");
  }
  return n;
}

/** An option, else a variable (empty counts as unset), with where it came from. */
function pick<T>(
  option: T | undefined,
  optionName: string,
  env: Record<string, string | undefined>,
  variable: string,
): [T | string | undefined, Source] {
  if (option !== undefined) return [option, { option: optionName }];
  const v = env[variable];
  return [v === undefined || v === "" ? undefined : v, { env: variable }];
}

/**
 * Parse one static peer, `ID@host:port` (IPv6 hosts in brackets).
 *
 * @param spec The peer.
 * @returns The peer.
 * @throws {ParameterError} When it is malformed.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.deepEqual(parsePeer("aa:bb:cc:dd:ee:ff@[::1]:38470"), {
 *   deviceId: "AA:BB:CC:DD:EE:FF", host: "::1", port: 38470,
 * });
 * ```
 */
export function parsePeer(spec: string): StaticPeer {
  const m = /^([^@]+)@(\[([^\]]+)\]|[^:\[\]]+):(\d+)$/.exec(spec.trim());
  if (m === null) {
    throw new ParameterError(`Invalid peer ${JSON.stringify(spec)}: expected "ID@host:port"`);
  }
  return {
    deviceId: normalizeDeviceId(m[1]),
    host: m[3] ?? m[2],
    port: parsePort(m[4], { option: `port of peer ${JSON.stringify(spec)}` }),
  };
}

/**
 * Build a complete configuration from `configure()` options and the
 * environment. Options win over the environment.
 *
 * Environment: `LINKWEAVE_DEVICE_ID`, `LINKWEAVE_PORT`, `LINKWEAVE_BIND`,
 * `LINKWEAVE_PEERS` (`ID@host:port,...`), `LINKWEAVE_DISCOVERY` (`auto`|`off`),
 * `LINKWEAVE_CONNECT_TIMEOUT`, `LINKWEAVE_KEEPALIVE_TIMEOUT`,
 * `LINKWEAVE_HANDSHAKE_TIMEOUT` (ms), `LINKWEAVE_LIMITS` (`name=value,...`),
 * `LINKWEAVE_SECURITY` (`account`|`none`). The account secret itself is read
 * by the platform (`LINKWEAVE_ACCOUNT`, `LINKWEAVE_ACCOUNT_FILE`).
 * A malformed variable is named in the error (`LINKWEAVE_PORT="abc" is not a
 * port ...`).
 *
 * @param options What `configure()` was given.
 * @param env The environment variables.
 * @returns The configuration.
 * @throws {ParameterError} On any malformed value, naming it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const c = resolveConfig({}, { LINKWEAVE_PEERS: "00:11:22:33:44:55@127.0.0.1:4000" });
 * assert.equal(c.port, 38470);
 * assert.equal(c.peers[0].port, 4000);
 * assert.equal(c.limits.connections, 10);
 * assert.throws(() => resolveConfig({}, { LINKWEAVE_PORT: "abc" }), /LINKWEAVE_PORT="abc" is not a port/);
 * ```
 */
export function resolveConfig(
  options: DeviceOptions,
  env: Record<string, string | undefined>,
): DeviceConfig {
  const [rawId, idSource] = pick(options.deviceId, "deviceId", env, "LINKWEAVE_DEVICE_ID");
  if (rawId !== undefined && !isDeviceId(rawId)) {
    throw invalidValue(idSource, rawId, 'a device id ("AA:BB:CC:DD:EE:FF")');
  }
  const [rawPort, portSource] = pick(options.port, "port", env, "LINKWEAVE_PORT");
  const [discovery, discoverySource] = pick(
    options.discovery,
    "discovery",
    env,
    "LINKWEAVE_DISCOVERY",
  );
  if (discovery !== undefined && discovery !== "auto" && discovery !== "off") {
    throw invalidValue(discoverySource, discovery, '"auto" or "off"');
  }
  const [bind, bindSource] = pick(options.bind, "bind address", env, "LINKWEAVE_BIND");
  if (bind !== undefined && (typeof bind !== "string" || bind.trim() === "")) {
    throw invalidValue(bindSource, bind, "an address to listen on");
  }
  const peers = options.peers !== undefined
    ? options.peers.map((p) =>
      typeof p === "string" ? parsePeer(p) : {
        deviceId: normalizeDeviceId(p.deviceId),
        host: p.host,
        port: parsePort(p.port, { option: "peer port" }),
      }
    )
    : (env.LINKWEAVE_PEERS ?? "").split(",").filter((s) => s.trim() !== "").map((spec) => {
      try {
        return parsePeer(spec);
      } catch {
        throw invalidValue({ env: "LINKWEAVE_PEERS" }, spec, 'a peer ("ID@host:port")');
      }
    });
  const limits = { ...DEFAULT_LIMITS, ...parseLimits(env.LINKWEAVE_LIMITS), ...options.limits };
  for (const [k, v] of Object.entries(limits)) {
    if (!(k in DEFAULT_LIMITS)) {
      throw new ParameterError(
        `Invalid limit ${JSON.stringify(k)}: expected one of ${
          Object.keys(DEFAULT_LIMITS).join(", ")
        }`,
      );
    }
    if (!Number.isInteger(v) || v < 1) {
      throw new ParameterError(
        `Invalid limit ${k} ${JSON.stringify(v)}: expected a positive integer`,
      );
    }
  }
  const [security, securitySource] = pick(options.security, "security", env, "LINKWEAVE_SECURITY");
  if (security !== undefined && security !== "account" && security !== "none") {
    throw invalidValue(securitySource, security, '"account" or "none"');
  }
  if (
    options.account !== undefined && (typeof options.account !== "string" || options.account === "")
  ) {
    throw invalidValue({ option: "account" }, options.account, "a non-empty secret string");
  }
  const ms = (option: number | undefined, name: string, variable: string, fallback: number) => {
    const [v, source] = pick(option, name, env, variable);
    return v === undefined ? fallback : parseMs(v, source);
  };
  return {
    deviceId: rawId === undefined ? undefined : normalizeDeviceId(rawId),
    port: rawPort === undefined ? DEFAULT_PORT : parsePort(rawPort, portSource),
    portExplicit: rawPort !== undefined,
    bind: bind === undefined ? "127.0.0.1" : String(bind),
    peers,
    discovery: (discovery ?? "auto") as "auto" | "off",
    limits,
    connectTimeout: ms(
      options.connectTimeout,
      "connect timeout",
      "LINKWEAVE_CONNECT_TIMEOUT",
      10000,
    ),
    keepAliveTimeout: ms(
      options.keepAliveTimeout,
      "keep-alive timeout",
      "LINKWEAVE_KEEPALIVE_TIMEOUT",
      5000,
    ),
    handshakeTimeout: ms(
      options.handshakeTimeout,
      "handshake timeout",
      "LINKWEAVE_HANDSHAKE_TIMEOUT",
      5000,
    ),
    security: (security ?? "account") as "account" | "none",
    ...(options.account !== undefined ? { account: options.account } : {}),
  };
}

/** `LINKWEAVE_LIMITS`: `name=value,...` (e.g. `links=128,streamsPerLink=512`). */
function parseLimits(spec: string | undefined): Partial<Limits> {
  const out: Record<string, number> = {};
  for (const part of (spec ?? "").split(",").filter((p) => p.trim() !== "")) {
    const m = /^\s*(\w+)\s*=\s*(\d+)\s*$/.exec(part);
    if (m === null || !(m[1] in DEFAULT_LIMITS)) {
      throw invalidValue(
        { env: "LINKWEAVE_LIMITS" },
        part,
        `a limit "name=value" (names: ${Object.keys(DEFAULT_LIMITS).join(", ")})`,
      );
    }
    out[m[1]] = Number(m[2]);
  }
  return out;
}

/**
 * A random device id, locally administered (bit 1 of the first byte set,
 * bit 0 clear), so it never collides with a real adapter's address.
 *
 * @param random Fills a byte array with random bytes (e.g. `crypto.getRandomValues`).
 * @returns A device id.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const id = randomDeviceId((b) => crypto.getRandomValues(b));
 * assert.ok(isDeviceId(id));
 * assert.equal(parseInt(id.slice(0, 2), 16) & 3, 2);
 * ```
 */
export function randomDeviceId(random: (bytes: Uint8Array) => void): string {
  const b = new Uint8Array(6);
  random(b);
  b[0] = (b[0] & 0xfc) | 0x02;
  return [...b].map((x) => x.toString(16).padStart(2, "0")).join(":").toUpperCase();
}

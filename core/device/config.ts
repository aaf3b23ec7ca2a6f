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
import { utf8Length } from "../_utf8.ts";

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

/** A transport a device may use: `bluez` (BLE through BlueZ) or `ip` (TCP). */
export type TransportName = "bluez" | "ip";

/**
 * A link profile (DESIGN decision 1): `linkweave` (our wire: authenticated,
 * encrypted, striped) or `openharmony` (OpenHarmony's own BLE GATT bytes,
 * cleartext; BLE links only).
 */
export type ProfileName = "linkweave" | "openharmony";

/** One peer in the map form of `peers` (`{ "AA:BB:CC:DD:EE:FF": { ... } }`). */
export interface PeerOptions {
  /** Its TCP host (with `port`: a static IP address, as in the array form). */
  host?: string;
  /** Its TCP port. */
  port?: number;
  /** The profile of BLE links to it. @default {the device's `profile`} */
  profile?: ProfileName;
}

/** Settings of the `openharmony` profile (`docs/openharmony-ble.md`). */
export interface OpenHarmonyOptions {
  /** Alias of the device option `bundleName`. */
  bundleName?: string;
  /**
   * The device id presented to OpenHarmony peers in basic info (1..64
   * bytes). @default {a random id per run: not the board's real id}
   */
  devid?: string;
  /** The device type presented (OpenHarmony's type ids; 0xFF hides the peer's id). @default {0} */
  devtype?: number;
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
  /**
   * Channels of each link this device dials: `auto` one per address known
   * for the peer; a number, that many, spread over its addresses round robin
   * (at most 8, the link's `MAX_CHANNELS`). @default {"auto"}
   */
  channels: "auto" | number;
  /** An account secret given to `configure` (else `LINKWEAVE_ACCOUNT`, the file, or per-user). */
  account?: string;
  /** The transports, in order of preference. @default {["bluez", "ip"]} */
  transports: TransportName[];
  /**
   * Whether `transports` was given: then BlueZ is required (a device fails
   * to start without it); by default BlueZ is used only when it is there.
   */
  transportsExplicit: boolean;
  /** The Bluetooth adapter (`hci1`). @default {the first powered adapter} */
  adapter?: string;
  /** The profile of BLE links. @default {"linkweave"} */
  profile: ProfileName;
  /** Profiles chosen per peer (upper-case device id), over `profile`. */
  peerProfiles: Readonly<Record<string, ProfileName>>;
  /** The app's bundle name (DESIGN decision 5): needed by the `openharmony` profile. */
  bundleName?: string;
  /** The `openharmony` profile's identity: the device id and type presented. */
  openharmony: { devid?: string; devtype?: number };
  /**
   * Whether the device is a device daemon's (`docs/daemon.md`): `off` runs
   * it embedded; `auto` attaches to the default socket when a daemon answers
   * there; `{ socket }` attaches to that socket (the default one when
   * `socket` is unset) or fails.
   */
  daemon: DaemonChoice;
  /** The identity to take by name (`default`, `default-2`, ...) when no id is configured. */
  identity?: string;
}

/** Whether to attach to a device daemon (see {@linkcode DeviceConfig.daemon}). */
export type DaemonChoice = "off" | "auto" | { socket?: string };

/** What `configure()` accepts: every field optional. */
export interface DeviceOptions {
  /** This device's id (`AA:BB:CC:DD:EE:FF`). */
  deviceId?: string;
  /** TCP listen port. @default {38470} */
  port?: number;
  /** Listen address. @default {"127.0.0.1"} */
  bind?: string;
  /**
   * Static peers, as objects or as `ID@host:port` strings; or a map from
   * device id to {@linkcode PeerOptions} (an address and/or a profile).
   */
  peers?: (StaticPeer | string)[] | Record<string, PeerOptions>;
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
  /**
   * Channels of each link this device dials: `auto` (one per address known
   * for the peer) or 1..8. @default {"auto"}
   */
  channels?: "auto" | number;
  /** The account secret (devices with the same one trust each other). */
  account?: string;
  /** The transports to use, `bluez` and/or `ip`. @default {["bluez", "ip"], BlueZ when present} */
  transports?: TransportName[];
  /** The Bluetooth adapter, `hciN`. @default {the first powered adapter} */
  adapter?: string;
  /** The profile of BLE links, `linkweave` or `openharmony`. @default {"linkweave"} */
  profile?: ProfileName;
  /** The app's bundle name (the `openharmony` profile matches servers by it). */
  bundleName?: string;
  /** The `openharmony` profile's settings. */
  openharmony?: OpenHarmonyOptions;
  /**
   * Attach to a device daemon (`docs/daemon.md`): `false` never (the device
   * runs embedded), `true` the default socket, or a socket path; either of
   * the last two fails when no daemon answers there.
   * @default {attach to the default socket when a daemon answers there and
   *   neither deviceId, port nor bind is configured}
   */
  daemon?: boolean | string;
  /**
   * The identity to take, by name (`default`, `default-2`, `kitchen`) when
   * no `deviceId` is configured; when a running process holds it the device
   * does not start. @default {the first identity no running process holds}
   */
  identity?: string;
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
 * `LINKWEAVE_SECURITY` (`account`|`none`), `LINKWEAVE_CHANNELS` (`auto`|1..8), `LINKWEAVE_TRANSPORTS` (`bluez,ip`),
 * `LINKWEAVE_ADAPTER` (`hciN`), `LINKWEAVE_PROFILE` (`linkweave`|`openharmony`),
 * `LINKWEAVE_BUNDLE` (alias `LINKWEAVE_OH_BUNDLE`), `LINKWEAVE_OH_DEVID`,
 * `LINKWEAVE_DAEMON` (`off` or a socket path), `LINKWEAVE_IDENTITY`. The
 * account secret itself is read by the platform (`LINKWEAVE_ACCOUNT`,
 * `LINKWEAVE_ACCOUNT_FILE`).
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
  const { peers, peerProfiles } = parsePeers(options.peers, env.LINKWEAVE_PEERS);
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
  const [channels, channelsSource] = pick(options.channels, "channels", env, "LINKWEAVE_CHANNELS");
  const ble = parseBle(options, env);
  const [identity, identitySource] = pick(options.identity, "identity", env, "LINKWEAVE_IDENTITY");
  if (identity !== undefined && (typeof identity !== "string" || !IDENTITY.test(identity))) {
    throw invalidValue(identitySource, identity, "an identity name (letters, digits, . _ -)");
  }
  let daemon = parseDaemon(options.daemon, env.LINKWEAVE_DAEMON);
  // A configuration that names a device of its own runs it: attaching would ignore it.
  if (daemon === "auto" && (rawId !== undefined || rawPort !== undefined || bind !== undefined)) {
    daemon = "off";
  }
  const ms = (option: number | undefined, name: string, variable: string, fallback: number) => {
    const [v, source] = pick(option, name, env, variable);
    return v === undefined ? fallback : parseMs(v, source);
  };
  const c: DeviceConfig = {
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
    channels: parseChannels(channels, channelsSource),
    ...(options.account !== undefined ? { account: options.account } : {}),
    ...ble,
    peerProfiles,
    daemon,
    ...(identity !== undefined ? { identity: identity as string } : {}),
  };
  if (
    c.bundleName === undefined &&
    (c.profile === "openharmony" || Object.values(peerProfiles).includes("openharmony"))
  ) {
    throw new ParameterError(
      "Invalid configuration: the openharmony profile needs the app's bundle name " +
        '(LINKWEAVE_BUNDLE, or configure({ bundleName: "com.example.app" }))',
    );
  }
  return c;
}

/** Most channels one link takes (the link's `MAX_CHANNELS`). */
const MAX_LINK_CHANNELS = 8;

/** `channels` / `LINKWEAVE_CHANNELS`: `auto`, or an integer 1..8. */
function parseChannels(value: unknown, source: Source): "auto" | number {
  if (value === undefined || value === "auto") return "auto";
  const n = typeof value === "string" && /^[0-9]+$/.test(value) ? Number(value) : value;
  if (typeof n !== "number" || !Number.isInteger(n) || n < 1 || n > MAX_LINK_CHANNELS) {
    throw invalidValue(source, value, `"auto" or an integer 1..${MAX_LINK_CHANNELS}`);
  }
  return n;
}

const PROFILES: readonly ProfileName[] = ["linkweave", "openharmony"];

const IDENTITY = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** `daemon` / `LINKWEAVE_DAEMON`: `off`, or an absolute socket path; unset is `auto`. */
function parseDaemon(option: unknown, variable: string | undefined): DaemonChoice {
  if (option === undefined) {
    if (variable === undefined || variable === "") return "auto";
    if (variable === "off") return "off";
    if (variable.startsWith("/")) return { socket: variable };
    throw invalidValue({ env: "LINKWEAVE_DAEMON" }, variable, '"off" or an absolute socket path');
  }
  if (option === false) return "off";
  if (option === true) return {};
  if (typeof option === "string" && option.startsWith("/")) return { socket: option };
  throw invalidValue({ option: "daemon" }, option, "false, true or an absolute socket path");
}

function parseProfile(value: unknown, source: Source): ProfileName {
  if (!PROFILES.includes(value as ProfileName)) {
    throw invalidValue(source, value, '"linkweave" or "openharmony"');
  }
  return value as ProfileName;
}

/** Static peers and per-peer profiles, from either form of `peers`, else `LINKWEAVE_PEERS`. */
function parsePeers(
  option: DeviceOptions["peers"],
  variable: string | undefined,
): { peers: StaticPeer[]; peerProfiles: Record<string, ProfileName> } {
  const peerProfiles: Record<string, ProfileName> = {};
  if (option === undefined) {
    const peers = (variable ?? "").split(",").filter((s) => s.trim() !== "").map((spec) => {
      try {
        return parsePeer(spec);
      } catch {
        throw invalidValue({ env: "LINKWEAVE_PEERS" }, spec, 'a peer ("ID@host:port")');
      }
    });
    return { peers, peerProfiles };
  }
  if (Array.isArray(option)) {
    const peers = option.map((p) =>
      typeof p === "string" ? parsePeer(p) : {
        deviceId: normalizeDeviceId(p.deviceId),
        host: p.host,
        port: parsePort(p.port, { option: "peer port" }),
      }
    );
    return { peers, peerProfiles };
  }
  if (typeof option !== "object" || option === null) {
    throw invalidValue({ option: "peers" }, option, "an array of peers or a map of device ids");
  }
  const peers: StaticPeer[] = [];
  for (const [key, p] of Object.entries(option)) {
    const deviceId = normalizeDeviceId(key);
    if (typeof p !== "object" || p === null) {
      throw invalidValue({ option: `peer ${key}` }, p, "an object ({ host, port, profile })");
    }
    if ((p.host === undefined) !== (p.port === undefined)) {
      throw invalidValue({ option: `peer ${key}` }, p, "both host and port, or neither");
    }
    if (p.host !== undefined) {
      if (typeof p.host !== "string" || p.host.trim() === "") {
        throw invalidValue({ option: `host of peer ${key}` }, p.host, "a host name or address");
      }
      peers.push({ deviceId, host: p.host, port: parsePort(p.port, { option: "peer port" }) });
    }
    if (p.profile !== undefined) {
      peerProfiles[deviceId] = parseProfile(p.profile, { option: `profile of peer ${key}` });
    }
  }
  return { peers, peerProfiles };
}

/** Transports, adapter, profile and the app identity of the BLE profiles. */
function parseBle(
  options: DeviceOptions,
  env: Record<string, string | undefined>,
): Pick<
  DeviceConfig,
  "transports" | "transportsExplicit" | "adapter" | "profile" | "bundleName" | "openharmony"
> {
  const [rawTransports, tSource] = pick(
    options.transports,
    "transports",
    env,
    "LINKWEAVE_TRANSPORTS",
  );
  let transports: TransportName[] = ["bluez", "ip"];
  if (rawTransports !== undefined) {
    const list = typeof rawTransports === "string"
      ? rawTransports.split(",").map((t) => t.trim())
      : rawTransports;
    const expected = 'a comma list of "bluez" and "ip"';
    if (!Array.isArray(list) || list.length === 0) {
      throw invalidValue(tSource, rawTransports, expected);
    }
    for (const t of list) {
      if ((t !== "bluez" && t !== "ip") || list.indexOf(t) !== list.lastIndexOf(t)) {
        throw invalidValue(tSource, rawTransports, expected);
      }
    }
    transports = [...list] as TransportName[];
  }
  const [adapter, aSource] = pick(options.adapter, "adapter", env, "LINKWEAVE_ADAPTER");
  if (adapter !== undefined && !(typeof adapter === "string" && /^hci\d{1,3}$/.test(adapter))) {
    throw invalidValue(aSource, adapter, 'an adapter name ("hci0")');
  }
  const [profile, pSource] = pick(options.profile, "profile", env, "LINKWEAVE_PROFILE");
  const oh = options.openharmony;
  if (oh !== undefined && (typeof oh !== "object" || oh === null)) {
    throw invalidValue({ option: "openharmony" }, oh, "an object ({ bundleName, devid, devtype })");
  }
  // One app identity (DESIGN decision 5); the other spellings are aliases.
  let [bundle, bSource] = pick(options.bundleName, "bundleName", env, "LINKWEAVE_BUNDLE");
  if (bundle === undefined) {
    [bundle, bSource] = pick(oh?.bundleName, "openharmony.bundleName", env, "LINKWEAVE_OH_BUNDLE");
  }
  if (
    bundle !== undefined &&
    !(typeof bundle === "string" && bundle !== "" && utf8Length(bundle) <= 255 &&
      !bundle.includes("\0"))
  ) {
    throw invalidValue(bSource, bundle, "a bundle name (1..255 bytes)");
  }
  const [devid, dSource] = pick(oh?.devid, "openharmony.devid", env, "LINKWEAVE_OH_DEVID");
  if (
    devid !== undefined &&
    !(typeof devid === "string" && devid !== "" && utf8Length(devid) <= 64)
  ) {
    throw invalidValue(dSource, devid, "a device id of 1..64 bytes");
  }
  const devtype = oh?.devtype;
  if (devtype !== undefined && !(Number.isInteger(devtype) && devtype >= 0 && devtype <= 255)) {
    throw invalidValue({ option: "openharmony.devtype" }, devtype, "an integer in 0..255");
  }
  return {
    transports,
    transportsExplicit: rawTransports !== undefined,
    ...(adapter !== undefined ? { adapter: adapter as string } : {}),
    profile: profile === undefined ? "linkweave" : parseProfile(profile, pSource),
    ...(bundle !== undefined ? { bundleName: bundle as string } : {}),
    openharmony: {
      ...(devid !== undefined ? { devid: devid as string } : {}),
      ...(devtype !== undefined ? { devtype } : {}),
    },
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

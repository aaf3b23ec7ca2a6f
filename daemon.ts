/**
 * The device daemon (`linkweave daemon`, `docs/daemon.md`): one process owns
 * the device (transports, discovery, trust, links) for every application of
 * this user on this machine, and serves it on a local socket; applications
 * attach to it (`device.ts` decides when) and share one link per peer. It
 * starts abilities listed in its manifest when a collaboration request asks
 * for one that no attached application registered.
 *
 * @example Start a daemon on a socket of its own, then stop it
 * ```ts ignore
 * const daemon = await startDaemon({ socket: "/tmp/lw/daemon.sock" });
 * console.log(daemon.deviceId, daemon.socket);
 * await daemon.close();
 * ```
 *
 * @module
 */
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, isAbsolute, join, resolve } from "node:path";
import process from "node:process";
import { createDevice, type DeviceOptions } from "./device.ts";
import type { DeviceSurface } from "./core/device/driver_options.ts";
import { type Manifest, parseManifest } from "./core/daemon/manifest.ts";
import { type DaemonEvent, type DaemonLimits, DaemonServer } from "./core/daemon/server.ts";
import { runtimeHost } from "./platform/host.ts";
import { stateDirectory, tryLock } from "./platform/identity.ts";
import { defaultDaemonSocket, listenDaemonSocket } from "./platform/_daemon_socket.ts";
import { processLauncher } from "./platform/_daemon_launch.ts";

export type { DaemonEvent, DaemonLimits } from "./core/daemon/server.ts";
export type { Manifest, ManifestEntry, StartMode } from "./core/daemon/manifest.ts";
export { defaultDaemonSocket } from "./platform/_daemon_socket.ts";

/** The manifest's file name in the user's configuration folder. */
export const MANIFEST_FILE = "abilities.json";

/**
 * The default manifest path: `$XDG_CONFIG_HOME/linkweave/abilities.json`
 * (`~/.config/linkweave/abilities.json` when `XDG_CONFIG_HOME` is unset or
 * relative).
 *
 * @param env The environment. @default {process.env}
 * @returns The path (the file may not exist).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.equal(defaultManifest({ XDG_CONFIG_HOME: "/etc/me" }), "/etc/me/linkweave/abilities.json");
 * ```
 */
export function defaultManifest(env: Record<string, string | undefined> = process.env): string {
  const xdg = env.XDG_CONFIG_HOME;
  const base = xdg !== undefined && xdg !== "" && isAbsolute(xdg)
    ? xdg
    : join(env.HOME || homedir(), ".config");
  return join(base, "linkweave", MANIFEST_FILE);
}

/** Options of {@linkcode startDaemon}. */
export interface DaemonOptions {
  /**
   * Where to listen.
   * @default {LINKWEAVE_DAEMON when it is a path, else $XDG_RUNTIME_DIR/linkweave/daemon.sock}
   */
  socket?: string;
  /** A group whose members may attach too: the socket's mode is 0660 (else 0600). */
  group?: string;
  /**
   * The manifest file; given, it must exist.
   * @default {defaultManifest(), when that file exists}
   */
  manifest?: string;
  /**
   * The device's configuration (the `LINKWEAVE_*` variables fill what is not
   * given). With no `deviceId`, the daemon takes the identity `default`
   * (or `identity`), and fails when a running process holds it.
   */
  device?: DeviceOptions;
  /** Bounds on what applications make the daemon hold. @default {DAEMON_LIMITS} */
  limits?: Partial<DaemonLimits>;
  /** Hears what happens (applications attach and leave, abilities start). */
  onEvent?: (event: DaemonEvent) => void;
}

/** A running device daemon. */
export interface Daemon {
  /** Its socket. */
  readonly socket: string;
  /** Its device's id. */
  readonly deviceId: string;
  /** Its device's TCP port (0 without TCP). */
  readonly port: number;
  /** The manifest it read, if any. */
  readonly manifest: string | undefined;
  /** The applications attached now. */
  apps(): { app: number; pid: number; connections: number; serves: number }[];
  /** The peers its device has a link to. */
  links(): string[];
  /**
   * Stop: applications are told and detached, the device closes.
   *
   * @returns When stopped.
   */
  close(): Promise<void>;
}

function readManifest(path: string | undefined): { file?: string; manifest: Manifest } {
  const file = path ?? defaultManifest();
  if (path === undefined && !existsSync(file)) return { manifest: { abilities: [] } };
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw new Error(`Cannot read the manifest "${file}": ${(e as Error).message}`);
  }
  return { file, manifest: parseManifest(text, file) };
}

/**
 * Start a device daemon.
 *
 * @param options Socket, group, manifest, the device's configuration.
 * @returns The daemon, listening.
 * @throws {Error} When a daemon already runs there or for this identity, the
 *   manifest is wrong, or the device cannot start.
 */
export async function startDaemon(options: DaemonOptions = {}): Promise<Daemon> {
  const env = process.env;
  const fromEnv = env.LINKWEAVE_DAEMON?.startsWith("/") ? env.LINKWEAVE_DAEMON : undefined;
  const socket = resolve(options.socket ?? fromEnv ?? defaultDaemonSocket(env));
  const { file, manifest } = readManifest(options.manifest);
  mkdirSync(dirname(socket), { recursive: true, mode: 0o700 });
  const unlock = await tryLock(`${socket}.lock`);
  if (unlock === undefined) {
    throw new Error(`Cannot start the device daemon: another one runs on "${socket}"`);
  }
  const releases: (() => Promise<void>)[] = [unlock];
  const undo = async () => {
    for (const r of releases.reverse()) await r().catch(() => {});
  };
  try {
    const host = runtimeHost();
    const given = options.device ?? {};
    const probe = createDevice({ ...given, daemon: false });
    const configured = probe.config().deviceId;
    if (configured !== undefined) {
      // One daemon per identity: a configured id's identity folder is locked as a taken one is.
      const dir = join(stateDirectory(env), "ids", configured.replaceAll(":", "-"));
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      const idLock = await tryLock(join(dir, "lock"));
      if (idLock === undefined) {
        throw new Error(
          `Cannot start the device daemon: device ${configured} runs in another process`,
        );
      }
      releases.push(idLock);
    }
    const device = configured !== undefined
      ? probe
      : createDevice({ ...given, daemon: false, identity: probe.config().identity ?? "default" });
    releases.push(() => device.close());
    const driver = await device.runtime() as unknown as DeviceSurface;
    const launcher = processLauncher({
      socket,
      base: file === undefined ? process.cwd() : dirname(file),
    });
    releases.push(() => Promise.resolve(launcher.stop()));
    const server = new DaemonServer({
      host,
      device: driver,
      known: () => [
        ...new Set([
          ...device.config().peers.map((p) => p.deviceId),
          ...device.knownDevices().map((k) => k.deviceId),
        ]),
      ],
      manifest,
      launch: launcher.launch,
      pid: process.pid,
      limits: options.limits,
      onEvent: options.onEvent,
      // The daemon owns the identity and trust store: its applications pair through it.
      pairing: {
        offer: (timeout) => device.pairing.offer({ timeout }),
        enter: (target, code) => device.pairing.enter(target, code),
      },
    });
    releases.push(() => Promise.resolve(server.close()));
    const listener = await listenDaemonSocket(socket, {
      group: options.group,
      onConnection: (end) => {
        const app = server.attach(end);
        return {
          bytes: (b) => app.handleBytes(b),
          drained: () => app.handleDrained(),
          closed: (m) => app.handleClosed(m),
        };
      },
    });
    releases.push(() => listener.close());
    // Applications are told first, then the socket closes.
    releases.push(() => Promise.resolve(server.close()));
    let closing: Promise<void> | undefined;
    return {
      socket,
      deviceId: driver.deviceId,
      port: driver.port,
      manifest: file,
      apps: () => server.apps,
      links: () => device.links(),
      close: () => closing ??= undo(),
    };
  } catch (e) {
    await undo();
    throw e;
  }
}

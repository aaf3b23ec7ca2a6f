/**
 * The daemon server's public types and bounds (re-exported by `server.ts`):
 * {@linkcode DaemonLimits} and their defaults, the state report interval,
 * the launcher of manifest entries, the daemon's log events, the socket to
 * one application as the server uses it and as its driver feeds it, and the
 * server's options.
 *
 * @module
 */
import type { DeviceHost } from "../device/host.ts";
import type { DeviceSurface } from "../device/driver_options.ts";
import type { Manifest, ManifestEntry } from "./manifest.ts";
import type { AttachPaired } from "./wire.ts";

/** The daemon's bounds on what applications make it hold. */
export interface DaemonLimits {
  /** Applications attached at once; one more is told so and closed. @default {256} */
  apps: number;
  /** Connections one application has through the daemon (both directions). @default {1024} */
  connectionsPerApp: number;
  /** Bytes waiting to be written to one application's socket; beyond, it is detached. @default {67108864} */
  appQueueBytes: number;
  /** Names one application serves per service kind. @default {1024} */
  servedNames: number;
  /** How long a new application has to say hello (ms). @default {5000} */
  helloTimeout: number;
  /** Pairing requests one application has under way; one more fails at once. @default {4} */
  pairings: number;
}

/** The default bounds. */
export const DAEMON_LIMITS: Readonly<DaemonLimits> = Object.freeze({
  apps: 256,
  connectionsPerApp: 1024,
  appQueueBytes: 64 * 1024 * 1024,
  servedNames: 1024,
  helloTimeout: 5000,
  pairings: 4,
});

/** How often the device's links and known peers are compared and sent on when they changed (ms). */
export const STATE_INTERVAL = 500;

/** A started ability's process, as the daemon follows it. */
export interface Launch {
  /** Its process id, when it started. */
  pid: number | undefined;
  /** Settles with how it ended (`"exited with code 1"`, `"could not start: ..."`). */
  exited: Promise<string>;
}

/**
 * Starts the command of a manifest entry.
 *
 * @param entry The ability.
 * @param options Whether to start it in the foreground (see `docs/daemon.md`).
 * @returns The process.
 */
export type Launcher = (entry: ManifestEntry, options: { foreground: boolean }) => Launch;

/** What happened in the daemon (for its log). */
export type DaemonEvent =
  | { event: "attached"; app: number; pid: number }
  | { event: "detached"; app: number; pid: number; why: string }
  | { event: "launched"; ability: string; pid: number | undefined; foreground: boolean }
  | { event: "launchFailed"; ability: string; why: string }
  | { event: "unknownAbility"; ability: string; peer: string };

/** The socket to one application, as the daemon uses it. */
export interface AppTransport {
  /**
   * Write bytes (queued when the socket cannot take them now).
   *
   * @param bytes The bytes.
   */
  write(bytes: Uint8Array): void;
  /** Bytes written and not yet taken by the socket. */
  readonly queued: number;
  /** Close the socket. */
  close(): void;
}

/** An attached application, as its socket's driver feeds it. */
export interface AppConnection {
  /**
   * Bytes from the application.
   *
   * @param bytes The bytes.
   */
  handleBytes(bytes: Uint8Array): void;
  /** The socket took what was queued. */
  handleDrained(): void;
  /**
   * The socket closed.
   *
   * @param message Why, when it failed.
   */
  handleClosed(message?: string): void;
}

/** Pairing by the daemon's device (its `pairing`), for its applications. */
export interface DaemonPairing {
  /**
   * Show a code: the first device that enters it pairs.
   *
   * @param timeout How long the offer stands (ms).
   * @returns The code, and the device that paired (rejects when it fails or expires).
   */
  offer(timeout: number): Promise<{ code: string; paired: Promise<AttachPaired> }>;
  /**
   * Enter the code another device shows.
   *
   * @param target That device's `host:port`.
   * @param code The 6 digits.
   * @returns The device paired with.
   */
  enter(target: string, code: string): Promise<AttachPaired>;
}

/** Options of {@linkcode DaemonServer}. */
export interface DaemonServerOptions {
  /** The machine. */
  host: DeviceHost;
  /** The device the daemon runs. */
  device: DeviceSurface;
  /** The peers the device knows (discovery, static peers). @default {() => []} */
  known?: () => string[];
  /** What it may start. @default {{ abilities: [] }} */
  manifest?: Manifest;
  /** Starts a manifest entry's command. @default {none: nothing is started} */
  launch?: Launcher;
  /** The daemon's process id (in `welcome`). @default {0} */
  pid?: number;
  /** Bounds. @default {DAEMON_LIMITS} */
  limits?: Partial<DaemonLimits>;
  /** Hears what happens. @default {nothing} */
  onEvent?: (event: DaemonEvent) => void;
  /** Pairs for applications. @default {none: a `pair` fails with 32390300} */
  pairing?: DaemonPairing;
}

/**
 * The device daemon's local socket (`docs/daemon.md`), on Deno, Bun and
 * Node alike (`node:net` over a Unix domain socket): where it is by
 * default, listening on it with its mode and group, and connecting to it.
 *
 * - Default path: `$XDG_RUNTIME_DIR/linkweave/daemon.sock`, else
 *   `<tmpdir>/linkweave-<uid>/daemon.sock` (the per-user runtime directory
 *   of `local_peers.ts`, mode 0700).
 * - Mode 0600 (only this user), or 0660 with a group (its members too: the
 *   folder must then let them in, see the docs).
 * - A socket file left by a daemon that died is replaced; one a live daemon
 *   answers on is not (the second daemon gets an error).
 *
 * @module
 */
import {
  chmodSync,
  chownSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  unlinkSync,
} from "node:fs";
import * as net from "node:net";
import { dirname, join } from "node:path";
import process from "node:process";
import { runtimeDirectory } from "./local_peers.ts";

/** The file name of the daemon's socket in the per-user runtime directory. */
export const DAEMON_SOCKET_FILE = "daemon.sock";

/**
 * The default socket path of the device daemon.
 *
 * @param env The environment (`XDG_RUNTIME_DIR`). @default {process.env}
 * @returns The path.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.equal(defaultDaemonSocket({ XDG_RUNTIME_DIR: "/run/user/7" }), "/run/user/7/linkweave/daemon.sock");
 * ```
 */
export function defaultDaemonSocket(
  env: Record<string, string | undefined> = process.env,
): string {
  return join(runtimeDirectory(env), DAEMON_SOCKET_FILE);
}

/** One end of a daemon socket, as the attach protocol's two sides use it. */
export interface SocketEnd {
  /**
   * Write bytes (queued in memory when the socket cannot take them now).
   *
   * @param bytes The bytes.
   */
  write(bytes: Uint8Array): void;
  /** Bytes written and not yet taken by the socket. */
  readonly queued: number;
  /** Close it. */
  close(): void;
}

/** What one end of a socket reports. */
export interface SocketEvents {
  /** Bytes arrived. */
  bytes(bytes: Uint8Array): void;
  /** What was queued was taken. */
  drained(): void;
  /** It closed (with why, when it failed). */
  closed(message?: string): void;
}

/** How long a closing socket may take to flush what was written before it is cut (ms). */
const CLOSE_GRACE = 1000;

/** Close after what was written (a last `error` message) is flushed; cut it if that stalls. */
function closeGently(socket: net.Socket): void {
  if (socket.destroyed) return;
  socket.end();
  const t = setTimeout(() => socket.destroy(), CLOSE_GRACE);
  socket.once("close", () => clearTimeout(t));
}

function end(socket: net.Socket): AttachSocket {
  return {
    write: (bytes) => void socket.write(bytes),
    get queued() {
      return socket.writableLength;
    },
    close: () => closeGently(socket),
    unref: () => void socket.unref(),
  };
}

function wire(socket: net.Socket, events: SocketEvents): void {
  let closed = false;
  const close = (message?: string) => {
    if (closed) return;
    closed = true;
    events.closed(message);
  };
  socket.on("data", (b: Uint8Array) => events.bytes(b));
  socket.on("drain", () => events.drained());
  // An error (EPIPE, ECONNRESET) is told with the close that follows it, once
  // what arrived before it was read (the other side's last message says why).
  let failure: string | undefined;
  socket.on("error", (e: Error) => failure ??= e.message);
  socket.on("close", () => close(failure));
}

/** Options of {@linkcode listenDaemonSocket}. */
export interface ListenOptions {
  /** A group (name or number) whose members may attach too (mode 0660). @default {none: mode 0600} */
  group?: string;
  /**
   * A new application: its socket end, and what its events go to.
   *
   * @param socket The application's end.
   * @returns Its events.
   */
  onConnection(socket: SocketEnd): SocketEvents;
}

/** A listening daemon socket. */
export interface DaemonSocket {
  /** Its path. */
  path: string;
  /** Stop listening, cut the applications still connected, remove the file. */
  close(): Promise<void>;
}

function groupId(group: string): number {
  if (/^\d+$/.test(group)) return Number(group);
  let text = "";
  try {
    text = readFileSync("/etc/group", "utf8");
  } catch { /* no group file */ }
  for (const line of text.split("\n")) {
    const [name, , gid] = line.split(":");
    if (name === group && /^\d+$/.test(gid ?? "")) return Number(gid);
  }
  throw new Error(`Cannot use group "${group}": no such group in /etc/group`);
}

/**
 * Whether a socket file (or anything) is at a path: without one, no daemon
 * listens there.
 *
 * @param path The socket.
 * @returns Whether something is there.
 */
export function socketExists(path: string): boolean {
  return existsSync(path);
}

/**
 * Whether a device daemon answers on a socket: it accepts a connection
 * within `timeout` ms.
 *
 * @param path The socket.
 * @param timeout How long to wait (ms).
 * @returns Whether it accepted.
 */
export function socketAnswers(path: string, timeout: number): Promise<boolean> {
  return new Promise((resolve) => {
    if (!existsSync(path)) return resolve(false);
    const s = net.createConnection(path);
    const done = (v: boolean) => {
      clearTimeout(t);
      s.destroy();
      resolve(v);
    };
    const t = setTimeout(() => done(false), timeout);
    s.on("connect", () => done(true));
    s.on("error", () => done(false));
  });
}

/**
 * Listen on the daemon's socket: create its folder (mode 0700) when it is
 * the default one, replace a dead daemon's socket file, set the mode
 * (0600, or 0660 and the group).
 *
 * @param path The socket path.
 * @param options The group, and what new connections go to.
 * @returns The socket.
 * @throws {Error} When a daemon answers there already, or the path cannot be used.
 */
export async function listenDaemonSocket(
  path: string,
  options: ListenOptions,
): Promise<DaemonSocket> {
  const dir = dirname(path);
  if (!existsSync(dir)) mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (existsSync(path)) {
    if (await socketAnswers(path, 1000)) {
      throw new Error(`Cannot listen on "${path}": a device daemon already answers there`);
    }
    if (!lstatSync(path).isSocket()) {
      throw new Error(`Cannot listen on "${path}": a file that is not a socket is there`);
    }
    unlinkSync(path); // a daemon that died left it
  }
  const gid = options.group === undefined ? undefined : groupId(options.group);
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    const events = options.onConnection(end(socket));
    wire(socket, events);
  });
  // No other user may connect between listen() and chmod(): a strict umask while binding.
  const mask = process.umask(0o177);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(path, () => {
        server.off("error", reject);
        resolve();
      });
    });
  } finally {
    process.umask(mask);
  }
  chmodSync(path, gid === undefined ? 0o600 : 0o660);
  if (gid !== undefined) chownSync(path, process.getuid?.() ?? -1, gid);
  return {
    path,
    close: () =>
      new Promise<void>((resolve) => {
        // server.close() waits for every connection: those of applications still attached close.
        server.close(() => resolve());
        for (const socket of sockets) closeGently(socket);
        try {
          unlinkSync(path);
        } catch { /* gone already */ }
      }),
  };
}

/**
 * Connect to a daemon's socket. The socket does not keep the process alive
 * by itself once {@linkcode AttachSocket.unref} was called.
 *
 * @param path The socket.
 * @param events What its events go to.
 * @returns The connected end; rejects when nothing listens there.
 */
export function connectDaemonSocket(path: string, events: SocketEvents): Promise<AttachSocket> {
  return new Promise((resolve, reject) => {
    const socket = net.createConnection(path);
    const failed = (e: Error) => reject(new Error(`Cannot attach to "${path}": ${e.message}`));
    socket.once("error", failed);
    socket.once("connect", () => {
      socket.off("error", failed);
      socket.setNoDelay?.(true);
      wire(socket, events);
      resolve(end(socket));
    });
  });
}

/** A connected application end. */
export interface AttachSocket extends SocketEnd {
  /** Let the process exit while only this socket is open. */
  unref(): void;
}

/**
 * What the commands that run a device share: the device options (`--id`,
 * `--port`, `--bind`, `--peer`; everything else from `LINKWEAVE_*`,
 * `docs/config.md`), starting the device with one line on stderr saying
 * where it listens, connecting with every failure explained, and the
 * meaning of every code linkEnhance reports.
 *
 * @module
 */
import process from "node:process";
import {
  type Connection,
  type ConnectResult,
  createDevice,
  type Device,
  type DeviceOptions,
  type DeviceRuntime,
} from "../link_enhance.ts";
import { DisconnectReason, ErrorCode } from "../mod.ts";
import { type OptionSpec, type Parsed, UsageError } from "./_args.ts";
import type { Io } from "./mod.ts";

/** The device options every device command accepts. */
export const DEVICE_OPTIONS: Record<string, OptionSpec> = {
  id: { value: true },
  port: { value: true },
  bind: { value: true },
  peer: { value: true, repeat: true },
  "connect-timeout": { value: true },
};

/** The device options, for `--help` texts. */
export const DEVICE_HELP =
  `Device options (each defaults to its LINKWEAVE_* variable, docs/config.md):
  --id ID                this device's id (AA:BB:CC:DD:EE:FF); default: the first
                         identity no running process holds
  --port N               TCP port to listen on (0: any free port)
  --bind ADDRESS         address to listen on (default 127.0.0.1)
  --peer ID@HOST:PORT    a peer's address, tried before discovery (repeatable)
  --connect-timeout MS   how long a connect waits for an answer (default 10000)
`;

/**
 * The device's options from the command line.
 *
 * @param p The parsed line.
 * @returns The options (unset ones come from `LINKWEAVE_*`).
 */
export function deviceOptions(p: Parsed): DeviceOptions {
  const o: DeviceOptions = {};
  const one = (name: string) => p.values.get(name)?.[0];
  const id = one("id");
  if (id !== undefined) o.deviceId = id;
  const port = one("port");
  if (port !== undefined) o.port = /^\d+$/.test(port) ? Number(port) : port as unknown as number;
  const bind = one("bind");
  if (bind !== undefined) o.bind = bind;
  const peers = p.values.get("peer");
  if (peers !== undefined) o.peers = peers;
  const timeout = one("connect-timeout");
  if (timeout !== undefined) {
    o.connectTimeout = /^\d+$/.test(timeout) ? Number(timeout) : timeout as unknown as number;
  }
  return o;
}

/** A started device. */
export interface Started {
  /** The device. */
  device: Device;
  /** Its running state (id, port, address). */
  runtime: DeviceRuntime;
}

/**
 * Make and start a device, and say on stderr where it listens:
 * `linkweave <command>: device <ID> listening on <HOST>:<PORT>`.
 *
 * @param p The parsed line (device options).
 * @param io Where to say it.
 * @param command The command's name, for the message.
 * @param extra Options the command sets itself (they win).
 * @returns The device and its running state.
 * @throws {UsageError} For a malformed device option or variable.
 * @throws {Error} When the device cannot start (saying why).
 */
export async function startDevice(
  p: Parsed,
  io: Io,
  command: string,
  extra: DeviceOptions = {},
): Promise<Started> {
  let device: Device;
  try {
    device = createDevice({ ...deviceOptions(p), ...extra });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  let runtime: DeviceRuntime;
  try {
    runtime = await device.runtime();
  } catch (e) {
    await device.close().catch(() => {});
    if ((e as { code?: unknown }).code === ErrorCode.PARAMETER_ERROR) {
      throw new UsageError((e as Error).message);
    }
    throw new Error(`Cannot start the device: ${(e as Error).message}`);
  }
  io.stderr(
    `linkweave ${command}: device ${runtime.deviceId} listening on ` +
      `${hostPort(runtime.bind, runtime.port)}\n`,
  );
  return { device, runtime };
}

/**
 * `host:port`, with an IPv6 host in brackets.
 *
 * @param host The host.
 * @param port The port.
 * @returns The address.
 */
export function hostPort(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * What a `connectResult` failure or an API error code means, and what to do.
 *
 * @param code The code.
 * @param context The peer and the server name it concerns.
 * @returns One sentence or two, without a trailing period.
 */
export function explainCode(code: number, context: { peer?: string; name?: string } = {}): string {
  const peer = context.peer ?? "the peer";
  const name = context.name === undefined ? "that name" : `"${context.name}"`;
  switch (code) {
    case ErrorCode.CONNECT_TIMEOUT:
      return `${code} connect timeout: ${peer} did not answer in time. It is not running, not ` +
        "found (`linkweave devices` lists the devices this one can see), or not reachable; " +
        "give its address with --peer ID@HOST:PORT";
    case ErrorCode.PEER_SERVER_NOT_STARTED:
      return `${code} peer server not started: ${peer} has no started server named ${name}; ` +
        `start one there (\`linkweave serve ${context.name ?? "NAME"}\`)`;
    case ErrorCode.SERVER_LIMIT:
      return `${code} server limit: this device already runs its maximum of started servers ` +
        "(raise it with LINKWEAVE_LIMITS=servers=N)";
    case ErrorCode.DUPLICATE_SERVER_NAME:
      return `${code} duplicate server name: a server named ${name} already exists in this ` +
        "process";
    case ErrorCode.CONNECTION_LIMIT:
      return `${code} connection limit: this device already has its maximum of client ` +
        "connections (raise it with LINKWEAVE_LIMITS=connections=N)";
    case ErrorCode.CONNECTION_NOT_READY:
      return `${code} connection not ready: the connection is not connected`;
    case ErrorCode.INVALID_PARAMETER:
    case ErrorCode.PARAMETER_ERROR:
      return `${code} invalid parameter: a device id, server name or message was malformed`;
    case ErrorCode.INTERNAL_ERROR:
      return `${code} internal error: ${peer} refused the link or the connection: another ` +
        "account or not paired (`linkweave account` on both; `linkweave pair`), its key " +
        "changed (`linkweave pair revoke`), or a limit of links or connections was reached; " +
        "LINKWEAVE_TRACE=1 shows which";
    case ErrorCode.SERVER_DIED:
      return `${code} link service died: the device could not start (is the port in use? ` +
        "`linkweave doctor`)";
    case ErrorCode.SERVER_STOPPED:
      return `${code} server stopped by the system`;
    case DisconnectReason.PEER_DISCONNECTED:
      return `${code} peer disconnected: ${peer} closed the connection or stopped`;
    case DisconnectReason.LINK_CLOSED:
      return `${code} link closed: the link to ${peer} was lost (no answer within the ` +
        "keep-alive timeout, a socket error, or the peer was killed)";
    case DisconnectReason.SERVICE_DIED:
      return `${code} service died: the link service failed`;
    default:
      return `${code}: an unknown code`;
  }
}

/**
 * Connect to a peer's server.
 *
 * @param device The device.
 * @param target The peer's id and the server's name.
 * @returns The connected connection.
 * @throws {UsageError} For a malformed id or name.
 * @throws {Error} When the connect fails, saying what the code means.
 */
export async function connectTo(
  device: Device,
  target: { peer: string; name: string },
): Promise<Connection> {
  let conn: Connection;
  try {
    conn = device.createConnection(target.peer, target.name);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const result = await new Promise<ConnectResult>((resolve, reject) => {
    conn.on("connectResult", resolve);
    try {
      conn.connect();
    } catch (e) {
      reject(new Error(explainCode((e as { code: number }).code, target)));
    }
  });
  if (!result.success) {
    conn.close();
    throw new Error(
      `Cannot connect to "${target.name}" on ${target.peer}: ${explainCode(result.reason, target)}`,
    );
  }
  return conn;
}

/**
 * Send a message, waiting for room in the connection's send queue first.
 * The queue takes 1 MiB; `drain` comes once it is back to half.
 *
 * @param conn The connection.
 * @param bytes The message, 1..1024 bytes.
 * @returns When it was accepted.
 */
export async function sendPaced(conn: Connection, bytes: Uint8Array): Promise<void> {
  if (conn.bufferedAmount >= HIGH_WATER) await drained(conn);
  if (bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength) {
    conn.sendData(bytes.buffer as ArrayBuffer);
    return;
  }
  // A copy of exactly these bytes (a Buffer's slice is a view of its pool).
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  conn.sendData(copy.buffer);
}

/** How many bytes a sender lets wait in a connection's send queue before it waits for `drain`. */
export const HIGH_WATER: number = 768 * 1024;

/**
 * Wait for `drain` (or for the connection to go away).
 *
 * @param conn The connection.
 * @returns When the queue has room.
 */
export function drained(conn: Connection): Promise<void> {
  return new Promise((resolve) => {
    const check = setInterval(() => {
      // A connection that went away never drains.
      if (conn.toJSON().state !== "connected") done();
    }, 200);
    const done = () => {
      clearInterval(check);
      conn.off("drain");
      resolve();
    };
    conn.on("drain", done);
  });
}

/**
 * Run `fn` once on SIGINT or SIGTERM.
 *
 * @param fn What to do (close the device, remove partial files).
 * @returns Undo.
 */
export function onInterrupt(fn: () => void): () => void {
  const handler = () => fn();
  process.once("SIGINT", handler);
  process.once("SIGTERM", handler);
  return () => {
    process.off("SIGINT", handler);
    process.off("SIGTERM", handler);
  };
}

/**
 * D-Bus errors as linkweave errors: the one place where a D-Bus error name
 * becomes a {@linkcode DBusError} with a numeric code.
 *
 * Codes follow the socket convention (`2301000 + errno`): a BLE transport is
 * a socket-like platform, and the errno that fits each D-Bus or BlueZ error
 * tells a caller what kind of failure it was (`EACCES` for a refused policy,
 * `ETIMEDOUT` for no reply, `ENETDOWN` for an adapter that is not ready...).
 * The D-Bus error name itself stays in `data.name` and `dbusName`.
 *
 * @module
 */
import { ErrorCode, socketErrorCode } from "../../../core/error_codes.ts";
import { PlatformError } from "../../../core/errors.ts";

/** Well-known D-Bus error names used by this client. */
export const DBusErrorName = {
  /** Generic failure. */
  FAILED: "org.freedesktop.DBus.Error.Failed",
  /** No reply within the timeout. */
  NO_REPLY: "org.freedesktop.DBus.Error.NoReply",
  /** The connection to the bus closed. */
  DISCONNECTED: "org.freedesktop.DBus.Error.Disconnected",
  /** The bus policy refused the message. */
  ACCESS_DENIED: "org.freedesktop.DBus.Error.AccessDenied",
  /** No process owns the destination name. */
  SERVICE_UNKNOWN: "org.freedesktop.DBus.Error.ServiceUnknown",
  /** The name has no owner. */
  NAME_HAS_NO_OWNER: "org.freedesktop.DBus.Error.NameHasNoOwner",
  /** Bad arguments. */
  INVALID_ARGS: "org.freedesktop.DBus.Error.InvalidArgs",
  /** Unknown method. */
  UNKNOWN_METHOD: "org.freedesktop.DBus.Error.UnknownMethod",
  /** Unknown object. */
  UNKNOWN_OBJECT: "org.freedesktop.DBus.Error.UnknownObject",
  /** Unknown interface. */
  UNKNOWN_INTERFACE: "org.freedesktop.DBus.Error.UnknownInterface",
  /** Unknown property. */
  UNKNOWN_PROPERTY: "org.freedesktop.DBus.Error.UnknownProperty",
  /** The property is read-only. */
  PROPERTY_READ_ONLY: "org.freedesktop.DBus.Error.PropertyReadOnly",
  /** A limit of the bus or the peer was reached. */
  LIMITS_EXCEEDED: "org.freedesktop.DBus.Error.LimitsExceeded",
  /** A message was malformed. */
  INCONSISTENT_MESSAGE: "org.freedesktop.DBus.Error.InconsistentMessage",
  /** Authentication with the bus failed. */
  AUTH_FAILED: "org.freedesktop.DBus.Error.AuthFailed",
  /** The bus address is invalid or unreachable. */
  BAD_ADDRESS: "org.freedesktop.DBus.Error.BadAddress",
  /** Descriptors cannot be passed on this connection. */
  NOT_SUPPORTED: "org.freedesktop.DBus.Error.NotSupported",
} as const;

/** errno name by D-Bus or BlueZ error name (the suffix after the last dot for BlueZ). */
const ERRNO_BY_NAME: ReadonlyMap<string, string> = new Map([
  [DBusErrorName.ACCESS_DENIED, "EACCES"],
  [DBusErrorName.AUTH_FAILED, "EACCES"],
  ["org.freedesktop.DBus.Error.InteractiveAuthorizationRequired", "EACCES"],
  [DBusErrorName.NO_REPLY, "ETIMEDOUT"],
  ["org.freedesktop.DBus.Error.Timeout", "ETIMEDOUT"],
  ["org.freedesktop.DBus.Error.TimedOut", "ETIMEDOUT"],
  [DBusErrorName.DISCONNECTED, "ECONNRESET"],
  [DBusErrorName.SERVICE_UNKNOWN, "ECONNREFUSED"],
  ["org.freedesktop.DBus.Error.NoServer", "ECONNREFUSED"],
  ["org.freedesktop.DBus.Error.FileNotFound", "ENOENT"],
  [DBusErrorName.NAME_HAS_NO_OWNER, "ECONNREFUSED"],
  [DBusErrorName.INVALID_ARGS, "EINVAL"],
  [DBusErrorName.INCONSISTENT_MESSAGE, "EINVAL"],
  [DBusErrorName.BAD_ADDRESS, "EINVAL"],
  [DBusErrorName.UNKNOWN_METHOD, "EOPNOTSUPP"],
  [DBusErrorName.UNKNOWN_OBJECT, "ENOENT"],
  [DBusErrorName.UNKNOWN_INTERFACE, "EOPNOTSUPP"],
  [DBusErrorName.UNKNOWN_PROPERTY, "EOPNOTSUPP"],
  [DBusErrorName.PROPERTY_READ_ONLY, "EACCES"],
  [DBusErrorName.NOT_SUPPORTED, "EOPNOTSUPP"],
  [DBusErrorName.LIMITS_EXCEEDED, "ENOBUFS"],
  ["org.freedesktop.DBus.Error.NoMemory", "ENOBUFS"],
  // BlueZ (org.bluez.Error.*)
  ["org.bluez.Error.NotPermitted", "EACCES"],
  ["org.bluez.Error.NotAuthorized", "EACCES"],
  ["org.bluez.Error.AuthenticationFailed", "EACCES"],
  ["org.bluez.Error.AuthenticationRejected", "EACCES"],
  ["org.bluez.Error.InvalidArguments", "EINVAL"],
  ["org.bluez.Error.InvalidLength", "EINVAL"],
  ["org.bluez.Error.InvalidOffset", "EINVAL"],
  ["org.bluez.Error.InvalidValueLength", "EINVAL"],
  ["org.bluez.Error.NotSupported", "EOPNOTSUPP"],
  ["org.bluez.Error.NotAvailable", "EOPNOTSUPP"],
  ["org.bluez.Error.InProgress", "EALREADY"],
  ["org.bluez.Error.AlreadyConnected", "EISCONN"],
  ["org.bluez.Error.NotConnected", "ENOTCONN"],
  ["org.bluez.Error.NotReady", "ENETDOWN"],
  ["org.bluez.Error.DoesNotExist", "ENOENT"],
  ["org.bluez.Error.AlreadyExists", "EADDRINUSE"],
  ["org.bluez.Error.ConnectionAttemptFailed", "EHOSTUNREACH"],
  ["org.bluez.Error.AuthenticationTimeout", "ETIMEDOUT"],
]);

/** errno names for BlueZ's `Failed` messages that say more than the name. */
const ERRNO_BY_FAILED_TEXT: readonly [RegExp, string][] = [
  [/abort-by-local|connection abort/i, "ECONNABORTED"],
  [/timeout|timed out/i, "ETIMEDOUT"],
  [/host is down|page-timeout|not found|unreachable/i, "EHOSTUNREACH"],
  [/not ready|powered/i, "ENETDOWN"],
  [/refused|rejected/i, "ECONNREFUSED"],
];

/**
 * The numeric code of a D-Bus error name (and its message, for BlueZ's
 * `Failed`).
 *
 * @param name The D-Bus error name.
 * @param text The error's message.
 * @returns `2301000 + errno`, or `2300002` when no errno fits.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.equal(dbusErrorCode("org.bluez.Error.InProgress"), 2301114);
 * assert.equal(dbusErrorCode("org.bluez.Error.Failed", "le-connection-abort-by-local"), 2301103);
 * ```
 */
export function dbusErrorCode(name: string, text = ""): number {
  const errno = ERRNO_BY_NAME.get(name) ??
    ERRNO_BY_FAILED_TEXT.find(([re]) => re.test(text))?.[1];
  return errno === undefined ? ErrorCode.SOCKET_INTERNAL_ERROR : socketErrorCode(errno);
}

/** Options of {@linkcode DBusError}. */
export interface DBusErrorOptions {
  /** The D-Bus error's own message text (the first string of its body). */
  text?: string;
  /** The underlying error. */
  cause?: unknown;
}

/**
 * A D-Bus error: an error reply, a timeout, or a failure of the connection.
 * `dbusName` (also `data.name`) keeps the D-Bus error name, `text` the
 * error's own message; `code` comes from {@linkcode dbusErrorCode}.
 *
 * Throw one from an exported method to reply with that error name.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const e = new DBusError("org.bluez.Error.NotReady", "Cannot connect", { text: "Resource Not Ready" });
 * assert.equal(e.data?.name, "org.bluez.Error.NotReady");
 * assert.equal(e.code, 2301100);
 * assert.equal(e.message, "Cannot connect: org.bluez.Error.NotReady: Resource Not Ready");
 * ```
 */
export class DBusError extends PlatformError {
  /** The D-Bus error name. */
  readonly dbusName: string;
  /** The D-Bus error's own message. */
  readonly text: string;

  /**
   * @param name The D-Bus error name.
   * @param action What was being done, e.g. `Cannot connect to "00:11:22:33:44:55"`.
   * @param options The error's own text and the cause.
   */
  constructor(name: string, action: string, options: DBusErrorOptions = {}) {
    const text = options.text ?? "";
    super(dbusErrorCode(name, text), `${action}: ${name}${text === "" ? "" : `: ${text}`}`, {
      data: { platform: "bluez", name },
      cause: options.cause,
    });
    this.name = "DBusError";
    this.dbusName = name;
    this.text = text;
  }
}

/**
 * Whether an error is a {@linkcode DBusError} with one of some names.
 *
 * @param e Any value.
 * @param names D-Bus error names.
 * @returns `true` when `e` is a `DBusError` named one of `names`.
 */
export function isDBusError(e: unknown, ...names: string[]): e is DBusError {
  return e instanceof DBusError && (names.length === 0 || names.includes(e.dbusName));
}

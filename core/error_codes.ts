/**
 * The one table of every error code linkweave uses, with its default message.
 *
 * Numbers are OpenHarmony's where we mirror an OpenHarmony API (see
 * `docs/errors.md`); messages follow OpenHarmony's wording without the
 * trailing period.
 *
 * @module
 */

/** Every numeric error code used by the public API, by name. */
export const ErrorCode = {
  /** Universal: the caller lacks a permission. */
  PERMISSION_DENIED: 201,
  /** Universal: a system API was called by a non-system application. */
  NOT_SYSTEM_APP: 202,
  /** Universal: a parameter is missing, of the wrong type or out of range. */
  PARAMETER_ERROR: 401,
  /** Universal: the capability is not supported on this device. */
  CAPABILITY_NOT_SUPPORTED: 801,

  /** linkEnhance: the peer did not answer before the connect timeout. */
  CONNECT_TIMEOUT: 32390200,
  /** linkEnhance: the peer has no started server with that name. */
  PEER_SERVER_NOT_STARTED: 32390201,
  /** linkEnhance: more servers than the limit (10 by default). */
  SERVER_LIMIT: 32390202,
  /** linkEnhance: a server with this name already exists. */
  DUPLICATE_SERVER_NAME: 32390203,
  /** linkEnhance: more client connections than the limit (10 by default). */
  CONNECTION_LIMIT: 32390204,
  /** linkEnhance: the connection is not connected. */
  CONNECTION_NOT_READY: 32390205,
  /** linkEnhance: a parameter failed validation. */
  INVALID_PARAMETER: 32390206,
  /** linkEnhance: internal error (also: send queue full, used after close). */
  INTERNAL_ERROR: 32390300,
  /** linkEnhance: the link service died (value of `serverStopped`). */
  SERVER_DIED: 32390301,
  /** linkEnhance: the system stopped the server (value of `serverStopped`). */
  SERVER_STOPPED: 32390302,

  /** abilityConnectionManager: only one stream per session. */
  STREAM_EXISTS: 32300001,
  /** abilityConnectionManager: the receiving stream is not started. */
  RECEIVE_STREAM_NOT_STARTED: 32300002,
  /** abilityConnectionManager: the bitrate is not supported. */
  BITRATE_NOT_SUPPORTED: 32300003,
  /** abilityConnectionManager: the color space is not supported. */
  COLOR_SPACE_NOT_SUPPORTED: 32300004,

  /** socket: system internal error. */
  SOCKET_INTERNAL_ERROR: 2300002,
  /** socket: base of `2301000 + errno` system errors. */
  SOCKET_ERRNO_BASE: 2301000,
} as const;

/** A value of {@linkcode ErrorCode}, or a `2301000 + errno` socket code. */
export type ErrorCodeValue = typeof ErrorCode[keyof typeof ErrorCode];

const MESSAGES: ReadonlyMap<number, string> = new Map<number, string>([
  [ErrorCode.PERMISSION_DENIED, "Permission denied"],
  [
    ErrorCode.NOT_SYSTEM_APP,
    "Permission verification failed: a non-system application calls a system API",
  ],
  [ErrorCode.PARAMETER_ERROR, "Parameter error"],
  [ErrorCode.CAPABILITY_NOT_SUPPORTED, "Capability not supported"],
  [ErrorCode.CONNECT_TIMEOUT, "Connect timeout"],
  [ErrorCode.PEER_SERVER_NOT_STARTED, "Peer server is not started"],
  [ErrorCode.SERVER_LIMIT, "The number of servers exceeds the limit"],
  [ErrorCode.DUPLICATE_SERVER_NAME, "Duplicate server name"],
  [ErrorCode.CONNECTION_LIMIT, "The number of connection exceeds the limit"],
  [ErrorCode.CONNECTION_NOT_READY, "Connection is not ready"],
  [ErrorCode.INVALID_PARAMETER, "Invalid parameter"],
  [ErrorCode.INTERNAL_ERROR, "Internal error"],
  [ErrorCode.SERVER_DIED, "Link service died"],
  [ErrorCode.SERVER_STOPPED, "Server stopped by the system"],
  [ErrorCode.STREAM_EXISTS, "Only one stream can be created for the current session"],
  [ErrorCode.RECEIVE_STREAM_NOT_STARTED, "The stream at the receive end is not started"],
  [ErrorCode.BITRATE_NOT_SUPPORTED, "Bitrate not supported"],
  [ErrorCode.COLOR_SPACE_NOT_SUPPORTED, "Color space not supported"],
  [ErrorCode.SOCKET_INTERNAL_ERROR, "System internal error"],
]);

/** Linux errno names for the socket codes we meet (`2301000 + errno`). */
const ERRNO_NAMES: ReadonlyMap<number, string> = new Map<number, string>([
  [1, "EPERM"],
  [2, "ENOENT"],
  [4, "EINTR"],
  [9, "EBADF"],
  [11, "EAGAIN"],
  [13, "EACCES"],
  [22, "EINVAL"],
  [24, "EMFILE"],
  [32, "EPIPE"],
  [88, "ENOTSOCK"],
  [90, "EMSGSIZE"],
  [92, "ENOPROTOOPT"],
  [95, "EOPNOTSUPP"],
  [97, "EAFNOSUPPORT"],
  [98, "EADDRINUSE"],
  [99, "EADDRNOTAVAIL"],
  [100, "ENETDOWN"],
  [101, "ENETUNREACH"],
  [103, "ECONNABORTED"],
  [104, "ECONNRESET"],
  [105, "ENOBUFS"],
  [106, "EISCONN"],
  [107, "ENOTCONN"],
  [110, "ETIMEDOUT"],
  [111, "ECONNREFUSED"],
  [113, "EHOSTUNREACH"],
  [114, "EALREADY"],
  [115, "EINPROGRESS"],
]);

const ERRNO_BY_NAME: ReadonlyMap<string, number> = new Map(
  [...ERRNO_NAMES].map(([n, name]) => [name, n]),
);

/**
 * The default message of an error code.
 *
 * @param code A value of {@linkcode ErrorCode} or a `2301000 + errno` code.
 * @returns The default message, or `"Unknown error <code>"`.
 *
 * @example Look up a message
 * ```ts
 * import assert from "node:assert/strict";
 * assert.equal(errorMessage(32390200), "Connect timeout");
 * assert.equal(errorMessage(2301111), "ECONNREFUSED (errno 111)");
 * ```
 */
export function errorMessage(code: number): string {
  const known = MESSAGES.get(code);
  if (known !== undefined) return known;
  if (code > ErrorCode.SOCKET_ERRNO_BASE && code < ErrorCode.SOCKET_ERRNO_BASE + 1000) {
    const errno = code - ErrorCode.SOCKET_ERRNO_BASE;
    return `${ERRNO_NAMES.get(errno) ?? "System error"} (errno ${errno})`;
  }
  return `Unknown error ${code}`;
}

/**
 * The socket code `2301000 + errno` for a Linux errno given by number or name.
 *
 * @param errno A Linux errno (`111`) or its name (`"ECONNREFUSED"`).
 * @returns The socket error code, or `2300002` when the errno is unknown.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.equal(socketErrorCode("EADDRINUSE"), 2301098);
 * ```
 */
export function socketErrorCode(errno: number | string): number {
  const n = typeof errno === "number" ? Math.abs(errno) : ERRNO_BY_NAME.get(errno);
  if (n === undefined || n === 0 || n >= 1000) return ErrorCode.SOCKET_INTERNAL_ERROR;
  return ErrorCode.SOCKET_ERRNO_BASE + n;
}

/**
 * Values passed to linkEnhance's `disconnected` event. OpenHarmony passes the
 * raw softbus error number there, not a 3239xxxx code, and so do we (see
 * `docs/link-enhance.md`).
 */
export const DisconnectReason = {
  /** The link under the connection closed or was lost (`SOFTBUS_CONN_GENERAL_CONNECTION_CLOSE`). */
  LINK_CLOSED: -425918060,
  /** The peer called `disconnect()` or `close()` (`SOFTBUS_CONN_GENERAL_PEER_CONNECTION_CLOSE`). */
  PEER_DISCONNECTED: -425918059,
  /** The link service failed (`SOFTBUS_CONN_FAIL`). */
  SERVICE_DIED: -425918462,
} as const;

/**
 * Codes of the framing codec (`wasm/`): why a frame or fragment was refused.
 * These never reach an application directly; the link layer turns them into
 * a reset of the link or the stream.
 */
export const CodecErrorCode = {
  /** The frame's CRC-32 does not match its bytes. */
  BAD_CRC: 1,
  /** The frame's protocol version is not one we speak. */
  BAD_VERSION: 2,
  /** The frame type is not defined. */
  BAD_TYPE: 3,
  /** A length field is inconsistent (payload over the MTU, fragment past the message end, empty fragment of a non-empty message). */
  BAD_LENGTH: 4,
  /** The fragment repeats bytes already received. */
  DUPLICATE_FRAGMENT: 5,
  /** The fragment partly overlaps bytes already received. */
  OVERLAPPING_FRAGMENT: 6,
  /** The message is larger than the maximum message size. */
  MESSAGE_TOO_LARGE: 7,
  /** The bytes pending reassembly on this stream would exceed its limit. */
  STREAM_LIMIT_EXCEEDED: 8,
  /** The bytes pending reassembly on this link would exceed its limit. */
  LINK_LIMIT_EXCEEDED: 9,
  /** Too many messages are being reassembled at once. */
  TOO_MANY_MESSAGES: 10,
  /** A message has too many separate holes to track. */
  TOO_FRAGMENTED: 11,
  /** A fragment disagrees with earlier fragments of its message (total length or stream). */
  FRAGMENT_MISMATCH: 12,
} as const;

/** A value of {@linkcode CodecErrorCode}. */
export type CodecErrorCodeValue = typeof CodecErrorCode[keyof typeof CodecErrorCode];

const CODEC_MESSAGES: readonly string[] = [
  "No error",
  "Frame checksum mismatch",
  "Unsupported protocol version",
  "Undefined frame type",
  "Inconsistent frame length",
  "Duplicate fragment",
  "Overlapping fragment",
  "Message exceeds the maximum message size",
  "Stream reassembly limit exceeded",
  "Link reassembly limit exceeded",
  "Too many messages in reassembly",
  "Message too fragmented to track",
  "Fragment disagrees with its message",
];

/**
 * The message of a codec error code.
 *
 * @param code A value of {@linkcode CodecErrorCode}.
 * @returns Its message.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.equal(codecErrorMessage(CodecErrorCode.BAD_CRC), "Frame checksum mismatch");
 * ```
 */
export function codecErrorMessage(code: number): string {
  return CODEC_MESSAGES[code] ?? `Unknown codec error ${code}`;
}

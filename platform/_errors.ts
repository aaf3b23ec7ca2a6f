/**
 * The one conversion of native socket errors into linkweave errors, shared by
 * every runtime adapter: a `code` such as `ECONNREFUSED`, an errno, a Deno
 * error class name or an `os error N` message becomes a `PlatformError` with
 * code `2301000 + errno` (`2300002` when no errno can be found).
 *
 * @module
 */
import { socketErrorCode } from "../core/error_codes.ts";
import { type BusinessError, PlatformError, type PlatformName } from "../core/errors.ts";

/** Deno's error class names (`Deno.errors.*`) mapped to Linux errnos. */
const DENO_ERRORS: Readonly<Record<string, number>> = {
  ConnectionRefused: 111,
  ConnectionReset: 104,
  ConnectionAborted: 103,
  AddrInUse: 98,
  AddrNotAvailable: 99,
  BrokenPipe: 32,
  NotConnected: 107,
  TimedOut: 110,
  PermissionDenied: 13,
  NotFound: 2,
  AlreadyExists: 17,
  InvalidData: 22,
  NetworkUnreachable: 101,
  HostUnreachable: 113,
  BadResource: 9,
  Interrupted: 4,
  WouldBlock: 11,
};

/**
 * Convert a native error (with a `code` such as `ECONNREFUSED`, an errno, a
 * Deno error class name, or `os error N` in its message) into a
 * `PlatformError` with code `2301000 + errno`.
 *
 * @param e The native error.
 * @param action The action, for the message (`accept on "127.0.0.1" port 80`).
 * @param platform The runtime.
 * @returns The error; a `PlatformError` passes through unchanged.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const e = nativeError({ code: "ECONNREFUSED", message: "refused" }, "connect", "node");
 * assert.equal(e.code, 2301111);
 * assert.equal(e.message, "Cannot connect: refused");
 * ```
 */
export function nativeError(
  e: unknown,
  action: string,
  platform: PlatformName,
): BusinessError<unknown> {
  if (e instanceof PlatformError) return e;
  const err = e as { code?: unknown; errno?: unknown; message?: unknown; name?: unknown };
  const name = typeof err?.code === "string"
    ? err.code
    : typeof err?.name === "string"
    ? err.name
    : undefined;
  let code = socketErrorCode(name ?? 0);
  if (code === 2300002 && typeof err?.errno === "number") code = socketErrorCode(err.errno);
  if (code === 2300002 && name !== undefined) code = socketErrorCode(DENO_ERRORS[name] ?? 0);
  const message = typeof err?.message === "string" ? err.message : String(e);
  const os = /os error (\d+)/.exec(message);
  if (os !== null) code = socketErrorCode(Number(os[1]));
  return new PlatformError(code, `Cannot ${action}: ${message}`, {
    data: name === undefined ? { platform } : { platform, name },
    cause: e,
  });
}

/**
 * The error of lent bytes a stream could not write because it closed first.
 *
 * @param failure The stream's failure, if any.
 * @param platform The runtime.
 * @returns `failure`, or `2301032` (EPIPE).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.equal(notWritten(undefined, "deno").code, 2301032);
 * ```
 */
export function notWritten(
  failure: BusinessError<unknown> | undefined,
  platform: PlatformName,
): BusinessError<unknown> {
  return failure ?? new PlatformError(
    socketErrorCode("EPIPE"),
    "Cannot send data: the stream closed before the data was written",
    { data: { platform } },
  );
}

/**
 * Shared helpers of the socket classes: validation, encodings, the
 * callback/promise duality and error helpers.
 *
 * @module
 */
import { ErrorCode, socketErrorCode } from "../error_codes.ts";
import { BusinessError, ParameterError } from "../errors.ts";
import { onAbort } from "../abort.ts";
import type { IpEndpoint, IpFamily } from "./platform.ts";
import type { AsyncCallback, NetAddress, SocketMessageInfo } from "./types.ts";

/** `2301009`: the socket is not open (never bound, or closed). */
export const EBADF: number = socketErrorCode("EBADF");
/** `2301107`: the socket is not connected. */
export const ENOTCONN: number = socketErrorCode("ENOTCONN");
/** `2301110`: the operation timed out. */
export const ETIMEDOUT: number = socketErrorCode("ETIMEDOUT");
/** `2301011`: a send did not complete within `socketTimeout`. */
export const EAGAIN: number = socketErrorCode("EAGAIN");
/** `2301106`: already connected. */
export const EISCONN: number = socketErrorCode("EISCONN");
/** `2301022`: invalid argument for the socket's state. */
export const EINVAL: number = socketErrorCode("EINVAL");

/** The default TCP connect timeout, ms. */
export const DEFAULT_CONNECT_TIMEOUT = 5000;

/**
 * Run an operation in OpenHarmony's callback-or-promise style. With a
 * callback the result goes to it (never a rejection); without one, a promise.
 *
 * @param op The operation; it may throw synchronously.
 * @param cb The optional callback.
 * @param fallback The `data` passed to the callback on failure.
 * @returns The promise, or `undefined` when a callback was given.
 */
export function dual<T>(
  op: () => Promise<T>,
  cb: AsyncCallback<T> | undefined,
  fallback?: T,
): Promise<T> | undefined {
  let p: Promise<T>;
  try {
    p = op();
  } catch (e) {
    p = Promise.reject(e);
  }
  return typeof cb === "function" ? settle(p, cb, fallback) : p;
}

/**
 * The callback half of {@linkcode dual}, for hot paths that run their
 * operation inline (no closure): pass the result to `cb`.
 *
 * @param p The operation's promise.
 * @param cb The callback.
 * @param fallback The `data` passed to the callback on failure.
 * @returns `undefined`.
 */
export function settle<T>(p: Promise<T>, cb: AsyncCallback<T>, fallback?: T): undefined {
  p.then(
    (v) => cb(SUCCESS, v),
    (e) => cb(toBusinessError(e) as BusinessError, fallback as T),
  );
  return undefined;
}

/** The `err` of a successful callback: `undefined`, typed as OpenHarmony types it. */
const SUCCESS = undefined as unknown as BusinessError;

/** One settled promise shared by every send that completed at once. */
export const RESOLVED: Promise<void> = Promise.resolve();

/**
 * The caller's send data as a view without copying, when it is binary.
 *
 * @param data An `ArrayBuffer` (or a view of one).
 * @returns A view of the same memory (a `Uint8Array` itself), or
 *   `undefined` for anything else.
 */
export function binaryView(data: unknown): Uint8Array | undefined {
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (data instanceof Uint8Array) return data;
  if (ArrayBuffer.isView(data)) {
    return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  }
  return undefined;
}

/**
 * A copy of bytes (not `slice()`: on a Node `Buffer` that is a view).
 *
 * @param bytes The bytes.
 * @returns A fresh array with the same contents.
 */
export function copyBytes(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(bytes.byteLength);
  out.set(bytes);
  return out;
}

/**
 * Any thrown value as a {@linkcode BusinessError} (ParameterErrors pass as
 * they are; other errors become `2300002` with the original in `cause`).
 *
 * @param e What was thrown.
 * @returns An error with a numeric code.
 */
export function toBusinessError(e: unknown): BusinessError<unknown> {
  if (e instanceof BusinessError) return e;
  if (e instanceof ParameterError) return e as unknown as BusinessError<unknown>;
  return new BusinessError(
    ErrorCode.SOCKET_INTERNAL_ERROR,
    `System internal error: ${e instanceof Error ? e.message : String(e)}`,
    { cause: e },
  );
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/**
 * Whether a string is a dotted-quad IPv4 address.
 *
 * @param s The string.
 * @returns `true` for `127.0.0.1`, `false` for `127.1` or `localhost`.
 */
export function isIPv4(s: string): boolean {
  return IPV4.test(s);
}

/**
 * Whether a string is an IPv6 address (optionally with a `%zone`).
 *
 * @param s The string.
 * @returns `true` for `::1`, `fe80::1%lo`, `::ffff:127.0.0.1`.
 */
export function isIPv6(s: string): boolean {
  const zone = s.indexOf("%");
  if (zone === 0 || zone === s.length - 1) return false;
  let a = zone > 0 ? s.slice(0, zone) : s;
  const groups = 8;
  const lastColon = a.lastIndexOf(":");
  if (lastColon >= 0 && a.slice(lastColon + 1).includes(".")) {
    if (!isIPv4(a.slice(lastColon + 1))) return false;
    a = a.slice(0, lastColon + 1) + "0:0";
  }
  const hex = /^[0-9a-fA-F]{1,4}$/;
  const dbl = a.indexOf("::");
  if (dbl !== a.lastIndexOf("::")) return false;
  if (dbl < 0) {
    const parts = a.split(":");
    return parts.length === groups && parts.every((p) => hex.test(p));
  }
  const head = a.slice(0, dbl);
  const tail = a.slice(dbl + 2);
  const hp = head === "" ? [] : head.split(":");
  const tp = tail === "" ? [] : tail.split(":");
  return hp.length + tp.length < groups && [...hp, ...tp].every((p) => hex.test(p));
}

/**
 * Check a port: an integer in 0..65535, or absent (0).
 *
 * @param port The value.
 * @param action The action, for the message (`bind`).
 * @returns The port.
 */
export function checkPort(port: unknown, action: string): number {
  if (port === undefined || port === null) return 0;
  if (typeof port !== "number" || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new ParameterError(
      `Cannot ${action}: invalid port "${String(port)}": expected an integer in 0..65535`,
    );
  }
  return port;
}

/**
 * Validate a {@linkcode NetAddress} and turn it into an endpoint.
 *
 * @param addr The address.
 * @param action The action, for messages (`bind`, `connect`, `send data`).
 * @returns The endpoint.
 */
export function toEndpoint(addr: unknown, action: string): IpEndpoint {
  if (addr === null || typeof addr !== "object") {
    throw new ParameterError(`Cannot ${action}: address "${String(addr)}" is not a NetAddress`);
  }
  const { address, port, family } = addr as NetAddress;
  return checkEndpoint(address, port, family, action);
}

function checkEndpoint(
  address: unknown,
  port: unknown,
  family: unknown,
  action: string,
): IpEndpoint {
  if (family !== undefined && family !== 1 && family !== 2) {
    throw new ParameterError(
      `Cannot ${action}: invalid family "${String(family)}": expected 1 (IPv4) or 2 (IPv6)`,
    );
  }
  const fam: IpFamily = family === 2 ? "IPv6" : "IPv4";
  if (typeof address !== "string") {
    throw new ParameterError(`Cannot ${action}: address "${String(address)}" is not a string`);
  }
  const ok = fam === "IPv4" ? isIPv4(address) : isIPv6(address);
  if (!ok) {
    throw new ParameterError(
      `Cannot ${action}: invalid ${fam} address "${address}"${
        fam === "IPv4" && isIPv6(address) ? " (set family: 2 for IPv6)" : ""
      }`,
    );
  }
  return { address, port: checkPort(port, action), family: fam };
}

/**
 * {@linkcode toEndpoint} for repeated sends: remembers the fields of the last
 * valid address, so a send to the same destination (the same object or an
 * equal one) skips parsing. Every call still checks the argument.
 */
export class EndpointCache {
  #address: unknown = undefined;
  #port: unknown = undefined;
  #family: unknown = undefined;
  #endpoint: IpEndpoint | undefined = undefined;

  /**
   * Validate an address and turn it into an endpoint.
   *
   * @param addr The address.
   * @param action The action, for messages.
   * @returns The endpoint (shared between calls: read-only).
   */
  get(addr: unknown, action: string): IpEndpoint {
    if (addr !== null && typeof addr === "object") {
      const { address, port, family } = addr as NetAddress;
      const e = this.#endpoint;
      if (
        e !== undefined && address === this.#address && port === this.#port &&
        family === this.#family
      ) {
        return e;
      }
      const fresh = checkEndpoint(address, port, family, action);
      this.#address = address;
      this.#port = port;
      this.#family = family;
      this.#endpoint = fresh;
      return fresh;
    }
    return toEndpoint(addr, action);
  }
}

/**
 * An endpoint as a {@linkcode NetAddress} (family 1 or 2).
 *
 * @param e The endpoint.
 * @returns The address.
 */
export function toNetAddress(e: IpEndpoint): NetAddress {
  return { address: e.address, family: e.family === "IPv6" ? 2 : 1, port: e.port };
}

/**
 * Check that an options argument is an object.
 *
 * @param v The value.
 * @param action The action, for the message.
 * @returns The object.
 */
export function checkObject<T extends object>(v: unknown, action: string): T {
  if (v === null || typeof v !== "object") {
    throw new ParameterError(`Cannot ${action}: options "${String(v)}" is not an object`);
  }
  return v as T;
}

/**
 * Check an optional boolean option.
 *
 * @param v The value.
 * @param name The option name.
 * @param action The action.
 * @returns The value.
 */
export function optBool(v: unknown, name: string, action: string): boolean | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== "boolean") {
    throw new ParameterError(`Cannot ${action}: ${name} "${String(v)}" is not a boolean`);
  }
  return v;
}

/**
 * Check an optional non-negative integer option.
 *
 * @param v The value.
 * @param name The option name.
 * @param action The action.
 * @param max The maximum. @default {2 ** 31 - 1}
 * @returns The value.
 */
export function optUint(
  v: unknown,
  name: string,
  action: string,
  max: number = 2 ** 31 - 1,
): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > max) {
    throw new ParameterError(
      `Cannot ${action}: ${name} "${String(v)}" is not an integer in 0..${max}`,
    );
  }
  return v;
}

/** Encodings by name, upper-cased without `-` and `_`; `USAECII` is the docs' own spelling. */
const ENCODINGS: ReadonlyMap<
  string,
  "UTF-16BE" | "UTF-16LE" | "UTF-16" | "US-ASCII" | "ISO-8859-1"
> = new Map([
  ["UTF16BE", "UTF-16BE"],
  ["UTF16LE", "UTF-16LE"],
  ["UTF16", "UTF-16"],
  ["USASCII", "US-ASCII"],
  ["USAECII", "US-ASCII"],
  ["ISO88591", "ISO-8859-1"],
]);
const encoder = new TextEncoder();

/**
 * Encode send data: an `ArrayBuffer` is copied as is, a string is encoded.
 *
 * @param data The data.
 * @param encoding `UTF-16BE`, `UTF-16LE`, `UTF-16` (big-endian with a
 *   byte-order mark), `US-ASCII` (also spelt `US-AECII`, as the docs do) or
 *   `ISO-8859-1` (other characters become `?`), in any case, with or without
 *   the dashes; anything else, or nothing, is UTF-8. It never throws: an
 *   encoding OpenHarmony does not know is sent as UTF-8 there too.
 * @param action The action, for messages.
 * @returns The bytes.
 */
export function encodeData(data: unknown, encoding: unknown, action: string): Uint8Array {
  if (data instanceof ArrayBuffer) return new Uint8Array(data.slice(0));
  if (ArrayBuffer.isView(data)) {
    return new Uint8Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
  }
  if (typeof data !== "string") {
    throw new ParameterError(
      `Cannot ${action}: data "${String(data)}" is not a string or an ArrayBuffer`,
    );
  }
  const name = typeof encoding === "string"
    ? ENCODINGS.get(encoding.toUpperCase().replace(/[-_]/g, ""))
    : undefined;
  switch (name) {
    case undefined:
      return encoder.encode(data);
    case "UTF-16BE":
    case "UTF-16LE":
    case "UTF-16": {
      const bom = name === "UTF-16" ? 2 : 0;
      const out = new Uint8Array(bom + data.length * 2);
      const view = new DataView(out.buffer);
      if (bom) view.setUint16(0, 0xfeff);
      for (let i = 0; i < data.length; i++) {
        view.setUint16(bom + i * 2, data.charCodeAt(i), name === "UTF-16LE");
      }
      return out;
    }
    case "US-ASCII":
    case "ISO-8859-1": {
      const max = name === "US-ASCII" ? 0x7f : 0xff;
      const out = new Uint8Array(data.length);
      for (let i = 0; i < data.length; i++) {
        const c = data.charCodeAt(i);
        out[i] = c <= max ? c : 0x3f;
      }
      return out;
    }
  }
}

/**
 * Bytes as an `ArrayBuffer` of exactly their length (copied only when needed).
 *
 * @param bytes The bytes.
 * @returns The buffer.
 */
export function toArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  if (
    bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength &&
    bytes.buffer instanceof ArrayBuffer
  ) {
    return bytes.buffer;
  }
  // Not `bytes.slice()`: on a Node `Buffer` that is a view, not a copy.
  const out = new Uint8Array(bytes.byteLength);
  out.set(bytes);
  return out.buffer;
}

/**
 * Race a promise against a timer; on timeout reject with `ETIMEDOUT`, and
 * when `signal` aborts with its reason.
 *
 * @param p The promise.
 * @param ms The timeout.
 * @param message The error message.
 * @param signal Gives up waiting.
 * @returns What `p` resolves to.
 */
export function withTimeout<T>(
  p: Promise<T>,
  ms: number,
  message: string,
  signal?: AbortSignal,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new BusinessError(ETIMEDOUT, message)), ms);
    const unabort = onAbort(signal, (reason) => {
      clearTimeout(timer);
      reject(reason);
    });
    p.then(
      (v) => {
        clearTimeout(timer);
        unabort();
        resolve(v);
      },
      (e) => {
        clearTimeout(timer);
        unabort();
        reject(e);
      },
    );
  });
}

/**
 * Check the arguments of a socket's `on`, as OpenHarmony does: a type that
 * is not a string or a callback that is not a function is a parameter error
 * (401); an event type the socket does not emit is ignored.
 *
 * @param type The event type.
 * @param callback The callback.
 * @param allowed The types this socket emits.
 * @param what The socket kind, for the message (`TCP socket`).
 * @returns Whether to register the callback.
 */
export function checkOn(
  type: unknown,
  callback: unknown,
  allowed: readonly string[],
  what: string,
): boolean {
  checkEventArgs(type, callback, "listen for", what);
  if (typeof callback !== "function") {
    throw new ParameterError(
      `Cannot listen for event "${show(type)}" on a ${what}: callback "${
        show(callback)
      }" is not a function`,
    );
  }
  return allowed.includes(type as string);
}

/**
 * Check the arguments of a socket's `off`, as OpenHarmony does: a type that
 * is not a string, or a callback given that is not a function, is a
 * parameter error (401); an event type the socket does not emit is ignored.
 *
 * @param type The event type.
 * @param callback The callback, or `undefined` for every callback.
 * @param allowed The types this socket emits.
 * @param what The socket kind, for the message.
 * @returns Whether there may be something to remove.
 */
export function checkOff(
  type: unknown,
  callback: unknown,
  allowed: readonly string[],
  what: string,
): boolean {
  checkEventArgs(type, callback, "stop listening for", what);
  return allowed.includes(type as string);
}

/** A value for a message, even one `String()` cannot convert (`Object.create(null)`). */
function show(v: unknown): string {
  try {
    return String(v);
  } catch {
    return Object.prototype.toString.call(v);
  }
}

function checkEventArgs(type: unknown, callback: unknown, verb: string, what: string): void {
  if (typeof type !== "string") {
    throw new ParameterError(
      `Cannot ${verb} an event on a ${what}: type "${show(type)}" is not a string`,
    );
  }
  if (callback !== undefined && typeof callback !== "function") {
    throw new ParameterError(
      `Cannot ${verb} event "${type}" on a ${what}: callback "${show(callback)}" is not a function`,
    );
  }
}

/**
 * A failure as the `error` event carries it. OpenHarmony passes the event an
 * object whose `code` is the raw errno (104 for a reset peer; -1 when
 * unknown), not the `2301000 + errno` of rejections: so does linkweave. The
 * message stays, and the original error is the `cause`.
 *
 * @param e The failure (`2301000 + errno`, or `2300002`).
 * @returns A `BusinessError` whose `code` is the errno, or -1.
 */
export function errorEventOf(e: BusinessError<unknown>): BusinessError<unknown> {
  const base = ErrorCode.SOCKET_ERRNO_BASE;
  const errno = e.code > base && e.code < base + 1000 ? e.code - base : -1;
  return new BusinessError<unknown>(errno, e.message, { data: e.data, cause: e });
}

/**
 * A closed-socket error naming the action.
 *
 * @param action The action.
 * @param what The socket kind.
 * @returns `2301009`.
 */
export function closedError(action: string, what: string): BusinessError<unknown> {
  return new BusinessError(EBADF, `Cannot ${action}: the ${what} is closed`);
}

/** The `message` event value of an IP stream socket, for received bytes. */
export function ipMessage(
  remote: () => IpEndpoint | undefined,
): (b: Uint8Array) => SocketMessageInfo {
  return (bytes) => {
    const r = remote();
    return {
      message: toArrayBuffer(bytes),
      remoteInfo: {
        address: r?.address ?? "",
        family: r?.family ?? "IPv4",
        port: r?.port ?? 0,
        size: bytes.byteLength,
      },
    };
  };
}

/**
 * Error classes. Callers catch {@linkcode BusinessError} and read its numeric
 * `code`; parameter errors are also `TypeError`s.
 *
 * @module
 */
import { ErrorCode, errorMessage } from "./error_codes.ts";

/** Options of {@linkcode BusinessError}. */
export interface BusinessErrorOptions<T> {
  /** Extra data about the failure. */
  data?: T;
  /** The underlying error. */
  cause?: unknown;
}

/**
 * The error every linkweave API throws or rejects with: OpenHarmony's
 * `BusinessError`, with a numeric `code`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const err = new BusinessError(32390205, 'Cannot send data: connection "demo" is not connected');
 * assert.equal(err.code, 32390205);
 * assert.ok(err instanceof Error);
 * ```
 */
export class BusinessError<T = void> extends Error {
  /** The numeric error code (a value of `ErrorCode` or `2301000 + errno`). */
  code: number;
  /** Extra data about the failure, if any. */
  declare data?: T;

  /**
   * Make an error with a code.
   *
   * @param code The error code.
   * @param message A message naming the action; defaults to the code's message.
   * @param options `data` and `cause`.
   */
  constructor(code: number, message?: string, options: BusinessErrorOptions<T> = {}) {
    super(
      message ?? errorMessage(code),
      options.cause === undefined ? undefined : { cause: options.cause },
    );
    this.name = "BusinessError";
    this.code = code;
    if (options.data !== undefined) this.data = options.data;
  }

  /**
   * `instanceof BusinessError` also holds for a {@linkcode ParameterError}
   * (which must extend `TypeError`): every linkweave error is a
   * `BusinessError`. Subclasses keep the ordinary check.
   *
   * @param value The candidate.
   * @returns Whether it is a BusinessError.
   */
  static override [Symbol.hasInstance](value: unknown): boolean {
    if (Function.prototype[Symbol.hasInstance].call(this, value)) return true;
    return this === BusinessError && value instanceof ParameterError;
  }
}

/**
 * A bad argument. Both `instanceof TypeError` and `.code` work; the code is
 * 401 unless the API documents another (linkEnhance uses 32390206).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const err = new ParameterError('Invalid port "70000": expected an integer in 0..65535');
 * assert.ok(err instanceof TypeError);
 * assert.equal(err.code, 401);
 * ```
 */
export class ParameterError extends TypeError {
  /** The numeric error code. */
  code: number;

  /**
   * Make a parameter error.
   *
   * @param message What was wrong, quoting the value.
   * @param code The error code. @default {401}
   */
  constructor(message: string, code: number = ErrorCode.PARAMETER_ERROR) {
    super(message);
    this.name = "ParameterError";
    this.code = code;
  }
}

/** The runtime or system a {@linkcode PlatformError} came from. */
export type PlatformName = "deno" | "bun" | "node" | "bluez";

/** Data of a {@linkcode PlatformError}. */
export interface PlatformErrorData {
  /** Where the failure happened. */
  platform: PlatformName;
  /** The native error name, e.g. `ECONNREFUSED` or `org.bluez.Error.InProgress`. */
  name?: string;
}

/**
 * A failure of the runtime or system under linkweave, converted in one place
 * per platform. The native error is kept in `cause`, its name in `data.name`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const native = Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" });
 * const err = new PlatformError(2301111, "Cannot connect to 127.0.0.1:9", {
 *   data: { platform: "node", name: "ECONNREFUSED" },
 *   cause: native,
 * });
 * assert.ok(err instanceof BusinessError);
 * assert.equal(err.data?.name, "ECONNREFUSED");
 * ```
 */
export class PlatformError extends BusinessError<PlatformErrorData> {
  /**
   * Make a platform error.
   *
   * @param code The error code.
   * @param message A message naming the action.
   * @param options The platform and native name in `data`; the native error in `cause`.
   */
  constructor(code: number, message: string, options: BusinessErrorOptions<PlatformErrorData>) {
    super(code, message, options);
    this.name = "PlatformError";
  }
}

/**
 * Whether a value is an error with a numeric `code` (a linkweave error).
 *
 * @param e Any value.
 * @returns `true` for {@linkcode BusinessError} and {@linkcode ParameterError}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.ok(isBusinessError(new BusinessError(201)));
 * assert.ok(!isBusinessError(new Error("x")));
 * ```
 */
export function isBusinessError(e: unknown): e is BusinessError<unknown> | ParameterError {
  return e instanceof Error && typeof (e as { code?: unknown }).code === "number";
}

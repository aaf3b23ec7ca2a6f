/**
 * linkweave extension, one mechanism for every API: an `AbortSignal` gives up
 * a connect or a long send (`docs/link-enhance.md`, `docs/ability-connection.md`,
 * `docs/socket.md`, "AbortSignal and await using"). A signal aborted before the
 * call makes it fail at once with the signal's reason; one aborted during the
 * call ends what the call started; one aborted after the call settled does
 * nothing.
 *
 * @example Give up a call after 2 s
 * ```ts
 * import assert from "node:assert/strict";
 * const signal = abortSignal({ signal: AbortSignal.timeout(2000) }, "connect", (m) => new TypeError(m));
 * assert.equal(signal?.aborted, false);
 * ```
 *
 * @module
 */

/** The options of a call that can be given up (a linkweave extension). */
export interface AbortOptions {
  /**
   * Gives the call up when it aborts: `AbortSignal.timeout(ms)` for a
   * deadline of your own, `AbortController.signal` to cancel by hand.
   *
   * @default {undefined}
   */
  signal?: AbortSignal;
}

/**
 * The signal of a call's options, checked.
 *
 * @param options The options as the caller gave them (`undefined` for none).
 * @param action The action, for messages (`connect`).
 * @param invalid Makes the parameter error the API throws (with the API's code).
 * @returns The signal, or `undefined`.
 * @throws The API's parameter error when `options` is not an object or its
 *   `signal` is not an `AbortSignal`.
 */
export function abortSignal(
  options: unknown,
  action: string,
  invalid: (message: string) => Error,
): AbortSignal | undefined {
  if (options === undefined) return undefined;
  if (typeof options !== "object" || options === null) {
    throw invalid(`Invalid options of ${action}: expected an object, got ${String(options)}`);
  }
  const signal = (options as AbortOptions).signal;
  if (signal === undefined) return undefined;
  if (typeof AbortSignal === "undefined" || !(signal instanceof AbortSignal)) {
    throw invalid(`Invalid signal of ${action}: expected an AbortSignal`);
  }
  return signal;
}

/**
 * Call `fn` once, when `signal` aborts.
 *
 * @param signal The signal (none: never).
 * @param fn Receives the signal's reason.
 * @returns Stops listening (call it once the call settled).
 */
export function onAbort(
  signal: AbortSignal | undefined,
  fn: (reason: unknown) => void,
): () => void {
  if (signal === undefined) return () => {};
  const listener = () => fn(signal.reason);
  signal.addEventListener("abort", listener, { once: true });
  return () => signal.removeEventListener("abort", listener);
}

/**
 * Whether an abort reason is a deadline: `AbortSignal.timeout()`'s `TimeoutError`.
 *
 * @param reason The signal's reason.
 * @returns Whether it is.
 */
export function isTimeout(reason: unknown): boolean {
  return typeof reason === "object" && reason !== null &&
    (reason as { name?: unknown }).name === "TimeoutError";
}

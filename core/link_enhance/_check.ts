/**
 * Argument checks and callback calls shared by the `linkEnhance` classes.
 *
 * @module
 */
import { ErrorCode } from "../error_codes.ts";
import { ParameterError } from "../errors.ts";
import { utf8Length } from "../_utf8.ts";

/** Longest server name (UTF-8 bytes). */
export const MAX_NAME_BYTES = 255;

export function invalid(message: string): ParameterError {
  return new ParameterError(message, ErrorCode.INVALID_PARAMETER);
}

export function checkName(name: unknown, what: string): string {
  if (typeof name !== "string") {
    throw invalid(`Invalid ${what}: expected a string, got ${describe(name)}`);
  }
  const bytes = utf8Length(name);
  if (bytes === 0 || bytes > MAX_NAME_BYTES) {
    throw invalid(
      `Invalid ${what} ${
        JSON.stringify(name)
      }: expected 1..${MAX_NAME_BYTES} UTF-8 bytes, got ${bytes}`,
    );
  }
  return name;
}

/** Check an event type and (unless `optional` and absent) its callback. */
export function checkCallback(
  type: unknown,
  cb: unknown,
  types: readonly string[],
  optional: boolean,
): void {
  if (typeof type !== "string" || !types.includes(type)) {
    throw invalid(
      `Invalid event type ${JSON.stringify(type)}: expected one of ${types.join(", ")}`,
    );
  }
  if (!(optional && cb === undefined) && typeof cb !== "function") {
    throw invalid(`Invalid callback for "${type}": expected a function, got ${describe(cb)}`);
  }
}

/** Call a user callback; OpenHarmony swallows what callbacks throw, we also say so. */
export function call<T>(cb: ((value: T) => void) | undefined, value: T): void {
  if (cb === undefined) return;
  try {
    cb(value);
  } catch (error) {
    console.error("linkweave: an event callback threw:", error);
  }
}

export function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (ArrayBuffer.isView(v)) return `a ${v.constructor.name}`;
  return typeof v;
}

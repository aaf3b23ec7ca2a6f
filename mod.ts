/**
 * linkweave: OpenHarmony's cross-device connectivity APIs for Linux, on Deno,
 * Bun and Node.
 *
 * @example Catch a linkweave error by its code
 * ```ts
 * import assert from "node:assert/strict";
 * const err = new BusinessError(ErrorCode.CONNECT_TIMEOUT);
 * assert.equal(err.code, 32390200);
 * ```
 *
 * @module
 */
export { BusinessError, isBusinessError, ParameterError, PlatformError } from "./core/errors.ts";
export type { BusinessErrorOptions, PlatformErrorData, PlatformName } from "./core/errors.ts";
export { DisconnectReason, ErrorCode, errorMessage } from "./core/error_codes.ts";
export type { ErrorCodeValue } from "./core/error_codes.ts";
export * as socket from "./socket.ts";
export * as linkEnhance from "./link_enhance.ts";
export { configure, createDevice } from "./link_enhance.ts";
export type { Device, DeviceOptions } from "./link_enhance.ts";

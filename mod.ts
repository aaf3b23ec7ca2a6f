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
export type { AbortOptions } from "./core/abort.ts";
export * as socket from "./socket.ts";
export * as linkEnhance from "./link_enhance.ts";
export * as abilityConnectionManager from "./ability_connection_manager.ts";
export * as distributedDeviceManager from "./distributed_device_manager.ts";
export * as image from "./image.ts";
export {
  AbilityConstant,
  registerAbility,
  UIAbility,
  UIAbilityContext,
} from "./ability_connection_manager.ts";
export type { Want } from "./ability_connection_manager.ts";
export { configure, createDevice } from "./device.ts";
export type { ChannelHealth, Device, DeviceOptions, LinkChannelInfo, LinkInfo } from "./device.ts";

/**
 * Between softbus error numbers (what travels in a HANDSHAKE_ACK's `err`)
 * and linkEnhance codes (what an app sees in `connectResult.reason`), as
 * OpenHarmony's NAPI converts them (`ConvertToJsErrcode`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.equal(linkEnhanceCode(-425918062), 32390201);
 * assert.equal(softbusCode(32390201), -425918062);
 * assert.equal(linkEnhanceCode(-1), 32390300);
 * ```
 *
 * @module
 */
import { ErrorCode } from "../../error_codes.ts";
import { SoftbusError } from "./wire.ts";

const TO_LINK_ENHANCE: ReadonlyMap<number, number> = new Map<number, number>([
  [SoftbusError.ACCESS_TOKEN_DENIED, ErrorCode.PERMISSION_DENIED],
  [SoftbusError.CREATE_CLIENT_MAX, ErrorCode.CONNECTION_LIMIT],
  [SoftbusError.CONNECT_TIMEOUT, ErrorCode.CONNECT_TIMEOUT],
  [SoftbusError.SERVER_NOT_OPENED, ErrorCode.PEER_SERVER_NOT_STARTED],
  [SoftbusError.DUPLICATE_SERVER, ErrorCode.DUPLICATE_SERVER_NAME],
  [SoftbusError.CONNECTION_NOT_READY, ErrorCode.CONNECTION_NOT_READY],
  [SoftbusError.INVALID_PARAM, ErrorCode.INVALID_PARAMETER],
  [SoftbusError.CREATE_SERVER_MAX, ErrorCode.SERVER_LIMIT],
]);

const TO_SOFTBUS: ReadonlyMap<number, number> = new Map<number, number>(
  [...TO_LINK_ENHANCE].map(([softbus, code]) => [code, softbus]),
);

/**
 * The linkEnhance code an OpenHarmony app sees for a softbus error.
 *
 * @param err A softbus error number (e.g. a HANDSHAKE_ACK's `err`).
 * @returns The linkEnhance code; 32390300 for anything without its own.
 */
export function linkEnhanceCode(err: number): number {
  return TO_LINK_ENHANCE.get(err) ?? ErrorCode.INTERNAL_ERROR;
}

/**
 * The softbus error to send so that an OpenHarmony app sees `code`.
 *
 * @param code A linkEnhance code.
 * @returns The softbus error; `SOFTBUS_CONN_FAIL` (seen as 32390300) for
 *   codes without their own.
 */
export function softbusCode(code: number): number {
  return TO_SOFTBUS.get(code) ?? SoftbusError.CONN_FAIL;
}

/**
 * linkweave's diagnostics: tools for looking at what goes over the air,
 * beside the public APIs. The `linkweave` command (`cli/`) uses this module
 * and the public ones only (DESIGN decision 6).
 *
 * - {@linkcode dissect}: OpenHarmony's BLE protocol in a `btmon -w` capture
 *   (btsnoop) or in text lines `[client|server] <characteristic> <hex>`,
 *   reassembled as OpenHarmony does, one record per message
 *   (`docs/openharmony-ble.md`).
 *
 * @example Dissect a capture line
 * ```ts
 * import assert from "node:assert/strict";
 * const [rec] = dissect("2B01 000000050000002a000000000000002a" +
 *   "cefabeba6600000004000000000000000300000012000000020000000100002c0100002c100000007b7d");
 * assert.equal(rec.decoded?.general?.msgTypeName, "RESET");
 * ```
 *
 * @module
 */
export {
  dissect,
  type DissectOptions,
  type DissectRecord,
  type MessageRecord,
  type NoteRecord,
  type RecordPlace,
  type Sender,
} from "./core/proto/openharmony/dissect.ts";
export type { Decoded, DecodedGeneral, DecodedJson } from "./core/proto/openharmony/decode.ts";
export type { JsonValue } from "./core/proto/openharmony/_json.ts";
export type { OhCharacteristic } from "./core/proto/openharmony/wire.ts";

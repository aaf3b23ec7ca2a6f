/**
 * The `openharmony` profile's protocol core: OpenHarmony's linkEnhance over
 * BLE GATT (dsoftbus's general connection), byte for byte and sans-IO.
 *
 * - {@linkcode OhLink}: one BLE connection in either GATT role, with the
 *   events and commands of the `linkweave` profile's `Link`.
 * - `wire.ts`: encoders and decoders of every message; `reassembly.ts`:
 *   OpenHarmony's reassembly; `decode.ts`: messages decoded for people.
 * - {@linkcode dissect}: the dissector behind `linkweave dissect` (btsnoop
 *   captures and text lines).
 * - {@linkcode OhProfileLink}: an `OhLink` behind the endpoint's link
 *   interface (`core/device/profile.ts`), fed by the records of a BLE
 *   transport's `openharmony` channel (`gatt_records.ts`).
 *
 * `docs/openharmony-ble.md` describes the protocol as implemented, its limits
 * and timers, what it tolerates and how it differs from an OpenHarmony device.
 *
 * @example Dissect one line
 * ```ts
 * import assert from "node:assert/strict";
 * const [rec] = dissect("2B01 000000050000002a000000000000002a" +
 *   "cefabeba6600000004000000000000000300000012000000020000000100002c0100002c100000007b7d");
 * assert.equal(rec.decoded?.general?.msgTypeName, "RESET");
 * ```
 *
 * @module
 */
export type { LinkEvent } from "../link/mod.ts";
export type { JsonObject, JsonValue } from "./_json.ts";
export { linkEnhanceCode, softbusCode } from "./codes.ts";
export { type Decoded, type DecodedGeneral, type DecodedJson, decodeMessage } from "./decode.ts";
export {
  dissect,
  type DissectOptions,
  type DissectRecord,
  type MessageRecord,
  type NoteRecord,
  type RecordPlace,
  type Sender,
} from "./dissect.ts";
export {
  type AttPdu,
  type CaptureItem,
  type CaptureProblem,
  type Disconnection,
  isBtsnoop,
  readCapture,
} from "./btsnoop.ts";
export {
  DEFAULT_OH_MAX_CONNECTIONS,
  DEFAULT_OH_SEND_QUEUE_BYTES,
  GeneralIds,
  OH_CONTROL_BACKLOG_BYTES,
  type OhConnection,
  OhLink,
  type OhLinkEvent,
  type OhLinkOptions,
  type OhOpenOptions,
  type OhRole,
  type OhTransmit,
  randomDevid,
} from "./machine.ts";
export { Reassembler, type ReassemblyResult } from "./reassembly.ts";
export {
  encodeMtuRecord,
  encodeUpRecord,
  encodeValueRecord,
  type GattRecord,
  GattRecordReader,
  type GattRole,
  MAX_RECORD_BYTES,
  RECORD_HEADER,
  RecordType,
} from "./gatt_records.ts";
export { OhProfileLink, type OhProfileOptions, ProfileIds } from "./profile_link.ts";
export * from "./wire.ts";

/**
 * The argument checks of the `abilityConnectionManager` API: what a bad
 * argument is (OpenHarmony's 401, a `ParameterError` thrown synchronously)
 * and how each argument is read (session options, peer info, service names,
 * surface parameters).
 *
 * @module
 */
import { ParameterError } from "../errors.ts";
import { isDeviceId } from "../device/config.ts";
import { utf8Length } from "../_utf8.ts";
import type { SessionOptions } from "./_session_port.ts";
import { PixelMap } from "./pixel_map.ts";
import {
  type ConnectOptions,
  EVENT_TYPES,
  type EventType,
  MAX_DATA_BYTES,
  MAX_SERVICE_NAME,
  MAX_STRING_BYTES,
  type PeerInfo,
  StartOptionParams,
  type SurfaceParam,
  VideoPixelFormat,
} from "./types.ts";

export function invalid(message: string): ParameterError {
  return new ParameterError(message);
}

export function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (ArrayBuffer.isView(v)) return `a ${v.constructor.name}`;
  return typeof v;
}

export function checkInt(v: unknown, what: string): number {
  if (typeof v !== "number" || !Number.isInteger(v)) {
    throw invalid(`Invalid ${what} ${JSON.stringify(v)}: expected an integer`);
  }
  return v;
}

export function checkString(
  v: unknown,
  what: string,
  options: { nonEmpty?: boolean; maxBytes?: number } = {},
): string {
  if (typeof v !== "string") {
    throw invalid(`Invalid ${what}: expected a string, got ${describe(v)}`);
  }
  const max = options.maxBytes ?? MAX_STRING_BYTES;
  const n = utf8Length(v);
  if (n > max) {
    throw invalid(
      `Invalid ${what} ${JSON.stringify(v.slice(0, 40))}...: ${n} UTF-8 bytes, over ${max}`,
    );
  }
  if (options.nonEmpty && v === "") {
    throw invalid(`Invalid ${what} "": expected a non-empty string`);
  }
  return v;
}

function checkBool(v: unknown, what: string): boolean {
  if (v === undefined) return false;
  if (typeof v !== "boolean") {
    throw invalid(`Invalid ${what} ${JSON.stringify(v)}: expected a boolean`);
  }
  return v;
}

function checkStrings(v: unknown, what: string): Record<string, string> {
  if (v === undefined) return {};
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw invalid(`Invalid ${what}: expected a Record<string, string>, got ${describe(v)}`);
  }
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(v)) {
    out[checkString(k, `${what} key`)] = checkString(x, `${what} value of "${k}"`);
  }
  return out;
}

const START_OPTION_KEY = "ohos.collabrate.key.start.option";
const START_BACKGROUND = "ohos.collabrate.value.background";

export function checkOptions(v: unknown): SessionOptions {
  if (typeof v !== "object" || v === null) {
    throw invalid(`Invalid connectOptions: expected an object, got ${describe(v)}`);
  }
  const o = v as ConnectOptions;
  const needSendData = checkBool(o.needSendData, "needSendData") ||
    checkBool(o.needSendBigData, "needSendBigData");
  const needSendStream = checkBool(o.needSendStream, "needSendStream");
  const needReceiveStream = checkBool(o.needReceiveStream, "needReceiveStream");
  if (needSendStream && needReceiveStream) {
    throw invalid(
      "Invalid connectOptions: needSendStream and needReceiveStream cannot both be true",
    );
  }
  const legacy = checkStrings(o.options, "options");
  let startOptions: number = legacy[START_OPTION_KEY] === START_BACKGROUND
    ? StartOptionParams.START_IN_BACKGROUND
    : StartOptionParams.START_IN_FOREGROUND;
  if (o.startOptions !== undefined) {
    if (
      o.startOptions !== StartOptionParams.START_IN_FOREGROUND &&
      o.startOptions !== StartOptionParams.START_IN_BACKGROUND
    ) {
      throw invalid(
        `Invalid startOptions ${
          JSON.stringify(o.startOptions)
        }: expected StartOptionParams (0 or 1)`,
      );
    }
    startOptions = o.startOptions;
  }
  return {
    needSendData,
    needSendStream,
    needReceiveStream,
    startOptions,
    parameters: checkStrings(o.parameters, "parameters"),
  };
}

export function checkPeer(v: unknown, serviceName: string): Required<PeerInfo> {
  if (typeof v !== "object" || v === null) {
    throw invalid(`Invalid peerInfo: expected an object, got ${describe(v)}`);
  }
  const p = v as PeerInfo & { serverId?: string };
  const deviceId = checkString(p.deviceId, "peerInfo.deviceId", { nonEmpty: true });
  if (!isDeviceId(deviceId)) {
    throw invalid(
      `Invalid peerInfo.deviceId ${
        JSON.stringify(deviceId)
      }: expected a network id "AA:BB:CC:DD:EE:FF"`,
    );
  }
  const own = p.serviceName ?? p.serverId;
  return {
    deviceId: deviceId.toUpperCase(),
    bundleName: checkString(p.bundleName, "peerInfo.bundleName", { nonEmpty: true }),
    moduleName: checkString(p.moduleName, "peerInfo.moduleName", { nonEmpty: true }),
    abilityName: checkString(p.abilityName, "peerInfo.abilityName", { nonEmpty: true }),
    serviceName: own === undefined ? serviceName : checkServiceName(own, "peerInfo.serviceName"),
  };
}

export function checkServiceName(v: unknown, what: string): string {
  const s = checkString(v, what);
  if ([...s].length > MAX_SERVICE_NAME) {
    throw invalid(`Invalid ${what}: ${[...s].length} characters, over ${MAX_SERVICE_NAME}`);
  }
  return s;
}

export function checkSurfaceParam(v: unknown): Required<SurfaceParam> {
  if (typeof v !== "object" || v === null) {
    throw invalid(`Invalid surfaceParam: expected an object, got ${describe(v)}`);
  }
  const p = v as SurfaceParam;
  const width = checkInt(p.width, "surfaceParam.width");
  const height = checkInt(p.height, "surfaceParam.height");
  if (width < 1 || height < 1 || width > 65535 || height > 65535) {
    throw invalid(`Invalid surface size ${width}x${height}: expected 1..65535 each`);
  }
  const format = p.format === undefined ? VideoPixelFormat.UNKNOWN : checkInt(p.format, "format");
  if (format < VideoPixelFormat.UNKNOWN || format > VideoPixelFormat.NV21) {
    throw invalid(`Invalid format ${format}: expected VideoPixelFormat (-1, 0 or 1)`);
  }
  const rotation = p.rotation === undefined ? 0 : checkInt(p.rotation, "rotation");
  if (![0, 90, 180, 270].includes(rotation)) {
    throw invalid(`Invalid rotation ${rotation}: expected 0, 90, 180 or 270`);
  }
  const flip = p.flip === undefined ? -1 : checkInt(p.flip, "flip");
  if (flip !== -1 && flip !== 0 && flip !== 1) {
    throw invalid(`Invalid flip ${flip}: expected FlipOptions (0 or 1)`);
  }
  return { width, height, format, rotation, flip };
}

/**
 * Check an event type of `on` and `off`.
 *
 * @param type The argument.
 * @throws {ParameterError} 401 for a type that is not an `EventType`.
 */
export function checkEventType(type: unknown): void {
  if (typeof type !== "string" || !EVENT_TYPES.includes(type as EventType)) {
    throw invalid(
      `Invalid event type ${JSON.stringify(type)}: expected one of ${EVENT_TYPES.join(", ")}`,
    );
  }
}

/**
 * Check the data of `sendData`.
 *
 * @param data The argument.
 * @returns The data.
 * @throws {ParameterError} 401 for what is not an `ArrayBuffer` of at most 100 MiB.
 */
export function checkData(data: unknown): ArrayBuffer {
  const value: unknown = data;
  if (!(value instanceof ArrayBuffer)) {
    throw invalid(`Invalid data: expected an ArrayBuffer, got ${describe(value)}`);
  }
  if (value.byteLength > MAX_DATA_BYTES) {
    throw invalid(
      `Invalid data: ${value.byteLength} bytes, over the ${MAX_DATA_BYTES}-byte limit`,
    );
  }
  return value;
}

/**
 * Check the image and quality of `sendImage`.
 *
 * @param image The image argument.
 * @param quality The quality argument.
 * @returns The quality.
 * @throws {ParameterError} 401 for a released or foreign image or a quality outside 0..100.
 */
export function checkImage(image: unknown, quality: unknown): number {
  if (!(image instanceof PixelMap) || image.released) {
    throw invalid(`Invalid image: expected a PixelMap that is not released`);
  }
  const q = checkInt(quality, "quality");
  if (q < 0 || q > 100) throw invalid(`Invalid quality ${q}: expected 0..100`);
  return q;
}

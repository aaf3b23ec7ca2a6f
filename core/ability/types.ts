/**
 * The types, enums and limits of `abilityConnectionManager`: the union of
 * OpenHarmony's public API editions (API 18 `@ohos.abilityConnectionManager`
 * and the newer `@ohos.distributedsched.abilityConnectionManager`) and its
 * system API (images and streams), with the values OpenHarmony's sources use.
 *
 * @module
 */
import type { PixelMap } from "./pixel_map.ts";

/** The first session id; later ones count up (OpenHarmony's `sessionId_ = 100`). */
export const FIRST_SESSION_ID = 100;
/** The first stream id; later ones count up (OpenHarmony's `streamId_ = 1000`). */
export const FIRST_STREAM_ID = 1000;
/**
 * How long a collaboration may take, from `connect()` to the peer app's
 * answer (ms): OpenHarmony's `COLLAB_TIMEOUT`.
 */
export const COLLAB_TIMEOUT = 10_000;
/** Largest `sendMessage` text, in UTF-8 bytes (the documented 1 KB). */
export const MAX_MESSAGE_BYTES = 1024;
/**
 * Longest string argument (service name, token, reason, names), in UTF-8
 * bytes: OpenHarmony's native layer refuses 1024 bytes or more.
 */
export const MAX_STRING_BYTES = 1023;
/** Longest service name, in characters (the documented 256). */
export const MAX_SERVICE_NAME = 256;
/**
 * Largest `sendData` buffer and largest buffer a peer may make this device
 * allocate for one transfer: OpenHarmony's `BINARY_DATA_MAX_TOTAL_LEN`
 * (100 MiB).
 */
export const MAX_DATA_BYTES: number = 100 * 1024 * 1024;
/**
 * Most bytes all peers together may make this device hold in transfers it
 * has not delivered yet (every session's partly received data and images).
 * A transfer beyond it is refused; the sender's promise rejects.
 */
export const RECEIVE_BUDGET: number = 256 * 1024 * 1024;
/**
 * Size of the pieces a transfer is cut into on the session's stream: well
 * under the link's 4 MiB stream window, so a transfer never needs a message
 * the link would have to reassemble whole.
 */
export const CHUNK_BYTES: number = 128 * 1024;
/** Largest frame a stream carries, in bytes (the producer's `writeFrame` refuses more). */
export const MAX_FRAME_BYTES: number = 1024 * 1024;
/** Largest encoded image a peer may send (bytes). */
export const MAX_IMAGE_WIRE_BYTES: number = 64 * 1024 * 1024;
/** Bytes of `sendMessage` texts and control messages a session queues before refusing more. */
export const MAX_QUEUED_BYTES: number = 1024 * 1024;
/** Default quality of `sendImage` (OpenHarmony's `IMAGE_COMPRESSION_QUALITY`). */
export const DEFAULT_IMAGE_QUALITY = 30;
/** Default stream bitrate, bits per second (OpenHarmony's default). */
export const DEFAULT_BITRATE = 80_000;
/** Lowest accepted stream bitrate, bits per second (below: 32300003). */
export const MIN_BITRATE = 10_000;
/** Highest accepted stream bitrate, bits per second (above: 32300003). */
export const MAX_BITRATE = 100_000_000;

/** Why `connect()` failed: `ConnectResult.errorCode`. */
export const ConnectErrorCode = {
  /** A session between the two applications already exists. */
  CONNECTED_SESSION_EXISTS: 0,
  /** The peer application rejected the collaboration. */
  PEER_APP_REJECTED: 1,
  /** Wi-Fi is off here (never reported on Linux). */
  LOCAL_WIFI_NOT_OPEN: 2,
  /** Wi-Fi is off on the peer (never reported on Linux). */
  PEER_WIFI_NOT_OPEN: 3,
  /** The peer ability has no `onCollaborate`. */
  PEER_ABILITY_NO_ONCOLLABORATE: 4,
  /** Anything else: the peer is unreachable or not running, no answer in time, ... */
  SYSTEM_INTERNAL_ERROR: 5,
} as const;

/** How the peer application is started. */
export const StartOptionParams = {
  /** In the foreground. */
  START_IN_FOREGROUND: 0,
  /** In the background (system API). */
  START_IN_BACKGROUND: 1,
} as const;

/** Why a session disconnected: `EventCallbackInfo.reason` of `disconnect`. */
export const DisconnectReason = {
  /** The peer application called `disconnect()` or destroyed the session. */
  PEER_APP_CLOSE_COLLABORATION: 0,
  /** The peer application exited (terminated its ability, or its process ended). */
  PEER_APP_EXIT: 1,
  /** The link to the peer was lost. */
  NETWORK_DISCONNECTED: 2,
} as const;

/** What a `collaborateEvent` reports. */
export const CollaborateEventType = {
  /** Sending data, an image or a frame failed. */
  SEND_FAILURE: 0,
  /** Color space conversion failed (never reported: linkweave converts no color space). */
  COLOR_SPACE_CONVERSION_FAILURE: 1,
} as const;

/** Keys of collaboration parameters. */
export const CollaborationKeys = {
  /** Key of the peer's information. */
  PEER_INFO: "ohos.collaboration.key.peerInfo",
  /** Key of the connection options. */
  CONNECT_OPTIONS: "ohos.collaboration.key.connectOptions",
  /** Key of the collaboration type. */
  COLLABORATE_TYPE: "ohos.collaboration.key.abilityCollaborateType",
} as const;

/** Values of collaboration parameters. */
export const CollaborationValues = {
  /** Default collaboration. */
  ABILITY_COLLABORATION_TYPE_DEFAULT: "ohos.collaboration.value.abilityCollab",
  /** Collaboration through a connection proxy. */
  ABILITY_COLLABORATION_TYPE_CONNECT_PROXY: "ohos.collaboration.value.connectProxy",
} as const;

/** The direction of a stream. */
export const StreamRole = {
  /** Sends frames (TX). */
  SOURCE: 0,
  /** Receives frames (RX). */
  SINK: 1,
} as const;

/** Pixel format of stream frames. */
export const VideoPixelFormat = {
  /** Unknown. */
  UNKNOWN: -1,
  /** NV12 (Y plane, then interleaved UV). */
  NV12: 0,
  /** NV21 (Y plane, then interleaved VU). */
  NV21: 1,
} as const;

/** How frames are flipped. */
export const FlipOptions = {
  /** Horizontally. */
  HORIZONTAL: 0,
  /** Vertically. */
  VERTICAL: 1,
} as const;

/** The peer application of a session. */
export interface PeerInfo {
  /** The peer device's network id (a device id, `AA:BB:CC:DD:EE:FF`). */
  deviceId: string;
  /** The peer application's bundle name. */
  bundleName: string;
  /** The peer ability's module name. */
  moduleName: string;
  /** The peer ability's name. */
  abilityName: string;
  /** The service name; the `serviceName` argument when absent. */
  serviceName?: string;
}

/** Options of a session (both editions' fields). */
export interface ConnectOptions {
  /** Whether this side sends data (`sendData`). @default {false} */
  needSendData?: boolean;
  /** The older edition's name of `needSendData`. @default {false} */
  needSendBigData?: boolean;
  /** Whether this side sends a stream (system API). @default {false} */
  needSendStream?: boolean;
  /** Whether this side receives a stream (system API). @default {false} */
  needReceiveStream?: boolean;
  /** How the peer application is started. @default {StartOptionParams.START_IN_FOREGROUND} */
  startOptions?: number;
  /** The older edition's start options (`"ohos.collabrate.key.start.option"`, ...). */
  options?: Record<string, string>;
  /** Extra parameters handed to the peer application. */
  parameters?: Record<string, string>;
}

/** The outcome of `connect()`. */
export interface ConnectResult {
  /** Whether the session is connected. */
  isConnected: boolean;
  /** Why not, when it is not. */
  errorCode?: number;
  /** The peer application's reason for rejecting; `""` otherwise. */
  reason?: string;
}

/** What an event callback receives. */
export interface EventCallbackInfo {
  /** The session. */
  sessionId: number;
  /** Why it disconnected (`disconnect`). */
  reason?: number;
  /** The text received (`receiveMessage`). */
  msg?: string;
  /** The bytes received (`receiveData`). */
  data?: ArrayBuffer;
  /** The image received (`receiveImage`). */
  image?: PixelMap;
}

/** What a `collaborateEvent` callback receives. */
export interface CollaborateEventInfo {
  /** What happened (`CollaborateEventType`). */
  eventType: number;
  /** Details. */
  eventMsg?: string;
}

/** A stream to create (system API). */
export interface StreamParam {
  /** Its name: the same on the source and the sink. */
  name: string;
  /** `StreamRole.SOURCE` or `StreamRole.SINK`. */
  role: number;
  /** The sending rate the source paces frames to, bits per second. @default {80000} */
  bitrate?: number;
  /** A color space to convert to (`colorSpaceManager.ColorSpace`): not supported on Linux (32300004). */
  colorSpaceConversionTarget?: number;
}

/** The geometry of a stream's frames (system API). */
export interface SurfaceParam {
  /** Width in pixels. */
  width: number;
  /** Height in pixels. */
  height: number;
  /** Pixel format (`VideoPixelFormat`; the source's). @default {VideoPixelFormat.UNKNOWN} */
  format?: number;
  /** Rotation: 0, 90, 180 or 270. @default {0} */
  rotation?: number;
  /** Flip (`FlipOptions`); none when absent. */
  flip?: number;
}

/** Event types of a session. */
export type EventType =
  | "connect"
  | "disconnect"
  | "receiveMessage"
  | "receiveData"
  | "receiveImage"
  | "collaborateEvent";

/** Every event type, in OpenHarmony's order. */
export const EVENT_TYPES: readonly EventType[] = [
  "connect",
  "disconnect",
  "receiveMessage",
  "receiveData",
  "receiveImage",
  "collaborateEvent",
];

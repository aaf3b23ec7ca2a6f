/**
 * Public types of `@ohos.net.socket`, as OpenHarmony names them.
 *
 * @module
 */
import type { BusinessError } from "../errors.ts";
import type { SocketPlatform } from "./platform.ts";

/**
 * OpenHarmony's `AsyncCallback`, typed as OpenHarmony types it, so that
 * ArkTS-style callbacks (`(err: BusinessError, data) => ...`) fit. On
 * success `err` is `undefined` (test it with `if (err)`, as OpenHarmony's
 * examples do); on failure it is the error and `data` is a placeholder.
 */
export type AsyncCallback<T> = (err: BusinessError, data: T) => void;

/** OpenHarmony's `Callback`. */
export type Callback<T> = (data: T) => void;

/**
 * OpenHarmony's `ErrorCallback`, the `error` event's callback. Its `code` is
 * the raw errno, as OpenHarmony passes it (104 for a reset peer, -1 when
 * unknown), not `2301000 + errno`; the original error is the `cause`.
 */
export type ErrorCallback = (err: BusinessError) => void;

/** An IP address and port. */
export interface NetAddress {
  /** The numeric IP address. */
  address: string;
  /** The port, 0..65535; 0 or absent lets the system choose. */
  port?: number;
  /** 1 for IPv4 (the default), 2 for IPv6. */
  family?: number;
}

/** Parameters of `UDPSocket.send`. */
export interface UDPSendOptions {
  /** The data to send. */
  data: string | ArrayBuffer;
  /** The destination. */
  address: NetAddress;
}

/** Options shared by every socket type. */
export interface ExtraOptionsBase {
  /** Receive buffer size in bytes. */
  receiveBufferSize?: number;
  /** Send buffer size in bytes. */
  sendBufferSize?: number;
  /** Whether to reuse addresses. @default {false} */
  reuseAddress?: boolean;
  /** Timeout of a send, in ms (0: none). */
  socketTimeout?: number;
}

/** Options of `UDPSocket.setExtraOptions`. */
export interface UDPExtraOptions extends ExtraOptionsBase {
  /** Whether broadcasts may be sent. @default {false} */
  broadcast?: boolean;
}

/** `socketLinger` of {@linkcode TCPExtraOptions}. */
export interface SocketLinger {
  /** Whether lingering is on. */
  on: boolean;
  /** The linger time, 0..65535. */
  linger: number;
}

/** Options of `TCPSocket.setExtraOptions`. */
export interface TCPExtraOptions extends ExtraOptionsBase {
  /** `SO_KEEPALIVE`. @default {false} */
  keepAlive?: boolean;
  /** `SO_OOBINLINE`. @default {false} */
  OOBInline?: boolean;
  /** `TCP_NODELAY`. @default {false} */
  TCPNoDelay?: boolean;
  /** `SO_LINGER`. */
  socketLinger?: SocketLinger;
}

/** Parameters of `TCPSocket.connect`. */
export interface TCPConnectOptions {
  /** The server address. */
  address: NetAddress;
  /** Timeout in ms; 0 or absent means 5000. */
  timeout?: number;
  /**
   * linkweave extension: gives the connect up. Aborted before the call, it
   * rejects with the signal's reason and opens nothing; aborted while
   * connecting, it rejects with the reason and the socket stays
   * unconnected (`connect` may be called again); once connected, the
   * signal no longer matters.
   *
   * @default {undefined}
   */
  signal?: AbortSignal;
}

/** Parameters of `TCPSocket.send`. */
export interface TCPSendOptions {
  /** The data to send. */
  data: string | ArrayBuffer;
  /**
   * How to encode a string: `UTF-8` (default), `UTF-16BE`, `UTF-16LE`,
   * `UTF-16`, `US-ASCII` (or `US-AECII`, as the docs spell it) or
   * `ISO-8859-1`; any other value sends UTF-8, as OpenHarmony does.
   */
  encoding?: string;
}

/** The state of a socket. */
export interface SocketStateBase {
  /** Whether it is bound. */
  isBound: boolean;
  /** Whether it is closed. */
  isClose: boolean;
  /** Whether it is connected. */
  isConnected: boolean;
}

/** Where a message came from. */
export interface SocketRemoteInfo {
  /** The sender's IP address. */
  address: string;
  /** `IPv4` or `IPv6`. */
  family: "IPv4" | "IPv6";
  /** The sender's port. */
  port: number;
  /** The message length in bytes. */
  size: number;
}

/** Payload of the `message` event of IP sockets. */
export interface SocketMessageInfo {
  /** The bytes received. */
  message: ArrayBuffer;
  /** Where they came from. */
  remoteInfo: SocketRemoteInfo;
}

/** A Unix-domain socket address. */
export interface LocalAddress {
  /** The socket file path. */
  address: string;
}

/** Parameters of `LocalSocket.connect`. */
export interface LocalConnectOptions {
  /** The server's socket path. */
  address: LocalAddress;
  /** Timeout in ms; 0 or absent means 5000. */
  timeout?: number;
  /**
   * linkweave extension: gives the connect up, as `TCPConnectOptions.signal`
   * does.
   *
   * @default {undefined}
   */
  signal?: AbortSignal;
}

/** Parameters of `LocalSocket.send`. */
export interface LocalSendOptions {
  /** The data to send. */
  data: string | ArrayBuffer;
  /** How to encode a string (as {@linkcode TCPSendOptions.encoding}). */
  encoding?: string;
}

/** Options of `LocalSocket.setExtraOptions`. */
export type LocalExtraOptions = ExtraOptionsBase;

/** Payload of the `message` event of Unix-domain sockets. */
export interface LocalSocketMessageInfo {
  /** The bytes received. */
  message: ArrayBuffer;
  /** The socket path. */
  address: string;
  /** The message length in bytes. */
  size: number;
}

/** Options of every `construct*Instance` (a linkweave extension). */
export interface ConstructOptions {
  /** The platform adapter to use. @default {the current runtime's} */
  platform?: SocketPlatform;
}

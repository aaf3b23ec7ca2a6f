/**
 * The pieces a collaboration session is built on: the options it was created
 * with, what it needs from its manager, the error of a failed call, and its
 * stream's port on the device (`SessionPort`, whose events go to an incoming
 * request until it is accepted, then to the session). The session itself is
 * in `_session.ts`.
 *
 * @module
 */
import { ErrorCode } from "../error_codes.ts";
import { BusinessError } from "../errors.ts";
import type { DeviceHost } from "../device/host.ts";
import { Port } from "../device/driver.ts";
import { DEFAULT_SEND_QUEUE_BYTES } from "../proto/link/mod.ts";
import type { ImageCodec } from "./pixel_map.ts";
import type { ReceiveBudget } from "./_transfer.ts";
import type { Session } from "./_session.ts";
import { MAX_FRAME_BYTES } from "./types.ts";

/**
 * A frame waits (and is replaced by newer ones) while the link holds this
 * much of the session's data unsent: half the link's send queue, the level
 * at which the link reports `drain` again.
 */
export const FRAME_CONGESTION: number = DEFAULT_SEND_QUEUE_BYTES / 2;
/** Largest message a peer may send on a session's stream. */
export const SESSION_MAX_MESSAGE: number = MAX_FRAME_BYTES + 64;

/** The options a session was created with, resolved. */
export interface SessionOptions {
  /** Whether this side may `sendData` (and `sendImage`). */
  needSendData: boolean;
  /** Whether this side may create a source stream. */
  needSendStream: boolean;
  /** Whether this side may create a sink stream. */
  needReceiveStream: boolean;
  /** `StartOptionParams`. */
  startOptions: number;
  /** Extra parameters. */
  parameters: Record<string, string>;
}

/** What sessions need from their manager. */
export interface SessionContext {
  /** The machine. */
  host: DeviceHost;
  /** The receive budget of the device. */
  budget: ReceiveBudget;
  /** The JPEG codec. */
  imageCodec(): ImageCodec;
  /** Whether another session already connects these two abilities. */
  duplicate(s: Session): boolean;
  /** Keep the process alive for the linger time (queued bytes still to flush). */
  linger(): void;
  /** A stream of a session is gone. */
  forgetStream(id: number): void;
}

/**
 * A runtime failure of a session (a rejected promise), with OpenHarmony's
 * code for it, 401.
 *
 * @param message What failed.
 * @returns The error.
 */
export function failure(message: string): BusinessError {
  return new BusinessError(ErrorCode.PARAMETER_ERROR, message);
}

/** What a port reports to whoever owns it now. */
export interface PortOwner {
  opened(): void;
  failed(message: string): void;
  data(bytes: Uint8Array): void;
  closed(byPeer: boolean): void;
  drain(): void;
}

/** The session's stream as the device sees it: one small object, no closures. */
export class SessionPort extends Port {
  /** Who hears its events (an incoming request until accepted, then the session). */
  owner: PortOwner;

  /** @param owner Who hears its events. */
  constructor(owner: PortOwner) {
    super();
    this.owner = owner;
    this.maxMessage = SESSION_MAX_MESSAGE;
  }

  override onOpened(): void {
    this.owner.opened();
  }

  override onRejected(code: number): void {
    this.owner.failed(`the peer refused the session's stream (${code})`);
  }

  override onFailed(_code: number, message: string): void {
    this.owner.failed(message);
  }

  override onData(data: ArrayBuffer): void {
    this.owner.data(new Uint8Array(data));
  }

  override onClosed(_reason: number, byPeer: boolean): void {
    this.owner.closed(byPeer);
  }

  override onDrain(): void {
    this.owner.drain();
  }
}

/** An owner that ignores everything (a port whose session let go of it). */
export const DETACHED: PortOwner = {
  opened() {},
  failed() {},
  data() {},
  closed() {},
  drain() {},
};

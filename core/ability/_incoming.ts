/**
 * An incoming collaboration request: the stream a peer opened for a session,
 * waiting for its request (hello), then for the app's `acceptConnect` (which
 * hands the stream to a session) or `reject`.
 *
 * @module
 */
import { decodeMessage, encodeResult, type Hello, type Result } from "./wire.ts";
import { ConnectErrorCode } from "./types.ts";
import { DETACHED, type PortOwner, SessionPort } from "./_session_port.ts";
import type { Session } from "./_session.ts";

/** What an incoming request waits for: the app's `acceptConnect` or `reject`. */
export class Incoming implements PortOwner {
  /** The peer device. */
  readonly peerId: string;
  /** The request, once it arrived. */
  hello: Hello | undefined;
  #port: SessionPort | undefined;
  #onHello: (inc: Incoming) => void;
  #onGone: (inc: Incoming) => void;

  /**
   * @param peerId The peer device.
   * @param handlers What to do when the request arrives and when it is gone.
   */
  constructor(
    peerId: string,
    handlers: { hello: (inc: Incoming) => void; gone: (inc: Incoming) => void },
  ) {
    this.peerId = peerId;
    this.#onHello = handlers.hello;
    this.#onGone = handlers.gone;
    this.#port = new SessionPort(this);
  }

  /** The stream's port (for the driver's acceptor). */
  get port(): SessionPort {
    return this.#port!;
  }

  /** Whether the stream is still there and unanswered. */
  get waiting(): boolean {
    return this.#port !== undefined;
  }

  /**
   * Answer with a refusal and close.
   *
   * @param result The refusal.
   */
  answer(result: Result): void {
    const port = this.#port;
    if (port === undefined) return;
    this.#port = undefined;
    port.owner = DETACHED;
    port.send(encodeResult(result));
    port.close();
    this.#onGone(this);
  }

  /**
   * Hand the stream to the accepting session.
   *
   * @param session The session.
   * @returns The port, or `undefined` when the stream is gone.
   */
  takePort(session: Session): SessionPort | undefined {
    const port = this.#port;
    if (port === undefined) return undefined;
    this.#port = undefined;
    port.owner = session;
    this.#onGone(this);
    return port;
  }

  opened(): void {}
  failed(): void {}
  drain(): void {}

  data(bytes: Uint8Array): void {
    const m = decodeMessage(bytes);
    if (this.hello !== undefined || m?.type !== "hello") {
      this.answer({ errorCode: ConnectErrorCode.SYSTEM_INTERNAL_ERROR, reason: "" });
      return;
    }
    this.hello = m.hello;
    this.#onHello(this);
  }

  closed(): void {
    if (this.#port === undefined) return;
    this.#port = undefined;
    this.#onGone(this);
  }
}

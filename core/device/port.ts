/**
 * One connection as the device driver and the API layer share it: the
 * owner's handle for sending and closing, and, by overriding its `on*`
 * methods, how the owner hears about the connection. One small object per
 * connection, so thousands of idle connections cost little.
 *
 * @module
 */
import { DisconnectReason } from "../error_codes.ts";
import type { EndpointEvent, PeerLink } from "./endpoint.ts";

/** What a port needs from the driver. */
export interface PortDriver {
  /** Queue a message on a stream (the hot path of `Port.send`). */
  send(link: PeerLink, stream: number, data: Uint8Array): boolean;
  /** Close a connection, or give up connecting. */
  closePort(port: Port): void;
}

/** The owner's handle on a connection. */
export interface ConnectionRef {
  /** The peer's device id. */
  readonly peerId: string;
  /**
   * Queue a message.
   *
   * @param data The bytes (see `Link.send` for when they may be reused).
   * @returns `false` when the send queue is full or the connection is not open.
   */
  send(data: Uint8Array): boolean;
  /** Payload bytes queued and not yet written. */
  readonly bufferedAmount: number;
  /** Close gracefully (queued data first), or give up connecting. */
  close(): void;
}

/**
 * One connection as the driver and its owner (the API layer) share it: the
 * owner's handle for sending and closing, and, by overriding the `on*`
 * methods, how the owner hears about the connection. One object per
 * connection, so thousands of idle connections cost little.
 */
export class Port implements ConnectionRef {
  /** The peer's device id. */
  peerId = "";
  /** @internal The link, once the stream exists. */
  link: PeerLink | undefined = undefined;
  /** @internal The stream id on that link. */
  stream = 0;
  /** @internal The driver, while the connection is in use. */
  driver: PortDriver | undefined = undefined;
  /** Largest message the peer may send on this connection (bytes); the link's default when unset. */
  maxMessage: number | undefined = undefined;

  /**
   * Queue a message.
   *
   * @param data The bytes (see `Link.send` for when they may be reused).
   * @returns `false` when the send queue is full or the connection is not open.
   */
  send(data: Uint8Array): boolean {
    return this.link !== undefined && this.driver !== undefined &&
      this.driver.send(this.link, this.stream, data);
  }

  /** Payload bytes queued and not yet written. */
  get bufferedAmount(): number {
    return this.link?.link.bufferedAmount(this.stream) ?? 0;
  }

  /** Close gracefully (queued data first), or give up connecting; no event follows. */
  close(): void {
    const d = this.driver;
    this.driver = undefined;
    d?.closePort(this);
  }

  /** The peer accepted the connection (outgoing connections). */
  onOpened(): void {}
  /**
   * The peer refused it.
   *
   * @param _code The code its API gave (e.g. 32390201).
   */
  onRejected(_code: number): void {}
  /**
   * It could not be made (timeout, device closing, ...).
   *
   * @param _code The code.
   * @param _message Why.
   */
  onFailed(_code: number, _message: string): void {}
  /**
   * A message arrived.
   *
   * @param _data The message (the owner keeps it).
   */
  onData(_data: ArrayBuffer): void {}
  /**
   * The connection closed: the peer closed it or the link went away.
   *
   * @param _reason Why (`DisconnectReason`).
   * @param _byPeer Whether the peer's side ended it: it closed the stream, or
   *   its end of the link's channel closed (its process exited: the channel
   *   saw an orderly end or a reset), as opposed to the link being lost
   *   (silence, a local failure, a protocol error).
   */
  onClosed(_reason: number, _byPeer: boolean): void {}
  /** The send queue is back to half full or less after it had filled up. */
  onDrain(): void {}
}

/** What an incoming connection asks for. */
export interface IncomingRequest {
  /** The peer's device id. */
  peerId: string;
  /** The service name. */
  name: string;
  /** The service kind (`ServiceKind`). */
  kind: number;
  /** The peer app's bundle name. */
  bundle: string;
}

/** What the API layer answers to an incoming connection: its port, or a code to refuse it. */
export type Acceptor = (request: IncomingRequest) => Port | number;

/**
 * Hand an endpoint event about one connection to its port.
 *
 * @param ev The event.
 * @param endedByPeer Whether the peer's side ended a link's channel (for `onClosed`).
 * @returns `false` when the event is not about a connection.
 */
export function deliverToPort(
  ev: EndpointEvent,
  endedByPeer: (link: PeerLink) => boolean = () => false,
): boolean {
  switch (ev.type) {
    case "opening": {
      const port = ev.owner as Port;
      port.link = ev.link;
      port.stream = ev.stream;
      return true;
    }
    case "data":
    case "drain":
    case "opened":
    case "rejected":
    case "closed": {
      const port = ev.owner as Port;
      const byPeer = ev.type === "closed" &&
        (ev.reason !== DisconnectReason.LINK_CLOSED ||
          (port.link !== undefined && endedByPeer(port.link)));
      if (ev.type === "rejected" || ev.type === "closed") port.link = undefined;
      if (port.driver === undefined) return true;
      if (ev.type === "data") port.onData(ev.data);
      else if (ev.type === "drain") port.onDrain();
      else if (ev.type === "opened") port.onOpened();
      else if (ev.type === "rejected") port.onRejected(ev.code);
      else port.onClosed(ev.reason, byPeer);
      return true;
    }
  }
  return false;
}

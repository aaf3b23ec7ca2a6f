/**
 * The one link interface every profile implements (DESIGN decision 1): the
 * endpoint and the API layer above it work with any of them alike. The
 * `linkweave` profile is `core/proto/link/` (`Link`); another profile, such
 * as OpenHarmony's own BLE protocol, adapts its state machine to this shape
 * and is handed to the endpoint by name (`EndpointOptions.profiles`), for
 * the channels a transport marks with that profile. Such channels skip the
 * linkweave handshake: the transport names the peer.
 *
 * @module
 */
import type {
  ChannelId,
  ChannelOptions,
  ChannelStats,
  LinkEvent,
  OpenOptions,
  Transmit,
} from "../proto/link/mod.ts";

/** A link to one peer, whatever its profile. */
export interface ProfileLink {
  /** The peer's id. */
  readonly peerId: string;
  /** The driver's tag, returned as `link` in `open` events. */
  tag: unknown;
  /** `open`, `closing` or `closed`. */
  readonly state: "open" | "closing" | "closed";
  /** Whether nothing waits to be transmitted. */
  readonly idle: boolean;
  /** Bytes the peer makes the link hold now. */
  readonly held: number;
  /** Time of the last byte received (ms), or `-Infinity`. */
  readonly lastReceived: number;
  /** What a channel measured, for a profile that keeps figures (linkweave's own link). */
  channelStats?(id: ChannelId): ChannelStats | undefined;
  /** Streams not yet closed. */
  readonly streams: number;
  /** Add a channel. */
  addChannel(id: ChannelId, options: ChannelOptions): void;
  /** Bytes arrived on a channel. */
  handleBytes(id: ChannelId, bytes: Uint8Array, now: number): void;
  /** A channel's writability changed. */
  handleWritable(id: ChannelId, writable: boolean): void;
  /** A channel closed. */
  handleChannelClosed(id: ChannelId, message?: string): void;
  /** Timers are due. */
  handleTimeout(now: number): void;
  /** When `handleTimeout` is next due. */
  pollTimeout(): number | undefined;
  /** The next event. */
  pollEvent(): LinkEvent | undefined;
  /** The next bytes to write. */
  pollTransmit(now: number): Transmit | undefined;
  /** Open a stream to a peer's service. */
  open(name: string, options?: OpenOptions): number;
  /** Accept an incoming stream. */
  accept(id: number, owner?: unknown, maxMessage?: number): void;
  /** Refuse an incoming stream. */
  reject(id: number, code: number): void;
  /** Queue a message. */
  send(id: number, data: Uint8Array): boolean;
  /** Bytes queued on a stream. */
  bufferedAmount(id: number): number;
  /** Close a stream gracefully. */
  closeStream(id: number): void;
  /** Close the link gracefully. */
  close(): void;
  /** Drop the link at once. */
  abort(message?: string): void;
}

/** Makes a link of a profile for a peer. */
export type ProfileFactory = (peerId: string, now: number) => ProfileLink;

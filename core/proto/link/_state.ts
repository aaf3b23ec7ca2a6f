/**
 * What the parts of a link share: its streams, events, limits and the
 * frames that must go out first. The link (`mod.ts`) owns one and hands it
 * to its sending (`_outbound.ts`) and receiving (`_inbound.ts`) halves.
 *
 * @module
 */
import type { FrameInit, Reassembler } from "../frame.ts";
import { Scheduler } from "./scheduler.ts";
import type { Stream } from "./streams.ts";

/** Identifies a channel of a link; chosen by the driver. */
export type ChannelId = number;

/** What a link reports. `owner` is what the user attached to the stream. */
export type LinkEvent =
  | { type: "open"; link: unknown; stream: number; name: string; kind: number; bundle: string }
  | { type: "opened"; stream: number; owner: unknown }
  | { type: "rejected"; stream: number; owner: unknown; code: number }
  | { type: "data"; stream: number; owner: unknown; data: ArrayBuffer }
  | { type: "closed"; stream: number; owner: unknown; reason: number }
  | { type: "drain"; stream: number; owner: unknown }
  /**
   * The peer broke a rule on one stream (which was reset), was refused
   * something, or broke the link (stream 0; `linkClosed` follows).
   */
  | { type: "protocolError"; stream: number; message: string }
  | { type: "linkClosed"; reason: number; message: string };

/** The limits of a link, resolved. */
export interface LinkLimits {
  /** Receive window per stream (bytes). */
  window: number;
  /** Bound of each stream's send queue (payload bytes). */
  sendQueueBytes: number;
  /** Largest batch handed to a channel at once (bytes). */
  maxBatch: number;
  /** Largest message a peer may send on a stream unless the stream says less (bytes). */
  maxMessage: number;
  /** Most streams open at once on the link (both directions). */
  maxStreams: number;
  /** Most bytes the peer may make this link hold (reassembly and reordering). */
  budget: number;
}

/** The state shared by the halves of a link. */
export class LinkState {
  /** This device's id. */
  readonly localId: string;
  /** The peer's id. */
  readonly peerId: string;
  /** The driver's tag for the link. */
  tag: unknown;
  /** The limits. */
  readonly limits: LinkLimits;
  /** Streams not yet closed, by id. */
  readonly streams: Map<number, Stream> = new Map();
  /** Streams with something to send. */
  readonly scheduler: Scheduler = new Scheduler();
  /** Frames that go out before any stream's (credit, resets). */
  urgent: FrameInit[] = [];
  /** Events not yet polled. */
  readonly events: LinkEvent[] = [];
  /** `open`, `closing` (graceful close under way) or `closed`. */
  state: "open" | "closing" | "closed" = "open";
  /** Bytes held in the streams' reorder buffers (with their overhead, see `Stream.held`). */
  held = 0;
  /** Rebuilds messages from fragments. */
  readonly reassembler: Reassembler;
  /** Close the link at once (set by the link). */
  lose: (message: string) => void = () => {};

  /**
   * The peer broke the link: say why (a `protocolError` on stream 0, which
   * the device logs), then close it at once.
   *
   * @param why What the peer did.
   */
  broken(why: string): void {
    if (this.state === "closed") return;
    const message = `Link to ${this.peerId} broken: ${why}`;
    this.events.push({ type: "protocolError", stream: 0, message });
    this.lose(message);
  }

  /**
   * @param ids The two device ids and the tag.
   * @param limits The limits.
   * @param reassembler The link's reassembler.
   */
  constructor(
    ids: { localId: string; peerId: string; tag: unknown },
    limits: LinkLimits,
    reassembler: Reassembler,
  ) {
    this.localId = ids.localId;
    this.peerId = ids.peerId;
    this.tag = ids.tag;
    this.limits = limits;
    this.reassembler = reassembler;
  }
}

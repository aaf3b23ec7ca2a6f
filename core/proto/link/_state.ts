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

/**
 * A frame kept to send again (on another channel) until the peer
 * acknowledges it, in a link of several channels.
 */
export interface Retained {
  /** Its link sequence number (the peer drops a second copy by it). */
  ls: number;
  /** The frame, with a payload of its own. */
  frame: FrameInit;
  /** Whether the peer acknowledged it on some channel. */
  acked: boolean;
  /** Channels that keep it (written to them, not acknowledged), or queue it. */
  copies: number;
  /**
   * Of those, channels it was written to (alive, not acknowledged): while
   * any is, that copy may still arrive, so the frame is never sent again cut
   * in pieces (the peer's reassembly refuses fragments that overlap in part).
   */
  written: number;
  /** The half-sent message it belongs to, while that holds a slot (see `MAX_PARTIAL`). */
  hold: PartialHold | undefined;
}

/**
 * A message of several frames whose frames are all handed to channels, in
 * a link of several channels: it keeps its share of `MAX_PARTIAL` until the
 * peer has acknowledged every frame (so the peer holds at most that many
 * messages in reassembly, whatever order the channels deliver in). A frame
 * sent again on the last channel counts as acknowledged when written (it is
 * kept no more, and that channel delivers in order).
 */
export interface PartialHold {
  /** Its length (its share of `MAX_PARTIAL_BYTES`); -1 once its slot is free again. */
  bytes: number;
  /** Its frames kept and not yet acknowledged. */
  unacked: number;
  /** Whether all its frames were handed to channels. */
  done: boolean;
}

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
  | { type: "linkClosed"; reason: number; message: string }
  /**
   * The link gave up a channel (lost: silent too long, or removed): the
   * driver closes it. Its frames went to the other channels; the link lives on.
   */
  | { type: "channelClosed"; channel: ChannelId; message: string };

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
  /** Frames of lost (or suspect) channels to send again, before anything else. */
  resend: Retained[] = [];
  /** Payload bytes queued in every stream and not yet handed to a channel. */
  queued = 0;
  /** Events not yet polled. */
  readonly events: LinkEvent[] = [];
  /** `open`, `closing` (graceful close under way) or `closed`. */
  state: "open" | "closing" | "closed" = "open";
  /** Bytes held in the streams' reorder buffers (with their overhead, see `Stream.held`). */
  held = 0;
  /** Messages sent in part (the rest still queued); see `MAX_PARTIAL`. */
  partial = 0;
  /** Their lengths, summed; see `MAX_PARTIAL_BYTES`. */
  partialBytes = 0;
  /** Rebuilds messages from fragments. */
  readonly reassembler: Reassembler;
  /** Close the link at once (set by the link). */
  lose: (message: string) => void = () => {};

  /**
   * Drop every queued entry of a stream, keeping the link's total right.
   *
   * @param s The stream.
   */
  clearStream(s: Stream): void {
    this.queued -= s.queued;
    s.clear();
  }

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

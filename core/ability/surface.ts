/**
 * Surfaces, the Linux stand-in for OpenHarmony's graphic surfaces that
 * streams read from and write to. A surface is named by a surface id (a
 * decimal string, as on OpenHarmony):
 *
 * - on the **source**, `getSurfaceId(streamId, param)` makes a surface the
 *   stream reads; the application (its "camera") writes frames into it with
 *   `getProducer(surfaceId).writeFrame(bytes, { timestamp })`;
 * - on the **sink**, the application makes a surface with
 *   {@linkcode createSurface} (its "display") and hands its id to
 *   `setSurfaceId(streamId, surfaceId, param)`; frames arrive as `frame`
 *   events, in order, with the producer's timestamp.
 *
 * Frames are opaque bytes (an encoded video frame, or raw NV12/NV21 pixels
 * when they fit the bitrate) with their geometry; linkweave neither encodes
 * nor converts them. A frame is at most {@linkcode MAX_FRAME_BYTES}.
 *
 * @example A display surface
 * ```ts
 * import assert from "node:assert/strict";
 * const display = createSurface();
 * const seen: number[] = [];
 * display.on("frame", (f) => seen.push(f.seq));
 * assert.match(display.surfaceId, /^\d+$/);
 * display.release();
 * ```
 *
 * @module
 */
import { ParameterError } from "../errors.ts";
import { MAX_FRAME_BYTES } from "./types.ts";

/** A frame as a sink's surface receives it. */
export interface Frame {
  /** Its number, counted by the producer from 0. */
  seq: number;
  /** The producer's timestamp (ms, the producer's wall clock unless given). */
  timestamp: number;
  /** The bytes. */
  data: Uint8Array;
  /** Width in pixels (the stream's `SurfaceParam`). */
  width: number;
  /** Height in pixels. */
  height: number;
  /** `VideoPixelFormat`. */
  format: number;
  /** Rotation in degrees the source asked for. */
  rotation: number;
  /** `FlipOptions` the source asked for, or -1. */
  flip: number;
}

/** Options of {@linkcode SurfaceProducer.writeFrame}. */
export interface WriteFrameOptions {
  /** The frame's timestamp (ms). @default {performance.timeOrigin + performance.now()} */
  timestamp?: number;
}

/** @internal Where a producer's frames go (the stream). */
export interface FrameSink {
  /** A frame was written. */
  write(data: Uint8Array, timestamp: number): void;
}

let nextId = 1;
const producers = new Map<string, SurfaceProducer>();
const consumers = new Map<string, SurfaceConsumer>();

function newId(): string {
  return String(nextId++);
}

function wallClock(): number {
  return performance.timeOrigin + performance.now();
}

/** The writing end of a source stream's surface. */
export class SurfaceProducer {
  /** The surface id. */
  readonly surfaceId: string;
  #sink: FrameSink | undefined;
  #written = 0;

  /**
   * @internal Made by `getSurfaceId`.
   * @param sink Where frames go.
   */
  constructor(sink: FrameSink) {
    this.surfaceId = newId();
    this.#sink = sink;
    producers.set(this.surfaceId, this);
  }

  /** Frames written so far. */
  get framesWritten(): number {
    return this.#written;
  }

  /**
   * Write a frame. It is sent when the stream is started, the bitrate
   * allows and the path is not congested; a frame still waiting when the
   * next one is written is dropped.
   *
   * @param data The frame's bytes (copied), at most 1 MiB.
   * @param options Its timestamp.
   * @throws {ParameterError} 401 for a bad frame, or after the stream was destroyed.
   */
  writeFrame(data: ArrayBuffer | Uint8Array, options: WriteFrameOptions = {}): void {
    const bytes = data instanceof ArrayBuffer
      ? new Uint8Array(data)
      : data instanceof Uint8Array
      ? data
      : undefined;
    if (bytes === undefined) {
      throw new ParameterError("Invalid frame: expected an ArrayBuffer or a Uint8Array");
    }
    if (bytes.length > MAX_FRAME_BYTES) {
      throw new ParameterError(
        `Invalid frame: ${bytes.length} bytes, over the ${MAX_FRAME_BYTES}-byte limit`,
      );
    }
    const ts = options.timestamp ?? wallClock();
    if (typeof ts !== "number" || !Number.isFinite(ts)) {
      throw new ParameterError(`Invalid timestamp ${JSON.stringify(ts)}: expected a number`);
    }
    if (this.#sink === undefined) {
      throw new ParameterError(
        `Cannot write a frame: surface "${this.surfaceId}" was released`,
      );
    }
    this.#written++;
    this.#sink.write(bytes.slice(), ts);
  }

  /** @internal The stream is gone. */
  release(): void {
    this.#sink = undefined;
    producers.delete(this.surfaceId);
  }
}

/** The reading end of a sink stream: a display. */
export class SurfaceConsumer {
  /** The surface id. */
  readonly surfaceId: string;
  #listeners = new Set<(frame: Frame) => void>();
  #received = 0;
  #released = false;

  /** @internal Use {@linkcode createSurface}. */
  constructor() {
    this.surfaceId = newId();
    consumers.set(this.surfaceId, this);
  }

  /** Frames received so far. */
  get framesReceived(): number {
    return this.#received;
  }

  /**
   * Listen for frames.
   *
   * @param type `"frame"`.
   * @param callback Called with each frame, in order.
   */
  on(type: "frame", callback: (frame: Frame) => void): void {
    if (type !== "frame" || typeof callback !== "function") {
      throw new ParameterError(
        `Invalid listener for ${JSON.stringify(type)}: expected "frame" and a function`,
      );
    }
    this.#listeners.add(callback);
  }

  /**
   * Stop listening.
   *
   * @param type `"frame"`.
   * @param callback The callback; all of them when absent.
   */
  off(type: "frame", callback?: (frame: Frame) => void): void {
    if (type !== "frame") throw new ParameterError(`Invalid event type ${JSON.stringify(type)}`);
    if (callback === undefined) this.#listeners.clear();
    else this.#listeners.delete(callback);
  }

  /** @internal A frame arrived. */
  deliver(frame: Frame): void {
    if (this.#released) return;
    this.#received++;
    for (const cb of [...this.#listeners]) {
      try {
        cb(frame);
      } catch (error) {
        console.error("linkweave: a frame listener threw:", error);
      }
    }
  }

  /** Whether `release()` was called. */
  get released(): boolean {
    return this.#released;
  }

  /** Release the surface: no more frames; its id is forgotten. */
  release(): void {
    this.#released = true;
    this.#listeners.clear();
    consumers.delete(this.surfaceId);
  }
}

/**
 * Make a surface frames are shown on (the sink's display).
 *
 * @returns The surface; its `surfaceId` goes to `setSurfaceId`.
 */
export function createSurface(): SurfaceConsumer {
  return new SurfaceConsumer();
}

/**
 * The producer of a source stream's surface (what a camera does with the
 * id `getSurfaceId` returned).
 *
 * @param surfaceId The id.
 * @returns The producer.
 * @throws {ParameterError} 401 when no source stream has that surface.
 */
export function getProducer(surfaceId: string): SurfaceProducer {
  const p = producers.get(surfaceId);
  if (p === undefined) {
    throw new ParameterError(
      `Invalid surface id ${JSON.stringify(surfaceId)}: no stream source has it`,
    );
  }
  return p;
}

/**
 * @internal The consumer surface with this id.
 * @param surfaceId The id.
 * @returns It, or `undefined`.
 */
export function findConsumer(surfaceId: string): SurfaceConsumer | undefined {
  return consumers.get(surfaceId);
}

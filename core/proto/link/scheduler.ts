/**
 * Which stream sends next. Streams with something to send wait in line and
 * take turns of up to {@linkcode QUANTUM} bytes; a stream that still has
 * something to send after its turn goes to the back, so a lone busy stream
 * fills a whole batch and many streams share it fairly. This is the seam
 * that the latency and striping work replaces (which stream first, and which
 * channel carries each fragment).
 *
 * @module
 */
import { Queue } from "../_queue.ts";
import type { Stream } from "./streams.ts";

/** Bytes a stream may send per turn before the next stream's turn. */
export const QUANTUM: number = 16 * 1024;

/** The line of streams with something to send. */
export class Scheduler {
  #ready = new Queue<Stream>();

  /** Streams in line. */
  get length(): number {
    return this.#ready.length;
  }

  /**
   * Put a stream in line (once; a stream already in line stays where it is).
   *
   * @param s The stream.
   */
  add(s: Stream): void {
    if (s.ready) return;
    s.ready = true;
    this.#ready.push(s);
  }

  /**
   * The stream whose turn it is; it leaves the line (the caller puts it back
   * with {@linkcode Scheduler.add} if it still has something to send).
   *
   * @returns The stream, or `undefined` when the line is empty.
   */
  take(): Stream | undefined {
    const s = this.#ready.shift();
    if (s !== undefined) s.ready = false;
    return s;
  }

  /** Empty the line. */
  clear(): void {
    for (let s = this.#ready.shift(); s; s = this.#ready.shift()) s.ready = false;
  }
}

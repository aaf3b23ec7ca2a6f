/**
 * Progress on stderr: on a terminal one line redrawn in place (a bar, bytes,
 * rate, time left); otherwise a plain line at most once per interval, so a
 * log stays readable. Also the number formats every command uses.
 *
 * @module
 */
import type { Io } from "./mod.ts";

/**
 * Bytes in the largest unit that keeps the number at or above 1 (decimal
 * units: kB, MB, GB).
 *
 * @param n Bytes.
 * @returns E.g. `"4.19 MB"`.
 */
export function formatBytes(n: number): string {
  if (n < 1000) return `${Math.round(n)} B`;
  const units = ["kB", "MB", "GB", "TB"];
  let v = n / 1000;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)} ${units[i]}`;
}

/**
 * A rate in bytes per second.
 *
 * @param bytesPerSecond The rate.
 * @returns E.g. `"12.3 MB/s"`.
 */
export function formatRate(bytesPerSecond: number): string {
  return `${formatBytes(bytesPerSecond)}/s`;
}

/**
 * A duration as `m:ss` (or `h:mm:ss`).
 *
 * @param ms Milliseconds.
 * @returns The duration, `"--:--"` when unknown.
 */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return "--:--";
  const s = Math.round(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

/**
 * Milliseconds with sensible precision.
 *
 * @param ms Milliseconds.
 * @returns E.g. `"0.42 ms"`.
 */
export function formatMs(ms: number): string {
  return `${ms >= 100 ? ms.toFixed(0) : ms >= 10 ? ms.toFixed(1) : ms.toFixed(2)} ms`;
}

/** What the progress line says. */
export interface ProgressState {
  /** Bytes done. */
  done: number;
  /** Bytes in all, when known. */
  total?: number;
  /** Milliseconds since the start. */
  elapsed: number;
}

/**
 * The progress line of a terminal: `label [#####-----]  45%  4.19 MB / 9.3 MB  12.3 MB/s  ETA 0:01`.
 *
 * @param label What is in progress.
 * @param s Where it stands.
 * @param width The terminal's width.
 * @returns The line (no newline).
 */
export function barLine(label: string, s: ProgressState, width: number): string {
  const rate = s.elapsed > 0 ? s.done / (s.elapsed / 1000) : 0;
  const tail = s.total === undefined
    ? `  ${formatBytes(s.done)}  ${formatRate(rate)}  ${formatDuration(s.elapsed)}`
    : `  ${Math.floor(100 * s.done / Math.max(1, s.total)).toString().padStart(3)}%  ${
      formatBytes(s.done)
    } / ${formatBytes(s.total)}  ${formatRate(rate)}  ETA ${
      formatDuration(rate > 0 ? (s.total - s.done) / rate * 1000 : Infinity)
    }`;
  const room = width - label.length - tail.length - 4;
  if (s.total === undefined || room < 10) return `${label}${tail}`.slice(0, width - 1);
  const bars = Math.min(40, room);
  const filled = Math.round(bars * Math.min(1, s.done / Math.max(1, s.total)));
  return `${label} [${"#".repeat(filled)}${"-".repeat(bars - filled)}]${tail}`;
}

/**
 * The plain progress line: `label: 4.19 MB of 9.3 MB (45%), 12.3 MB/s, ETA 0:01`.
 *
 * @param label What is in progress.
 * @param s Where it stands.
 * @returns The line (no newline).
 */
export function plainLine(label: string, s: ProgressState): string {
  const rate = s.elapsed > 0 ? s.done / (s.elapsed / 1000) : 0;
  if (s.total === undefined) {
    return `${label}: ${formatBytes(s.done)} in ${formatDuration(s.elapsed)}, ${formatRate(rate)}`;
  }
  const eta = rate > 0 ? (s.total - s.done) / rate * 1000 : Infinity;
  return `${label}: ${formatBytes(s.done)} of ${formatBytes(s.total)} (${
    Math.floor(100 * s.done / Math.max(1, s.total))
  }%), ${formatRate(rate)}, ETA ${formatDuration(eta)}`;
}

/** Progress of one operation on stderr. */
export class Progress {
  #io: Io;
  #label: string;
  #total: number | undefined;
  #start = performance.now();
  #last = -Infinity;
  #interval: number;
  #drawn = false;
  #enabled: boolean;

  /**
   * @param io Where to draw (a bar when stderr is a terminal).
   * @param options The label, the total bytes when known, how often a plain
   *   line is printed (ms), and whether to print at all.
   */
  constructor(
    io: Io,
    options: { label: string; total?: number; interval?: number; enabled?: boolean },
  ) {
    this.#io = io;
    this.#label = options.label;
    this.#total = options.total;
    this.#interval = options.interval ?? (io.tty ? 100 : 1000);
    this.#enabled = options.enabled ?? true;
  }

  /** Milliseconds since the start. */
  get elapsed(): number {
    return performance.now() - this.#start;
  }

  /**
   * Report bytes done; draws at most once per interval.
   *
   * @param done Bytes done.
   */
  update(done: number): void {
    const now = performance.now();
    if (!this.#enabled || now - this.#last < this.#interval) return;
    this.#last = now;
    this.#draw(done);
  }

  /**
   * The last update, and end the line.
   *
   * @param done Bytes done.
   */
  finish(done: number): void {
    if (!this.#enabled) return;
    this.#draw(done);
    if (this.#io.tty && this.#drawn) this.#io.stderr("\n");
    this.#enabled = false;
  }

  #draw(done: number): void {
    const s = { done, total: this.#total, elapsed: this.elapsed };
    if (this.#io.tty) {
      this.#io.stderr(`\r${barLine(this.#label, s, this.#io.columns)}\x1b[K`);
      this.#drawn = true;
    } else {
      this.#io.stderr(`${plainLine(this.#label, s)}\n`);
    }
  }
}

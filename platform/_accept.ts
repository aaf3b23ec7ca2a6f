/**
 * What a listener does when accepting a connection fails, shared by the
 * adapters: a failure that concerns one client (it reset before it was
 * accepted, a network error on its socket) is skipped at once; running out of
 * file descriptors or memory is retried after a back-off that doubles from
 * {@linkcode ACCEPT_BACKOFF_MIN} to {@linkcode ACCEPT_BACKOFF_MAX} ms; only a
 * failure of the listening socket itself ends the listener. A listener never
 * stops for a peer's doing.
 *
 * - ECONNRESET, ENOTCONN, ECONNABORTED, EPROTO, EPERM, EINTR, EAGAIN,
 *   ETIMEDOUT, ENETDOWN, ENETUNREACH, EHOSTDOWN, EHOSTUNREACH, ENONET,
 *   ENOPROTOOPT, EOPNOTSUPP: one client's failure; accept the next at once.
 * - EMFILE, ENFILE, ENOBUFS, ENOMEM: wait (10 ms, doubling up to 1 s), retry.
 * - EBADF, EINVAL, ENOTSOCK, EFAULT: the listening socket failed; it dies.
 * - Anything else: wait as for EMFILE; 16 of them in a row and it dies.
 *
 * @module
 */
import { clearTimeout, setTimeout } from "node:timers";
import type { BusinessError } from "../core/errors.ts";

/** The first back-off after running out of descriptors or memory, ms. */
export const ACCEPT_BACKOFF_MIN: number = 10;
/** The longest back-off, ms: how late a listener may notice that descriptors are free again. */
export const ACCEPT_BACKOFF_MAX: number = 1000;
/** How many failures of an unknown kind in a row end a listener. */
export const ACCEPT_UNKNOWN_LIMIT: number = 16;

/** Failures that concern one client only: accept the next one at once. */
const SKIP = new Set([1, 4, 11, 64, 71, 92, 95, 100, 101, 103, 104, 107, 110, 112, 113]);
/** Out of descriptors or memory: retry after a back-off. */
const EXHAUSTED = new Set([12, 23, 24, 105]);
/** The listening socket itself failed. */
const FATAL = new Set([9, 14, 22, 88]);

/** The errno of a `2301000 + errno` code, or 0. */
function errnoOf(error: BusinessError<unknown>): number {
  const n = error.code - 2301000;
  return n > 0 && n < 1000 ? n : 0;
}

/**
 * The retry rule of one listener: after each failed accept, how long to wait
 * before accepting again, or that the listener is dead.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BusinessError } from "../core/errors.ts";
 * const retry = new AcceptRetry();
 * assert.equal(retry.failed(new BusinessError(2301107)), 0); // ENOTCONN: next client
 * assert.equal(retry.failed(new BusinessError(2301024)), 10); // EMFILE: back off
 * assert.equal(retry.failed(new BusinessError(2301024)), 20);
 * retry.succeeded();
 * assert.equal(retry.failed(new BusinessError(2301009)), undefined); // EBADF: dead
 * ```
 */
export class AcceptRetry {
  #delay = 0;
  #unknown = 0;

  /**
   * A failed accept.
   *
   * @param error The failure (`2301000 + errno`).
   * @returns The ms to wait before the next accept (0: at once), or
   *   `undefined` when the listener cannot accept any more.
   */
  failed(error: BusinessError<unknown>): number | undefined {
    const errno = errnoOf(error);
    if (FATAL.has(errno)) return undefined;
    if (SKIP.has(errno)) return 0;
    if (!EXHAUSTED.has(errno) && ++this.#unknown >= ACCEPT_UNKNOWN_LIMIT) return undefined;
    this.#delay = Math.min(Math.max(this.#delay * 2, ACCEPT_BACKOFF_MIN), ACCEPT_BACKOFF_MAX);
    return this.#delay;
  }

  /** A successful accept: the back-off starts over. */
  succeeded(): void {
    this.#delay = 0;
    this.#unknown = 0;
  }
}

/** Options of {@linkcode AcceptLoop}. */
export interface AcceptLoopOptions<C> {
  /** Accept the next connection. */
  accept(): Promise<C>;
  /** A connection was accepted. */
  onConnection(conn: C): void;
  /** Convert what `accept` threw (the adapter's one conversion). */
  toError(e: unknown): BusinessError<unknown>;
  /** The listener died (called once, not after `stop()`); the loop has ended. */
  onDied(error: BusinessError<unknown>): void;
}

/**
 * A loop that accepts connections until stopped, following
 * {@linkcode AcceptRetry} (for runtimes whose listener hands every accept
 * failure to the caller, as `Deno.Listener.accept()` does).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BusinessError } from "../core/errors.ts";
 * const script: Array<number | BusinessError> = [new BusinessError(2301107), 1, 2];
 * const got: number[] = [];
 * const loop = new AcceptLoop<number>({
 *   accept: () => {
 *     const next = script.shift();
 *     if (next === undefined) return new Promise(() => {}); // no more clients
 *     return next instanceof BusinessError ? Promise.reject(next) : Promise.resolve(next);
 *   },
 *   onConnection: (n) => got.push(n),
 *   toError: (e) => e as BusinessError,
 *   onDied: () => assert.fail("a reset client must not end the listener"),
 * });
 * await new Promise((r) => setTimeout(r, 10));
 * assert.deepEqual(got, [1, 2]);
 * loop.stop();
 * ```
 */
export class AcceptLoop<C> {
  /** Resolves when the loop has ended (stopped or died). */
  readonly done: Promise<void>;
  #o: AcceptLoopOptions<C>;
  #stopped = false;
  #referenced = true;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #wake: (() => void) | undefined;

  /** @param options What to accept with and whom to tell. */
  constructor(options: AcceptLoopOptions<C>) {
    this.#o = options;
    this.done = this.#run();
  }

  /** Stop accepting (a back-off in progress ends at once); `done` resolves soon after. */
  stop(): void {
    this.#stopped = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#wake?.();
  }

  /** Let a back-off keep the process alive (the initial state). */
  ref(): void {
    this.#referenced = true;
    this.#timer?.ref();
  }

  /** Let the process exit during a back-off. */
  unref(): void {
    this.#referenced = false;
    this.#timer?.unref();
  }

  async #run(): Promise<void> {
    const retry = new AcceptRetry();
    while (!this.#stopped) {
      let conn: C;
      try {
        conn = await this.#o.accept();
      } catch (e) {
        if (this.#stopped) return;
        const error = this.#o.toError(e);
        const delay = retry.failed(error);
        if (delay === undefined) {
          this.#stopped = true;
          this.#o.onDied(error);
          return;
        }
        if (delay > 0) await this.#sleep(delay);
        continue;
      }
      retry.succeeded();
      this.#o.onConnection(conn);
    }
  }

  #sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      this.#wake = () => {
        this.#timer = undefined;
        this.#wake = undefined;
        resolve();
      };
      this.#timer = setTimeout(this.#wake, ms);
      if (!this.#referenced) this.#timer.unref();
    });
  }
}

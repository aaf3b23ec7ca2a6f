/**
 * The contract between a device runtime and the machine it runs on: sockets,
 * a clock, timers that never keep the process alive on their own, an
 * explicit hold that does, and the device's identity. `platform/host.ts`
 * implements it for Deno, Bun and Node; tests may pass their own.
 *
 * @module
 */
import type { SocketPlatform } from "../socket/platform.ts";

/** What a device runtime needs from the machine. */
export interface DeviceHost {
  /** TCP and UDP sockets. */
  sockets: SocketPlatform;
  /** Milliseconds on a monotonic clock. */
  now(): number;
  /**
   * Call `fn` after `ms` milliseconds. The timer alone does not keep the
   * process alive.
   */
  setTimer(fn: () => void, ms: number): unknown;
  /** Cancel a timer from {@linkcode DeviceHost.setTimer}. */
  clearTimer(timer: unknown): void;
  /**
   * Keep the process alive until a matching {@linkcode DeviceHost.release}
   * (started servers, open connections, data still being flushed). Holds
   * are counted.
   */
  hold(): void;
  /** Undo one {@linkcode DeviceHost.hold}. */
  release(): void;
  /** The default device id (adapter address, else a stable stored random id). */
  defaultDeviceId(): Promise<string>;
  /** A new random runtime nonce. */
  nonce(): string;
  /** Report a problem nobody asked about (an id clash, a failed listener). */
  warn(message: string): void;
}

/**
 * Holds on a host that let go when their time is up or when all are let go
 * at once: what `linger(ms)` of a runtime keeps while its data is flushed.
 */
export class Lingers {
  #host: DeviceHost;
  #holds = new Set<() => void>();

  /** @param host The host whose process the holds keep alive. */
  constructor(host: DeviceHost) {
    this.#host = host;
  }

  /** Whether any hold is kept. */
  get active(): boolean {
    return this.#holds.size > 0;
  }

  /**
   * Keep the process alive for at most `ms` milliseconds.
   *
   * @param ms How long at most.
   */
  add(ms: number): void {
    this.#host.hold();
    const timer: { id?: unknown } = {};
    const done = () => {
      if (!this.#holds.delete(done)) return;
      this.#host.clearTimer(timer.id);
      this.#host.release();
    };
    timer.id = this.#host.setTimer(done, ms);
    this.#holds.add(done);
  }

  /** Let every hold go now. */
  releaseAll(): void {
    for (const done of [...this.#holds]) done();
  }
}

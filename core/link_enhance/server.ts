/**
 * `linkEnhance` servers: named, unique per process case-insensitively,
 * started and stopped by the app (see `mod.ts` for the API's rules).
 *
 * @module
 */
import { ErrorCode } from "../error_codes.ts";
import { BusinessError } from "../errors.ts";
import { trace } from "../trace.ts";
import { call, checkCallback } from "./_check.ts";
import type { Connection, LinkEnhance } from "./mod.ts";

const SERVER_EVENTS = ["connectionAccepted", "serverStopped"] as const;

/** Doors into `Server` for the API layer (set in its static block). */
let accepted: (s: Server, conn: Connection) => void;
let died: (s: Server, reason: number) => void;

/** @internal Report an accepted connection to the server's callback. */
export function serverAccepted(s: Server, conn: Connection): void {
  accepted(s, conn);
}

/** @internal The server can no longer accept (its listener failed): tell its callback, stop it. */
export function serverDied(s: Server, reason: number): void {
  died(s, reason);
}

/** A named server other devices connect to. */
export class Server {
  #api: LinkEnhance;
  #name: string;
  #state: "created" | "started" | "stopped" | "closed" = "created";
  #onAccepted: ((connection: Connection) => void) | undefined;
  #onStopped: ((reason: number) => void) | undefined;

  /** @internal Use `createServer()`. */
  constructor(api: LinkEnhance, name: string) {
    this.#api = api;
    this.#name = name;
  }

  /** The server's name. */
  get name(): string {
    return this.#name;
  }

  /** Whether it accepts connections. */
  get started(): boolean {
    return this.#state === "started";
  }

  /**
   * Start accepting connections.
   *
   * @throws {BusinessError} 32390203 when it is already started (as
   *   OpenHarmony reports it); 32390202 when the limit of started servers is
   *   reached; 32390300 after `close()`.
   */
  start(): void {
    if (this.#state === "closed") {
      throw new BusinessError(
        ErrorCode.INTERNAL_ERROR,
        `Cannot start server "${this.#name}": it is closed`,
      );
    }
    if (this.#state === "started") {
      throw new BusinessError(
        ErrorCode.DUPLICATE_SERVER_NAME,
        `Cannot start server "${this.#name}": it is already started`,
      );
    }
    const limit = this.#api.ctx.config().limits.servers;
    if (this.#api.started >= limit) {
      throw new BusinessError(
        ErrorCode.SERVER_LIMIT,
        `Cannot start server "${this.#name}": ${limit} servers are already started`,
      );
    }
    this.#state = "started";
    this.#api.started++;
    this.#api.ctx.host.hold();
    this.#api.advertise();
    this.#api.driver().catch((e) => {
      if (this.#state !== "started") return;
      this.#api.ctx.host.warn(`linkweave: server "${this.#name}" stopped: ${(e as Error).message}`);
      serverDied(this, ErrorCode.SERVER_DIED);
    });
  }

  /**
   * Stop accepting connections; `start()` may be called again. As in
   * OpenHarmony, both callbacks are cleared: call `on()` again after
   * restarting.
   */
  stop(): void {
    this.#onAccepted = undefined;
    this.#onStopped = undefined;
    if (this.#state !== "started") return;
    this.#state = "stopped";
    this.#api.started--;
    this.#api.ctx.host.release();
    this.#api.advertise();
  }

  /** Stop and destroy the server; its name becomes free. */
  close(): void {
    if (this.#state === "closed") return;
    this.stop();
    this.#state = "closed";
    this.#api.servers.delete(this.#name.toLowerCase());
  }

  /**
   * linkweave extension: `await using server = device.createServer(...)`
   * closes the server when the scope ends, as `close()` does.
   *
   * @returns When closed.
   */
  [Symbol.asyncDispose](): Promise<void> {
    this.close();
    return Promise.resolve();
  }

  /**
   * Set the callback of `connectionAccepted`, replacing the previous one: a
   * peer connected to this server.
   *
   * @param type `connectionAccepted`.
   * @param callback Receives the connection.
   * @throws {ParameterError} 32390206 for a bad type or callback.
   */
  on(type: "connectionAccepted", callback: (connection: Connection) => void): void;
  /**
   * Set the callback of `serverStopped`, replacing the previous one: the
   * server stopped abnormally.
   *
   * @param type `serverStopped`.
   * @param callback Receives the reason (32390301: the link service died).
   * @throws {ParameterError} 32390206 for a bad type or callback.
   */
  on(type: "serverStopped", callback: (reason: number) => void): void;
  on(type: string, callback: (value: never) => void): void {
    checkCallback(type, callback, SERVER_EVENTS, false);
    if (type === "connectionAccepted") this.#onAccepted = callback as (c: Connection) => void;
    else this.#onStopped = callback as (reason: number) => void;
  }

  /**
   * Clear the callback of `connectionAccepted` (whatever function is
   * passed, as in OpenHarmony).
   *
   * @param type `connectionAccepted`.
   * @param callback Ignored when given; must be a function.
   * @throws {ParameterError} 32390206 for a bad type or a non-function callback.
   */
  off(type: "connectionAccepted", callback?: (connection: Connection) => void): void;
  /**
   * Clear the callback of `serverStopped` (whatever function is passed).
   *
   * @param type `serverStopped`.
   * @param callback Ignored when given; must be a function.
   * @throws {ParameterError} 32390206 for a bad type or a non-function callback.
   */
  off(type: "serverStopped", callback?: (reason: number) => void): void;
  off(type: string, callback?: (value: never) => void): void {
    checkCallback(type, callback, SERVER_EVENTS, true);
    if (type === "connectionAccepted") this.#onAccepted = undefined;
    else this.#onStopped = undefined;
  }

  static {
    accepted = (s, conn) => {
      trace("connectionAccepted", { server: s.#name, peer: conn.getPeerDeviceId() });
      call(s.#onAccepted, conn);
    };
    died = (s, reason) => {
      if (s.#state !== "started") return;
      trace("serverStopped", { server: s.#name, reason });
      call(s.#onStopped, reason);
      s.stop();
    };
  }

  /** A plain description (for `JSON.stringify`). */
  toJSON(): { name: string; state: string } {
    return { name: this.#name, state: this.#state };
  }
}

/**
 * The state of a stream server (TCP or Unix-domain) behind the public classes.
 *
 * @module
 */
import { BusinessError } from "../errors.ts";
import { Emitter } from "../emitter.ts";
import type {
  ListenerEvents,
  ListenerHandle,
  SocketOptionMap,
  StreamEvents,
  StreamHandle,
} from "./platform.ts";
import type { Callback, SocketStateBase } from "./types.ts";
import { checkOff, checkOn, closedError, EBADF, EISCONN, errorEventOf } from "./_util.ts";
import {
  applyOptions,
  type StreamCore,
  type StreamExtraOptions,
  streamOptionsInEffect,
} from "./_stream.ts";

/** Events of a stream server; `C` is the connection object. */
export type ServerEventMap<C> = { connect: C; error: BusinessError<unknown> };

const SERVER_EVENTS = ["connect", "error"] as const;

/** Options of {@linkcode StreamServerCore}. */
export interface StreamServerOptions<C, M> {
  /** The server kind for messages (`TCP server`). */
  what: string;
  /** The most clients kept at once; later ones are closed at once. */
  maxClients: number;
  /** The core of an accepted stream. */
  core(handle: StreamHandle): StreamCore<M>;
  /** The public connection object of an accepted stream. */
  connection(id: number, core: StreamCore<M>): C;
}

/**
 * One stream server's state (TCP or Unix-domain): listening, accepting up to
 * `maxClients`, closing with every client, state, options and events.
 */
export class StreamServerCore<C, M> {
  #events: Emitter<ServerEventMap<C>> = new Emitter<ServerEventMap<C>>({ single: true });
  #listener: ListenerHandle | undefined;
  #listening = false;
  #closed = false;
  #clients: Map<number, StreamCore<M>> = new Map();
  #nextId = 1;
  #os: Partial<SocketOptionMap> = {};
  #socketTimeout: number | undefined;
  #o: StreamServerOptions<C, M>;

  /** @param options The server kind, client limit and factories. */
  constructor(options: StreamServerOptions<C, M>) {
    this.#o = options;
  }

  /** The listener, once listening and until closed. */
  get listener(): ListenerHandle | undefined {
    return this.#closed ? undefined : this.#listener;
  }

  /**
   * Listen.
   *
   * @param open Opens the listener with the given events.
   * @returns When listening.
   */
  async listen(open: (events: ListenerEvents) => Promise<ListenerHandle>): Promise<void> {
    if (this.#closed) throw closedError("listen", this.#o.what);
    if (this.#listening) {
      throw new BusinessError(EISCONN, `Cannot listen: the ${this.#o.what} is already listening`);
    }
    this.#listening = true;
    let listener: ListenerHandle | undefined;
    let died = false;
    try {
      listener = await open({
        onConnection: (handle) => this.#accept(handle),
        onError: (e) => {
          // The listening socket failed (a peer cannot cause this): the server
          // no longer listens, keeps its clients, and may listen again.
          if (died) return;
          died = true;
          if (listener !== undefined && this.#listener !== listener) return;
          this.#listener = undefined;
          this.#listening = false;
          if (!this.#closed) this.#events.emit("error", errorEventOf(e));
        },
      });
    } catch (e) {
      this.#listening = false;
      throw e;
    }
    if (died) return; // it died before `open` resolved
    this.#listener = listener;
    if (this.#closed) await this.#listener.close();
  }

  #accept(handle: StreamHandle): StreamEvents {
    const core = this.#o.core(handle);
    const events = core.streamEvents();
    if (this.#closed || this.#clients.size >= this.#o.maxClients) {
      handle.close().catch(() => {});
      return events;
    }
    const id = this.#nextId++;
    core.attach(handle);
    core.socketTimeout = this.#socketTimeout;
    applyOptions(handle, this.#os, core.applied);
    this.#clients.set(id, core);
    core.onClosed = () => this.#clients.delete(id);
    this.#events.emit("connect", this.#o.connection(id, core));
    return events;
  }

  /**
   * Stop listening and close every client; idempotent.
   *
   * @returns When closed.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const all = [...this.#clients.values()].map((c) => c.close().catch(() => {}));
    await Promise.all([this.#listener?.close(), ...all]);
  }

  /**
   * The server state.
   *
   * @returns The state.
   */
  state(): SocketStateBase {
    return {
      isBound: this.#listener !== undefined && !this.#closed,
      isClose: this.#closed,
      isConnected: false,
    };
  }

  /**
   * The error for a query that needs a listening server, or `undefined`.
   *
   * @param action The action, for the message.
   * @returns `EBADF` when not listening (or closed).
   */
  notListening(action: string): BusinessError<unknown> | undefined {
    if (this.#closed || this.#listener === undefined) {
      return new BusinessError(EBADF, `Cannot ${action}: the ${this.#o.what} is not listening`);
    }
    return undefined;
  }

  /**
   * Set options of every current and future client.
   *
   * @param os The socket options.
   * @param socketTimeout The send timeout, if given.
   * @param options `listening`: fail with `EBADF` unless listening.
   */
  setExtraOptions(
    os: Partial<SocketOptionMap>,
    socketTimeout: number | undefined,
    options: { listening: boolean },
  ): void {
    const action = "set extra options";
    if (this.#closed) throw closedError(action, this.#o.what);
    if (options.listening && !this.#listening) {
      throw new BusinessError(EBADF, `Cannot ${action}: the ${this.#o.what} is not listening`);
    }
    Object.assign(this.#os, os);
    if (socketTimeout !== undefined) this.#socketTimeout = socketTimeout;
    for (const c of this.#clients.values()) {
      if (c.handle !== undefined) applyOptions(c.handle, os, c.applied);
      if (socketTimeout !== undefined) c.socketTimeout = socketTimeout;
    }
  }

  /**
   * The options in effect for clients.
   *
   * @returns The options.
   */
  extraOptions(): StreamExtraOptions {
    if (this.#closed) throw closedError("get extra options", this.#o.what);
    const first = this.#clients.values().next().value;
    return streamOptionsInEffect(undefined, first?.applied ?? {}, this.#socketTimeout);
  }

  /**
   * Set the callback of `connect` or `error` (replacing the previous one),
   * after checking the arguments; other event types are ignored.
   *
   * @param type The event type.
   * @param callback The callback.
   */
  on(type: unknown, callback: unknown): void {
    if (checkOn(type, callback, SERVER_EVENTS, this.#o.what)) {
      this.#events.on(type as "connect", callback as Callback<C>);
    }
  }

  /**
   * Remove the callback of an event (only if it is `callback`, when given),
   * after checking the arguments; other event types are ignored.
   *
   * @param type The event type.
   * @param callback The callback, or `undefined`.
   */
  off(type: unknown, callback?: unknown): void {
    if (checkOff(type, callback, SERVER_EVENTS, this.#o.what)) {
      this.#events.off(type as "connect", callback as Callback<C> | undefined);
    }
  }
}

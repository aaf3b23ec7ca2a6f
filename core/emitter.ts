/**
 * A small typed event emitter used by composition: OpenHarmony's `on`/`off`
 * with web-standard `{ once, signal }` options. With `{ single: true }` it
 * keeps one callback per event type, as OpenHarmony's APIs do.
 *
 * @module
 */

/** Options of {@linkcode Emitter.on}. */
export interface ListenerOptions {
  /** Remove the listener after its first call. @default {false} */
  once?: boolean;
  /** Remove the listener when this signal aborts. */
  signal?: AbortSignal;
}

/** Options of the {@linkcode Emitter} constructor. */
export interface EmitterOptions {
  /** Called with what a listener throws. @default {rethrow in a microtask} */
  onListenerError?: (error: unknown) => void;
  /**
   * Keep one callback per event type, as OpenHarmony's APIs do: `on`
   * replaces the callback registered before for that type (so a function
   * registered twice is called once), and `off(type, cb)` removes it only
   * when `cb` is that callback. @default {false}
   */
  single?: boolean;
}

function rethrowLater(error: unknown): void {
  queueMicrotask(() => {
    throw error;
  });
}

interface Entry<P> {
  cb: (payload: P) => void;
  once: boolean;
  dispose?: () => void;
}

/**
 * A typed emitter. `M` maps each event type to its payload type.
 *
 * Listeners run synchronously in registration order. A throwing listener does
 * not stop the others: its error is rethrown in a microtask, so it still
 * surfaces as an uncaught error, as with `EventTarget`. With
 * `{ single: true }` each event type has at most one listener: the last one
 * registered.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const events = new Emitter<{ dataReceived: ArrayBuffer }>();
 * const seen: number[] = [];
 * const cb = (data: ArrayBuffer) => seen.push(data.byteLength);
 * events.on("dataReceived", cb);
 * events.emit("dataReceived", new ArrayBuffer(3));
 * events.off("dataReceived", cb);
 * events.emit("dataReceived", new ArrayBuffer(5));
 * assert.deepEqual(seen, [3]);
 * ```
 */
export class Emitter<M extends Record<string, unknown>> {
  #listeners: Map<keyof M, Entry<never>[]> = new Map();
  #onListenerError: (error: unknown) => void;
  #single: boolean;

  /**
   * @param options `onListenerError` receives what a listener throws (by
   * default the error is rethrown in a microtask); `single` keeps one
   * listener per event type.
   */
  constructor(options: EmitterOptions = {}) {
    this.#onListenerError = options.onListenerError ?? rethrowLater;
    this.#single = options.single === true;
  }

  /**
   * Add a listener. The same callback added twice is called twice, unless
   * the emitter is `single`: then the listener replaces the one registered
   * before for this type.
   *
   * @param type The event type.
   * @param cb The listener.
   * @param options `once` and `signal`.
   */
  on<K extends keyof M>(type: K, cb: (payload: M[K]) => void, options: ListenerOptions = {}): void {
    const { signal } = options;
    if (signal?.aborted) return;
    const entry: Entry<M[K]> = { cb, once: options.once === true };
    if (signal !== undefined) {
      const onAbort = () => this.#remove(type, entry);
      signal.addEventListener("abort", onAbort, { once: true });
      entry.dispose = () => signal.removeEventListener("abort", onAbort);
    }
    // Lists are replaced, never changed in place: `emit` walks the list it
    // started with, without copying it.
    const list = this.#listeners.get(type) ?? [];
    if (this.#single) {
      for (const e of list) e.dispose?.();
      this.#listeners.set(type, [entry as Entry<never>]);
    } else {
      this.#listeners.set(type, [...list, entry as Entry<never>]);
    }
  }

  /**
   * Remove one listener, or every listener of a type when `cb` is omitted.
   *
   * @param type The event type.
   * @param cb The listener to remove (its most recent registration).
   */
  off<K extends keyof M>(type: K, cb?: (payload: M[K]) => void): void {
    const list = this.#listeners.get(type);
    if (list === undefined) return;
    if (cb === undefined) {
      for (const e of list) e.dispose?.();
      this.#listeners.delete(type);
      return;
    }
    for (let i = list.length - 1; i >= 0; i--) {
      if (list[i].cb === cb) {
        this.#remove(type, list[i]);
        return;
      }
    }
  }

  /**
   * Call every listener of a type with a payload.
   *
   * @param type The event type.
   * @param payload The payload.
   * @returns Whether any listener was called.
   */
  emit<K extends keyof M>(type: K, payload: M[K]): boolean {
    const list = this.#listeners.get(type);
    if (list === undefined || list.length === 0) return false;
    for (const e of list as Entry<M[K]>[]) {
      if (e.once) this.#remove(type, e);
      try {
        e.cb(payload);
      } catch (err) {
        this.#onListenerError(err);
      }
    }
    return true;
  }

  /**
   * The number of listeners of a type.
   *
   * @param type The event type.
   * @returns How many listeners are registered.
   */
  listenerCount<K extends keyof M>(type: K): number {
    return this.#listeners.get(type)?.length ?? 0;
  }

  /** Remove every listener of every type. */
  clear(): void {
    for (const type of [...this.#listeners.keys()]) this.off(type);
  }

  #remove(type: keyof M, entry: Entry<never>): void {
    const list = this.#listeners.get(type);
    if (list === undefined) return;
    const i = list.indexOf(entry);
    if (i < 0) return;
    entry.dispose?.();
    if (list.length === 1) this.#listeners.delete(type);
    else this.#listeners.set(type, list.filter((e) => e !== entry));
  }
}

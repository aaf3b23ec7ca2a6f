/**
 * The device runtime: the one driver that joins link state machines to real
 * channels. It listens for channels from peers, dials peers it wants to
 * reach (static peers, then discovery), runs the channel handshake and the
 * merge rule (one link per peer), pumps bytes, timers and events between
 * sockets and links, and hands streams to the API layer.
 *
 * Writes are coalesced: commands only queue work on a link, and one
 * microtask later every link with something to send is asked for its
 * batches, so many `sendData` calls in one tick become one socket write.
 *
 * @module
 */
import { ErrorCode } from "../error_codes.ts";
import type { BusinessError } from "../errors.ts";
import type { DeviceConfig } from "../device_config.ts";
import { decideIncoming, encodeHello, type Hello, HelloReader } from "../proto/hello.ts";
import { Link, type LinkEvent } from "../proto/link.ts";
import type { ListenerHandle, StreamHandle } from "../socket/platform.ts";
import type { Codec } from "../proto/frame.ts";
import type { DeviceHost } from "./host.ts";

/** How a stream's owner hears about it. */
export interface StreamHandler {
  /** The peer accepted the stream (outgoing streams). */
  onOpened(): void;
  /** The peer refused it, with a linkEnhance code. */
  onRejected(code: number): void;
  /** A message arrived (the caller owns the bytes). */
  onData(data: ArrayBuffer): void;
  /** The stream closed: the peer closed it or the link went away. */
  onClosed(reason: number): void;
  /** The send queue is back to half full or less after it had filled up. */
  onDrain(): void;
}

/** The owner's handle on an open stream. */
export interface StreamRef {
  /** The peer's device id. */
  readonly peerId: string;
  /**
   * Queue a message.
   *
   * @returns `false` when the send queue is full or the stream closed.
   */
  send(data: Uint8Array): boolean;
  /** Payload bytes queued and not yet written. */
  readonly bufferedAmount: number;
  /** Close gracefully (queued data first). */
  close(): void;
}

/** What the API layer answers to an incoming stream. */
export type Acceptor = (
  name: string,
  peerId: string,
  stream: StreamRef,
) => StreamHandler | number;

/** A peer's address, from the static list or from discovery. */
export interface PeerAddress {
  /** Host name or IP address. */
  host: string;
  /** TCP port. */
  port: number;
}

/** Finds peers this device has no static address for (discovery). */
export interface PeerFinder {
  /** The address of a peer, if known. */
  lookup(deviceId: string): PeerAddress | undefined;
  /** Ask the network now (e.g. send an announcement). */
  announce(): void;
  /** Stop. */
  close(): Promise<void>;
}

/** Options of {@linkcode DeviceRuntime.start}. */
export interface RuntimeOptions {
  /** The configuration (device id resolved or to be resolved). */
  config: DeviceConfig;
  /** The machine. */
  host: DeviceHost;
  /** The framing codec. */
  codec: Codec;
  /** Makes a peer finder once the device knows its id and port. */
  finder?: (self: { deviceId: string; nonce: string; port: number }) => Promise<PeerFinder>;
}

interface ChannelCtx {
  id: number;
  handle: StreamHandle | undefined;
  reader: HelloReader | undefined;
  entry: LinkEntry | undefined;
  dialer: boolean;
  expect: string | undefined;
  settle: ((r: Hello | Error) => void) | undefined;
  closed: boolean;
  /** The adapter holds written bytes it could not pass on yet. */
  blocked: boolean;
  early: Uint8Array[];
}

interface LinkEntry {
  link: Link;
  peerNonce: string;
  channels: Map<number, ChannelCtx>;
  handlers: Map<number, StreamHandler>;
  lastRx: number;
  timer: unknown;
  timerAt: number;
}

interface Waiter {
  name: string;
  handler: StreamHandler;
  deadline: number;
  bind: (ref: StreamRef | undefined) => void;
}

const RETRY_MS = 300;
/** The most received bytes decoded before the link may write again. */
const RX_SLICE = 64 * 1024;

/** A running device. */
export class DeviceRuntime {
  /** This device's id. */
  readonly deviceId: string;
  /** This runtime's nonce (new at every start). */
  readonly nonce: string;
  /** The TCP port it listens on. */
  readonly port: number;
  /** The address it listens on. */
  readonly bind: string;
  #config: DeviceConfig;
  #host: DeviceHost;
  #codec: Codec;
  #listener: ListenerHandle;
  #finder: PeerFinder | undefined;
  #links = new Map<string, LinkEntry>();
  #dialing = new Map<string, { inFlight: boolean; waiters: Waiter[] }>();
  #dirty = new Set<LinkEntry>();
  #flushQueued = false;
  #nextChannel = 1;
  #acceptor: Acceptor = () => ErrorCode.PEER_SERVER_NOT_STARTED;
  #closed = false;
  #lingers = new Set<() => void>();

  private constructor(
    init: {
      config: DeviceConfig;
      host: DeviceHost;
      codec: Codec;
      deviceId: string;
      nonce: string;
      listener: ListenerHandle;
    },
  ) {
    this.#config = init.config;
    this.#host = init.host;
    this.#codec = init.codec;
    this.deviceId = init.deviceId;
    this.nonce = init.nonce;
    this.#listener = init.listener;
    this.port = init.listener.localAddress?.port ?? 0;
    this.bind = init.config.bind;
  }

  /**
   * Start a device: resolve its id, listen (on the configured port, or an
   * ephemeral one when the default port is taken), start discovery.
   *
   * @param options Configuration, host and codec.
   * @returns The running device.
   */
  static async start(options: RuntimeOptions): Promise<DeviceRuntime> {
    const { config, host, codec } = options;
    const deviceId = config.deviceId ?? await host.defaultDeviceId();
    const nonce = host.nonce();
    const self: { device?: DeviceRuntime } = {};
    const events = {
      onConnection: (handle: StreamHandle) => self.device!.#incoming(handle),
      onError: (e: BusinessError<unknown>) => host.warn(`linkweave: listener failed: ${e.message}`),
    };
    const listen = (port: number) =>
      host.sockets.tcpListen({ address: config.bind, port, family: family(config.bind) }, events);
    let listener: ListenerHandle;
    try {
      listener = await listen(config.port);
    } catch (e) {
      if (config.portExplicit || (e as BusinessError<unknown>).code !== 2301098) throw e;
      listener = await listen(0);
    }
    unref(listener);
    const device = new DeviceRuntime({ config, host, codec, deviceId, nonce, listener });
    self.device = device;
    if (options.finder !== undefined) {
      try {
        device.#finder = await options.finder({ deviceId, nonce, port: device.port });
      } catch (e) {
        host.warn(`linkweave: discovery unavailable: ${(e as Error).message}`);
      }
    }
    return device;
  }

  /**
   * Set who answers incoming streams (the linkEnhance server table).
   *
   * @param acceptor Returns a handler to accept, or a code to reject.
   */
  setAcceptor(acceptor: Acceptor): void {
    this.#acceptor = acceptor;
  }

  /**
   * Open a stream to a peer's server. Reaches the peer through the existing
   * link or dials it (retrying until the deadline); the handler then hears
   * `onOpened` or `onRejected`. The caller enforces its own timeout and
   * calls the returned cancel function.
   *
   * @param peerId The peer's device id.
   * @param name The server name.
   * @param handler The stream's events.
   * @returns A function that cancels the attempt (closing the stream if
   *   it opened meanwhile), and a promise of the stream's handle.
   */
  connect(
    peerId: string,
    name: string,
    handler: StreamHandler,
  ): { cancel: () => void; ref: Promise<StreamRef | undefined> } {
    let cancelled = false;
    let stream: StreamRef | undefined;
    const ref = new Promise<StreamRef | undefined>((resolve) => {
      const waiter: Waiter = {
        name,
        handler,
        deadline: this.#host.now() + this.#config.connectTimeout,
        bind: (r) => {
          if (cancelled) {
            r?.close();
            resolve(undefined);
            return;
          }
          stream = r;
          resolve(r);
        },
      };
      const entry = this.#links.get(peerId);
      if (entry !== undefined && entry.link.state === "open") {
        waiter.bind(this.#open(entry, waiter));
        return;
      }
      this.#want(peerId, waiter);
    });
    return {
      ref,
      cancel: () => {
        cancelled = true;
        stream?.close();
        const d = this.#dialing.get(peerId);
        if (d !== undefined) {
          const i = d.waiters.findIndex((w) => w.handler === handler);
          if (i >= 0) d.waiters.splice(i, 1)[0].bind(undefined);
        }
      },
    };
  }

  /**
   * Keep the process alive until every link has written what it was given,
   * at most `ms` milliseconds (graceful close before exit).
   *
   * @param ms The bound.
   */
  linger(ms: number): void {
    if (this.#quiet()) return;
    const release = this.#host.hold();
    const timer: { id?: unknown } = {};
    const done = () => {
      if (!this.#lingers.delete(done)) return;
      this.#host.clearTimer(timer.id);
      release();
    };
    timer.id = this.#host.setTimer(done, ms);
    this.#lingers.add(done);
  }

  /** Links currently open, by peer id, with their channel counts. */
  links(): Map<string, number> {
    const out = new Map<string, number>();
    for (const [id, e] of this.#links) out.set(id, e.channels.size);
    return out;
  }

  /** Stop: close every link gracefully, the listener and discovery. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const e of this.#links.values()) {
      e.link.close();
      this.#markDirty(e);
    }
    this.#flush();
    for (const d of this.#dialing.values()) for (const w of d.waiters) w.bind(undefined);
    this.#dialing.clear();
    await Promise.allSettled([this.#listener.close(), this.#finder?.close()]);
    for (const e of [...this.#links.values()]) {
      for (const ch of e.channels.values()) await ch.handle?.close().catch(() => {});
    }
  }

  // ------------------------------------------------------------ dialing

  #want(peerId: string, waiter: Waiter): void {
    let d = this.#dialing.get(peerId);
    if (d !== undefined) {
      d.waiters.push(waiter);
      return;
    }
    d = { inFlight: false, waiters: [waiter] };
    this.#dialing.set(peerId, d);
    void this.#dialLoop(peerId, d);
  }

  async #dialLoop(peerId: string, d: { inFlight: boolean; waiters: Waiter[] }): Promise<void> {
    let announced = false;
    while (!this.#closed && d.waiters.length > 0) {
      const entry = this.#links.get(peerId);
      if (entry !== undefined && entry.link.state === "open") break;
      const now = this.#host.now();
      for (const w of d.waiters.filter((w) => w.deadline <= now)) {
        d.waiters.splice(d.waiters.indexOf(w), 1);
        w.bind(undefined);
      }
      if (d.waiters.length === 0) break;
      const addr = this.#address(peerId);
      if (addr === undefined) {
        if (!announced) this.#finder?.announce();
        announced = true;
      } else {
        d.inFlight = true;
        const result = await this.#dial(
          peerId,
          addr,
          Math.max(...d.waiters.map((w) => w.deadline)),
        );
        d.inFlight = false;
        if (result instanceof Error && /clash|self/.test(result.message)) {
          this.#host.warn(`linkweave: ${result.message}`);
        }
        const e = this.#links.get(peerId);
        if (e !== undefined && e.link.state === "open") break;
      }
      await new Promise<void>((r) => this.#host.setTimer(r, RETRY_MS));
    }
    this.#dialing.delete(peerId);
    const entry = this.#links.get(peerId);
    for (const w of d.waiters) {
      w.bind(entry !== undefined && entry.link.state === "open" ? this.#open(entry, w) : undefined);
    }
  }

  #address(peerId: string): PeerAddress | undefined {
    const p = this.#config.peers.find((p) => p.deviceId === peerId);
    return p ?? this.#finder?.lookup(peerId);
  }

  /** One dial: TCP connect, hello, welcome. */
  async #dial(peerId: string, addr: PeerAddress, deadline: number): Promise<Hello | Error> {
    const ch = this.#channel(true, peerId);
    const answer = new Promise<Hello | Error>((r) => ch.settle = r);
    const timer = this.#host.setTimer(
      () => ch.settle?.(new Error(`connect to ${peerId} timed out`)),
      Math.max(1, deadline - this.#host.now()),
    );
    const connecting = this.#host.sockets.tcpConnect(
      { remote: { address: addr.host, port: addr.port, family: family(addr.host) } },
      this.#events(ch),
    );
    // A connect that completes after we gave up is closed at once.
    connecting.then((h) => {
      if (ch.closed) void h.close().catch(() => {});
    }, () => {});
    try {
      const handle = await Promise.race([
        connecting,
        answer.then((r) => r instanceof Error ? Promise.reject(r) : undefined),
      ]);
      if (handle === undefined) return new Error("unreachable");
      ch.handle = handle;
      unref(handle);
      if (ch.closed) return new Error(`connection to ${peerId} closed`);
      handle.setOption("noDelay", true);
      handle.write(encodeHello(this.#codec, { op: "hello", id: this.deviceId, nonce: this.nonce }));
      for (const b of ch.early.splice(0)) this.#onBytes(ch, b);
      const result = await answer;
      if (result instanceof Error) {
        ch.closed = true;
        void handle.close().catch(() => {});
      }
      return result;
    } catch (e) {
      ch.closed = true;
      return e instanceof Error ? e : new Error(String(e));
    } finally {
      this.#host.clearTimer(timer);
    }
  }

  // ----------------------------------------------------------- channels

  #channel(dialer: boolean, expect?: string): ChannelCtx {
    return {
      id: this.#nextChannel++,
      handle: undefined,
      reader: new HelloReader(this.#codec),
      entry: undefined,
      dialer,
      expect,
      settle: undefined,
      closed: false,
      blocked: false,
      early: [],
    };
  }

  #events(ch: ChannelCtx) {
    return {
      onData: (bytes: Uint8Array) => {
        if (ch.handle === undefined) ch.early.push(bytes);
        else this.#onBytes(ch, bytes);
      },
      onDrain: () => {
        ch.blocked = false;
        if (ch.entry === undefined) return;
        ch.entry.link.handleWritable(ch.id, true);
        this.#markDirty(ch.entry);
        this.#flush();
      },
      onClose: (error?: BusinessError<unknown>) => {
        ch.closed = true;
        ch.settle?.(new Error(`channel closed${error ? `: ${error.message}` : ""}`));
        const e = ch.entry;
        if (e !== undefined) {
          e.channels.delete(ch.id);
          e.link.handleChannelClosed(ch.id, error?.message ?? "closed by peer");
          this.#markDirty(e);
          this.#flush();
        }
      },
    };
  }

  #incoming(handle: StreamHandle) {
    const ch = this.#channel(false);
    ch.handle = handle;
    unref(handle);
    handle.setOption("noDelay", true);
    if (this.#closed) void handle.close().catch(() => {});
    return this.#events(ch);
  }

  #onBytes(ch: ChannelCtx, bytes: Uint8Array): void {
    if (ch.entry !== undefined) {
      // A large read is decoded a slice at a time, writing what the link
      // has to send (credit above all) between slices: the peer's window
      // refills while the rest is still being decoded.
      const e = ch.entry;
      e.lastRx = this.#host.now();
      for (let off = 0; off < bytes.length && ch.entry === e; off += RX_SLICE) {
        e.link.handleBytes(ch.id, bytes.subarray(off, off + RX_SLICE), e.lastRx);
        this.#markDirty(e);
        this.#flush();
      }
      return;
    }
    if (ch.reader === undefined) return;
    const got = ch.reader.push(bytes);
    if (got === undefined) return;
    ch.reader = undefined;
    if ("error" in got) {
      ch.settle?.(new Error(got.error));
      void ch.handle?.close().catch(() => {});
      return;
    }
    if (ch.dialer) this.#answered(ch, got.hello, got.rest);
    else this.#greeted(ch, got.hello, got.rest);
  }

  /** Acceptor side: a dialer said hello. */
  #greeted(ch: ChannelCtx, hello: Hello, rest: Uint8Array): void {
    const handle = ch.handle!;
    if (hello.op !== "hello") {
      void handle.close().catch(() => {});
      return;
    }
    const existing = this.#links.get(hello.id);
    const open = existing !== undefined && existing.link.state === "open";
    const verdict = decideIncoming(hello, {
      localId: this.deviceId,
      localNonce: this.nonce,
      linkNonce: open ? existing.peerNonce : undefined,
      linkSilentMs: open ? this.#host.now() - existing.lastRx : undefined,
      dialing: this.#dialing.get(hello.id)?.inFlight ?? false,
      aliveMs: Math.floor(this.#config.keepAliveTimeout * 2 / 3),
    });
    const reply = (h: Hello) => handle.write(encodeHello(this.#codec, h));
    if (verdict !== "accept" && verdict !== "replace") {
      reply({ op: "refuse", id: this.deviceId, nonce: this.nonce, reason: verdict });
      void handle.close().catch(() => {});
      if (verdict === "clash") {
        this.#host.warn(
          `linkweave: device id clash: another runtime also claims ${hello.id}; refused its channel`,
        );
      }
      return;
    }
    if (verdict === "replace") {
      existing!.link.abort(`${hello.id} restarted`);
      this.#drain(existing!);
    }
    reply({ op: "welcome", id: this.deviceId, nonce: this.nonce });
    this.#attach(ch, hello, rest);
  }

  /** Dialer side: the acceptor answered our hello. */
  #answered(ch: ChannelCtx, hello: Hello, rest: Uint8Array): void {
    if (hello.op === "refuse") {
      const why = hello.reason === "duplicate"
        ? `${hello.id} keeps the channel it dialled`
        : hello.reason === "clash"
        ? `device id clash: ${hello.id} already has a link to another runtime claiming ${this.deviceId}`
        : `dialled itself (${hello.id})`;
      ch.settle?.(new Error(why));
      return;
    }
    if (hello.op !== "welcome" || (ch.expect !== undefined && hello.id !== ch.expect)) {
      ch.settle?.(new Error(`expected ${ch.expect} but reached ${hello.id}`));
      return;
    }
    this.#attach(ch, hello, rest);
    ch.settle?.(hello);
  }

  #attach(ch: ChannelCtx, hello: Hello, rest: Uint8Array): void {
    let e = this.#links.get(hello.id);
    if (e === undefined || e.link.state !== "open" || e.peerNonce !== hello.nonce) {
      e = {
        link: new Link({
          localId: this.deviceId,
          peerId: hello.id,
          codec: this.#codec,
          now: this.#host.now(),
          keepAliveTimeout: this.#config.keepAliveTimeout,
        }),
        peerNonce: hello.nonce,
        channels: new Map(),
        handlers: new Map(),
        lastRx: this.#host.now(),
        timer: undefined,
        timerAt: Infinity,
      };
      this.#links.set(hello.id, e);
    }
    ch.entry = e;
    e.channels.set(ch.id, ch);
    e.link.addChannel(ch.id, { now: this.#host.now() });
    if (rest.length > 0) e.link.handleBytes(ch.id, rest, this.#host.now());
    this.#markDirty(e);
    this.#flush();
  }

  // ------------------------------------------------------------ streams

  #open(e: LinkEntry, w: Waiter): StreamRef {
    const id = e.link.open(w.name);
    e.handlers.set(id, w.handler);
    this.#markDirty(e);
    this.#scheduleFlush();
    return this.#ref(e, id);
  }

  #ref(e: LinkEntry, id: number): StreamRef {
    const link = e.link;
    return {
      peerId: link.peerId,
      send: (data) => {
        if (!link.send(id, data)) return false;
        this.#markDirty(e);
        this.#scheduleFlush();
        return true;
      },
      get bufferedAmount() {
        return link.bufferedAmount(id);
      },
      close: () => {
        e.handlers.delete(id);
        link.closeStream(id);
        this.#markDirty(e);
        this.#scheduleFlush();
      },
    };
  }

  // ------------------------------------------------------------ pumping

  #markDirty(e: LinkEntry): void {
    this.#dirty.add(e);
  }

  #scheduleFlush(): void {
    if (this.#flushQueued) return;
    this.#flushQueued = true;
    queueMicrotask(() => {
      this.#flushQueued = false;
      this.#flush();
    });
  }

  #flushing = false;

  /** Write what dirty links have to send, dispatch their events, arm timers. */
  #flush(): void {
    if (this.#flushing) return;
    this.#flushing = true;
    try {
      while (this.#dirty.size > 0) {
        const [e] = this.#dirty;
        this.#dirty.delete(e);
        this.#pump(e);
      }
    } finally {
      this.#flushing = false;
    }
    if (this.#lingers.size > 0 && this.#quiet()) { for (const done of [...this.#lingers]) done(); }
  }

  #pump(e: LinkEntry): void {
    const link = e.link;
    const now = this.#host.now();
    for (let tx = link.pollTransmit(now); tx; tx = link.pollTransmit(now)) {
      const ch = e.channels.get(tx.channel);
      if (ch?.handle === undefined) continue;
      if (ch.handle.write(tx.bytes, "brief") === false) {
        ch.blocked = true;
        link.handleWritable(ch.id, false);
      }
    }
    this.#dispatch(e);
    if (link.state === "closed") {
      this.#drain(e);
      return;
    }
    this.#arm(e);
  }

  #dispatch(e: LinkEntry): void {
    const link = e.link;
    for (let ev = link.pollEvent(); ev; ev = link.pollEvent()) {
      this.#event(e, ev);
    }
  }

  #event(e: LinkEntry, ev: LinkEvent): void {
    switch (ev.type) {
      case "open": {
        const ref = this.#ref(e, ev.stream);
        let answer: StreamHandler | number;
        try {
          answer = this.#acceptor(ev.name, e.link.peerId, ref);
        } catch {
          answer = ErrorCode.INTERNAL_ERROR;
        }
        if (typeof answer === "number") {
          e.link.reject(ev.stream, answer);
        } else {
          e.handlers.set(ev.stream, answer);
          e.link.accept(ev.stream);
        }
        this.#markDirty(e);
        return;
      }
      case "opened":
        e.handlers.get(ev.stream)?.onOpened();
        return;
      case "rejected": {
        const h = e.handlers.get(ev.stream);
        e.handlers.delete(ev.stream);
        h?.onRejected(ev.code);
        return;
      }
      case "data":
        e.handlers.get(ev.stream)?.onData(ev.data);
        return;
      case "closed": {
        const h = e.handlers.get(ev.stream);
        e.handlers.delete(ev.stream);
        h?.onClosed(ev.reason);
        return;
      }
      case "drain":
        e.handlers.get(ev.stream)?.onDrain();
        return;
      case "linkClosed":
        return;
    }
  }

  /** A link closed: forget it, close its channels (flushing what was written). */
  #drain(e: LinkEntry): void {
    this.#dispatch(e);
    if (this.#links.get(e.link.peerId) === e) this.#links.delete(e.link.peerId);
    this.#host.clearTimer(e.timer);
    e.timer = undefined;
    for (const ch of e.channels.values()) {
      ch.entry = undefined;
      void ch.handle?.close().catch(() => {});
    }
    e.channels.clear();
  }

  #arm(e: LinkEntry): void {
    const at = e.link.pollTimeout();
    if (at === undefined || at >= e.timerAt) return;
    this.#host.clearTimer(e.timer);
    e.timerAt = at;
    e.timer = this.#host.setTimer(() => {
      e.timer = undefined;
      e.timerAt = Infinity;
      e.link.handleTimeout(this.#host.now());
      this.#markDirty(e);
      this.#flush();
    }, Math.max(0, at - this.#host.now()));
  }

  #quiet(): boolean {
    for (const e of this.#links.values()) {
      if (!e.link.idle) return false;
      for (const ch of e.channels.values()) if (ch.blocked) return false;
    }
    return this.#dirty.size === 0;
  }
}

function family(address: string): "IPv4" | "IPv6" {
  return address.includes(":") ? "IPv6" : "IPv4";
}

function unref(handle: unknown): void {
  (handle as { unref?: () => void }).unref?.();
}

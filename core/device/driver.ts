/**
 * The device driver: the one place that joins the sans-IO endpoint
 * (`endpoint.ts`) to real channels and timers. It starts the transports'
 * listeners, dials when the endpoint asks (resolving the peer's address from
 * the static peer list, then the peer finder), hands channel bytes to the
 * endpoint, writes what the endpoint transmits, dispatches its events to the
 * API layer, and keeps one timer armed at the endpoint's next deadline. It
 * decides nothing about peers itself.
 *
 * Writes are coalesced: commands only queue work, and one microtask later
 * the endpoint is asked for everything it has to send, so many `sendData`
 * calls in one tick become one channel write.
 *
 * The parts: the channels (their slots and events, received bytes handed
 * over a slice at a time, dialing at a resolved address) in `_channels.ts`;
 * the link figures of `linkStats` and their types in `_link_info.ts`
 * (exported from here).
 *
 * @module
 */
import { ErrorCode } from "../error_codes.ts";
import type { DeviceConfig } from "./config.ts";
import type { Codec } from "../proto/frame.ts";
import type { PeerAddress, PeerFinder, Transport } from "./channel.ts";
import { Endpoint, type EndpointEvent, type EndpointOptions, type PeerLink } from "./endpoint.ts";
import type { DeviceHost } from "./host.ts";
import { type Acceptor, deliverToPort, type Port } from "./port.ts";
import { ChannelTable } from "./_channels.ts";
import { type LinkInfo, linkStats } from "./_link_info.ts";

export { type Acceptor, type ConnectionRef, type IncomingRequest, Port } from "./port.ts";
export type { ChannelHealth, LinkChannelInfo, LinkInfo } from "./_link_info.ts";
import { trace } from "../trace.ts";
import type {
  DeviceRuntime,
  DriverConnectOptions,
  DriverOptions,
  PairedPeer,
} from "./driver_options.ts";

export type {
  DeviceRuntime,
  DriverConnectOptions,
  DriverOptions,
  PairedPeer,
} from "./driver_options.ts";

/** The device driver. */
export class DeviceDriver implements DeviceRuntime {
  readonly deviceId: string;
  readonly nonce: string;
  readonly port: number;
  readonly bind: string;
  #config: DeviceConfig;
  #host: DeviceHost;
  #ep: Endpoint;
  #transports: readonly Transport[];
  #listeners: { close(): Promise<void> }[] = [];
  #finder: PeerFinder | undefined;
  #channels: ChannelTable;
  #acceptors = new Map<number, Acceptor>();
  #onListenerFailed: (error: Error) => void = () => {};
  #flushQueued = false;
  #flushing = false;
  #timer: unknown;
  #timerAt = Infinity;
  #lingers = new Set<() => void>();
  #closing: Promise<void> | undefined;

  private constructor(
    init: {
      config: DeviceConfig;
      host: DeviceHost;
      codec: Codec;
      deviceId: string;
      nonce: string;
      transports: readonly Transport[];
      security?: EndpointOptions["security"];
      profiles?: EndpointOptions["profiles"];
      remembered?: (deviceId: string) => PeerAddress | undefined;
    },
  ) {
    this.#config = init.config;
    this.#host = init.host;
    this.#transports = init.transports;
    this.deviceId = init.deviceId;
    this.nonce = init.nonce;
    this.bind = init.config.bind;
    this.port = 0;
    const { limits } = init.config;
    this.#ep = new Endpoint({
      localId: init.deviceId,
      nonce: init.nonce,
      codec: init.codec,
      link: {
        keepAliveTimeout: init.config.keepAliveTimeout,
        maxStreams: limits.streamsPerLink,
        budget: limits.linkBudget,
      },
      handshakeTimeout: init.config.handshakeTimeout,
      maxHandshakes: limits.handshakes,
      maxLinks: limits.links,
      budget: limits.deviceBudget,
      security: init.security,
      profiles: init.profiles,
    });
    this.#channels = new ChannelTable({
      host: init.host,
      ep: this.#ep,
      config: init.config,
      transports: init.transports,
      remembered: init.remembered,
      finder: () => this.#finder,
      flush: () => this.#flush(),
    });
  }

  /**
   * Start a device: resolve its id, listen on every transport, start the
   * peer finder.
   *
   * @param options Configuration, host, codec, transports and finder.
   * @returns The running device.
   */
  static async start(options: DriverOptions): Promise<DeviceDriver> {
    const { config, host } = options;
    const deviceId = config.deviceId ?? await host.defaultDeviceId();
    const d = new DeviceDriver({
      config,
      host,
      codec: options.codec,
      deviceId,
      nonce: host.nonce(),
      transports: options.transports,
      security: options.security,
      profiles: options.profiles,
      remembered: options.remembered,
    });
    let port = 0;
    for (const t of options.transports) {
      const l = await t.listen({
        onChannel: (ch) => d.#channels.accepted(ch),
        onFailed: (e) => d.#listenerFailed(t, e),
      });
      d.#listeners.push(l);
      if (t.kind === "tcp" && port === 0) port = l.address.port;
    }
    (d as { port: number }).port = port;
    if (options.finder !== undefined) {
      try {
        d.#finder = await options.finder({ deviceId, nonce: d.nonce, port });
      } catch (e) {
        host.warn(`linkweave: discovery unavailable: ${(e as Error).message}`);
      }
    }
    return d;
  }

  /**
   * Set who answers incoming connections of one service kind (an API's
   * server table). Connections of a kind nobody answers are refused with
   * 32390201 (no such server).
   *
   * @param kind The service kind (`ServiceKind`).
   * @param acceptor Returns a port to accept, or a code to refuse.
   */
  setAcceptor(kind: number, acceptor: Acceptor): void {
    this.#acceptors.set(kind, acceptor);
  }

  /**
   * Hear about a listener that died (its transport accepts nothing more).
   *
   * @param fn The callback.
   */
  onListenerFailed(fn: (error: Error) => void): void {
    this.#onListenerFailed = fn;
  }

  /**
   * Open a connection to a peer's service, over the link to it or once one
   * is made (the endpoint dials and retries until the timeout). The port
   * hears `onOpened`, `onRejected` or `onFailed`.
   *
   * @param peerId The peer's device id.
   * @param name The service name.
   * @param port The connection: it sends once opened.
   * @param options Timeout, service kind and bundle name.
   */
  connect(peerId: string, name: string, port: Port, options: DriverConnectOptions = {}): void {
    port.peerId = peerId;
    port.driver = this;
    port.link = undefined;
    const now = this.#host.now();
    this.#ep.connect(peerId, name, {
      owner: port,
      deadline: now + (options.timeout ?? this.#config.connectTimeout),
      kind: options.kind,
      bundle: options.bundle,
      maxMessage: port.maxMessage,
    }, now);
    this.#scheduleFlush();
  }

  /** @internal Queue a message (hot path of `Port.send`). */
  send(link: PeerLink, stream: number, data: Uint8Array): boolean {
    if (!this.#ep.send(link, stream, data)) return false;
    this.#scheduleFlush();
    return true;
  }

  /** @internal Close a connection, or give up connecting. */
  closePort(port: Port): void {
    if (port.link === undefined) this.#ep.cancel(port);
    else this.#ep.closeStream(port.link, port.stream);
    port.link = undefined;
    this.#scheduleFlush();
  }

  /**
   * Drop the link to a peer at once (revoked): its connections end.
   *
   * @param peerId The peer.
   */
  dropPeer(peerId: string): void {
    this.#ep.dropPeer(peerId, `Link to ${peerId} closed: its key was revoked`);
    this.#flush();
  }

  /**
   * Show a pairing code: the first device that enters it within `timeout`
   * pairs with this one (one attempt).
   *
   * @param code The 6-digit code the person sees.
   * @param timeout How long the offer stands (ms).
   * @returns The device that paired; rejects when the attempt fails or the offer expires.
   */
  offerPairing(code: string, timeout: number): Promise<PairedPeer> {
    return new Promise((resolve, reject) => {
      this.#host.hold();
      const owner = { resolve, reject };
      this.#ep.offerPairing(owner, code, this.#host.now() + timeout);
      this.#flush();
    });
  }

  /**
   * Pair with the device at `address`, with the code its person sees.
   *
   * @param address Where the device showing the code listens.
   * @param code The code typed.
   * @returns The device that paired; rejects when pairing fails.
   */
  async pair(address: PeerAddress, code: string): Promise<PairedPeer> {
    const transport = this.#transports.find((t) => t.kind === (address.transport ?? "tcp"));
    if (transport === undefined) throw new Error(`No ${address.transport} transport to pair over`);
    this.#host.hold();
    const [id, slot] = this.#channels.slot();
    try {
      slot.channel = await transport.dial(address, this.#channels.events(id, slot));
    } catch (e) {
      this.#channels.forget(id);
      this.#host.release();
      throw e;
    }
    return await new Promise((resolve, reject) => {
      const owner = { resolve, reject };
      this.#ep.handleChannel(id, {
        dialer: true,
        pair: { code, owner },
        mtu: slot.channel!.info.mtu,
      }, this.#host.now());
      const early = slot.early ?? [];
      slot.early = undefined;
      this.#flush();
      for (const b of early) if (this.#channels.has(id)) this.#channels.bytes(id, b);
    });
  }

  /**
   * Keep the process alive until every queued byte was written, or `ms`
   * passed (after `disconnect()` or `close()` of a connection).
   *
   * @param ms The longest wait.
   */
  linger(ms: number): void {
    this.#scheduleFlush();
    this.#host.hold();
    const timer: { id?: unknown } = {};
    const done = () => {
      if (!this.#lingers.delete(done)) return;
      this.#host.clearTimer(timer.id);
      this.#host.release();
    };
    timer.id = this.#host.setTimer(done, ms);
    this.#lingers.add(done);
  }

  /**
   * Links currently open, by peer id, with their channel counts.
   *
   * @returns The links.
   */
  links(): Map<string, number> {
    const out = new Map<string, number>();
    for (const [id, pl] of this.#ep.links) out.set(id, pl.channels.size);
    return out;
  }

  /**
   * Links currently open with their channels and what each measured.
   *
   * @returns One entry per link.
   */
  linkStats(): LinkInfo[] {
    return linkStats(this.#ep.links, (id) => this.#channels.get(id)?.channel?.info);
  }

  /**
   * Stop: close every link gracefully (queued data first), the listeners and
   * the finder. Resolves once the channels are closed, or after the linger
   * bound.
   *
   * @returns When done.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    // The process stays alive while links say goodbye, at most a keep-alive timeout.
    this.#host.hold();
    try {
      this.#ep.close(this.#host.now());
      this.#flush();
      await Promise.allSettled([...this.#listeners.map((l) => l.close()), this.#finder?.close()]);
      if (this.#channels.size > 0) {
        await new Promise<void>((resolve) => {
          const timer = this.#host.setTimer(() => resolve(), this.#config.keepAliveTimeout);
          this.#channels.whenEmpty(() => {
            this.#host.clearTimer(timer);
            resolve();
          });
        });
      }
      this.#channels.closeAll();
      this.#host.clearTimer(this.#timer);
    } finally {
      this.#host.release();
    }
  }

  // ------------------------------------------------------------ listeners

  #listenerFailed(t: Transport, e: Error): void {
    this.#host.warn(`linkweave: the ${t.kind} listener failed: ${e.message}`);
    this.#onListenerFailed(e);
  }

  // ------------------------------------------------------------ pumping

  #scheduleFlush(): void {
    if (this.#flushQueued) return;
    this.#flushQueued = true;
    queueMicrotask(() => {
      this.#flushQueued = false;
      this.#flush();
    });
  }

  /** Write what the endpoint transmits, dispatch its events, arm the timer. */
  #flush(): void {
    if (this.#flushing) return;
    this.#flushing = true;
    const ep = this.#ep;
    try {
      for (let busy = true; busy;) {
        busy = false;
        const now = this.#host.now();
        for (let tx = ep.pollTransmit(now); tx; tx = ep.pollTransmit(now)) {
          busy = true;
          const slot = this.#channels.get(tx.channel);
          if (slot?.channel === undefined || slot.closed) continue;
          if (!slot.channel.write(tx.bytes)) {
            slot.blocked = true;
            ep.handleWritable(tx.channel, false);
          }
        }
        for (let ev = ep.pollEvent(); ev; ev = ep.pollEvent()) {
          busy = true;
          this.#event(ev);
        }
      }
    } finally {
      this.#flushing = false;
    }
    this.#arm();
    if (this.#lingers.size > 0 && this.#quiet()) { for (const done of [...this.#lingers]) done(); }
  }

  #event(ev: EndpointEvent): void {
    if (deliverToPort(ev, (pl) => this.#channels.endedByPeer.has(pl))) return;
    switch (ev.type) {
      case "connectFailed": {
        const port = ev.owner as Port;
        trace("connectFailed", { peer: port.peerId, code: ev.code, message: ev.message });
        // A refused handshake was reported once already, as its own warning.
        if (this.#closing === undefined && !ev.warned) {
          this.#warnOnce(`connect:${port.peerId}`, `linkweave: ${ev.message}`);
        }
        if (port.driver !== undefined) port.onFailed(ev.code, ev.message);
        return;
      }
      case "open": {
        let answer: Port | number;
        const acceptor = this.#acceptors.get(ev.kind);
        try {
          answer = acceptor === undefined ? ErrorCode.PEER_SERVER_NOT_STARTED : acceptor({
            peerId: ev.link.peer,
            name: ev.name,
            kind: ev.kind,
            bundle: ev.bundle,
          });
        } catch {
          answer = ErrorCode.INTERNAL_ERROR;
        }
        if (typeof answer === "number") {
          this.#ep.reject(ev.link, ev.stream, answer);
        } else {
          answer.peerId = ev.link.peer;
          answer.link = ev.link;
          answer.stream = ev.stream;
          answer.driver = this;
          this.#ep.accept(ev.link, ev.stream, answer, answer.maxMessage);
        }
        return;
      }
      case "dial":
        trace("dial", { peer: ev.peer, join: ev.join });
        void this.#channels.dial(ev.peer, ev.join);
        return;
      case "refuted": {
        const found = this.#channels.get(ev.channel)?.found;
        if (found !== undefined && found.peer === ev.peer) {
          trace("refuted", {
            peer: ev.peer,
            address: `${found.address.host}:${found.address.port}`,
          });
          this.#finder?.refuted?.(ev.peer, found.address);
        }
        return;
      }
      case "closeChannel": {
        trace("closeChannel", { channel: ev.channel, why: ev.why });
        const slot = this.#channels.get(ev.channel);
        if (slot === undefined) return;
        slot.closed = true;
        this.#channels.forget(ev.channel);
        slot.channel?.close();
        return;
      }
      case "warn":
        trace("warn", { message: ev.message });
        this.#host.warn(ev.message);
        return;
      case "paired": {
        trace("paired", { peer: ev.id });
        this.#host.release();
        (ev.owner as { resolve(p: PairedPeer): void }).resolve({
          id: ev.id,
          publicKey: ev.publicKey,
        });
        return;
      }
      case "pairingFailed": {
        trace("pairingFailed", { message: ev.message });
        this.#host.release();
        (ev.owner as { reject(e: Error): void }).reject(new Error(`Pairing failed: ${ev.message}`));
        return;
      }
      case "linkUp":
        trace("linkUp", { peer: ev.link.peer, nonce: ev.link.nonce });
        // The device that dialled the link opens its further channels.
        if (ev.link.dialer) {
          this.#ep.wantChannels(
            ev.link.peer,
            this.#channels.wanted(ev.link.peer),
            this.#host.now(),
          );
        }
        return;
      case "linkDown":
        trace("linkDown", { peer: ev.link.peer, reason: ev.reason, message: ev.message });
        return;
    }
  }

  #warned = new Map<string, number>();

  /** Warn, at most once per key every 10 s. */
  #warnOnce(key: string, message: string): void {
    const now = this.#host.now();
    const last = this.#warned.get(key);
    if (last !== undefined && now - last < 10_000) return;
    if (this.#warned.size > 256) this.#warned.clear();
    this.#warned.set(key, now);
    this.#host.warn(message);
  }

  #arm(): void {
    const at = this.#ep.pollTimeout();
    if (at === undefined || at >= this.#timerAt) return;
    this.#host.clearTimer(this.#timer);
    this.#timerAt = at;
    this.#timer = this.#host.setTimer(() => {
      this.#timer = undefined;
      this.#timerAt = Infinity;
      this.#ep.handleTimeout(this.#host.now());
      this.#flush();
    }, Math.max(0, at - this.#host.now()));
  }

  #quiet(): boolean {
    return this.#ep.idle && !this.#channels.blocked;
  }
}

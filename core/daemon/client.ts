/**
 * An application attached to the device daemon: the driver surface the API
 * layers use (`DeviceSurface`, the one the embedded `DeviceDriver` has),
 * implemented over the attach protocol (`wire.ts`), so `linkEnhance` and
 * `abilityConnectionManager` run unchanged on either. The daemon owns the
 * device (transports, discovery, trust, links); this side keeps one record
 * per connection (its port, and what it has sent that the daemon has not
 * yet handed to the link) and mirrors the device's links and known peers.
 *
 * Sans-IO but for the host's timers: the socket is opened by the `dial`
 * function given at construction, whose events (bytes, drained, closed) come
 * back here; what to send goes out through it, one write per microtask.
 *
 * When the daemon goes away (it stopped, died, or closed this application's
 * socket), every connection ends as a lost link ends it, and the device
 * re-attaches by itself: after {@linkcode REATTACH_FIRST_DELAY}, doubling up
 * to {@linkcode REATTACH_MAX_DELAY} between attempts, for as long as the
 * application runs. Once welcomed again it names its servers and abilities
 * anew (`serve`), so they are reached again and its connects work again.
 * Only the application's own `close()` and a daemon of another major
 * version end it for good.
 *
 * Flow control mirrors the link's send queue: a connection may have
 * {@linkcode SEND_WINDOW} bytes that the daemon has not yet seen leave the
 * link (its `sent` messages say how many it took and how many the link still
 * holds); `send` refuses more, and `onDrain` follows once that is back to
 * half, exactly when the embedded link would say so.
 *
 * @module
 */
import { DisconnectReason, ErrorCode } from "../error_codes.ts";
import { BusinessError, ParameterError } from "../errors.ts";
import { type DeviceHost, Lingers } from "../device/host.ts";
import type { DeviceSurface, DriverConnectOptions } from "../device/driver_options.ts";
import type { Acceptor, Port } from "../device/port.ts";
import type { PeerLink } from "../device/endpoint.ts";
import { DEFAULT_SEND_QUEUE_BYTES } from "../proto/link/mod.ts";
import { trace } from "../trace.ts";
import {
  ATTACH_CAPABILITIES,
  ATTACH_MAJOR,
  ATTACH_MINOR,
  AttachCapability,
  AttachDecoder,
  type AttachMessage,
  type AttachPaired,
  type AttachPairing,
  type AttachPairOp,
  AttachProtocolError,
  type AttachWelcome,
  encodeAttach,
} from "./wire.ts";

/** Bytes one connection may have sent that the link has not written yet (the link's send queue). */
export const SEND_WINDOW: number = DEFAULT_SEND_QUEUE_BYTES;

/** The first wait before re-attaching to a daemon that went away (ms). */
export const REATTACH_FIRST_DELAY = 100;
/** The longest wait between two re-attach attempts (ms). */
export const REATTACH_MAX_DELAY = 5000;
/** How long a re-attach attempt waits for the daemon's welcome (ms). */
export const REATTACH_WELCOME_TIMEOUT = 3000;

/** Writes above this size go to the socket on their own rather than joined (bytes). */
const JOIN_LIMIT = 64 * 1024;

/** The socket to the daemon, as the attached device uses it. */
export interface AttachTransport {
  /**
   * Write bytes (the transport queues what the socket cannot take now).
   *
   * @param bytes The bytes (not reused by the caller).
   */
  write(bytes: Uint8Array): void;
  /** Bytes written and not yet taken by the socket. */
  readonly queued: number;
  /** Close the socket. */
  close(): void;
  /** Let the process exit while only this socket is open. */
  unref?(): void;
}

/** What the socket reports, as the attached device hears it. */
export interface AttachEvents {
  /** Bytes arrived. */
  bytes(bytes: Uint8Array): void;
  /** What was queued was taken. */
  drained(): void;
  /** It closed (with why, when it failed). */
  closed(message?: string): void;
}

interface Conn {
  port: Port;
  peer: string;
  open: boolean;
  /** Bytes sent the daemon has not reported taken by the link. */
  unacked: number;
  /** Bytes the link held for this connection, as last reported. */
  linkBuffered: number;
  wantDrain: boolean;
}

/** Options of {@linkcode AttachedDevice}. */
export interface AttachedDeviceOptions {
  /** The machine (clock, timers, holds, warnings). */
  host: DeviceHost;
  /**
   * Open a socket to the daemon (at attach, and at every re-attach).
   *
   * @param events Where its events go.
   * @returns The socket; rejects when nothing answers.
   */
  dial(events: AttachEvents): Promise<AttachTransport>;
  /** Re-attach by itself when the daemon goes away. @default {true} */
  reattach?: boolean;
  /** Where the daemon listens (for messages). */
  socket: string;
  /** This process's id (sent in `hello`). @default {0} */
  pid?: number;
}

/** An application's side of the attach protocol: the device, as the daemon serves it. */
export class AttachedDevice implements DeviceSurface {
  deviceId = "";
  nonce = "";
  port = 0;
  bind = "";
  #host: DeviceHost;
  #dial: (events: AttachEvents) => Promise<AttachTransport>;
  #reattach: boolean;
  #transport: AttachTransport | undefined;
  #socket: string;
  #pid: number;
  #decoder = new AttachDecoder("daemon");
  #conns = new Map<number, Conn>();
  #nextHandle = 1;
  #acceptors = new Map<number, Acceptor>();
  #onListenerFailed: (error: Error) => void = () => {};
  /** The names served, by kind (named again at every re-attach). */
  #served = new Map<number, string[]>();
  #links = new Map<string, number>();
  #known: string[] = [];
  #out: Uint8Array[] = [];
  #outBytes = 0;
  #flushQueued = false;
  #lingers: Lingers;
  #welcome: { resolve(d: AttachedDevice): void; reject(e: Error): void } | undefined;
  /** Attaching (hello sent), attached (welcomed), away (waiting to re-attach), or closed for good. */
  #state: "attaching" | "attached" | "away" | "closed" = "away";
  /** Why the device is away or closed. */
  #gone: string | undefined;
  /** Bumped at every socket: events of an older one are ignored. */
  #generation = 0;
  #attempts = 0;
  #timer: unknown;
  #errorMessage: string | undefined;
  /** The daemon's capability bits (from its welcome). */
  #caps = 0;
  /** Pairing requests waiting for the daemon's answers, by request number. */
  #pairs = new Map<number, (answer: AttachPairing) => void>();
  #nextPair = 1;
  /** What `Port` reads of its link: the bytes queued on a connection. */
  #link = { link: { bufferedAmount: (handle: number) => this.#buffered(handle) } };

  /** @param options The host, how to reach the daemon, and its path. */
  constructor(options: AttachedDeviceOptions) {
    this.#host = options.host;
    this.#lingers = new Lingers(options.host);
    this.#dial = options.dial;
    this.#reattach = options.reattach ?? true;
    this.#socket = options.socket;
    this.#pid = options.pid ?? 0;
  }

  /**
   * Open the socket, say hello and wait for the daemon's welcome.
   *
   * @returns This device, once welcomed; rejects when nothing answers, the
   *   daemon refuses, speaks another major version, or closes.
   */
  attach(): Promise<AttachedDevice> {
    return new Promise((resolve, reject) => {
      this.#welcome = { resolve, reject };
      this.#open();
    });
  }

  /** Whether the daemon is away now (or was never reached); nothing works until it is back. */
  get gone(): boolean {
    return this.#state !== "attached";
  }

  /** Open a socket to the daemon and say hello. */
  #open(): void {
    const gen = ++this.#generation;
    this.#state = "attaching";
    this.#decoder = new AttachDecoder("daemon");
    this.#errorMessage = undefined;
    const mine = () => gen === this.#generation;
    this.#dial({
      bytes: (b) => mine() && this.handleBytes(b),
      drained: () => mine() && this.handleDrained(),
      closed: (m) => mine() && this.handleClosed(m),
    }).then((t) => {
      if (!mine()) return t.close(); // closed, or given up, meanwhile
      this.#transport = t;
      this.#write({
        type: "hello",
        major: ATTACH_MAJOR,
        minor: ATTACH_MINOR,
        caps: ATTACH_CAPABILITIES,
        pid: this.#pid,
      });
      if (this.#welcome !== undefined) return; // the first attach: the caller times it
      this.#timer = this.#host.setTimer(() => {
        if (mine() && this.#state === "attaching") {
          this.#end(`no welcome within ${REATTACH_WELCOME_TIMEOUT} ms`);
        }
      }, REATTACH_WELCOME_TIMEOUT);
    }, (e: Error) => {
      if (!mine()) return;
      const w = this.#welcome;
      if (w === undefined) return this.#end(e.message);
      this.#welcome = undefined; // the first attach: nothing answers there
      this.#state = "closed";
      this.#gone = e.message;
      w.reject(e);
    });
  }

  /**
   * Peers known to the daemon's device (discovery, links).
   *
   * @returns Their ids.
   */
  known(): string[] {
    return [...this.#known];
  }

  // ------------------------------------------------------------ the driver surface

  setAcceptor(kind: number, acceptor: Acceptor): void {
    this.#acceptors.set(kind, acceptor);
  }

  onListenerFailed(fn: (error: Error) => void): void {
    this.#onListenerFailed = fn;
  }

  serve(kind: number, names: readonly string[]): void {
    const before = this.#served.get(kind);
    if (before !== undefined && JSON.stringify(before) === JSON.stringify(names)) return;
    this.#served.set(kind, [...names]);
    if (this.#state === "attached") this.#write({ type: "serve", kind, names: [...names] });
  }

  connect(peerId: string, name: string, port: Port, options: DriverConnectOptions = {}): void {
    port.peerId = peerId;
    port.driver = this;
    port.link = undefined;
    if (this.#state !== "attached") {
      const why = `the device daemon at "${this.#socket}" is gone (${this.#gone})` +
        (this.#state === "closed" ? "" : "; re-attaching");
      queueMicrotask(() => {
        if (port.driver === this) port.onFailed(ErrorCode.INTERNAL_ERROR, why);
      });
      return;
    }
    const handle = this.#allocate();
    port.stream = handle;
    this.#conns.set(handle, {
      port,
      peer: peerId,
      open: false,
      unacked: 0,
      linkBuffered: 0,
      wantDrain: false,
    });
    this.#write({
      type: "connect",
      handle,
      kind: options.kind ?? 0,
      timeout: options.timeout ?? 0,
      maxMessage: port.maxMessage ?? 0,
      peer: peerId,
      name,
      bundle: options.bundle ?? "",
    });
  }

  /** @internal Queue a message (`Port.send`). */
  send(_link: PeerLink, handle: number, data: Uint8Array): boolean {
    const c = this.#conns.get(handle);
    if (c === undefined || !c.open) return false;
    const queued = c.unacked + c.linkBuffered;
    if (queued > 0 && queued + data.length > SEND_WINDOW) {
      c.wantDrain = true;
      return false;
    }
    c.unacked += data.length;
    if ((queued + data.length) * 2 >= SEND_WINDOW) c.wantDrain = true;
    this.#write({ type: "data", handle, bytes: data });
    return true;
  }

  /** @internal Close a connection, or give up connecting. */
  closePort(port: Port): void {
    const handle = port.stream;
    const c = this.#conns.get(handle);
    port.link = undefined;
    if (c === undefined || c.port !== port) return;
    this.#conns.delete(handle);
    if (this.#state === "attached") this.#write({ type: "close", handle });
  }

  linger(ms: number): void {
    this.#scheduleFlush();
    this.#lingers.add(ms);
  }

  links(): Map<string, number> {
    return new Map(this.#links);
  }

  /** Leave the daemon: every connection ends here (the daemon closes them on the peers' side). */
  close(): Promise<void> {
    if (this.#state !== "closed") {
      this.#flush();
      this.#end("this application detached", true);
    }
    return Promise.resolve();
  }

  // ------------------------------------------------------------ pairing (the daemon's device pairs)

  /**
   * Show a code through the daemon: the first device that enters it pairs
   * with the daemon's device.
   *
   * @param timeout How long the offer stands (ms).
   * @returns The code, and the device that paired (rejects when the
   *   pairing fails, the offer expires, or the daemon goes away).
   */
  offerPairing(timeout: number): Promise<{ code: string; paired: Promise<AttachPaired> }> {
    return new Promise((resolve, reject) => {
      let settle: { resolve(d: AttachPaired): void; reject(e: Error): void } | undefined;
      const paired = new Promise<AttachPaired>((res, rej) =>
        settle = { resolve: res, reject: rej }
      );
      paired.catch(() => {}); // the caller decides whether to wait for it
      let shown = false;
      this.#pair({ op: "offer", timeout }, (a) => {
        if ("offer" in a) {
          shown = true;
          resolve({ code: a.offer, paired });
          return false;
        }
        const fail = "failed" in a ? pairError(a.failed) : undefined;
        if (!shown) {
          if (fail !== undefined) reject(fail);
          return true;
        }
        if (fail !== undefined) settle!.reject(fail);
        else if ("paired" in a) settle!.resolve(a.paired);
        return true;
      });
    });
  }

  /**
   * Enter another device's code through the daemon.
   *
   * @param target That device's `host:port`.
   * @param code The 6 digits.
   * @returns The device paired with.
   */
  enterPairing(target: string, code: string): Promise<AttachPaired> {
    return new Promise((resolve, reject) => {
      this.#pair({ op: "enter", target, code }, (a) => {
        if ("paired" in a) resolve(a.paired);
        else if ("failed" in a) reject(pairError(a.failed));
        return true;
      });
    });
  }

  /** Send a `pair`; `answer` hears the daemon's answers until it returns true. */
  #pair(op: AttachPairOp, answer: (a: AttachPairing) => boolean): void {
    const failed = (message: string) => void answer({ failed: { code: 0, message } });
    if (this.#state !== "attached") {
      return failed(`the device daemon at "${this.#socket}" is gone (${this.#gone})`);
    }
    if ((this.#caps & AttachCapability.PAIRING) === 0) {
      return failed(
        `the device daemon at "${this.#socket}" cannot pair (an older version); ` +
          "stop it and pair with the same identity, or update it",
      );
    }
    const request = this.#nextPair;
    this.#nextPair = this.#nextPair >= 0xffffffff ? 1 : this.#nextPair + 1;
    // The socket does not keep the process alive: a pairing under way does.
    this.#host.hold();
    this.#pairs.set(request, (a) => {
      if (!answer(a)) return;
      this.#pairs.delete(request);
      this.#host.release();
    });
    this.#write({ type: "pair", request, ...op });
  }

  // ------------------------------------------------------------ input

  /**
   * Bytes from the daemon.
   *
   * @param bytes The bytes.
   */
  handleBytes(bytes: Uint8Array): void {
    if (this.#state !== "attaching" && this.#state !== "attached") return;
    const gen = this.#generation;
    let messages: AttachMessage[];
    try {
      messages = this.#decoder.push(bytes);
    } catch (e) {
      const why = e instanceof AttachProtocolError ? e.message : String(e);
      this.#end(`it sent ${why}`);
      return;
    }
    for (const m of messages) {
      this.#message(m);
      if (gen !== this.#generation) return;
    }
  }

  /** The socket can take more: a lingering process may go once everything left. */
  handleDrained(): void {
    this.#released();
  }

  /**
   * The socket closed.
   *
   * @param message Why, when it failed.
   */
  handleClosed(message?: string): void {
    if (this.#state !== "attaching" && this.#state !== "attached") return;
    this.#end(this.#errorMessage ?? message ?? "it closed the connection");
  }

  #message(m: AttachMessage): void {
    switch (m.type) {
      case "welcome":
        this.#welcomed(m);
        return;
      case "error":
        this.#errorMessage = m.message;
        return;
    }
    if (this.#state !== "attached") {
      this.#protocolError(`a "${m.type}" message before its welcome`);
      return;
    }
    switch (m.type) {
      case "open":
        this.#incoming(m.handle, m.kind, { peerId: m.peer, name: m.name, bundle: m.bundle });
        return;
      case "opened": {
        const c = this.#conns.get(m.handle);
        if (c === undefined || c.open) return;
        c.open = true;
        c.port.link = this.#link as unknown as PeerLink;
        if (c.port.driver !== undefined) c.port.onOpened();
        return;
      }
      case "rejected":
      case "failed": {
        const c = this.#conns.get(m.handle);
        if (c === undefined || c.open) return;
        this.#conns.delete(m.handle);
        if (c.port.driver === undefined) return;
        if (m.type === "rejected") c.port.onRejected(m.code);
        else c.port.onFailed(m.code, m.message);
        return;
      }
      case "deliver": {
        const c = this.#conns.get(m.handle);
        if (c === undefined || !c.open || c.port.driver === undefined) return;
        c.port.onData(m.bytes.slice().buffer as ArrayBuffer);
        return;
      }
      case "sent": {
        const c = this.#conns.get(m.handle);
        if (c === undefined) return;
        c.unacked = Math.max(0, c.unacked - m.bytes);
        c.linkBuffered = m.buffered;
        if (c.wantDrain && (c.unacked + c.linkBuffered) * 2 <= SEND_WINDOW) {
          c.wantDrain = false;
          if (c.open && c.port.driver !== undefined) c.port.onDrain();
        }
        return;
      }
      case "closed": {
        const c = this.#conns.get(m.handle);
        if (c === undefined) return;
        this.#conns.delete(m.handle);
        c.port.link = undefined;
        if (c.port.driver === undefined) return;
        if (c.open) c.port.onClosed(m.reason, m.byPeer);
        else c.port.onFailed(ErrorCode.INTERNAL_ERROR, "the connection closed while opening");
        return;
      }
      case "state":
        this.#links = new Map(m.links);
        this.#known = m.known;
        return;
      case "listenerFailed":
        this.#onListenerFailed(new Error(m.message));
        return;
      case "pairing":
        this.#pairs.get(m.request)?.(m);
        return;
    }
  }

  #welcomed(m: AttachWelcome): void {
    if (this.#state !== "attaching") {
      this.#protocolError("a second welcome");
      return;
    }
    if (m.major !== ATTACH_MAJOR) {
      const why = `it speaks attach protocol ${m.major}.${m.minor}, this application ` +
        `${ATTACH_MAJOR}.${ATTACH_MINOR}`;
      this.#end(why, true);
      return;
    }
    this.#host.clearTimer(this.#timer);
    this.#state = "attached";
    this.#gone = undefined;
    this.#attempts = 0;
    this.#caps = m.caps;
    this.deviceId = m.deviceId;
    this.nonce = m.nonce;
    this.port = m.port;
    this.bind = m.bind;
    this.#transport?.unref?.();
    trace("daemon.attached", { socket: this.#socket, deviceId: m.deviceId, pid: m.pid });
    const w = this.#welcome;
    this.#welcome = undefined;
    if (w !== undefined) {
      w.resolve(this);
      return;
    }
    // Back after the daemon went away: its servers and abilities are named again.
    for (const [kind, names] of this.#served) this.#write({ type: "serve", kind, names });
    this.#host.warn(
      `linkweave: re-attached to the device daemon at "${this.#socket}" (device ${m.deviceId})`,
    );
  }

  #incoming(
    handle: number,
    kind: number,
    request: { peerId: string; name: string; bundle: string },
  ) {
    if ((handle & 1) !== 0 || this.#conns.has(handle)) {
      this.#protocolError(`an open of handle ${handle}, which is not free`);
      return;
    }
    const acceptor = this.#acceptors.get(kind);
    let answer: Port | number;
    try {
      answer = acceptor === undefined
        ? ErrorCode.PEER_SERVER_NOT_STARTED
        : acceptor({ ...request, kind });
    } catch {
      answer = ErrorCode.INTERNAL_ERROR;
    }
    if (typeof answer === "number") {
      this.#write({ type: "reject", handle, code: answer });
      return;
    }
    answer.peerId = request.peerId;
    answer.link = this.#link as unknown as PeerLink;
    answer.stream = handle;
    answer.driver = this;
    this.#conns.set(handle, {
      port: answer,
      peer: request.peerId,
      open: true,
      unacked: 0,
      linkBuffered: 0,
      wantDrain: false,
    });
    this.#write({ type: "accept", handle });
  }

  #protocolError(why: string): void {
    this.#end(`it sent ${why}`);
  }

  /**
   * The socket ended: every connection ends as a lost link ends it; then,
   * unless `final` (or re-attaching is off), wait and attach again, and
   * otherwise servers stop and later connects fail.
   */
  #end(why: string, final = false): void {
    if (this.#state === "closed" || (this.#state === "away" && !final)) return;
    const wasAttached = this.#state === "attached";
    this.#generation++; // the old socket's events are ignored from now on
    this.#transport?.close();
    this.#transport = undefined;
    this.#host.clearTimer(this.#timer);
    this.#timer = undefined;
    this.#out = [];
    this.#outBytes = 0;
    this.#gone = why;
    const w = this.#welcome;
    this.#welcome = undefined;
    const again = this.#reattach && !final && w === undefined;
    this.#state = again ? "away" : "closed";
    if (w !== undefined) {
      w.reject(new Error(`Cannot attach to the device daemon at "${this.#socket}": ${why}`));
      return;
    }
    if (wasAttached) this.#lost(why, again, final);
    if (!again) {
      this.#onListenerFailed(new Error(`The device daemon is gone: ${why}`));
      return;
    }
    const delay = Math.min(REATTACH_MAX_DELAY, REATTACH_FIRST_DELAY * 2 ** this.#attempts);
    this.#attempts = Math.min(this.#attempts + 1, 16);
    this.#timer = this.#host.setTimer(() => {
      if (this.#state === "away") this.#open();
    }, delay);
  }

  /** The daemon went away: every connection ends, as the loss of its link ends it. */
  #lost(why: string, again: boolean, quiet: boolean): void {
    if (!quiet) {
      this.#host.warn(
        `linkweave: the device daemon at "${this.#socket}" is gone: ${why}; ` +
          "this application's connections ended" + (again ? "; re-attaching when it is back" : ""),
      );
    }
    trace("daemon.gone", { socket: this.#socket, why });
    for (const answer of [...this.#pairs.values()]) {
      answer({ failed: { code: 0, message: `the device daemon is gone: ${why}` } });
    }
    const conns = [...this.#conns.values()];
    this.#conns.clear();
    this.#links.clear();
    this.#known = [];
    for (const c of conns) {
      c.port.link = undefined;
      if (c.port.driver === undefined) continue;
      if (c.open) c.port.onClosed(DisconnectReason.LINK_CLOSED, false);
      else c.port.onFailed(ErrorCode.INTERNAL_ERROR, `the device daemon is gone: ${why}`);
    }
    this.#lingers.releaseAll();
  }

  // ------------------------------------------------------------ output

  #allocate(): number {
    let h = this.#nextHandle;
    while (this.#conns.has(h)) h = h >= 0xfffffffd ? 1 : h + 2;
    this.#nextHandle = h >= 0xfffffffd ? 1 : h + 2;
    return h;
  }

  #buffered(handle: number): number {
    const c = this.#conns.get(handle);
    return c === undefined ? 0 : c.unacked + c.linkBuffered;
  }

  #write(m: AttachMessage): void {
    if (this.#transport === undefined) return;
    const bytes = encodeAttach(m);
    this.#out.push(bytes);
    this.#outBytes += bytes.length;
    this.#scheduleFlush();
  }

  #scheduleFlush(): void {
    if (this.#flushQueued) return;
    this.#flushQueued = true;
    queueMicrotask(() => {
      this.#flushQueued = false;
      this.#flush();
    });
  }

  /** Hand what was queued in this tick to the socket: small messages joined, big ones alone. */
  #flush(): void {
    const out = this.#out;
    const t = this.#transport;
    if (out.length > 0 && t !== undefined) {
      this.#out = [];
      const total = this.#outBytes;
      this.#outBytes = 0;
      if (out.length === 1) t.write(out[0]);
      else if (total <= JOIN_LIMIT) {
        const joined = new Uint8Array(total);
        let at = 0;
        for (const b of out) {
          joined.set(b, at);
          at += b.length;
        }
        t.write(joined);
      } else for (const b of out) t.write(b);
    }
    this.#released();
  }

  /** Let lingering holds go once nothing waits to be written. */
  #released(): void {
    if (!this.#lingers.active || this.#out.length > 0 || (this.#transport?.queued ?? 0) > 0) {
      return;
    }
    this.#lingers.releaseAll();
  }
}

/** The error of a failed pairing: 401 for a malformed argument, else the code the daemon gave. */
function pairError(f: { code: number; message: string }): Error {
  if (f.code === ErrorCode.PARAMETER_ERROR) return new ParameterError(f.message);
  const message = f.message.startsWith("Cannot") ? f.message : `Cannot pair: ${f.message}`;
  return new BusinessError(f.code === 0 ? ErrorCode.INTERNAL_ERROR : f.code, message);
}

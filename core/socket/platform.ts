/**
 * The contract between the socket core and a runtime: the only way
 * `core/socket/` reaches the operating system.
 *
 * A {@linkcode SocketPlatform} opens three kinds of handles:
 * - {@linkcode StreamHandle}: a connected byte stream (TCP or Unix-domain), from
 *   `tcpConnect`, `unixConnect`, a listener's `onConnection`, or the
 *   `connect` of a {@linkcode BoundTcpHandle} (from the optional `tcpBind`).
 * - {@linkcode ListenerHandle}: a listening TCP or Unix-domain socket.
 * - {@linkcode DatagramHandle}: a bound UDP socket.
 *
 * Rules every adapter follows:
 * - Events are passed in when a handle is opened, so no data is ever missed.
 *   Every handle calls `onClose` exactly once, last.
 * - `write` never throws and never waits: it returns `true` while more may be
 *   written at once, `false` when the caller should wait for `onDrain`
 *   (backpressure). Bytes passed to `write` are owned by the handle, unless
 *   they are lent (`write(bytes, true)`): then the handle either takes them
 *   at once (copies them, or the kernel took them) and returns a boolean, or
 *   keeps them without copying and returns a promise that settles once it no
 *   longer needs them. The caller changes lent bytes only after that. Bytes
 *   lent `"brief"`ly are the caller's again when `write` returns: the handle
 *   copies what the kernel did not take at once, and returns a boolean.
 * - Datagram `send` borrows its bytes the same way: `undefined` when the
 *   kernel took them before `send` returned, else a promise.
 * - Bytes given to `onData`/`onMessage` belong to the receiver (never reused).
 * - Failures reject (or reach `onClose`) as `BusinessError`s whose code is
 *   `2301000 + errno` (`2300002` when the errno is unknown). Each adapter
 *   converts native errors in exactly one function.
 * - `setOption` applies an option to the OS socket and returns `true`, or
 *   returns `false` when the runtime cannot apply it; it never pretends.
 *   `getOption` returns the value in effect when the runtime can read it back.
 * - Every handle starts referenced: while open it keeps the process alive, as
 *   the runtime's own sockets do. After `unref()` it does not (its callbacks
 *   still run while something else keeps the process alive); `ref()` undoes
 *   that. Bytes already queued by `write` keep the process alive until they
 *   are handed to the kernel, referenced or not.
 *
 * @module
 */
import type { BusinessError } from "../errors.ts";

/** An IP family as the socket API names it. */
export type IpFamily = "IPv4" | "IPv6";

/** An IP endpoint. */
export interface IpEndpoint {
  /** The numeric IP address. */
  address: string;
  /** The port, 0..65535. */
  port: number;
  /** The family. */
  family: IpFamily;
}

/** Socket options an adapter may apply, with their value types. */
export interface SocketOptionMap {
  /** `SO_KEEPALIVE`. */
  keepAlive: boolean;
  /** `TCP_NODELAY`. */
  noDelay: boolean;
  /** `SO_OOBINLINE`. */
  oobInline: boolean;
  /** `SO_LINGER` in seconds; -1 turns lingering off. */
  linger: number;
  /** `SO_RCVBUF` in bytes (the kernel may double or clamp it). */
  receiveBufferSize: number;
  /** `SO_SNDBUF` in bytes (the kernel may double or clamp it). */
  sendBufferSize: number;
  /** `SO_REUSEADDR`. */
  reuseAddress: boolean;
  /** `SO_BROADCAST` (datagram sockets). */
  broadcast: boolean;
  /** `IP_MULTICAST_TTL` (datagram sockets). */
  multicastTTL: number;
  /** `IP_MULTICAST_LOOP` (datagram sockets). */
  multicastLoopback: boolean;
}

/** The name of a socket option. */
export type SocketOption = keyof SocketOptionMap;

/** Apply and read back socket options. */
export interface OptionTarget {
  /**
   * Apply an option to the OS socket.
   *
   * @param name The option.
   * @param value Its value.
   * @returns `true` when applied, `false` when this runtime cannot apply it.
   */
  setOption<K extends SocketOption>(name: K, value: SocketOptionMap[K]): boolean;
  /**
   * Read an option back from the OS socket.
   *
   * @param name The option.
   * @returns The value in effect, or `undefined` when the runtime cannot read it.
   */
  getOption<K extends SocketOption>(name: K): SocketOptionMap[K] | undefined;
}

/**
 * Whether an open handle keeps the process alive (Node's `ref`/`unref`).
 * Both are idempotent and do nothing once the handle is closed.
 */
export interface Refable {
  /**
   * Keep the process alive while this handle is open (the initial state).
   */
  ref(): void;
  /**
   * Let the process exit while this handle is open, once nothing else keeps
   * it alive. Queued writes still keep it alive until written.
   */
  unref(): void;
}

/** Callbacks of a {@linkcode StreamHandle}, given when it is opened. */
export interface StreamEvents {
  /** Bytes arrived; the receiver owns them. */
  onData(bytes: Uint8Array): void;
  /** The write buffer drained after `write` returned `false`. */
  onDrain(): void;
  /** The stream closed (by either side); `error` when it failed. Called once, last. */
  onClose(error?: BusinessError<unknown>): void;
}

/** A connected TCP or Unix-domain stream. */
export interface StreamHandle extends OptionTarget, Refable {
  /** The local endpoint (`undefined` for Unix-domain streams). */
  readonly localAddress: IpEndpoint | undefined;
  /** The remote endpoint (`undefined` for Unix-domain streams). */
  readonly remoteAddress: IpEndpoint | undefined;
  /**
   * Queue bytes for sending; never throws. Adapters copy small lent writes
   * (into a coalescing buffer) and keep large ones until written.
   *
   * @param bytes The bytes; the handle owns them afterwards unless `lent`.
   * @param lent The caller keeps `bytes` and will change them again: the
   *   handle must not use them after it returned a boolean, or after the
   *   promise it returned settled; with `"brief"`, not after it returned at
   *   all (it returns a boolean then). @default {false}
   * @returns `true` while more may be written, `false` to wait for `onDrain`;
   *   or (only when `lent`) a promise that resolves once the bytes were
   *   handed to the kernel, or rejects with a `BusinessError` when the stream
   *   failed or closed before that.
   */
  write(bytes: Uint8Array, lent?: boolean | "brief"): boolean | Promise<void>;
  /**
   * Flush queued bytes, then close (FIN); resolves once closed.
   *
   * @returns When `onClose` has been called.
   */
  close(): Promise<void>;
}

/** Callbacks of a {@linkcode ListenerHandle}. */
export interface ListenerEvents {
  /**
   * A client connected. Return the events of its stream; the adapter wires
   * them before reading.
   */
  onConnection(handle: StreamHandle): StreamEvents;
  /**
   * The listener died: its listening socket failed (`EBADF`, `EINVAL`, ...)
   * and it accepts no more connections. Called at most once, never after
   * `close()` was called; the listener is closed when it is called (its
   * `close()` still resolves, at once or when the socket is released).
   *
   * A failed accept that concerns one client (it reset before it was
   * accepted: `ECONNRESET`, `ENOTCONN`, `ECONNABORTED`; a network error on
   * its socket) or a shortage (`EMFILE`, `ENFILE`, `ENOBUFS`, `ENOMEM`,
   * retried after a back-off) never ends a listener and is not reported
   * here: a peer cannot stop a listener.
   */
  onError?(error: BusinessError<unknown>): void;
}

/** A listening TCP or Unix-domain socket. */
export interface ListenerHandle extends Refable {
  /** The bound endpoint (`undefined` for Unix-domain listeners). */
  readonly localAddress: IpEndpoint | undefined;
  /**
   * Stop accepting and close the listening socket (not its accepted streams).
   * Idempotent; after `onError` it only waits for the socket to be released.
   *
   * @returns When the socket is closed.
   */
  close(): Promise<void>;
}

/** Callbacks of a {@linkcode DatagramHandle}. */
export interface DatagramEvents {
  /** A datagram arrived; the receiver owns the bytes. */
  onMessage(bytes: Uint8Array, from: IpEndpoint): void;
  /** A socket error after binding (for example an ICMP error). */
  onError?(error: BusinessError<unknown>): void;
}

/** A bound UDP socket. */
export interface DatagramHandle extends OptionTarget, Refable {
  /** The bound endpoint. */
  readonly localAddress: IpEndpoint;
  /**
   * Send one datagram; never throws.
   *
   * @param bytes The payload, lent: the handle does not use it once the
   *   datagram was handed to the kernel (or failed).
   * @param to The destination (read-only; the caller may reuse it).
   * @returns `undefined` when the datagram was handed to the kernel before
   *   `send` returned; else a promise that resolves when it was, or rejects
   *   with a `BusinessError`.
   */
  send(bytes: Uint8Array, to: IpEndpoint): Promise<void> | undefined;
  /**
   * Join a multicast group.
   *
   * @param group The group address.
   * @param iface The local interface address, or the kernel's choice.
   */
  addMembership(group: string, iface?: string): void;
  /**
   * Leave a multicast group.
   *
   * @param group The group address.
   * @param iface The local interface address used to join.
   */
  dropMembership(group: string, iface?: string): void;
  /**
   * Close the socket.
   *
   * @returns When it is closed.
   */
  close(): Promise<void>;
}

/** A TCP socket bound to a local endpoint and not yet connected. */
export interface BoundTcpHandle {
  /** The bound endpoint (the kernel's port when bound to port 0). */
  readonly localAddress: IpEndpoint;
  /**
   * Connect from the bound endpoint. This uses up the bound handle: it must
   * not be used again, whether the connect succeeds or fails.
   *
   * @param remote The remote endpoint.
   * @param events The stream's callbacks.
   * @returns The connected stream.
   */
  connect(remote: IpEndpoint, events: StreamEvents): Promise<StreamHandle>;
  /**
   * Release the bound socket without connecting.
   *
   * @returns When it is closed.
   */
  close(): Promise<void>;
}

/** Options of {@linkcode SocketPlatform.tcpConnect}. */
export interface TcpConnectOptions {
  /** The remote endpoint. */
  remote: IpEndpoint;
  /** A local endpoint to bind before connecting. */
  local?: IpEndpoint;
}

/** Options of {@linkcode SocketPlatform.udpBind}. */
export interface UdpBindOptions {
  /** The local endpoint. */
  local: IpEndpoint;
  /** Set `SO_REUSEADDR` before binding, when the runtime can. @default {false} */
  reuseAddress?: boolean;
}

/** A runtime's implementation of the contract. */
export interface SocketPlatform {
  /** The runtime name. */
  readonly name: "deno" | "bun" | "node";
  /**
   * Open a TCP connection.
   *
   * @param options The remote (and optional local) endpoint.
   * @param events The stream's callbacks.
   * @returns The connected stream.
   */
  tcpConnect(options: TcpConnectOptions, events: StreamEvents): Promise<StreamHandle>;
  /**
   * Bind a TCP socket now, to connect from it later (so that a bind to port 0
   * learns its port, and a bad address fails at once). Absent, or resolving
   * `undefined`, where the runtime cannot bind before connecting: then the
   * core passes the endpoint to `tcpConnect` as `local`.
   *
   * @param local The endpoint to bind.
   * @returns The bound socket, or `undefined`.
   */
  tcpBind?(local: IpEndpoint): Promise<BoundTcpHandle | undefined>;
  /**
   * Listen for TCP connections.
   *
   * @param local The endpoint to bind.
   * @param events The listener's callbacks.
   * @returns The listener.
   */
  tcpListen(local: IpEndpoint, events: ListenerEvents): Promise<ListenerHandle>;
  /**
   * Connect to a Unix-domain stream socket.
   *
   * @param path The socket path.
   * @param events The stream's callbacks.
   * @returns The connected stream.
   */
  unixConnect(path: string, events: StreamEvents): Promise<StreamHandle>;
  /**
   * Listen on a Unix-domain stream socket.
   *
   * @param path The socket path.
   * @param events The listener's callbacks.
   * @returns The listener.
   */
  unixListen(path: string, events: ListenerEvents): Promise<ListenerHandle>;
  /**
   * Bind a UDP socket.
   *
   * @param options The local endpoint and `reuseAddress`.
   * @param events The socket's callbacks.
   * @returns The bound socket.
   */
  udpBind(options: UdpBindOptions, events: DatagramEvents): Promise<DatagramHandle>;
}

/**
 * The parts of the `node:net` / `node:dgram` API every runtime has, shared by
 * the adapters: the whole Node adapter, Deno's UDP and bound TCP connects, and
 * Bun's `reuseAddress` UDP and bound TCP connects.
 *
 * @module
 */
import * as dgram from "node:dgram";
import * as net from "node:net";
import { unlinkSync } from "node:fs";
import { networkInterfaces } from "node:os";
import process from "node:process";
import { clearTimeout, setImmediate, setTimeout } from "node:timers";
import { getSystemErrorName } from "node:util";
import { socketErrorCode } from "../core/error_codes.ts";
import { type BusinessError, PlatformError, type PlatformName } from "../core/errors.ts";
import type {
  BoundTcpHandle,
  DatagramEvents,
  DatagramHandle,
  IpEndpoint,
  IpFamily,
  ListenerEvents,
  ListenerHandle,
  SocketOption,
  SocketOptionMap,
  StreamEvents,
  StreamHandle,
  TcpConnectOptions,
  UdpBindOptions,
} from "../core/socket/platform.ts";
import { nativeError, notWritten } from "./_errors.ts";
import { SMALL_WRITE } from "./_pending.ts";
import { AcceptRetry } from "./_accept.ts";

/** The size of the chunk small writes are coalesced into. */
const CHUNK = 64 * 1024;

function family(f: unknown): IpFamily {
  return f === "IPv6" || f === 6 ? "IPv6" : "IPv4";
}

/**
 * Wrap a connected `net.Socket` as a stream handle.
 *
 * @param sock The socket (connected).
 * @param events The stream events.
 * @param platform The runtime, for errors.
 * @param ip Whether it is a TCP (not Unix-domain) socket.
 * @returns The handle.
 */
export function wrapNetSocket(
  sock: net.Socket,
  events: StreamEvents,
  platform: PlatformName,
  ip: boolean,
): StreamHandle {
  let failure: BusinessError<unknown> | undefined;
  let closed = false;
  let resolveClosed: () => void = () => {};
  const closedP = new Promise<void>((r) => (resolveClosed = r));
  const applied: Partial<SocketOptionMap> = {};
  sock.on("data", (b: Uint8Array) => events.onData(b));
  sock.on("drain", () => events.onDrain());
  sock.on("error", (e) => {
    failure ??= nativeError(e, "use the socket", platform);
  });
  sock.on("close", () => {
    closed = true;
    events.onClose(failure);
    resolveClosed();
  });
  const localAddress = ip
    ? {
      address: sock.localAddress ?? "",
      port: sock.localPort ?? 0,
      family: family(sock.localFamily),
    }
    : undefined;
  const remoteAddress = ip
    ? {
      address: sock.remoteAddress ?? "",
      port: sock.remotePort ?? 0,
      family: family(sock.remoteFamily),
    }
    : undefined;
  // Small writes after the first one in a turn of the event loop are copied
  // into a chunk, written when full or at `setImmediate`: one `sock.write`
  // (and one syscall) per chunk instead of one per send.
  let chunk: Uint8Array | undefined;
  let fill = 0;
  let recent = false;
  const flushChunk = () => {
    if (fill === 0) return;
    const c = chunk!.subarray(0, fill);
    chunk = undefined;
    fill = 0;
    if (!closed && !sock.destroyed) sock.write(c);
  };
  const turn = () => {
    recent = false;
    flushChunk();
  };
  return {
    localAddress,
    remoteAddress,
    write(bytes, lent) {
      const n = bytes.byteLength;
      if (n < SMALL_WRITE && lent !== "brief") {
        if (!recent) {
          recent = true;
          setImmediate(turn);
          if (!lent) return sock.write(bytes);
          const copy = new Uint8Array(n);
          copy.set(bytes);
          return sock.write(copy);
        }
        if (chunk === undefined || fill + n > CHUNK) {
          flushChunk();
          chunk = new Uint8Array(CHUNK); // `sock.write` keeps the last one until written
        }
        chunk.set(bytes, fill);
        fill += n;
        return !sock.writableNeedDrain;
      }
      flushChunk();
      if (!lent) return sock.write(bytes);
      if (lent === "brief") return sock.write(bytes.slice());
      // The callback runs once libuv wrote the bytes (or with an error when it never will).
      return new Promise<void>((resolve, reject) => {
        sock.write(bytes, (e) => {
          if (e === undefined || e === null) resolve();
          else if (/^ERR_STREAM/.test(String((e as { code?: unknown }).code))) {
            reject(notWritten(failure, platform));
          } else reject(failure ?? nativeError(e, "send data", platform));
        });
      });
    },
    close: () => {
      flushChunk();
      if (!closed) sock.end(() => sock.destroy());
      return closedP;
    },
    // libuv keeps a loop alive while a write request is active, even on an unref'd handle.
    ref: () => void (closed || sock.ref()),
    unref: () => void (closed || sock.unref()),
    setOption<K extends SocketOption>(name: K, value: SocketOptionMap[K]): boolean {
      if (!ip) return false;
      if (name === "noDelay") sock.setNoDelay(value as boolean);
      else if (name === "keepAlive") sock.setKeepAlive(value as boolean);
      else return false;
      applied[name] = value;
      return true;
    },
    getOption<K extends SocketOption>(name: K): SocketOptionMap[K] | undefined {
      return applied[name];
    },
  };
}

function connectNet(
  opts: net.NetConnectOpts,
  events: StreamEvents,
  platform: PlatformName,
  ip: boolean,
  what: string,
): Promise<StreamHandle> {
  return connected(net.connect(opts), events, { platform, ip, what });
}

/** Wrap a connecting `net.Socket` once it connected; destroy it if it fails. */
function connected(
  sock: net.Socket,
  events: StreamEvents,
  o: { platform: PlatformName; ip: boolean; what: string },
): Promise<StreamHandle> {
  return new Promise((resolve, reject) => {
    const onError = (e: unknown) => {
      sock.destroy();
      reject(nativeError(e, `connect to ${o.what}`, o.platform));
    };
    sock.once("error", onError);
    sock.once("connect", () => {
      sock.off("error", onError);
      resolve(wrapNetSocket(sock, events, o.platform, o.ip));
    });
  });
}

/** The parts of libuv's TCP handle (`process.binding("tcp_wrap").TCP`) used here. */
interface TcpWrap {
  bind(address: string, port: number): number;
  bind6(address: string, port: number, flags: number): number;
  getsockname(out: { address?: string; port?: number; family?: string }): number;
  close(cb?: () => void): void;
}

/** `process.binding("tcp_wrap")`, where the runtime has it (Node, Deno; not Bun). */
interface TcpWrapBinding {
  TCP: new (type: number) => TcpWrap;
  constants: { SOCKET: number };
}

let tcpWrapBinding: TcpWrapBinding | null | undefined;

function tcpWrap(): TcpWrapBinding | undefined {
  if (tcpWrapBinding === undefined) {
    tcpWrapBinding = null;
    try {
      const b = (process as unknown as { binding?(name: string): unknown }).binding?.("tcp_wrap");
      const w = b as Partial<TcpWrapBinding> | undefined;
      if (typeof w?.TCP === "function" && typeof w.constants?.SOCKET === "number") {
        tcpWrapBinding = w as TcpWrapBinding;
      }
    } catch { /* not in this runtime */ }
  }
  return tcpWrapBinding ?? undefined;
}

/**
 * Bind a TCP socket before connecting, the way `net.connect({ localPort })`
 * does internally: a libuv TCP handle from `process.binding("tcp_wrap")`,
 * bound now, later given to a `net.Socket` (`manualStart`: no read before it
 * is connected) that connects from it. Where the runtime lacks that binding
 * (Bun), resolves `undefined`. libuv reports `EADDRINUSE` at connect, not here.
 *
 * @param local The endpoint.
 * @param platform The runtime.
 * @returns The bound socket, or `undefined`.
 */
export function bindTcpNet(
  local: IpEndpoint,
  platform: PlatformName,
): Promise<BoundTcpHandle | undefined> {
  const w = tcpWrap();
  if (w === undefined) return Promise.resolve(undefined);
  const what = `bind "${local.address}" port ${local.port}`;
  let h: TcpWrap;
  const out: { address?: string; port?: number; family?: string } = {};
  try {
    h = new w.TCP(w.constants.SOCKET);
    const err = local.family === "IPv6"
      ? h.bind6(local.address, local.port, 0)
      : h.bind(local.address, local.port);
    if (err === 0) h.getsockname(out);
    if (err !== 0) {
      h.close();
      return Promise.reject(nativeError(uvError(err), what, platform));
    }
  } catch (e) {
    return Promise.reject(nativeError(e, what, platform));
  }
  let used = false;
  return Promise.resolve({
    localAddress: {
      address: out.address ?? local.address,
      port: out.port ?? 0,
      family: local.family,
    },
    connect(remote, events) {
      if (used) return Promise.reject(closedError(platform));
      used = true;
      const sock = new net.Socket(
        { handle: h, manualStart: true } as unknown as net.SocketConstructorOpts,
      );
      sock.connect({ host: remote.address, port: remote.port });
      return connected(sock, events, {
        platform,
        ip: true,
        what: `"${remote.address}" port ${remote.port}`,
      });
    },
    close() {
      if (used) return Promise.resolve();
      used = true;
      return new Promise<void>((r) => h.close(() => r()));
    },
  });
}

/** A libuv error number as an error `nativeError` understands. */
function uvError(err: number): { code: string; errno: number; message: string } {
  let code = "UNKNOWN";
  try {
    code = getSystemErrorName(err);
  } catch { /* not an errno */ }
  return { code, errno: -err, message: `${code} (${err})` };
}

function closedError(platform: PlatformName): BusinessError<unknown> {
  return new PlatformError(
    socketErrorCode("EBADF"),
    "Cannot connect: the bound socket was already used or closed",
    { data: { platform } },
  );
}

function listenNet(
  listen: net.ListenOptions,
  events: ListenerEvents,
  platform: PlatformName,
  ip: boolean,
  what: string,
): Promise<ListenerHandle> {
  return new Promise((resolve, reject) => {
    const server = net.createServer((sock) => {
      // The core supplies the events once it has the handle; no data event
      // fires before this callback returns.
      const slot: { ev?: StreamEvents } = {};
      const handle = wrapNetSocket(
        sock,
        {
          onData: (b) => slot.ev?.onData(b),
          onDrain: () => slot.ev?.onDrain(),
          onClose: (e) => slot.ev?.onClose(e),
        },
        platform,
        ip,
      );
      slot.ev = events.onConnection(handle);
    });
    const onError = (e: unknown) => reject(nativeError(e, `listen on ${what}`, platform));
    server.once("error", onError);
    let closing: Promise<void> | undefined;
    let supervisor: { stop(): void; ref(): void; unref(): void } | undefined;
    const close = () =>
      closing ??= new Promise<void>((r) => {
        supervisor?.stop();
        server.close(() => {
          if (!ip && listen.path !== undefined) {
            try {
              unlinkSync(listen.path);
            } catch { /* already gone */ }
          }
          r();
        });
      });
    server.listen({ ...listen, backlog: 511 }, () => {
      server.off("error", onError);
      const a = server.address();
      const localAddress = ip && a !== null && typeof a === "object"
        ? { address: a.address, port: a.port, family: family(a.family) }
        : undefined;
      supervisor = superviseAccepts(server, {
        relisten: { ...listen, port: localAddress?.port, backlog: 511 },
        what,
        platform,
        onDied(error) {
          close();
          events.onError?.(error);
        },
      });
      resolve({
        localAddress,
        ref() {
          server.ref();
          supervisor?.ref();
        },
        unref() {
          server.unref();
          supervisor?.unref();
        },
        close,
      });
    });
  });
}

/** Options of {@linkcode superviseAccepts}. */
export interface SuperviseOptions {
  /** How to listen again after a pause: the bound address and port, or path. */
  relisten: net.ListenOptions;
  /** The listening address, for messages (`"127.0.0.1" port 80`). */
  what: string;
  /** The runtime, for errors. */
  platform: PlatformName;
  /** The listener died (called once): the server is closed. */
  onDied(error: BusinessError<unknown>): void;
}

/**
 * Apply the accept rule of `_accept.ts` to a listening `net.Server`, whose
 * "error" events after listening are failed accepts. libuv skips a client
 * that failed before it was accepted, and when descriptors run out it
 * accepts and closes the waiting clients with a reserve descriptor; it
 * reports `EMFILE` only when that reserve is gone, and then retries in a
 * loop that does not return to the event loop, so the process would spin
 * until descriptors are free, which only the event loop can do. So on a
 * shortage the server stops listening (which ends that loop) and listens
 * again on the same address after the back-off; a client's failure is
 * ignored; a failure of the listening socket, or of listening again, ends it.
 *
 * @param server The listening server.
 * @param options How to listen again, and whom to tell when it died.
 * @returns `stop()` cancels a pending listen (call it before closing the
 *   server); `ref()`/`unref()` apply to the back-off timer.
 */
export function superviseAccepts(
  server: net.Server,
  options: SuperviseOptions,
): { stop(): void; ref(): void; unref(): void } {
  const { what, platform } = options;
  const retry = new AcceptRetry();
  let stopped = false;
  let referenced = true;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const die = (error: BusinessError<unknown>) => {
    if (stopped) return;
    stopped = true;
    if (server.listening) server.close();
    options.onDied(error);
  };
  const listenAgain = () => {
    timer = undefined;
    if (stopped) return;
    const failed = (e: unknown) => die(nativeError(e, `listen again on ${what}`, platform));
    server.once("error", failed);
    server.listen(options.relisten, () => server.off("error", failed));
  };
  server.on("error", (e) => {
    if (stopped || !server.listening) return; // a failed listen again: `failed` has it
    const error = nativeError(e, `accept on ${what}`, platform);
    const delay = retry.failed(error);
    if (delay === undefined) die(error);
    else if (delay > 0) {
      server.close();
      timer = setTimeout(listenAgain, delay);
      if (!referenced) timer.unref();
    }
  });
  server.on("connection", () => retry.succeeded());
  return {
    stop() {
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
    },
    ref() {
      referenced = true;
      timer?.ref();
    },
    unref() {
      referenced = false;
      timer?.unref();
    },
  };
}

/**
 * Empty datagrams a Deno socket sends itself to end a pending receive, so that
 * `ref`/`unref` take effect at once (Deno's `node:dgram` applies them from the
 * next receive on); each is dropped when it arrives.
 */
interface Wakes {
  /** How many are on their way. */
  pending: number;
  /** Where they are sent (and so where they come from): `""` nowhere, `undefined` not known yet. */
  address: string | undefined;
  /** The socket's port. */
  port: number;
}

/**
 * Where a socket bound to `address` can send itself a datagram that never
 * leaves the host: the loopback address for a wildcard bind, the address
 * itself when it is loopback or one of this host's interface addresses;
 * `undefined` otherwise (a multicast or broadcast bind).
 *
 * @param address The bound address.
 * @param family The family.
 * @returns The address, or `undefined`.
 */
function selfAddress(address: string, family: IpFamily): string | undefined {
  if (address === "0.0.0.0" || address === "::") return family === "IPv6" ? "::1" : "127.0.0.1";
  if (address === "::1" || address.startsWith("127.")) return address;
  const D = (globalThis as {
    Deno?: { permissions: { querySync(d: { name: "sys"; kind: string }): { state: string } } };
  }).Deno;
  // Never prompt for a permission: without it, `unref` waits for the next datagram.
  if (D?.permissions.querySync({ name: "sys", kind: "networkInterfaces" }).state !== "granted") {
    return undefined;
  }
  for (const list of Object.values(networkInterfaces())) {
    if (list?.some((i) => i.address === address)) return address;
  }
  return undefined;
}

function wrapDgram(
  s: dgram.Socket,
  o: { platform: PlatformName; nativeBuffers: boolean; wakes: Wakes | undefined },
): DatagramHandle {
  const { platform, nativeBuffers, wakes } = o;
  const a = s.address();
  const applied: Partial<SocketOptionMap> = {};
  let referenced = true;
  let closed = false;
  const setRef = (on: boolean) => {
    if (closed || on === referenced) return;
    referenced = on;
    if (on) s.ref();
    else s.unref();
    if (wakes !== undefined && wakes.pending === 0) {
      wakes.address ??= selfAddress(a.address, family(a.family)) ?? "";
      if (wakes.address === "") return;
      wakes.pending++;
      s.send(new Uint8Array(0), wakes.port, wakes.address, (e) => {
        if (e) wakes.pending--;
      });
    }
  };
  return {
    localAddress: { address: a.address, port: a.port, family: family(a.family) },
    // The callback runs once the datagram was handed to the kernel; the bytes are kept till then.
    send: (bytes, to) =>
      new Promise((resolve, reject) => {
        s.send(bytes, to.port, to.address, (err) => {
          if (err) reject(nativeError(err, `send data to "${to.address}"`, platform));
          else resolve();
        });
      }),
    addMembership: (group, iface) => {
      try {
        s.addMembership(group, iface);
      } catch (e) {
        throw nativeError(e, `add membership of "${group}"`, platform);
      }
    },
    dropMembership: (group, iface) => {
      try {
        s.dropMembership(group, iface);
      } catch (e) {
        throw nativeError(e, `drop membership of "${group}"`, platform);
      }
    },
    ref: () => setRef(true),
    unref: () => setRef(false),
    close: () => {
      closed = true;
      return new Promise<void>((r) => s.close(() => r()));
    },
    setOption<K extends SocketOption>(name: K, value: SocketOptionMap[K]): boolean {
      try {
        switch (name) {
          case "broadcast":
            s.setBroadcast(value as boolean);
            break;
          case "multicastTTL":
            s.setMulticastTTL(value as number);
            break;
          case "multicastLoopback":
            s.setMulticastLoopback(value as boolean);
            break;
          case "receiveBufferSize":
            if (!nativeBuffers) return false;
            s.setRecvBufferSize(value as number);
            break;
          case "sendBufferSize":
            if (!nativeBuffers) return false;
            s.setSendBufferSize(value as number);
            break;
          default:
            return false;
        }
      } catch (e) {
        throw nativeError(e, `set ${name}`, platform);
      }
      applied[name] = value;
      return true;
    },
    getOption<K extends SocketOption>(name: K): SocketOptionMap[K] | undefined {
      if (nativeBuffers && name === "receiveBufferSize") {
        return s.getRecvBufferSize() as SocketOptionMap[K];
      }
      if (nativeBuffers && name === "sendBufferSize") {
        return s.getSendBufferSize() as SocketOptionMap[K];
      }
      return applied[name];
    },
  };
}

/**
 * Bind a `node:dgram` socket.
 *
 * @param options The endpoint and `reuseAddress`.
 * @param events The callbacks.
 * @param platform The runtime.
 * @param nativeBuffers Whether buffer sizes reach the kernel.
 * @returns The handle.
 */
export function bindDgram(
  options: UdpBindOptions,
  events: DatagramEvents,
  platform: PlatformName,
  nativeBuffers: boolean,
): Promise<DatagramHandle> {
  const { local } = options;
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket({
      type: local.family === "IPv6" ? "udp6" : "udp4",
      reuseAddr: options.reuseAddress === true,
    });
    let wakes: Wakes | undefined;
    const onError = (e: unknown) => {
      try {
        s.close();
      } catch { /* not open */ }
      reject(nativeError(e, `bind "${local.address}" port ${local.port}`, platform));
    };
    s.once("error", onError);
    s.on("message", (msg: Uint8Array, r: dgram.RemoteInfo) => {
      if (
        wakes !== undefined && wakes.pending > 0 && msg.byteLength === 0 &&
        r.port === wakes.port && r.address === wakes.address
      ) {
        wakes.pending--;
        return;
      }
      events.onMessage(msg, { address: r.address, port: r.port, family: family(r.family) });
    });
    s.bind(local.port, local.address, () => {
      s.off("error", onError);
      s.on("error", (e) => events.onError?.(nativeError(e, "receive data", platform)));
      if (platform === "deno") wakes = { pending: 0, address: undefined, port: s.address().port };
      resolve(wrapDgram(s, { platform, nativeBuffers, wakes }));
    });
  });
}

/**
 * Open a TCP connection with `node:net`.
 *
 * @param options Remote and optional local endpoint.
 * @param events The callbacks.
 * @param platform The runtime.
 * @returns The stream.
 */
export function connectTcpNet(
  options: TcpConnectOptions,
  events: StreamEvents,
  platform: PlatformName,
): Promise<StreamHandle> {
  const { remote, local } = options;
  return connectNet(
    {
      host: remote.address,
      port: remote.port,
      family: remote.family === "IPv6" ? 6 : 4,
      localAddress: local?.address,
      localPort: local?.port || undefined,
    },
    events,
    platform,
    true,
    `"${remote.address}" port ${remote.port}`,
  );
}

/**
 * Listen for TCP connections with `node:net`.
 *
 * @param local The endpoint.
 * @param events The callbacks.
 * @param platform The runtime.
 * @returns The listener.
 */
export function listenTcpNet(
  local: IpEndpoint,
  events: ListenerEvents,
  platform: PlatformName,
): Promise<ListenerHandle> {
  return listenNet(
    { host: local.address, port: local.port, ipv6Only: local.family === "IPv6" },
    events,
    platform,
    true,
    `"${local.address}" port ${local.port}`,
  );
}

/**
 * Connect to a Unix-domain stream socket with `node:net`.
 *
 * @param path The socket path.
 * @param events The callbacks.
 * @param platform The runtime.
 * @returns The stream.
 */
export function connectUnixNet(
  path: string,
  events: StreamEvents,
  platform: PlatformName,
): Promise<StreamHandle> {
  return connectNet({ path }, events, platform, false, `"${path}"`);
}

/**
 * Listen on a Unix-domain stream socket with `node:net`.
 *
 * @param path The socket path.
 * @param events The callbacks.
 * @param platform The runtime.
 * @returns The listener.
 */
export function listenUnixNet(
  path: string,
  events: ListenerEvents,
  platform: PlatformName,
): Promise<ListenerHandle> {
  return listenNet({ path }, events, platform, false, `"${path}"`);
}

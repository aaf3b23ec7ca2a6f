/**
 * The socket adapter for Bun: `Bun.connect` / `Bun.listen` for TCP and
 * Unix-domain streams, `Bun.udpSocket` for UDP.
 *
 * @module
 */
import { unlinkSync } from "node:fs";
import { setImmediate } from "node:timers";
import { socketErrorCode } from "../../core/error_codes.ts";
import { type BusinessError, PlatformError } from "../../core/errors.ts";
import type {
  DatagramEvents,
  DatagramHandle,
  IpEndpoint,
  IpFamily,
  ListenerEvents,
  ListenerHandle,
  SocketOption,
  SocketOptionMap,
  SocketPlatform,
  StreamEvents,
  StreamHandle,
  UdpBindOptions,
} from "../../core/socket/platform.ts";
import { bindDgram, connectTcpNet } from "../_node_net.ts";
import { nativeError, notWritten } from "../_errors.ts";
import { Pending, SMALL_WRITE } from "../_pending.ts";

/** The per-socket state kept in `socket.data`. */
interface State {
  handle?: StreamHandle;
  events?: StreamEvents;
  drain?: () => void;
  closed?: (error?: BusinessError<unknown>) => void;
  failure?: BusinessError<unknown>;
}

/** The parts of a Bun TCP socket used here. */
interface BunSocket {
  data: State;
  readonly localAddress?: string;
  readonly localPort?: number;
  readonly localFamily?: string;
  readonly remoteAddress?: string;
  readonly remotePort?: number;
  readonly remoteFamily?: string;
  write(data: Uint8Array): number;
  end(): void;
  setNoDelay(noDelay?: boolean): boolean;
  setKeepAlive(enable?: boolean, initialDelay?: number): boolean;
  ref(): void;
  unref(): void;
}

/** Bun's socket handlers. */
interface Handlers {
  open?(s: BunSocket): void;
  data?(s: BunSocket, data: Uint8Array): void;
  drain?(s: BunSocket): void;
  close?(s: BunSocket, error?: unknown): void;
  error?(s: BunSocket, error: unknown): void;
  connectError?(s: BunSocket, error: unknown): void;
}

/** The parts of a Bun TCP listener used here. */
interface BunListener {
  readonly port?: number;
  readonly hostname?: string;
  stop(closeActive?: boolean): void;
  ref(): void;
  unref(): void;
}

/** The parts of a Bun UDP socket used here. */
interface BunUdp {
  readonly address: { address: string; port: number; family: string };
  send(data: Uint8Array, port: number, address: string): boolean;
  close(): void;
  ref(): void;
  unref(): void;
  setBroadcast(on: boolean): boolean;
  setMulticastTTL(ttl: number): number;
  setMulticastLoopback(on: boolean): boolean;
  addMembership(group: string, iface?: string): boolean;
  dropMembership(group: string, iface?: string): boolean;
}

/** The parts of the `Bun` namespace used here. */
interface BunNs {
  connect(
    o: { hostname?: string; port?: number; unix?: string; socket: Handlers; data?: State },
  ): Promise<BunSocket>;
  listen(
    o: { hostname?: string; port?: number; unix?: string; socket: Handlers; data?: State },
  ): BunListener;
  udpSocket(o: {
    hostname?: string;
    port?: number;
    socket: {
      data?(s: BunUdp, data: Uint8Array, port: number, address: string): void;
      drain?(s: BunUdp): void;
      error?(s: BunUdp, error: unknown): void;
    };
  }): Promise<BunUdp>;
}

function bun(): BunNs {
  return (globalThis as unknown as { Bun: BunNs }).Bun;
}

function fam(f: string | undefined, address: string): IpFamily {
  return f === "IPv6" || address.includes(":") ? "IPv6" : "IPv4";
}

const HIGH_WATER = 64 * 1024;
const CHUNK = 64 * 1024;

/**
 * `ref`/`unref` of a Bun socket whose queued bytes keep the process alive:
 * while unref'd, the socket is referenced again as long as `busy()` is true
 * (Bun does not do that for bytes waiting in our queue for `drain`).
 */
class Refs {
  #target: { ref(): void; unref(): void };
  #busy: () => boolean;
  #unrefd = false;
  #held = false; // referenced while unref'd, because of `busy()`

  /**
   * @param target The Bun socket.
   * @param busy Whether bytes are queued.
   */
  constructor(target: { ref(): void; unref(): void }, busy: () => boolean) {
    this.#target = target;
    this.#busy = busy;
  }

  /** Follow `busy()` while unref'd; call after the queue grew or drained. */
  update(): void {
    if (!this.#unrefd) return;
    const on = this.#busy();
    if (on === this.#held) return;
    this.#held = on;
    if (on) this.#target.ref();
    else this.#target.unref();
  }

  /** Keep the process alive again. */
  ref(): void {
    if (!this.#unrefd) return;
    this.#unrefd = false;
    if (!this.#held) this.#target.ref();
    this.#held = false;
  }

  /** Let the process exit, unless bytes are queued. */
  unref(): void {
    if (this.#unrefd) return;
    this.#unrefd = true;
    this.#held = true; // referenced now: `update` lets go unless busy
    this.update();
  }
}

/**
 * Wrap a Bun socket. `Bun` socket writes do not buffer (they return how many
 * bytes the kernel took). A write goes straight to the kernel, except that
 * further small writes in the same turn of the event loop are copied into a
 * 64 KiB chunk, written when full or at `setImmediate` (one syscall instead of
 * one per send). What the kernel does not take waits in the queue for
 * `drain`: copied when small or lent briefly, else kept (lent with a promise).
 */
function wrap(sock: BunSocket, ip: boolean): StreamHandle {
  const st = sock.data;
  const queue: Pending[] = [];
  let open: Pending | undefined; // the last entry while it still takes copies
  let spare: Uint8Array | undefined;
  let queued = 0;
  let kernelFull = false; // a write was short: wait for `drain`
  let blocked = false; // `write` returned false: `onDrain` is owed
  let recent = false; // a small write went out this turn; `turn` is scheduled
  let closing = false;
  let closed = false;
  let resolveClosed: () => void = () => {};
  const closedP = new Promise<void>((r) => (resolveClosed = r));
  const applied: Partial<SocketOptionMap> = {};
  const refs = new Refs(sock, () => queue.length > 0);

  /** Write queued entries until the kernel is full; `true` when all went. */
  const flush = (): boolean => {
    while (queue.length > 0) {
      const p = queue[0];
      if (p === open) open = undefined;
      const c = p.fill === p.bytes.byteLength ? p.bytes : p.bytes.subarray(0, p.fill);
      const n = sock.write(c);
      if (n < 0) return false;
      queued -= n;
      if (n < c.byteLength) {
        p.bytes = c.subarray(n);
        p.fill = p.bytes.byteLength;
        p.pooled = false;
        kernelFull = true;
        return false;
      }
      queue.shift();
      if (p.pooled) spare = p.bytes;
      p.resolve?.();
    }
    kernelFull = false;
    refs.update();
    return true;
  };
  let ended = false;
  const settled = () => {
    if (closing) {
      if (!ended) sock.end();
      ended = true;
    } else if (blocked) {
      blocked = false;
      st.events?.onDrain();
    }
  };
  const turn = () => {
    recent = false;
    if (!kernelFull && !closed && flush()) settled();
  };
  st.drain = () => {
    kernelFull = false;
    if (flush()) settled();
  };
  st.closed = (error) => {
    if (closed) return;
    closed = true;
    open = undefined;
    for (const p of queue.splice(0)) p.reject?.(notWritten(error, "bun"));
    st.events?.onClose(error);
    resolveClosed();
  };
  return {
    localAddress: ip
      ? {
        address: sock.localAddress ?? "",
        port: sock.localPort ?? 0,
        family: fam(sock.localFamily, sock.localAddress ?? ""),
      }
      : undefined,
    remoteAddress: ip
      ? {
        address: sock.remoteAddress ?? "",
        port: sock.remotePort ?? 0,
        family: fam(sock.remoteFamily, sock.remoteAddress ?? ""),
      }
      : undefined,
    write(bytes, lent) {
      if (closed || closing) return true;
      let n = bytes.byteLength;
      const small = n < SMALL_WRITE && lent !== "brief";
      if (queue.length === 0 && !(small && recent)) {
        const w = sock.write(bytes);
        if (small && !recent) {
          recent = true;
          setImmediate(turn);
        }
        if (w >= n || w < 0) return true;
        if (w > 0) bytes = bytes.subarray(w);
        n = bytes.byteLength;
        kernelFull = true;
      }
      if (small) {
        let p = open;
        if (p === undefined || p.fill + n > p.bytes.byteLength) {
          if (p !== undefined && !kernelFull) flush();
          p = open = new Pending(spare ?? new Uint8Array(CHUNK), 0, true);
          spare = undefined;
          queue.push(p);
        }
        p.bytes.set(bytes, p.fill);
        p.fill += n;
        queued += n;
      } else {
        open = undefined;
        const p = new Pending(lent === "brief" ? bytes.slice() : bytes, n, false);
        queue.push(p);
        queued += n;
        if (!kernelFull) flush();
        if (lent === true && queue[queue.length - 1] === p) {
          refs.update();
          return new Promise<void>((resolve, reject) => {
            p.resolve = resolve;
            p.reject = reject;
          });
        }
      }
      refs.update();
      if (queued < HIGH_WATER) return true;
      blocked = true;
      return false;
    },
    close() {
      if (!closed && !closing) {
        closing = true;
        if (!kernelFull && flush()) settled();
      }
      return closedP;
    },
    ref: () => void (closed || refs.ref()),
    unref: () => void (closed || refs.unref()),
    setOption<K extends SocketOption>(name: K, value: SocketOptionMap[K]): boolean {
      if (!ip) return false;
      let ok: boolean;
      if (name === "noDelay") ok = sock.setNoDelay(value as boolean);
      else if (name === "keepAlive") ok = sock.setKeepAlive(value as boolean, 0);
      else return false;
      if (ok) applied[name] = value;
      return ok;
    },
    getOption<K extends SocketOption>(name: K): SocketOptionMap[K] | undefined {
      return applied[name];
    },
  };
}

const handlers: Handlers = {
  data(s, data) {
    s.data.events?.onData(data);
  },
  drain(s) {
    s.data.drain?.();
  },
  error(s, e) {
    s.data.failure ??= nativeError(e, "use the socket", "bun");
  },
  close(s, e) {
    if (e !== undefined && e !== null) s.data.failure ??= nativeError(e, "use the socket", "bun");
    s.data.closed?.(s.data.failure);
  },
};

async function connect(
  o: { hostname?: string; port?: number; unix?: string },
  events: StreamEvents,
  ip: boolean,
  what: string,
): Promise<StreamHandle> {
  const state: State = { events };
  let sock: BunSocket;
  try {
    sock = await bun().connect({ ...o, data: state, socket: { ...handlers, connectError() {} } });
  } catch (e) {
    throw nativeError(e, `connect to ${what}`, "bun");
  }
  sock.data = state;
  const h = wrap(sock, ip);
  state.handle = h;
  return h;
}

function listen(
  o: { hostname?: string; port?: number; unix?: string },
  events: ListenerEvents,
  ip: boolean,
  what: string,
): Promise<ListenerHandle> {
  let listener: BunListener;
  try {
    listener = bun().listen({
      ...o,
      socket: {
        ...handlers,
        open(s) {
          s.data = {};
          const h = wrap(s, ip);
          s.data.handle = h;
          s.data.events = events.onConnection(h);
        },
      },
    });
  } catch (e) {
    return Promise.reject(nativeError(e, `listen on ${what}`, "bun"));
  }
  const local: IpEndpoint | undefined = ip
    ? {
      address: listener.hostname ?? o.hostname ?? "",
      port: listener.port ?? 0,
      family: fam(undefined, o.hostname ?? ""),
    }
    : undefined;
  let stopped = false;
  return Promise.resolve({
    localAddress: local,
    ref: () => void (stopped || listener.ref()),
    unref: () => void (stopped || listener.unref()),
    close() {
      if (!stopped) {
        stopped = true;
        listener.stop(false);
        if (o.unix !== undefined) {
          try {
            unlinkSync(o.unix);
          } catch { /* already gone */ }
        }
      }
      return Promise.resolve();
    },
  });
}

/** A datagram waiting for `drain`. */
interface QueuedDatagram {
  bytes: Uint8Array;
  port: number;
  address: string;
  resolve: () => void;
  reject: (e: BusinessError<unknown>) => void;
}

/**
 * Bind a `Bun.udpSocket`. A send goes to the kernel at once (`undefined`);
 * when the kernel does not take it (`send` returns `false`) it waits in a
 * queue, in order with later sends, for `drain`.
 */
async function udpBind(options: UdpBindOptions, events: DatagramEvents): Promise<DatagramHandle> {
  // Bun.udpSocket cannot share a port (no SO_REUSEADDR); Bun's node:dgram can,
  // and several devices on one host share the discovery port.
  if (options.reuseAddress) return bindDgram(options, events, "bun", true);
  const { local } = options;
  const queue: QueuedDatagram[] = [];
  let flush = () => {};
  let s: BunUdp;
  try {
    s = await bun().udpSocket({
      hostname: local.address,
      port: local.port,
      socket: {
        data(_s, data, port, address) {
          events.onMessage(data, { address, port, family: fam(undefined, address) });
        },
        drain: () => flush(),
        error(_s, e) {
          events.onError?.(nativeError(e, "receive data", "bun"));
        },
      },
    });
  } catch (e) {
    throw nativeError(e, `bind "${local.address}" port ${local.port}`, "bun");
  }
  const applied: Partial<SocketOptionMap> = {};
  const a = s.address;
  let closed = false;
  const refs = new Refs(s, () => queue.length > 0);
  const failed = (e: unknown, port: number, address: string) =>
    nativeError(e, `send data to "${address}" port ${port}`, "bun");
  flush = () => {
    while (queue.length > 0) {
      const q = queue[0];
      try {
        if (!s.send(q.bytes, q.port, q.address)) break;
        queue.shift();
        q.resolve();
      } catch (e) {
        queue.shift();
        q.reject(failed(e, q.port, q.address));
      }
    }
    refs.update();
  };
  const call = <T>(what: string, f: () => T): T => {
    try {
      return f();
    } catch (e) {
      throw nativeError(e, what, "bun");
    }
  };
  return {
    localAddress: { address: a.address, port: a.port, family: fam(a.family, a.address) },
    send(bytes, to) {
      const { port, address } = to;
      if (queue.length === 0) {
        try {
          if (s.send(bytes, port, address)) return undefined;
        } catch (e) {
          return Promise.reject(failed(e, port, address));
        }
      }
      return new Promise<void>((resolve, reject) => {
        queue.push({ bytes, port, address, resolve, reject });
        refs.update();
      });
    },
    addMembership: (g, i) => void call(`add membership of "${g}"`, () => s.addMembership(g, i)),
    dropMembership: (g, i) => void call(`drop membership of "${g}"`, () => s.dropMembership(g, i)),
    ref: () => void (closed || refs.ref()),
    unref: () => void (closed || refs.unref()),
    close() {
      if (closed) return Promise.resolve();
      closed = true;
      s.close();
      for (const q of queue.splice(0)) {
        q.reject(
          new PlatformError(
            socketErrorCode("EBADF"),
            `Cannot send data to "${q.address}" port ${q.port}: the socket closed first`,
            { data: { platform: "bun" } },
          ),
        );
      }
      return Promise.resolve();
    },
    setOption<K extends SocketOption>(name: K, value: SocketOptionMap[K]): boolean {
      const what = `set ${name}`;
      if (name === "broadcast") call(what, () => s.setBroadcast(value as boolean));
      else if (name === "multicastTTL") call(what, () => s.setMulticastTTL(value as number));
      else if (name === "multicastLoopback") {
        call(what, () => s.setMulticastLoopback(value as boolean));
      } else return false;
      applied[name] = value;
      return true;
    },
    getOption<K extends SocketOption>(name: K): SocketOptionMap[K] | undefined {
      return applied[name];
    },
  };
}

/** The Bun adapter. */
export const bunSocketPlatform: SocketPlatform = {
  name: "bun",
  tcpConnect: (options, events) => {
    const { remote, local } = options;
    // Bun.connect cannot bind a local address first: node:net can.
    if (local !== undefined) return connectTcpNet(options, events, "bun");
    return connect(
      { hostname: remote.address, port: remote.port },
      events,
      true,
      `"${remote.address}" port ${remote.port}`,
    );
  },
  tcpListen: (local, events) =>
    listen(
      { hostname: local.address, port: local.port },
      events,
      true,
      `"${local.address}" port ${local.port}`,
    ),
  unixConnect: (path, events) => connect({ unix: path }, events, false, `"${path}"`),
  unixListen: (path, events) => listen({ unix: path }, events, false, `"${path}"`),
  udpBind,
};

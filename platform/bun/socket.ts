/**
 * The socket adapter for Bun: `Bun.connect` / `Bun.listen` for TCP and
 * Unix-domain streams, `Bun.udpSocket` for UDP.
 *
 * @module
 */
import { unlinkSync } from "node:fs";
import { setImmediate } from "node:timers";
import type { BusinessError } from "../../core/errors.ts";
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
import { connectTcpNet, nativeError, notWritten, SMALL_WRITE } from "../node/socket.ts";
import { Pending } from "../_pending.ts";

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
}

/** The parts of a Bun UDP socket used here. */
interface BunUdp {
  readonly address: { address: string; port: number; family: string };
  send(data: Uint8Array, port: number, address: string): boolean;
  close(): void;
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
 * Wrap a Bun socket. `Bun` socket writes do not buffer (they return how many
 * bytes the kernel took). A write goes straight to the kernel, except that
 * further small writes in the same turn of the event loop are copied into a
 * 64 KiB chunk, written when full or at `setImmediate` (one syscall instead of
 * one per send). What the kernel does not take waits in the queue for
 * `drain`: copied when small, kept (lent) with a promise when large.
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
      const small = n < SMALL_WRITE;
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
        const p = new Pending(bytes, n, false);
        queue.push(p);
        queued += n;
        if (!kernelFull) flush();
        if (lent && queue[queue.length - 1] === p) {
          return new Promise<void>((resolve, reject) => {
            p.resolve = resolve;
            p.reject = reject;
          });
        }
      }
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

async function udpBind(options: UdpBindOptions, events: DatagramEvents): Promise<DatagramHandle> {
  const { local } = options;
  const waiting: Array<() => void> = [];
  let s: BunUdp;
  try {
    s = await bun().udpSocket({
      hostname: local.address,
      port: local.port,
      socket: {
        data(_s, data, port, address) {
          events.onMessage(data, { address, port, family: fam(undefined, address) });
        },
        drain() {
          for (const w of waiting.splice(0)) w();
        },
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
      // `send` returns `false` when the kernel did not take the datagram: retry at `drain`.
      try {
        if (s.send(bytes, to.port, to.address)) return undefined;
      } catch (e) {
        return Promise.reject(
          nativeError(e, `send data to "${to.address}" port ${to.port}`, "bun"),
        );
      }
      return (async () => {
        const what = `send data to "${to.address}" port ${to.port}`;
        do await new Promise<void>((r) => waiting.push(r)); while (
          !call(what, () => s.send(bytes, to.port, to.address))
        );
      })();
    },
    addMembership: (g, i) => void call(`add membership of "${g}"`, () => s.addMembership(g, i)),
    dropMembership: (g, i) => void call(`drop membership of "${g}"`, () => s.dropMembership(g, i)),
    close() {
      s.close();
      for (const w of waiting.splice(0)) w();
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

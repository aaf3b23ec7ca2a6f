/**
 * The socket adapter for Bun: `Bun.connect` / `Bun.listen` for TCP and
 * Unix-domain streams, `Bun.udpSocket` for UDP.
 *
 * @module
 */
import { unlinkSync } from "node:fs";
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
import { connectTcpNet, nativeError } from "../node/socket.ts";

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

/**
 * Wrap a Bun socket. `Bun` socket writes do not buffer (they return how many
 * bytes the kernel took), so the unsent rest waits in a queue flushed on
 * `drain`.
 */
function wrap(sock: BunSocket, ip: boolean): StreamHandle {
  const st = sock.data;
  const queue: Uint8Array[] = [];
  let queued = 0;
  let closing = false;
  let closed = false;
  let resolveClosed: () => void = () => {};
  const closedP = new Promise<void>((r) => (resolveClosed = r));
  const applied: Partial<SocketOptionMap> = {};
  st.drain = () => {
    while (queue.length > 0) {
      const c = queue[0];
      const n = sock.write(c);
      if (n < 0) return;
      queued -= Math.max(n, 0);
      if (n < c.byteLength) {
        queue[0] = c.subarray(n);
        return;
      }
      queue.shift();
    }
    if (closing) sock.end();
    else st.events?.onDrain();
  };
  st.closed = (error) => {
    if (closed) return;
    closed = true;
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
    write(bytes) {
      if (closed || closing) return true;
      if (queue.length === 0) {
        const n = sock.write(bytes);
        if (n >= bytes.byteLength || n < 0) return true;
        bytes = bytes.subarray(n);
      }
      queue.push(bytes);
      queued += bytes.byteLength;
      return queued < HIGH_WATER;
    },
    close() {
      if (!closed && !closing) {
        closing = true;
        if (queue.length === 0) sock.end();
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
    async send(bytes, to) {
      const what = `send data to "${to.address}" port ${to.port}`;
      while (!call(what, () => s.send(bytes, to.port, to.address))) {
        await new Promise<void>((r) => waiting.push(r));
      }
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

/**
 * The socket adapter for Deno: `Deno.connect` / `Deno.listen` for TCP and
 * Unix-domain streams; `node:dgram` for UDP (`Deno.listenDatagram` still needs
 * `--unstable-net`). A TCP connect from a bound local address uses `node:net`,
 * because `Deno.connect` cannot bind first.
 *
 * @module
 */
import type { BusinessError } from "../../core/errors.ts";
import type {
  IpEndpoint,
  ListenerEvents,
  ListenerHandle,
  SocketOption,
  SocketOptionMap,
  SocketPlatform,
  StreamEvents,
  StreamHandle,
} from "../../core/socket/platform.ts";
import { bindDgram, bindTcpNet, connectTcpNet } from "../_node_net.ts";
import { nativeError, notWritten } from "../_errors.ts";
import { Pending, SMALL_WRITE } from "../_pending.ts";
import { AcceptLoop } from "../_accept.ts";

/** The parts of `Deno.Addr` used here. */
interface DenoAddr {
  transport: string;
  hostname?: string;
  port?: number;
  path?: string;
}

/** The parts of `Deno.Conn` used here. */
interface DenoConn {
  readonly localAddr: DenoAddr;
  readonly remoteAddr: DenoAddr;
  read(p: Uint8Array): Promise<number | null>;
  write(p: Uint8Array): Promise<number>;
  close(): void;
  ref(): void;
  unref(): void;
  setNoDelay?(noDelay?: boolean): void;
  setKeepAlive?(keepAlive?: boolean): void;
}

/** The parts of `Deno.Listener` used here. */
interface DenoListener {
  readonly addr: DenoAddr;
  accept(): Promise<DenoConn>;
  close(): void;
  ref(): void;
  unref(): void;
}

/** The parts of the `Deno` namespace used here. */
interface DenoNs {
  connect(o: { hostname?: string; port?: number; transport?: string; path?: string }): Promise<
    DenoConn
  >;
  listen(o: { hostname?: string; port?: number; transport?: string; path?: string }): DenoListener;
}

function deno(): DenoNs {
  return (globalThis as unknown as { Deno: DenoNs }).Deno;
}

function endpoint(a: DenoAddr): IpEndpoint | undefined {
  if (a.transport !== "tcp") return undefined;
  const h = a.hostname ?? "";
  return { address: h, port: a.port ?? 0, family: h.includes(":") ? "IPv6" : "IPv4" };
}

const HIGH_WATER = 512 * 1024;
const CHUNK = 64 * 1024;
const SPARE_CHUNKS = 4;
const READ_SIZE = 64 * 1024;

/**
 * Wrap a `Deno.Conn`: a read loop, and a write queue. Small writes are copied
 * into a reusable 64 KiB chunk that one `conn.write` sends while the next
 * chunk fills; large writes go to `conn.write` at once when nothing else is
 * queued or in flight, else are queued without a copy; lent ones settle when
 * the `conn.write` covering them completed. Reports backpressure above 512 KiB.
 *
 * @param conn The connection.
 * @param events The callbacks.
 * @returns The handle.
 */
function wrapConn(conn: DenoConn, events: () => StreamEvents): StreamHandle {
  const queue: Pending[] = [];
  const spare: Uint8Array[] = [];
  let open: Pending | undefined; // the last entry while it still takes copies
  let queued = 0;
  let pumping = false;
  let blocked = false;
  let closing = false;
  let closed = false;
  let failure: BusinessError<unknown> | undefined;
  let flushed: Array<() => void> = [];
  let resolveClosed: () => void = () => {};
  const closedP = new Promise<void>((r) => (resolveClosed = r));
  const applied: Partial<SocketOptionMap> = {};

  const finish = () => {
    if (closed) return;
    closed = true;
    try {
      conn.close();
    } catch { /* already closed */ }
    open = undefined;
    for (const p of queue.splice(0)) p.reject?.(notWritten(failure, "deno"));
    events().onClose(failure);
    resolveClosed();
  };

  const wakeFlushed = () => {
    const fs = flushed;
    flushed = [];
    for (const f of fs) f();
  };

  /** The write in flight ended (`n` bytes written): drain, then go on with the queue. */
  const wrote = (n: number) => {
    queued -= n;
    pumping = false;
    // Restart the pump before telling anyone about the drain: a write made
    // from onDrain must queue behind what is already queued.
    if (queue.length > 0 && !closed) pump();
    else wakeFlushed();
    if (blocked && queued < HIGH_WATER) {
      blocked = false;
      events().onDrain();
    }
  };

  /**
   * Write large bytes while nothing is queued or in flight, without a queue
   * entry or a pump: one `conn.write` (more only when it was short), whose
   * settling settles the returned promise.
   */
  const direct = (bytes: Uint8Array, total: number): Promise<void> =>
    conn.write(bytes).then(
      (w) => {
        if (w < bytes.byteLength) return direct(bytes.subarray(w), total);
        wrote(total);
      },
      (e) => {
        failure ??= nativeError(e, "send data", "deno");
        pumping = false;
        wakeFlushed();
        finish();
        throw notWritten(failure, "deno");
      },
    );

  const pump = async () => {
    pumping = true;
    try {
      while (queue.length > 0 && !closed) {
        const p = queue[0];
        if (p === open) open = undefined;
        const n = p.fill;
        const bytes = n === p.bytes.byteLength ? p.bytes : p.bytes.subarray(0, n);
        let off = await conn.write(bytes);
        while (off < n) off += await conn.write(bytes.subarray(off));
        queue.shift();
        queued -= n;
        if (p.pooled && spare.length < SPARE_CHUNKS) spare.push(p.bytes);
        p.resolve?.();
        if (blocked && queued < HIGH_WATER) {
          blocked = false;
          events().onDrain();
        }
      }
    } catch (e) {
      failure ??= nativeError(e, "send data", "deno");
      finish();
    } finally {
      pumping = false;
      wakeFlushed();
    }
  };

  const untilFlushed = () => new Promise<void>((r) => flushed.push(r));

  (async () => {
    try {
      const buf = new Uint8Array(READ_SIZE);
      while (!closed) {
        const n = await conn.read(buf);
        if (n === null) break;
        events().onData(buf.slice(0, n));
      }
    } catch (e) {
      if (!closing && !closed) failure ??= nativeError(e, "receive data", "deno");
    }
    if (pumping && !failure) await untilFlushed();
    finish();
  })();

  return {
    localAddress: endpoint(conn.localAddr),
    remoteAddress: endpoint(conn.remoteAddr),
    write(bytes, lent) {
      if (closed || closing) return true;
      const n = bytes.byteLength;
      if (n === 0) return !blocked;
      const brief = lent === "brief";
      if (brief) {
        // Every write is asynchronous here: keep a copy, sent without delay.
        bytes = bytes.slice();
        lent = false;
      }
      if (n < SMALL_WRITE && !brief) {
        let p = open;
        if (p === undefined || p.fill + n > p.bytes.byteLength) {
          p = open = new Pending(spare.pop() ?? new Uint8Array(CHUNK), 0, true);
          queue.push(p);
        }
        p.bytes.set(bytes, p.fill);
        p.fill += n;
      } else if (!pumping && queue.length === 0) {
        // Nothing queued and nothing in flight: no write can overtake these bytes.
        pumping = true;
        queued += n;
        if (queued >= HIGH_WATER) blocked = true;
        const done = direct(bytes, n);
        if (lent) return done;
        done.catch(() => {});
        return !blocked;
      } else {
        open = undefined;
        const p = new Pending(bytes, n, false);
        queue.push(p);
        if (lent) {
          queued += n;
          const done = new Promise<void>((resolve, reject) => {
            p.resolve = resolve;
            p.reject = reject;
          });
          if (!pumping) pump();
          if (queued >= HIGH_WATER) blocked = true;
          return done;
        }
      }
      queued += n;
      if (!pumping) pump();
      if (queued >= HIGH_WATER) blocked = true;
      return !blocked;
    },
    async close() {
      if (closed) return closedP;
      closing = true;
      if (pumping) await untilFlushed();
      finish();
      return closedP;
    },
    // Deno's `unref` covers the pending read; a `conn.write` in flight keeps the process alive.
    ref: () => conn.ref(),
    unref: () => conn.unref(),
    setOption<K extends SocketOption>(name: K, value: SocketOptionMap[K]): boolean {
      if (name === "noDelay" && conn.setNoDelay) conn.setNoDelay(value as boolean);
      else if (name === "keepAlive" && conn.setKeepAlive) conn.setKeepAlive(value as boolean);
      else return false;
      applied[name] = value;
      return true;
    },
    getOption<K extends SocketOption>(name: K): SocketOptionMap[K] | undefined {
      return applied[name];
    },
  };
}

async function connect(
  o: { hostname?: string; port?: number; transport: string; path?: string },
  events: StreamEvents,
  what: string,
): Promise<StreamHandle> {
  let conn: DenoConn;
  try {
    conn = await deno().connect(o);
  } catch (e) {
    throw nativeError(e, `connect to ${what}`, "deno");
  }
  return wrapConn(conn, () => events);
}

/**
 * Deno (2.9) sets up its signal handling the first time anything in the
 * process asks for a signal, which Deno itself does on its own at some later
 * moment, and panics when descriptors are exhausted then (it unwraps the
 * socket pair it makes). A listener can meet exhausted descriptors (a flood
 * of connections): ask for a signal once, before, and let it go.
 */
let signalsReady = false;
function readySignals(): void {
  if (signalsReady) return;
  signalsReady = true;
  const d = (globalThis as unknown as {
    Deno: {
      addSignalListener(s: string, f: () => void): void;
      removeSignalListener(s: string, f: () => void): void;
    };
  }).Deno;
  const ignore = () => {};
  try {
    // SIGURG is ignored by default: listening to it changes nothing.
    d.addSignalListener("SIGURG", ignore);
    d.removeSignalListener("SIGURG", ignore);
  } catch { /* no signals here (e.g. Windows) */ }
}

function listen(
  o: { hostname?: string; port?: number; transport: string; path?: string },
  events: ListenerEvents,
  what: string,
): Promise<ListenerHandle> {
  readySignals();
  let listener: DenoListener;
  try {
    listener = deno().listen(o);
  } catch (e) {
    return Promise.reject(nativeError(e, `listen on ${what}`, "deno"));
  }
  let stopped = false;
  const stop = () => {
    stopped = true;
    try {
      listener.close();
    } catch { /* already closed */ }
  };
  // `accept()` rejects for a client that reset before it was accepted (Deno
  // reads its peer address and gets ENOTCONN) and when descriptors run out:
  // the loop goes on (see `_accept.ts`); it ends only when the socket failed.
  const loop = new AcceptLoop<DenoConn>({
    accept: () => listener.accept(),
    onConnection(conn) {
      const slot: { ev?: StreamEvents } = {};
      const handle = wrapConn(conn, () => slot.ev!);
      slot.ev = events.onConnection(handle);
    },
    toError: (e) => nativeError(e, `accept on ${what}`, "deno"),
    onDied(error) {
      stop();
      events.onError?.(error);
    },
  });
  return Promise.resolve({
    localAddress: endpoint(listener.addr),
    ref() {
      if (stopped) return;
      listener.ref();
      loop.ref();
    },
    unref() {
      if (stopped) return;
      listener.unref();
      loop.unref();
    },
    async close() {
      if (!stopped) {
        stop();
        loop.stop();
      }
      await loop.done;
    },
  });
}

/** The Deno adapter. */
export const denoSocketPlatform: SocketPlatform = {
  name: "deno",
  tcpConnect: (options, events) => {
    const { remote, local } = options;
    if (local !== undefined) return connectTcpNet(options, events, "deno");
    return connect(
      { hostname: remote.address, port: remote.port, transport: "tcp" },
      events,
      `"${remote.address}" port ${remote.port}`,
    );
  },
  // Deno.connect cannot bind first: Deno's `node:net` (and its `tcp_wrap`) can.
  tcpBind: (local) => bindTcpNet(local, "deno"),
  tcpListen: (local, events) =>
    listen(
      { hostname: local.address, port: local.port, transport: "tcp" },
      events,
      `"${local.address}" port ${local.port}`,
    ),
  unixConnect: (path, events) => connect({ path, transport: "unix" }, events, `"${path}"`),
  unixListen: (path, events) => listen({ path, transport: "unix" }, events, `"${path}"`),
  udpBind: (options, events) => bindDgram(options, events, "deno", false),
};

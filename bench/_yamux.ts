/**
 * `@chainsafe/libp2p-yamux` over a `node:net` socket, for the link benchmark:
 * the smallest stand-in for libp2p's MultiaddrConnection that the muxer
 * uses (`message`, `drain` and `close` events, `send`, `abort`, `close`,
 * `direction`, `log`). `send` writes each chunk of a frame with
 * `socket.write`, as `@libp2p/tcp` does.
 *
 * @module
 */
import type * as net from "node:net";
import { yamux } from "@chainsafe/libp2p-yamux";

type Factory = ReturnType<ReturnType<typeof yamux>>;
type MaConn = Parameters<Factory["createStreamMuxer"]>[0];
/** A yamux session. */
export type Muxer = ReturnType<Factory["createStreamMuxer"]>;
/** A yamux stream. */
export type YamuxStream = Awaited<ReturnType<Muxer["createStream"]>>;

interface Log {
  (...args: unknown[]): void;
  enabled: boolean;
  trace(...args: unknown[]): void;
  error(...args: unknown[]): void;
  newScope(name: string): Log;
}

function silentLog(): Log {
  const log = (() => {}) as unknown as Log;
  log.enabled = false;
  log.trace = () => {};
  log.error = () => {};
  log.newScope = () => log;
  return log;
}

class MessageEvent extends Event {
  constructor(readonly data: Uint8Array) {
    super("message");
  }
}

/** A node:net socket seen as a libp2p MultiaddrConnection (what the muxer uses of it). */
class SocketConn extends EventTarget {
  readonly log: Log = silentLog();
  readonly direction: "inbound" | "outbound";
  status = "open";
  #socket: net.Socket;

  constructor(socket: net.Socket, direction: "inbound" | "outbound") {
    super();
    this.#socket = socket;
    this.direction = direction;
    socket.setNoDelay(true);
    socket.on("data", (b: Uint8Array) => this.dispatchEvent(new MessageEvent(b)));
    socket.on("drain", () => this.dispatchEvent(new Event("drain")));
    socket.on("close", () => {
      this.status = "closed";
      this.dispatchEvent(new Event("close"));
    });
    socket.on("error", () => {});
  }

  send(data: Uint8Array | Iterable<Uint8Array>): boolean {
    if (data instanceof Uint8Array) return this.#socket.write(data);
    let more = true;
    for (const chunk of data) more = this.#socket.write(chunk);
    return more;
  }

  abort(): void {
    this.#socket.destroy();
  }

  close(): Promise<void> {
    this.#socket.destroy();
    return Promise.resolve();
  }
}

/**
 * Run a yamux session over a connected socket.
 *
 * @param socket The socket.
 * @param client Whether this side dialled (odd stream ids).
 * @returns The session.
 */
export function yamuxOver(socket: net.Socket, client: boolean): Muxer {
  const conn = new SocketConn(socket, client ? "outbound" : "inbound");
  return yamux({ enableKeepAlive: false, maxInboundStreams: 10_000, maxOutboundStreams: 10_000 })()
    .createStreamMuxer(conn as unknown as MaConn);
}

/**
 * Bytes in a yamux `message` event's data.
 *
 * @param evt The event.
 * @returns Its length.
 */
export function messageBytes(evt: Event): number {
  return (evt as unknown as { data: { byteLength: number } }).data.byteLength;
}

/**
 * Wait until a stream may take more data (its `drain` event) or closes.
 * (`stream.onDrain()` of @libp2p/utils 7.4 resolves at once after the first
 * drain: it never forgets its settled promise.)
 *
 * @param s The stream.
 * @returns When the stream drained or closed.
 */
export function drained(s: YamuxStream): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      s.removeEventListener("drain", done);
      s.removeEventListener("close", done);
      resolve();
    };
    s.addEventListener("drain", done);
    s.addEventListener("close", done);
  });
}

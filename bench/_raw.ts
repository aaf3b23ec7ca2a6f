/**
 * The runtime's own TCP API with nothing on top, as the baseline of the link
 * benchmark: `Deno.connect` / `Deno.listen`, `Bun.connect` / `Bun.listen`,
 * `node:net` on Node. One shape for the three:
 *
 * - `write` hands bytes to the kernel the plain way for that API (Deno: one
 *   awaited `conn.write` per call; Bun: `socket.write`, waiting for `drain`
 *   after a short write; Node: `socket.write`, waiting for `drain` when it
 *   says so) and returns a promise only when the caller has to wait.
 * - Received bytes go to `onData`; a returned promise pauses reading.
 *
 * @module
 */
import * as net from "node:net";
import { RUNTIME } from "../tests/harness/env.ts";

/** A connected TCP socket. */
export interface RawSocket {
  /**
   * Send bytes.
   *
   * @returns A promise when the caller must wait before the next write.
   */
  write(bytes: Uint8Array): Promise<void> | void;
  /** Close. */
  close(): void;
}

/** Receives a socket's bytes (valid only during the call). */
export type OnData = (bytes: Uint8Array) => void | Promise<void>;

/** A listening socket. */
export interface RawListener {
  /** Its port on 127.0.0.1. */
  port: number;
  /** Stop listening. */
  close(): void;
}

/** What the baseline is called in the results. */
export const RAW_NAME: string = { deno: "Deno.connect", bun: "Bun.connect", node: "node:net" }[
  RUNTIME
];

interface DenoConn {
  read(p: Uint8Array): Promise<number | null>;
  write(p: Uint8Array): Promise<number>;
  setNoDelay(on: boolean): void;
  close(): void;
}
interface DenoNs {
  connect(o: { hostname: string; port: number }): Promise<DenoConn>;
  listen(o: { hostname: string; port: number }): AsyncIterable<DenoConn> & {
    addr: { port: number };
    close(): void;
  };
}
interface BunSocket {
  write(b: Uint8Array): number;
  setNoDelay?(on: boolean): void;
  end(): void;
  data: { wake?: () => void; onData?: OnData };
}
interface BunNs {
  connect(o: unknown): Promise<BunSocket>;
  listen(o: unknown): { port: number; stop(force?: boolean): void };
}

const g = globalThis as unknown as { Deno: DenoNs; Bun: BunNs };

function denoSocket(conn: DenoConn, onData: OnData): RawSocket {
  conn.setNoDelay(true);
  (async () => {
    const buf = new Uint8Array(64 * 1024);
    try {
      for (;;) {
        const n = await conn.read(buf);
        if (n === null) break;
        const p = onData(buf.subarray(0, n));
        if (p) await p;
      }
    } catch { /* closed */ }
  })();
  return {
    write: async (bytes) => {
      let off = await conn.write(bytes);
      while (off < bytes.length) off += await conn.write(bytes.subarray(off));
    },
    close: () => {
      try {
        conn.close();
      } catch { /* already closed */ }
    },
  };
}

function bunSocket(s: BunSocket): RawSocket {
  s.setNoDelay?.(true);
  return {
    write(bytes) {
      const off = s.write(bytes);
      if (off === bytes.length) return;
      if (off < 0) throw new Error("socket closed");
      // The caller may reuse `bytes` once this returns: keep the rest.
      let rest = bytes.slice(off);
      return (async () => {
        while (rest.length > 0) {
          await new Promise<void>((r) => (s.data.wake = r));
          const n = s.write(rest);
          if (n < 0) throw new Error("socket closed");
          rest = rest.subarray(n);
        }
      })();
    },
    close: () => s.end(),
  };
}

const bunHandlers = {
  data(s: BunSocket, b: Uint8Array) {
    void s.data.onData?.(b);
  },
  drain(s: BunSocket) {
    const w = s.data.wake;
    s.data.wake = undefined;
    w?.();
  },
  close() {},
  error() {},
};

function nodeSocket(s: net.Socket, onData: OnData): RawSocket {
  s.setNoDelay(true);
  s.on("data", (b: Uint8Array) => {
    const p = onData(b);
    if (p) {
      s.pause();
      p.then(() => s.resume());
    }
  });
  s.on("error", () => {});
  return {
    write(bytes) {
      if (!s.write(bytes)) return new Promise<void>((r) => s.once("drain", () => r()));
    },
    close: () => s.destroy(),
  };
}

/**
 * Connect to 127.0.0.1:`port`.
 *
 * @param port The port.
 * @param onData Receives the bytes.
 * @returns The socket.
 */
export async function rawConnect(port: number, onData: OnData): Promise<RawSocket> {
  if (RUNTIME === "deno") {
    return denoSocket(await g.Deno.connect({ hostname: "127.0.0.1", port }), onData);
  }
  if (RUNTIME === "bun") {
    const s = await g.Bun.connect({
      hostname: "127.0.0.1",
      port,
      data: { onData },
      socket: bunHandlers,
    });
    return bunSocket(s);
  }
  const s = net.connect({ host: "127.0.0.1", port });
  await new Promise((r) => s.once("connect", r));
  return nodeSocket(s, onData);
}

/**
 * Listen on 127.0.0.1, an ephemeral port.
 *
 * @param onConnection Gets each accepted socket, returns its data handler.
 * @returns The listener.
 */
export async function rawListen(onConnection: (s: RawSocket) => OnData): Promise<RawListener> {
  if (RUNTIME === "deno") {
    const l = g.Deno.listen({ hostname: "127.0.0.1", port: 0 });
    (async () => {
      try {
        for await (const conn of l) {
          const ref: { onData: OnData } = { onData: () => {} };
          const s = denoSocket(conn, (b) => ref.onData(b));
          ref.onData = onConnection(s);
        }
      } catch { /* closed */ }
    })();
    return { port: l.addr.port, close: () => l.close() };
  }
  if (RUNTIME === "bun") {
    const l = g.Bun.listen({
      hostname: "127.0.0.1",
      port: 0,
      socket: {
        ...bunHandlers,
        open(s: BunSocket) {
          s.data = {};
          s.data.onData = onConnection(bunSocket(s));
        },
      },
    });
    return { port: l.port, close: () => l.stop(true) };
  }
  const server = net.createServer((s) => {
    const ref: { onData: OnData } = { onData: () => {} };
    const raw = nodeSocket(s, (b) => ref.onData(b));
    ref.onData = onConnection(raw);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  return { port: (server.address() as net.AddressInfo).port, close: () => server.close() };
}

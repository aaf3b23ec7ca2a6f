/**
 * The socket conformance suite: the same tests for every platform adapter,
 * over real loopback sockets.
 *
 * @module
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type {
  DatagramHandle,
  ListenerHandle,
  SocketPlatform,
  StreamEvents,
  StreamHandle,
} from "../../core/socket/platform.ts";
import { type Proc, run, runtimeCommand, waitFor } from "../_proc.ts";
import type { BusinessError } from "../../core/errors.ts";
import {
  constructLocalSocketInstance,
  constructLocalSocketServerInstance,
  constructMulticastSocketInstance,
  constructTCPSocketInstance,
  constructTCPSocketServerInstance,
  constructUDPSocketInstance,
  type LocalSocketConnection,
  type NetAddress,
  type SocketMessageInfo,
  type TCPSocketConnection,
  type TCPSocketServer,
} from "../../socket.ts";

import { within } from "../harness/within.ts";
export { within };

/** The next event of a type, bounded in time. */
export function next<T>(
  target: {
    on(type: string, cb: (v: T) => void): void;
    off(type: string, cb: (v: T) => void): void;
  },
  type: string,
  ms = 3000,
): Promise<T> {
  return within(
    new Promise<T>((resolve) => {
      const cb = (v: T) => {
        target.off(type, cb);
        resolve(v);
      };
      target.on(type, cb);
    }),
    ms,
    `event "${type}"`,
  );
}

/** Assert that a promise rejects with a code. */
export async function rejectsWith(
  p: Promise<unknown>,
  code: number,
): Promise<BusinessError<unknown>> {
  try {
    await within(p, 6000, `rejection with ${code}`);
  } catch (e) {
    assert.equal((e as BusinessError).code, code, String(e));
    assert.match((e as Error).message, /^[A-Z]/);
    return e as BusinessError<unknown>;
  }
  assert.fail(`expected a rejection with code ${code}`);
}

const text = (b: ArrayBuffer) => new TextDecoder().decode(b);

/** An echo server on loopback; returns it and its port. */
export async function echoServer(
  platform: SocketPlatform,
  address = "127.0.0.1",
  family = 1,
): Promise<{ server: TCPSocketServer; port: number; clients: TCPSocketConnection[] }> {
  const server = constructTCPSocketServerInstance({ platform });
  const clients: TCPSocketConnection[] = [];
  server.on("connect", (c) => {
    clients.push(c);
    c.on("message", (m) => {
      c.send({ data: m.message }).catch(() => {});
    });
  });
  await server.listen({ address, port: 0, family });
  const { port } = await server.getLocalAddress();
  return { server, port: port!, clients };
}

/** Bind a UDP socket to loopback. */
async function bind(udp: { bind(a: NetAddress): Promise<void> }): Promise<void> {
  await udp.bind({ address: "127.0.0.1", port: 0 });
}

/** Connect a `TCPSocket` to a loopback echo server, send once, await the echo, close. */
export async function echoOnce(platform: SocketPlatform, port: number, ms = 5000): Promise<void> {
  const tcp = constructTCPSocketInstance({ platform });
  try {
    const got = next<SocketMessageInfo>(tcp, "message", ms);
    got.catch(() => {});
    await tcp.connect({ address: { address: "127.0.0.1", port }, timeout: ms });
    await tcp.send({ data: "ping" });
    assert.equal(text((await got).message), "ping");
  } finally {
    await tcp.close();
  }
}

/** The flag that makes a test entry run {@linkcode socketChild} instead of tests. */
export const SOCKET_CHILD = "--linkweave-socket-child";

/** Handles of every kind, connected on loopback. */
interface OpenHandles {
  all: Array<StreamHandle | ListenerHandle | DatagramHandle>;
  /** One TCP echo on each client and one UDP datagram to itself. */
  roundTrip(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Open a TCP listener, a client connected to it (and its accepted stream), a
 * second client bound to a local address first, and a UDP socket.
 */
async function openHandles(platform: SocketPlatform): Promise<OpenHandles> {
  const noop = () => {};
  const accepted: StreamHandle[] = [];
  const listener = await platform.tcpListen({ address: "127.0.0.1", port: 0, family: "IPv4" }, {
    onConnection(h) {
      accepted.push(h);
      return { onData: (b) => void h.write(b), onDrain: noop, onClose: noop };
    },
  });
  // Each client's `onData` is replaced by the round trip that waits for it.
  const clientEvents: StreamEvents[] = [0, 1].map(() => ({
    onData: noop,
    onDrain: noop,
    onClose: noop,
  }));
  const remote = listener.localAddress!;
  const a = await platform.tcpConnect({ remote }, clientEvents[0]);
  const b = await platform.tcpConnect(
    { remote, local: { address: "127.0.0.1", port: 0, family: "IPv4" } },
    clientEvents[1],
  );
  let gotDatagram = noop;
  const udp = await platform.udpBind(
    { local: { address: "127.0.0.1", port: 0, family: "IPv4" } },
    { onMessage: () => gotDatagram() },
  );
  await within(
    (async () => {
      while (accepted.length < 2) await new Promise((r) => setTimeout(r, 10));
    })(),
    3000,
    "two accepted streams",
  );
  const all = [listener, a, b, ...accepted, udp];
  return {
    all,
    async roundTrip() {
      // A referenced timer keeps the process alive meanwhile: unref'd handles
      // must still work while something else keeps the process alive.
      const keep = setInterval(noop, 1000);
      try {
        for (const [i, h] of [a, b].entries()) {
          const got = new Promise<void>((r) => (clientEvents[i].onData = () => r()));
          h.write(new TextEncoder().encode("ping"));
          await within(got, 3000, `TCP echo ${i}`);
        }
        const got = new Promise<void>((r) => (gotDatagram = r));
        await udp.send(new Uint8Array([1]), udp.localAddress);
        await within(got, 3000, "UDP datagram");
      } finally {
        clearInterval(keep);
      }
    },
    close: async () => {
      await Promise.all(all.map((h) => h.close()));
    },
  };
}

/**
 * A child process of the tests, by `mode`:
 * - `unref`, `reref`, `ref` (keep-alive test): opens handles of every kind,
 *   lets each carry data (so reads are pending), then unrefs them, unrefs
 *   then refs them again, or leaves them; prints `ready` and returns with
 *   them open.
 * - `flush:<port>` (keep-alive test): connects to that port, unrefs the
 *   stream, queues 32 MiB on it and returns.
 * - `reset:<port>:<n>`: opens `n` TCP connections to that port and resets
 *   each (RST, `SO_LINGER` 0) once connected, then exits.
 * - `echo`: runs a `TCPSocketServer` echo server on loopback, prints its
 *   port (and `error <code>` for each `error` event), and runs until killed.
 *
 * @param platform The adapter.
 * @param mode The mode.
 */
export async function socketChild(platform: SocketPlatform, mode: string): Promise<void> {
  if (mode.startsWith("reset:")) {
    const [port, n] = mode.slice(6).split(":").map(Number);
    let closed = 0;
    await new Promise<void>((resolve) => {
      for (let i = 0; i < n; i++) {
        const s = net.connect({ host: "127.0.0.1", port }, () => s.resetAndDestroy());
        s.on("error", () => {});
        s.on("close", () => ++closed === n && resolve());
      }
    });
    return;
  }
  if (mode === "echo") {
    // Deno sets up its signal handling lazily, a moment after start-up, and
    // panics if descriptors are exhausted then (Deno 2.9): set it up now.
    const D = (globalThis as {
      Deno?: {
        addSignalListener(s: string, f: () => void): void;
        removeSignalListener(s: string, f: () => void): void;
      };
    }).Deno;
    if (D !== undefined) {
      const noop = () => {};
      D.addSignalListener("SIGUSR2", noop);
      D.removeSignalListener("SIGUSR2", noop);
    }
    const { server, port } = await echoServer(platform);
    server.on("error", (e) => console.log(`error ${e.code}`));
    console.log(port);
    return;
  }
  if (mode.startsWith("flush:")) {
    // Connect to the parent, unref, queue 32 MiB and return: the queued bytes
    // keep the process alive until they are written, then it exits.
    const noop = () => {};
    const port = Number(mode.slice(6));
    const s = await platform.tcpConnect(
      { remote: { address: "127.0.0.1", port, family: "IPv4" } },
      { onData: noop, onDrain: noop, onClose: noop },
    );
    s.unref();
    for (let i = 0; i < 512; i++) s.write(new Uint8Array(65536).fill(i));
    console.log("ready");
    return;
  }
  const h = await openHandles(platform);
  await h.roundTrip();
  if (mode !== "ref") { for (const x of h.all) x.unref(); }
  if (mode === "reref") {
    // Let reads started while unref'd be pending when `ref` is called.
    await h.roundTrip();
    for (const x of h.all) x.ref();
  }
  console.log("ready");
}

/** Options of {@linkcode socketConformance}. */
export interface ConformanceOptions {
  /**
   * The test entry, runnable by this runtime, that calls
   * {@linkcode socketChild} when given {@linkcode SOCKET_CHILD}; the
   * keep-alive and listener tests spawn it. Without it, those tests are
   * skipped.
   */
  entry?: string;
}

/**
 * Register the conformance suite for one adapter.
 *
 * @param platform The adapter under test.
 * @param options The test entry for child processes.
 */
export function socketConformance(
  platform: SocketPlatform,
  options: ConformanceOptions = {},
): void {
  const opts = { platform };

  describe(`socket conformance (${platform.name})`, { timeout: 60_000 }, () => {
    describe("UDPSocket", () => {
      it("binds, sends to itself and emits listening, message and close", async () => {
        const udp = constructUDPSocketInstance(opts);
        const seen: string[] = [];
        udp.on("listening", () => seen.push("listening"));
        udp.on("close", () => seen.push("close"));
        assert.deepEqual(await udp.getState(), {
          isBound: false,
          isClose: false,
          isConnected: false,
        });
        await udp.bind({ address: "127.0.0.1", port: 0, family: 1 });
        assert.deepEqual(await udp.getState(), {
          isBound: true,
          isClose: false,
          isConnected: false,
        });
        const local = await udp.getLocalAddress();
        assert.equal(local.address, "127.0.0.1");
        assert.ok(local.port! > 0);
        const got = next<SocketMessageInfo>(udp, "message");
        await udp.send({
          data: "Hello, server!",
          address: { address: "127.0.0.1", port: local.port },
        });
        const m = await got;
        assert.ok(m.message instanceof ArrayBuffer);
        assert.equal(text(m.message), "Hello, server!");
        assert.deepEqual(m.remoteInfo, {
          address: "127.0.0.1",
          family: "IPv4",
          port: local.port,
          size: 14,
        });
        await udp.close();
        assert.deepEqual(seen, ["listening", "close"]);
        assert.equal((await udp.getState()).isClose, true);
      });

      it("sends an ArrayBuffer over IPv6 loopback", async () => {
        const a = constructUDPSocketInstance(opts);
        const b = constructUDPSocketInstance(opts);
        try {
          await a.bind({ address: "::1", port: 0, family: 2 });
          await b.bind({ address: "::1", family: 2 });
          const { port } = await b.getLocalAddress();
          const got = next<SocketMessageInfo>(b, "message");
          await a.send({
            data: new Uint8Array([1, 2, 3]).buffer,
            address: { address: "::1", port, family: 2 },
          });
          const m = await got;
          assert.deepEqual([...new Uint8Array(m.message)], [1, 2, 3]);
          assert.equal(m.remoteInfo.family, "IPv6");
          assert.equal(m.remoteInfo.port, (await a.getLocalAddress()).port);
        } finally {
          await a.close();
          await b.close();
        }
      });

      it("sends to the address as it is at each call (changed or invalid)", async () => {
        const a = constructUDPSocketInstance(opts);
        const b = constructUDPSocketInstance(opts);
        const c = constructUDPSocketInstance(opts);
        try {
          await a.bind({ address: "127.0.0.1", port: 0 });
          await b.bind({ address: "127.0.0.1", port: 0 });
          await c.bind({ address: "127.0.0.1", port: 0 });
          const pb = (await b.getLocalAddress()).port;
          const pc = (await c.getLocalAddress()).port;
          const to: NetAddress = { address: "127.0.0.1", port: pb };
          const buf = new Uint8Array([1, 2, 3]);
          const atB = next<SocketMessageInfo>(b, "message");
          await a.send({ data: buf.buffer, address: to });
          assert.deepEqual([...new Uint8Array((await atB).message)], [1, 2, 3]);
          buf.set([4, 5, 6]);
          to.port = pc;
          const atC = next<SocketMessageInfo>(c, "message");
          await a.send({ data: buf.buffer, address: to });
          assert.deepEqual([...new Uint8Array((await atC).message)], [4, 5, 6]);
          to.port = 70000;
          await rejectsWith(a.send({ data: "x", address: to }), 401);
          to.port = pc;
          to.address = "127.0.0.256";
          await rejectsWith(a.send({ data: "x", address: to }), 401);
          await rejectsWith(a.send({ data: 42 as unknown as string, address: to }), 401);
        } finally {
          await a.close();
          await b.close();
          await c.close();
        }
      });

      it("works in callback form", async () => {
        const udp = constructUDPSocketInstance(opts);
        await within(
          new Promise<void>((resolve, reject) => {
            udp.bind({ address: "127.0.0.1", port: 0, family: 1 }, (err) => {
              if (err) return reject(err);
              udp.getState((err2, state) => {
                if (err2) return reject(err2);
                assert.equal(state.isBound, true);
                udp.close((err3) => (err3 ? reject(err3) : resolve()));
              });
            });
          }),
          3000,
          "callbacks",
        );
      });

      it("accepts the seed's extra options and reports what is in effect", async () => {
        const udp = constructUDPSocketInstance(opts);
        try {
          await udp.bind({ address: "127.0.0.1", port: 0, family: 1 });
          await udp.setExtraOptions({
            receiveBufferSize: 1000,
            sendBufferSize: 1000,
            reuseAddress: false,
            socketTimeout: 6000,
            broadcast: true,
          });
          const o = await udp.getExtraOptions();
          assert.equal(o.broadcast, true);
          assert.equal(o.socketTimeout, 6000);
          if (o.receiveBufferSize !== undefined) {
            // The kernel doubles SO_RCVBUF and has a minimum: the value read back is real.
            assert.ok(o.receiveBufferSize >= 1000);
          }
        } finally {
          await udp.close();
        }
      });

      it("off() without a callback removes every listener", async () => {
        const udp = constructUDPSocketInstance(opts);
        let calls = 0;
        udp.on("message", () => calls++);
        udp.on("message", () => calls++);
        udp.off("message");
        await udp.bind({ address: "127.0.0.1", port: 0 });
        const { port } = await udp.getLocalAddress();
        const probe = next(udp, "message");
        await udp.send({ data: "x", address: { address: "127.0.0.1", port } });
        await probe;
        assert.equal(calls, 0);
        await udp.close();
      });
    });

    describe("TCPSocket and TCPSocketServer", () => {
      it("connects, exchanges data both ways and closes", async () => {
        const { server, port, clients } = await echoServer(platform);
        const tcp = constructTCPSocketInstance(opts);
        try {
          const connected = next(tcp, "connect");
          await tcp.connect({ address: { address: "127.0.0.1", port, family: 1 }, timeout: 3000 });
          await connected;
          assert.deepEqual(await tcp.getState(), {
            isBound: true,
            isClose: false,
            isConnected: true,
          });
          assert.deepEqual(await tcp.getRemoteAddress(), { address: "127.0.0.1", port, family: 1 });
          const local = await tcp.getLocalAddress();
          assert.equal(local.address, "127.0.0.1");
          const got = next<SocketMessageInfo>(tcp, "message");
          await tcp.send({ data: "Hello, server!" });
          const m = await got;
          assert.equal(text(m.message), "Hello, server!");
          assert.equal(m.remoteInfo.port, port);
          assert.equal(m.remoteInfo.size, 14);
          assert.equal(clients.length, 1);
          assert.ok(clients[0].clientId > 0);
          const peer = await clients[0].getRemoteAddress();
          assert.equal(peer.port, local.port);
          const serverSide = next(clients[0], "close");
          const closed = next(tcp, "close");
          await tcp.close();
          await closed;
          await serverSide;
          assert.equal((await tcp.getState()).isClose, true);
        } finally {
          await tcp.close();
          await server.close();
        }
      });

      it("works over IPv6 loopback", async () => {
        const { server, port } = await echoServer(platform, "::1", 2);
        const tcp = constructTCPSocketInstance(opts);
        try {
          await tcp.connect({ address: { address: "::1", port, family: 2 } });
          const got = next<SocketMessageInfo>(tcp, "message");
          await tcp.send({ data: "six" });
          const m = await got;
          assert.equal(text(m.message), "six");
          assert.equal(m.remoteInfo.family, "IPv6");
          assert.deepEqual(await tcp.getRemoteAddress(), { address: "::1", port, family: 2 });
        } finally {
          await tcp.close();
          await server.close();
        }
      });

      it("encodes strings in every documented encoding; any other is UTF-8, never an error", async () => {
        const server = constructTCPSocketServerInstance(opts);
        const chunks: Uint8Array[] = [];
        server.on("connect", (c) => c.on("message", (m) => chunks.push(new Uint8Array(m.message))));
        await server.listen({ address: "127.0.0.1", port: 0 });
        const { port } = await server.getLocalAddress();
        const tcp = constructTCPSocketInstance(opts);
        try {
          await tcp.connect({ address: { address: "127.0.0.1", port } });
          const cases: Array<[unknown, number[]]> = [
            ["UTF-8", [0xc3, 0xa9]],
            ["UTF-16BE", [0x00, 0xe9]],
            ["UTF-16LE", [0xe9, 0x00]],
            ["UTF-16", [0xfe, 0xff, 0x00, 0xe9]],
            ["US-ASCII", [0x3f]],
            ["US-AECII", [0x3f]], // the docs' own spelling
            ["ISO-8859-1", [0xe9]],
            ["utf-8", [0xc3, 0xa9]],
            ["utf16le", [0xe9, 0x00]],
            ["iso_8859_1", [0xe9]],
            // OpenHarmony sends UTF-8 whatever `encoding` says: so do we for any other value.
            ["EBCDIC", [0xc3, 0xa9]],
            ["", [0xc3, 0xa9]],
            [42, [0xc3, 0xa9]],
            [undefined, [0xc3, 0xa9]],
          ];
          const expected: number[] = [];
          for (const [encoding, bytes] of cases) {
            await tcp.send({ data: "é", encoding: encoding as string });
            expected.push(...bytes);
          }
          await within(
            (async () => {
              while (chunks.reduce((n, c) => n + c.length, 0) < expected.length) {
                await new Promise((r) => setTimeout(r, 10));
              }
            })(),
            3000,
            "encoded bytes",
          );
          assert.deepEqual(chunks.flatMap((c) => [...c]), expected);
        } finally {
          await tcp.close();
          await server.close();
        }
      });

      it("moves 4 MiB intact with backpressure", async () => {
        const { server, port } = await echoServer(platform);
        const tcp = constructTCPSocketInstance(opts);
        try {
          await tcp.connect({ address: { address: "127.0.0.1", port } });
          const total = 4 * 1024 * 1024;
          let received = 0;
          let sum = 0;
          const done = within(
            new Promise<void>((resolve) => {
              tcp.on("message", (m) => {
                for (const b of new Uint8Array(m.message)) sum = (sum + b) % 65521;
                received += m.message.byteLength;
                if (received >= total) resolve();
              });
            }),
            20_000,
            "4 MiB echo",
          );
          let expected = 0;
          for (let off = 0; off < total; off += 65536) {
            const chunk = new Uint8Array(65536);
            for (let i = 0; i < chunk.length; i++) chunk[i] = (off + i * 7) & 0xff;
            for (const b of chunk) expected = (expected + b) % 65521;
            await tcp.send({ data: chunk.buffer });
          }
          await done;
          assert.equal(received, total);
          assert.equal(sum, expected);
        } finally {
          await tcp.close();
          await server.close();
        }
      });

      it("lets the caller reuse a large send's buffer once the send settled", async () => {
        const { server, port } = await echoServer(platform);
        const tcp = constructTCPSocketInstance(opts);
        try {
          await tcp.connect({ address: { address: "127.0.0.1", port } });
          const size = 256 * 1024;
          const rounds = 16;
          const got: Uint8Array[] = [];
          let received = 0;
          const done = within(
            new Promise<void>((resolve) => {
              tcp.on("message", (m) => {
                got.push(new Uint8Array(m.message));
                received += m.message.byteLength;
                if (received >= size * rounds) resolve();
              });
            }),
            20_000,
            "echo of reused buffers",
          );
          // One buffer, refilled after every send: half the rounds in promise form, half with a callback.
          const buf = new Uint8Array(size);
          for (let r = 0; r < rounds; r++) {
            buf.fill(r + 1);
            if (r % 2 === 0) await tcp.send({ data: buf.buffer });
            else {
              await new Promise<void>((resolve, reject) =>
                tcp.send({ data: buf.buffer }, (e) => (e ? reject(e) : resolve()))
              );
            }
            buf.fill(0xee);
          }
          await done;
          const all = new Uint8Array(received);
          let off = 0;
          for (const c of got) {
            all.set(c, off);
            off += c.byteLength;
          }
          assert.equal(received, size * rounds);
          for (let r = 0; r < rounds; r++) {
            const part = all.subarray(r * size, (r + 1) * size);
            assert.ok(part.every((b) => b === r + 1), `round ${r} arrived intact`);
          }
        } finally {
          await tcp.close();
          await server.close();
        }
      });

      it("delivers many small sends made without awaiting, intact and in order", async () => {
        const { server, port } = await echoServer(platform);
        const tcp = constructTCPSocketInstance(opts);
        try {
          await tcp.connect({ address: { address: "127.0.0.1", port } });
          const count = 5000;
          const expected: number[] = [];
          const sends: Promise<void>[] = [];
          for (let i = 0; i < count; i++) {
            const n = 1 + (i * 37) % 1500;
            const b = new Uint8Array(n);
            for (let j = 0; j < n; j++) b[j] = (i + j) & 0xff;
            expected.push(...b);
            // Strings and byte views mixed in: every kind goes through the same queue.
            if (i % 10 === 0) {
              const str = String.fromCharCode(...b.map((x) => x & 0x7f));
              expected.splice(expected.length - n, n, ...b.map((x) => x & 0x7f));
              sends.push(tcp.send({ data: str, encoding: "US-ASCII" }));
            } else {sends.push(
                tcp.send({ data: i % 3 === 0 ? b.buffer : b } as { data: ArrayBuffer }),
              );}
          }
          // A large send between small ones keeps its place.
          const big = new Uint8Array(100_000).fill(0x5a);
          sends.push(tcp.send({ data: big.buffer }));
          expected.push(...big);
          const tail = new Uint8Array([1, 2, 3]);
          sends.push(tcp.send({ data: tail.buffer }));
          expected.push(1, 2, 3);
          const got: number[] = [];
          const done = within(
            new Promise<void>((resolve) => {
              tcp.on("message", (m) => {
                got.push(...new Uint8Array(m.message));
                if (got.length >= expected.length) resolve();
              });
            }),
            20_000,
            "echo of small sends",
          );
          await Promise.all(sends);
          await done;
          assert.equal(got.length, expected.length);
          assert.ok(got.every((b, i) => b === expected[i]), "bytes intact and in order");
        } finally {
          await tcp.close();
          await server.close();
        }
      });

      it("connects from the address given to bind", async () => {
        const { server, port } = await echoServer(platform);
        const probe = constructTCPSocketServerInstance(opts);
        await probe.listen({ address: "127.0.0.1", port: 0 });
        const free = (await probe.getLocalAddress()).port;
        await probe.close();
        const tcp = constructTCPSocketInstance(opts);
        try {
          await tcp.bind({ address: "127.0.0.1", port: free, family: 1 });
          assert.equal((await tcp.getState()).isBound, true);
          await tcp.connect({ address: { address: "127.0.0.1", port } });
          assert.equal((await tcp.getLocalAddress()).port, free);
        } finally {
          await tcp.close();
          await server.close();
        }
      });

      it("reports the port of a bind to port 0 before connect, where the runtime binds early", async () => {
        for (const [address, family] of [["127.0.0.1", 1], ["::1", 2]] as const) {
          const { server, port } = await echoServer(platform, address, family);
          const tcp = constructTCPSocketInstance(opts);
          const again = constructTCPSocketInstance(opts);
          try {
            await tcp.bind({ address, port: 0, family });
            const before = await tcp.getLocalAddress();
            assert.equal(before.address, address);
            // Bun cannot bind a TCP socket before connecting: the port is known at connect.
            if (platform.name === "bun") assert.equal(before.port, 0);
            else assert.ok(before.port! > 0, `a port was chosen at bind (${before.port})`);
            await tcp.connect({ address: { address, port, family } });
            const after = await tcp.getLocalAddress();
            assert.ok(after.port! > 0);
            if (platform.name !== "bun") assert.equal(after.port, before.port);
            const got = next<SocketMessageInfo>(tcp, "message");
            await tcp.send({ data: "bound" });
            assert.equal(text((await got).message), "bound");
            // Bound twice: the second bind counts; closed before connecting: nothing leaks.
            await again.bind({ address, port: 0, family });
            await again.bind({ address, port: 0, family });
            assert.equal((await again.getState()).isBound, true);
            await again.close();
            await rejectsWith(again.connect({ address: { address, port, family } }), 2301009);
          } finally {
            await tcp.close();
            await again.close();
            await server.close();
          }
        }
      });

      it("accepts the seed's extra options and reports what is in effect", async () => {
        const { server, port } = await echoServer(platform);
        const tcp = constructTCPSocketInstance(opts);
        try {
          await tcp.connect({ address: { address: "127.0.0.1", port }, timeout: 6000 });
          await tcp.setExtraOptions({
            keepAlive: true,
            OOBInline: true,
            TCPNoDelay: true,
            socketLinger: { on: true, linger: 10 },
            receiveBufferSize: 1000,
            sendBufferSize: 1000,
            reuseAddress: true,
            socketTimeout: 3000,
          });
          const o = await tcp.getExtraOptions();
          assert.equal(o.keepAlive, true);
          assert.equal(o.TCPNoDelay, true);
          assert.equal(o.socketTimeout, 3000);
          // Never pretended: what a runtime cannot apply is absent.
          for (const k of ["OOBInline", "socketLinger", "receiveBufferSize"] as const) {
            if (o[k] !== undefined) assert.notEqual(o[k], undefined);
          }
          await server.setExtraOptions({ TCPNoDelay: true });
        } finally {
          await tcp.close();
          await server.close();
        }
      });

      it("serves 100 concurrent clients", async () => {
        const { server, port, clients } = await echoServer(platform);
        const sockets = Array.from({ length: 100 }, () => constructTCPSocketInstance(opts));
        try {
          await within(
            Promise.all(sockets.map(async (s, i) => {
              await s.connect({ address: { address: "127.0.0.1", port } });
              const got = next<SocketMessageInfo>(s, "message", 10_000);
              await s.send({ data: `client ${i}` });
              assert.equal(text((await got).message), `client ${i}`);
            })),
            15_000,
            "100 clients",
          );
          assert.equal(clients.length, 100);
          assert.equal(new Set(clients.map((c) => c.clientId)).size, 100);
        } finally {
          await Promise.all(sockets.map((s) => s.close()));
          await server.close();
        }
      });
    });

    describe("errors", () => {
      it("refused connection is 2301111, in both forms", async () => {
        const probe = constructTCPSocketServerInstance(opts);
        await probe.listen({ address: "127.0.0.1", port: 0 });
        const { port } = await probe.getLocalAddress();
        await probe.close();
        const tcp = constructTCPSocketInstance(opts);
        await rejectsWith(tcp.connect({ address: { address: "127.0.0.1", port } }), 2301111);
        const err = await within(
          new Promise<BusinessError<unknown> | undefined>((resolve) => {
            constructTCPSocketInstance(opts).connect(
              { address: { address: "127.0.0.1", port } },
              (e) => resolve(e),
            );
          }),
          6000,
          "callback",
        );
        assert.equal(err?.code, 2301111);
        await tcp.close();
      });

      it("address in use is 2301098 (TCP and UDP)", async () => {
        const a = constructTCPSocketServerInstance(opts);
        await a.listen({ address: "127.0.0.1", port: 0 });
        const { port } = await a.getLocalAddress();
        const b = constructTCPSocketServerInstance(opts);
        await rejectsWith(b.listen({ address: "127.0.0.1", port }), 2301098);
        await a.close();
        await b.close();
        const u = constructUDPSocketInstance(opts);
        await u.bind({ address: "127.0.0.1", port: 0 });
        const u2 = constructUDPSocketInstance(opts);
        await rejectsWith(
          u2.bind({ address: "127.0.0.1", port: (await u.getLocalAddress()).port }),
          2301098,
        );
        await u.close();
        await u2.close();
      });

      it("bad ports, families and addresses are 401", async () => {
        const udp = constructUDPSocketInstance(opts);
        const tcp = constructTCPSocketInstance(opts);
        const bad: unknown[] = [
          { address: "127.0.0.1", port: -1 },
          { address: "127.0.0.1", port: 65536 },
          { address: "127.0.0.1", port: 1.5 },
          { address: "127.0.0.1", port: "80" },
          { address: "127.0.0.1", port: 80, family: 3 },
          { address: "::1", port: 80, family: 1 },
          { address: "127.0.0.1", port: 80, family: 2 },
          { address: "300.1.1.1", port: 80 },
          { address: "localhost", port: 80 },
          { address: "1:2:3:4:5:6:7:8:9", port: 80, family: 2 },
          { port: 80 },
          null,
        ];
        for (const a of bad) {
          const e = await rejectsWith(udp.bind(a as NetAddress), 401);
          assert.ok(e instanceof TypeError);
          await rejectsWith(tcp.connect({ address: a as NetAddress }), 401);
          await rejectsWith(udp.send({ data: "x", address: a as NetAddress }), 401);
        }
        await rejectsWith(
          tcp.connect({ address: { address: "127.0.0.1", port: 1 }, timeout: -5 }),
          401,
        );
        await rejectsWith(
          udp.bind({ address: "127.0.0.1" }).then(() =>
            udp.send({ data: 5 as unknown as string, address: { address: "127.0.0.1", port: 9 } })
          ),
          401,
        );
        await udp.close();
        await tcp.close();
      });

      it("send before bind or connect, and anything after close, has a code", async () => {
        const udp = constructUDPSocketInstance(opts);
        await rejectsWith(
          udp.send({ data: "x", address: { address: "127.0.0.1", port: 9 } }),
          2301009,
        );
        await rejectsWith(udp.setExtraOptions({ broadcast: true }), 2301009);
        const tcp = constructTCPSocketInstance(opts);
        await rejectsWith(tcp.send({ data: "x" }), 2301107);
        await rejectsWith(tcp.getRemoteAddress(), 2301107);
        await tcp.close();
        await tcp.close();
        await rejectsWith(tcp.send({ data: "x" }), 2301009);
        await rejectsWith(tcp.connect({ address: { address: "127.0.0.1", port: 9 } }), 2301009);
        await rejectsWith(tcp.bind({ address: "127.0.0.1" }), 2301009);
        await udp.close();
        await rejectsWith(udp.bind({ address: "127.0.0.1" }), 2301009);
        await rejectsWith(udp.getLocalAddress(), 2301009);
        const { server, port } = await echoServer(platform);
        const t2 = constructTCPSocketInstance(opts);
        await t2.connect({ address: { address: "127.0.0.1", port } });
        await rejectsWith(t2.connect({ address: { address: "127.0.0.1", port } }), 2301106);
        await t2.close();
        await rejectsWith(t2.send({ data: "x" }), 2301009);
        await rejectsWith(t2.setExtraOptions({ keepAlive: true }), 2301009);
        await server.close();
        const err = await within(
          new Promise<BusinessError<unknown> | undefined>((r) =>
            t2.send({ data: "x" }, (e) => r(e))
          ),
          1000,
          "callback",
        );
        assert.equal(err?.code, 2301009);
      });

      it("bad extra options are 401", async () => {
        const { server, port } = await echoServer(platform);
        const tcp = constructTCPSocketInstance(opts);
        await tcp.connect({ address: { address: "127.0.0.1", port } });
        await rejectsWith(tcp.setExtraOptions({ keepAlive: "yes" as unknown as boolean }), 401);
        await rejectsWith(tcp.setExtraOptions({ socketLinger: { on: true, linger: 70000 } }), 401);
        await rejectsWith(tcp.setExtraOptions({ receiveBufferSize: -1 }), 401);
        await tcp.close();
        await server.close();
      });
    });

    describe("events, as OpenHarmony keeps them", () => {
      it("one callback per event: on() replaces it, off(type, cb) removes only cb, off(type) any", async () => {
        const { server, port } = await echoServer(platform);
        const tcp = constructTCPSocketInstance(opts);
        const seen: Record<string, string> = { a: "", b: "", c: "" };
        const cb = (name: string) => (m: SocketMessageInfo) => (seen[name] += text(m.message));
        const [a, b, c] = [cb("a"), cb("b"), cb("c")];
        // The echo of `data` reached the callback named `name` (the stream keeps order).
        const echoed = async (data: string, name: string) => {
          await tcp.send({ data });
          await waitFor(() => seen[name].includes(data), 3000, `"${data}" at ${name}`);
        };
        try {
          await tcp.connect({ address: { address: "127.0.0.1", port } });
          tcp.on("message", a);
          tcp.on("message", b);
          await echoed("1", "b");
          tcp.on("message", b); // the same function again: still called once
          await echoed("2", "b");
          tcp.off("message", () => {}); // another function: b stays (as OpenHarmony)
          await echoed("3", "b");
          assert.deepEqual(seen, { a: "", b: "123", c: "" });
          tcp.off("message", b);
          await tcp.send({ data: "4" }); // delivered to nobody
          tcp.on("message", c);
          await echoed("5", "c");
          tcp.on("message", b);
          tcp.off("message");
          await tcp.send({ data: "6" });
          tcp.on("message", c);
          await echoed("7", "c");
          assert.equal(seen.a, "");
          assert.equal(seen.b, "123");
          assert.match(seen.c, /^4?56?7$/);
        } finally {
          await tcp.close();
          await server.close();
        }
      });

      it("servers and UDP sockets keep one callback per event too", async () => {
        const server = constructTCPSocketServerInstance(opts);
        const udp = constructUDPSocketInstance(opts);
        const tcp = constructTCPSocketInstance(opts);
        const calls: string[] = [];
        try {
          server.on("connect", () => calls.push("old connect"));
          server.on("connect", (c) => {
            calls.push("connect");
            c.on("close", () => calls.push("old close"));
            c.on("close", () => calls.push("close"));
          });
          await server.listen({ address: "127.0.0.1", port: 0 });
          const { port } = await server.getLocalAddress();
          await tcp.connect({ address: { address: "127.0.0.1", port } });
          await waitFor(() => calls.includes("connect"), 3000, "connect");
          await tcp.close();
          await waitFor(() => calls.includes("close"), 3000, "close");
          udp.on("message", () => calls.push("old message"));
          udp.on("message", () => calls.push("message"));
          await bind(udp);
          const self = await udp.getLocalAddress();
          await udp.send({ data: "x", address: self });
          await waitFor(() => calls.includes("message"), 3000, "message");
          assert.deepEqual(calls, ["connect", "close", "message"]);
        } finally {
          await Promise.all([tcp.close(), udp.close(), server.close()]);
        }
      });

      it("on() or off() with a callback that is not a function, or a type that is not a string, throws 401 at once", async () => {
        const udp = constructUDPSocketInstance(opts);
        type Untyped = (type: unknown, callback?: unknown) => void;
        const targets = [
          udp,
          constructMulticastSocketInstance(opts),
          constructTCPSocketInstance(opts),
          constructTCPSocketServerInstance(opts),
          constructLocalSocketInstance(opts),
          constructLocalSocketServerInstance(opts),
        ] as unknown as Array<{ on: Untyped; off: Untyped }>;
        const { server, port, clients } = await echoServer(platform);
        const tcp = constructTCPSocketInstance(opts);
        try {
          await tcp.connect({ address: { address: "127.0.0.1", port } });
          await waitFor(() => clients.length === 1, 3000, "the accepted connection");
          targets.push(clients[0] as unknown as { on: Untyped; off: Untyped });
          for (const t of targets) {
            for (const bad of [undefined, null, 5, "f", {}, Object.create(null)]) {
              assert.throws(() => t.on("message", bad), { code: 401, name: "ParameterError" });
              assert.throws(() => t.on("error", bad), { code: 401 });
              assert.throws(() => t.on("nope", bad), { code: 401 });
              if (bad !== undefined) assert.throws(() => t.off("message", bad), { code: 401 });
            }
            for (const type of [5, undefined, null, {}, Symbol("message")]) {
              assert.throws(() => t.on(type, () => {}), { code: 401 });
              assert.throws(() => t.off(type), { code: 401 });
            }
          }
          // Nothing was registered: data still flows and no callback crashes.
          await bind(udp);
          await echoOnce(platform, port);
        } finally {
          await tcp.close();
          await server.close();
          for (const t of targets) await (t as { close?: () => Promise<void> }).close?.();
        }
      });

      it("event types a socket does not emit are ignored, as OpenHarmony ignores them", async () => {
        const { server, port, clients } = await echoServer(platform);
        const tcp = constructTCPSocketInstance(opts);
        const never = () => assert.fail("an ignored event type was called");
        try {
          for (const type of ["nope", "listening", "Message", ""]) {
            tcp.on(type as "message", never);
            tcp.off(type as "message", never);
            tcp.off(type as "message");
            tcp.on(type as "message", never);
          }
          server.on("message" as "connect", never);
          server.on("close" as "connect", never);
          await tcp.connect({ address: { address: "127.0.0.1", port } });
          await waitFor(() => clients.length === 1, 3000, "the accepted connection");
          clients[0].on("connect" as "message", never);
          clients[0].on("listening" as "message", never);
          const got = next<SocketMessageInfo>(tcp, "message");
          await tcp.send({ data: "still works" });
          assert.equal(text((await got).message), "still works");
        } finally {
          await tcp.close();
          await server.close();
        }
      });

      it("the error event carries the errno, as OpenHarmony passes it (104 for a reset)", async () => {
        // A raw server that resets a connection once it received something.
        const raw = net.createServer((s) => {
          s.on("error", () => {});
          s.once("data", () => s.resetAndDestroy());
        });
        await new Promise<void>((r) => raw.listen(0, "127.0.0.1", () => r()));
        const port = (raw.address() as net.AddressInfo).port;
        const tcp = constructTCPSocketInstance(opts);
        try {
          const error = next<BusinessError<unknown>>(tcp, "error");
          const closed = next(tcp, "close");
          await tcp.connect({ address: { address: "127.0.0.1", port } });
          await tcp.send({ data: "reset me" });
          const e = await error;
          await closed;
          assert.ok(e instanceof Error);
          assert.equal(e.code, 104);
          assert.match(e.message, /^Cannot /);
          assert.equal((e.cause as BusinessError<unknown>).code, 2301104);
          assert.match(JSON.stringify(e), /"code":104/);
        } finally {
          await tcp.close();
          await new Promise((r) => raw.close(r));
        }
      });
    });

    describe("LocalSocket and LocalSocketServer", () => {
      const dir = mkdtempSync(join(tmpdir(), "linkweave-sock-"));
      after(() => rmSync(dir, { recursive: true, force: true }));

      it("connects, echoes and closes over a Unix-domain socket", async () => {
        const path = join(dir, `echo-${platform.name}.sock`);
        const server = constructLocalSocketServerInstance(opts);
        const conns: LocalSocketConnection[] = [];
        server.on("connect", (c) => {
          conns.push(c);
          c.on("message", (m) => c.send({ data: m.message }).catch(() => {}));
        });
        await server.listen({ address: path });
        assert.equal(await server.getLocalAddress(), path);
        const client = constructLocalSocketInstance(opts);
        try {
          await client.connect({ address: { address: path }, timeout: 2000 });
          assert.equal((await client.getState()).isConnected, true);
          const got = next<{ message: ArrayBuffer; address: string; size: number }>(
            client,
            "message",
          );
          await client.send({ data: "local hello" });
          const m = await got;
          assert.equal(text(m.message), "local hello");
          assert.equal(m.address, path);
          assert.equal(m.size, 11);
          await client.setExtraOptions({ receiveBufferSize: 8192, socketTimeout: 1000 });
          assert.equal((await client.getExtraOptions()).socketTimeout, 1000);
          const closed = next(conns[0], "close");
          await client.close();
          await closed;
        } finally {
          await client.close();
          await server.close();
        }
        const again = constructLocalSocketInstance(opts);
        await rejectsWith(again.connect({ address: { address: path } }), 2301002);
        await rejectsWith(again.connect({ address: { address: "" } }), 401);
      });
    });

    describe("stream handles", () => {
      /**
       * A peer that checks a stream of writes: write `w` (sizes cycling
       * through `sizes`) carries bytes `(w * 7 + i) & 0xff`.
       */
      async function checkedPeer(sizes: number[], rounds: number) {
        const starts: number[] = [];
        let total = 0;
        for (let r = 0; r < rounds; r++) {
          for (const n of sizes) {
            starts.push(total);
            total += n;
          }
        }
        const byteAt = (k: number) => {
          let lo = 0;
          let hi = starts.length - 1;
          while (lo < hi) {
            const mid = (lo + hi + 1) >> 1;
            if (starts[mid] <= k) lo = mid;
            else hi = mid - 1;
          }
          return (lo * 7 + (k - starts[lo])) & 0xff;
        };
        const noop = () => {};
        let got = 0;
        let bad = "";
        let finish = noop;
        const done = new Promise<void>((r) => (finish = r));
        const listener = await platform.tcpListen(
          { address: "127.0.0.1", port: 0, family: "IPv4" },
          {
            onConnection: () => ({
              onData(b) {
                for (let i = 0; i < b.length && !bad; i++) {
                  const want = byteAt(got + i);
                  if (b[i] !== want) bad = `byte ${got + i} is ${b[i]}, expected ${want}`;
                }
                got += b.length;
                if (got >= total || bad) finish();
              },
              onDrain: noop,
              onClose: noop,
            }),
          },
        );
        return {
          remote: listener.localAddress!,
          /** Fill `buf` with write `w`'s bytes; returns the view to write. */
          fill(buf: Uint8Array, w: number): Uint8Array {
            const n = sizes[w % sizes.length];
            for (let i = 0; i < n; i++) buf[i] = (w * 7 + i) & 0xff;
            return buf.subarray(0, n);
          },
          count: rounds * sizes.length,
          /** Wait for every byte, then close `client` and the listener. */
          async check(client: StreamHandle) {
            try {
              await within(done, 20_000, `every byte at the peer (${got} of ${total})`);
              assert.equal(bad, "");
              assert.equal(got, total);
            } finally {
              await client.close();
              await listener.close();
            }
          },
        };
      }

      it("take briefly lent bytes at once: the caller reuses its buffer, the peer gets every byte", async () => {
        // One buffer rewritten before every write; 8 MiB fill the kernel's
        // buffers, so some writes are short and their rest must be copied.
        const peer = await checkedPeer([65536, 100, 300_000, 1], 96);
        const noop = () => {};
        const c = await platform.tcpConnect({ remote: peer.remote }, {
          onData: noop,
          onDrain: noop,
          onClose: noop,
        });
        const buf = new Uint8Array(300_000);
        for (let w = 0; w < peer.count; w++) {
          const result = c.write(peer.fill(buf, w), "brief");
          assert.equal(typeof result, "boolean", "a brief write returns a boolean");
          buf.fill(0xee); // the handle must not see this
        }
        await peer.check(c);
      });

      it("keep the order of writes of every size and ownership, made from onDrain", async () => {
        // Paced by backpressure the way the link layer writes: when `write`
        // says false, the next writes are made inside `onDrain`.
        // A large write that goes out alone, then one queued behind it past
        // the high-water mark: the writes made when the first one drains
        // must not overtake the queued one.
        const peer = await checkedPeer([400_000, 200_000, 3, 1500, 70_000, 40], 24);
        // One ownership per round of six writes: owned, lent, lent briefly.
        const modes = [false, true, "brief"] as const;
        let w = 0;
        let sent = () => {};
        const allSent = new Promise<void>((r) => (sent = r));
        const more = () => {
          while (w < peer.count) {
            const bytes = peer.fill(new Uint8Array(400_000), w);
            const r = c.write(bytes, modes[Math.floor(w / 6) % 3]);
            w++;
            if (r === false) return;
          }
          sent();
        };
        const c = await platform.tcpConnect({ remote: peer.remote }, {
          onData: () => {},
          onDrain: more,
          onClose: () => {},
        });
        more();
        await within(allSent, 20_000, "every write made").catch(async (e) => {
          await c.close();
          throw e;
        });
        await peer.check(c);
      });
    });

    describe("listeners", () => {
      it(
        "keep accepting after clients reset before they were accepted",
        { skip: options.entry === undefined, timeout: 30_000 },
        async () => {
          const server = constructTCPSocketServerInstance(opts);
          const errors: unknown[] = [];
          server.on("error", (e) => errors.push(e));
          const clients: TCPSocketConnection[] = [];
          const closed: number[] = [];
          server.on("connect", (c) => {
            clients.push(c);
            c.on("message", (m) => void c.send({ data: m.message }).catch(() => {}));
            c.on("close", () => closed.push(c.clientId));
          });
          await server.listen({ address: "127.0.0.1", port: 0 });
          const { port } = await server.getLocalAddress();
          try {
            // This process is blocked in spawnSync while the child connects
            // and resets: every connection is reset before it is accepted.
            const [cmd, args] = runtimeCommand(options.entry!, [SOCKET_CHILD, `reset:${port!}:5`]);
            const r = spawnSync(cmd, args, { timeout: 20_000, encoding: "utf8" });
            assert.equal(r.status, 0, r.stderr);
            await echoOnce(platform, port!);
            // Deno's accept fails for each (ENOTCONN, skipped); Node and Bun
            // accept them, and each closes with its reset.
            const reset = clients.length - 1;
            assert.ok(reset === 0 || reset === 5, `${reset} reset clients accepted`);
            await waitFor(() => closed.length >= reset, 3000, "the reset clients to close");
            assert.deepEqual(errors, []);
            assert.equal((await server.getState()).isBound, true);
          } finally {
            await server.close();
          }
        },
      );

      it(
        "keep accepting after descriptors ran out, once they are free again",
        { skip: options.entry === undefined, timeout: 45_000 },
        async () => {
          // The listener runs in a child limited to 64 descriptors; 100
          // clients exhaust them, then leave. While descriptors are short, a
          // runtime may also shed waiting clients (Node's libuv accepts and
          // closes them): a client may be reset then, never the listener.
          const LIMIT = 64;
          const FLOOD = 100;
          const [cmd, args] = runtimeCommand(options.entry!, [SOCKET_CHILD, "echo"]);
          const child = run("sh", [
            "-c",
            `ulimit -n ${LIMIT} && export DENO_NO_UPDATE_CHECK=1 && exec "$0" "$@"`,
            cmd,
            ...args,
          ]);
          const flood: net.Socket[] = [];
          try {
            await waitFor(() => /^\d+$/m.test(child.out()), 20_000, "the listener's port");
            const port = Number(/^(\d+)$/m.exec(child.out())![1]);
            let served = 0;
            const released: Promise<void>[] = [];
            for (let i = 0; i < FLOOD; i++) {
              const s = net.connect({ host: "127.0.0.1", port });
              s.on("error", () => {});
              s.once("data", () => {
                served++;
                released.push(new Promise((r) => s.once("close", () => r())));
              });
              s.write("x");
              flood.push(s);
            }
            // Wait until the listener took what it could: no client served for 500 ms.
            const until = Date.now() + 20_000;
            for (let last = -1; served !== last || served === 0;) {
              assert.ok(Date.now() < until, `the flood is still being served (${served})`);
              last = served;
              await new Promise((r) => setTimeout(r, 500));
            }
            assert.ok(served < FLOOD, `${served} of ${FLOOD} served: descriptors did not run out`);
            // The flood leaves; the listener closes the streams it served.
            for (const s of flood) s.end();
            await within(Promise.all(released), 10_000, "the served clients to be closed");
            // Served again within a bound (the longest back-off is 1 s).
            for (let attempt = 1;; attempt++) {
              try {
                await echoOnce(platform, port, 3000);
                break;
              } catch (e) {
                if (attempt === 5) throw e;
                await new Promise((r) => setTimeout(r, 200));
              }
            }
            await echoOnce(platform, port, 3000);
            assert.equal(child.child.exitCode, null, "the listener's process is running");
            assert.doesNotMatch(child.out(), /^error/m, "the server reported no error");
          } finally {
            for (const s of flood) s.destroy();
            child.kill();
            await child.exit().catch(() => {});
          }
        },
      );
    });

    describe("ref and unref", () => {
      it("unref'd handles still work, and ref and unref are harmless after close", async () => {
        const h = await openHandles(platform);
        for (const x of h.all) {
          x.unref();
          x.unref();
          x.ref();
          x.ref();
          x.unref();
        }
        await h.roundTrip();
        await h.roundTrip();
        await h.close();
        for (const x of h.all) {
          x.ref();
          x.unref();
        }
      });

      it(
        "unref'd handles let the process exit; referenced ones keep it alive",
        { skip: options.entry === undefined, timeout: 30_000 },
        async () => {
          let received = 0;
          const sink = await platform.tcpListen(
            { address: "127.0.0.1", port: 0, family: "IPv4" },
            {
              onConnection: () => ({
                onData: (b) => void (received += b.byteLength),
                onDrain: () => {},
                onClose: () => {},
              }),
            },
          );
          const children: Record<string, Proc> = {};
          const modes = ["unref", "reref", "ref", `flush:${sink.localAddress!.port}`];
          for (const mode of modes) {
            children[mode.replace(/:.*/, "")] = run(
              ...runtimeCommand(options.entry!, [SOCKET_CHILD, mode]),
            );
          }
          try {
            // Unref'd: exits by itself, after it printed `ready` (no failure on the way).
            const started = performance.now();
            assert.equal(await children.unref.exit(15_000), 0);
            assert.match(children.unref.out(), /^ready$/m);
            // Unref'd with bytes queued: exits once they were written, none lost.
            assert.equal(await children.flush.exit(15_000), 0);
            assert.match(children.flush.out(), /^ready$/m);
            await waitFor(() => received === 32 * 1024 * 1024, 5000, "32 MiB from the child");
            // Referenced (never unref'd, or ref'd again): still running 1.5 s after `ready`.
            for (const mode of ["reref", "ref"]) {
              const c = children[mode];
              await waitFor(() => c.out().includes("ready"), 15_000, `"ready" from "${mode}"`);
            }
            await new Promise((r) => setTimeout(r, 1500));
            for (const mode of ["reref", "ref"]) {
              const c = children[mode].child;
              assert.equal(c.exitCode, null, `the "${mode}" child is still running`);
              assert.equal(c.signalCode, null);
            }
            assert.ok(performance.now() - started < 20_000);
          } finally {
            for (const c of Object.values(children)) c.kill();
            await sink.close();
          }
        },
      );
    });

    describe("MulticastSocket", () => {
      it("validates groups and sets TTL and loopback mode", async () => {
        const m = constructMulticastSocketInstance(opts);
        try {
          await rejectsWith(m.addMembership({ address: "10.0.0.1", port: 0 }), 401);
          await rejectsWith(m.setMulticastTTL(3), 2301009);
          await m.bind({ address: "127.0.0.1", port: 0 });
          await m.setMulticastTTL(3);
          assert.equal(await m.getMulticastTTL(), 3);
          await m.setLoopbackMode(false);
          assert.equal(await m.getLoopbackMode(), false);
          await rejectsWith(m.setMulticastTTL(256), 401);
        } finally {
          await m.close();
        }
      });
    });
  });
}

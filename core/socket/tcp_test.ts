/**
 * Unit tests with injected platforms (no socket, no network): the connect
 * timeout (default 5000 ms) with a platform whose connect never completes, a
 * server whose listener dies, and a server's room for clients.
 *
 * @module
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { BusinessError, PlatformError } from "../errors.ts";
import type { ListenerEvents, SocketPlatform, StreamHandle } from "./platform.ts";
import { TCPSocket } from "./tcp.ts";
import { TCPSocketServer } from "./tcp_server.ts";
import { LocalSocket } from "./local.ts";

/** A platform whose connects settle only when the test says so. */
function stalledPlatform(late?: { after: number; handle: StreamHandle }): SocketPlatform {
  const opening = () =>
    new Promise<StreamHandle>((resolve) => {
      if (late !== undefined) setTimeout(() => resolve(late.handle), late.after);
    });
  const none = () => Promise.reject(new Error("not used"));
  return {
    name: "node",
    tcpConnect: opening,
    unixConnect: opening,
    tcpListen: none,
    unixListen: none,
    udpBind: none,
  };
}

/**
 * Call `start` with `setTimeout` replaced by one that records each delay and
 * fires at once; the real one is back before `start`'s promise settles.
 */
function withFastTimers<T>(start: () => Promise<T>): { delays: number[]; result: Promise<T> } {
  const real = globalThis.setTimeout;
  const delays: number[] = [];
  globalThis.setTimeout = ((cb: () => void, ms?: number) => {
    delays.push(ms ?? 0);
    return real(cb, 0);
  }) as typeof setTimeout;
  try {
    return { delays, result: start() };
  } finally {
    globalThis.setTimeout = real;
  }
}

async function rejection(p: Promise<unknown>): Promise<BusinessError<unknown>> {
  try {
    await p;
  } catch (e) {
    return e as BusinessError<unknown>;
  }
  assert.fail("expected a rejection");
}

describe("connect timeout", () => {
  it("is 5000 ms by default (and for timeout 0), then 2301110", async () => {
    for (const timeout of [undefined, 0]) {
      const tcp = new TCPSocket(stalledPlatform());
      const { delays, result } = withFastTimers(() =>
        tcp.connect({ address: { address: "127.0.0.1", port: 9 }, timeout })
      );
      const e = await rejection(result);
      assert.deepEqual(delays, [5000]);
      assert.equal(e.code, 2301110);
      assert.equal(e.message, 'Cannot connect to "127.0.0.1" port 9: timed out after 5000 ms');
      assert.deepEqual(await tcp.getState(), {
        isBound: false,
        isClose: false,
        isConnected: false,
      });
      await tcp.close();
    }
  });

  it("is 5000 ms by default for a local socket too", async () => {
    const local = new LocalSocket(stalledPlatform());
    const { delays, result } = withFastTimers(() =>
      local.connect({ address: { address: "/tmp/linkweave-none.sock" } })
    );
    assert.equal((await rejection(result)).code, 2301110);
    assert.deepEqual(delays, [5000]);
  });

  it("goes off on time in real time, in both forms", async () => {
    const tcp = new TCPSocket(stalledPlatform());
    const address = { address: "127.0.0.1", port: 9 };
    const t0 = performance.now();
    const e = await rejection(tcp.connect({ address, timeout: 150 }));
    const ms = performance.now() - t0;
    assert.equal(e.code, 2301110);
    assert.ok(ms >= 140 && ms < 2000, `timed out after ${ms} ms`);
    const viaCallback = await new Promise<BusinessError<unknown> | undefined>((resolve) =>
      new TCPSocket(stalledPlatform()).connect({ address, timeout: 50 }, (err) => resolve(err))
    );
    assert.equal(viaCallback?.code, 2301110);
  });

  it("closes a connection that completes after the timeout", async () => {
    let closed = 0;
    const handle = {
      localAddress: undefined,
      remoteAddress: undefined,
      write: () => true,
      close: () => {
        closed++;
        return Promise.resolve();
      },
      ref() {},
      unref() {},
      setOption: () => false,
      getOption: () => undefined,
    } satisfies StreamHandle;
    const tcp = new TCPSocket(stalledPlatform({ after: 60, handle }));
    const e = await rejection(
      tcp.connect({ address: { address: "127.0.0.1", port: 9 }, timeout: 20 }),
    );
    assert.equal(e.code, 2301110);
    await new Promise((r) => setTimeout(r, 120));
    assert.equal(closed, 1);
    // The late handle was closed, not attached.
    assert.equal((await tcp.getState()).isConnected, false);
  });
});

/** A platform whose TCP listeners die when the test says so. */
function dyingListeners(): { platform: SocketPlatform; die(e: BusinessError<unknown>): void } {
  const live: ListenerEvents[] = [];
  let port = 40000;
  const none = () => Promise.reject(new Error("not used"));
  return {
    platform: {
      name: "node",
      tcpConnect: none,
      unixConnect: none,
      tcpListen: (local, events) => {
        live.push(events);
        return Promise.resolve({
          localAddress: { ...local, port: port++ },
          ref() {},
          unref() {},
          close: () => Promise.resolve(),
        });
      },
      unixListen: none,
      udpBind: none,
    },
    die: (e) => live.shift()?.onError?.(e),
  };
}

describe("a TCPSocketServer whose listener dies", () => {
  it("emits error with the errno as OpenHarmony does, stops listening, and may listen again", async () => {
    const { platform, die } = dyingListeners();
    const server = new TCPSocketServer(platform);
    const errors: BusinessError[] = [];
    server.on("error", (e) => errors.push(e));
    await server.listen({ address: "127.0.0.1", port: 0 });
    assert.equal((await server.getState()).isBound, true);
    const cause = new PlatformError(2301009, 'Cannot accept on "127.0.0.1" port 0: bad fd', {
      data: { platform: "node", name: "EBADF" },
    });
    die(cause);
    assert.equal(errors.length, 1);
    assert.ok(errors[0] instanceof BusinessError);
    assert.equal(errors[0].code, 9);
    assert.equal(errors[0].message, cause.message);
    assert.equal(errors[0].cause, cause);
    assert.equal((await server.getState()).isBound, false);
    assert.equal((await rejection(server.getLocalAddress())).code, 2301009);
    await server.listen({ address: "127.0.0.1", port: 0 });
    assert.equal((await server.getLocalAddress()).port, 40001);
    await server.close();
    die(cause); // after close: nothing more
    assert.equal(errors.length, 1);
  });
});

describe("a TCPSocketServer's clients", () => {
  it("leave room for new ones when they close, whatever close callbacks the app set", async () => {
    let listener: ListenerEvents | undefined;
    const none = () => Promise.reject(new Error("not used"));
    const server = new TCPSocketServer({
      name: "node",
      tcpConnect: none,
      unixConnect: none,
      tcpListen: (local, events) => {
        listener = events;
        return Promise.resolve({
          localAddress: local,
          ref() {},
          unref() {},
          close: async () => {},
        });
      },
      unixListen: none,
      udpBind: none,
    });
    let connected = 0;
    server.on("connect", (c) => {
      connected++;
      c.on("close", () => {}); // the app's own close callback
    });
    await server.listen({ address: "127.0.0.1", port: 0 });
    const handle = (): StreamHandle => ({
      localAddress: undefined,
      remoteAddress: undefined,
      write: () => true,
      close: () => Promise.resolve(),
      ref() {},
      unref() {},
      setOption: () => false,
      getOption: () => undefined,
    });
    // More clients than MAX_CLIENTS (1024) over time, never more than one at once.
    for (let i = 0; i < 1100; i++) listener!.onConnection(handle()).onClose();
    assert.equal(connected, 1100);
    await server.close();
  });
});

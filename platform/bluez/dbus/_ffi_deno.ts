/**
 * The C library on Deno (`Deno.dlopen`, needs `--allow-ffi`): readiness comes
 * from a `poll` run with `nonblocking: true`, which Deno runs on a helper
 * thread and resolves on the JavaScript thread.
 *
 * @module
 */
import { Libc, LoopPoller, type RawLibc } from "./_ffi.ts";

/** The parts of Deno's FFI used here. */
interface DenoFfi {
  dlopen(path: string, symbols: Record<string, unknown>): {
    symbols: Record<string, (...args: unknown[]) => unknown>;
  };
  UnsafePointer: {
    of(buf: ArrayBuffer): unknown;
    value(p: unknown): bigint | number;
  };
  UnsafePointerView: new (p: unknown) => { getInt32(offset?: number): number };
  permissions: { querySync(d: { name: string }): { state: string } };
}

const LIBC = "libc.so.6";

/**
 * Bind the C library on Deno.
 *
 * @returns The library, or `undefined` without `--allow-ffi`.
 */
export function denoLibc(): Libc | undefined {
  const deno = (globalThis as unknown as { Deno: DenoFfi }).Deno;
  if (deno.permissions.querySync({ name: "ffi" }).state !== "granted") return undefined;
  const i32 = "i32";
  const lib = deno.dlopen(LIBC, {
    socket: { parameters: [i32, i32, i32], result: i32 },
    connect: { parameters: [i32, "buffer", "u32"], result: i32 },
    socketpair: { parameters: [i32, i32, i32, "buffer"], result: i32 },
    sendmsg: { parameters: [i32, "buffer", i32], result: "isize" },
    recvmsg: { parameters: [i32, "buffer", i32], result: "isize" },
    send: { parameters: [i32, "buffer", "usize", i32], result: "isize" },
    recv: { parameters: [i32, "buffer", "usize", i32], result: "isize" },
    close: { parameters: [i32], result: i32 },
    eventfd: { parameters: ["u32", i32], result: i32 },
    write: { parameters: [i32, "buffer", "usize"], result: "isize" },
    read: { parameters: [i32, "buffer", "usize"], result: "isize" },
    __errno_location: { parameters: [], result: "pointer" },
    poll: { parameters: ["buffer", "u64", i32], result: i32, nonblocking: true },
  });
  const f = lib.symbols;
  const errnoView = new deno.UnsafePointerView(f.__errno_location());
  const raw: RawLibc = {
    runtime: "deno",
    addr: (buf) => Number(deno.UnsafePointer.value(deno.UnsafePointer.of(buf))),
    socket: (d, t, p) => f.socket(d, t, p) as number,
    connect: (fd, a, len) => f.connect(fd, a, len) as number,
    socketpair: (d, t, p, sv) => f.socketpair(d, t, p, sv) as number,
    sendmsg: (fd, m, flags) => Number(f.sendmsg(fd, m, flags)),
    recvmsg: (fd, m, flags) => Number(f.recvmsg(fd, m, flags)),
    send: (fd, b, n, flags) => Number(f.send(fd, b, BigInt(n), flags)),
    recv: (fd, b, n, flags) => Number(f.recv(fd, b, BigInt(n), flags)),
    close: (fd) => f.close(fd) as number,
    eventfd: (v, flags) => f.eventfd(v, flags) as number,
    write: (fd, b, n) => Number(f.write(fd, b, BigInt(n))),
    read: (fd, b, n) => Number(f.read(fd, b, BigInt(n))),
    errno: () => errnoView.getInt32(0),
  };
  // A pending nonblocking call keeps Deno alive; Deno's core can unref its
  // promise (not a stable API: without it the wait always keeps the process
  // alive, as it did before).
  const core = (deno as unknown as Record<symbol | string, unknown>)[
    (deno as unknown as { internal: symbol | string }).internal
  ] as { core?: OpRef } | undefined;
  const ops = typeof core?.core?.unrefOpPromise === "function" ? core.core : undefined;
  let refd = true;
  let pending: Promise<number> | undefined;
  const poller = new LoopPoller(raw, {
    alloc: (n) => new Uint8Array(new ArrayBuffer(n * 8)),
    wait: (buf, n) => {
      const p = f.poll(buf, BigInt(n), -1) as Promise<number>;
      pending = p;
      if (!refd) ops?.unrefOpPromise(p);
      return p.finally(() => {
        if (pending === p) pending = undefined;
      });
    },
    ref: (busy) => {
      if (busy === refd) return;
      refd = busy;
      if (pending === undefined) return;
      try {
        if (busy) ops?.refOpPromise(pending);
        else ops?.unrefOpPromise(pending);
      } catch {
        // the op completed meanwhile
      }
    },
  });
  return new Libc(raw, poller);
}

/** Deno's (internal) ref counting of pending ops. */
interface OpRef {
  refOpPromise(p: Promise<unknown>): void;
  unrefOpPromise(p: Promise<unknown>): void;
}

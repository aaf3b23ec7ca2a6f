/**
 * The C library on Bun (`bun:ffi`). `bun:ffi` has no asynchronous calls, so
 * readiness comes from a small Worker that blocks in `poll` on a `pollfd`
 * array in shared memory and posts a message when it returns.
 *
 * @module
 */
import { Libc, LoopPoller, type RawLibc } from "./_ffi.ts";

/** The parts of `bun:ffi` used here. */
interface BunFfi {
  dlopen(path: string, symbols: Record<string, unknown>): {
    symbols: Record<string, (...args: unknown[]) => unknown>;
  };
  ptr(buf: ArrayBuffer | ArrayBufferView): number;
  read: { i32(p: number, offset?: number): number };
}

/** A Worker as Bun has it. */
interface BunWorker {
  postMessage(m: unknown): void;
  onmessage: ((e: { data: unknown }) => void) | null;
  ref(): void;
  unref(): void;
}

const LIBC = "libc.so.6";
/** Most descriptors the Worker polls at once (the eventfd included). */
const MAX_POLLED = 256;

/** The Worker: waits to be armed, polls, reports, and again. */
const WORKER = `
import { dlopen, ptr } from "bun:ffi";
const lib = dlopen(${
  JSON.stringify(LIBC)
}, { poll: { args: ["ptr", "u64", "i32"], returns: "i32" } });
self.onmessage = (e) => {
  const ctl = new Int32Array(e.data, 0, 2);
  const fds = new Uint8Array(e.data, 8);
  const p = ptr(fds);
  for (;;) {
    Atomics.wait(ctl, 0, 0);
    const n = Atomics.load(ctl, 0);
    if (n < 0) return;
    lib.symbols.poll(p, n, -1);
    Atomics.store(ctl, 0, 0);
    postMessage(0);
  }
};
`;

/**
 * Bind the C library on Bun.
 *
 * @returns The library.
 */
export async function bunLibc(): Promise<Libc> {
  const spec = "bun:ffi";
  const ffi = (await import(spec)) as BunFfi;
  const lib = ffi.dlopen(LIBC, {
    socket: { args: ["i32", "i32", "i32"], returns: "i32" },
    connect: { args: ["i32", "ptr", "u32"], returns: "i32" },
    socketpair: { args: ["i32", "i32", "i32", "ptr"], returns: "i32" },
    sendmsg: { args: ["i32", "ptr", "i32"], returns: "i64" },
    recvmsg: { args: ["i32", "ptr", "i32"], returns: "i64" },
    send: { args: ["i32", "ptr", "u64", "i32"], returns: "i64" },
    recv: { args: ["i32", "ptr", "u64", "i32"], returns: "i64" },
    close: { args: ["i32"], returns: "i32" },
    eventfd: { args: ["u32", "i32"], returns: "i32" },
    write: { args: ["i32", "ptr", "u64"], returns: "i64" },
    read: { args: ["i32", "ptr", "u64"], returns: "i64" },
    __errno_location: { args: [], returns: "ptr" },
  });
  const f = lib.symbols;
  const errnoAt = f.__errno_location() as number;
  const raw: RawLibc = {
    runtime: "bun",
    addr: (buf) => ffi.ptr(buf),
    socket: (d, t, p) => f.socket(d, t, p) as number,
    connect: (fd, a, len) => f.connect(fd, a, len) as number,
    socketpair: (d, t, p, sv) => f.socketpair(d, t, p, sv) as number,
    sendmsg: (fd, m, flags) => Number(f.sendmsg(fd, m, flags)),
    recvmsg: (fd, m, flags) => Number(f.recvmsg(fd, m, flags)),
    send: (fd, b, n, flags) => Number(f.send(fd, b, n, flags)),
    recv: (fd, b, n, flags) => Number(f.recv(fd, b, n, flags)),
    close: (fd) => f.close(fd) as number,
    eventfd: (v, flags) => f.eventfd(v, flags) as number,
    write: (fd, b, n) => Number(f.write(fd, b, n)),
    read: (fd, b, n) => Number(f.read(fd, b, n)),
    errno: () => ffi.read.i32(errnoAt, 0),
  };
  const shared = new SharedArrayBuffer(8 + MAX_POLLED * 8);
  const ctl = new Int32Array(shared, 0, 2);
  const url = URL.createObjectURL(new Blob([WORKER], { type: "application/javascript" }));
  const WorkerCtor = (globalThis as unknown as { Worker: new (url: string) => BunWorker }).Worker;
  const worker = new WorkerCtor(url);
  worker.unref();
  worker.postMessage(shared);
  let keepAlive: ReturnType<typeof setInterval> | undefined;
  let wake: (() => void) | undefined;
  worker.onmessage = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  const poller = new LoopPoller(raw, {
    alloc: (n) => {
      if (n > MAX_POLLED) throw new Error(`Cannot watch more than ${MAX_POLLED - 1} descriptors`);
      return new Uint8Array(shared, 8, n * 8);
    },
    wait: (_buf, n) =>
      new Promise<void>((resolve) => {
        wake = resolve;
        Atomics.store(ctl, 0, n);
        Atomics.notify(ctl, 0);
      }),
    // The Worker itself stays unreferenced (a Worker that is referenced
    // again after unref() delivers its messages several times slower); a
    // timer keeps the process alive while something is watched.
    ref: (busy) => {
      if (busy) keepAlive ??= setInterval(() => {}, 1 << 30);
      else if (keepAlive !== undefined) {
        clearInterval(keepAlive);
        keepAlive = undefined;
      }
    },
  });
  return new Libc(raw, poller);
}

/**
 * Unix sockets with descriptor passing (`SCM_RIGHTS`) through the C library,
 * for the runtimes that can call it: Deno (`Deno.dlopen`, needs
 * `--allow-ffi`) and Bun (`bun:ffi`). Node 20 has no FFI: there
 * {@linkcode loadLibc} resolves `undefined` and callers fall back to the
 * runtime's own sockets, without descriptors.
 *
 * Struct layouts are those of LP64 Linux (x86-64 and aarch64 agree):
 * `msghdr` 56 bytes, `iovec` 16, `cmsghdr` 16 + data, `pollfd` 8,
 * `sockaddr_un` 110. Every buffer whose address goes into a struct is an
 * `ArrayBuffer` this module allocates and keeps, so it never moves.
 *
 * @module
 */
import type { UnixAddress } from "./address.ts";

/** The raw C functions a runtime binding provides (negative results: -1, see `errno`). */
export interface RawLibc {
  /** The runtime. */
  readonly runtime: "deno" | "bun";
  /** The address of a buffer this module keeps alive. */
  addr(buf: ArrayBuffer): number;
  socket(domain: number, type: number, protocol: number): number;
  connect(fd: number, addr: Uint8Array, len: number): number;
  socketpair(domain: number, type: number, protocol: number, sv: Int32Array): number;
  sendmsg(fd: number, msghdr: Uint8Array, flags: number): number;
  recvmsg(fd: number, msghdr: Uint8Array, flags: number): number;
  send(fd: number, buf: Uint8Array, len: number, flags: number): number;
  recv(fd: number, buf: Uint8Array, len: number, flags: number): number;
  close(fd: number): number;
  eventfd(initval: number, flags: number): number;
  write(fd: number, buf: Uint8Array, len: number): number;
  read(fd: number, buf: Uint8Array, len: number): number;
  /** The calling thread's `errno`. */
  errno(): number;
}

/** `poll` event bits. */
export const POLL = { IN: 0x1, OUT: 0x4, ERR: 0x8, HUP: 0x10, NVAL: 0x20 } as const;

/** Watches descriptors for readiness and calls back on the JavaScript thread. */
export interface Poller {
  /**
   * Watch a descriptor.
   *
   * @param fd The descriptor.
   * @param events `POLL.IN` and/or `POLL.OUT`.
   * @param onReady Called with the returned events while the descriptor is ready.
   * @param keepAlive Whether watching it keeps the process alive. @default {true}
   */
  add(fd: number, events: number, onReady: (revents: number) => void, keepAlive?: boolean): void;
  /** Change what a watched descriptor waits for. */
  modify(fd: number, events: number): void;
  /** Change whether watching a descriptor keeps the process alive. */
  keepAlive(fd: number, keep: boolean): void;
  /** Stop watching (before closing it). */
  remove(fd: number): void;
}

const AF_UNIX = 1;
const SOCK_STREAM = 1;
const SOCK_SEQPACKET = 5;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const MSG_DONTWAIT = 0x40;
const MSG_NOSIGNAL = 0x4000;
const MSG_CTRUNC = 0x8;
const MSG_CMSG_CLOEXEC = 0x40000000;
const SOL_SOCKET = 1;
const SCM_RIGHTS = 1;

/** errno values used here. */
export const Errno = { EINTR: 4, EAGAIN: 11, EINPROGRESS: 115 } as const;

/** Most descriptors one `sendmsg`/`recvmsg` carries (the kernel's `SCM_MAX_FD`). */
export const MAX_FDS_PER_CALL = 253;

const CMSG_SPACE_MAX = 16 + ((MAX_FDS_PER_CALL * 4 + 7) & ~7);

/** The size of the receive buffer of {@linkcode Libc.recvmsg}. */
export const RECV_BUFFER: number = 64 * 1024;

/** Typed socket calls with errno, over a {@linkcode RawLibc}. */
export class Libc {
  /** The binding. */
  readonly raw: RawLibc;
  /** The readiness poller. */
  readonly poller: Poller;
  #msghdr = new Uint8Array(new ArrayBuffer(56));
  #msgView = new DataView(this.#msghdr.buffer);
  #iov = new Uint8Array(new ArrayBuffer(16));
  #iovView = new DataView(this.#iov.buffer);
  #cmsg = new Uint8Array(new ArrayBuffer(CMSG_SPACE_MAX));
  #cmsgView = new DataView(this.#cmsg.buffer);
  #out = new Uint8Array(new ArrayBuffer(64 * 1024));
  #in = new Uint8Array(new ArrayBuffer(RECV_BUFFER));
  #sv = new Int32Array(new ArrayBuffer(8));
  #addrs: { iov: number; cmsg: number; out: number; in: number };

  /**
   * @param raw The runtime's binding.
   * @param poller The runtime's poller.
   */
  constructor(raw: RawLibc, poller: Poller) {
    this.raw = raw;
    this.poller = poller;
    this.#addrs = {
      iov: raw.addr(this.#iov.buffer as ArrayBuffer),
      cmsg: raw.addr(this.#cmsg.buffer as ArrayBuffer),
      out: raw.addr(this.#out.buffer as ArrayBuffer),
      in: raw.addr(this.#in.buffer as ArrayBuffer),
    };
  }

  #err(r: number): number {
    return r < 0 ? -this.raw.errno() : r;
  }

  /**
   * Connect a non-blocking Unix stream socket.
   *
   * @param address Path or abstract name.
   * @returns The descriptor, or `-errno`.
   */
  connectUnix(address: UnixAddress): number {
    const fd = this.raw.socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -this.raw.errno();
    const name = new TextEncoder().encode(address.name);
    const sa = new Uint8Array(110);
    sa[0] = AF_UNIX;
    let len: number;
    if (address.kind === "abstract") {
      if (name.length > 107) return this.#fail(fd, 36);
      sa.set(name, 3);
      len = 3 + name.length;
    } else {
      if (name.length > 107) return this.#fail(fd, 36);
      sa.set(name, 2);
      len = 2 + name.length + 1;
    }
    // A blocking connect (a local socket connects at once or fails); every
    // later call on it passes MSG_DONTWAIT, so none of them blocks.
    if (this.raw.connect(fd, sa, len) < 0) return this.#fail(fd, this.raw.errno());
    return fd;
  }

  #fail(fd: number, errno: number): number {
    this.raw.close(fd);
    return -errno;
  }

  /**
   * A pair of connected non-blocking `SOCK_SEQPACKET` sockets, as bluetoothd
   * creates for `AcquireWrite`/`AcquireNotify`.
   *
   * @returns Both descriptors, or `-errno`.
   */
  seqpacketPair(): [number, number] | number {
    const r = this.raw.socketpair(
      AF_UNIX,
      SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC,
      0,
      this.#sv,
    );
    if (r < 0) return -this.raw.errno();
    return [this.#sv[0], this.#sv[1]];
  }

  /**
   * Send bytes and descriptors without blocking.
   *
   * @param fd The socket.
   * @param bytes The bytes (copied before the call).
   * @param fds Descriptors to pass with the first byte.
   * @returns Bytes sent, or `-errno`.
   */
  sendmsg(fd: number, bytes: Uint8Array, fds: readonly number[] = []): number {
    if (bytes.length > this.#out.length) {
      let size = this.#out.length * 2;
      while (size < bytes.length) size *= 2;
      this.#out = new Uint8Array(new ArrayBuffer(size));
      this.#addrs.out = this.raw.addr(this.#out.buffer as ArrayBuffer);
    }
    this.#out.set(bytes);
    const m = this.#msgView;
    this.#msghdr.fill(0);
    this.#iovView.setBigUint64(0, BigInt(this.#addrs.out), true);
    this.#iovView.setBigUint64(8, BigInt(bytes.length), true);
    m.setBigUint64(16, BigInt(this.#addrs.iov), true);
    m.setBigUint64(24, 1n, true);
    if (fds.length > 0) {
      const dataLen = fds.length * 4;
      const c = this.#cmsgView;
      c.setBigUint64(0, BigInt(16 + dataLen), true);
      c.setInt32(8, SOL_SOCKET, true);
      c.setInt32(12, SCM_RIGHTS, true);
      for (let i = 0; i < fds.length; i++) c.setInt32(16 + i * 4, fds[i], true);
      m.setBigUint64(32, BigInt(this.#addrs.cmsg), true);
      m.setBigUint64(40, BigInt(16 + ((dataLen + 7) & ~7)), true);
    }
    return this.#err(this.raw.sendmsg(fd, this.#msghdr, MSG_DONTWAIT | MSG_NOSIGNAL));
  }

  /**
   * Receive bytes and descriptors without blocking.
   *
   * @param fd The socket.
   * @param fds Received descriptors are appended here.
   * @returns The bytes (a copy; empty at end of stream), or `-errno`.
   */
  recvmsg(fd: number, fds: number[]): Uint8Array | number {
    const m = this.#msgView;
    this.#msghdr.fill(0);
    this.#iovView.setBigUint64(0, BigInt(this.#addrs.in), true);
    this.#iovView.setBigUint64(8, BigInt(this.#in.length), true);
    m.setBigUint64(16, BigInt(this.#addrs.iov), true);
    m.setBigUint64(24, 1n, true);
    m.setBigUint64(32, BigInt(this.#addrs.cmsg), true);
    m.setBigUint64(40, BigInt(CMSG_SPACE_MAX), true);
    const n = this.raw.recvmsg(fd, this.#msghdr, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n < 0) return -this.raw.errno();
    const controlLen = Number(m.getBigUint64(40, true));
    const c = this.#cmsgView;
    let at = 0;
    while (at + 16 <= controlLen) {
      const len = Number(c.getBigUint64(at, true));
      if (len < 16) break;
      if (c.getInt32(at + 8, true) === SOL_SOCKET && c.getInt32(at + 12, true) === SCM_RIGHTS) {
        for (let i = at + 16; i + 4 <= at + len; i += 4) fds.push(c.getInt32(i, true));
      }
      at += (len + 7) & ~7;
    }
    if ((m.getInt32(48, true) & MSG_CTRUNC) !== 0) {
      // Descriptors were dropped by the kernel; the caller sees fewer than declared.
    }
    return this.#in.slice(0, n);
  }

  /**
   * Send one packet without blocking or `SIGPIPE`.
   *
   * @param fd The socket.
   * @param bytes The packet.
   * @returns Bytes sent, or `-errno`.
   */
  send(fd: number, bytes: Uint8Array): number {
    if (bytes.length > this.#out.length) return this.sendmsg(fd, bytes);
    this.#out.set(bytes);
    return this.#err(this.raw.send(fd, this.#out, bytes.length, MSG_DONTWAIT | MSG_NOSIGNAL));
  }

  /**
   * Receive one packet without blocking.
   *
   * @param fd The socket.
   * @returns The packet (a copy; empty at end of stream), or `-errno`.
   */
  recv(fd: number): Uint8Array | number {
    const n = this.raw.recv(fd, this.#in, this.#in.length, MSG_DONTWAIT);
    if (n < 0) return -this.raw.errno();
    return this.#in.slice(0, n);
  }

  /**
   * Close a descriptor.
   *
   * @param fd The descriptor.
   */
  close(fd: number): void {
    this.raw.close(fd);
  }
}

let loaded: Promise<Libc | undefined> | undefined;

/**
 * The C library of this runtime, once: Deno (when `--allow-ffi` is granted)
 * and Bun; `undefined` on Node, without FFI permission, or without glibc.
 *
 * @returns The library, or `undefined`.
 */
export function loadLibc(): Promise<Libc | undefined> {
  loaded ??= (async () => {
    try {
      if ("Bun" in globalThis) {
        const { bunLibc } = await import("./_ffi_bun.ts");
        return await bunLibc();
      }
      if ("Deno" in globalThis) {
        const { denoLibc } = await import("./_ffi_deno.ts");
        return denoLibc();
      }
    } catch {
      // No FFI here (permission, library or runtime): use the fallback.
    }
    return undefined;
  })();
  return loaded;
}

/** How a runtime waits for readiness of a `pollfd` array. */
export interface PollBackend {
  /** A `pollfd` array for `n` entries, in memory the waiting side can see. */
  alloc(n: number): Uint8Array;
  /** Wait until one of the first `n` entries is ready (`poll` with no timeout). */
  wait(pollfds: Uint8Array, n: number): Promise<unknown>;
  /**
   * Whether the wait keeps the process alive: `true` while a watched
   * descriptor asks for it, `false` when none does (or nothing is watched).
   */
  ref(busy: boolean): void;
}

/**
 * A {@linkcode Poller} over one `poll` at a time on a helper thread: an
 * eventfd in the first slot wakes it when the watched set changes. Level
 * triggered: a descriptor that stays ready is reported again.
 */
export class LoopPoller implements Poller {
  #raw: RawLibc;
  #backend: PollBackend;
  #watches = new Map<number, { events: number; cb: (revents: number) => void; keep: boolean }>();
  #keepers = 0;
  #refd = false;
  #wake: number;
  #running = false;
  #waiting = false;
  #woken = false;
  #one = new Uint8Array(new ArrayBuffer(8));
  #drain = new Uint8Array(new ArrayBuffer(8));

  /**
   * @param raw The C library.
   * @param backend How this runtime waits.
   */
  constructor(raw: RawLibc, backend: PollBackend) {
    this.#raw = raw;
    this.#backend = backend;
    this.#wake = raw.eventfd(0, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (this.#wake < 0) throw new Error(`eventfd failed: errno ${raw.errno()}`);
    new DataView(this.#one.buffer).setBigUint64(0, 1n, true);
    backend.ref(false);
  }

  add(fd: number, events: number, onReady: (revents: number) => void, keepAlive = true): void {
    this.remove(fd);
    this.#watches.set(fd, { events, cb: onReady, keep: keepAlive });
    if (keepAlive) this.#keepers++;
    this.#changed();
    this.#ref();
  }

  keepAlive(fd: number, keep: boolean): void {
    const w = this.#watches.get(fd);
    if (w === undefined || w.keep === keep) return;
    w.keep = keep;
    this.#keepers += keep ? 1 : -1;
    this.#ref();
  }

  /** Tell the backend whether the loop should keep the process alive now. */
  #ref(): void {
    const want = this.#running && this.#keepers > 0;
    if (want === this.#refd) return;
    this.#refd = want;
    this.#backend.ref(want);
  }

  modify(fd: number, events: number): void {
    const w = this.#watches.get(fd);
    if (w === undefined || w.events === events) return;
    w.events = events;
    this.#changed();
  }

  remove(fd: number): void {
    const w = this.#watches.get(fd);
    if (w === undefined) return;
    this.#watches.delete(fd);
    if (w.keep) this.#keepers--;
    this.#changed();
    this.#ref();
  }

  #changed(): void {
    if (this.#waiting) {
      // A poll is outstanding with the old set: wake it once.
      if (!this.#woken) {
        this.#woken = true;
        this.#raw.write(this.#wake, this.#one, 8);
      }
    } else if (!this.#running && this.#watches.size > 0) {
      // The loop re-reads the set before each poll; start it if it is idle.
      this.#running = true;
      this.#ref();
      queueMicrotask(() => this.#loop());
    }
  }

  async #loop(): Promise<void> {
    while (this.#watches.size > 0) {
      const n = this.#watches.size + 1;
      const buf = this.#backend.alloc(n);
      const v = new DataView(buf.buffer, buf.byteOffset, n * 8);
      v.setInt32(0, this.#wake, true);
      v.setInt16(4, POLL.IN, true);
      v.setInt16(6, 0, true);
      let i = 1;
      const order: number[] = [];
      for (const [fd, w] of this.#watches) {
        v.setInt32(i * 8, fd, true);
        v.setInt16(i * 8 + 4, w.events, true);
        v.setInt16(i * 8 + 6, 0, true);
        order.push(fd);
        i++;
      }
      this.#waiting = true;
      this.#woken = false;
      await this.#backend.wait(buf, n);
      this.#waiting = false;
      if ((v.getInt16(6, true) & POLL.IN) !== 0) this.#raw.read(this.#wake, this.#drain, 8);
      for (let k = 0; k < order.length; k++) {
        const revents = v.getInt16((k + 1) * 8 + 6, true);
        if (revents === 0) continue;
        const w = this.#watches.get(order[k]);
        if (w === undefined) continue;
        try {
          w.cb(revents);
        } catch (e) {
          queueMicrotask(() => {
            throw e;
          });
        }
      }
    }
    this.#running = false;
    this.#ref();
  }
}

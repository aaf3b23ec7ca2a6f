/**
 * The byte pipe under a bus connection, two ways:
 * - {@linkcode ffiTransport}: the socket driven through the C library
 *   (`sendmsg`/`recvmsg`), which passes file descriptors (Deno with
 *   `--allow-ffi`, Bun);
 * - {@linkcode socketTransport}: the runtime's own Unix-domain socket
 *   through linkweave's socket platform (every runtime; no descriptors).
 *
 * @module
 */
import { socketErrorCode } from "../../../core/error_codes.ts";
import { type BusinessError, PlatformError } from "../../../core/errors.ts";
import type { StreamHandle } from "../../../core/socket/platform.ts";
import { autoSocketPlatform, detectRuntime } from "../../auto.ts";
import type { UnixAddress } from "./address.ts";
import { Errno, type Libc, POLL } from "./_ffi.ts";

/** What a transport reports. */
export interface TransportEvents {
  /** Bytes arrived, with the descriptors that came with them (owned by the receiver). */
  onData(bytes: Uint8Array, fds: number[]): void;
  /** The transport closed; `error` when it failed. Called once, last. */
  onClose(error?: BusinessError<unknown>): void;
  /** The transport's write buffer drained after `blocked` became `true`. */
  onDrain?(): void;
}

/** A connected byte pipe to the bus. */
export interface BusTransport {
  /** Whether descriptors can travel on it. */
  readonly unixFds: boolean;
  /** Whether bytes wait in user space for the kernel (the writer should slow down). */
  readonly blocked: boolean;
  /**
   * Queue bytes (and descriptors, with the first byte); never throws. The
   * bytes are lent briefly: the transport copies what it keeps. With
   * `closeFds`, the transport closes the descriptors once they were sent
   * (or could not be); else they must stay open until the reply arrives.
   */
  write(bytes: Uint8Array, fds?: readonly number[], closeFds?: boolean): void;
  /** Close at once; `onClose` follows. */
  close(): void;
  /** Whether the open socket keeps the process alive (it does at first). */
  keepAlive(keep: boolean): void;
}

/**
 * An error for a failed socket call.
 *
 * @param action What was being done.
 * @param errno The errno.
 * @returns The error.
 */
export function errnoError(action: string, errno: number): PlatformError {
  const code = socketErrorCode(errno);
  return new PlatformError(code, `${action}: errno ${errno}`, {
    data: { platform: "bluez", name: `errno ${errno}` },
  });
}

/**
 * Connect through the C library.
 *
 * @param libc The C library.
 * @param address The bus address.
 * @param events The callbacks.
 * @returns The transport.
 * @throws {PlatformError} When the socket cannot connect.
 */
export function ffiTransport(
  libc: Libc,
  address: UnixAddress,
  events: TransportEvents,
): BusTransport {
  const fd = libc.connectUnix(address);
  if (fd < 0) throw errnoError(`Cannot connect to D-Bus socket "${address.name}"`, -fd);
  const queue: { bytes: Uint8Array; fds: readonly number[]; close: boolean }[] = [];
  let closed = false;
  const sent = (fds: readonly number[], close: boolean) => {
    if (close) { for (const x of fds) libc.close(x); }
  };
  const finish = (error?: BusinessError<unknown>) => {
    if (closed) return;
    closed = true;
    libc.poller.remove(fd);
    libc.close(fd);
    for (const q of queue.splice(0)) sent(q.fds, q.close);
    events.onClose(error);
  };
  const flush = (): boolean => {
    while (queue.length > 0) {
      const head = queue[0];
      const n = libc.sendmsg(fd, head.bytes, head.fds);
      if (n === -Errno.EAGAIN || n === -Errno.EINTR) return false;
      if (n < 0) {
        finish(errnoError("Cannot write to the D-Bus socket", -n));
        return false;
      }
      sent(head.fds, head.close);
      if (n < head.bytes.length) {
        // The descriptors went with the first byte.
        queue[0] = { bytes: head.bytes.subarray(n), fds: [], close: false };
        continue;
      }
      queue.shift();
    }
    return true;
  };
  const fds: number[] = [];
  const onReady = (revents: number) => {
    if ((revents & POLL.OUT) !== 0 && flush() && !closed) {
      libc.poller.modify(fd, POLL.IN);
      events.onDrain?.();
    }
    if ((revents & (POLL.IN | POLL.HUP | POLL.ERR)) === 0) return;
    for (let i = 0; i < 64 && !closed; i++) {
      const r = libc.recvmsg(fd, fds);
      if (r === -Errno.EAGAIN || r === -Errno.EINTR) return;
      if (typeof r === "number") {
        finish(errnoError("Cannot read from the D-Bus socket", -r));
        return;
      }
      if (r.length === 0) {
        for (const x of fds.splice(0)) libc.close(x);
        finish();
        return;
      }
      events.onData(r, fds.splice(0));
    }
  };
  libc.poller.add(fd, POLL.IN, onReady);
  return {
    unixFds: true,
    get blocked() {
      return queue.length > 0;
    },
    write(bytes, fdsOut = [], close = false) {
      if (closed) {
        sent(fdsOut, close);
        return;
      }
      if (queue.length === 0) {
        const n = libc.sendmsg(fd, bytes, fdsOut);
        if (n >= 0) sent(fdsOut, close);
        if (n === bytes.length) return;
        if (n >= 0) {
          queue.push({ bytes: bytes.slice(n), fds: [], close: false });
        } else if (n === -Errno.EAGAIN || n === -Errno.EINTR) {
          queue.push({ bytes: bytes.slice(), fds: [...fdsOut], close });
        } else {
          sent(fdsOut, close);
          finish(errnoError("Cannot write to the D-Bus socket", -n));
          return;
        }
        libc.poller.modify(fd, POLL.IN | POLL.OUT);
        return;
      }
      queue.push({ bytes: bytes.slice(), fds: [...fdsOut], close });
    },
    close() {
      finish();
    },
    keepAlive(keep) {
      if (!closed) libc.poller.keepAlive(fd, keep);
    },
  };
}

/**
 * Connect through the runtime's own Unix-domain socket (no descriptors).
 *
 * @param address The bus address.
 * @param events The callbacks.
 * @returns The transport.
 * @throws {BusinessError} When the socket cannot connect.
 */
export async function socketTransport(
  address: UnixAddress,
  events: TransportEvents,
): Promise<BusTransport> {
  if (address.kind === "abstract" && detectRuntime() === "node") {
    // libuv measures the path with strlen, so the name cannot be reached.
    throw new PlatformError(
      socketErrorCode("EAFNOSUPPORT"),
      `Cannot connect to abstract socket "${address.name}": Node cannot reach abstract sockets (use a unix:path= address)`,
      {
        data: { platform: "bluez", name: "EAFNOSUPPORT" },
      },
    );
  }
  const path = address.kind === "abstract" ? `\0${address.name}` : address.name;
  let handle: StreamHandle | undefined;
  let blocked = false;
  handle = await autoSocketPlatform().unixConnect(path, {
    onData: (bytes) => events.onData(bytes, []),
    onDrain: () => {
      blocked = false;
      events.onDrain?.();
    },
    onClose: (error) => {
      handle = undefined;
      events.onClose(error);
    },
  });
  return {
    unixFds: false,
    get blocked() {
      return blocked;
    },
    write(bytes) {
      if (handle?.write(bytes, "brief") === false) blocked = true;
    },
    close() {
      void handle?.close();
    },
    keepAlive(keep) {
      if (keep) handle?.ref();
      else handle?.unref();
    },
  };
}

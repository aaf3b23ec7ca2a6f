/**
 * A `SOCK_SEQPACKET` socket from BlueZ's `AcquireWrite`/`AcquireNotify`
 * (or one we hand to bluetoothd), driven through the C library: one packet
 * per GATT value, a send queue with backpressure, readiness from the poller.
 *
 * @module
 */
import { Errno, type Libc, POLL } from "./dbus/_ffi.ts";
import { errnoError } from "./dbus/_transport.ts";
import type { BusinessError } from "../../core/errors.ts";

/** Callbacks of a {@linkcode PacketSocket}. */
export interface PacketEvents {
  /** A packet arrived (owned by the receiver). */
  onPacket(bytes: Uint8Array): void;
  /** The send queue emptied after `send` returned `false`. */
  onDrain(): void;
  /** The socket closed: the peer hung up (`error` undefined) or failed. Called once. */
  onClose(error?: BusinessError<unknown>): void;
}

/** Most packets read per wake-up before others get their turn. */
const READS_PER_WAKE = 64;

/** One end of a packet socket pair. */
export class PacketSocket {
  #libc: Libc;
  #fd: number;
  #events: PacketEvents;
  #queue: Uint8Array[] = [];
  #closed = false;
  #blocked = false;

  /**
   * @param libc The C library.
   * @param fd The descriptor (owned from now on).
   * @param events The callbacks.
   * @param keepAlive Whether the open socket keeps the process alive. @default {true}
   */
  constructor(libc: Libc, fd: number, events: PacketEvents, keepAlive = true) {
    this.#libc = libc;
    this.#fd = fd;
    this.#events = events;
    // Always read: a hang-up shows as a read of 0 bytes, so a socket we only
    // write to still learns that the peer went away.
    libc.poller.add(fd, POLL.IN, (r) => this.#ready(r), keepAlive);
  }

  /** The descriptor. */
  get fd(): number {
    return this.#fd;
  }

  /** Packets waiting for the kernel. */
  get queued(): number {
    return this.#queue.length;
  }

  /** Whether it is closed. */
  get closed(): boolean {
    return this.#closed;
  }

  #ready(revents: number): void {
    if ((revents & POLL.OUT) !== 0) this.#flush();
    if (this.#closed || (revents & (POLL.IN | POLL.HUP | POLL.ERR)) === 0) return;
    for (let i = 0; i < READS_PER_WAKE && !this.#closed; i++) {
      const r = this.#libc.recv(this.#fd);
      if (r === -Errno.EAGAIN || r === -Errno.EINTR) return;
      if (typeof r === "number") {
        this.#finish(errnoError("Cannot read from the GATT socket", -r));
        return;
      }
      if (r.length === 0) {
        this.#finish();
        return;
      }
      this.#events.onPacket(r);
    }
  }

  #flush(): void {
    while (this.#queue.length > 0 && !this.#closed) {
      const n = this.#libc.send(this.#fd, this.#queue[0]);
      if (n === -Errno.EAGAIN || n === -Errno.EINTR) return;
      if (n < 0) {
        this.#finish(errnoError("Cannot write to the GATT socket", -n));
        return;
      }
      this.#queue.shift();
    }
    if (this.#closed) return;
    this.#libc.poller.modify(this.#fd, POLL.IN);
    if (this.#blocked) {
      this.#blocked = false;
      this.#events.onDrain();
    }
  }

  /**
   * Send one packet (copied).
   *
   * @param bytes The packet.
   * @returns `true` when the kernel took it; `false` when it waits in the
   *   queue (wait for `onDrain` before sending more).
   */
  send(bytes: Uint8Array): boolean {
    if (this.#closed) return false;
    if (this.#queue.length === 0) {
      const n = this.#libc.send(this.#fd, bytes);
      if (n >= 0) return true;
      if (n !== -Errno.EAGAIN && n !== -Errno.EINTR) {
        this.#finish(errnoError("Cannot write to the GATT socket", -n));
        return false;
      }
      this.#libc.poller.modify(this.#fd, POLL.IN | POLL.OUT);
    }
    this.#queue.push(bytes.slice());
    this.#blocked = true;
    return false;
  }

  #finish(error?: BusinessError<unknown>): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#libc.poller.remove(this.#fd);
    this.#libc.close(this.#fd);
    this.#queue = [];
    this.#events.onClose(error);
  }

  /** Close it (the peer sees a hang-up); `onClose` follows. */
  close(): void {
    this.#finish();
  }
}

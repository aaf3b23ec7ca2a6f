/**
 * The device host for Deno, Bun and Node: the runtime's sockets, a monotonic
 * clock, timers that do not keep the process alive, and one reference-held
 * interval that does while a device has work (started servers, open
 * connections, data being flushed).
 *
 * @module
 */
import type { DeviceHost } from "../core/device/host.ts";
import type { SocketPlatform } from "../core/socket/platform.ts";
import { randomNonce } from "../core/discovery/wire.ts";
import { autoSocketPlatform } from "./auto.ts";
import { defaultDeviceId } from "./identity.ts";

declare const Deno: { unrefTimer(id: number): void } | undefined;

function unrefTimer(t: unknown): void {
  if (typeof t === "number") {
    if (typeof Deno !== "undefined") Deno.unrefTimer(t);
  } else {
    (t as { unref?: () => void }).unref?.();
  }
}

let holds = 0;
let holder: ReturnType<typeof setInterval> | undefined;

/**
 * The host of this runtime.
 *
 * @param sockets The socket adapter. @default {autoSocketPlatform()}
 * @returns The host.
 *
 * @example
 * ```ts
 * const host = runtimeHost();
 * host.hold();
 * host.release();
 * ```
 */
export function runtimeHost(sockets: SocketPlatform = autoSocketPlatform()): DeviceHost {
  return {
    sockets,
    now: () => performance.now(),
    setTimer(fn, ms) {
      const t = setTimeout(fn, ms);
      unrefTimer(t);
      return t;
    },
    clearTimer(t) {
      if (t !== undefined) clearTimeout(t as number);
    },
    hold() {
      if (holds++ === 0) holder = setInterval(() => {}, 3_600_000);
    },
    release() {
      if (holds === 0) return;
      if (--holds === 0) {
        clearInterval(holder);
        holder = undefined;
      }
    },
    defaultDeviceId: () => defaultDeviceId(),
    nonce: () => randomNonce(),
    warn: (message) => console.warn(message),
  };
}

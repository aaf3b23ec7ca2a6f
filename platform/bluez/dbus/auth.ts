/**
 * The client side of D-Bus authentication (SASL `EXTERNAL`, then optionally
 * `NEGOTIATE_UNIX_FD`, then `BEGIN`), as a sans-IO state machine: feed it
 * what the bus sends, send what it returns.
 *
 * @module
 */

/** Longest line the bus may send during authentication. */
export const MAX_AUTH_LINE = 4096;

/** The outcome of authentication. */
export interface AuthResult {
  /** The bus's GUID. */
  guid: string;
  /** Whether the bus agreed to pass file descriptors. */
  unixFds: boolean;
  /** Bytes the bus sent after its last line (the start of the message stream). */
  rest: Uint8Array;
}

/** What {@linkcode SaslClient.handleBytes} asks the caller to do. */
export interface AuthStep {
  /** Bytes to send. */
  send?: Uint8Array;
  /** Authentication succeeded: send `send` (the `BEGIN`), then speak D-Bus. */
  done?: AuthResult;
  /** Authentication failed, with why. */
  error?: string;
}

const ascii = (s: string) => new TextEncoder().encode(s);

/**
 * SASL `EXTERNAL` for a uid, with optional descriptor passing.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const sasl = new SaslClient(1000, { unixFds: true });
 * assert.equal(new TextDecoder().decode(sasl.start()), "\0AUTH EXTERNAL 31303030\r\n");
 * let step = sasl.handleBytes(new TextEncoder().encode("OK 0123\r\n"));
 * assert.equal(new TextDecoder().decode(step.send), "NEGOTIATE_UNIX_FD\r\n");
 * step = sasl.handleBytes(new TextEncoder().encode("AGREE_UNIX_FD\r\n"));
 * assert.equal(step.done?.unixFds, true);
 * assert.equal(new TextDecoder().decode(step.send), "BEGIN\r\n");
 * ```
 */
export class SaslClient {
  #uid: number;
  #wantFds: boolean;
  #state: "start" | "auth" | "fds" | "done" | "failed" = "start";
  #guid = "";
  #pending = new Uint8Array(0);

  /**
   * @param uid The uid to authenticate as (the process's own).
   * @param options `unixFds`: ask to pass descriptors. @default {false}
   */
  constructor(uid: number, options: { unixFds?: boolean } = {}) {
    this.#uid = uid;
    this.#wantFds = options.unixFds ?? false;
  }

  /**
   * The first bytes to send: a NUL byte and the `AUTH` line.
   *
   * @returns The bytes.
   */
  start(): Uint8Array {
    this.#state = "auth";
    const hex = [...ascii(String(this.#uid))].map((b) => b.toString(16).padStart(2, "0")).join("");
    return ascii(`\0AUTH EXTERNAL ${hex}\r\n`);
  }

  /**
   * Feed bytes from the bus.
   *
   * @param bytes The bytes.
   * @returns What to do next.
   */
  handleBytes(bytes: Uint8Array): AuthStep {
    const all = new Uint8Array(this.#pending.length + bytes.length);
    all.set(this.#pending);
    all.set(bytes, this.#pending.length);
    let at = 0;
    const sends: string[] = [];
    const out = () => (sends.length === 0 ? undefined : ascii(sends.join("")));
    for (;;) {
      const nl = all.indexOf(0x0a, at);
      if (nl < 0) break;
      const line = new TextDecoder().decode(all.subarray(at, nl)).replace(/\r$/, "");
      at = nl + 1;
      const step = this.#line(line);
      if (step.error !== undefined) {
        this.#state = "failed";
        return { error: step.error };
      }
      if (step.send !== undefined) sends.push(step.send);
      if (this.#state === "done") {
        return {
          send: out(),
          done: { guid: this.#guid, unixFds: this.#agreed, rest: all.slice(at) },
        };
      }
    }
    this.#pending = all.slice(at);
    if (this.#pending.length > MAX_AUTH_LINE) {
      this.#state = "failed";
      return { error: `the bus sent a line longer than ${MAX_AUTH_LINE} bytes` };
    }
    return { send: out() };
  }

  #agreed = false;

  #line(line: string): { send?: string; error?: string } {
    const [cmd, ...args] = line.split(" ");
    if (this.#state === "auth") {
      if (cmd === "OK") {
        this.#guid = args[0] ?? "";
        if (this.#wantFds) {
          this.#state = "fds";
          return { send: "NEGOTIATE_UNIX_FD\r\n" };
        }
        this.#state = "done";
        return { send: "BEGIN\r\n" };
      }
      if (cmd === "DATA") return { send: "DATA\r\n" };
      if (cmd === "REJECTED") {
        return { error: `the bus rejected EXTERNAL authentication (it offers: ${args.join(" ")})` };
      }
      return { error: `unexpected reply "${line.slice(0, 80)}"` };
    }
    if (this.#state === "fds") {
      this.#agreed = cmd === "AGREE_UNIX_FD";
      if (!this.#agreed && cmd !== "ERROR") {
        return { error: `unexpected reply "${line.slice(0, 80)}"` };
      }
      this.#state = "done";
      return { send: "BEGIN\r\n" };
    }
    return { error: `unexpected reply "${line.slice(0, 80)}"` };
  }
}

/**
 * A D-Bus connection: authentication, `Hello`, method calls with timeouts,
 * signals with match rules, name owners, and exported objects (with
 * `Introspectable`, `Properties` + `PropertiesChanged`, `ObjectManager` and
 * `Peer` answered here).
 *
 * The bytes go through the runtime's own Unix-domain socket by default.
 * With `unixFds: true` they go through the C library where the runtime can
 * call it (Deno with `--allow-ffi`, Bun), so file descriptors can be passed;
 * on Node 20 (no FFI) or Deno without `--allow-ffi` the connection then
 * falls back to the runtime's socket and `unixFds` is `false`.
 *
 * @module
 */
import process from "node:process";
import type { BusinessError } from "../../../core/errors.ts";
import { ParameterError } from "../../../core/errors.ts";
import { busAddress, type BusKind, parseAddress, type UnixAddress } from "./address.ts";
import { SaslClient } from "./auth.ts";
import { DBusError, DBusErrorName } from "./errors.ts";
import { loadLibc } from "./_ffi.ts";
import { type Endian, Variant, Writer } from "./marshal.ts";
import {
  DEFAULT_MESSAGE_LIMITS,
  encodeMessage,
  type Message,
  MessageDropped,
  MessageFlag,
  type MessageLimits,
  MessageReader,
  MessageType,
} from "./message.ts";
import { type BusTransport, ffiTransport, socketTransport } from "./_transport.ts";
import { isInterfaceName, isMemberName, isObjectPath, parseSignature } from "./signature.ts";

/** Options of {@linkcode connectBus}. */
export interface BusOptions {
  /** A D-Bus address string; overrides `bus`. @default {the address of `bus`} */
  address?: string;
  /** Which bus, when no `address` is given. @default {"system"} */
  bus?: BusKind;
  /**
   * Pass file descriptors, when the runtime can: the socket is then driven
   * through the C library (Deno with `--allow-ffi`, Bun; not Node 20), which
   * costs a thread hop per wake-up. `false` uses the runtime's own socket,
   * the fastest path, without descriptors. @default {false}
   */
  unixFds?: boolean;
  /** Limits on received messages. @default {DEFAULT_MESSAGE_LIMITS} */
  limits?: Partial<MessageLimits>;
  /** Default method call timeout, ms. @default {25000} */
  callTimeout?: number;
  /** Most calls awaiting a reply at once; more wait their turn. @default {64} */
  maxPendingCalls?: number;
  /** Most incoming method calls being handled at once; more get `LimitsExceeded`. @default {64} */
  maxIncomingCalls?: number;
  /** Time allowed for authentication and `Hello`, ms. @default {5000} */
  connectTimeout?: number;
  /** Byte order of the messages this side sends. @default {"l"} */
  endian?: Endian;
}

/** A method call to make. */
export interface CallInit {
  /** The destination bus name. */
  destination?: string;
  /** The object path. */
  path: string;
  /** The interface. */
  interface?: string;
  /** The method. */
  member: string;
  /** The arguments' signature. @default {""} */
  signature?: string;
  /** The arguments. @default {[]} */
  body?: unknown[];
  /** Descriptors to pass (the body's `h` values index them). @default {[]} */
  fds?: number[];
}

/** Options of {@linkcode DBusConnection.call}. */
export interface CallOptions {
  /** Timeout in ms. @default {the connection's `callTimeout`} */
  timeout?: number;
  /** Let the callee ask the user for authorization (polkit). @default {false} */
  interactive?: boolean;
  /** Abort the wait (the reply is then ignored). */
  signal?: AbortSignal;
}

/** Which signals a subscription receives. Every given field must match. */
export interface MatchRule {
  /** Sender: a unique name or a well-known name (matched through its owner). */
  sender?: string;
  /** Interface. */
  interface?: string;
  /** Signal name. */
  member?: string;
  /** Exact object path. */
  path?: string;
  /** Object path or any path below it. */
  pathNamespace?: string;
  /** The first argument, a string, equals this. */
  arg0?: string;
}

/** A subscription to signals. */
export interface Subscription {
  /** Stop receiving (and remove the bus match rule when no one else uses it). */
  close(): Promise<void>;
}

/** What an exported method returns: the body, or the body with descriptors. */
export type MethodResult = unknown[] | { body: unknown[]; fds: number[] } | void;

/** An exported method. */
export interface MethodSpec {
  /** The arguments' signature. @default {""} */
  in?: string;
  /** The reply's signature. @default {""} */
  out?: string;
  /**
   * The implementation. Throw a {@linkcode DBusError} to reply with its name;
   * any other error replies `org.freedesktop.DBus.Error.Failed`.
   */
  handler(args: unknown[], call: Message): MethodResult | Promise<MethodResult>;
}

/** An exported property. */
export interface PropertySpec {
  /** Its signature. */
  signature: string;
  /** Its current value. */
  get(): unknown;
  /** Set it (absent: read-only). */
  set?(value: unknown): void;
}

/** An interface to export on an object. */
export interface InterfaceSpec {
  /** The interface name. */
  name: string;
  /** Methods by name. */
  methods?: Record<string, MethodSpec>;
  /** Properties by name. */
  properties?: Record<string, PropertySpec>;
  /** Signals by name, with their signatures. */
  signals?: Record<string, string>;
}

/** An interface exported on an object path. */
export interface ExportedInterface {
  /** The object path. */
  readonly path: string;
  /** The interface name. */
  readonly name: string;
  /**
   * Emit `PropertiesChanged` with the current values of some properties.
   *
   * @param names The properties that changed.
   * @param invalidated Properties that changed without their new value.
   */
  propertiesChanged(names: string[], invalidated?: string[]): void;
  /**
   * Emit one of its signals.
   *
   * @param member The signal.
   * @param body Its arguments.
   */
  emit(member: string, body?: unknown[]): void;
  /** Remove it (emits `InterfacesRemoved` under an object manager). */
  unexport(): void;
}

const BUS = "org.freedesktop.DBus";
const BUS_PATH = "/org/freedesktop/DBus";
const PROPS = "org.freedesktop.DBus.Properties";
const INTROSPECTABLE = "org.freedesktop.DBus.Introspectable";
const OBJECT_MANAGER = "org.freedesktop.DBus.ObjectManager";
const PEER = "org.freedesktop.DBus.Peer";

interface PendingCall {
  resolve(m: Message): void;
  reject(e: Error): void;
  timer: ReturnType<typeof setTimeout> | undefined;
  what: string;
  dispose?: () => void;
}

interface LocalMatch {
  rule: MatchRule;
  key: string;
  handler: (m: Message) => void;
}

/** The text form of a match rule for `AddMatch`. */
export function matchRuleString(rule: MatchRule): string {
  const parts = ["type='signal'"];
  const q = (v: string) => `'${v.replaceAll("'", "'\\''")}'`;
  if (rule.sender !== undefined) parts.push(`sender=${q(rule.sender)}`);
  if (rule.interface !== undefined) parts.push(`interface=${q(rule.interface)}`);
  if (rule.member !== undefined) parts.push(`member=${q(rule.member)}`);
  if (rule.path !== undefined) parts.push(`path=${q(rule.path)}`);
  if (rule.pathNamespace !== undefined) parts.push(`path_namespace=${q(rule.pathNamespace)}`);
  if (rule.arg0 !== undefined) parts.push(`arg0=${q(rule.arg0)}`);
  return parts.join(",");
}

function rethrowLater(e: unknown): void {
  queueMicrotask(() => {
    throw e;
  });
}

function describeCall(c: { path?: string; interface?: string; member?: string }): string {
  return `${c.interface === undefined ? "" : `${c.interface}.`}${c.member} on "${c.path}"`;
}

/**
 * A connection to a message bus. Create with {@linkcode connectBus}.
 */
export class DBusConnection {
  #transport: BusTransport;
  #reader: MessageReader;
  #writer = new Writer();
  #endian: Endian;
  #serial = 0;
  #pending = new Map<number, PendingCall>();
  #waiting: (() => void)[] = [];
  #maxPending: number;
  #callTimeout: number;
  #incoming = 0;
  #maxIncoming: number;
  #matches: LocalMatch[] = [];
  #ruleRefs = new Map<string, number>();
  #owners = new Map<string, string>();
  #ownerWatch = new Map<string, number>();
  #objects = new Map<string, Map<string, InterfaceSpec>>();
  #managers = new Set<string>();
  #closed = false;
  #closeError: BusinessError<unknown> | undefined;
  #onClose: ((error?: BusinessError<unknown>) => void)[] = [];
  #drainWaiters: (() => void)[] = [];
  /** This connection's unique name on the bus (`:1.42`). */
  uniqueName = "";
  /** Whether descriptors can be passed on this connection. */
  readonly unixFds: boolean;
  /** The bus's GUID. */
  readonly guid: string;

  /** @internal Use {@linkcode connectBus}. */
  constructor(
    transport: BusTransport,
    reader: MessageReader,
    init: {
      unixFds: boolean;
      guid: string;
      callTimeout: number;
      maxPending: number;
      maxIncoming: number;
      endian: Endian;
    },
  ) {
    this.#endian = init.endian;
    this.#transport = transport;
    this.#reader = reader;
    this.unixFds = init.unixFds;
    this.guid = init.guid;
    this.#callTimeout = init.callTimeout;
    this.#maxPending = init.maxPending;
    this.#maxIncoming = init.maxIncoming;
  }

  /** Whether the connection is closed. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Number of calls awaiting a reply. */
  get pendingCalls(): number {
    return this.#pending.size;
  }

  /**
   * Whether messages wait in user space for the socket: a sender of many
   * signals should slow down until {@linkcode DBusConnection.whenWritable}.
   */
  get congested(): boolean {
    return this.#transport.blocked;
  }

  /**
   * Let the process exit while this connection is open (as Node's
   * `socket.unref()`): it stays alive only while a call waits for its reply
   * (the call's timer) or something else keeps it. Incoming calls and
   * signals are still handled while it runs.
   */
  unref(): void {
    this.#transport.keepAlive(false);
  }

  /** Keep the process alive while this connection is open again (the default). */
  ref(): void {
    this.#transport.keepAlive(true);
  }

  /**
   * Resolves once the socket took what was queued (at once when not congested).
   *
   * @returns When writable.
   */
  whenWritable(): Promise<void> {
    if (!this.#transport.blocked || this.#closed) return Promise.resolve();
    return new Promise((r) => this.#drainWaiters.push(r));
  }

  /** @internal The transport drained. */
  handleDrain(): void {
    for (const w of this.#drainWaiters.splice(0)) w();
  }

  /**
   * Call when the connection closes (at once if it is closed).
   *
   * @param cb Receives the error when it failed.
   */
  onClose(cb: (error?: BusinessError<unknown>) => void): void {
    if (this.#closed) queueMicrotask(() => cb(this.#closeError));
    else this.#onClose.push(cb);
  }

  /** @internal Bytes from the transport. */
  handleData(bytes: Uint8Array, fds: number[]): void {
    this.#reader.push(bytes, fds);
    for (;;) {
      let m: Message | undefined;
      try {
        m = this.#reader.next();
      } catch (e) {
        if (e instanceof MessageDropped) {
          this.#closeFds(e.fds);
          continue;
        }
        this.#shutdown(
          new DBusError(DBusErrorName.INCONSISTENT_MESSAGE, "Closed the D-Bus connection", {
            text: (e as Error).message,
            cause: e,
          }),
        );
        return;
      }
      if (m === undefined) return;
      this.#dispatch(m);
      if (this.#closed) return;
    }
  }

  /** @internal The transport closed. */
  handleClose(error?: BusinessError<unknown>): void {
    this.#shutdown(
      new DBusError(DBusErrorName.DISCONNECTED, "The D-Bus connection closed", {
        text: error?.message ?? "the bus closed the connection",
        cause: error,
      }),
    );
  }

  #closeFds(fds: readonly number[]): void {
    if (fds.length === 0) return;
    void loadLibc().then((libc) => {
      for (const fd of fds) libc?.close(fd);
    });
  }

  #send(m: Parameters<typeof encodeMessage>[0], closeFds = false): number {
    if (this.#closed) {
      throw new DBusError(DBusErrorName.DISCONNECTED, `Cannot send ${describeCall(m)}`, {
        text: "the connection is closed",
      });
    }
    const fds = m.fds ?? [];
    if (fds.length > 0 && !this.unixFds) {
      throw new DBusError(DBusErrorName.NOT_SUPPORTED, `Cannot send ${describeCall(m)}`, {
        text: "this connection cannot pass file descriptors",
      });
    }
    this.#serial = this.#serial >= 0xffffffff ? 1 : this.#serial + 1;
    const serial = this.#serial;
    const bytes = encodeMessage({ ...m, serial }, this.#writer, this.#endian);
    this.#transport.write(bytes, fds, closeFds);
    return serial;
  }

  /**
   * Call a method and wait for its reply.
   *
   * @param init The call.
   * @param options Timeout, interactive authorization, abort signal.
   * @returns The reply (its `fds` belong to the caller).
   * @throws {DBusError} The error reply, `NoReply` on timeout, `Disconnected`.
   * @throws {ParameterError} When a name, the signature or an argument is invalid.
   */
  async call(init: CallInit, options: CallOptions = {}): Promise<Message> {
    const what = `Cannot call ${describeCall(init)}`;
    const timeout = options.timeout ?? this.#callTimeout;
    const started = Date.now();
    if (this.#pending.size >= this.#maxPending) {
      // Check the call now, so bad arguments throw before waiting for a slot.
      encodeMessage({ type: MessageType.METHOD_CALL, serial: 1, ...init }, this.#writer);
      while (this.#pending.size >= this.#maxPending && !this.#closed) {
        await new Promise<void>((r) => this.#waiting.push(r));
      }
    }
    const left = timeout - (Date.now() - started);
    return await new Promise<Message>((resolve, reject) => {
      let serial: number;
      try {
        serial = this.#send({
          type: MessageType.METHOD_CALL,
          flags: options.interactive ? MessageFlag.ALLOW_INTERACTIVE_AUTHORIZATION : 0,
          ...init,
        });
      } catch (e) {
        reject(e);
        return;
      }
      const p: PendingCall = { resolve, reject, timer: undefined, what };
      p.timer = setTimeout(() => {
        this.#settle(serial);
        reject(
          new DBusError(DBusErrorName.NO_REPLY, what, {
            text: `no reply within ${timeout} ms`,
          }),
        );
      }, Math.max(0, left));
      const signal = options.signal;
      if (signal !== undefined) {
        const onAbort = () => {
          this.#settle(serial);
          reject(signal.reason);
        };
        if (signal.aborted) {
          onAbort();
          return;
        }
        signal.addEventListener("abort", onAbort, { once: true });
        p.dispose = () => signal.removeEventListener("abort", onAbort);
      }
      this.#pending.set(serial, p);
    });
  }

  /** Forget a pending call and let a waiting one go. */
  #settle(serial: number): PendingCall | undefined {
    const p = this.#pending.get(serial);
    if (p === undefined) return undefined;
    this.#pending.delete(serial);
    clearTimeout(p.timer);
    p.dispose?.();
    this.#waiting.shift()?.();
    return p;
  }

  /**
   * Send a method call without waiting for a reply (`NO_REPLY_EXPECTED`).
   *
   * @param init The call.
   */
  callNoReply(init: CallInit): void {
    this.#send({ type: MessageType.METHOD_CALL, flags: MessageFlag.NO_REPLY_EXPECTED, ...init });
  }

  /**
   * Emit a signal.
   *
   * @param path The object path.
   * @param iface The interface.
   * @param member The signal name.
   * @param body `signature`, `body`, and an optional `destination` (unicast).
   */
  emitSignal(
    path: string,
    iface: string,
    member: string,
    body: { signature?: string; body?: unknown[]; destination?: string } = {},
  ): void {
    this.#send({ type: MessageType.SIGNAL, path, interface: iface, member, ...body });
  }

  // ---- signals ------------------------------------------------------------

  /**
   * Receive signals matching a rule (`AddMatch` on the bus, shared by equal
   * rules).
   *
   * @param rule The rule.
   * @param handler Called with each matching signal.
   * @returns The subscription, once the bus added the rule.
   */
  async subscribe(rule: MatchRule, handler: (m: Message) => void): Promise<Subscription> {
    const key = matchRuleString(rule);
    const entry: LocalMatch = { rule, key, handler };
    this.#matches = [...this.#matches, entry];
    try {
      await this.#addRule(key);
      if (rule.sender !== undefined && !rule.sender.startsWith(":") && rule.sender !== BUS) {
        await this.#trackOwner(rule.sender);
      }
    } catch (e) {
      this.#matches = this.#matches.filter((x) => x !== entry);
      throw e;
    }
    let open = true;
    return {
      close: async () => {
        if (!open) return;
        open = false;
        this.#matches = this.#matches.filter((x) => x !== entry);
        if (rule.sender !== undefined && !rule.sender.startsWith(":") && rule.sender !== BUS) {
          await this.#untrackOwner(rule.sender);
        }
        await this.#removeRule(key);
      },
    };
  }

  async #addRule(key: string): Promise<void> {
    const n = this.#ruleRefs.get(key) ?? 0;
    this.#ruleRefs.set(key, n + 1);
    if (n > 0) return;
    try {
      await this.call({
        destination: BUS,
        path: BUS_PATH,
        interface: BUS,
        member: "AddMatch",
        signature: "s",
        body: [key],
      });
    } catch (e) {
      this.#ruleRefs.delete(key);
      throw e;
    }
  }

  async #removeRule(key: string): Promise<void> {
    const n = this.#ruleRefs.get(key) ?? 0;
    if (n > 1) {
      this.#ruleRefs.set(key, n - 1);
      return;
    }
    this.#ruleRefs.delete(key);
    if (this.#closed) return;
    await this.call({
      destination: BUS,
      path: BUS_PATH,
      interface: BUS,
      member: "RemoveMatch",
      signature: "s",
      body: [key],
    }).catch(() => {});
  }

  async #trackOwner(name: string): Promise<void> {
    const n = this.#ownerWatch.get(name) ?? 0;
    this.#ownerWatch.set(name, n + 1);
    if (n > 0) return;
    await this.#addRule(matchRuleString({
      sender: BUS,
      interface: BUS,
      member: "NameOwnerChanged",
      arg0: name,
    }));
    const owner = await this.getNameOwner(name);
    if (owner !== undefined && !this.#owners.has(name)) this.#owners.set(name, owner);
  }

  async #untrackOwner(name: string): Promise<void> {
    const n = this.#ownerWatch.get(name) ?? 0;
    if (n > 1) {
      this.#ownerWatch.set(name, n - 1);
      return;
    }
    this.#ownerWatch.delete(name);
    this.#owners.delete(name);
    await this.#removeRule(matchRuleString({
      sender: BUS,
      interface: BUS,
      member: "NameOwnerChanged",
      arg0: name,
    }));
  }

  /**
   * The unique name owning a bus name.
   *
   * @param name A well-known name.
   * @returns Its owner, or `undefined` when no one owns it.
   */
  async getNameOwner(name: string): Promise<string | undefined> {
    try {
      const r = await this.call({
        destination: BUS,
        path: BUS_PATH,
        interface: BUS,
        member: "GetNameOwner",
        signature: "s",
        body: [name],
      });
      return r.body[0] as string;
    } catch (e) {
      if (e instanceof DBusError && e.dbusName === DBusErrorName.NAME_HAS_NO_OWNER) {
        return undefined;
      }
      throw e;
    }
  }

  /**
   * Watch who owns a bus name (for example `org.bluez`: bluetoothd starting
   * and stopping).
   *
   * @param name A well-known name.
   * @param cb Called with the new owner, or `undefined` when it left.
   * @returns The subscription.
   */
  watchName(name: string, cb: (owner: string | undefined) => void): Promise<Subscription> {
    return this.subscribe(
      { sender: BUS, interface: BUS, member: "NameOwnerChanged", arg0: name },
      (m) => cb((m.body[2] as string) || undefined),
    );
  }

  /**
   * Ask the bus for a well-known name.
   *
   * @param name The name.
   * @param flags `RequestName` flags. @default {4 (do not queue)}
   * @returns The bus's answer (1: primary owner, 2: queued, 3: exists, 4: already owner).
   */
  async requestName(name: string, flags = 4): Promise<number> {
    const r = await this.call({
      destination: BUS,
      path: BUS_PATH,
      interface: BUS,
      member: "RequestName",
      signature: "su",
      body: [name, flags],
    });
    return r.body[0] as number;
  }

  #ruleMatches(m: Message, rule: MatchRule): boolean {
    if (rule.interface !== undefined && rule.interface !== m.interface) return false;
    if (rule.member !== undefined && rule.member !== m.member) return false;
    if (rule.path !== undefined && rule.path !== m.path) return false;
    if (rule.pathNamespace !== undefined) {
      const ns = rule.pathNamespace;
      const p = m.path ?? "";
      if (!(ns === "/" || p === ns || p.startsWith(`${ns}/`))) return false;
    }
    if (rule.arg0 !== undefined && m.body[0] !== rule.arg0) return false;
    if (rule.sender !== undefined && rule.sender !== m.sender) {
      if (rule.sender.startsWith(":")) return false;
      const owner = this.#owners.get(rule.sender);
      if (owner !== undefined && owner !== m.sender) return false;
      if (rule.sender === BUS && m.sender !== BUS) return false;
    }
    return true;
  }

  // ---- dispatch -----------------------------------------------------------

  #dispatch(m: Message): void {
    switch (m.type) {
      case MessageType.METHOD_RETURN:
      case MessageType.ERROR: {
        const p = this.#settle(m.replySerial!);
        if (p === undefined) {
          this.#closeFds(m.fds);
          return;
        }
        if (m.type === MessageType.METHOD_RETURN) {
          p.resolve(m);
        } else {
          this.#closeFds(m.fds);
          const text = typeof m.body[0] === "string" ? m.body[0] : "";
          p.reject(new DBusError(m.errorName!, p.what, { text }));
        }
        return;
      }
      case MessageType.SIGNAL: {
        if (m.sender === BUS && m.interface === BUS && m.member === "NameOwnerChanged") {
          const [name, , owner] = m.body as string[];
          if (this.#ownerWatch.has(name)) {
            if (owner === "") this.#owners.delete(name);
            else this.#owners.set(name, owner);
          }
        }
        for (const match of this.#matches) {
          if (!this.#ruleMatches(m, match.rule)) continue;
          try {
            match.handler(m);
          } catch (e) {
            rethrowLater(e);
          }
        }
        this.#closeFds(m.fds);
        return;
      }
      case MessageType.METHOD_CALL:
        void this.#handleCall(m);
        return;
    }
  }

  #reply(call: Message, result: MethodResult, out: string): void {
    if ((call.flags & MessageFlag.NO_REPLY_EXPECTED) !== 0 || this.#closed) {
      if (result !== undefined && !Array.isArray(result)) this.#closeFds(result.fds);
      return;
    }
    const body = result === undefined ? [] : Array.isArray(result) ? result : result.body;
    const fds = result === undefined || Array.isArray(result) ? [] : result.fds;
    try {
      // The transport closes the descriptors once the kernel has taken them.
      this.#send({
        type: MessageType.METHOD_RETURN,
        replySerial: call.serial,
        destination: call.sender,
        signature: out,
        body,
        fds,
      }, true);
    } catch (e) {
      this.#closeFds(fds);
      this.#replyError(call, e);
    }
  }

  #replyError(call: Message, e: unknown): void {
    if ((call.flags & MessageFlag.NO_REPLY_EXPECTED) !== 0 || this.#closed) return;
    const name = e instanceof DBusError ? e.dbusName : DBusErrorName.FAILED;
    const text = e instanceof DBusError
      ? (e.text || e.message)
      : e instanceof Error
      ? e.message
      : String(e);
    try {
      this.#send({
        type: MessageType.ERROR,
        replySerial: call.serial,
        destination: call.sender,
        errorName: name,
        signature: "s",
        body: [text],
      });
    } catch {
      // The connection closed meanwhile.
    }
  }

  async #handleCall(m: Message): Promise<void> {
    if (this.#incoming >= this.#maxIncoming) {
      this.#closeFds(m.fds);
      this.#replyError(
        m,
        new DBusError(DBusErrorName.LIMITS_EXCEEDED, "Refused a call", {
          text: `more than ${this.#maxIncoming} calls are being handled`,
        }),
      );
      return;
    }
    this.#incoming++;
    try {
      const found = this.#findMethod(m);
      if (found instanceof DBusError) throw found;
      if (m.signature !== (found.in ?? "")) {
        throw new DBusError(DBusErrorName.INVALID_ARGS, "Refused a call", {
          text: `${m.member} takes "${found.in ?? ""}", got "${m.signature}"`,
        });
      }
      const result = await found.handler(m.body, m);
      this.#reply(m, result, found.out ?? "");
    } catch (e) {
      this.#replyError(m, e);
    } finally {
      this.#incoming--;
    }
  }

  #findMethod(m: Message): MethodSpec | DBusError {
    const path = m.path!;
    const member = m.member!;
    const iface = m.interface;
    const fail = (name: string, text: string) => new DBusError(name, "Refused a call", { text });
    if (
      iface === PEER || (iface === undefined && (member === "Ping" || member === "GetMachineId"))
    ) {
      if (member === "Ping") return { handler: () => [] };
      if (member === "GetMachineId") {
        return { out: "s", handler: () => [this.guid] };
      }
    }
    if (iface === INTROSPECTABLE || (iface === undefined && member === "Introspect")) {
      if (member === "Introspect") return { out: "s", handler: () => [this.#introspect(path)] };
    }
    const ifaces = this.#objects.get(path);
    if (iface === OBJECT_MANAGER && this.#managers.has(path) && member === "GetManagedObjects") {
      return { out: "a{oa{sa{sv}}}", handler: () => [this.#managedObjects(path)] };
    }
    if (iface === PROPS && ifaces !== undefined) {
      return this.#propertiesMethod(ifaces, member) ?? fail(
        DBusErrorName.UNKNOWN_METHOD,
        `no method "${member}" in ${PROPS}`,
      );
    }
    if (ifaces === undefined) {
      return fail(DBusErrorName.UNKNOWN_OBJECT, `no object at "${path}"`);
    }
    if (iface !== undefined) {
      const spec = ifaces.get(iface);
      if (spec === undefined) {
        return fail(DBusErrorName.UNKNOWN_INTERFACE, `no interface "${iface}" at "${path}"`);
      }
      const method = spec.methods?.[member];
      if (method === undefined) {
        return fail(DBusErrorName.UNKNOWN_METHOD, `no method "${member}" in "${iface}"`);
      }
      return method;
    }
    for (const spec of ifaces.values()) {
      const method = spec.methods?.[member];
      if (method !== undefined) return method;
    }
    return fail(DBusErrorName.UNKNOWN_METHOD, `no method "${member}" at "${path}"`);
  }

  #propertiesMethod(ifaces: Map<string, InterfaceSpec>, member: string): MethodSpec | undefined {
    const lookup = (iface: string) => {
      const spec = ifaces.get(iface);
      if (spec === undefined) {
        throw new DBusError(DBusErrorName.UNKNOWN_INTERFACE, "Refused a call", {
          text: `no interface "${iface}"`,
        });
      }
      return spec;
    };
    const prop = (iface: string, name: string) => {
      const p = lookup(iface).properties?.[name];
      if (p === undefined) {
        throw new DBusError(DBusErrorName.UNKNOWN_PROPERTY, "Refused a call", {
          text: `no property "${name}" in "${iface}"`,
        });
      }
      return p;
    };
    switch (member) {
      case "Get":
        return {
          in: "ss",
          out: "v",
          handler: ([iface, name]) => {
            const p = prop(iface as string, name as string);
            return [new Variant(p.signature, p.get())];
          },
        };
      case "GetAll":
        return {
          in: "s",
          out: "a{sv}",
          handler: ([iface]) => [propertyMap(lookup(iface as string))],
        };
      case "Set":
        return {
          in: "ssv",
          handler: ([iface, name, value]) => {
            const p = prop(iface as string, name as string);
            if (p.set === undefined) {
              throw new DBusError(DBusErrorName.PROPERTY_READ_ONLY, "Refused a call", {
                text: `property "${name}" is read-only`,
              });
            }
            const v = value as Variant;
            if (v.signature !== p.signature) {
              throw new DBusError(DBusErrorName.INVALID_ARGS, "Refused a call", {
                text: `property "${name}" has type "${p.signature}", not "${v.signature}"`,
              });
            }
            p.set(v.value);
            return [];
          },
        };
    }
    return undefined;
  }

  #introspect(path: string): string {
    const lines = [
      '<!DOCTYPE node PUBLIC "-//freedesktop//DTD D-BUS Object Introspection 1.0//EN"',
      ' "http://www.freedesktop.org/standards/dbus/1.0/introspect.dtd">',
      "<node>",
    ];
    const esc = (s: string) => s.replaceAll("&", "&amp;").replaceAll('"', "&quot;");
    const ifaces = this.#objects.get(path);
    if (ifaces !== undefined || this.#managers.has(path)) {
      lines.push(
        `  <interface name="${INTROSPECTABLE}"><method name="Introspect">` +
          `<arg name="xml" type="s" direction="out"/></method></interface>`,
        `  <interface name="${PEER}"><method name="Ping"/><method name="GetMachineId">` +
          `<arg name="id" type="s" direction="out"/></method></interface>`,
      );
    }
    if (ifaces !== undefined) {
      lines.push(
        `  <interface name="${PROPS}">` +
          `<method name="Get"><arg type="s" direction="in"/><arg type="s" direction="in"/>` +
          `<arg type="v" direction="out"/></method>` +
          `<method name="GetAll"><arg type="s" direction="in"/>` +
          `<arg type="a{sv}" direction="out"/></method>` +
          `<method name="Set"><arg type="s" direction="in"/><arg type="s" direction="in"/>` +
          `<arg type="v" direction="in"/></method>` +
          `<signal name="PropertiesChanged"><arg type="s"/><arg type="a{sv}"/><arg type="as"/>` +
          `</signal></interface>`,
      );
      for (const spec of ifaces.values()) {
        lines.push(`  <interface name="${esc(spec.name)}">`);
        for (const [name, m] of Object.entries(spec.methods ?? {})) {
          lines.push(`    <method name="${name}">`);
          for (const t of parseSignature(m.in ?? "")) {
            lines.push(`      <arg type="${esc(t.signature)}" direction="in"/>`);
          }
          for (const t of parseSignature(m.out ?? "")) {
            lines.push(`      <arg type="${esc(t.signature)}" direction="out"/>`);
          }
          lines.push(`    </method>`);
        }
        for (const [name, sig] of Object.entries(spec.signals ?? {})) {
          lines.push(`    <signal name="${name}">`);
          for (const t of parseSignature(sig)) {
            lines.push(`      <arg type="${esc(t.signature)}"/>`);
          }
          lines.push(`    </signal>`);
        }
        for (const [name, p] of Object.entries(spec.properties ?? {})) {
          const access = p.set === undefined ? "read" : "readwrite";
          lines.push(
            `    <property name="${name}" type="${esc(p.signature)}" access="${access}"/>`,
          );
        }
        lines.push(`  </interface>`);
      }
    }
    if (this.#managers.has(path)) {
      lines.push(
        `  <interface name="${OBJECT_MANAGER}"><method name="GetManagedObjects">` +
          `<arg type="a{oa{sa{sv}}}" direction="out"/></method>` +
          `<signal name="InterfacesAdded"><arg type="o"/><arg type="a{sa{sv}}"/></signal>` +
          `<signal name="InterfacesRemoved"><arg type="o"/><arg type="as"/></signal></interface>`,
      );
    }
    const prefix = path === "/" ? "/" : `${path}/`;
    const children = new Set<string>();
    for (const p of [...this.#objects.keys(), ...this.#managers]) {
      if (p.startsWith(prefix) && p !== path) children.add(p.slice(prefix.length).split("/")[0]);
    }
    for (const c of [...children].sort()) lines.push(`  <node name="${c}"/>`);
    lines.push("</node>");
    return lines.join("\n");
  }

  #managedObjects(root: string): Map<string, Map<string, Map<string, Variant>>> {
    const out = new Map<string, Map<string, Map<string, Variant>>>();
    const prefix = root === "/" ? "/" : `${root}/`;
    for (const [path, ifaces] of this.#objects) {
      if (!path.startsWith(prefix) || path === root) continue;
      const m = new Map<string, Map<string, Variant>>();
      for (const spec of ifaces.values()) m.set(spec.name, propertyMap(spec));
      out.set(path, m);
    }
    return out;
  }

  /** The object manager roots above (or at the parent level of) a path. */
  #managerOf(path: string): string | undefined {
    for (const root of this.#managers) {
      const prefix = root === "/" ? "/" : `${root}/`;
      if (path.startsWith(prefix) && path !== root) return root;
    }
    return undefined;
  }

  // ---- exporting ----------------------------------------------------------

  /**
   * Serve `org.freedesktop.DBus.ObjectManager` at a path: `GetManagedObjects`
   * lists every exported object below it, and exporting or removing one
   * emits `InterfacesAdded`/`InterfacesRemoved`.
   *
   * @param path The root path.
   * @returns A function that stops serving it.
   */
  addObjectManager(path: string): () => void {
    if (!isObjectPath(path)) {
      throw new ParameterError(`Cannot serve an object manager: invalid path "${path}"`);
    }
    this.#managers.add(path);
    return () => this.#managers.delete(path);
  }

  /**
   * Export an interface on an object path.
   *
   * @param path The object path.
   * @param spec The interface.
   * @returns A handle to emit its signals and property changes, and to remove it.
   * @throws {ParameterError} When the path, a name or a signature is invalid,
   *   or the interface is already exported there.
   */
  export(path: string, spec: InterfaceSpec): ExportedInterface {
    checkSpec(path, spec);
    let ifaces = this.#objects.get(path);
    if (ifaces === undefined) {
      ifaces = new Map();
      this.#objects.set(path, ifaces);
    }
    if (ifaces.has(spec.name)) {
      throw new ParameterError(`Cannot export "${spec.name}" at "${path}": it is already exported`);
    }
    ifaces.set(spec.name, spec);
    const manager = this.#managerOf(path);
    if (manager !== undefined && !this.#closed) {
      this.emitSignal(manager, OBJECT_MANAGER, "InterfacesAdded", {
        signature: "oa{sa{sv}}",
        body: [path, new Map([[spec.name, propertyMap(spec)]])],
      });
    }
    let exported = true;
    return {
      path,
      name: spec.name,
      propertiesChanged: (names, invalidated = []) => {
        if (!exported || this.#closed) return;
        const changed = new Map<string, Variant>();
        for (const n of names) {
          const p = spec.properties?.[n];
          if (p === undefined) {
            throw new ParameterError(`Cannot emit PropertiesChanged: no property "${n}"`);
          }
          changed.set(n, new Variant(p.signature, p.get()));
        }
        this.emitSignal(path, PROPS, "PropertiesChanged", {
          signature: "sa{sv}as",
          body: [spec.name, changed, invalidated],
        });
      },
      emit: (member, body = []) => {
        const sig = spec.signals?.[member];
        if (sig === undefined) {
          throw new ParameterError(`Cannot emit "${member}": "${spec.name}" has no such signal`);
        }
        if (!exported || this.#closed) return;
        this.emitSignal(path, spec.name, member, { signature: sig, body });
      },
      unexport: () => {
        if (!exported) return;
        exported = false;
        const now = this.#objects.get(path);
        if (now?.get(spec.name) !== spec) return;
        now.delete(spec.name);
        if (now.size === 0) this.#objects.delete(path);
        const root = this.#managerOf(path);
        if (root !== undefined && !this.#closed) {
          this.emitSignal(root, OBJECT_MANAGER, "InterfacesRemoved", {
            signature: "oas",
            body: [path, [spec.name]],
          });
        }
      },
    };
  }

  // ---- closing ------------------------------------------------------------

  #shutdown(error: DBusError): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#closeError = error;
    this.#transport.close();
    for (const serial of [...this.#pending.keys()]) {
      const p = this.#settle(serial);
      p?.reject(new DBusError(error.dbusName, p.what, { text: error.text, cause: error }));
    }
    for (const w of this.#waiting.splice(0)) w();
    for (const w of this.#drainWaiters.splice(0)) w();
    this.#closeFds(this.#reader.takeUnclaimedFds());
    for (const cb of this.#onClose.splice(0)) {
      try {
        cb(error);
      } catch (e) {
        rethrowLater(e);
      }
    }
  }

  /**
   * Close the connection: pending calls fail with `Disconnected`.
   */
  close(): void {
    this.#shutdown(
      new DBusError(DBusErrorName.DISCONNECTED, "The D-Bus connection was closed", {
        text: "closed by this process",
      }),
    );
  }
}

function propertyMap(spec: InterfaceSpec): Map<string, Variant> {
  const out = new Map<string, Variant>();
  for (const [name, p] of Object.entries(spec.properties ?? {})) {
    out.set(name, new Variant(p.signature, p.get()));
  }
  return out;
}

function checkSpec(path: string, spec: InterfaceSpec): void {
  const fail = (why: string) => {
    throw new ParameterError(`Cannot export "${spec.name}" at "${path}": ${why}`);
  };
  if (!isObjectPath(path)) fail("invalid object path");
  if (!isInterfaceName(spec.name)) fail("invalid interface name");
  const sigs: [string, string][] = [];
  for (const [name, m] of Object.entries(spec.methods ?? {})) {
    if (!isMemberName(name)) fail(`invalid method name "${name}"`);
    sigs.push([name, m.in ?? ""], [name, m.out ?? ""]);
  }
  for (const [name, sig] of Object.entries(spec.signals ?? {})) {
    if (!isMemberName(name)) fail(`invalid signal name "${name}"`);
    sigs.push([name, sig]);
  }
  for (const [name, p] of Object.entries(spec.properties ?? {})) {
    if (!isMemberName(name)) fail(`invalid property name "${name}"`);
    sigs.push([name, p.signature]);
  }
  for (const [name, sig] of sigs) {
    try {
      parseSignature(sig);
    } catch (e) {
      fail(`"${name}" has invalid signature "${sig}": ${(e as Error).message}`);
    }
  }
}

/** The current process's uid, for `EXTERNAL` authentication. */
function currentUid(): number {
  try {
    return process.getuid!();
  } catch (e) {
    throw new DBusError(DBusErrorName.AUTH_FAILED, "Cannot connect to D-Bus", {
      text: "cannot read this process's uid (on Deno, allow it with --allow-sys=uid)",
      cause: e,
    });
  }
}

/**
 * Connect to a message bus: authenticate, say `Hello`, and return the
 * connection.
 *
 * @param options The bus or address, descriptor passing, limits, timeouts.
 * @returns The connection.
 * @throws {DBusError} When no address works (`NoServer`), authentication
 *   fails, or `Hello` fails.
 *
 * @example
 * ```ts ignore
 * const bus = await connectBus({ bus: "system" });
 * const reply = await bus.call({
 *   destination: "org.freedesktop.DBus", path: "/org/freedesktop/DBus",
 *   interface: "org.freedesktop.DBus", member: "GetId",
 * });
 * console.log(reply.body[0]);
 * bus.close();
 * ```
 */
export async function connectBus(options: BusOptions = {}): Promise<DBusConnection> {
  const bus = options.bus ?? "system";
  const text = options.address ?? busAddress(bus);
  const what = `Cannot connect to the D-Bus ${
    options.address === undefined ? `${bus} bus` : "bus"
  }`;
  if (text === undefined) {
    throw new DBusError(DBusErrorName.BAD_ADDRESS, what, {
      text: "DBUS_SESSION_BUS_ADDRESS and XDG_RUNTIME_DIR are not set",
    });
  }
  let addresses: UnixAddress[];
  try {
    addresses = parseAddress(text);
  } catch (e) {
    throw new DBusError(DBusErrorName.BAD_ADDRESS, what, {
      text: `invalid address "${text}": ${(e as Error).message}`,
    });
  }
  if (addresses.length === 0) {
    throw new DBusError(DBusErrorName.BAD_ADDRESS, what, {
      text: `address "${text}" has no unix:path= or unix:abstract= entry`,
    });
  }
  const uid = currentUid();
  const libc = options.unixFds === true ? await loadLibc() : undefined;
  let lastError: unknown;
  for (const address of addresses) {
    try {
      return await connectOne(address, uid, libc !== undefined, options);
    } catch (e) {
      lastError = e;
    }
  }
  if (lastError instanceof DBusError) throw lastError;
  throw new DBusError("org.freedesktop.DBus.Error.NoServer", what, {
    text: `${
      (lastError as Error)?.message ?? "no address"
    } (is dbus-daemon running, at "${text}"?)`,
    cause: lastError,
  });
}

async function connectOne(
  address: UnixAddress,
  uid: number,
  ffi: boolean,
  options: BusOptions,
): Promise<DBusConnection> {
  const limits = { ...DEFAULT_MESSAGE_LIMITS, ...options.limits };
  const reader = new MessageReader(limits);
  let conn: DBusConnection | undefined;
  let authFeed: ((bytes: Uint8Array) => void) | undefined;
  let authFail: ((e: Error) => void) | undefined;
  const early: { bytes: Uint8Array; fds: number[] }[] = [];
  const events = {
    onData: (bytes: Uint8Array, fds: number[]) => {
      if (conn !== undefined) conn.handleData(bytes, fds);
      else if (authFeed !== undefined && fds.length === 0) authFeed(bytes);
      else early.push({ bytes, fds });
    },
    onDrain: () => conn?.handleDrain(),
    onClose: (error?: BusinessError<unknown>) => {
      if (conn !== undefined) conn.handleClose(error);
      else {
        authFail?.(
          new DBusError(DBusErrorName.AUTH_FAILED, "Cannot connect to D-Bus", {
            text: error?.message ?? "the bus closed the connection during authentication",
            cause: error,
          }),
        );
      }
    },
  };
  const libc = ffi ? await loadLibc() : undefined;
  const transport = libc !== undefined
    ? ffiTransport(libc, address, events)
    : await socketTransport(address, events);
  const timeout = options.connectTimeout ?? 5000;
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const sasl = new SaslClient(uid, { unixFds: transport.unixFds });
    const result = await new Promise<{ guid: string; unixFds: boolean; rest: Uint8Array }>(
      (resolve, reject) => {
        authFail = reject;
        timer = setTimeout(
          () =>
            reject(
              new DBusError(DBusErrorName.NO_REPLY, "Cannot connect to D-Bus", {
                text: `authentication did not finish within ${timeout} ms`,
              }),
            ),
          timeout,
        );
        authFeed = (bytes) => {
          const step = sasl.handleBytes(bytes);
          if (step.send !== undefined) transport.write(step.send);
          if (step.error !== undefined) {
            reject(
              new DBusError(DBusErrorName.AUTH_FAILED, "Cannot connect to D-Bus", {
                text: step.error,
              }),
            );
          } else if (step.done !== undefined) {
            authFeed = undefined;
            resolve(step.done);
          }
        };
        transport.write(sasl.start());
      },
    );
    conn = new DBusConnection(transport, reader, {
      unixFds: result.unixFds,
      guid: result.guid,
      callTimeout: options.callTimeout ?? 25_000,
      maxPending: options.maxPendingCalls ?? 64,
      maxIncoming: options.maxIncomingCalls ?? 64,
      endian: options.endian ?? "l",
    });
    if (result.rest.length > 0) conn.handleData(result.rest, []);
    for (const e of early.splice(0)) conn.handleData(e.bytes, e.fds);
    const hello = await conn.call({
      destination: BUS,
      path: BUS_PATH,
      interface: BUS,
      member: "Hello",
    }, { timeout });
    conn.uniqueName = hello.body[0] as string;
    return conn;
  } catch (e) {
    if (conn !== undefined) conn.close();
    else transport.close();
    throw e;
  } finally {
    clearTimeout(timer);
  }
}

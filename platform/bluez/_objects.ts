/**
 * A live copy of BlueZ's object tree: `GetManagedObjects` once, then
 * `InterfacesAdded`, `InterfacesRemoved` and `PropertiesChanged`. State is
 * read from here, never with `Properties.Get`, so a property that bluetoothd
 * (or a mock) announces by signal is seen even if a later `Get` would lie.
 *
 * @module
 */
import type { DBusConnection, Subscription } from "./dbus/connection.ts";
import type { Message } from "./dbus/message.ts";
import { Variant } from "./dbus/marshal.ts";

/** BlueZ's bus name. */
export const BLUEZ = "org.bluez";

/** Properties of one interface: name to (unwrapped) value. */
export type Props = Map<string, unknown>;

/** What changed in the tree. */
export interface TreeChange {
  /** The object path. */
  path: string;
  /** The interface. */
  iface: string;
  /** `added`, `removed` (the interface left the object) or `changed` (properties). */
  kind: "added" | "removed" | "changed";
  /** The properties that changed (or all, when added). */
  props: Props;
}

function unwrap(m: Map<string, Variant>): Props {
  const out: Props = new Map();
  for (const [k, v] of m) out.set(k, v instanceof Variant ? v.value : v);
  return out;
}

/** BlueZ's objects, kept up to date. */
export class ObjectTree {
  #objects = new Map<string, Map<string, Props>>();
  #listeners = new Set<(c: TreeChange) => void>();
  #subs: Subscription[] = [];

  /**
   * Load the tree and follow it.
   *
   * @param bus The connection.
   * @returns The tree.
   * @throws {DBusError} When BlueZ cannot be reached (`ServiceUnknown` when bluetoothd is not running).
   */
  static async open(bus: DBusConnection): Promise<ObjectTree> {
    const tree = new ObjectTree();
    // Signals that arrive before the snapshot are kept with their serial, and
    // only those the sender sent after the snapshot are applied on top of it.
    let early: Message[] | undefined = [];
    const onSignal = (m: Message) => {
      if (early !== undefined) early.push(m);
      else tree.#apply(m);
    };
    tree.#subs.push(
      await bus.subscribe({
        sender: BLUEZ,
        interface: "org.freedesktop.DBus.ObjectManager",
        path: "/",
      }, onSignal),
      await bus.subscribe({
        sender: BLUEZ,
        interface: "org.freedesktop.DBus.Properties",
        member: "PropertiesChanged",
        pathNamespace: "/org/bluez",
      }, onSignal),
    );
    let reply: Message;
    try {
      reply = await bus.call({
        destination: BLUEZ,
        path: "/",
        interface: "org.freedesktop.DBus.ObjectManager",
        member: "GetManagedObjects",
      });
    } catch (e) {
      await tree.close();
      throw e;
    }
    const all = reply.body[0] as Map<string, Map<string, Map<string, Variant>>>;
    for (const [path, ifaces] of all) {
      const o = new Map<string, Props>();
      for (const [iface, props] of ifaces) o.set(iface, unwrap(props));
      tree.#objects.set(path, o);
    }
    const pending = early;
    early = undefined;
    for (const m of pending) if (m.serial > reply.serial) tree.#apply(m);
    return tree;
  }

  #emit(c: TreeChange): void {
    for (const l of [...this.#listeners]) {
      try {
        l(c);
      } catch (e) {
        queueMicrotask(() => {
          throw e;
        });
      }
    }
  }

  #apply(m: Message): void {
    if (m.member === "InterfacesAdded") {
      const [path, ifaces] = m.body as [string, Map<string, Map<string, Variant>>];
      let o = this.#objects.get(path);
      if (o === undefined) {
        o = new Map();
        this.#objects.set(path, o);
      }
      for (const [iface, props] of ifaces) {
        const p = unwrap(props);
        o.set(iface, p);
        this.#emit({ path, iface, kind: "added", props: p });
      }
    } else if (m.member === "InterfacesRemoved") {
      const [path, ifaces] = m.body as [string, string[]];
      const o = this.#objects.get(path);
      if (o === undefined) return;
      for (const iface of ifaces) {
        const p = o.get(iface);
        if (p === undefined) continue;
        o.delete(iface);
        this.#emit({ path, iface, kind: "removed", props: p });
      }
      if (o.size === 0) this.#objects.delete(path);
    } else if (m.member === "PropertiesChanged") {
      const [iface, changed, invalidated] = m.body as [string, Map<string, Variant>, string[]];
      const path = m.path!;
      const p = this.#objects.get(path)?.get(iface);
      if (p === undefined) return;
      const c = unwrap(changed);
      for (const [k, v] of c) p.set(k, v);
      for (const k of invalidated) p.delete(k);
      this.#emit({ path, iface, kind: "changed", props: c });
    }
  }

  /**
   * The properties of an interface of an object.
   *
   * @param path The object path.
   * @param iface The interface.
   * @returns Its properties, or `undefined` when absent.
   */
  props(path: string, iface: string): Props | undefined {
    return this.#objects.get(path)?.get(iface);
  }

  /**
   * The objects that have an interface, optionally only below a path.
   *
   * @param iface The interface.
   * @param under A path prefix. @default {"/"}
   * @returns `[path, props]` pairs, by path.
   */
  find(iface: string, under = "/"): [string, Props][] {
    const prefix = under.endsWith("/") ? under : `${under}/`;
    const out: [string, Props][] = [];
    for (const [path, o] of this.#objects) {
      const p = o.get(iface);
      if (p !== undefined && path.startsWith(prefix)) out.push([path, p]);
    }
    return out.sort((a, b) => (a[0] < b[0] ? -1 : 1));
  }

  /**
   * Listen to changes.
   *
   * @param cb Called with each change.
   * @returns A function that stops listening.
   */
  listen(cb: (c: TreeChange) => void): () => void {
    this.#listeners.add(cb);
    return () => this.#listeners.delete(cb);
  }

  /**
   * Wait until a condition on the tree holds (checked now and after each change).
   *
   * @param check Returns a value when satisfied, `undefined` otherwise.
   * @param options `timeout` ms, `signal`, and `what` for the timeout error.
   * @returns The value `check` returned.
   */
  waitFor<T>(
    check: () => T | undefined,
    options: { timeout: number; signal?: AbortSignal; onTimeout: () => Error },
  ): Promise<T> {
    const now = check();
    if (now !== undefined) return Promise.resolve(now);
    return new Promise<T>((resolve, reject) => {
      const done = () => {
        stop();
        clearTimeout(timer);
        options.signal?.removeEventListener("abort", onAbort);
      };
      const stop = this.listen(() => {
        const v = check();
        if (v !== undefined) {
          done();
          resolve(v);
        }
      });
      const timer = setTimeout(() => {
        done();
        reject(options.onTimeout());
      }, options.timeout);
      const onAbort = () => {
        done();
        reject(options.signal!.reason);
      };
      options.signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  /** Stop following the tree. */
  async close(): Promise<void> {
    this.#listeners.clear();
    await Promise.all(this.#subs.splice(0).map((s) => s.close()));
  }
}

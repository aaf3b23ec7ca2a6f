/**
 * The connections of an OpenHarmony link ({@linkcode OhLink}, `machine.ts`),
 * sans-IO: their table, the general messages that open, refuse, carry, reset
 * and merge them (HANDSHAKE, ACK, RESET, NORMAL, MERGE), their connect
 * timers, and what the link does to them when it is lost. The link's
 * commands act on the same table; what goes out is queued on the link's
 * bearer (`_bearer.ts`).
 *
 * @module
 */
import { DisconnectReason, ErrorCode } from "../../error_codes.ts";
import { ServiceKind } from "../link/mod.ts";
import type { Queue } from "../_queue.ts";
import { linkEnhanceCode } from "./codes.ts";
import {
  ackPayload,
  handshakePayload,
  MsgType,
  OhLimits,
  parseGeneral,
  resetPayload,
  sameIgnoringCase,
  SoftbusError,
} from "./wire.ts";
import type { OhBearer } from "./_bearer.ts";
import type { Conn, ConnState, GeneralIds, OhLinkEvent } from "./_machine_types.ts";

/** Options of an {@linkcode OhConns}. */
export interface OhConnsOptions {
  /** The link (its `tag` goes into `open` events). */
  link: { tag: unknown };
  /** Our bundle name. */
  bundleName: string;
  /** Whether an incoming HANDSHAKE must carry our bundle name. */
  matchBundle: boolean;
  /** The device's general-id allocator. */
  ids: GeneralIds;
  /** Most connections on the link. */
  maxConnections: number;
  /** The link's table of connections, by stream. */
  conns: Map<number, Conn>;
  /** The link's event queue. */
  events: Queue<OhLinkEvent>;
  /** The link's bearer. */
  bearer: OhBearer;
}

/** The connections of one link. */
export class OhConns {
  #link: { tag: unknown };
  #bundleName: string;
  #matchBundle: boolean;
  #ids: GeneralIds;
  #maxConns: number;
  #conns: Map<number, Conn>;
  #events: Queue<OhLinkEvent>;
  #b: OhBearer;

  /** @param options The link's identity, limits, table, events and bearer. */
  constructor(options: OhConnsOptions) {
    this.#link = options.link;
    this.#bundleName = options.bundleName;
    this.#matchBundle = options.matchBundle;
    this.#ids = options.ids;
    this.#maxConns = options.maxConnections;
    this.#conns = options.conns;
    this.#events = options.events;
    this.#b = options.bearer;
  }

  /**
   * Basic info was exchanged: the connections waiting for it start.
   *
   * @param now The current time (ms).
   */
  ready(now: number): void {
    for (const c of [...this.#conns.values()]) {
      if (c.state === "pending") this.startConnect(c, now);
    }
  }

  /**
   * The connections' timers that are due.
   *
   * @param now The current time (ms).
   * @returns Whether the link is still there.
   */
  handleTimeout(now: number): boolean {
    for (const c of [...this.#conns.values()]) {
      if (c.deadline > now) continue;
      if (c.state === "pending" || c.state === "opening") {
        this.#connectTimeout(c, now);
        if (this.#b.state === "closed") return false;
      } else if (c.state === "rejected") {
        this.forget(c);
        this.#b.updateRc(-1, now);
        if (this.#b.state === "closed") return false;
      }
    }
    return true;
  }

  /**
   * The earliest of the connections' timers and another time.
   *
   * @param t The link's earliest timer.
   * @returns A time (ms), or `Infinity`.
   */
  timeout(t: number): number {
    for (const c of this.#conns.values()) {
      if (c.state === "pending" || c.state === "opening" || c.state === "rejected") {
        t = Math.min(t, c.deadline);
      }
    }
    return t;
  }

  // ---------------------------------------------------------- receiving

  /** A BLE general message (module 102) arrived. */
  general(body: Uint8Array, now: number): void {
    const g = parseGeneral(body);
    if (typeof g === "string") return;
    if (g.msgType === MsgType.HANDSHAKE) {
      this.#handshake(g.localId, g.name, g.bundleName, now);
      return;
    }
    const c = this.#conns.get(g.peerId);
    if (c === undefined) return;
    switch (g.msgType) {
      case MsgType.NORMAL:
        if (c.state === "open" && g.data.length > 0 && g.data.length <= OhLimits.MAX_NORMAL) {
          const data = g.data.slice().buffer;
          this.#events.push({ type: "data", stream: c.id, owner: c.owner, data });
        }
        return;
      case MsgType.HANDSHAKE_ACK:
        if (c.state !== "opening") return;
        if (g.err !== 0) {
          c.state = "rejected";
          const code = linkEnhanceCode(g.err);
          this.#events.push({ type: "rejected", stream: c.id, owner: c.owner, code });
          return;
        }
        c.peerId = g.localId;
        c.state = "open";
        this.#events.push({ type: "opened", stream: c.id, owner: c.owner });
        return;
      case MsgType.RESET:
        this.forget(c);
        if (c.state === "open") {
          this.#events.push({
            type: "closed",
            stream: c.id,
            owner: c.owner,
            reason: DisconnectReason.PEER_DISCONNECTED,
          });
        } else if (c.state === "opening" || c.state === "pending") {
          const code = ErrorCode.INTERNAL_ERROR;
          this.#events.push({ type: "rejected", stream: c.id, owner: c.owner, code });
        }
        if (c.client && c.state !== "pending") this.#b.updateRc(-1, now);
        return;
      case MsgType.MERGE:
        this.#b.updateRc(-1, now);
        if (this.#b.state !== "closed" && c.state === "open" && g.updateHandle !== c.id) {
          this.#events.push({ type: "merge", stream: c.id, owner: c.owner, into: g.updateHandle });
        }
        return;
    }
  }

  #handshake(peerId: number, name: string, bundleName: string, now: number): void {
    if (this.#conns.size >= this.#maxConns || this.#b.state !== "open") return;
    const c = this.add(this.#ids.allocate(), peerId, name, false, "incoming");
    this.#b.cancelIdle();
    // Before basic info the ACK cannot be posted: refuse then lets go of the link.
    c.bundle = bundleName;
    const mismatch = this.#matchBundle && !sameIgnoringCase(bundleName, this.#bundleName);
    if (!this.#b.canPostGeneral() || mismatch) {
      this.refuse(c, SoftbusError.SERVER_NOT_OPENED, now);
      return;
    }
    this.#events.push({
      type: "open",
      link: this.#link.tag,
      stream: c.id,
      name,
      kind: ServiceKind.LINK_ENHANCE,
      bundle: bundleName,
    });
  }

  // ------------------------------------------------------------ sending

  startConnect(c: Conn, now: number): void {
    this.#b.updateRc(1, now);
    this.#b.cancelIdle();
    if (!this.#b.postGeneral(MsgType.HANDSHAKE, c, handshakePayload(c.name, c.bundle), now)) {
      return; // cannot happen: +1 leaves the link ready
    }
    c.state = "opening";
  }

  #connectTimeout(c: Conn, now: number): void {
    this.forget(c);
    const code = ErrorCode.CONNECT_TIMEOUT;
    this.#events.push({ type: "rejected", stream: c.id, owner: c.owner, code });
    if (c.state === "opening") this.sendReset(c, now);
  }

  /** Error ACK, then RESET (the connection is forgotten). */
  refuse(c: Conn, err: number, now: number): void {
    this.forget(c);
    if (!this.#b.postGeneral(MsgType.HANDSHAKE_ACK, c, ackPayload(err), now)) {
      this.#b.skipSeq();
      this.resetFailed(now);
      return;
    }
    this.#b.postGeneral(MsgType.RESET, c, resetPayload(), now);
  }

  /** RESET; a connection we opened lets go of its reference 100 ms later. */
  sendReset(c: Conn, now: number): void {
    if (!this.#b.postGeneral(MsgType.RESET, c, resetPayload(), now)) {
      this.resetFailed(now);
      return;
    }
    if (c.client) this.#b.releaseLater(now);
  }

  /** A RESET could not be posted: OpenHarmony lets go of the link (`ConnDisconnectDevice`). */
  resetFailed(now: number): void {
    this.#b.updateRc(-1, now);
  }

  // ------------------------------------------------------------ helpers

  add(id: number, peerId: number, name: string, client: boolean, state: ConnState): Conn {
    const c: Conn = {
      id,
      peerId,
      name,
      client,
      bundle: this.#bundleName,
      owner: undefined,
      state,
      deadline: Infinity,
      queued: 0,
      wantDrain: false,
    };
    this.#conns.set(id, c);
    return c;
  }

  forget(c: Conn): void {
    if (this.#conns.get(c.id) === c) {
      this.#conns.delete(c.id);
      this.#ids.release(c.id);
    }
  }

  /** The link is gone: every connection learns it (the bearer then finishes). */
  lost(): void {
    for (const c of this.#conns.values()) {
      if (c.state === "open" || c.state === "opening" || c.state === "pending") {
        const reason = DisconnectReason.LINK_CLOSED;
        this.#events.push({ type: "closed", stream: c.id, owner: c.owner, reason });
      }
      this.#ids.release(c.id);
    }
  }

  /** The link is closed: every connection is let go of. */
  clear(): void {
    for (const c of this.#conns.values()) this.#ids.release(c.id);
    this.#conns.clear();
  }
}

/**
 * The merge rule: what an acceptor does with a `hello`, so that each pair of
 * devices keeps exactly one link. Both devices apply the same rule, so when
 * they dial each other at once exactly one channel survives: the one dialled
 * by the device with the lower id. `docs/link-protocol.md` section 2.
 *
 * A device that restarted (a new nonce under a known id) replaces its old
 * link at once when it proved its identity (the secure handshake: the same
 * key as before). Without that proof (`security: "none"`) it replaces the
 * old link only once that link is dead, silent for the whole keep-alive
 * timeout; while the old link is alive the newcomer is refused as a clash,
 * so nobody can evict a live device's link by claiming its id.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const hello = { op: "hello" as const, id: "00:00:00:00:00:02", nonce: "b" };
 * const at = { localId: "00:00:00:00:00:01", localNonce: "a", dialing: true, deadMs: 5000 };
 * assert.equal(decideIncoming(hello, at), "duplicate"); // our own dial wins
 * assert.equal(decideIncoming(hello, { ...at, dialing: false }), "accept");
 * ```
 *
 * @module
 */
import type { Hello, RefuseReason } from "./hello.ts";

/** What a device knows about a peer when a `hello` from it arrives. */
export interface PeerSituation {
  /** This device's id. */
  localId: string;
  /** This device's runtime nonce. */
  localNonce: string;
  /** The nonce of the peer on the established link, if there is one. */
  linkNonce?: string;
  /** Milliseconds since that link last received anything. */
  linkSilentMs?: number;
  /** Whether this device is itself dialling that peer right now. */
  dialing: boolean;
  /** A link silent this long is dead (the keep-alive timeout, ms). */
  deadMs: number;
  /**
   * Whether the peer proved its identity (secure handshake): then a new
   * nonce under its id is its restart, and replaces the old link at once.
   */
  proven?: boolean;
}

/**
 * Decide what to do with an incoming `hello`.
 *
 * @param hello The peer's hello.
 * @param at What this device knows.
 * @returns `accept`, `replace` (accept and drop the old, dead link: the peer
 *   restarted), or a {@linkcode RefuseReason}.
 */
export function decideIncoming(
  hello: Hello,
  at: PeerSituation,
): "accept" | "replace" | RefuseReason {
  if (hello.id === at.localId) return hello.nonce === at.localNonce ? "self" : "clash";
  if (at.linkNonce !== undefined) {
    if (at.linkNonce === hello.nonce) return "duplicate";
    if (at.proven) return "replace";
    return (at.linkSilentMs ?? 0) >= at.deadMs ? "replace" : "clash";
  }
  if (at.dialing && at.localId < hello.id) return "duplicate";
  return "accept";
}

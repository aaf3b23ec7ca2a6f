import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { decideIncoming, type PeerSituation } from "./decide.ts";

const A = "00:00:00:00:00:0A";
const B = "00:00:00:00:00:0B";
const at: PeerSituation = { localId: A, localNonce: "a1", dialing: false, deadMs: 5000 };
const hello = (id: string, nonce: string) => ({ op: "hello" as const, id, nonce });

describe("merge rule", () => {
  it("accepts a new peer; a device that dialled itself is told so", () => {
    assert.equal(decideIncoming(hello(B, "b1"), at), "accept");
    assert.equal(decideIncoming(hello(A, "a1"), at), "self");
  });

  it("calls a second runtime with this device's own id a clash", () => {
    assert.equal(decideIncoming(hello(A, "a2"), at), "clash");
  });

  it("keeps the channel dialled by the lower id when both dial at once", () => {
    // A (lower) is dialling B and gets B's hello: A's own channel wins.
    assert.equal(decideIncoming(hello(B, "b1"), { ...at, dialing: true }), "duplicate");
    // B is dialling A and gets A's hello: A's channel wins, B accepts it.
    const atB = { ...at, localId: B, localNonce: "b1", dialing: true };
    assert.equal(decideIncoming(hello(A, "a1"), atB), "accept");
  });

  it("refuses a second channel of the same runtime as a duplicate", () => {
    const linked = { ...at, linkNonce: "b1", linkSilentMs: 10 };
    assert.equal(decideIncoming(hello(B, "b1"), linked), "duplicate");
  });

  it("lets a restarted peer replace its link only once the old link is dead", () => {
    const linked = { ...at, linkNonce: "b1" };
    assert.equal(decideIncoming(hello(B, "b2"), { ...linked, linkSilentMs: 0 }), "clash");
    assert.equal(decideIncoming(hello(B, "b2"), { ...linked, linkSilentMs: 4999 }), "clash");
    assert.equal(decideIncoming(hello(B, "b2"), { ...linked, linkSilentMs: 5000 }), "replace");
  });
});

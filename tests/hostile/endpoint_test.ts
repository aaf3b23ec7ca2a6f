/**
 * Attacks on the endpoint's warnings: many peers (or invented ids, or
 * unknown versions) must not flood the victim's log. Each kind of warning
 * prints at most `WARN_LINES` lines per `WARN_INTERVAL`.
 *
 * @module
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { FrameType } from "../../core/proto/frame.ts";
import { handshake, RawPeer } from "./_raw_peer.ts";
import { startVictim, until, type Victim } from "./_attack.ts";

const running: Array<{ kill(): void }> = [];
after(() => {
  for (const p of running) p.kill();
});

describe("hostile: endpoint", { timeout: 60_000 }, () => {
  it("hellos of many unknown protocol versions give a bounded number of warning lines", async () => {
    const v: Victim = await startVictim("02:71:C7:00:00:01");
    running.push(v);
    const N = 300;
    const peers: RawPeer[] = [];
    for (let i = 0; i < N; i++) {
      const p = await RawPeer.connect(v.port);
      peers.push(p);
      const payload = new TextEncoder().encode(
        JSON.stringify({ v: 3 + i, op: "hello", id: "02:0B:AD:00:00:01", nonce: `n${i}` }),
      );
      await p.send([{
        type: FrameType.CONTROL,
        stream: 0,
        seq: 0,
        total: payload.length,
        offset: 0,
        payload,
      }]);
    }
    await until(() => peers.every((p) => p.closed), 5000, "every channel to be refused");
    await new Promise((r) => setTimeout(r, 500));
    const lines = v.child.err.split("\n").filter((l) => /protocol version/.test(l));
    console.log(`  ${N} hellos of unknown versions: ${lines.length} warning lines`);
    // One line per kind of refusal and 10 s (WARN_INTERVAL), as for every other warning.
    assert.ok(lines.length <= 3, `${lines.length} warning lines, e.g. ${lines[0]}`);
    v.kill();
  });

  it("peers with invented ids that each break a rule give a bounded number of warning lines", async () => {
    const v: Victim = await startVictim("02:71:C7:00:00:02");
    running.push(v);
    const N = 200;
    const hex2 = (n: number) => n.toString(16).padStart(2, "0");
    for (let i = 0; i < N; i++) {
      const p = await RawPeer.connect(v.port);
      await handshake(p, { id: `02:0b:ad:00:${hex2(i >> 8)}:${hex2(i & 255)}` });
      // A malformed open: refused, and a protocol error of that peer.
      await p.send([{
        type: FrameType.CONTROL,
        stream: 1,
        seq: 0,
        total: 1,
        offset: 0,
        payload: new Uint8Array([1]),
      }]);
      await p.until(() => p.frames.length > 0, 3000, "the refusal");
      p.destroy();
    }
    await new Promise((r) => setTimeout(r, 500));
    const lines = v.child.err.split("\n").filter((l) => /malformed open/.test(l));
    console.log(`  ${N} peers breaking a rule: ${lines.length} warning lines`);
    assert.ok(lines.length <= 10, `${lines.length} warning lines, e.g. ${lines[0]}`);
    v.kill();
  });
});

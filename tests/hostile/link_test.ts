/**
 * A peer attacks a device at the link level, with raw TCP connections on
 * loopback (`_raw_peer.ts`) against a real victim process (`_victim.ts`)
 * while a legitimate client process (`_client.ts`) keeps using it. Each test
 * asserts that the client is served during the attack, that the victim's RSS
 * and open files stay under a bound stated from the named limit, and that
 * the victim recovers afterwards.
 *
 * The devices run with `security: "none"`, the plain protocol, so a raw
 * peer reaches the link layer without keys: with an account, only a device
 * of that account (or a paired one) gets that far, and then meets the same
 * link code under records. Attacks on the authenticated handshake and the
 * records are in `trust_test.ts` and `core/device/secure_endpoint_test.ts`.
 *
 * @module
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import process from "node:process";
import { after, describe, it } from "node:test";
import { encodeHello } from "../../core/proto/handshake/hello.ts";
import { FrameType } from "../../core/proto/frame.ts";
import { DisconnectReason } from "../../core/error_codes.ts";
import { describeWith } from "../harness/env.ts";
import { answers, codec, dataFrame, handshake, openFrame, RawPeer } from "./_raw_peer.ts";
import {
  assertServed,
  type Client,
  sleep,
  startClient,
  startVictim,
  until,
  usage,
  type Victim,
} from "./_attack.ts";

const VICTIM = "02:71:C7:00:00:01";
const KiB = 1024;
const MiB = 1024 * 1024;
/** The link's default receive window per stream. */
const WINDOW = 4 * MiB;
const running: Array<{ kill(): void }> = [];
const sockets: RawPeer[] = [];

after(() => {
  for (const s of sockets) s.destroy();
  for (const p of running) p.kill();
});

const hex2 = (n: number) => n.toString(16).padStart(2, "0").toUpperCase();
/** Attacker ids sort below the victim's: attackers open odd stream ids. */
const attackerId = (n: number) => `02:0B:AD:00:${hex2(n >> 8)}:${hex2(n & 255)}`;

async function victimAndClient(
  env: Record<string, string>,
  clientEnv: Record<string, string> = {},
): Promise<{ v: Victim; c: Client }> {
  const v = await startVictim(VICTIM, env);
  running.push(v);
  const c = await startClient(v, "02:C1:1E:00", clientEnv);
  running.push(c.child);
  await c.roundAfter(Date.now());
  v.rebase();
  return { v, c };
}

function stop(...procs: Array<{ kill(): void }>): void {
  for (const p of procs) p.kill();
  for (const s of sockets.splice(0)) s.destroy();
}

/** Print and return the victim's growth. */
function report(name: string, v: Victim): { rss: number; fds: number } {
  const p = v.peak();
  console.log(
    `  ${name}: victim RSS ${v.base.rss} -> peak ${p.rss} KiB (+${
      Math.round((p.rss - v.base.rss) / 1024)
    } MiB), fds ${v.base.fds} -> peak ${p.fds}`,
  );
  return { rss: (p.rss - v.base.rss) * KiB, fds: p.fds - v.base.fds };
}

/** A raw peer that completed the handshake as attacker `n`. */
async function attacker(v: Victim, n: number): Promise<RawPeer> {
  const p = await RawPeer.connect(v.port);
  sockets.push(p);
  const hello = await handshake(p, { id: attackerId(n) });
  assert.equal(hello.op, "welcome", `attacker ${n}: ${JSON.stringify(hello)}`);
  return p;
}

/** Open a stream to the victim's echo server and wait for its accept. */
async function openStream(p: RawPeer, stream: number): Promise<void> {
  await p.send([openFrame(stream)]);
  await p.until(() => answers(p, stream).length > 0, 3000, `an answer to the open of ${stream}`);
  assert.deepEqual(answers(p, stream), ["accept"]);
}

/** Send message `seq` on a stream and wait for its echo. */
async function echo(p: RawPeer, stream: number, seq: number): Promise<void> {
  const payload = new TextEncoder().encode(`echo ${stream}/${seq}`);
  await p.send([dataFrame(stream, seq, payload)]);
  const text = new TextDecoder();
  await p.until(
    () =>
      p.frames.some((f) =>
        f.type === FrameType.DATA && f.stream === stream &&
        text.decode(f.payload) === `echo ${stream}/${seq}`
      ),
    3000,
    `the echo of ${stream}/${seq}`,
  );
}

/** Whether the victim process still runs. */
function alive(v: Victim): boolean {
  return v.child.proc.exitCode === null && v.child.proc.signalCode === null;
}

/** The victim's app events about one peer. */
function appEvents(v: Victim, peer: string, ev: string): Record<string, unknown>[] {
  return v.lines().filter((l) => l.ev === ev && l.peer === peer);
}

describe("hostile: link", { timeout: 60_000 }, () => {
  it("half-open flood: channels that never finish a hello are capped and dropped at the deadline", async () => {
    const HANDSHAKES = 32;
    const DEADLINE = 1000;
    const { v, c } = await victimAndClient({
      LINKWEAVE_HANDSHAKE_TIMEOUT: String(DEADLINE),
      LINKWEAVE_LIMITS: `handshakes=${HANDSHAKES}`,
    });
    const from = Date.now();
    const hello = encodeHello(codec, { op: "hello", id: attackerId(1), nonce: "x" });
    const peers: RawPeer[] = [];
    for (let i = 0; i < 600; i++) {
      const p = await RawPeer.connect(v.port);
      sockets.push(p);
      peers.push(p);
      // one in four sends part of a hello, then nothing
      if (i % 4 === 0) await p.write(hello.subarray(0, 1 + (i % (hello.length - 1))));
    }
    const flooded = Date.now();
    await until(
      () => peers.every((p) => p.closed),
      DEADLINE + 3000,
      "every half-open channel to be dropped",
    );
    const to = Date.now();
    // the last ones were dropped by the deadline, not by the cap
    assert.ok(to - flooded >= DEADLINE - 300, `the last channels lived ${to - flooded} ms`);
    await c.roundAfter(to);
    const grew = report("half-open flood (600)", v);
    await assertServed(c, from);
    // fds: the cap, the client's channels, and what the runtime closes late (Deno releases a
    // socket closed while a read is pending on a later turn of its loop, 130 late at most here):
    // under 8 x the cap, where no cap would be all 600.
    assert.ok(grew.fds <= 8 * HANDSHAKES, `${grew.fds} more fds`);
    // memory: a few 64 KiB read buffers per channel in handshake, and the runtime's garbage
    assert.ok(grew.rss < 48 * MiB, `RSS grew by ${grew.rss} bytes`);
    stop(v, c.child);
  });

  it("connections reset before they are accepted (one, then a burst) never stop the listener", async () => {
    const { v, c } = await victimAndClient({});
    const from = Date.now();
    for (const burst of [1, 64]) {
      // Frozen, the victim cannot accept: the kernel queues the connections, which then reset.
      process.kill(v.pid, "SIGSTOP");
      try {
        const peers = await Promise.all(
          Array.from({ length: burst }, () => RawPeer.connect(v.port)),
        );
        for (const p of peers) p.reset();
        await sleep(50);
      } finally {
        process.kill(v.pid, "SIGCONT");
      }
      const r = await c.roundAfter(Date.now());
      assert.equal(r.fresh, "ok", `a new connection after a burst of ${burst} resets: ${r.fresh}`);
    }
    const p = await attacker(v, 1);
    await openStream(p, 1);
    await echo(p, 1, 1);
    const grew = report("resets before accept", v);
    // 65 connections, none of which lived. A runtime may accept the whole queued burst before it
    // reads the first reset (Bun does on a busy machine), so each may hold one descriptor for a
    // moment; none may stay: the count falls back to within a few of where it started.
    assert.ok(grew.fds <= 65 + 8 && grew.rss < 16 * MiB, JSON.stringify(grew));
    await until(
      () => usage(v.pid).fds - v.base.fds <= 8,
      5000,
      "the reset connections' descriptors to close",
    );
    await assertServed(c, from);
    stop(v, c.child);
  });

  it("reorder bloat: messages ahead of order are bounded by the window, the link and device budgets", async () => {
    // Above what one stream may hold out of order (maxHeld: 8 MiB), below what three streams
    // 3 MiB ahead of order hold (9.6 MiB with the overhead of held messages).
    const LINK_BUDGET = 9 * MiB;
    const DEVICE_BUDGET = 16 * MiB;
    const { v, c } = await victimAndClient({
      LINKWEAVE_LIMITS: `linkBudget=${LINK_BUDGET},deviceBudget=${DEVICE_BUDGET}`,
    });
    const from = Date.now();
    const msg = new Uint8Array(1024).fill(0xab);
    /** Send `bytes` of 1 KiB messages on a stream, all after a gap at seq 1. */
    const ahead = async (p: RawPeer, stream: number, bytes: number) => {
      for (let seq = 2; seq < 2 + bytes / 1024 && !p.closed;) {
        const batch = [];
        for (let k = 0; k < 256 && seq < 2 + bytes / 1024; k++) {
          batch.push(dataFrame(stream, seq++, msg));
        }
        await p.send(batch);
      }
    };
    // The window: one stream sent more than its window ahead of order is reset; its link lives.
    const a = await attacker(v, 1);
    await openStream(a, 1);
    await ahead(a, 1, WINDOW + 64 * KiB);
    await a.until(() => answers(a, 1).includes("close"), 3000, "the reset of stream 1");
    await openStream(a, 3);
    await echo(a, 3, 1);
    // Empty messages ahead of order cost no window bytes, but are bounded all the same: 64 bytes
    // each (HELD_OVERHEAD), a stream holding at most its window and 64 bytes for each of
    // SEQ_WINDOW messages (maxHeld, the most a sender within its credit can have out of order).
    await openStream(a, 5);
    for (let seq = 2; seq < 200_000 && !answers(a, 5).includes("close"); seq += 10_000) {
      const batch = [];
      for (let k = 0; k < 10_000; k++) batch.push(dataFrame(5, seq + k, new Uint8Array(0)));
      await a.send(batch);
      await sleep(10);
    }
    await a.until(() => answers(a, 5).includes("close"), 3000, "the reset of stream 5");
    await echo(a, 3, 2);
    // The link budget: three streams each within the window, together over the link's budget.
    const b = await attacker(v, 2);
    for (const s of [1, 3, 5]) await openStream(b, s);
    for (const s of [1, 3, 5]) await ahead(b, s, 3 * MiB);
    await b.until(() => b.closed, 3000, "the victim to close the link over its budget");
    await until(
      () => v.child.err.includes(`over its budget of ${LINK_BUDGET}`),
      2000,
      "the budget's log line",
    );
    // The device budget: three links each within the link budget, together over the device's.
    const links = [await attacker(v, 3), await attacker(v, 4), await attacker(v, 5)];
    for (const p of links) for (const s of [1, 3]) await openStream(p, s);
    for (const p of links) for (const s of [1, 3]) await ahead(p, s, 3 * MiB);
    await until(() => links.some((p) => p.closed), 3000, "a link closed over the device budget");
    await sleep(200);
    assert.equal(links.filter((p) => p.closed).length, 1, "only the link holding most is closed");
    assert.match(v.child.err, new RegExp(`over the device budget of ${DEVICE_BUDGET}`));
    for (const p of links.filter((p) => !p.closed)) {
      await openStream(p, 5);
      await echo(p, 5, 1);
    }
    await echo(a, 3, 3);
    const grew = report("reorder bloat", v);
    assert.ok(grew.fds <= 16, `${grew.fds} more fds (6 attacker links)`);
    await assertServed(c, from);
    // What the victim held is bounded by the device budget. Its RSS also counts the garbage of
    // the links it closed, which the runtime frees when it likes (a sustained attack levels off
    // at 3 to 8 times the budget, the most on Deno): under 10 times the budget. Before the
    // budgets, this attack grew a victim by 1.4 GB.
    assert.ok(grew.rss < 10 * DEVICE_BUDGET, `RSS grew by ${grew.rss} bytes`);
    stop(v, c.child);
  });

  it("data for streams never opened is dropped unread", async () => {
    const LINK_BUDGET = 16 * MiB;
    const { v, c } = await victimAndClient({ LINKWEAVE_LIMITS: `linkBudget=${LINK_BUDGET}` });
    const from = Date.now();
    const p = await attacker(v, 1);
    const chunk = new Uint8Array(60_000).fill(7);
    // Stream ids of both parities, each the first fragment of a 16 MiB or a 1 MiB message, the
    // rest of one such message, whole messages, closes and credit: about 145 MB on the wire.
    for (let round = 0; round < 5; round++) {
      const batch = [];
      for (let s = 1; s <= 2048; s += 8) {
        const total = s % 16 === 1 ? 16 * MiB : MiB;
        batch.push(dataFrame(s + (round % 8), 1, chunk, { offset: 0, total }));
      }
      for (let off = 60_000; off < 16 * MiB; off += 60_000 * 8) {
        batch.push(dataFrame(3001, 1, chunk, { offset: off, total: 16 * MiB }));
      }
      for (let s = 1; s < 200; s++) {
        batch.push(dataFrame(4000 + s, round + 1, chunk));
        batch.push({
          type: FrameType.CLOSE,
          stream: 5000 + s,
          seq: 1,
          total: 0,
          offset: 0,
          payload: new Uint8Array(0),
        });
        batch.push({
          type: FrameType.CREDIT,
          stream: 6000 + s,
          seq: 1 << 30,
          total: 0,
          offset: 0,
          payload: new Uint8Array(0),
        });
      }
      await p.send(batch);
    }
    // Nothing of it is held: the link can still hold nearly its whole budget for its own streams
    // (four streams 3.5 MiB ahead of order each, 15 MiB with the overhead of held messages).
    const msg = new Uint8Array(1024).fill(1);
    for (const s of [11, 13, 15, 17]) {
      await openStream(p, s);
      for (let seq = 2; seq < 2 + 3584;) {
        const frames = [];
        for (let k = 0; k < 256 && seq < 2 + 3584; k++) frames.push(dataFrame(s, seq++, msg));
        await p.send(frames);
      }
    }
    // The link lives and serves.
    await openStream(p, 1);
    await echo(p, 1, 1);
    assert.ok(!p.closed, "the link lives");
    assert.equal(appEvents(v, attackerId(1), "accepted").length, 5, "only the real opens");
    const grew = report("unopened-stream flood", v);
    await assertServed(c, from);
    // About 145 MB passed through and the link lives, so it held less than its budget at all
    // times; the runtime's read buffers and garbage not yet collected stay under a few times that
    // (peaks of 55-74 MB seen, the most on Deno on a loaded machine), well under the 160 MB that
    // holding the flood and the held messages would take.
    assert.ok(grew.rss < 6 * LINK_BUDGET, `RSS grew by ${grew.rss} bytes`);
    stop(v, c.child);
  });

  it("oversized and empty messages close that connection only", async () => {
    const { v, c } = await victimAndClient({});
    const from = Date.now();
    const p = await attacker(v, 1);
    for (const s of [1, 3, 5, 7]) await openStream(p, s);
    await echo(p, 1, 1);
    // 0 bytes (whole), 2 MiB and 16 MiB (every fragment sent): linkEnhance messages are 1..1024.
    await p.send([dataFrame(3, 1, new Uint8Array(0))]);
    const frag = new Uint8Array(65_000).fill(9);
    for (const [stream, total] of [[5, 2 * MiB], [7, 16 * MiB]]) {
      // Refused at its first fragment: the victim never gathers such a message.
      await p.send([dataFrame(stream, 1, frag, { offset: 0, total })]);
      await p.until(() => answers(p, stream).includes("close"), 3000, `the reset of ${stream}`);
      for (let off = frag.length; off < total; off += frag.length * 32) {
        const batch = [];
        for (let k = 0; k < 32 && off + k * frag.length < total; k++) {
          const at = off + k * frag.length;
          batch.push(dataFrame(stream, 1, frag.subarray(0, Math.min(frag.length, total - at)), {
            offset: at,
            total,
          }));
        }
        await p.send(batch);
      }
    }
    await until(
      () => appEvents(v, attackerId(1), "disconnected").length >= 3,
      3000,
      "the victim app to see three disconnections",
    );
    for (const s of [3, 5, 7]) assert.ok(answers(p, s).includes("close"), `stream ${s} closed`);
    await echo(p, 1, 2);
    await sleep(200);
    const gone = appEvents(v, attackerId(1), "disconnected");
    assert.equal(gone.length, 3, JSON.stringify(gone));
    const grew = report("oversized and empty messages", v);
    await assertServed(c, from);
    // Nothing of the 18 MiB is held (each was refused at its first fragment): growth under two
    // 16 MiB messages, the second for the runtime's read buffers and garbage.
    assert.ok(grew.rss < 2 * 16 * MiB, `RSS grew by ${grew.rss} bytes`);
    stop(v, c.child);
  });

  it("invented device ids: links are capped, the excess refused as busy; the victim recovers", async () => {
    const LINKS = 8;
    const { v, c } = await victimAndClient({ LINKWEAVE_LIMITS: `links=${LINKS}` });
    const from = Date.now();
    const peers = await Promise.all(
      Array.from({ length: 60 }, () => RawPeer.connect(v.port)),
    );
    sockets.push(...peers);
    const said = await Promise.all(peers.map((p, i) => handshake(p, { id: attackerId(i + 1) })));
    const welcomed = said.filter((h) => h.op === "welcome").length;
    const refused = said.filter((h) => h.op === "refuse");
    // The client's kept link holds one, a fresh round perhaps another.
    assert.ok(welcomed <= LINKS - 1 && welcomed >= LINKS - 2, `${welcomed} attackers got a link`);
    assert.equal(refused.length, 60 - welcomed);
    assert.ok(refused.every((h) => h.reason === "busy"), JSON.stringify(refused[0]));
    // While the victim is full, the kept connection is served (new peers are refused: busy).
    const full = Date.now();
    await c.roundAfter(full);
    const during = c.rounds().filter((r) => r.start >= full);
    assert.ok(during.every((r) => r.kept === "ok"), JSON.stringify(during));
    const maxLinks = Math.max(
      ...v.lines().filter((l) => l.links !== undefined).map((l) => l.links as number),
    );
    assert.ok(maxLinks <= LINKS, `${maxLinks} links`);
    // The attackers leave: new peers are served again.
    for (const p of peers) p.destroy();
    const left = Date.now();
    await c.roundAfter(left);
    const r = await c.roundAfter(Date.now());
    assert.deepEqual([r.fresh, r.kept], ["ok", "ok"]);
    const grew = report("invented ids (60)", v);
    // At most the channels in handshake (64 by default) and the links; once they left, none.
    assert.ok(grew.fds <= 64 + LINKS, `${grew.fds} more fds`);
    assert.ok(usage(v.pid).fds <= v.base.fds + 4, `${usage(v.pid).fds} fds after the attack`);
    assert.ok(grew.rss < 32 * MiB, `RSS grew by ${grew.rss} bytes`);
    assert.ok(c.rounds().filter((r) => r.end >= from).every((r) => r.kept === "ok"));
    stop(v, c.child);
  });

  it("stream-open flood: opens beyond the stream limit are refused, the link lives", async () => {
    const STREAMS = 64;
    const { v, c } = await victimAndClient({ LINKWEAVE_LIMITS: `streamsPerLink=${STREAMS}` });
    const from = Date.now();
    const p = await attacker(v, 1);
    const OPENS = 5000;
    const batch = Array.from({ length: OPENS }, (_, i) => openFrame(1 + 2 * i));
    await p.send(batch);
    await p.until(
      () => p.frames.filter((f) => f.type === FrameType.CONTROL).length >= OPENS,
      5000,
      "an answer to every open",
    );
    let accepted = 0;
    let rejected = 0;
    for (let i = 0; i < OPENS; i++) {
      const a = answers(p, 1 + 2 * i);
      if (a[0] === "accept") accepted++;
      else if (a[0] === "reject") rejected++;
    }
    assert.equal(accepted, STREAMS);
    assert.equal(rejected, OPENS - STREAMS);
    // Closing some streams makes room for new ones: the link lives.
    const closes = Array.from({ length: 4 }, (_, i) => ({
      type: FrameType.CLOSE,
      stream: 1 + 2 * i,
      seq: 1,
      total: 0,
      offset: 0,
      payload: new Uint8Array(0),
    }));
    await p.send(closes);
    await sleep(100);
    await openStream(p, 20_001);
    await echo(p, 20_001, 1);
    const grew = report("stream-open flood (5000)", v);
    await assertServed(c, from);
    assert.ok(grew.rss < 32 * MiB, `RSS grew by ${grew.rss} bytes`);
    stop(v, c.child);
  });

  it("a peer flooding opens without reading the refusals loses its link, memory bounded", async () => {
    const { v, c } = await victimAndClient({ LINKWEAVE_LIMITS: "streamsPerLink=8" });
    const from = Date.now();
    const p = await attacker(v, 1);
    p.socket.pause();
    // 600,000 opens (22 MB): their refusals fill both kernel buffers, then the victim's queue.
    for (let k = 0; k < 60 && !p.closed; k++) {
      await p.send(
        Array.from({ length: 10_000 }, (_, i) => openFrame(1 + 2 * ((k * 10_000 + i) % 32_000))),
      );
    }
    p.socket.resume();
    // Closed for it, not later by the keep-alive timeout (5 s) once the peer fell silent.
    await p.until(() => p.closed, 3000, "the victim to close the link");
    const grew = report("open flood, refusals unread (600k)", v);
    await assertServed(c, from);
    // The answers held: at most 4096 (MAX_UNSENT_ANSWERS), a few hundred KiB; the rest is what
    // the runtime's socket buffers took and the garbage of 600,000 decoded opens. Without the
    // bound, the answers held grew past 100 MiB.
    assert.ok(grew.rss < 96 * MiB, `RSS grew by ${grew.rss} bytes`);
    stop(v, c.child);
  });

  it("a peer that closes or breaks a stream before the victim answered leaves no connection behind", async () => {
    const { v, c } = await victimAndClient({});
    const from = Date.now();
    const p = await attacker(v, 1);
    const batch = [];
    for (let i = 0; i < 100; i++) {
      const s = 1 + 2 * i;
      batch.push(openFrame(s));
      batch.push(
        i % 2 === 0
          ? {
            type: FrameType.CLOSE,
            stream: s,
            seq: 1,
            total: 0,
            offset: 0,
            payload: new Uint8Array(0),
          }
          : dataFrame(s, 1, new Uint8Array(10)), // data before the accept: a reset
      );
    }
    await p.send(batch);
    await openStream(p, 1001);
    await echo(p, 1001, 1);
    p.destroy();
    const id = attackerId(1);
    await until(
      () => appEvents(v, id, "disconnected").length >= 1,
      3000,
      "the real connection to be disconnected",
    );
    await sleep(300);
    const accepted = appEvents(v, id, "accepted").length;
    const gone = appEvents(v, id, "disconnected").length;
    const grew = report("open-and-close races", v);
    // 200 streams that never lived: nothing held.
    assert.ok(grew.fds <= 8 && grew.rss < 16 * MiB, JSON.stringify(grew));
    await assertServed(c, from);
    assert.equal(accepted, gone, `the app accepted ${accepted} connections, ${gone} ended`);
    stop(v, c.child);
  });

  it("data on a stream the victim is refusing, while the peer reads nothing, harms nothing", async () => {
    const { v, c } = await victimAndClient({});
    const from = Date.now();
    const p = await attacker(v, 1);
    const streams = [1, 3, 5, 7, 9, 11, 13, 15];
    for (const s of streams) await openStream(p, s);
    // The peer stops reading while the echo server sends back 24 MiB: the victim's channel fills.
    p.socket.pause();
    const msg = new Uint8Array(1024).fill(3);
    for (let seq = 1; seq <= 3072; seq += 256) {
      await p.send(
        streams.flatMap((s) => Array.from({ length: 256 }, (_, k) => dataFrame(s, seq + k, msg))),
      );
    }
    await sleep(300);
    // An open of a server that does not exist: refused, but the refusal cannot go out yet.
    await p.send([openFrame(101, "nope")]);
    await sleep(100);
    await p.send([dataFrame(101, 1, msg), dataFrame(101, 2, msg)]);
    await sleep(300);
    assert.ok(alive(v), `the victim died:\n${v.child.err.slice(-3000)}`);
    p.destroy();
    const grew = report("data on a refused stream", v);
    // The echo server queued what it could (1 MiB per connection, 8 of them) and the socket took
    // the rest it wrote: under 96 MiB with the runtime's garbage of 24 MiB of messages.
    assert.ok(grew.fds <= 8 && grew.rss < 96 * MiB, JSON.stringify(grew));
    await assertServed(c, from);
    stop(v, c.child);
  });

  it("eviction: a hello with a live device's id is refused and the live link stays", async () => {
    const KEEPALIVE = 1500;
    const env = { LINKWEAVE_KEEPALIVE_TIMEOUT: String(KEEPALIVE) };
    const { v, c } = await victimAndClient(env, env);
    const real = "02:C1:1E:00:00:00"; // the client's kept device
    const from = Date.now();
    const claim = async () => {
      const p = await RawPeer.connect(v.port);
      sockets.push(p);
      const h = await handshake(p, { id: real });
      if (h.op !== "welcome") p.destroy();
      return { p, h };
    };
    // For twice the keep-alive timeout (the old rule evicted a link quiet for 2/3 of it).
    while (Date.now() - from < 2 * KEEPALIVE) {
      const { h } = await claim();
      assert.deepEqual([h.op, h.reason], ["refuse", "clash"]);
      await sleep(100);
    }
    await assertServed(c, from);
    // The real device dies without a word (frozen): its link is replaced only once dead.
    process.kill(c.child.proc.pid!, "SIGSTOP");
    const frozen = Date.now();
    let taken: RawPeer | undefined;
    try {
      while (taken === undefined && Date.now() - frozen < KEEPALIVE + 3000) {
        const { p, h } = await claim();
        if (h.op === "welcome") taken = p;
        else assert.deepEqual([h.op, h.reason], ["refuse", "clash"]);
        await sleep(50);
      }
    } finally {
      c.child.kill();
    }
    const after = Date.now() - frozen;
    assert.ok(taken !== undefined, "a restart was never accepted");
    // The client sent something every 50 ms until the freeze: its link was dead (silent for the
    // whole timeout) only about KEEPALIVE ms later.
    assert.ok(after >= KEEPALIVE - 250, `replaced ${after} ms after the device froze`);
    taken.destroy();
    // The real device restarts with the same id: accepted and served.
    const again = await startClient(v, "02:C1:1E:00", env);
    running.push(again.child);
    const r = await again.roundAfter(Date.now());
    assert.deepEqual([r.fresh, r.kept], ["ok", "ok"]);
    const grew = report("eviction", v);
    // Some 50 refused channels and two clients' links.
    assert.ok(grew.fds <= 16 && grew.rss < 32 * MiB, JSON.stringify(grew));
    stop(v, again.child);
  });

  it("garbage after the handshake closes only that link", async () => {
    const { v, c } = await victimAndClient({});
    const from = Date.now();
    const [junk, badCrc, fine] = [await attacker(v, 1), await attacker(v, 2), await attacker(v, 3)];
    for (const p of [junk, badCrc, fine]) {
      await openStream(p, 1);
      await echo(p, 1, 1);
    }
    const noise = new Uint8Array(4096);
    for (let i = 0; i < noise.length; i++) noise[i] = Math.floor(Math.random() * 256);
    noise[0] = 0xff; // not our version: the decoder stops at once
    await junk.write(noise);
    const frame = codec.encodeBatch([dataFrame(1, 2, new Uint8Array(100).fill(1))]).slice();
    frame[frame.length - 1] ^= 0xff;
    await badCrc.write(frame);
    await until(() => junk.closed && badCrc.closed, 3000, "the two links to close");
    await echo(fine, 1, 2);
    await sleep(100);
    assert.ok(!fine.closed);
    for (
      const [n, reason] of [[1, DisconnectReason.LINK_CLOSED], [2, DisconnectReason.LINK_CLOSED]]
    ) {
      assert.deepEqual(appEvents(v, attackerId(n), "disconnected").map((e) => e.reason), [reason]);
    }
    assert.deepEqual(appEvents(v, attackerId(3), "disconnected"), []);
    const grew = report("garbage after the handshake", v);
    assert.ok(grew.fds <= 8 && grew.rss < 16 * MiB, JSON.stringify(grew));
    await assertServed(c, from);
    stop(v, c.child);
  });
});

describeWith("hostile: link, descriptors run out", { commands: { prlimit: "util-linux" } }, () => {
  it("a flood past the victim's descriptor limit (EMFILE) never stops its listener", {
    timeout: 30_000,
  }, async () => {
    const { v, c } = await victimAndClient({ LINKWEAVE_HANDSHAKE_TIMEOUT: "1000" });
    const from = Date.now();
    const limit = usage(v.pid).fds + 12;
    const setLimit = (soft: number | string) => {
      const r = spawnSync("prlimit", [`--pid=${v.pid}`, `--nofile=${soft}:`], { encoding: "utf8" });
      assert.equal(r.status, 0, r.stderr);
    };
    const soft = spawnSync("prlimit", [`--pid=${v.pid}`, "--nofile", "--noheadings", "-oSOFT"], {
      encoding: "utf8",
    }).stdout.trim();
    setLimit(limit);
    try {
      const peers = await Promise.all(Array.from({ length: 100 }, () => RawPeer.connect(v.port)));
      sockets.push(...peers);
      await until(
        () => !alive(v) || usage(v.pid).fds >= limit - 1,
        3000,
        "the victim to run out of descriptors",
      );
      await sleep(1000); // accepting fails meanwhile, and is retried
      for (const p of peers) p.destroy();
      assert.ok(alive(v), `the victim died:\n${v.child.err.slice(-3000)}`);
      const left = Date.now();
      // Once the flood's channels are gone, new connections are accepted again (the back-off is
      // at most 1 s).
      await until(
        () => c.rounds().some((r) => r.start >= left && r.fresh === "ok"),
        8000,
        "a new connection to be accepted after the flood",
      );
    } finally {
      if (alive(v)) setLimit(soft);
    }
    assert.ok(alive(v), `the victim died:\n${v.child.err.slice(-3000)}`);
    const rounds = c.rounds().filter((r) => r.end >= from);
    assert.ok(rounds.every((r) => r.kept === "ok"), JSON.stringify(rounds));
    assert.deepEqual(v.lines().filter((l) => l.ev === "serverStopped"), []);
    const grew = report("EMFILE flood", v);
    // Descriptors are capped by the limit set; memory by the handshake cap (64 channels).
    assert.ok(grew.fds <= 16 && grew.rss < 32 * MiB, JSON.stringify(grew));
    const r = await c.roundAfter(Date.now());
    assert.deepEqual([r.fresh, r.kept], ["ok", "ok"]);
    stop(v, c.child);
  });
});

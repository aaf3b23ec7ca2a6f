/**
 * The attacker of `tests/hostile/trust_test.ts`: a process that speaks raw
 * bytes over TCP where the linkEnhance API cannot do the attack. Its job
 * comes as JSON in `LW_ATTACK` ({@linkcode AttackJob}); it prints one JSON
 * line per thing it did or saw.
 *
 * - **relay**: a TCP proxy. Each direction of each connection is cut into
 *   units: the two handshake frames (M1 and M3 up, M2 and M4 down), then the
 *   records. It passes units on, and can record those of the first
 *   connection to a file (for a replay) and tamper with chosen ones: flip a
 *   bit, send one twice, truncate a handshake message (a shorter message in
 *   a well-formed frame), or cut the channel in the middle of a unit.
 *   Prints `{"conn":n}`, `{"tampered":{...}}` and `{"closed":n}`. It runs
 *   until killed, two minutes at most.
 * - **dial**: connect and speak as device `as`: a plain `hello`, the secure
 *   handshake with keys of its own (and the account it is given, if any), or
 *   the recorded bytes of a genuine dial (M1, then after the answer M3, then
 *   the records if the acceptor has not answered that). Prints what the acceptor answered
 *   (`{"got":"refuse","reason":...}`, `{"got":"response"}`,
 *   `{"got":"accept"}`, `{"got":"welcome"}`), `{"done":true}` if the
 *   handshake completed (the attack worked), and `{"closed":true}` when the
 *   acceptor closed the channel; then it exits.
 *
 * @module
 */
import { createConnection, createServer, type Socket } from "node:net";
import { writeFileSync } from "node:fs";
import { readFileSync } from "node:fs";
import process from "node:process";
import { createCodec } from "../../wasm/mod.ts";
import { FRAME_OVERHEAD, FrameType } from "../../core/proto/frame.ts";
import { encodeHello, HandshakeReader, parseHello } from "../../core/proto/handshake/hello.ts";
import { Kind, SecureHandshake, type TrustView } from "../../core/proto/handshake/secure.ts";
import { RECORD_HEADER } from "../../core/proto/record.ts";
import { nodeCrypto } from "../../platform/crypto.ts";
import { loadAccount } from "../../platform/security.ts";

/** A host and port. */
export interface Address {
  /** The host. */
  host: string;
  /** The port. */
  port: number;
}

/** One change a relay makes. */
export interface Tamper {
  /** The connection (1 for the first the relay accepts). */
  conn: number;
  /** `up` (from the dialer) or `down` (from the acceptor). */
  dir: "up" | "down";
  /** The unit of that direction: 0 and 1 are handshake frames, 2 on records. */
  unit: number;
  /** What to do with it. */
  action: "flip" | "repeat" | "truncate" | "cut";
}

/** What the attacker does. */
export type AttackJob =
  | {
    kind: "relay";
    /** Where it listens. */
    listen: Address;
    /** Where it connects for each accepted connection. */
    to: Address;
    /** Record the units of the first connection in this file (JSON `{up, down}` of hex). */
    record?: string;
    /** The changes. */
    tamper?: Tamper[];
  }
  | {
    kind: "dial";
    /** Whom to dial. */
    to: Address;
    /** The device id it claims. */
    as: string;
    /** What it says. */
    speak: "hello" | "secure" | "replay";
    /** (secure) The account secret, if it knows one. */
    account?: string;
    /** (replay) The recording of a relay. */
    recording?: string;
  };

const print = (o: unknown) => console.log(JSON.stringify(o));
const codec = createCodec();
const crypto = nodeCrypto();
const job = JSON.parse(process.env.LW_ATTACK ?? "{}") as AttackJob;

const hex = (b: Uint8Array) => [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
const unhex = (h: string) => new Uint8Array((h.match(/../g) ?? []).map((x) => parseInt(x, 16)));

function frame(payload: Uint8Array): Uint8Array {
  return codec.encodeBatch([
    { type: FrameType.CONTROL, stream: 0, seq: 0, total: payload.length, offset: 0, payload },
  ]).slice();
}

/** Cuts one direction of a channel into handshake frames, then records. */
class Units {
  #buf = new Uint8Array(0);
  count = 0;

  push(bytes: Uint8Array): Uint8Array[] {
    const b = new Uint8Array(this.#buf.length + bytes.length);
    b.set(this.#buf);
    b.set(bytes, this.#buf.length);
    const out: Uint8Array[] = [];
    let at = 0;
    while (true) {
      let size: number;
      if (this.count < 2) {
        if (b.length - at < 18) break;
        size = FRAME_OVERHEAD + ((b[at + 16] << 8) | b[at + 17]);
      } else {
        if (b.length - at < RECORD_HEADER) break;
        const h = ((b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]) >>> 0;
        size = RECORD_HEADER + (h & 0x7fffffff);
      }
      if (b.length - at < size) break;
      out.push(b.slice(at, at + size));
      at += size;
      this.count++;
    }
    this.#buf = b.slice(at);
    return out;
  }
}

function relay(j: Extract<AttackJob, { kind: "relay" }>): void {
  let conns = 0;
  const server = createServer((client) => {
    const n = ++conns;
    print({ conn: n });
    const upstream = createConnection(j.to.port, j.to.host);
    const recorded: { up: string[]; down: string[] } = { up: [], down: [] };
    let closed = false;
    const close = () => {
      if (closed) return;
      closed = true;
      client.destroy();
      upstream.destroy();
      print({ closed: n });
    };
    const pipe = (dir: "up" | "down", from: Socket, to: Socket) => {
      const units = new Units();
      from.on("data", (chunk: Uint8Array) => {
        for (const unit of units.push(new Uint8Array(chunk))) {
          const index = units.count - 1;
          if (n === 1 && j.record !== undefined) {
            recorded[dir].push(hex(unit));
            writeFileSync(j.record, JSON.stringify(recorded));
          }
          const t = j.tamper?.find((t) => t.conn === n && t.dir === dir && t.unit === index);
          if (t === undefined) {
            to.write(unit);
            continue;
          }
          print({ tampered: t, bytes: unit.length });
          const handshake = index < 2;
          const payload = handshake ? unit.slice(18, unit.length - 4) : unit.slice();
          if (t.action === "flip") {
            payload[Math.floor(payload.length / 2)] ^= 0x04;
            to.write(handshake ? frame(payload) : payload);
          } else if (t.action === "repeat") {
            to.write(unit);
            to.write(unit);
          } else if (t.action === "truncate") {
            to.write(handshake ? frame(payload.subarray(0, payload.length >> 1)) : unit);
          } else {
            to.write(unit.subarray(0, unit.length >> 1), () => close());
            return;
          }
        }
      });
      from.on("end", close);
      from.on("close", close);
      from.on("error", close);
    };
    pipe("up", client, upstream);
    pipe("down", upstream, client);
  });
  server.listen(j.listen.port, j.listen.host, () => print({ listening: true }));
  // Never outlive a test that forgot it.
  setTimeout(() => process.exit(0), 120_000);
}

const noTrust: TrustView = {
  pinned: () => undefined,
  paired: () => false,
  anyPaired: () => false,
  revoked: () => false,
  pin: () => {},
  pair: () => {},
};

async function dial(j: Extract<AttackJob, { kind: "dial" }>): Promise<void> {
  const sock = createConnection(j.to.port, j.to.host);
  await new Promise<void>((resolve, reject) => {
    sock.on("connect", resolve);
    sock.on("error", reject);
  });
  sock.on("error", () => {});
  const t0 = Date.now();
  const closed = new Promise<void>((resolve) => sock.on("close", () => resolve()));
  const reader = new HandshakeReader(codec);
  const answers: Uint8Array[] = [];
  let wake = () => {};
  sock.on("data", (chunk: Uint8Array) => {
    let input: Uint8Array = new Uint8Array(chunk);
    while (true) {
      const got = reader.push(input);
      if (got === undefined) break;
      if ("error" in got) {
        print({ got: "garbage", error: got.error });
        break;
      }
      answers.push(got.payload);
      wake();
      if (got.rest.length === 0) break;
      input = got.rest;
    }
  });
  /** The next handshake payload from the acceptor, or `undefined` once it closed or after 3 s. */
  const next = async (): Promise<Uint8Array | undefined> => {
    const until = Date.now() + 3000;
    while (answers.length === 0 && !sock.destroyed && Date.now() < until) {
      await Promise.race([
        new Promise<void>((r) => (wake = r)),
        closed,
        new Promise((r) => setTimeout(r, 50)),
      ]);
    }
    const a = answers.shift();
    if (a !== undefined) describeAnswer(a);
    return a;
  };
  const identity = { id: j.as, ...crypto.ed25519() };
  if (j.speak === "hello") {
    sock.write(encodeHello(codec, { op: "hello", id: j.as, nonce: "attacker" }));
    await next();
  } else if (j.speak === "secure") {
    const account = j.account === undefined ? undefined : loadAccount(crypto, {
      env: { LINKWEAVE_ACCOUNT: j.account },
      stateDir: "/nonexistent",
    }).key;
    const hs = new SecureHandshake("dialer", {
      crypto,
      identity,
      nonce: "attacker",
      account,
      trust: noTrust,
    });
    sock.write(frame(hs.start()!));
    for (let a = await next(); a !== undefined; a = await next()) {
      const step = hs.handle(a);
      if (step.send !== undefined) sock.write(frame(step.send));
      if (step.error !== undefined) {
        print({ failed: step.error.reason, message: step.error.message });
      }
      if (step.done !== undefined) print({ done: true });
      if (hs.finished) break;
    }
  } else {
    const rec = JSON.parse(readFileSync(j.recording!, "utf8")) as { up: string[] };
    const up = rec.up.map(unhex);
    // M1, then M3 once the acceptor answered, then (if it still listens) the records.
    sock.write(up[0]);
    await next();
    sock.write(up[1]);
    if (await next() === undefined && !sock.destroyed) {
      for (const unit of up.slice(2)) sock.write(unit);
      while (await next() !== undefined);
    }
  }
  await Promise.race([closed, new Promise((r) => setTimeout(r, 3000))]);
  print({ closed: sock.destroyed || sock.readableEnded, ms: Date.now() - t0 });
  sock.destroy();
  process.exit(0);
}

function describeAnswer(a: Uint8Array): void {
  if (a[0] === 0x7b) {
    const h = parseHello(a);
    print(
      "error" in h ? { got: "plain", error: h.error } : {
        got: h.hello.op,
        id: h.hello.id,
        reason: h.hello.reason,
      },
    );
  } else if (a[0] === Kind.REFUSE) {
    const probe = new SecureHandshake("dialer", {
      crypto,
      identity: {
        id: "02:00:00:00:00:00",
        publicKey: new Uint8Array(32),
        privateKey: new Uint8Array(32),
      },
      nonce: "",
      trust: noTrust,
    });
    print({ got: "refuse", reason: probe.handle(a).error?.reason });
  } else if (a[0] === Kind.RESPONSE) {
    print({ got: "response" });
  } else if (a[0] === Kind.ACCEPT) {
    print({ got: "accept" });
  } else {
    print({ got: "unknown", kind: a[0] });
  }
}

if (job.kind === "relay") relay(job);
else if (job.kind === "dial") await dial(job);

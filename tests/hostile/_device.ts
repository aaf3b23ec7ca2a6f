/**
 * A linkEnhance device for the hostile suites (`discovery_test.ts`,
 * `trust_test.ts`), configured by `LINKWEAVE_*` (its id, bind address,
 * peers, account, discovery). It starts server "echo" and prints
 * `{"ready":true,"id":...,"port":...}`; at each connection the server
 * accepts it prints `{"accepted":peerId}`, and `{"lost":peerId,"reason":...}`
 * when such a connection breaks. With `LW_ANSWER=<text>` the
 * server answers every message with that text instead of echoing it (an
 * impostor's forged data).
 *
 * With `LW_CONNECT=<id>` it then waits `LW_DELAY` ms (default 0) and opens a
 * connection to that device's "echo" server `LW_COUNT` times (default 5),
 * one every `LW_EVERY` ms (default 300), sends a message on each, waits for the echo, and prints
 * `{"attempt":n,"ok":true,"echo":...}` or `{"attempt":n,"ok":false,"reason":...}`,
 * then `{"done":true}`.
 *
 * With `LW_COMMANDS=1` it reads commands from stdin, one per line:
 * - `connect <id> <name>`: connect once; on success send one message, wait
 *   for the answer (3 s at most) and close. Prints
 *   `{"connect":name,"result":ConnectResult,"ms":...,"echo":...}`.
 * - `stream <id> <name> <ms>`: open one connection and send `seq <n>` on it
 *   every `ms`, checking that the answers come back in order. Prints
 *   `{"stream":"up"}`, or `{"stream":"failed","result":...}`, then
 *   `{"stream":"flowing"}` at the first answer, and
 *   `{"stream":"down","reason":...}` when the connection is lost.
 * - `stop`: stop sending (after one last message), wait for the answers in
 *   flight (5 s at most), close,
 *   and print `{"stream":"done","sent":n,"echoed":n,"bad":[...],"down":n,"first":t,"last":t}`
 *   (`first` and `last`: when the first and the last echo came, ms since the epoch).
 * - `links`: print `{"links":[[peerId, channels], ...]}`.
 *
 * It runs until killed, or (with `LW_COMMANDS=1`) until its stdin ends.
 *
 * @module
 */
import process from "node:process";
import { createDevice } from "../../link_enhance.ts";
import type { Connection, ConnectResult } from "../../link_enhance.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const print = (o: unknown) => console.log(JSON.stringify(o));

const dev = createDevice();
const server = dev.createServer("echo");
const answer = process.env.LW_ANSWER;
server.on("connectionAccepted", (c) => {
  const peer = c.getPeerDeviceId();
  print({ accepted: peer });
  c.on("disconnected", (reason) => print({ lost: peer, reason }));
  c.on("dataReceived", (d) => c.sendData(answer === undefined ? d : enc.encode(answer).buffer));
});
server.start();
const runtime = await dev.runtime();
print({ ready: true, id: runtime.deviceId, port: runtime.port });

function connect(target: string, name: string): Promise<[ConnectResult, Connection]> {
  const conn = dev.createConnection(target, name);
  return new Promise((resolve) => {
    conn.on("connectResult", (r) => resolve([r, conn]));
    conn.connect();
  });
}

function reply(conn: Connection, ms: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(undefined), ms);
    conn.on("dataReceived", (d) => {
      clearTimeout(t);
      resolve(dec.decode(d));
    });
  });
}

const target = process.env.LW_CONNECT;
if (target !== undefined && target !== "") {
  const count = Number(process.env.LW_COUNT ?? 5);
  const every = Number(process.env.LW_EVERY ?? 300);
  await new Promise((res) => setTimeout(res, Number(process.env.LW_DELAY ?? 0)));
  for (let n = 1; n <= count; n++) {
    const [r, conn] = await connect(target, "echo");
    if (!r.success) {
      print({ attempt: n, ok: false, reason: r.reason });
    } else {
      const echo = reply(conn, 10_000);
      conn.sendData(enc.encode(`ping ${n}`).buffer);
      print({ attempt: n, ok: true, echo: await echo, peer: conn.getPeerDeviceId() });
    }
    conn.close();
    await new Promise((res) => setTimeout(res, every));
  }
  print({ done: true });
}

/** A connection sending numbered messages and checking their echoes. */
interface Stream {
  conn: Connection;
  timer: ReturnType<typeof setInterval> | undefined;
  sent: number;
  echoed: number;
  bad: string[];
  down: number;
  /** When the first and the last echo came (ms since the epoch). */
  first: number;
  last: number;
}
let stream: Stream | undefined;

async function startStream(id: string, name: string, ms: number): Promise<void> {
  const [r, conn] = await connect(id, name);
  if (!r.success) {
    print({ stream: "failed", result: r });
    return;
  }
  const s: Stream = {
    conn,
    timer: undefined,
    sent: 0,
    echoed: 0,
    bad: [],
    down: 0,
    first: 0,
    last: 0,
  };
  stream = s;
  conn.on("dataReceived", (d) => {
    const text = dec.decode(d);
    if (text !== `seq ${s.echoed}`) s.bad.push(text);
    s.echoed++;
    s.last = Date.now();
    if (s.first === 0) {
      s.first = s.last;
      print({ stream: "flowing" });
    }
  });
  conn.on("disconnected", (reason) => {
    s.down++;
    clearInterval(s.timer);
    print({ stream: "down", reason, sent: s.sent, echoed: s.echoed });
  });
  s.timer = setInterval(() => {
    try {
      conn.sendData(enc.encode(`seq ${s.sent}`).buffer);
      s.sent++;
    } catch (e) {
      s.bad.push(`send: ${(e as Error).message}`);
    }
  }, ms);
  print({ stream: "up", peer: conn.getPeerDeviceId() });
}

async function stopStream(): Promise<void> {
  const s = stream;
  if (s === undefined) return print({ stream: "none" });
  stream = undefined;
  clearInterval(s.timer);
  if (s.down === 0) {
    // One more, so that the last echo comes after this command.
    s.conn.sendData(enc.encode(`seq ${s.sent}`).buffer);
    s.sent++;
  }
  const until = Date.now() + 5000;
  while (s.echoed < s.sent && s.down === 0 && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 20));
  }
  s.conn.close();
  const { sent, echoed, down, first, last } = s;
  print({ stream: "done", sent, echoed, bad: s.bad.slice(0, 5), down, first, last });
}

async function command(line: string): Promise<void> {
  const [cmd, ...args] = line.trim().split(/\s+/);
  if (cmd === "connect") {
    const t0 = Date.now();
    const [result, conn] = await connect(args[0], args[1]);
    let echo: string | undefined;
    if (result.success) {
      const got = reply(conn, 3000);
      conn.sendData(enc.encode(`hello ${args[1]}`).buffer);
      echo = await got;
    }
    conn.close();
    print({ connect: args[1], result, ms: Date.now() - t0, echo });
  } else if (cmd === "stream") {
    await startStream(args[0], args[1], Number(args[2] ?? 20));
  } else if (cmd === "stop") {
    await stopStream();
  } else if (cmd === "links") {
    print({ links: [...(await dev.runtime()).links()] });
  }
}

if (process.env.LW_COMMANDS === "1") {
  let buffered = "";
  let queue = Promise.resolve();
  process.stdin.on("data", (chunk: Uint8Array | string) => {
    buffered += typeof chunk === "string" ? chunk : dec.decode(chunk);
    let nl: number;
    while ((nl = buffered.indexOf("\n")) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      queue = queue.then(() => command(line)).catch((e) => print({ error: String(e) }));
    }
  });
  // The test is gone: so is this device.
  process.stdin.on("end", () => process.exit(0));
}

/**
 * The daemon's side of the attach protocol without sockets: a device whose
 * link can be stalled, applications as byte pipes. What a bad application
 * can make the daemon hold, and what its peers see when it is detached.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { DeviceHost } from "../device/host.ts";
import type { DeviceSurface } from "../device/driver_options.ts";
import type { PeerLink } from "../device/endpoint.ts";
import type { Acceptor, Port } from "../device/port.ts";
import { ServiceKind } from "../proto/link/control.ts";
import { SEND_WINDOW } from "./client.ts";
import { DaemonServer } from "./server.ts";
import { AttachDecoder, type AttachMessage, encodeAttach } from "./wire.ts";

const PEER = "02:00:00:00:00:01";

/** A host whose timers run when the test says. */
function host(warnings: string[]): DeviceHost & { fire(): void } {
  const timers = new Map<number, () => void>();
  let next = 1;
  return {
    sockets: undefined as unknown as DeviceHost["sockets"],
    now: () => 0,
    setTimer: (fn) => {
      timers.set(next, fn);
      return next++;
    },
    clearTimer: (t) => void timers.delete(t as number),
    hold: () => {},
    release: () => {},
    defaultDeviceId: () => Promise.resolve("02:00:00:00:00:0D"),
    nonce: () => "n",
    warn: (m) => void warnings.push(m),
    fire: () => {
      const fns = [...timers.values()];
      timers.clear();
      for (const fn of fns) fn();
    },
  };
}

/** A device with one link to PEER whose queue takes `room` bytes, then stalls. */
function device(room: number) {
  const acceptors = new Map<number, Acceptor>();
  const closed: Port[] = [];
  let taken = 0;
  const link = { link: { bufferedAmount: () => taken } } as unknown as PeerLink;
  const d = {
    deviceId: "02:00:00:00:00:0D",
    nonce: "n",
    port: 0,
    bind: "127.0.0.1",
    links: () => new Map([[PEER, 1]]),
    setAcceptor: (kind: number, a: Acceptor) => void acceptors.set(kind, a),
    onListenerFailed: () => {},
    connect: (_peer: string, _name: string, port: Port) => {
      port.peerId = PEER;
      port.link = link;
      port.driver = d;
      port.onOpened();
    },
    send: (_l: PeerLink, _s: number, data: Uint8Array) => {
      if (taken + data.length > room) return false;
      taken += data.length;
      return true;
    },
    closePort: (port: Port) => void closed.push(port),
    linger: () => {},
  } as unknown as DeviceSurface;
  return { device: d, acceptors, closed, link };
}

/** An attached application: what it was sent, whether it was closed. */
function app(server: DaemonServer, queued = () => 0) {
  const decoder = new AttachDecoder("daemon");
  const got: AttachMessage[] = [];
  let closed = false;
  const conn = server.attach({
    write: (b) => void got.push(...decoder.push(b)),
    get queued() {
      return queued();
    },
    close: () => void (closed = true),
  });
  const send = (m: AttachMessage) => conn.handleBytes(encodeAttach(m));
  send({ type: "hello", major: 1, minor: 0, caps: 0, pid: 9 });
  return { conn, got, send, closed: () => closed };
}

const tick = () => new Promise((r) => setTimeout(r, 0));

describe("device daemon server", () => {
  it("an application sending beyond its window is detached, its connection closed on the link", async () => {
    const warnings: string[] = [];
    const dev = device(64 * 1024);
    const server = new DaemonServer({ host: host(warnings), device: dev.device });
    const a = app(server);
    a.send({
      type: "connect",
      handle: 1,
      kind: ServiceKind.LINK_ENHANCE,
      timeout: 0,
      maxMessage: 0,
      peer: PEER,
      name: "demo",
      bundle: "",
    });
    await tick();
    assert.ok(a.got.some((m) => m.type === "opened"));
    const chunk = new Uint8Array(60 * 1024);
    for (let i = 0; i < 2 + SEND_WINDOW / chunk.length && !a.closed(); i++) {
      a.send({ type: "data", handle: 1, bytes: chunk });
    }
    await tick();
    assert.equal(a.closed(), true);
    const err = a.got.find((m) => m.type === "error") as { message: string };
    assert.match(err.message, /more than its 1048576-byte window on connection 1/);
    assert.equal(dev.closed.length, 1, "its connection is closed on the device");
    assert.deepEqual(server.apps, []);
    assert.equal(warnings.length, 1);
    server.close();
  });

  it("an application that does not read is detached at appQueueBytes; another goes on", async () => {
    const dev = device(1 << 20);
    const server = new DaemonServer({
      host: host([]),
      device: dev.device,
      limits: { appQueueBytes: 10_000 },
    });
    let unread = 0;
    const slow = app(server, () => unread);
    const other = app(server);
    await tick();
    slow.send({ type: "serve", kind: ServiceKind.LINK_ENHANCE, names: ["demo"] });
    // A peer opens a connection to it, then sends more than it reads.
    const port = dev.acceptors.get(ServiceKind.LINK_ENHANCE)!({
      peerId: PEER,
      name: "Demo",
      kind: ServiceKind.LINK_ENHANCE,
      bundle: "",
    }) as Port;
    assert.equal(typeof port, "object");
    port.driver = dev.device;
    port.link = dev.link;
    await tick();
    const open = slow.got.find((m) => m.type === "open") as { handle: number };
    slow.send({ type: "accept", handle: open.handle });
    for (let i = 0; i < 20 && !slow.closed(); i++) {
      port.onData(new Uint8Array(1000).buffer);
      unread += 1000;
      await tick();
    }
    assert.equal(slow.closed(), true);
    assert.deepEqual(dev.closed, [port], "the peer's connection is closed");
    assert.deepEqual(server.apps.map((x) => x.pid), [9], "the other application stays");
    assert.equal(other.closed(), false);
    server.close();
  });

  it("an application that does not say hello in time is detached", () => {
    const h = host([]);
    const server = new DaemonServer({ host: h, device: device(0).device });
    let closed = false;
    server.attach({ write: () => {}, queued: 0, close: () => void (closed = true) });
    h.fire();
    assert.equal(closed, true);
    server.close();
  });
});

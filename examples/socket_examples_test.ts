/**
 * Runs the seed's examples (`socket_udp.ts`, `socket_tcp.ts`) against loopback
 * peers and checks what they log.
 *
 * @module
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  constructTCPSocketServerInstance,
  constructUDPSocketInstance,
  type TCPSocketConnection,
  type TCPSocketServer,
  type UDPSocket,
} from "../socket.ts";

describe("socket seed examples", { timeout: 20_000 }, () => {
  let server: TCPSocketServer;
  let udp: UDPSocket;
  const clients: TCPSocketConnection[] = [];
  const logs: string[] = [];
  const original = console.log;

  before(async () => {
    server = constructTCPSocketServerInstance();
    server.on("connect", (c) => clients.push(c));
    await server.listen({ address: "127.0.0.1", port: 18080 });
    udp = constructUDPSocketInstance();
    await udp.bind({ address: "127.0.0.1", port: 18081 });
    console.log = (...args: unknown[]) => logs.push(args.join(" "));
  });

  after(async () => {
    console.log = original;
    await Promise.all(clients.map((c) => c.close()));
    await server.close();
    await udp.close();
  });

  async function until(lines: string[], ms: number): Promise<void> {
    const end = Date.now() + ms;
    const have = () => lines.every((l) => logs.some((x) => x.startsWith(l)));
    while (!have() && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  }

  it("UDPSocket examples", async () => {
    logs.length = 0;
    const got = new Promise<string>((r) =>
      udp.on("message", (m) => r(new TextDecoder().decode(m.message)))
    );
    await import("./socket_udp.ts");
    const expected = [
      "bind success",
      'getState success:{"isBound":true,"isClose":false,"isConnected":false}',
      "setExtraOptions success",
      "on listening success",
      "send success",
      "on close success",
      "close success",
    ];
    await until(expected, 5000);
    for (const l of expected) assert.ok(logs.some((x) => x.startsWith(l)), `${l} in ${logs}`);
    assert.equal(await got, "Hello, server!");
    assert.ok(!logs.some((x) => x.endsWith("fail") && x !== "bind fail"), String(logs));
  });

  it("TCPSocket examples", async () => {
    logs.length = 0;
    await import("./socket_tcp.ts");
    const expected = [
      "connect success",
      "send success",
      'getRemoteAddresssuccess:{"address":"127.0.0.1","family":1,"port":18080}',
      'getState success:{"isBound":true,"isClose":false,"isConnected":true}',
      "setExtraOptions success",
      "on connect success",
      "close success",
      "on close success",
    ];
    await until(expected, 5000);
    for (const l of expected) assert.ok(logs.some((x) => x.startsWith(l)), `${l} in ${logs}`);
    assert.ok(!logs.some((x) => x.endsWith("fail")), String(logs));
  });
});

/**
 * `superviseAccepts` on a real loopback `net.Server`, fed the accept
 * failures libuv reports (an "error" event after listening).
 *
 * @module
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import * as net from "node:net";
import type { BusinessError } from "../core/errors.ts";
import { superviseAccepts } from "./_node_net.ts";

/** What libuv hands a server's "error" event for a failed accept. */
function acceptError(code: string, errno: number): Error {
  return Object.assign(new Error(`accept ${code}`), { code, errno: -errno, syscall: "accept" });
}

/** A listening loopback server under supervision, and what it reported. */
async function supervised(): Promise<{
  server: net.Server;
  port: number;
  died: BusinessError<unknown>[];
  supervisor: ReturnType<typeof superviseAccepts>;
}> {
  const server = net.createServer((s) => s.end("hi"));
  await new Promise<void>((r) => server.listen({ host: "127.0.0.1", port: 0 }, () => r()));
  const { port } = server.address() as net.AddressInfo;
  const died: BusinessError<unknown>[] = [];
  const supervisor = superviseAccepts(server, {
    relisten: { host: "127.0.0.1", port },
    what: `"127.0.0.1" port ${port}`,
    platform: "node",
    onDied: (e) => died.push(e),
  });
  return { server, port, died, supervisor };
}

/** A client's greeting from the server. */
function greeting(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = net.connect({ host: "127.0.0.1", port });
    let got = "";
    c.on("data", (b: Uint8Array) => (got += new TextDecoder().decode(b)));
    c.on("close", () => resolve(got));
    c.on("error", reject);
  });
}

async function until(probe: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!probe()) {
    if (Date.now() > end) throw new Error(`Timed out after ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function close(server: net.Server): Promise<void> {
  return new Promise((r) => server.close(() => r()));
}

describe("superviseAccepts", () => {
  it("ignores a client's failed accept", async () => {
    const { server, port, died } = await supervised();
    for (const [code, errno] of [["ENOTCONN", 107], ["ECONNRESET", 104], ["ECONNABORTED", 103]]) {
      server.emit("error", acceptError(code as string, errno as number));
    }
    assert.equal(server.listening, true);
    assert.equal(await greeting(port), "hi");
    assert.deepEqual(died, []);
    await close(server);
  });

  it("stops listening on a shortage and listens again on the same port after the back-off", async () => {
    const { server, port, died } = await supervised();
    server.emit("error", acceptError("EMFILE", 24));
    assert.equal(server.listening, false); // the loop libuv was in ends with the socket
    await until(() => server.listening, 2000, "listening again");
    assert.equal((server.address() as net.AddressInfo).port, port);
    assert.equal(await greeting(port), "hi");
    assert.deepEqual(died, []);
    await close(server);
  });

  it("reports a failed listening socket once, closed", async () => {
    const { server, died } = await supervised();
    server.emit("error", acceptError("EBADF", 9));
    server.emit("error", acceptError("EINVAL", 22));
    assert.equal(died.length, 1);
    assert.equal(died[0].code, 2301009);
    assert.match(died[0].message, /^Cannot accept on "127\.0\.0\.1" port \d+: accept EBADF$/);
    assert.equal(server.listening, false);
    await close(server);
  });

  it("reports a failure to listen again, and stop() cancels a pending listen", async () => {
    const { server, port, died, supervisor } = await supervised();
    server.emit("error", acceptError("ENFILE", 23));
    // Someone takes the port meanwhile: listening again fails with EADDRINUSE.
    const thief = net.createServer();
    await new Promise<void>((r) => thief.listen({ port }, () => r())); // every address, at once
    await until(() => died.length > 0, 2000, "the failure to listen again");
    assert.equal(died[0].code, 2301098);
    assert.equal(server.listening, false);
    await close(thief);
    const other = await supervised();
    other.server.emit("error", acceptError("ENOBUFS", 105));
    other.supervisor.stop();
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(other.server.listening, false);
    assert.deepEqual(other.died, []);
    supervisor.stop();
    await Promise.all([close(server), close(other.server)]);
  });
});

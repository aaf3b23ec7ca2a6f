/**
 * `linkweave serve` and `linkweave connect` as two processes on loopback:
 * lines both ways, the JSON events, end of input closing the connection
 * with every byte delivered, and the failures of a connect with their exit
 * codes and explanations (no such server, no answer, a malformed id).
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { jsonLines, linkweave, listeningPort, run, type Sandbox, sandbox } from "./_cli.ts";

const SERVER = "02:00:00:00:C2:01";
const CLIENT = "02:00:00:00:C2:02";

describe("linkweave serve / connect, as processes", () => {
  let box: Sandbox;
  before(() => {
    box = sandbox();
  });
  after(() => box.remove());

  it("carries lines both ways; end of input delivers everything, then both exit 0", async () => {
    const s = linkweave(["serve", "--once", "--json", "--id", SERVER, "chat"], box.env);
    try {
      const port = await listeningPort(s);
      const c = linkweave(
        ["connect", "--id", CLIENT, "--peer", `${SERVER}@127.0.0.1:${port}`, SERVER, "chat"],
        box.env,
      );
      try {
        c.write("hello\n");
        await s.waitFor(/"event":"data".*hello/);
        s.write("hi back\n");
        await c.waitFor(/hi back/);
        // A long line goes as several messages, all of it in order.
        const long = "x".repeat(5000);
        c.write(`${long}\nlast line`);
        c.end();
        await s.waitFor(/last line/);
        s.end();
        assert.equal(await s.exit(), 0, s.err);
        assert.equal(await c.exit(), 0, c.err);
        const events = jsonLines(s.out);
        assert.deepEqual(events[0], { event: "connected", peer: CLIENT });
        const text = events.filter((e) => e.event === "data").map((e) => e.text).join("");
        assert.equal(text, `hello\n${long}\nlast line`);
        assert.equal(events.at(-1)!.event, "disconnected");
        assert.equal(c.out, "hi back\n");
      } finally {
        c.kill();
      }
    } finally {
      s.kill();
    }
  });

  it("a server name the peer does not serve: exit 1, code 32390201 explained", async () => {
    const s = linkweave(["serve", "--id", SERVER, "chat"], box.env);
    try {
      const port = await listeningPort(s);
      const c = await run(
        ["connect", "--id", CLIENT, "--peer", `${SERVER}@127.0.0.1:${port}`, SERVER, "other"],
        box.env,
      );
      assert.equal(c.code, 1, c.err);
      assert.match(c.err, /32390201 peer server not started.*"other"/);
    } finally {
      s.kill();
    }
  });

  it("a peer that does not answer: exit 1, code 32390200 explained", async () => {
    const c = await run(
      ["connect", "--id", CLIENT, "--connect-timeout", "500", SERVER, "chat"],
      box.env,
    );
    assert.equal(c.code, 1, c.err);
    assert.match(c.err, /32390200 connect timeout/);
  });

  it("a malformed device id or option is wrong usage: exit 2", async () => {
    const bad = await run(["connect", "--id", CLIENT, "not-an-id", "chat"], box.env);
    assert.equal(bad.code, 2, bad.err);
    assert.match(bad.err, /not-an-id/);
    const opt = await run(["serve", "--nosuch", "chat"], box.env);
    assert.equal(opt.code, 2);
    assert.match(opt.err, /unknown option "--nosuch"/);
    const none = await run(["serve"], box.env);
    assert.equal(none.code, 2);
    assert.match(none.err, /missing NAME/);
  });

  it("a port another process holds: serve exits 1 saying the device cannot start", async () => {
    const s = linkweave(["serve", "--id", SERVER, "chat"], box.env);
    try {
      const port = await listeningPort(s);
      const t = await run(["serve", "--id", CLIENT, "--port", String(port), "chat"], box.env);
      assert.equal(t.code, 1, t.err);
      assert.match(t.err, /Cannot start the device/);
    } finally {
      s.kill();
    }
  });
});

// Smoke test of the npm bundle (dist/npm, built by scripts/build_npm.ts), run
// by `node --test` the way an npm user would import it.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";

const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8"));
const load = (key) => import(new URL(`../../${pkg.exports[key].import}`, import.meta.url).href);

describe("npm bundle", () => {
  it("every export in package.json loads and has its types", async () => {
    for (const [key, entry] of Object.entries(pkg.exports)) {
      const mod = await load(key);
      assert.ok(Object.keys(mod).length > 0, `export "${key}" is empty`);
      assert.ok(readFileSync(new URL(`../../${entry.types}`, import.meta.url), "utf8").length > 0);
    }
  });

  it("the root export throws BusinessError with numeric codes", async () => {
    const { BusinessError, ErrorCode } = await load(".");
    const err = new BusinessError(ErrorCode.CONNECTION_NOT_READY);
    assert.equal(err.code, 32390205);
    assert.equal(err.message, "Connection is not ready");
  });
});

describe("npm bundle: subpaths share one copy of the library", () => {
  it("an error class, a device configuration and the socket API are the same objects everywhere", async () => {
    const root = await load(".");
    const le = await load("./link-enhance");
    const sock = await load("./socket");
    assert.equal(root.linkEnhance.createServer, le.createServer);
    assert.equal(root.socket.constructTCPSocketInstance, sock.constructTCPSocketInstance);
    // A ParameterError thrown through one subpath is a BusinessError of every other.
    let thrown;
    try {
      le.createConnection("not a device id", "svc");
    } catch (e) {
      thrown = e;
    }
    assert.ok(thrown instanceof root.BusinessError, "instanceof across subpaths");
    assert.equal(thrown.code, root.ErrorCode.INVALID_PARAMETER);
    // One default device: once the link-enhance subpath uses it, the root's
    // configure() says it is in use (separate copies would each have their own).
    const server = le.createServer("cross-subpath");
    assert.throws(
      () => root.configure({ port: 0 }),
      (e) => e instanceof root.BusinessError && e.code === 32390300,
    );
    server.close();
  });
});

describe("npm bundle: wasm and socket", () => {
  it("the embedded wasm loads and every CRC-32 source agrees on the check value", async () => {
    const { crcSources, createCodec } = await load("./wasm");
    const check = new TextEncoder().encode("123456789");
    const names = [];
    for (const source of crcSources()) {
      assert.equal(source.crc32(check) >>> 0, 0xcbf43926, source.name);
      names.push(source.name);
    }
    assert.ok(names.includes("wasm"));
    assert.equal(createCodec({ engine: "wasm" }).crc32(check) >>> 0, 0xcbf43926);
  });

  it("a TCP round trip over loopback works through the node adapter", async () => {
    const { socket } = await load(".");
    const server = socket.constructTCPSocketServerInstance();
    server.on("connect", (client) => {
      client.on("message", (m) => client.send({ data: m.message }));
    });
    await server.listen({ address: "127.0.0.1", port: 0 });
    const { port } = await server.getLocalAddress();
    const tcp = socket.constructTCPSocketInstance();
    const echoed = new Promise((resolve) =>
      tcp.on("message", (m) => resolve(new TextDecoder().decode(m.message)))
    );
    await tcp.connect({ address: { address: "127.0.0.1", port }, timeout: 2000 });
    await tcp.send({ data: "ping" });
    assert.equal(await echoed, "ping");
    await tcp.close();
    await server.close();
  });
});

describe("npm bundle: the linkweave command", () => {
  it("the bin runs as an executable and lists its commands", async () => {
    const { execFileSync } = await import("node:child_process");
    const bin = new URL(`../../${pkg.bin.linkweave}`, import.meta.url).pathname;
    const out = execFileSync(bin, ["--help"], { encoding: "utf8" });
    assert.match(out, /^Usage: linkweave <command>/);
    assert.match(out, /dissect/);
  });
});

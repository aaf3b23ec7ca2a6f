/**
 * Trust through the public API, over real sockets on loopback: accounts,
 * pairing, revocation, and what an outsider gets.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { createDevice, type Device } from "../link_enhance.ts";
import { runtimeHost } from "../platform/host.ts";
import type { Connection, ConnectResult } from "../link_enhance.ts";

const A = "02:00:00:00:7A:01";
const B = "02:00:00:00:7B:02";

// Keys and trust stores of these devices live in a state directory of their own.
const state = mkdtempSync(join(tmpdir(), "lw-trust-"));
const savedState = process.env.XDG_STATE_HOME;
process.env.XDG_STATE_HOME = state;
const devices: Device[] = [];
after(async () => {
  await Promise.all(devices.map((d) => d.close()));
  if (savedState === undefined) delete process.env.XDG_STATE_HOME;
  else process.env.XDG_STATE_HOME = savedState;
  rmSync(state, { recursive: true, force: true });
});

function device(id: string, account: string, peers: string[] = [], warned?: string[]): Device {
  const host = warned === undefined
    ? undefined
    : { ...runtimeHost(), warn: (m: string) => void warned.push(m) };
  const d = createDevice({
    deviceId: id,
    port: 0,
    discovery: "off",
    account,
    peers,
    connectTimeout: 8000,
  }, host);
  devices.push(d);
  return d;
}

function connect(from: Device, to: string, name: string): Promise<[ConnectResult, Connection]> {
  const c = from.createConnection(to, name);
  return new Promise((resolve) => {
    c.on("connectResult", (r) => resolve([r, c]));
    c.connect();
  });
}

function serve(d: Device, name: string): Promise<ArrayBuffer> {
  const s = d.createServer(name);
  const got = new Promise<ArrayBuffer>((resolve) =>
    s.on("connectionAccepted", (c) => c.on("dataReceived", resolve))
  );
  s.start();
  return got;
}

describe("trust over real sockets", () => {
  it("devices of one account connect; another account fails at once, hinting at nothing", async () => {
    const a = device(A, "blue");
    const portA = (await a.runtime()).port;
    const got = serve(a, "svc");
    const b = device(B, "blue", [`${A}@127.0.0.1:${portA}`]);
    const [ok, c] = await connect(b, A, "svc");
    assert.deepEqual(ok, { deviceId: A, success: true, reason: 0 });
    c.sendData(new Uint8Array([4, 2]).buffer);
    assert.deepEqual([...new Uint8Array(await got)], [4, 2]);
    assert.deepEqual(a.trustedDevices().map((t) => [t.id, t.how]), [[B, "account"]]);
    c.close();
    await Promise.all([a.close(), b.close()]);

    const a2 = device(A, "blue");
    const port2 = (await a2.runtime()).port;
    serve(a2, "svc");
    const outsider = device("02:00:00:00:7C:03", "red", [`${A}@127.0.0.1:${port2}`]);
    const started = performance.now();
    const [bad] = await connect(outsider, A, "svc");
    const [missing] = await connect(outsider, A, "no-such-server");
    assert.deepEqual(bad, { deviceId: "", success: false, reason: 32390300 });
    assert.deepEqual(missing, bad, "the same answer whether the server exists or not");
    assert.ok(performance.now() - started < 4000, "failed at once, not at the timeout");
    await Promise.all([a2.close(), outsider.close()]);
  });

  it("a refused handshake is logged once, not once more as the failed connect", async () => {
    const a = device("02:00:00:00:7A:21", "blue");
    const port = (await a.runtime()).port;
    serve(a, "svc");
    const lines: string[] = [];
    const outsider = device(
      "02:00:00:00:7C:22",
      "red",
      [`02:00:00:00:7A:21@127.0.0.1:${port}`],
      lines,
    );
    for (const name of ["svc", "svc", "other"]) {
      const [r] = await connect(outsider, "02:00:00:00:7A:21", name);
      assert.equal(r.success, false);
    }
    assert.equal(lines.length, 1, lines.join("\n"));
    assert.match(lines[0], /refused the channel: account/);
  });

  it("pairing with the shown code lets devices of different accounts connect by id", async () => {
    const a = device("02:00:00:00:7A:11", "green");
    const portA = (await a.runtime()).port;
    const got = serve(a, "svc");
    const b = device("02:00:00:00:7B:12", "yellow");
    const offer = await a.pairing.offer({ timeout: 10_000 });
    assert.match(offer.code, /^\d{6}$/);
    const wrong = offer.code === "000000" ? "000001" : "000000";
    await assert.rejects(b.pairing.enter(`127.0.0.1:${portA}`, wrong), /Pairing failed/);
    await assert.rejects(offer.paired, /Pairing failed/, "one attempt per offer");
    const second = await a.pairing.offer({ timeout: 10_000 });
    const [pairedB, pairedA] = await Promise.all([
      b.pairing.enter(`127.0.0.1:${portA}`, second.code),
      second.paired,
    ]);
    assert.equal(pairedB.id, "02:00:00:00:7A:11");
    assert.equal(pairedB.how, "paired");
    assert.equal(pairedA.id, "02:00:00:00:7B:12");
    // B has no static peer for A: it dials the address it paired over.
    const [ok, c] = await connect(b, "02:00:00:00:7A:11", "svc");
    assert.equal(ok.success, true);
    c.sendData(new Uint8Array([7]).buffer);
    assert.deepEqual([...new Uint8Array(await got)], [7]);
    c.close();
    // Revoked: refused from now on.
    assert.ok(a.revoke("02:00:00:00:7B:12"));
    const [after] = await connect(b, "02:00:00:00:7A:11", "svc");
    assert.equal(after.success, false);
    await assert.rejects(b.pairing.enter("nowhere", "123456"), /host:port/);
  });
});

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { resolveConfig } from "../device/config.ts";
import type { DeviceHost } from "../device/host.ts";
import type { Acceptor, DeviceDriver, Port } from "../device/driver.ts";
import { ServiceKind } from "../proto/link/control.ts";
import { LinkEnhance } from "./mod.ts";

/** The API layer over a driver that only records its acceptor. */
function api(): { le: LinkEnhance; accept: () => Acceptor } {
  let acceptor: Acceptor | undefined;
  const driver = {
    setAcceptor(kind: number, fn: Acceptor) {
      if (kind === ServiceKind.LINK_ENHANCE) acceptor = fn;
    },
    onListenerFailed() {},
  } as unknown as DeviceDriver;
  const host = {
    hold() {},
    release() {},
    warn() {},
    now: () => 0,
  } as unknown as DeviceHost;
  const le = new LinkEnhance({
    config: () => resolveConfig({ deviceId: "02:00:00:00:00:01" }, {}),
    host,
    driver: () => Promise.resolve(driver),
  });
  return { le, accept: () => acceptor! };
}

describe("linkEnhance: an accepted connection", () => {
  it("hands messages that arrive before connectionAccepted to the callbacks set in it", async () => {
    const { le, accept } = api();
    const server = le.createServer("early");
    const got: number[] = [];
    server.on("connectionAccepted", (conn) => {
      conn.on("dataReceived", (data) => got.push(new Uint8Array(data)[0]));
    });
    server.start();
    await le.driver();
    const port = accept()({ peerId: "02:00:00:00:00:02", name: "early", kind: 1, bundle: "" });
    assert.ok(typeof port !== "number");
    // The peer's first messages, in the same turn as the open (one read of the channel).
    for (let i = 1; i <= 3; i++) (port as Port).onData(new Uint8Array([i]).buffer);
    assert.deepEqual(got, []);
    await Promise.resolve();
    assert.deepEqual(got, [1, 2, 3]);
    (port as Port).onData(new Uint8Array([4]).buffer);
    assert.deepEqual(got, [1, 2, 3, 4]);
    server.close();
  });
});

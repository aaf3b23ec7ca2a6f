import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  combineDirectories,
  type DeviceDirectory,
  type KnownDevice,
  multicastDirectory,
} from "./finder.ts";
import type { Discovery } from "./driver.ts";
import type { DiscoveredPeer } from "./table.ts";

const B = "0A:00:00:00:00:02";
const C = "0A:00:00:00:00:03";

function directory(devices: KnownDevice[], log: string[] = [], name = "dir"): DeviceDirectory {
  return {
    find: (id) => devices.find((d) => d.deviceId === id),
    list: () => devices,
    announce: () => log.push(`${name} announce`),
    close: () => {
      log.push(`${name} close`);
      return name === "bad" ? Promise.reject(new Error("x")) : Promise.resolve();
    },
  };
}

function peer(deviceId: string, host: string, patch: Partial<DiscoveredPeer> = {}): DiscoveredPeer {
  return {
    deviceId,
    host,
    port: 5000,
    nonce: "0000000000000001",
    version: 2,
    capabilities: 1,
    addresses: [],
    firstSeen: 0,
    lastSeen: 10,
    ...patch,
  };
}

describe("peer finder", () => {
  it("lookup() asks the directories in order and takes the first address", () => {
    const local = directory([
      { deviceId: B, addresses: [{ host: "127.0.0.1", port: 4000, source: "local" }], lastSeen: 1 },
    ]);
    const multi = directory([
      {
        deviceId: B,
        addresses: [{ host: "10.0.0.2", port: 5000, source: "multicast" }],
        lastSeen: 2,
      },
      {
        deviceId: C,
        addresses: [{ host: "10.0.0.3", port: 5000, source: "multicast" }],
        lastSeen: 3,
      },
      { deviceId: "0A:00:00:00:00:04", addresses: [], lastSeen: 3 },
    ]);
    const f = combineDirectories([local, multi]);
    assert.deepEqual(f.lookup(B.toLowerCase()), { host: "127.0.0.1", port: 4000 });
    assert.deepEqual(f.lookup(C), { host: "10.0.0.3", port: 5000 });
    assert.equal(f.lookup("0A:00:00:00:00:04"), undefined, "known, but no address to dial");
    assert.equal(f.lookup("nonsense"), undefined);
  });

  it("list() merges a device's addresses over the directories", () => {
    const f = combineDirectories([
      directory([{
        deviceId: B,
        addresses: [{ host: "127.0.0.1", port: 4000, source: "local" }],
        lastSeen: 7,
      }]),
      directory([
        {
          deviceId: B,
          addresses: [
            { host: "10.0.0.2", port: 4000, source: "multicast" },
            { host: "127.0.0.1", port: 4000, source: "multicast" },
          ],
          lastSeen: 9,
          version: 2,
          capabilities: 1,
        },
      ]),
    ]);
    assert.deepEqual(f.list(), [{
      deviceId: B,
      addresses: [
        { host: "127.0.0.1", port: 4000, source: "local" },
        { host: "10.0.0.2", port: 4000, source: "multicast" },
      ],
      lastSeen: 9,
      version: 2,
      capabilities: 1,
    }]);
  });

  it("announce() and close() reach every directory, even when one fails to close", async () => {
    const log: string[] = [];
    const f = combineDirectories([directory([], log, "bad"), directory([], log, "good")]);
    f.announce();
    await f.close();
    assert.deepEqual(log, ["bad announce", "good announce", "bad close", "good close"]);
  });

  it("multicastDirectory(): the established endpoint first, further addresses, no address without LINK_TCP", () => {
    const peers = [
      peer(B, "10.0.0.2", { addresses: [{ host: "10.0.0.20", port: 7 }] }),
      peer(C, "10.0.0.3", { capabilities: 0 }),
    ];
    const d = multicastDirectory(
      {
        deviceId: "0A:00:00:00:00:01",
        nonce: "0000000000000001",
        lookup: (id) => peers.find((p) => p.deviceId === id),
        peers: () => peers,
        announce() {},
        refute() {},
        close: () => Promise.resolve(),
      } satisfies Discovery,
    );
    assert.deepEqual(d.find(B)?.addresses, [
      { host: "10.0.0.2", port: 5000, source: "multicast" },
      { host: "10.0.0.20", port: 7, source: "multicast" },
    ]);
    assert.deepEqual(d.find(C)?.addresses, []);
    assert.equal(d.find("0A:00:00:00:00:09"), undefined);
    assert.deepEqual(d.list().map((x) => [x.deviceId, x.version, x.lastSeen]), [[B, 2, 10], [
      C,
      2,
      10,
    ]]);
  });
});

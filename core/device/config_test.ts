import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  DEFAULT_LIMITS,
  DEFAULT_PORT,
  isDeviceId,
  normalizeDeviceId,
  parsePeer,
  randomDeviceId,
  resolveConfig,
} from "./config.ts";
import { ParameterError } from "../errors.ts";

describe("device configuration", () => {
  it("isDeviceId() accepts only the BLE MAC form", () => {
    for (const ok of ["00:11:22:33:44:55", "aa:BB:cc:DD:ee:FF"]) assert.ok(isDeviceId(ok), ok);
    for (
      const bad of [
        "",
        "00:11:22:33:44",
        "00:11:22:33:44:55:66",
        "0:11:22:33:44:55",
        "GG:11:22:33:44:55",
        5,
        null,
      ]
    ) {
      assert.ok(!isDeviceId(bad), String(bad));
    }
  });

  it("normalizeDeviceId() upper-cases and rejects with the given code", () => {
    assert.equal(normalizeDeviceId("aa:bb:cc:dd:ee:ff"), "AA:BB:CC:DD:EE:FF");
    assert.throws(
      () => normalizeDeviceId("nope", 32390206),
      (e: unknown) =>
        e instanceof ParameterError && e.code === 32390206 && /"nope"/.test(e.message),
    );
  });

  it("parsePeer() reads ID@host:port with IPv4, names and bracketed IPv6", () => {
    assert.deepEqual(parsePeer("00:11:22:33:44:55@127.0.0.1:1"), {
      deviceId: "00:11:22:33:44:55",
      host: "127.0.0.1",
      port: 1,
    });
    assert.equal(parsePeer(" 00:11:22:33:44:55@host.local:9 ").host, "host.local");
    assert.equal(parsePeer("00:11:22:33:44:55@[fe80::1]:9").host, "fe80::1");
    for (
      const bad of [
        "00:11:22:33:44:55@::1:9",
        "x@h:1",
        "00:11:22:33:44:55@h",
        "00:11:22:33:44:55@h:70000",
      ]
    ) {
      assert.throws(() => parsePeer(bad), ParameterError, bad);
    }
  });

  it("resolveConfig() gives documented defaults", () => {
    const c = resolveConfig({}, {});
    assert.equal(c.deviceId, undefined);
    assert.equal(c.port, DEFAULT_PORT);
    assert.equal(c.portExplicit, false);
    assert.equal(c.bind, "127.0.0.1");
    assert.deepEqual(c.peers, []);
    assert.equal(c.discovery, "auto");
    assert.deepEqual(c.limits, {
      servers: 10,
      connections: 10,
      links: 64,
      streamsPerLink: 256,
      handshakes: 64,
      linkBudget: 64 * 1024 * 1024,
      deviceBudget: 256 * 1024 * 1024,
    });
    assert.equal(c.connectTimeout, 10000);
    assert.equal(c.keepAliveTimeout, 5000);
    assert.equal(c.handshakeTimeout, 5000);
  });

  it("resolveConfig() reads the environment, and options win over it", () => {
    const env = {
      LINKWEAVE_DEVICE_ID: "00:11:22:33:44:55",
      LINKWEAVE_PORT: "4000",
      LINKWEAVE_BIND: "0.0.0.0",
      LINKWEAVE_PEERS: "AA:BB:CC:DD:EE:01@127.0.0.1:4001, AA:BB:CC:DD:EE:02@127.0.0.1:4002",
      LINKWEAVE_DISCOVERY: "off",
      LINKWEAVE_CONNECT_TIMEOUT: "1500",
      LINKWEAVE_LIMITS: "links=8, streamsPerLink=16",
    };
    const c = resolveConfig({}, env);
    assert.equal(c.deviceId, "00:11:22:33:44:55");
    assert.equal(c.port, 4000);
    assert.equal(c.portExplicit, true);
    assert.equal(c.bind, "0.0.0.0");
    assert.deepEqual(c.peers.map((p) => p.port), [4001, 4002]);
    assert.equal(c.discovery, "off");
    assert.equal(c.connectTimeout, 1500);
    assert.equal(c.limits.links, 8);
    assert.equal(c.limits.streamsPerLink, 16);
    const o = resolveConfig({
      port: 0,
      deviceId: "aa:aa:aa:aa:aa:aa",
      limits: { connections: 100 },
    }, env);
    assert.equal(o.port, 0);
    assert.equal(o.deviceId, "AA:AA:AA:AA:AA:AA");
    assert.deepEqual(o.limits, {
      ...DEFAULT_LIMITS,
      links: 8,
      streamsPerLink: 16,
      connections: 100,
    });
  });

  it("resolveConfig() rejects every malformed value with a message naming it", () => {
    const cases: [Parameters<typeof resolveConfig>[0], Record<string, string>, RegExp][] = [
      [{}, { LINKWEAVE_PORT: "abc" }, /^LINKWEAVE_PORT="abc" is not a port/],
      [{}, { LINKWEAVE_PORT: "-1" }, /^LINKWEAVE_PORT="-1" is not a port/],
      [{ port: 1.5 }, {}, /^Invalid port 1.5: expected a port/],
      [{}, { LINKWEAVE_DEVICE_ID: "me" }, /^LINKWEAVE_DEVICE_ID="me" is not a device id/],
      [{ deviceId: "me" }, {}, /^Invalid deviceId "me"/],
      [{}, { LINKWEAVE_DISCOVERY: "mdns" }, /^LINKWEAVE_DISCOVERY="mdns" is not "auto" or "off"/],
      [{}, { LINKWEAVE_PEERS: "bad" }, /^LINKWEAVE_PEERS="bad" is not a peer/],
      [{}, { LINKWEAVE_LIMITS: "links=lots" }, /^LINKWEAVE_LIMITS="links=lots" is not a limit/],
      [{}, { LINKWEAVE_KEEPALIVE_TIMEOUT: "5s" }, /^LINKWEAVE_KEEPALIVE_TIMEOUT="5s" is not/],
      [{ limits: { servers: 0 } }, {}, /limit servers 0/],
      [{ limits: { nope: 1 } as never }, {}, /limit "nope"/],
      [{ connectTimeout: -5 }, {}, /connect timeout -5/],
    ];
    for (const [options, env, re] of cases) {
      assert.throws(
        () => resolveConfig(options, env),
        (e: unknown) => e instanceof ParameterError && e.code === 401 && re.test(e.message),
      );
    }
  });

  it("randomDeviceId() makes locally administered unicast ids", () => {
    const id = randomDeviceId((b) => b.fill(0xff));
    assert.equal(id, "FE:FF:FF:FF:FF:FF");
    assert.equal(randomDeviceId((b) => b.fill(0)), "02:00:00:00:00:00");
  });
});

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

  it("resolveConfig(): channels (auto, 1..8), and a peer id listed with several addresses", () => {
    assert.equal(resolveConfig({}, {}).channels, "auto");
    assert.equal(resolveConfig({}, { LINKWEAVE_CHANNELS: "2" }).channels, 2);
    assert.equal(resolveConfig({ channels: 3 }, { LINKWEAVE_CHANNELS: "2" }).channels, 3);
    assert.equal(resolveConfig({}, { LINKWEAVE_CHANNELS: "auto" }).channels, "auto");
    for (const bad of ["0", "9", "1.5", "two"]) {
      assert.throws(
        () => resolveConfig({}, { LINKWEAVE_CHANNELS: bad }),
        (e: unknown) => e instanceof ParameterError && /LINKWEAVE_CHANNELS/.test(e.message),
        bad,
      );
    }
    assert.throws(() => resolveConfig({ channels: 0 }, {}), ParameterError);
    const id = "02:00:00:00:00:0B";
    const c = resolveConfig({}, { LINKWEAVE_PEERS: `${id}@10.100.2.2:5300,${id}@10.101.2.2:5300` });
    assert.deepEqual(c.peers.map((p) => `${p.deviceId}@${p.host}:${p.port}`), [
      `${id}@10.100.2.2:5300`,
      `${id}@10.101.2.2:5300`,
    ]);
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

  it("resolveConfig() reads transports, adapter, profiles and the bundle name", () => {
    const d = resolveConfig({}, {});
    assert.deepEqual(d.transports, ["bluez", "ip"]);
    assert.equal(d.transportsExplicit, false);
    assert.equal(d.adapter, undefined);
    assert.equal(d.profile, "linkweave");
    assert.deepEqual(d.peerProfiles, {});
    assert.equal(d.bundleName, undefined);
    const env = {
      LINKWEAVE_TRANSPORTS: "ip, bluez",
      LINKWEAVE_ADAPTER: "hci1",
      LINKWEAVE_PROFILE: "openharmony",
      LINKWEAVE_OH_BUNDLE: "com.example.alias",
      LINKWEAVE_OH_DEVID: "board-1",
    };
    const c = resolveConfig({}, env);
    assert.deepEqual(c.transports, ["ip", "bluez"]);
    assert.equal(c.transportsExplicit, true);
    assert.equal(c.adapter, "hci1");
    assert.equal(c.profile, "openharmony");
    assert.equal(c.bundleName, "com.example.alias", "LINKWEAVE_OH_BUNDLE is an alias");
    assert.deepEqual(c.openharmony, { devid: "board-1" });
    // LINKWEAVE_BUNDLE wins over its alias; options over variables.
    assert.equal(
      resolveConfig({}, { ...env, LINKWEAVE_BUNDLE: "com.example.main" }).bundleName,
      "com.example.main",
    );
    const o = resolveConfig({
      transports: ["bluez"],
      adapter: "hci0",
      profile: "linkweave",
      openharmony: { bundleName: "com.example.opt", devtype: 255 },
      peers: {
        "aa:bb:cc:dd:ee:01": { profile: "openharmony" },
        "AA:BB:CC:DD:EE:02": { host: "10.0.0.2", port: 4000 },
      },
    }, env);
    assert.deepEqual(o.transports, ["bluez"]);
    assert.equal(o.adapter, "hci0");
    assert.equal(o.profile, "linkweave");
    assert.equal(o.bundleName, "com.example.opt");
    assert.deepEqual(o.openharmony, { devid: "board-1", devtype: 255 });
    assert.deepEqual(o.peerProfiles, { "AA:BB:CC:DD:EE:01": "openharmony" });
    assert.deepEqual(o.peers, [{ deviceId: "AA:BB:CC:DD:EE:02", host: "10.0.0.2", port: 4000 }]);
    // The array form of peers still works.
    assert.deepEqual(
      resolveConfig({ peers: ["AA:BB:CC:DD:EE:03@h:1"] }, {}).peers,
      [{ deviceId: "AA:BB:CC:DD:EE:03", host: "h", port: 1 }],
    );
  });

  it("resolveConfig() rejects malformed BLE settings, naming the variable or option", () => {
    const cases: [Parameters<typeof resolveConfig>[0], Record<string, string>, RegExp][] = [
      [
        {},
        { LINKWEAVE_TRANSPORTS: "bluez,wifi" },
        /^LINKWEAVE_TRANSPORTS="bluez,wifi" is not a comma list/,
      ],
      [{}, { LINKWEAVE_TRANSPORTS: "ip,ip" }, /^LINKWEAVE_TRANSPORTS="ip,ip" is not/],
      [{ transports: [] }, {}, /^Invalid transports \[\]: expected a comma list/],
      [{}, { LINKWEAVE_ADAPTER: "wlan0" }, /^LINKWEAVE_ADAPTER="wlan0" is not an adapter name/],
      [{}, { LINKWEAVE_PROFILE: "ohos" }, /^LINKWEAVE_PROFILE="ohos" is not "linkweave" or/],
      [{}, { LINKWEAVE_PROFILE: "openharmony" }, /needs the app's bundle name \(LINKWEAVE_BUNDLE/],
      [{ peers: { "AA:BB:CC:DD:EE:01": { profile: "openharmony" } } }, {}, /bundle name/],
      [{ peers: { "nope": {} } }, {}, /^Invalid device id "nope"/],
      [{ peers: { "AA:BB:CC:DD:EE:01": { profile: "x" as never } } }, {}, /profile of peer/],
      [{ peers: { "AA:BB:CC:DD:EE:01": { host: "h" } } }, {}, /both host and port/],
      [{}, { LINKWEAVE_BUNDLE: "a\0b" }, /^LINKWEAVE_BUNDLE="a\\u0000b" is not a bundle name/],
      [{ bundleName: "x".repeat(256) }, {}, /^Invalid bundleName "x+": expected a bundle name/],
      [{}, { LINKWEAVE_OH_DEVID: "d".repeat(65) }, /^LINKWEAVE_OH_DEVID="d+" is not a device id/],
      [{ openharmony: { devtype: 256 } }, {}, /^Invalid openharmony.devtype 256/],
    ];
    for (const [options, env, re] of cases) {
      assert.throws(
        () => resolveConfig(options, env),
        (e: unknown) => e instanceof ParameterError && e.code === 401 && re.test(e.message),
        String(re),
      );
    }
  });

  it("randomDeviceId() makes locally administered unicast ids", () => {
    const id = randomDeviceId((b) => b.fill(0xff));
    assert.equal(id, "FE:FF:FF:FF:FF:FF");
    assert.equal(randomDeviceId((b) => b.fill(0)), "02:00:00:00:00:00");
  });
});

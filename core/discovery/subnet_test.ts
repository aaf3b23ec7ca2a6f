import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  formatIPv4,
  inSubnet,
  isUnicastIPv4,
  onLink,
  parseIPv4,
  selectInterfaces,
  type Subnet,
} from "./subnet.ts";
import { ParameterError } from "../errors.ts";

const ALL: Subnet[] = [
  { name: "lo", address: "127.0.0.1", prefixLength: 8, internal: true },
  { name: "eth0", address: "192.168.1.20", prefixLength: 24 },
  { name: "wlan0", address: "10.7.0.9", prefixLength: 16 },
];

describe("subnets", () => {
  it("parses and formats IPv4 addresses", () => {
    assert.equal(parseIPv4("0.0.0.0"), 0);
    assert.equal(parseIPv4("255.255.255.255"), 0xffffffff);
    for (const bad of ["256.0.0.1", "1.2.3", "01.2.3.4", "a.b.c.d", "::1", ""]) {
      assert.equal(parseIPv4(bad), undefined, bad);
    }
    assert.equal(formatIPv4(0xffffffff), "255.255.255.255");
  });

  it("tells on-link sources from others, at every prefix length", () => {
    assert.ok(inSubnet("192.168.1.255", ALL[1]));
    assert.ok(!inSubnet("192.168.2.1", ALL[1]));
    assert.ok(inSubnet("10.7.255.1", ALL[2]) && !inSubnet("10.8.0.1", ALL[2]));
    assert.ok(inSubnet("1.2.3.4", { address: "9.9.9.9", prefixLength: 0 }));
    assert.ok(inSubnet("9.9.9.9", { address: "9.9.9.9", prefixLength: 32 }));
    assert.ok(!inSubnet("9.9.9.8", { address: "9.9.9.9", prefixLength: 32 }));
    assert.ok(!inSubnet("9.9.9.8", { address: "9.9.9.9", prefixLength: 33 }));
    assert.ok(!inSubnet("fe80::1", ALL[1]));
    assert.ok(onLink("10.7.3.3", ALL) && !onLink("172.16.0.1", ALL));
    assert.ok(!onLink("10.7.3.3", []));
  });

  it("isUnicastIPv4() refuses 0.0.0.0/8, multicast and reserved addresses", () => {
    assert.ok(isUnicastIPv4("1.0.0.0") && isUnicastIPv4("223.255.255.255"));
    assert.ok(!isUnicastIPv4("0.1.2.3") && !isUnicastIPv4("224.0.0.1"));
    assert.ok(!isUnicastIPv4("255.255.255.255") && !isUnicastIPv4("x"));
  });

  it("selectInterfaces(): the interface of the bind address, or every non-loopback one", () => {
    assert.deepEqual(selectInterfaces("0.0.0.0", ALL).map((i) => i.name), ["eth0", "wlan0"]);
    assert.deepEqual(selectInterfaces("::", ALL).map((i) => i.name), ["eth0", "wlan0"]);
    assert.deepEqual(selectInterfaces("10.7.0.9", ALL).map((i) => i.name), ["wlan0"]);
    assert.deepEqual(selectInterfaces("127.0.0.1", ALL).map((i) => i.name), ["lo"]);
    assert.deepEqual(selectInterfaces("0.0.0.0", [ALL[0]]), []);
    for (const [bind, message] of [["10.9.9.9", /no network interface has/], ["::1", /IPv4/]]) {
      assert.throws(
        () => selectInterfaces(bind as string, ALL),
        (e: unknown) => e instanceof ParameterError && (message as RegExp).test(e.message),
      );
    }
  });
});

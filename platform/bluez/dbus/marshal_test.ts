import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ParameterError } from "../../../core/errors.ts";
import {
  DecodeError,
  decodeValues,
  encodeValues,
  type Endian,
  MAX_VALUE_DEPTH,
  Reader,
  Variant,
} from "./marshal.ts";
import {
  isBusName,
  isInterfaceName,
  isMemberName,
  isObjectPath,
  parseSignature,
} from "./signature.ts";

const hex = (b: Uint8Array) => [...b].map((x) => x.toString(16).padStart(2, "0")).join(" ");
const bytes = (...xs: (number | string)[]) =>
  new Uint8Array(
    xs.flatMap((x) => typeof x === "string" ? [...x].map((c) => c.charCodeAt(0)) : [x]),
  );

describe("D-Bus signatures", () => {
  it("parses nested containers and keeps each type's alignment", () => {
    const [t] = parseSignature("a(ya{sv}(x))");
    assert.equal(t.align, 4);
    assert.equal(t.elem?.code, "(");
    assert.equal(t.elem?.align, 8);
    assert.deepEqual(t.elem?.fields?.map((f) => f.signature), ["y", "a{sv}", "(x)"]);
    assert.equal(parseSignature("sa{sv}as").length, 3);
  });

  it("refuses what the specification forbids", () => {
    for (
      const [sig, why] of [
        ["a", /missing/],
        ["()", /at least one field/],
        ["(i", /not closed/],
        ["{sv}", /only as an array element/],
        ["a{vs}", /basic type/],
        ["a{s}", /exactly two/],
        ["a{sss}", /exactly two/],
        ["z", /not a type code/],
        ["a".repeat(33) + "y", /arrays nest deeper than 32/],
        ["(".repeat(33) + "y" + ")".repeat(33), /structs nest deeper than 32/],
        ["y".repeat(256), /longer than 255/],
      ] as const
    ) {
      assert.throws(() => parseSignature(sig), why, sig);
    }
    assert.equal(parseSignature("a".repeat(32) + "y").length, 1);
  });

  it("validates names and paths", () => {
    assert.ok(isObjectPath("/"));
    assert.ok(isObjectPath("/org/bluez/hci0/dev_00_11_22_33_44_55"));
    for (const p of ["", "org", "/org/", "//", "/a-b", "/a//b"]) assert.ok(!isObjectPath(p), p);
    assert.ok(isInterfaceName("org.bluez.GattCharacteristic1"));
    for (const n of ["org", "org.", ".org", "org.1bluez", "org.blu-ez"]) {
      assert.ok(!isInterfaceName(n), n);
    }
    assert.ok(isMemberName("AcquireWrite"));
    assert.ok(!isMemberName("1Acquire"));
    assert.ok(!isMemberName("Acquire.Write"));
    assert.ok(isBusName(":1.42"));
    assert.ok(isBusName("org.bluez"));
    assert.ok(isBusName("org.blu-ez"));
    assert.ok(!isBusName("org"));
    assert.ok(!isBusName("org.1bluez"));
    assert.ok(!isBusName("x".repeat(300) + ".y"));
  });
});

describe("D-Bus values", () => {
  it("encodes known byte vectors with the specification's alignment", () => {
    assert.equal(hex(encodeValues("yu", [1, 2])), "01 00 00 00 02 00 00 00");
    assert.equal(hex(encodeValues("s", ["ab"])), hex(bytes(2, 0, 0, 0, "ab", 0)));
    assert.equal(hex(encodeValues("u", [0x01020304], "B")), "01 02 03 04");
    assert.equal(hex(encodeValues("n", [-2], "B")), "ff fe");
    // The array length excludes the padding before the first element, which
    // is present even for an empty array.
    assert.equal(
      hex(encodeValues("ax", [[5n]])),
      "08 00 00 00 00 00 00 00 05 00 00 00 00 00 00 00",
    );
    assert.equal(hex(encodeValues("ax", [[]])), "00 00 00 00 00 00 00 00");
    assert.equal(
      hex(encodeValues("(yv)", [[7, new Variant("s", "x")]])),
      hex(bytes(7, 1, "s", 0, 1, 0, 0, 0, "x", 0)),
    );
    assert.equal(
      hex(encodeValues("a{sv}", [new Map([["a", new Variant("b", true)]])])),
      hex(bytes(16, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, "a", 0, 1, "b", 0, 0, 0, 0, 1, 0, 0, 0)),
    );
    assert.equal(hex(encodeValues("g", ["a{sv}"])), hex(bytes(5, "a{sv}", 0)));
    assert.equal(hex(encodeValues("d", [1], "B")), "3f f0 00 00 00 00 00 00");
  });

  const sample: [string, unknown[]][] = [
    ["y", [255]],
    ["b", [true]],
    ["n", [-32768]],
    ["q", [65535]],
    ["i", [-2147483648]],
    ["u", [4294967295]],
    ["x", [-(1n << 63n)]],
    ["t", [(1n << 64n) - 1n]],
    ["d", [-1.5e300]],
    ["h", [0]],
    ["s", ["héllo wörld ✓ 🙂"]],
    ["o", ["/org/bluez/hci0"]],
    ["g", ["a{oa{sa{sv}}}"]],
    ["ay", [new Uint8Array([1, 2, 3])]],
    ["aay", [[new Uint8Array([]), new Uint8Array([9])]]],
    ["a{qv}", [new Map([[0xffff, new Variant("ay", new Uint8Array([1, 2]))]])]],
    ["a{sa{sv}}", [new Map([["org.bluez.Device1", new Map([["RSSI", new Variant("n", -60)]])]])]],
    ["(ybnqiuxtdsog)", [[1, false, -1, 1, -1, 1, -1n, 1n, 0.25, "s", "/o", "g"]]],
    ["v", [new Variant("v", new Variant("(ai)", [[1, 2, 3]]))]],
    ["a(yv)", [[[1, new Variant("o", "/")], [8, new Variant("g", "")]]]],
    ["a{ys}", [new Map()]],
  ];

  for (const endian of ["l", "B"] as Endian[]) {
    it(`round-trips every type (${endian === "l" ? "little" : "big"} endian)`, () => {
      for (const [sig, values] of sample) {
        const enc = encodeValues(sig, values, endian);
        assert.deepEqual(decodeValues(sig, enc, endian), values, sig);
      }
    });
  }

  it("accepts convenient forms when encoding", () => {
    assert.deepEqual(decodeValues("ay", encodeValues("ay", [[1, 2]])), [new Uint8Array([1, 2])]);
    assert.deepEqual(decodeValues("t", encodeValues("t", [7])), [7n]);
    assert.deepEqual(
      decodeValues("a{sv}", encodeValues("a{sv}", [{ A: new Variant("u", 1) }])),
      [new Map([["A", new Variant("u", 1)]])],
    );
  });

  it("refuses values that do not fit, naming the value and the type", () => {
    const cases: [string, unknown[], RegExp][] = [
      ["y", [256], /Cannot encode D-Bus value 256 as "y"/],
      ["b", [1], /expected a boolean/],
      ["n", [40000], /signed 16-bit/],
      ["u", [-1], /unsigned 32-bit/],
      ["i", [1.5], /signed 32-bit/],
      ["t", [-1n], /out of range/],
      ["x", [2 ** 60], /bigint or a safe integer/],
      ["s", [1], /expected a string/],
      ["s", ["a\0b"], /NUL/],
      ["o", ["/a/"], /object path/],
      ["g", ["a{vs}"], /basic type/],
      ["v", ["x"], /expected a Variant/],
      ["v", [new Variant("yy", 1)], /exactly one complete type/],
      ["(ii)", [[1]], /2 fields/],
      ["a{qv}", [{ 1: new Variant("y", 1) }], /expected a Map/],
      ["ai", ["x"], /expected an array/],
      ["y", [], /needs 1 values, got 0/],
      ["(", [1], /invalid/],
    ];
    for (const [sig, values, re] of cases) {
      assert.throws(
        () => encodeValues(sig, values),
        (e: unknown) => e instanceof ParameterError && e.code === 401 && re.test(e.message),
        sig,
      );
    }
  });

  it("refuses invalid bytes with a DecodeError", () => {
    const cases: [string, Uint8Array, RegExp][] = [
      ["b", bytes(2, 0, 0, 0), /boolean value 2/],
      ["s", bytes(2, 0, 0, 0, "ab", 1), /NUL-terminated/],
      ["s", bytes(3, 0, 0, 0, "a", 0, "b", 0), /contains a NUL/],
      ["s", bytes(2, 0, 0, 0, 0xc3, 0x28, 0), /UTF-8/],
      ["s", bytes(200, 0, 0, 0, "a", 0), /past the end/],
      ["o", bytes(2, 0, 0, 0, "//", 0), /object path/],
      ["g", bytes(1, "z", 0), /not a type code/],
      ["yu", bytes(1, 9, 0, 0, 1, 0, 0, 0), /padding is not zero/],
      ["ay", bytes(0xff, 0xff, 0xff, 0x7f), /exceeds/],
      ["ai", bytes(6, 0, 0, 0, 1, 0, 0, 0, 2, 0), /past the end|overrun/],
      ["ai", bytes(2, 0, 0, 0, 1, 0, 0, 0), /overrun/],
      ["v", bytes(2, "yy", 0, 1, 2), /exactly one complete type/],
      ["h", bytes(0, 0, 0, 0), /descriptor index 0/],
    ];
    for (const [sig, b, re] of cases) {
      assert.throws(
        () => {
          const r = new Reader(b, { fds: 0 });
          r.values(sig);
          if (!r.done) throw new DecodeError("bytes remain");
        },
        (e: unknown) => e instanceof DecodeError && re.test(e.message),
        sig,
      );
    }
  });

  it("stops variants nested deeper than the limit", () => {
    // v containing v containing ... : each level is 3 bytes of signature "v".
    const depth = MAX_VALUE_DEPTH + 5;
    const b = new Uint8Array(depth * 3 + 1);
    for (let i = 0; i < depth; i++) b.set([1, 0x76, 0], i * 3);
    b[depth * 3] = 0; // never reached
    assert.throws(() => decodeValues("v", b), /nest deeper than 64/);
  });

  it("stops at maxValues", () => {
    const enc = encodeValues("ay", [new Uint8Array(1000)]);
    assert.equal((new Reader(enc, { maxValues: 2 }).values("ay")[0] as Uint8Array).length, 1000);
    const many = encodeValues("ab", [Array(100).fill(true)]);
    assert.throws(() => new Reader(many, { maxValues: 50 }).values("ab"), /more than 50 values/);
  });
});

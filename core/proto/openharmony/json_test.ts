import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseJson, stringItem, toInt32 } from "./_json.ts";

const parse = (s: string) => parseJson(new TextEncoder().encode(s));

describe("openharmony JSON as cJSON reads it", () => {
  it("ignores what follows the first value and skips any byte up to 0x20 as whitespace", () => {
    assert.deepEqual(parse('{"a":1}\0garbage'), { a: 1 });
    assert.deepEqual(parse('\x01 {\x1f"a"\x02:\x03[1 ,\x042]}'), { a: [1, 2] });
    assert.equal(parse(""), undefined);
    assert.equal(parse("   "), undefined);
  });

  it("reads numbers as strtod over cJSON's number characters", () => {
    assert.deepEqual(parse("[+1,.5,1.,01,-0,1e3,2E-1]"), [1, 0.5, 1, 1, -0, 1000, 0.2]);
    assert.equal(parse("[1e]"), undefined);
    assert.equal(parse("[-]"), undefined);
    assert.equal(parse("[0x10]"), undefined);
  });

  it("reads strings with escapes and surrogate pairs, and refuses broken ones", () => {
    assert.deepEqual(parse('["a\\"b\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00"]'), [
      'a"b\\/\b\f\n\r\t\u00e9\u{1f600}',
    ]);
    assert.equal(parse('["\\ude00"]'), undefined);
    assert.equal(parse('["\\ud83d x"]'), undefined);
    assert.equal(parse('["\\q"]'), undefined);
    assert.equal(parse('["open'), undefined);
    assert.deepEqual(parse('["raw\x01tab\there"]'), ["raw\x01tab\there"]);
  });

  it("keeps the first of repeated keys, and a __proto__ key as an own property", () => {
    assert.deepEqual(parse('{"a":1,"a":2}'), { a: 1 });
    const o = parse('{"__proto__":{"x":1}}') as Record<string, unknown>;
    assert.ok(Object.hasOwn(o, "__proto__"));
    assert.equal(Object.getPrototypeOf(o), Object.prototype);
  });

  it("nests up to 1000 levels and no deeper", () => {
    assert.notEqual(parse("[".repeat(1000) + "]".repeat(1000)), undefined);
    assert.equal(parse("[".repeat(1001) + "]".repeat(1001)), undefined);
    assert.equal(parse('{"a":'.repeat(1001) + "1" + "}".repeat(1001)), undefined);
    assert.equal(parse("[".repeat(100000)), undefined);
  });

  it("reads literals exactly and refuses others", () => {
    assert.deepEqual(parse("[true,false,null]"), [true, false, null]);
    assert.equal(parse("[True]"), undefined);
    assert.equal(parse("{a:1}"), undefined);
    assert.equal(parse('{"a" 1}'), undefined);
    assert.equal(parse("[1 2]"), undefined);
  });

  it("converts numbers to int32 as an ARM64 device does, and strings as C reads them", () => {
    assert.deepEqual([toInt32(1e12), toInt32(-1e12), toInt32(2.9), toInt32(-2.9), toInt32(NaN)], [
      2147483647,
      -2147483648,
      2,
      -2,
      0,
    ]);
    assert.equal(stringItem({ s: "ab\0cd" }, "s", 10), "ab");
    assert.equal(stringItem({ s: "é".repeat(128) }, "s", 256), undefined);
    assert.equal(stringItem({ s: "é".repeat(127) }, "s", 256), "é".repeat(127));
  });
});

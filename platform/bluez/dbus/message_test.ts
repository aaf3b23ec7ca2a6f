import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ParameterError } from "../../../core/errors.ts";
import { DecodeError, type Endian, Variant, Writer } from "./marshal.ts";
import {
  encodeMessage,
  type Message,
  MessageDropped,
  MessageFlag,
  type MessageInit,
  MessageReader,
  MessageType,
} from "./message.ts";

const call: MessageInit = {
  type: MessageType.METHOD_CALL,
  serial: 7,
  flags: MessageFlag.NO_AUTO_START,
  path: "/org/bluez/hci0",
  interface: "org.bluez.Adapter1",
  member: "SetDiscoveryFilter",
  destination: "org.bluez",
  signature: "a{sv}",
  body: [new Map([["Transport", new Variant("s", "le")]])],
};

function one(bytes: Uint8Array, fds: number[] = []): Message {
  const r = new MessageReader();
  r.push(bytes.slice(), fds);
  const m = r.next();
  assert.ok(m !== undefined);
  assert.equal(r.next(), undefined);
  return m;
}

/** A raw message: header fields given as [code, signature, value]. */
function raw(
  fields: [number, string, unknown][],
  options: { type?: number; serial?: number; signature?: string; body?: unknown[] } = {},
): Uint8Array {
  const w = new Writer();
  w.u8(0x6c);
  w.u8(options.type ?? 1);
  w.u8(0);
  w.u8(1);
  w.u32(0);
  w.u32(options.serial ?? 1);
  w.values("a(yv)", [fields.map(([c, s, v]) => [c, new Variant(s, v)])]);
  w.align(8);
  const start = w.length;
  if (options.signature !== undefined) w.values(options.signature, options.body ?? []);
  w.patchU32(4, w.length - start);
  return w.view().slice();
}

describe("D-Bus messages", () => {
  for (const endian of ["l", "B"] as Endian[]) {
    it(`round-trip every header field and the body (${endian})`, () => {
      const m = one(encodeMessage({ ...call, sender: ":1.5" }, undefined, endian));
      assert.equal(m.type, MessageType.METHOD_CALL);
      assert.equal(m.flags, MessageFlag.NO_AUTO_START);
      assert.equal(m.serial, 7);
      assert.equal(m.path, "/org/bluez/hci0");
      assert.equal(m.interface, "org.bluez.Adapter1");
      assert.equal(m.member, "SetDiscoveryFilter");
      assert.equal(m.destination, "org.bluez");
      assert.equal(m.sender, ":1.5");
      assert.equal(m.signature, "a{sv}");
      assert.deepEqual(m.body, call.body);
      const e = one(encodeMessage(
        {
          type: MessageType.ERROR,
          serial: 9,
          replySerial: 7,
          errorName: "org.bluez.Error.InProgress",
          signature: "s",
          body: ["In Progress"],
        },
        undefined,
        endian,
      ));
      assert.equal(e.errorName, "org.bluez.Error.InProgress");
      assert.equal(e.replySerial, 7);
    });
  }

  it("lays out the fixed header as the specification says", () => {
    const b = encodeMessage({ ...call, body: [new Map()] });
    assert.deepEqual([...b.subarray(0, 4)], [0x6c, 1, 2, 1]);
    const v = new DataView(b.buffer, b.byteOffset);
    assert.equal(v.getUint32(8, true), 7); // serial
    const fieldsLen = v.getUint32(12, true);
    const bodyStart = 16 + fieldsLen + ((8 - (fieldsLen % 8)) % 8);
    assert.equal(bodyStart % 8, 0);
    assert.equal(v.getUint32(4, true), b.length - bodyStart);
    // First field: PATH (1), signature "o".
    assert.deepEqual([...b.subarray(16, 20)], [1, 1, 0x6f, 0]);
  });

  it("frames messages pushed one byte at a time and several in one chunk", () => {
    const a = encodeMessage(call).slice();
    const b = encodeMessage({ ...call, serial: 8 }).slice();
    const r = new MessageReader();
    const got: number[] = [];
    for (const x of [...a, ...b]) {
      r.push(new Uint8Array([x]));
      for (let m = r.next(); m !== undefined; m = r.next()) got.push(m.serial);
    }
    assert.deepEqual(got, [7, 8]);
    const both = new Uint8Array([...a, ...b, ...a.subarray(0, 10)]);
    r.push(both);
    assert.equal(r.next()?.serial, 7);
    assert.equal(r.next()?.serial, 8);
    assert.equal(r.next(), undefined);
    assert.equal(r.buffered, 10);
  });

  it("refuses an oversized message as soon as its header arrives, and stays failed", () => {
    const r = new MessageReader({ maxMessageBytes: 1024 });
    const b = encodeMessage({
      ...call,
      body: [new Map([["x", new Variant("ay", new Uint8Array(2000))]])],
    });
    r.push(b.slice(0, 16));
    assert.throws(
      () => r.next(),
      (e: unknown) => e instanceof DecodeError && /exceeds 1024/.test(e.message),
    );
    assert.throws(() => r.next(), /exceeds 1024/);
  });

  it("fails the stream on a bad byte order mark or version", () => {
    for (
      const [at, value, re] of [[0, 0x41, /byte order/], [3, 2, /protocol version 2/]] as const
    ) {
      const b = encodeMessage(call).slice();
      b[at] = value;
      const r = new MessageReader();
      r.push(b);
      assert.throws(() => r.next(), re);
    }
  });

  it("hands each message its own descriptors", () => {
    const b1 = encodeMessage({
      type: MessageType.METHOD_RETURN,
      serial: 3,
      replySerial: 1,
      signature: "hq",
      body: [0, 517],
      fds: [40],
    }).slice();
    const b2 = encodeMessage({ ...call, serial: 4 }).slice();
    const b3 = encodeMessage({
      type: MessageType.SIGNAL,
      serial: 5,
      path: "/",
      interface: "a.b",
      member: "C",
      signature: "hh",
      body: [1, 0],
      fds: [41, 42],
    }).slice();
    const r = new MessageReader();
    r.push(b1, [40]);
    r.push(b2);
    r.push(b3, [41, 42]);
    assert.deepEqual(r.next()?.fds, [40]);
    assert.deepEqual(r.next()?.fds, []);
    const s = r.next()!;
    assert.deepEqual(s.fds, [41, 42]);
    assert.deepEqual(s.body, [1, 0]);
  });

  it("fails when a message declares more descriptors than arrived", () => {
    const r = new MessageReader();
    r.push(encodeMessage({ ...call, fds: [1, 2] }));
    assert.throws(() => r.next(), /declares 2 descriptors but 0 arrived/);
  });

  it("drops an invalid message with its descriptors and goes on with the next", () => {
    const good = encodeMessage({ ...call, serial: 99 }).slice();
    const bad: [Uint8Array, RegExp, number[]][] = [
      [raw([[1, "o", "/"]]), /method call needs a member/, []],
      [raw([[1, "o", "/"], [3, "s", "M"]], { serial: 0 }), /serial 0/, []],
      [raw([[1, "o", "/"], [3, "s", "M"]], { type: 9 }), /unknown type 9/, []],
      [raw([[1, "o", "/"], [3, "s", "1M"]]), /invalid member/, []],
      [raw([[1, "o", "/"], [3, "u", 5]]), /header field 3 has type "u"/, []],
      [raw([[1, "o", "/"], [3, "s", "M"], [2, "s", "nodots"]]), /invalid interface/, []],
      [
        raw([[1, "o", "/"], [3, "s", "M"], [8, "g", "u"]], { signature: "y", body: [1] }),
        /does not match "u"/,
        [],
      ],
      [
        raw([[1, "o", "/"], [3, "s", "M"], [8, "g", "y"], [9, "u", 1]], {
          signature: "yy",
          body: [1, 2],
        }),
        /bytes remain/,
        [77],
      ],
      [
        raw([[1, "o", "/"], [3, "s", "M"], [9, "u", 20]]),
        /20 descriptors exceed 16/,
        Array(20).fill(5),
      ],
    ];
    for (const [b, re, fds] of bad) {
      const r = new MessageReader();
      r.push(b, fds);
      r.push(good);
      assert.throws(
        () => r.next(),
        (e: unknown) =>
          e instanceof MessageDropped && re.test(e.message) && e.fds.length === fds.length,
        String(re),
      );
      assert.equal(r.next()?.serial, 99, String(re));
    }
  });

  it("ignores unknown header fields", () => {
    const m = one(raw([[1, "o", "/x"], [3, "s", "M"], [200, "as", ["a"]]]));
    assert.equal(m.path, "/x");
    assert.equal(m.member, "M");
  });

  it("refuses to encode incomplete or invalid headers", () => {
    const cases: [MessageInit, RegExp][] = [
      [{ type: MessageType.METHOD_CALL, serial: 1, path: "/" }, /needs a member/],
      [{ type: MessageType.SIGNAL, serial: 1, path: "/", member: "A" }, /signal needs/],
      [{ type: MessageType.ERROR, serial: 1, replySerial: 1 }, /error name/],
      [{ type: MessageType.METHOD_RETURN, serial: 1 }, /reply serial/],
      [{ ...call, serial: 0 }, /invalid serial "0"/],
      [{ ...call, path: "bad" }, /invalid object path "bad"/],
      [{ ...call, member: "a.b" }, /invalid member "a.b"/],
      [{ ...call, destination: "x" }, /invalid destination "x"/],
      [{ ...call, signature: "a{sv}", body: [1] }, /expected a Map/],
    ];
    for (const [m, re] of cases) {
      assert.throws(
        () => encodeMessage(m),
        (e: unknown) => e instanceof ParameterError && re.test(e.message),
        String(re),
      );
    }
  });
});

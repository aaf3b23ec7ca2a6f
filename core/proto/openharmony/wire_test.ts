import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import process from "node:process";
import { describe, it } from "node:test";
import {
  fromHex,
  hex,
  MTUS,
  type VectorMessage,
  vectors,
} from "../../../tests/openharmony/vectors.ts";
import { decodeMessage } from "./decode.ts";
import { Reassembler } from "./reassembly.ts";
import {
  ackPayload,
  decodeTransHeader,
  encodeBasicInfo,
  encodeGeneralMessage,
  encodeRcMessage,
  fragment,
  handshakePayload,
  mergePayload,
  MsgType,
  parseBasicInfo,
  parseGeneral,
  parseRc,
  resetPayload,
} from "./wire.ts";

/** Our encoder's bytes for a golden message, from its decoded fields. */
function encode(m: VectorMessage): Uint8Array {
  const d = m.decoded as Record<string, never>;
  if (m.char === "2B00") {
    const j = d.json as Record<string, number & string>;
    return encodeBasicInfo({
      ...(j.devid === undefined ? {} : { devid: j.devid }),
      type: j.type,
      devtype: j.devtype,
      features: j.FEATURE_SUPPORT,
    });
  }
  if (d.control !== undefined) {
    const j = (d.control as { json: Record<string, number> }).json;
    return encodeRcMessage(d.seq, {
      delta: j.KEY_DELTA,
      refNum: j.KEY_REF_NUM,
      challenge: j.KEY_CHALLENGE,
    });
  }
  const g = d.general as Record<string, never>;
  const j = g.json as Record<string, never>;
  const payload = g.msgType === MsgType.HANDSHAKE
    ? handshakePayload(j.name, j.bundle_name, j.ability)
    : g.msgType === MsgType.HANDSHAKE_ACK
    ? ackPayload(j.err, j.ability)
    : g.msgType === MsgType.RESET
    ? resetPayload()
    : g.msgType === MsgType.MERGE
    ? mergePayload(j.update_handle)
    : fromHex(g.payloadHex);
  return encodeGeneralMessage({
    seq: d.seq,
    msgType: g.msgType,
    localId: g.localId,
    peerId: g.peerId,
    payload,
  });
}

function transSeq(m: VectorMessage): number {
  const h = decodeTransHeader(fromHex(m.writes[0]));
  assert.ok(typeof h !== "string");
  return h.seq;
}

/** Every message in the vectors: golden ones, transcript inputs and outputs. */
function allMessages(): { where: string; m: VectorMessage }[] {
  const out: { where: string; m: VectorMessage }[] = [];
  for (const mtu of MTUS) {
    for (const [tag, m] of Object.entries(vectors.golden[mtu])) {
      out.push({ where: `${mtu} ${tag}`, m });
    }
  }
  for (const t of vectors.transcripts) {
    t.steps.forEach((s, i) => {
      if (s.writes !== undefined) {
        out.push({
          where: `${t.scenario}@${t.mtu} step ${i} peer`,
          m: s as unknown as VectorMessage,
        });
      }
      s.oh.forEach((m, k) => out.push({ where: `${t.scenario}@${t.mtu} step ${i} oh ${k}`, m }));
    });
  }
  return out;
}

describe("openharmony wire: golden messages", () => {
  it("covers MTU 23, 185 and 512 and every golden tag", () => {
    assert.deepEqual(MTUS, [23, 185, 512]);
    for (const mtu of MTUS) assert.equal(Object.keys(vectors.golden[mtu]).length, 19);
  });

  for (const mtu of MTUS) {
    for (const [tag, m] of Object.entries(vectors.golden[mtu])) {
      it(`encodes ${tag} at MTU ${mtu} into the same GATT writes, byte for byte`, () => {
        const msg = encode(m);
        assert.equal(hex(msg), m.messageHex);
        const writes = fragment(msg, mtu, transSeq(m)).map(hex);
        assert.equal(writes.length, m.writeCount);
        assert.deepEqual(writes, m.writes);
      });
    }
  }

  it("reassembles and decodes every message in the vectors to its decoded fields", () => {
    const all = allMessages();
    assert.ok(all.length > 200, `${all.length} messages`);
    for (const { where, m } of all) {
      const r = new Reassembler();
      let got: Uint8Array | undefined;
      for (const w of m.writes) {
        const res = r.push(fromHex(w));
        assert.notEqual(res.type, "rejected", where);
        if (res.type === "message") got = res.data;
      }
      assert.ok(got !== undefined, where);
      assert.equal(hex(got), m.messageHex, where);
      assert.deepEqual(decodeMessage(m.char, got), m.decoded, where);
    }
  });

  it("parses every message OpenHarmony emits as OpenHarmony reads it", () => {
    for (const { where, m } of allMessages()) {
      const msg = fromHex(m.messageHex);
      const d = m.decoded as Record<string, never>;
      if (m.char === "2B00") {
        const info = parseBasicInfo(msg);
        assert.ok(typeof info !== "string", where);
        const j = d.json as Record<string, unknown>;
        assert.equal(info.devid, j.devid, where);
        assert.equal(info.type, j.type, where);
        assert.equal(info.features, j.FEATURE_SUPPORT, where);
      } else if (d.control !== undefined) {
        const rc = parseRc(msg.subarray(24));
        assert.ok(typeof rc !== "string", where);
        assert.equal(rc.delta, (d.control as { json: { KEY_DELTA: number } }).json.KEY_DELTA);
      } else {
        const g = parseGeneral(msg.subarray(24));
        assert.ok(typeof g !== "string", where);
        assert.equal(g.msgType, (d.general as { msgType: number }).msgType, where);
      }
    }
  });
});

describe("openharmony wire: what a device accepts", () => {
  const ids = { localId: 0x2c000001, peerId: 0x2c000002 };
  const body = (type: number, payload: string, headLen = 16) => {
    const m = encodeGeneralMessage({
      seq: 0,
      msgType: type,
      ...ids,
      payload: new TextEncoder().encode(payload),
    }).subarray(24);
    new DataView(m.buffer, m.byteOffset).setUint32(12, headLen, true);
    return m;
  };

  it("reads HANDSHAKE keys in any order, with unknown keys, a trailing NUL and junk after", () => {
    const g = parseGeneral(body(0, '{"x":[1,{}],"bundle_name":"b","ability":2,"name":"n"}\0zz'));
    assert.deepEqual(g, { ...ids, msgType: 0, name: "n", ability: 2, bundleName: "b" });
  });

  it("honours headLen as the body offset and refuses one past the end", () => {
    const g = parseGeneral(body(12, "abcd", 18));
    assert.ok(typeof g !== "string" && g.msgType === 12);
    assert.deepEqual([...g.data], [0x63, 0x64]);
    assert.match(parseGeneral(body(12, "ab", 19)) as string, /headLen 19/);
  });

  it("refuses msgType 22 and up, and drops types it has no parser for", () => {
    assert.match(parseGeneral(body(22, "{}")) as string, /not below 22/);
    assert.match(parseGeneral(body(4, "{}")) as string, /no parser/);
  });

  it("refuses a name of 256 bytes and accepts one of 255", () => {
    const long = (n: number) => `{"name":"${"a".repeat(n)}","ability":2,"bundle_name":"b"}`;
    assert.equal(typeof parseGeneral(body(0, long(255))), "object");
    assert.equal(typeof parseGeneral(body(0, long(256))), "string");
  });

  it("reads basic info with only type, and refuses one without type or of another net type", () => {
    const info = (type: number, text: string) => {
      const t = new TextEncoder().encode(text);
      const m = new Uint8Array(4 + t.length);
      new DataView(m.buffer).setInt32(0, type, true);
      m.set(t, 4);
      return m;
    };
    assert.deepEqual(parseBasicInfo(info(1, '{"type":1}')), { type: 1, devtype: 0, features: 0 });
    assert.equal(typeof parseBasicInfo(info(1, '{"devid":"x"}')), "string");
    assert.equal(typeof parseBasicInfo(info(2, '{"type":1}')), "string");
    assert.equal(typeof parseBasicInfo(info(1, '{"type":-1}')), "string");
  });

  it("reads numbers as cJSON does, and refuses what cJSON refuses", () => {
    const rc = (t: string) => parseRc(new TextEncoder().encode(t));
    assert.deepEqual(rc('{"KEY_METHOD":1,"KEY_DELTA":+1,"KEY_REF_NUM":.5e1}'), {
      delta: 1,
      refNum: 5,
      challenge: 0,
    });
    assert.equal(typeof rc('{"KEY_METHOD":1,"KEY_DELTA":1e,"KEY_REF_NUM":1}'), "string");
    assert.equal(typeof rc('{"KEY_METHOD":2,"KEY_DELTA":1,"KEY_REF_NUM":1}'), "string");
    assert.equal(typeof rc("[" + "[".repeat(1000) + "]".repeat(1000) + "]"), "string");
    assert.deepEqual(rc('{\x01"KEY_METHOD"\x02:1,"KEY_DELTA":-1,"KEY_REF_NUM":0,"KEY_DELTA":5}'), {
      delta: -1,
      refNum: 0,
      challenge: 0,
    });
  });
});

describe("openharmony wire: the vectors copy", () => {
  it("matches ../shared/reference/openharmony-gatt-vectors.json when that is present", (t) => {
    const path = "../shared/reference/openharmony-gatt-vectors.json";
    if (!existsSync(path)) {
      if (process.env.LINKWEAVE_TEST_ALL === "1") assert.fail(`${path} is missing`);
      t.skip(`${path} is absent: the copy in tests/vectors/ is used unchecked`);
      return;
    }
    assert.deepEqual(JSON.parse(readFileSync(path, "utf8")), vectors);
  });
});

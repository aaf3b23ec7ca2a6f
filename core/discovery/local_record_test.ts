import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  decodeLocalRecord,
  encodeLocalRecord,
  isLiveStamp,
  localDialHost,
  type LocalRecord,
  localRecordName,
  MAX_LOCAL_RECORD_SIZE,
  usableRecords,
} from "./local_record.ts";

const R: LocalRecord = {
  deviceId: "02:00:00:00:00:01",
  host: "127.0.0.1",
  port: 38470,
  pid: 4242,
  start: "123456",
  nonce: "0123456789abcdef",
  netns: "net:[4026531840]",
  since: 1_767_225_600_000,
};

describe("local registry record", () => {
  it("round-trips, with the documented JSON fields", () => {
    const text = encodeLocalRecord(R);
    assert.deepEqual(JSON.parse(text), { v: 1, ...R });
    assert.deepEqual(decodeLocalRecord(text), R);
    assert.deepEqual(decodeLocalRecord(encodeLocalRecord({ ...R, start: null, netns: null })), {
      ...R,
      start: null,
      netns: null,
    });
    assert.equal(localRecordName(R), "4242-0123456789abcdef.json");
  });

  it("refuses anything malformed, of another version or too large", () => {
    const bad: unknown[] = [
      "",
      "[]",
      "null",
      JSON.stringify({ ...R, v: 2 }),
      JSON.stringify({ ...R, v: undefined }),
      JSON.stringify({ ...R, deviceId: "x" }),
      JSON.stringify({ ...R, host: "a b" }),
      JSON.stringify({ ...R, host: "" }),
      JSON.stringify({ ...R, port: 0 }),
      JSON.stringify({ ...R, port: "1" }),
      JSON.stringify({ ...R, pid: 0 }),
      JSON.stringify({ ...R, pid: 1.5 }),
      JSON.stringify({ ...R, start: 5 }),
      JSON.stringify({ ...R, nonce: "ABCDEF0123456789" }),
      JSON.stringify({ ...R, netns: {} }),
      JSON.stringify({ ...R, since: "now" }),
      encodeLocalRecord(R).replace("}", `,"pad":"${"x".repeat(MAX_LOCAL_RECORD_SIZE)}"}`),
      42,
    ];
    for (const text of bad) {
      assert.equal(decodeLocalRecord(text as string), undefined, String(text));
    }
    assert.equal(
      decodeLocalRecord(encodeLocalRecord({ ...R, deviceId: "0a:bc:00:00:00:01" }))?.deviceId,
      "0A:BC:00:00:00:01",
    );
  });

  it("the staleness rule: a live pid with the same start time (when both are known)", () => {
    assert.ok(isLiveStamp(R, { alive: true, start: "123456" }));
    assert.ok(isLiveStamp(R, { alive: true, start: null }));
    assert.ok(isLiveStamp({ ...R, start: null }, { alive: true, start: "9" }));
    assert.ok(!isLiveStamp(R, { alive: true, start: "999" }), "a reused pid");
    assert.ok(!isLiveStamp(R, { alive: false, start: null }));
  });

  it("usableRecords(): not its own, same network namespace, the earliest per id", () => {
    const records = [
      R,
      { ...R, nonce: "1111111111111111", port: 2, since: R.since - 5 },
      { ...R, deviceId: "02:00:00:00:00:02", nonce: "2222222222222222", netns: "net:[1]" },
      { ...R, deviceId: "02:00:00:00:00:03", nonce: "3333333333333333", netns: null },
    ];
    const use = usableRecords(records, { nonce: "9999999999999999", netns: R.netns });
    assert.deepEqual([...use.keys()], ["02:00:00:00:00:01", "02:00:00:00:00:03"]);
    assert.equal(use.get("02:00:00:00:00:01")?.port, 2);
    const self = usableRecords(records, { nonce: R.nonce, netns: null });
    assert.equal(self.get("02:00:00:00:00:01")?.nonce, "1111111111111111");
    assert.ok(self.has("02:00:00:00:00:02"), "namespace unknown: used");
  });

  it("localDialHost(): loopback for a wildcard", () => {
    assert.equal(localDialHost("0.0.0.0"), "127.0.0.1");
    assert.equal(localDialHost("127.0.0.1"), "127.0.0.1");
    assert.equal(localDialHost("::"), "::1");
  });
});

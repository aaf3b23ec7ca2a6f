import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Capture, LAYOUT } from "../../../tests/openharmony/capture.ts";
import {
  fromHex,
  MTUS,
  type Transcript,
  type VectorMessage,
  vectors,
} from "../../../tests/openharmony/vectors.ts";
import { dissect, type DissectRecord, type MessageRecord, type Sender } from "./dissect.ts";
import { fragment } from "./wire.ts";

/** A message of a transcript with its sender and link. */
interface Flow {
  m: VectorMessage;
  from: Sender;
  /** OpenHarmony's role on the link it travels. */
  ohSide: "server" | "client";
}

/** Every message of a transcript in order, with who sent it on which link. */
function flow(t: Transcript): Flow[] {
  const out: Flow[] = [];
  let lastLink: "server" | "client" = t.ohRole === "server" ? "server" : "client";
  for (const s of t.steps) {
    if (s.actor === "peer" && s.mtu !== undefined) lastLink = "server";
    if (s.writes !== undefined) {
      // The peer writes as GATT client where OpenHarmony is server, and notifies where it is client.
      out.push({
        m: s as unknown as VectorMessage,
        from: lastLink === "server" ? "client" : "server",
        ohSide: lastLink,
      });
    }
    for (const m of s.oh) {
      out.push({ m, from: m.ohSide === "server" ? "server" : "client", ohSide: m.ohSide! });
    }
  }
  return out;
}

function messages(records: DissectRecord[]): MessageRecord[] {
  const bad = records.filter((r) => r.result !== undefined && r.result !== "warning");
  assert.deepEqual(bad, []);
  return records.filter((r): r is MessageRecord => r.result === undefined);
}

describe("openharmony dissector: text lines", () => {
  it("decodes every golden message at every MTU to the vectors' decoded fields", () => {
    for (const mtu of MTUS) {
      for (const [tag, m] of Object.entries(vectors.golden[mtu])) {
        const alias = m.char === "2B00" ? "net" : "conn";
        const text = m.writes.map((w, i) => `${i % 2 ? m.char : alias} ${w}  # ${tag}`).join("\n");
        const recs = messages(dissect(text, { mtu }));
        assert.equal(recs.length, 1, tag);
        assert.deepEqual(recs[0].decoded, m.decoded, `${mtu} ${tag}`);
        assert.equal(recs[0].char, m.char);
        assert.equal(recs[0].line, m.writes.length);
      }
    }
  });

  it("decodes every transcript, each sender reassembled on its own", () => {
    for (const t of vectors.transcripts) {
      const f = flow(t);
      const lines = f.flatMap(({ m, from, ohSide }) =>
        // One capture line per value; the merge transcript's two links are told apart by sender
        // only, which is enough since each link's values of a message are consecutive.
        m.writes.map((w) =>
          `${from} ${m.char === "2B00" ? OH_NET : "0x2b01"} ${spaced(w)} # ${ohSide}`
        )
      );
      const recs = messages(dissect(lines.join("\r\n")));
      assert.deepEqual(recs.map((r) => r.decoded), f.map((x) => x.m.decoded), t.scenario);
      assert.deepEqual(recs.map((r) => r.from), f.map((x) => x.from), t.scenario);
    }
  });

  it("keeps one buffer per sender, so interleaved directions both reassemble", () => {
    const a = vectors.golden[23]["handshake/oh-client"];
    const b = vectors.golden[23]["ack-ok/oh-server"];
    const lines: string[] = [];
    for (let i = 0; i < Math.max(a.writes.length, b.writes.length); i++) {
      if (i < a.writes.length) lines.push(`client 2B01 ${a.writes[i]}`);
      if (i < b.writes.length) lines.push(`server 2B01 ${b.writes[i]}`);
    }
    const recs = messages(dissect(lines.join("\n")));
    assert.deepEqual(recs.map((r) => r.decoded).sort((x, y) => x.len - y.len), [
      b.decoded,
      a.decoded,
    ]);
  });

  it("says when OpenHarmony ignores a message after reassembly", () => {
    const t = vectors.transcripts.find((x) => x.scenario === "oh-server" && x.mtu === 512)!;
    const step = t.steps.find((s) => s.action.startsWith("NORMAL with 1025"))!;
    const [rec] = messages(dissect(step.writes!.map((w) => `2B01 ${w}`).join("\n")));
    assert.deepEqual(rec.dropped, {
      layer: "SDK",
      reason: "NORMAL payload of 1025 bytes is not delivered (1..1024)",
    });
    const [again] = messages(dissect(["2B00 " + bi(), "2B00 " + bi()].join("\n")).slice(1));
    assert.equal(again.dropped?.layer, "netCtrl");
  });

  it("reports values OpenHarmony's reassembler drops, and discarded half messages", () => {
    const m = vectors.golden[23]["ack-ok/oh-server"];
    const corrupt = m.writes[1].slice(0, 8) + "000000ff" + m.writes[1].slice(16);
    const other = fragment(new Uint8Array(8), 23, 99).map((w) => Array.from(w, hex2).join(""));
    const recs = dissect([`2B01 ${m.writes[0]}`, `2B01 ${corrupt}`, `2B01 ${other[0]}`].join("\n"));
    assert.deepEqual(recs.map((r) => [r.result, r.layer ?? "", r.line]), [
      ["rejected", "BleTransHeader", 2],
      ["discarded", "BleTransHeader", 3],
    ]);
    assert.match((recs[0] as { reason: string }).reason, /size 255 differs from the 4 bytes/);
  });

  it("reports lines it cannot read and warns about values longer than the ATT MTU", () => {
    const recs = dissect("2B02 00\n2B01 0g\n2B01\n# only a comment\n\n2B01 00:00:00", { mtu: 5 });
    assert.deepEqual(recs.map((r) => [r.result, r.layer, r.line]), [
      ["error", "input", 1],
      ["error", "input", 2],
      ["error", "input", 3],
      ["warning", "ATT", 6],
      ["rejected", "BleTransHeader", 6],
    ]);
  });

  it("reads bytes that are not a capture as text", () => {
    const m = vectors.golden[185]["reset/oh-client"];
    const recs = dissect(new TextEncoder().encode(`conn ${m.writes[0]}\n`));
    assert.deepEqual(messages(recs)[0].decoded, m.decoded);
  });
});

describe("openharmony dissector: btsnoop captures", () => {
  for (const t of vectors.transcripts) {
    it(`finds the handles in the discovery and decodes ${t.scenario} at MTU ${t.mtu}`, () => {
      // The capturing host is the peer. Each link gets its own ACL handle; the GATT client
      // of each link discovers the server's database first.
      const cap = new Capture(t.mtu === 23 ? 27 : 251);
      const links = { server: 0x0040, client: 0x0041 };
      const discovered = new Set<string>();
      const f = flow(t);
      for (const { m, from, ohSide } of f) {
        const handle = links[ohSide];
        const clientIsHost = ohSide === "server"; // where OpenHarmony is server, the host is client
        if (!discovered.has(ohSide)) {
          discovered.add(ohSide);
          cap.discovery(handle, clientIsHost, t.mtu);
          cap.value(handle, clientIsHost, true, LAYOUT.decoy, Uint8Array.of(1, 2, 3));
        }
        const attr = m.char === "2B00" ? LAYOUT.net : LAYOUT.conn;
        for (const w of m.writes) {
          cap.value(handle, clientIsHost, from === "client", attr, fromHex(w));
        }
      }
      const recs = messages(dissect(cap.build()));
      assert.deepEqual(recs.map((r) => r.decoded), f.map((x) => x.m.decoded));
      assert.deepEqual(recs.map((r) => r.from), f.map((x) => x.from));
      assert.deepEqual(recs.map((r) => r.conn), f.map((x) => links[x.ohSide]));
    });
  }

  it("warns about values longer than the exchanged MTU, and forgets a connection's handles on disconnect", () => {
    const m = vectors.golden[512]["ack-ok/oh-server"];
    const cap = new Capture();
    cap.discovery(0x40, true, 23);
    cap.value(0x40, true, false, LAYOUT.conn, fromHex(m.writes[0]));
    cap.event([0x05, 4, 0x00, 0x40, 0x00, 0x13]);
    cap.value(0x40, true, false, LAYOUT.conn, fromHex(m.writes[0]));
    const recs = dissect(cap.build());
    assert.deepEqual(recs.map((r) => r.result ?? "message"), ["warning", "message"]);
    assert.match((recs[0] as { reason: string }).reason, /77 bytes exceeds ATT MTU 23 - 3/);
  });

  it("uses the handles and MTU given where the capture lacks the discovery", () => {
    const m = vectors.golden[185]["normal-1/oh-server"];
    const cap = new Capture();
    cap.value(0x40, true, false, 0x99, fromHex(m.writes[0]));
    assert.deepEqual(dissect(cap.build()), []);
    const recs = dissect(cap.build(), { handles: { conn: 0x99 }, mtu: 23 });
    assert.deepEqual(recs.map((r) => r.result ?? "message"), ["warning", "message"]);
  });

  it("reports a truncated capture and an unsupported link type", () => {
    const cap = new Capture();
    cap.discovery(0x40, true, 185);
    const file = cap.build();
    const cut = dissect(file.subarray(0, file.length - 3));
    assert.deepEqual(cut.at(-1), {
      result: "error",
      layer: "btsnoop",
      reason: "record data cut short",
      frame: 14,
    });
    const other = file.slice(0, 16);
    other[15] = 0xd2;
    assert.match((dissect(other)[0] as { reason: string }).reason, /link type 2002/);
  });
});

const OH_NET = "00002b00-0000-1000-8000-00805f9b34fb";

function spaced(hex: string): string {
  return hex.replace(/(.{8})/g, "$1 ").trim();
}

function hex2(b: number): string {
  return b.toString(16).padStart(2, "0");
}

function bi(): string {
  return vectors.golden[512]["basic-info/oh-client"].writes[0];
}

/**
 * `linkweave dissect` as a process, on the runtime running the tests (Node
 * runs the command bundled by esbuild, as the npm `bin` is): a btsnoop file
 * built from the vectors' transcripts (GATT discovery, then ATT writes and
 * notifications cut into ACL packets), text lines on standard input, and the
 * exit codes.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Capture, LAYOUT } from "../tests/openharmony/capture.ts";
import { fromHex, type VectorMessage, vectors } from "../tests/openharmony/vectors.ts";
import { scriptCommand } from "../tests/_script.ts";

/** Run the command; its exit code, stdout and stderr. */
function linkweave(
  args: string[],
  stdin = "",
): Promise<{ code: number | null; out: string; err: string }> {
  const [cmd, pre] = scriptCommand("cli/mod.ts");
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, [...pre, ...args], { stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    let err = "";
    p.stdout!.on("data", (b: Uint8Array) => (out += new TextDecoder().decode(b)));
    p.stderr!.on("data", (b: Uint8Array) => (err += new TextDecoder().decode(b)));
    p.on("error", reject);
    p.on("close", (code) => resolve({ code, out, err }));
    p.stdin!.end(stdin);
  });
}

function lines(out: string): Record<string, unknown>[] {
  return out.trim().split("\n").filter((l) => l !== "").map((l) => JSON.parse(l));
}

describe("linkweave dissect, as a process", () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "lw-dissect-"));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  for (const [scenario, mtu] of [["oh-server", 185], ["oh-client", 23]] as const) {
    it(`decodes a btmon capture of ${scenario} at MTU ${mtu}: handles from the discovery`, async () => {
      const t = vectors.transcripts.find((x) => x.scenario === scenario && x.mtu === mtu)!;
      // The capturing host is OpenHarmony's peer, the GATT client where
      // OpenHarmony serves and the server where it is the client.
      const ohServes = t.ohRole === "server";
      const handle = 0x0040;
      const cap = new Capture(mtu === 23 ? 27 : 251);
      cap.discovery(handle, ohServes, mtu);
      cap.value(handle, ohServes, true, LAYOUT.decoy, Uint8Array.of(1, 2, 3));
      const want: { m: VectorMessage; from: string }[] = [];
      const peer = ohServes ? "client" : "server";
      const oh = ohServes ? "server" : "client";
      for (const s of t.steps) {
        const sent: { m: VectorMessage; from: string }[] = [];
        if (s.writes !== undefined) sent.push({ m: s as unknown as VectorMessage, from: peer });
        for (const m of s.oh) sent.push({ m, from: oh });
        for (const x of sent) {
          const attr = x.m.char === "2B00" ? LAYOUT.net : LAYOUT.conn;
          for (const w of x.m.writes) {
            cap.value(handle, ohServes, x.from === "client", attr, fromHex(w));
          }
          want.push(x);
        }
      }
      const file = join(dir, `${scenario}-${mtu}.btsnoop`);
      writeFileSync(file, cap.build());
      const r = await linkweave(["dissect", file]);
      assert.equal(r.code, 0, r.err);
      const recs = lines(r.out).filter((x) => x.result === undefined);
      assert.deepEqual(recs.map((x) => x.decoded), want.map((x) => x.m.decoded));
      assert.deepEqual(recs.map((x) => x.from), want.map((x) => x.from));
      assert.deepEqual(recs.map((x) => x.char), want.map((x) => x.m.char));
      assert.ok(recs.every((x) => x.conn === handle && typeof x.frame === "number"));
    });
  }

  it("reads text lines from standard input; --mtu warns of values too long", async () => {
    const m = vectors.golden[512]["ack-ok/oh-server"];
    const text = ["# one ACK, written at MTU 512", ...m.writes.map((w) => `server conn ${w}`)]
      .join("\n");
    const r = await linkweave(["dissect", "--json"], text);
    assert.equal(r.code, 0, r.err);
    const [rec] = lines(r.out);
    assert.deepEqual(rec.decoded, m.decoded);
    assert.equal(rec.from, "server");
    assert.equal(rec.line, 2);
    const small = await linkweave(["dissect", "--mtu", "23"], text);
    assert.deepEqual(lines(small.out).map((x) => x.result ?? "message"), ["warning", "message"]);
    assert.match(String(lines(small.out)[0].reason), /77 bytes exceeds ATT MTU 23 - 3/);
    const rejected = await linkweave(["dissect", "-"], "2B01 0000\n");
    assert.deepEqual(lines(rejected.out).map((x) => [x.result, x.layer]), [
      ["rejected", "BleTransHeader"],
    ]);
  });

  it("exits 2 on wrong usage and 1 on an input it cannot read, saying why", async () => {
    const usage = await linkweave(["dissect", "--mtu", "9"]);
    assert.equal(usage.code, 2);
    assert.match(usage.err, /--mtu "9" is not an ATT MTU/);
    assert.equal((await linkweave(["dissect", "--handles", "1"])).code, 2);
    assert.equal((await linkweave(["nosuch"])).code, 2);
    const missing = await linkweave(["dissect", join(dir, "missing.btsnoop")]);
    assert.equal(missing.code, 1);
    assert.match(missing.err, /cannot read ".*missing\.btsnoop"/);
    const help = await linkweave(["dissect", "--help"]);
    assert.equal(help.code, 0);
    assert.match(help.out, /Usage: linkweave dissect \[options\] \[FILE\|-\]/);
  });
});

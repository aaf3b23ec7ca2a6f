/**
 * `linkweave send` and `linkweave receive` as two processes on loopback: a
 * file of a few MB arrives intact (same bytes, the SHA-256 both sides
 * print); a damaged and a short transfer (sent by `_bad_sender.ts`) are
 * detected, leave no file, and fail `receive --once`; a file that exists is
 * refused and `send` says so; a file that cannot be read is exit 1.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { after, before, describe, it } from "node:test";
import { scriptCommand } from "../_script.ts";
import { jsonLines, linkweave, listeningPort, run, type Sandbox, sandbox } from "./_cli.ts";

const RX = "02:00:00:00:C1:01";
const TX = "02:00:00:00:C1:02";

describe("linkweave send / receive, as processes", () => {
  let box: Sandbox;
  let file: string;
  let content: Uint8Array;
  before(() => {
    box = sandbox();
    content = new Uint8Array(randomBytes(3 * 1024 * 1024 + 123));
    file = join(box.dir, "data.bin");
    writeFileSync(file, content);
  });
  after(() => box.remove());

  /** A `receive --once` into a fresh directory. */
  async function receiver(dir: string, extra: string[] = []) {
    mkdirSync(dir, { recursive: true });
    const r = linkweave(["receive", "--id", RX, "--once", ...extra, "files", dir], box.env);
    return { r, port: await listeningPort(r) };
  }

  it("sends 3 MB intact: same bytes, same SHA-256 on both sides, exit 0 on both", async () => {
    const dir = join(box.dir, "in1");
    const { r, port } = await receiver(dir);
    try {
      const s = await run(
        ["send", "--json", "--id", TX, "--peer", `${RX}@127.0.0.1:${port}`, RX, "files", file],
        box.env,
      );
      assert.equal(s.code, 0, s.err);
      assert.equal(await r.exit(), 0, r.err);
      const sha = createHash("sha256").update(content).digest("hex");
      const [sent] = jsonLines(s.out);
      assert.equal(sent.ok, true);
      assert.equal(sent.sha256, sha);
      assert.equal(sent.size, content.length);
      const [got] = jsonLines(r.out);
      assert.equal(got.ok, true);
      assert.equal(got.sha256, sha);
      assert.deepEqual(new Uint8Array(readFileSync(join(dir, "data.bin"))), content);
      assert.deepEqual(readdirSync(dir), ["data.bin"]);
    } finally {
      r.kill();
    }
  });

  for (const mode of ["corrupt", "short"] as const) {
    it(`detects a ${mode} transfer: receive --once exits 1, says why, keeps nothing`, async () => {
      const dir = join(box.dir, `in-${mode}`);
      const { r, port } = await receiver(dir);
      try {
        const bad = linkweave(
          [mode, file, RX, `127.0.0.1:${port}`, "files"],
          box.env,
          "tests/cli/_bad_sender.ts",
        );
        bad.end();
        assert.equal(await r.exit(), 1, r.err);
        const [got] = jsonLines(r.out);
        assert.equal(got.ok, false);
        assert.match(
          String(got.error),
          mode === "corrupt" ? /SHA-256 mismatch/ : /short|ended after/i,
        );
        assert.deepEqual(readdirSync(dir), []);
        await bad.exit();
        if (mode === "corrupt") {
          // The receiver told the sender too.
          assert.match(bad.out, /"ok":false/);
        }
        bad.kill();
      } finally {
        r.kill();
      }
    });
  }

  it("refuses a file that exists; send exits 1 with the receiver's reason", async () => {
    const dir = join(box.dir, "in1");
    const { r, port } = await receiver(dir);
    try {
      const s = await run(
        ["send", "--id", TX, "--peer", `${RX}@127.0.0.1:${port}`, RX, "files", file],
        box.env,
      );
      assert.equal(s.code, 1, s.err);
      assert.match(s.err, /exists/);
      assert.equal(await r.exit(), 1);
    } finally {
      r.kill();
    }
  });

  it("on a terminal, send draws a bar redrawn in place: bytes, rate, ETA", async () => {
    // `script` (bsdutils, essential in Debian) runs send on a pseudo-terminal.
    const dir = join(box.dir, "in-tty");
    const { r, port } = await receiver(dir);
    try {
      const [cmd, pre] = scriptCommand("cli/mod.ts");
      const line = [
        cmd,
        ...pre,
        "send",
        "--id",
        TX,
        "--peer",
        `${RX}@127.0.0.1:${port}`,
        RX,
        "files",
        file,
      ].map((a) => `'${a}'`).join(" ");
      const s = spawnSync("script", ["-qefc", line, "/dev/null"], {
        env: { ...process.env, ...box.env, COLUMNS: "100" },
        timeout: 20_000,
      });
      const out = new TextDecoder().decode(s.stdout);
      assert.equal(s.status, 0, out);
      assert.match(
        out,
        /\rsend data\.bin \[#+-*\] +\d+% {2}[\d.]+ [kM]?B \/ 3\.15 MB {2}[\d.]+ [kM]?B\/s {2}ETA \d+:\d\d/,
      );
      assert.match(out, /\[#{10,}\] +100%/);
      assert.equal(await r.exit(), 0, r.err);
    } finally {
      r.kill();
    }
  });

  it("a FILE that cannot be read is exit 1; a missing argument is exit 2", async () => {
    const s = await run(["send", "--id", TX, RX, "files", join(box.dir, "nope")], box.env);
    assert.equal(s.code, 1, s.err);
    assert.match(s.err, /nope/);
    const u = await run(["send", RX, "files"], box.env);
    assert.equal(u.code, 2);
    assert.match(u.err, /missing FILE/);
  });
});

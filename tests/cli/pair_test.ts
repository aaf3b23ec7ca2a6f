/**
 * `linkweave pair` as processes: two devices of different accounts cannot
 * connect; after `pair offer` on one and `pair enter` with its code on the
 * other they can; `pair list` shows the trust; a wrong code fails; after
 * `pair revoke` the connect is refused again.
 */
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { jsonLines, linkweave, listeningPort, run, type Sandbox, sandbox } from "./_cli.ts";

const A = "02:00:00:00:C6:01";
const B = "02:00:00:00:C6:02";

describe("linkweave pair, as processes", () => {
  let box: Sandbox;
  let envA: Record<string, string>;
  let envB: Record<string, string>;
  before(() => {
    box = sandbox();
    mkdirSync(join(box.dir, "b"), { mode: 0o700 });
    envA = { ...box.env, LINKWEAVE_ACCOUNT: "account one" };
    envB = { ...box.env, LINKWEAVE_ACCOUNT: "account two", XDG_STATE_HOME: join(box.dir, "b") };
  });
  after(() => box.remove());

  /** `connect` from B to A's server "chat": its exit code and stderr. */
  async function connectBtoA(): Promise<{ code: number | string; err: string }> {
    const s = linkweave(["serve", "--id", A, "chat"], envA);
    try {
      const port = await listeningPort(s);
      return await run(
        ["connect", "--id", B, "--peer", `${A}@127.0.0.1:${port}`, A, "chat"],
        envB,
        { stdin: "hi\n" },
      );
    } finally {
      s.kill();
      await s.exit();
    }
  }

  /** `pair offer` on A: the process, its port and its code. */
  async function offer() {
    const r = linkweave(["pair", "offer", "--json", "--timeout", "15", "--id", A], envA);
    const port = await listeningPort(r);
    await r.waitFor(/"event":"offer"/);
    const { code } = jsonLines(r.out)[0] as { code: string };
    return { r, port, code };
  }

  it("other accounts are refused; offer and enter pair them; revoke undoes it", async () => {
    const before = await connectBtoA();
    assert.equal(before.code, 1, before.err);
    assert.match(before.err, /32390300/);

    // A wrong code ends the offer: a failed pairing on both sides.
    const first = await offer();
    try {
      const wrong = String((Number(first.code) + 1) % 1_000_000).padStart(6, "0");
      const bad = await run(["pair", "enter", "--id", B, `127.0.0.1:${first.port}`, wrong], envB);
      assert.equal(bad.code, 1, bad.err);
      assert.equal(await first.r.exit(), 1, first.r.err);
    } finally {
      first.r.kill();
    }
    const second = await offer();
    try {
      const e = await run(
        ["pair", "enter", "--json", "--id", B, `127.0.0.1:${second.port}`, second.code],
        envB,
      );
      assert.equal(e.code, 0, e.err);
      assert.equal(jsonLines(e.out)[0].id, A);
      assert.equal(await second.r.exit(), 0, second.r.err);
      assert.equal(jsonLines(second.r.out).at(-1)!.id, B);
    } finally {
      second.r.kill();
    }

    const list = await run(["pair", "list", "--json", "--id", B], envB);
    assert.equal(list.code, 0, list.err);
    assert.deepEqual(jsonLines(list.out).map((d) => [d.id, d.how]), [[A, "paired"]]);

    const paired = await connectBtoA();
    assert.equal(paired.code, 0, paired.err);

    const revoke = await run(["pair", "revoke", "--id", B, A], envB);
    assert.equal(revoke.code, 0, revoke.err);
    const after = await connectBtoA();
    assert.equal(after.code, 1, after.err);
    const again = await run(["pair", "revoke", "--id", B, A], envB);
    assert.equal(again.code, 1, again.err);
    const malformed = await run(["pair", "enter", "--id", B, "127.0.0.1:1", "12ab"], envB);
    assert.equal(malformed.code, 2, malformed.err);
  });
});

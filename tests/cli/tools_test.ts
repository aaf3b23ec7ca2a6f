/**
 * `linkweave devices`, `bench`, `doctor` and `account` as processes: a
 * device serving on loopback is listed by another through the local
 * registry (with a round trip once linked); bench measures a peer running
 * `bench --serve` and reports every phase; doctor passes on a sane sandbox
 * and fails with the fix when the state directory is open to others or BLE
 * is required without a bus; `account create` writes a 0600 secret whose
 * fingerprint `account show` reports, and refuses to overwrite it.
 */
import assert from "node:assert/strict";
import { chmodSync, mkdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { jsonLines, linkweave, listeningPort, run, type Sandbox, sandbox } from "./_cli.ts";

const A = "02:00:00:00:C5:01";
const B = "02:00:00:00:C5:02";

describe("linkweave devices / bench / doctor / account, as processes", () => {
  let box: Sandbox;
  before(() => {
    box = sandbox({ discovery: true });
  });
  after(() => box.remove());

  it("devices lists this device first, then a serving one found locally, with --rtt", async () => {
    const s = linkweave(["serve", "--id", A, "chat"], box.env);
    try {
      const port = await listeningPort(s);
      const d = await run(["devices", "--json", "--rtt", "--wait", "1", "--id", B], box.env);
      assert.equal(d.code, 0, d.err);
      const [me, peer, ...rest] = jsonLines(d.out);
      assert.equal(rest.length, 0, d.out);
      assert.equal(me.id, B);
      assert.equal(me.self, true);
      assert.equal(peer.id, A);
      assert.deepEqual(peer.addresses, [{ host: "127.0.0.1", port, source: "local" }]);
      assert.deepEqual(peer.transports, ["ip"]);
      assert.equal(typeof peer.rtt, "number");
      assert.equal(peer.trust, "account");
      assert.equal(peer.linked, true);
    } finally {
      s.kill();
    }
  });

  it("bench measures a peer running bench --serve: connect, rtt, upload, download", async () => {
    const s = linkweave(["bench", "--serve", "--id", A], box.env);
    try {
      await listeningPort(s);
      const b = await run(
        ["bench", "--json", "--seconds", "0.3", "--pings", "20", "--id", B, A],
        box.env,
      );
      assert.equal(b.code, 0, b.err);
      const [r] = jsonLines(b.out) as Record<string, never>[];
      assert.equal(r.peer, A);
      assert.equal((r.rtt as { n: number }).n, 20);
      for (const phase of ["upload", "download"]) {
        const p = r[phase] as { bytes: number; ms: number; rate: number };
        assert.ok(p.bytes > 0 && p.ms > 0 && p.rate > 0, JSON.stringify(p));
      }
      const none = await run(
        ["bench", "--connect-timeout", "500", "--id", B, "02:00:00:00:C5:FF"],
        box.env,
      );
      assert.equal(none.code, 1);
      assert.match(none.err, /32390200/);
    } finally {
      s.kill();
    }
  });

  it("doctor: exit 0 on a sane sandbox; exit 1 with the fix for each broken check", async () => {
    const state = join(box.env.XDG_STATE_HOME, "linkweave");
    mkdirSync(state, { recursive: true, mode: 0o700 });
    const ok = await run(["doctor", "--json"], box.env);
    assert.equal(ok.code, 0, ok.out + ok.err);
    const checks = jsonLines(ok.out);
    for (const name of ["runtime", "state", "registry", "account", "port", "dbus"]) {
      assert.ok(checks.some((c) => c.check === name), `no ${name} check: ${ok.out}`);
    }
    assert.ok(checks.every((c) => c.status !== "fail"));
    chmodSync(state, 0o755);
    try {
      const open = await run(["doctor"], box.env);
      assert.equal(open.code, 1, open.out);
      assert.match(open.out, /^FAIL +state .*mode 0755/m);
      assert.match(open.out, new RegExp(`fix: chmod 700 ${state}`));
    } finally {
      chmodSync(state, 0o700);
    }
    const ble = await run(["doctor", "--ble"], {
      ...box.env,
      DBUS_SYSTEM_BUS_ADDRESS: `unix:path=${join(box.dir, "no-bus")}`,
    });
    assert.equal(ble.code, 1, ble.out);
    assert.match(ble.out, /^FAIL +dbus /m);
  });

  it("account create writes a 0600 secret once; show reports its fingerprint", async () => {
    const file = join(box.dir, "acct", "secret");
    const env = { ...box.env, LINKWEAVE_ACCOUNT: "" };
    const c = await run(["account", "create", "--json", file], env);
    assert.equal(c.code, 0, c.err);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const { fingerprint } = jsonLines(c.out)[0];
    assert.match(String(fingerprint), /^[0-9a-f]{4}(:[0-9a-f]{4}){3}$/);
    const s = await run(["account", "show", "--json"], { ...env, LINKWEAVE_ACCOUNT_FILE: file });
    assert.equal(s.code, 0, s.err);
    assert.deepEqual(jsonLines(s.out)[0], {
      source: "LINKWEAVE_ACCOUNT_FILE",
      file,
      exists: true,
      mode: "0600",
      fingerprint,
    });
    const again = await run(["account", "create", file], env);
    assert.equal(again.code, 1);
    assert.match(again.err, /exists/);
    const missing = await run(["account", "show"], {
      ...env,
      LINKWEAVE_ACCOUNT_FILE: join(box.dir, "none"),
    });
    assert.equal(missing.code, 1);
    assert.match(missing.err, /linkweave account create/);
  });
});

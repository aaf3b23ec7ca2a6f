/**
 * Trust under attack, with real processes in network namespaces this test
 * creates (`_net.ts`, names starting with `lwtn`): a victim V, the real
 * device R and an attacker X on one LAN, each a process (`_device.ts`, or
 * `_attacker.ts` where the attack needs raw bytes). The impersonation,
 * discovery-spoof, eviction and tampering attacks of the trust issue, one
 * test each. In every test a legitimate client keeps a link running during
 * the attack and must lose nothing (numbered messages, each echo checked),
 * and the attack must capture or drop no connection.
 *
 * Needs root and iproute2.
 *
 * @module
 */
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, it } from "node:test";
import { describeWith } from "../harness/env.ts";
import { type Child, start } from "../_script.ts";
import { waitFor } from "../_proc.ts";
import { encodeAnnouncement, randomNonce } from "../../core/discovery/wire.ts";
import { accountIdSeal, loadAccount } from "../../platform/security.ts";
import { nodeCrypto } from "../../platform/crypto.ts";
import { createHostileNet, type HostileNet } from "./_net.ts";
import type { AttackJob } from "./_attacker.ts";
import type { ForgerJob } from "./_forger.ts";

const ACCOUNT = "hostile trust test";
const V = "02:7E:57:00:00:01";
const R = "02:7E:57:00:00:02";
const C = "02:7E:57:00:00:03";
/** What every failed connect reports: no hint of the reason, nor whether the server exists. */
const REFUSED = { deviceId: "", success: false, reason: 32390300 };
/** `disconnected` when the link under a connection is lost. */
const LINK_CLOSED = -425918060;
const GROUP = "239.255.76.87";
const DISCOVERY_PORT = 38471;

type Line = Record<string, unknown>;

function lines(text: string): Line[] {
  return text.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
}

/** The warning lines a device printed (not its trace). */
function warnings(c: Child): string[] {
  return c.err.split("\n").filter((l) => l.startsWith("linkweave:"));
}

/** How many warning lines match. */
function warned(c: Child, re: RegExp): number {
  return warnings(c).filter((l) => re.test(l)).length;
}

/** RSS (kB) and open files of a process. */
function usage(pid: number): { rss: number; fds: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return {
    rss: Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0),
    fds: readdirSync(`/proc/${pid}/fd`).length,
  };
}

/** Wait for the `n`th stdout line (from 0) that matches. */
async function nth(c: Child, n: number, match: (l: Line) => boolean, ms = 15_000): Promise<Line> {
  let found: Line | undefined;
  await waitFor(
    () => {
      found = lines(c.out).filter(match)[n];
      return found !== undefined || c.proc.exitCode !== null;
    },
    ms,
    `line ${n} matching ${match} of a child:\n${c.out}\n${c.err}`,
  ).catch((e) => {
    throw new Error(`${(e as Error).message}\nstdout: ${c.out}\nstderr: ${c.err}`);
  });
  if (found === undefined) throw new Error(`the child exited:\n${c.out}\n${c.err}`);
  return found;
}

/** Send a device a command and wait for its answer (the next line that matches). */
async function ask(c: Child, command: string, match: (l: Line) => boolean, ms?: number) {
  const n = lines(c.out).filter(match).length;
  c.write(`${command}\n`);
  return await nth(c, n, match, ms);
}

const isConnect = (l: Line) => l.connect !== undefined;
const isStream = (l: Line) => l.stream !== undefined;
const isDone = (l: Line) => l.stream === "done";

/**
 * A stream's summary: it lost nothing, and carried echoes from before `from`
 * until after `to` (ms since the epoch), so across what happened between.
 */
function assertWhole(done: Line, who: string, from: number, to: number): void {
  const text = JSON.stringify(done);
  assert.equal(done.down, 0, `${who}'s stream was never down: ${text}`);
  assert.deepEqual(done.bad, [], `${who}'s echoes came back in order`);
  assert.equal(done.echoed, done.sent, `${who} got every echo: ${text}`);
  assert.ok(
    (done.first as number) <= from && (done.last as number) >= to,
    `${who}'s stream ran from before ${from} until after ${to}: ${text}`,
  );
}

describeWith("hostile: trust", { root: true, commands: { ip: "iproute2" } }, () => {
  let net: HostileNet;
  let running: Child[] = [];
  let tmp = "";
  let files = 0;

  before(() => {
    net = createHostileNet("lwtn");
    tmp = mkdtempSync(join(tmpdir(), "lwtn-"));
  });
  after(() => {
    for (const p of running) p.kill();
    net?.close();
    if (tmp !== "") rmSync(tmp, { recursive: true, force: true });
  });
  const stopAll = () => {
    for (const p of running) p.kill();
    running = [];
  };

  /**
   * A device process in a namespace, answering commands on stdin. Each role
   * has its own state directory (its key and trust store): processes with
   * the same role are one device restarted.
   */
  async function device(role: string, ns: string, env: Record<string, string>) {
    const c = start(
      "tests/hostile/_device.ts",
      {
        XDG_STATE_HOME: join(tmp, role, "state"),
        XDG_RUNTIME_DIR: join(tmp, role, "run"),
        LINKWEAVE_DISCOVERY: "off",
        LINKWEAVE_ACCOUNT: ACCOUNT,
        LINKWEAVE_ACCOUNT_FILE: "",
        LINKWEAVE_PORT: "0",
        LINKWEAVE_TRACE: "1",
        LINKWEAVE_CONNECT_TIMEOUT: "10000",
        LW_COMMANDS: "1",
        ...env,
      },
      ["ip", "netns", "exec", ns],
      { stdin: true },
    );
    running.push(c);
    const ready = await nth(c, 0, (l) => l.ready === true, 20_000);
    return { c, port: ready.port as number };
  }

  function attacker(ns: string, job: AttackJob): Child {
    const c = start("tests/hostile/_attacker.ts", { LW_ATTACK: JSON.stringify(job) }, [
      "ip",
      "netns",
      "exec",
      ns,
    ]);
    running.push(c);
    return c;
  }

  /** One raw dial of the attacker; its lines once it gave up. */
  async function dial(job: Omit<Extract<AttackJob, { kind: "dial" }>, "kind">): Promise<Line[]> {
    const c = attacker(net.forger.ns, { kind: "dial", ...job });
    await c.waitFor(/"closed"/, 20_000);
    return lines(c.out);
  }

  async function relay(job: Omit<Extract<AttackJob, { kind: "relay" }>, "kind">): Promise<Child> {
    const c = attacker(net.forger.ns, { kind: "relay", ...job });
    await c.waitFor(/"listening"/, 20_000);
    return c;
  }

  /**
   * Start a device's stream of numbered messages to `to`'s echo server.
   *
   * @returns When it is running (after its first echo).
   */
  async function stream(c: Child, to: string): Promise<number> {
    const n = lines(c.out).filter((l) => l.stream === "flowing").length;
    assert.equal((await ask(c, `stream ${to} echo 20`, isStream)).stream, "up", c.err);
    await nth(c, n, (l) => l.stream === "flowing");
    return Date.now();
  }

  /** Stop a device's stream: it lost nothing, and carried echoes from before `since` until now. */
  async function streamed(c: Child, who: string, since: number): Promise<void> {
    const until = Date.now();
    assertWhole(await ask(c, "stop", isDone), who, since, until);
  }

  /** The victim, and a legitimate client C streaming to it from R's LAN. */
  async function victimAndClient(env: Record<string, string> = {}) {
    const v = await device("v", net.victim.ns, {
      LINKWEAVE_DEVICE_ID: V,
      LINKWEAVE_BIND: net.victim.addr,
      ...env,
    });
    const c = await device("c", net.real.ns, {
      LINKWEAVE_DEVICE_ID: C,
      LINKWEAVE_BIND: net.real.addr,
      LINKWEAVE_PEERS: `${V}@${net.victim.addr}:${v.port}`,
    });
    const since = await stream(c.c, V);
    return { v, c: c.c, before: usage(v.c.proc.pid!), since };
  }

  /**
   * The legitimate client lost nothing while the attack ran (since it
   * started); the victim's memory and files stayed bounded.
   */
  async function checkClient(
    client: Child,
    v: Child,
    at: { before: { rss: number; fds: number }; since: number },
  ) {
    await streamed(client, "the legitimate client", at.since);
    const now = usage(v.proc.pid!);
    const grew = now.rss - at.before.rss;
    assert.ok(grew < 64 * 1024, `the victim's RSS grew by ${grew} kB`);
    assert.ok(now.fds - at.before.fds <= 8, `the victim's fds ${at.before.fds} -> ${now.fds}`);
  }

  it("impersonation: a device with R's id never gets V's connections to R", {
    timeout: 60_000,
  }, async () => {
    stopAll();
    const XPORT = 7001;
    const { v: { c: v, port: vport }, c: client, ...at } = await victimAndClient({
      // The address V dials for R is the attacker's.
      LINKWEAVE_PEERS: `${R}@${net.forger.addr}:${XPORT}`,
    });
    /** V tries R's "echo" and a server R does not have: the same failure, at once. */
    const tryR = async (phase: string) => {
      for (const name of ["echo", "no-such-server", "echo", "no-such-server"]) {
        const got = await ask(v, `connect ${R} ${name}`, isConnect);
        assert.deepEqual(got.result, REFUSED, `${phase}: ${JSON.stringify(got)}\n${v.err}`);
        assert.equal(got.echo, undefined);
        assert.ok((got.ms as number) < 5000, `${phase}: failed at once, not at the timeout`);
      }
    };
    const forged = { LINKWEAVE_DEVICE_ID: R, LW_ANSWER: "forged by X" };

    // (a) X runs a device with R's id and another account.
    const xa = await device("xa", net.forger.ns, {
      ...forged,
      LINKWEAVE_BIND: net.forger.addr,
      LINKWEAVE_PORT: String(XPORT),
      LINKWEAVE_ACCOUNT: "another account",
    });
    await tryR("another account");
    // Each side logs its refusal as the channel ends: wait for the lines (5 s at most), then count.
    for (let i = 0; i < 250; i++) {
      if (
        warned(v, /refused the channel: account/) > 0 &&
        warned(xa.c, /not in this device's account/) > 0
      ) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(warned(v, /refused the channel: account/), 1, v.err);
    assert.equal(warned(xa.c, /not in this device's account/), 1, xa.c.err);
    xa.c.kill();
    await xa.c.exited;

    // (b) X runs it with no account: a per-user secret, so it listens on loopback;
    // X relays its LAN address to it.
    const xb = await device("xb", net.forger.ns, {
      ...forged,
      LINKWEAVE_BIND: "127.0.0.1",
      LINKWEAVE_PORT: String(XPORT + 1),
      LINKWEAVE_ACCOUNT: "",
    });
    const toXb = await relay({
      listen: { host: net.forger.addr, port: XPORT },
      to: { host: "127.0.0.1", port: XPORT + 1 },
    });
    await tryR("no account");
    assert.equal(warned(xb.c, /not in this device's account/), 1, xb.c.err);
    assert.ok(warned(v, /refused the channel: account/) <= 2, "rate-limited");
    for (const x of [xb.c, toXb]) x.kill();
    await Promise.all([xb.c.exited, toXb.exited]);

    // (c) V knows R (it reached it through X's relay), then X answers at that
    // address with R's id, the right account and its own key.
    const r = await device("r", net.real.ns, {
      LINKWEAVE_DEVICE_ID: R,
      LINKWEAVE_BIND: net.real.addr,
    });
    const toR = await relay({
      listen: { host: net.forger.addr, port: XPORT },
      to: { host: net.real.addr, port: r.port },
    });
    const real = await ask(v, `connect ${R} echo`, isConnect);
    assert.deepEqual(real.result, { deviceId: R, success: true, reason: 0 }, v.err);
    assert.equal(real.echo, "hello echo", "R itself answered");
    r.c.kill();
    toR.kill();
    await v.waitFor(new RegExp(`"linkDown","peer":"${R}"`), 15_000);
    await toR.exited;
    const xc = await device("xc", net.forger.ns, {
      ...forged,
      LINKWEAVE_BIND: net.forger.addr,
      LINKWEAVE_PORT: String(XPORT),
      LINKWEAVE_PEERS: `${V}@${net.victim.addr}:${vport}`,
    });
    const stolen = await ask(v, `connect ${R} echo`, isConnect);
    assert.deepEqual(stolen.result, REFUSED, v.err);
    // The clash, reported on both sides, in both directions.
    assert.equal(warned(v, new RegExp(`${R} presented another key`)), 1, v.err);
    assert.equal(warned(xc.c, /refused the channel: clash/), 1, xc.c.err);
    const back = await ask(xc.c, `connect ${V} echo`, isConnect);
    assert.deepEqual(back.result, REFUSED, xc.c.err);
    assert.equal(warned(xc.c, new RegExp(`${V} refused the channel: clash`)), 1, xc.c.err);
    assert.equal(warned(v, /presented another key/), 2, "V reported it as dialer and as acceptor");

    for (const x of [xa.c, xb.c, xc.c]) {
      assert.deepEqual(lines(x.out).filter((l) => l.accepted !== undefined), [], "X got nothing");
    }
    assert.ok(!v.out.includes("forged by X"), "V never got X's data");
    assert.deepEqual(
      lines(v.out).filter((l) => l.accepted !== undefined).map((l) => l.accepted),
      [C],
      "only the legitimate client reached V's server",
    );
    await checkClient(client, v, at);
    stopAll();
  });

  it("discovery spoof: sealed announcements of R pointing at X cause at most failed dials", {
    timeout: 60_000,
  }, async () => {
    stopAll();
    const XPORT = 7777;
    // X, an insider, announces R at its own listener (one forged runtime, sealed with the
    // account), from before V starts, so that V learns R there first...
    const crypto = nodeCrypto();
    const seal = accountIdSeal(
      crypto,
      loadAccount(crypto, { env: { LINKWEAVE_ACCOUNT: ACCOUNT }, stateDir: "/nonexistent" }).key,
    );
    const announcement = [...encodeAnnouncement({
      deviceId: R,
      nonce: randomNonce(),
      port: XPORT,
      seal,
    })].map((b) => b.toString(16).padStart(2, "0")).join("");
    const job = join(tmp, `forger-${files++}.json`);
    writeFileSync(
      job,
      JSON.stringify(
        {
          everyMs: 100,
          sends: [{
            from: net.forger.addr,
            to: GROUP,
            port: DISCOVERY_PORT,
            hex: Array(400).fill(announcement),
          }],
        } satisfies ForgerJob,
      ),
    );
    const forger = start("tests/hostile/_forger.ts", { LW_FORGER: `@${job}` }, [
      "ip",
      "netns",
      "exec",
      net.forger.ns,
    ]);
    running.push(forger);
    // ... and its device there answers with R's id and its own key.
    const x = await device("xd", net.forger.ns, {
      LINKWEAVE_DEVICE_ID: R,
      LINKWEAVE_BIND: net.forger.addr,
      LINKWEAVE_PORT: String(XPORT),
      LW_ANSWER: "forged by X",
    });
    const { v: { c: v }, c: client, ...at } = await victimAndClient({
      LINKWEAVE_DISCOVERY: "auto",
    });
    const learned =
      `"discovery\\.learned","deviceId":"${R}","host":"${net.forger.addr}","port":${XPORT}`;
    await v.waitFor(new RegExp(learned), 10_000);
    // The real R (discovery on too) finds V and links to it: V pins R's key.
    const r = await device("r", net.real.ns, {
      LINKWEAVE_DEVICE_ID: R,
      LINKWEAVE_BIND: net.real.addr,
      LINKWEAVE_DISCOVERY: "auto",
    });
    const sinceR = await stream(r.c, V);
    const reached = async () => {
      const got = await ask(v, `connect ${R} echo`, isConnect);
      assert.deepEqual(got.result, { deviceId: R, success: true, reason: 0 }, v.err);
      assert.equal(got.echo, "hello echo", "R itself answered");
    };
    await reached();
    // R goes away: V's next dial to R goes where discovery says R is, to X,
    // and is refused once X proves another key...
    await streamed(r.c, "R", sinceR);
    r.c.kill();
    await v.waitFor(new RegExp(`"linkDown","peer":"${R}"`), 15_000);
    const got = await ask(v, `connect ${R} echo`, isConnect);
    assert.deepEqual(got.result, REFUSED, v.err);
    assert.equal(got.echo, undefined);
    assert.ok(
      v.err.split("\n").some((l) => l.includes('"dial"') && l.includes(R)) &&
        warned(v, new RegExp(`${R} presented another key`)) === 1,
      `V dialled X, and refused it once it proved another key:\n${v.err}`,
    );
    assert.equal(warned(x.c, /refused the channel: clash/), 1, x.c.err);
    // ... and discovery stops offering X's endpoint for R, though X keeps
    // announcing it: V's next dials find no address for R rather than X.
    await v.waitFor(new RegExp(`"refuted","peer":"${R}","address":"${net.forger.addr}:${XPORT}"`));
    for (let n = 0; n < 2; n++) {
      const again = await ask(v, `connect ${R} echo`, isConnect);
      assert.equal((again.result as { success: boolean }).success, false, v.err);
      assert.equal(again.echo, undefined);
    }
    assert.ok(
      v.err.includes(`"dialFailed","peer":"${R}","message":"no address known for it"`),
      `V did not dial X again:\n${v.err}`,
    );
    // R comes back, announcing from its own address while X keeps forging: V
    // learns it there, and V's own dial reaches R.
    await device("r", net.real.ns, {
      LINKWEAVE_DEVICE_ID: R,
      LINKWEAVE_BIND: net.real.addr,
      LINKWEAVE_DISCOVERY: "auto",
    });
    await v.waitFor(
      new RegExp(`"discovery\\.learned","deviceId":"${R}","host":"${net.real.addr}"`),
      15_000,
    );
    await reached();
    assert.deepEqual(lines(x.c.out).filter((l) => l.accepted !== undefined), [], "X got nothing");
    assert.ok(!v.out.includes("forged by X"), "V never got X's data");
    await checkClient(client, v, at);
    stopAll();
  });

  it("eviction: X cannot drop V's live link to R by dialling V as R, nor by replaying R", {
    timeout: 60_000,
  }, async () => {
    stopAll();
    const { v: { c: v, port: vport }, c: client, ...at } = await victimAndClient();
    const recording = join(tmp, `recording-${files++}.json`);
    // R's first dial to V goes through X's relay, which records it.
    const rec = await relay({
      listen: { host: net.forger.addr, port: 7100 },
      to: { host: net.victim.addr, port: vport },
      record: recording,
    });
    const r1 = await device("r", net.real.ns, {
      LINKWEAVE_DEVICE_ID: R,
      LINKWEAVE_BIND: net.real.addr,
      LINKWEAVE_PEERS: `${V}@${net.forger.addr}:7100`,
    });
    assert.equal((await ask(r1.c, `connect ${V} echo`, isConnect)).echo, "hello echo");
    r1.c.kill();
    rec.kill();
    await v.waitFor(new RegExp(`"linkDown","peer":"${R}"`), 15_000);
    // R again (the same key), straight to V: the live link under attack.
    const r = await device("r", net.real.ns, {
      LINKWEAVE_DEVICE_ID: R,
      LINKWEAVE_BIND: net.real.addr,
      LINKWEAVE_PEERS: `${V}@${net.victim.addr}:${vport}`,
    });
    const sinceR = await stream(r.c, V);
    const mark = v.err.length;
    const to = { host: net.victim.addr, port: vport };
    const got = (ls: Line[]) => ls.filter((l) => l.got !== undefined).map((l) => [l.got, l.reason]);

    // X's own keys with R's id: as an insider (the account), an outsider, with no account.
    const insider = await dial({ to, as: R, speak: "secure", account: ACCOUNT });
    assert.deepEqual(got(insider), [["response", undefined], ["refuse", "clash"]]);
    for (const account of ["another account", undefined]) {
      assert.deepEqual(got(await dial({ to, as: R, speak: "secure", account })), [[
        "refuse",
        "account",
      ]]);
    }
    // A plain hello with R's id.
    assert.deepEqual(got(await dial({ to, as: R, speak: "hello" })), [["refuse", "version"]]);
    // The bytes of R's genuine dial, replayed: M1, then (after V's fresh M2) M3 and the records.
    const replay = await dial({ to, as: R, speak: "replay", recording });
    assert.deepEqual(got(replay), [["response", undefined], ["refuse", "identity"]]);
    for (const attempt of [insider, replay]) {
      assert.ok(!attempt.some((l) => l.done), "no handshake completed");
      assert.ok(attempt.some((l) => l.closed === true), "V closed the channel");
    }

    // The live link stayed, and lost nothing.
    await streamed(r.c, "R", sinceR);
    assert.doesNotMatch(v.err.slice(mark), /"link(Up|Down)"/, "V's links neither went nor came");
    assert.deepEqual((await ask(v, "links", (l) => l.links !== undefined)).links, [[C, 1], [R, 1]]);
    for (
      const kind of [
        /presented another key/,
        /not in this device's account/,
        /unauthenticated/,
        /does not open/,
      ]
    ) {
      assert.equal(warned(v, kind), 1, `${kind}:\n${warnings(v).join("\n")}`);
    }
    await checkClient(client, v, at);
    stopAll();
  });

  it(
    "tampering: a changed, replayed or cut record or handshake closes only its channel; R and V recover",
    {
      timeout: 60_000,
    },
    async () => {
      stopAll();
      const { v: { c: v, port: vport }, c: client, ...at } = await victimAndClient();
      // Units up (R to V): 0 = M1, 1 = M3, 2 on = records; down: 0 = M2, 1 = M4, ...
      const x = await relay({
        listen: { host: net.forger.addr, port: 7200 },
        to: { host: net.victim.addr, port: vport },
        tamper: [
          { conn: 1, dir: "up", unit: 12, action: "flip" },
          { conn: 2, dir: "up", unit: 12, action: "repeat" },
          { conn: 3, dir: "down", unit: 12, action: "flip" },
          { conn: 4, dir: "up", unit: 1, action: "truncate" },
          { conn: 5, dir: "down", unit: 0, action: "cut" },
        ],
      });
      const r = await device("r", net.real.ns, {
        LINKWEAVE_DEVICE_ID: R,
        LINKWEAVE_BIND: net.real.addr,
        LINKWEAVE_PEERS: `${V}@${net.forger.addr}:7200`,
      });
      const down = (l: Line) => l.stream === "down";
      for (let n = 0; n < 3; n++) {
        // R's stream through X: X changes a record (connection 1, and 3 the other
        // way) or sends one twice (2). The app sees its connection break.
        assert.equal((await ask(r.c, `stream ${V} echo 20`, isStream)).stream, "up", r.c.err);
        const lost = await nth(r.c, n, down);
        assert.equal(lost.reason, LINK_CLOSED);
        assert.equal((await nth(v, n, (l) => l.lost === R)).reason, LINK_CLOSED);
        assert.deepEqual((await ask(r.c, "stop", isDone)).down, 1);
      }
      // Connection 4: X truncates R's M3 (a shorter message in a well-formed frame): refused.
      const cut = await ask(r.c, `connect ${V} echo`, isConnect);
      assert.deepEqual(cut.result, REFUSED, r.c.err);
      // Connection 5: X cuts V's M2 in the middle and closes: R dials again (6) and gets through.
      const again = await ask(r.c, `connect ${V} echo`, isConnect);
      assert.deepEqual(again.result, { deviceId: V, success: true, reason: 0 }, r.c.err);
      assert.equal(again.echo, "hello echo");
      await streamed(r.c, "R after the attack", await stream(r.c, V));
      assert.equal(lines(x.out).filter((l) => l.tampered !== undefined).length, 5, x.out);
      assert.equal(lines(x.out).filter((l) => l.conn !== undefined).length, 6, "one dial more");

      // Each refusal was logged once, though it happened more often.
      const records = v.err.split("\n").filter((l) =>
        l.includes('"closeChannel"') && l.includes("does not authenticate")
      );
      assert.equal(records.length, 2, `V closed R's channel twice:\n${v.err}`);
      assert.equal(warned(v, /does not authenticate/), 1, warnings(v).join("\n"));
      assert.equal(warned(r.c, /does not authenticate/), 1, warnings(r.c).join("\n"));
      assert.equal(warned(v, /does not open/), 1, warnings(v).join("\n"));
      assert.equal(warned(r.c, /refused the channel: identity/), 1, warnings(r.c).join("\n"));
      await checkClient(client, v, at);
      stopAll();
    },
  );
});

/**
 * Broadcast and multicast between sockets in two network namespaces this test
 * creates (joined by a veth pair); a socket bound to loopback receives
 * neither. Each side runs in its own process of the current runtime under
 * `ip netns exec`. Needs root and `ip` (iproute2).
 *
 * @module
 */
import { after, before, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import process from "node:process";
import { describeWith, RUNTIME } from "./harness/env.ts";
import { scriptCommand } from "./_script.ts";
import { type Proc, run, waitFor } from "./_proc.ts";

const id = `${process.pid % 10000}${Math.floor(Math.random() * 1000)}`;
const NS_A = `lw-a-${id}`;
const NS_B = `lw-b-${id}`;
const NET = `10.${200 + (process.pid % 50)}.${Math.floor(Math.random() * 250)}`;
const A = `${NET}.1`;
const B = `${NET}.2`;
const BCAST = `${NET}.255`;
const GROUP = "239.7.7.7";

function ip(...args: string[]): void {
  const r = spawnSync("ip", args, { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`Cannot run "ip ${args.join(" ")}": ${r.stderr}`);
}

describeWith("socket broadcast and multicast in network namespaces", {
  root: true,
  commands: { ip: "iproute2" },
}, () => {
  const procs: Proc[] = [];
  let peer: string[] = [];

  before(() => {
    ip("netns", "add", NS_A);
    ip("netns", "add", NS_B);
    ip(
      "link",
      "add",
      `lwa${id}`,
      "netns",
      NS_A,
      "type",
      "veth",
      "peer",
      "name",
      `lwb${id}`,
      "netns",
      NS_B,
    );
    for (const [ns, dev, addr] of [[NS_A, `lwa${id}`, A], [NS_B, `lwb${id}`, B]]) {
      ip("-n", ns, "addr", "add", `${addr}/24`, "broadcast", BCAST, "dev", dev);
      ip("-n", ns, "link", "set", dev, "up");
      ip("-n", ns, "link", "set", "lo", "up");
      ip("-n", ns, "route", "add", "224.0.0.0/4", "dev", dev);
    }
    const [cmd, args] = scriptCommand("tests/_netns_peer.ts");
    peer = [cmd, ...args];
  });

  after(() => {
    for (const p of procs) p.kill();
    spawnSync("ip", ["netns", "del", NS_A]);
    spawnSync("ip", ["netns", "del", NS_B]);
  });

  function inNs(ns: string, job: unknown): Proc {
    process.env.LW_PEER = JSON.stringify(job);
    const p = run("ip", ["netns", "exec", ns, ...peer]);
    delete process.env.LW_PEER;
    procs.push(p);
    return p;
  }

  async function exchange(sendJob: unknown, sockets: unknown[]) {
    const recv = inNs(NS_B, { role: "recv", sockets, ms: 1500 });
    await waitFor(() => recv.out().includes("ready"), 15_000, "the receiver");
    const send = inNs(NS_A, sendJob);
    assert.equal(await send.exit(15_000), 0);
    assert.equal(await recv.exit(15_000), 0);
    const sent = JSON.parse(send.out().trim().split("\n").pop()!) as { codes: number[] };
    const got = JSON.parse(recv.out().trim().split("\n").pop()!) as { got: string[][] };
    return { codes: sent.codes, got: got.got };
  }

  it(
    "broadcast reaches a wildcard-bound socket, not a loopback-bound one",
    { timeout: 40_000 },
    async () => {
      const { codes, got } = await exchange(
        {
          role: "send",
          bind: { address: A, port: 0 },
          broadcast: true,
          to: [{ address: BCAST, port: 41001 }, { address: BCAST, port: 41002 }],
        },
        [{ bind: { address: "0.0.0.0", port: 41001 } }, {
          bind: { address: "127.0.0.1", port: 41002 },
        }],
      );
      assert.deepEqual(codes, [0, 0, 0, 0, 0, 0]);
      assert.ok(got[0].length >= 1 && got[0].every((m) => m === `to ${BCAST}`));
      assert.deepEqual(got[1], []);
    },
  );

  it(
    "broadcast without the broadcast option fails (EACCES, 2301013)",
    { timeout: 40_000 },
    async () => {
      const { codes, got } = await exchange(
        { role: "send", bind: { address: A, port: 0 }, to: [{ address: BCAST, port: 41003 }] },
        [{ bind: { address: "0.0.0.0", port: 41003 } }],
      );
      // Deno's node:dgram reports this errno as "UNKNOWN", so Deno can only say 2300002.
      const code = RUNTIME === "deno" ? 2300002 : 2301013;
      assert.deepEqual(codes, [code, code, code]);
      assert.deepEqual(got[0], []);
    },
  );

  it(
    "multicast reaches a group member, not a loopback-bound socket",
    { timeout: 40_000 },
    async () => {
      const { codes, got } = await exchange(
        {
          role: "send",
          multicast: true,
          bind: { address: A, port: 0 },
          to: [{ address: GROUP, port: 41004 }, { address: GROUP, port: 41005 }],
        },
        [{ group: { address: GROUP, port: 41004 } }, {
          bind: { address: "127.0.0.1", port: 41005 },
        }],
      );
      assert.deepEqual(codes, [0, 0, 0, 0, 0, 0]);
      assert.ok(got[0].length >= 1 && got[0].every((m) => m === `to ${GROUP}`));
      assert.deepEqual(got[1], []);
    },
  );
});

/**
 * The network lab (`scripts/netlab.ts`): a two-path lab delays every packet of
 * a path by at least its RTT, shapes a flow below twice its rate with the
 * router's limiter engaged, changes both at run time, cuts paths, and leaves
 * nothing behind, also after the process that built it is gone. Loose bounds
 * only: the mechanism is checked, not the machine's speed. Needs root and
 * Debian's iproute2, iptables, python3-minimal, iputils-ping and iperf3.
 *
 * @module
 */
import { after, before, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { describeWith } from "./harness/env.ts";
import { type Proc, run } from "./_proc.ts";
import { scriptCommand } from "./_script.ts";
import { down, type Lab, LAB_NEEDS, type Side, up } from "../scripts/netlab.ts";

const PREFIX = "nlt";

function namespaces(): string[] {
  const out = spawnSync("ip", ["netns", "list"], { encoding: "utf8" }).stdout ?? "";
  return out.split("\n").map((l) => l.split(" ")[0]).filter((n) => n !== "");
}

/** Whether a process runs (a zombie does not). */
function alive(pid: number | undefined): boolean {
  try {
    return pid !== undefined && !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

function inLab(lab: Lab, side: Side, argv: string[]): Proc {
  const [cmd, ...args] = lab.command(side, argv);
  return run(cmd, args);
}

/** Ping from the client; the smallest RTT in ms, or `undefined` when nothing came back. */
async function pingMin(lab: Lab, to: string, from?: string): Promise<number | undefined> {
  const source = from === undefined ? [] : ["-I", from];
  const p = inLab(lab, "client", ["ping", "-n", "-c", "3", "-i", "0.2", "-W", "1", ...source, to]);
  await p.exit(15_000);
  const m = /= ([\d.]+)\/[\d.]+\/[\d.]+\//.exec(p.out());
  return m === null ? undefined : Number(m[1]);
}

describeWith("network lab (scripts/netlab.ts)", {
  root: true,
  commands: { ...LAB_NEEDS, ping: "iputils-ping", iperf3: "iperf3" },
}, () => {
  let lab: Lab;

  before(async () => {
    lab = await up([{ rateMbit: 4, rttMs: 30 }, { rateMbit: 2, rttMs: 60 }], { prefix: PREFIX });
  });

  after(() => {
    lab?.down();
  });

  it("delays every packet of a path by at least its RTT, and keeps paths apart", {
    timeout: 30_000,
  }, async () => {
    const [p0, p1] = lab.paths;
    const [rtt0, rtt1] = await Promise.all([
      pingMin(lab, p0.serverAddress),
      pingMin(lab, p1.serverAddress),
    ]);
    assert.ok(rtt0 !== undefined && rtt0 >= 30 && rtt0 < 1030, `path 0 RTT ${rtt0} ms`);
    assert.ok(rtt1 !== undefined && rtt1 >= 60 && rtt1 < 1060, `path 1 RTT ${rtt1} ms`);
    // From path 0's address to path 1's server address: the router refuses.
    assert.equal(await pingMin(lab, p1.serverAddress, p0.clientAddress), undefined);
  });

  it("rate-limits a flow on the router, below twice the rate", { timeout: 30_000 }, async () => {
    const before = lab.counters();
    const flows = lab.paths.map(async (p) => {
      const port = String(5201 + p.index);
      const server = inLab(lab, "server", [
        "iperf3",
        "-s",
        "-1",
        "--forceflush",
        "-B",
        p.serverAddress,
        "-p",
        port,
      ]);
      try {
        const until = Date.now() + 10_000;
        while (!server.out().includes("listening") && Date.now() < until) {
          await new Promise((r) => setTimeout(r, 20));
        }
        const argv = ["iperf3", "-J", "-t", "1.5", "-c", p.serverAddress, "-p", port];
        const client = inLab(lab, "client", argv);
        assert.equal(await client.exit(20_000), 0, client.out());
        const report = JSON.parse(client.out());
        return report.end.sum_received.bits_per_second / 1e6;
      } finally {
        server.kill();
      }
    });
    const mbit = await Promise.all(flows);
    const after = lab.counters();
    for (const p of lab.paths) {
      assert.ok(mbit[p.index] > 0 && mbit[p.index] < 2 * p.rateMbit, `path ${p.index}: ${mbit}`);
      const sent = after[p.index].toServerBytes - before[p.index].toServerBytes;
      const held = after[p.index].toServerOverlimits - before[p.index].toServerOverlimits;
      assert.ok(sent > 100_000, `path ${p.index} carried ${sent} bytes`);
      assert.ok(held > 0, `the limiter of path ${p.index} never held a packet back`);
    }
  });

  it("changes a path's RTT and rate at run time", { timeout: 30_000 }, async () => {
    await lab.shape(0, { rttMs: 90, rateMbit: 1 });
    assert.deepEqual(
      [lab.paths[0].rttMs, lab.paths[0].rateMbit, lab.paths[1].rttMs],
      [90, 1, 60],
    );
    const rtt = await pingMin(lab, lab.paths[0].serverAddress);
    assert.ok(rtt !== undefined && rtt >= 90, `path 0 RTT ${rtt} ms`);
    const qdisc = lab.run("router", ["tc", "qdisc", "show", "dev", "rs0"]);
    assert.match(qdisc, /rate 1Mbit/);
  });

  it("cuts a path (down, then back up; deleted for good)", { timeout: 30_000 }, async () => {
    const [p0, p1] = lab.paths;
    lab.cut(0, { how: "down" });
    assert.equal(await pingMin(lab, p0.serverAddress), undefined);
    lab.restore(0);
    assert.notEqual(await pingMin(lab, p0.serverAddress), undefined);
    lab.cut(1);
    assert.equal(lab.paths[1].cut, "delete");
    assert.equal(await pingMin(lab, p1.serverAddress), undefined);
    assert.doesNotMatch(lab.run("client", ["ip", "-o", "link"]), /\bc1@/);
    assert.notEqual(await pingMin(lab, p0.serverAddress), undefined);
  });

  it("leaves nothing behind, also when the process that built it is gone", {
    timeout: 60_000,
  }, async () => {
    // A lab built by the command line in another process, which then exits.
    const [cmd, args] = scriptCommand("scripts/netlab.ts");
    const cli = run(cmd, [...args, "up", "--prefix", PREFIX, "--paths", "5:10"]);
    assert.equal(await cli.exit(30_000), 0);
    const orphan = JSON.parse(cli.out());
    assert.ok(alive(orphan.delayer) && namespaces().includes(orphan.namespaces.router));

    const mine = lab.toJSON();
    lab.down();
    assert.deepEqual(down(orphan.name), [orphan.name]);
    for (const record of [mine, orphan]) {
      const left = namespaces().filter((n) => n.startsWith(record.name));
      assert.deepEqual(left, [], `namespaces left: ${left}`);
      assert.equal(existsSync(record.dir), false, `${record.dir} left`);
      assert.equal(alive(record.delayer), false, `delayer ${record.delayer} still runs`);
    }
  });
});

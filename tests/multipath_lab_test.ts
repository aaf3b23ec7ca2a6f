/**
 * One link over two paths of the network lab (`scripts/netlab.ts`, issue
 * 14): two devices in the lab's client and server namespaces
 * (`bench/_multipath_peer.ts`, configured by `LINKWEAVE_*` only, encrypted,
 * one channel per path) move 10 MiB in 1 KiB messages on one connection;
 * once both channels have carried data, path 0's veth is deleted, and the
 * transfer must still complete with every byte once and in order (SHA-256 of
 * what was sent against what arrived) and no `disconnected`. Needs root and
 * Debian's iproute2, iptables and python3-minimal.
 *
 * @module
 */
import { after, before, it } from "node:test";
import assert from "node:assert/strict";
import { describeWith } from "./harness/env.ts";
import { type Lab, LAB_NEEDS, up } from "../scripts/netlab.ts";
import { lines, type RunningLink, startLink } from "../bench/_multipath_link.ts";

const PREFIX = "mpt";
const TOTAL = 10 * 1024 * 1024;
/** Cut once this much arrived, and each of the two channels carried at least CARRIED of it. */
const CUT_AT = 3 * 1024 * 1024;
const CARRIED = 256 * 1024;
/** The transfer failed when nothing arrived for this long (ms) after the cut. */
const STALL_MS = 20_000;

interface ChannelLine {
  remote: string;
  received: number;
}

async function until<T>(what: string, ms: number, probe: () => T | undefined): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const got = probe();
    if (got !== undefined) return got;
    if (Date.now() > end) throw new Error(`No ${what} within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describeWith("a link over two lab paths survives a deleted veth", {
  root: true,
  commands: LAB_NEEDS,
}, () => {
  let lab: Lab | undefined;
  let link: RunningLink | undefined;

  before(async () => {
    lab = await up([{ rateMbit: 20, rttMs: 10 }, { rateMbit: 20, rttMs: 10 }], {
      prefix: PREFIX,
      mptcp: false,
    });
  });

  after(async () => {
    await link?.stop();
    lab?.down();
  });

  it("moves 10 MiB intact over 2 channels while path 0 is deleted midway", {
    timeout: 120_000,
  }, async () => {
    const bytes = String(TOTAL);
    link = await startLink(lab!, {
      channels: "2",
      receiver: { LW_MP_BYTES: bytes },
      sender: { LW_MP_BYTES: bytes },
    });
    const { receiver, sender } = link;
    const said = () =>
      `\nsender: ${sender.out.slice(-1500)}${sender.err.slice(-1500)}` +
      `\nreceiver: ${receiver.out.slice(-1500)}${receiver.err.slice(-1500)}`;

    // Both channels carry data before the cut.
    const before = await until("progress past 3 MiB", 60_000, () => {
      const last = lines(receiver, "progress").at(-1);
      return last !== undefined && Number(last.progress) >= CUT_AT ? last : undefined;
    }).catch((e) => assert.fail(`${e.message}${said()}`));
    const channels = before.channels as ChannelLine[];
    const busy = channels.filter((c) => c.received >= CARRIED);
    assert.ok(
      busy.length >= 2 && Number(before.progress) < TOTAL,
      `before the cut, at ${before.progress} bytes, channels ${JSON.stringify(channels)}`,
    );

    lab!.cut(0);
    // Done, or failed once nothing more arrived for STALL_MS.
    let last = -1;
    let moved = Date.now();
    const done = await until("end of the transfer", 90_000, () => {
      const got = lines(receiver, "done").at(-1);
      if (got !== undefined) return got;
      const now = Number(lines(receiver, "progress").at(-1)?.progress ?? 0);
      if (now !== last) [last, moved] = [now, Date.now()];
      if (Date.now() - moved > STALL_MS) throw new Error(`No progress past ${now} bytes`);
      return undefined;
    }).catch((e) => assert.fail(`${e.message} after the cut${said()}`));
    const sent = await link.line(sender, "sent", 10_000);
    assert.equal(done.done, TOTAL);
    assert.equal(sent.sent, TOTAL);
    assert.equal(done.sha256, sent.sha256, "what arrived is what was sent, in order");
    // Nothing more arrives (no duplicate), and no connection saw its link go.
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(lines(receiver, "progress").at(-1)!.progress, TOTAL);
    assert.deepEqual(lines(sender, "disconnected"), [], said());
  });
});

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { DeviceHost } from "../device/host.ts";
import {
  AttachedDevice,
  type AttachEvents,
  REATTACH_FIRST_DELAY,
  REATTACH_MAX_DELAY,
} from "./client.ts";
import { ATTACH_MAJOR, ATTACH_MINOR, encodeAttach } from "./wire.ts";

/** A host on a virtual clock: timers run when `advance` passes them. */
function virtualHost() {
  let now = 0;
  let next = 1;
  const timers = new Map<number, { at: number; fn: () => void }>();
  const warnings: string[] = [];
  const host = {
    now: () => now,
    setTimer: (fn: () => void, ms: number) => {
      const id = next++;
      timers.set(id, { at: now + ms, fn });
      return id;
    },
    clearTimer: (id: unknown) => void timers.delete(id as number),
    hold() {},
    release() {},
    warn: (m: string) => void warnings.push(m),
  } as unknown as DeviceHost;
  return {
    host,
    warnings,
    get now() {
      return now;
    },
    pending: () => timers.size,
    /** Run the timers due by `now + ms`, in order. */
    async advance(ms: number) {
      const until = now + ms;
      for (;;) {
        const due = [...timers].filter(([, t]) => t.at <= until).sort((a, b) => a[1].at - b[1].at);
        if (due.length === 0) break;
        const [id, t] = due[0];
        timers.delete(id);
        now = t.at;
        t.fn();
        await new Promise((r) => setTimeout(r, 0));
      }
      now = until;
    },
  };
}

const welcome = encodeAttach({
  type: "welcome",
  major: ATTACH_MAJOR,
  minor: ATTACH_MINOR,
  caps: 0,
  deviceId: "02:00:00:00:00:0D",
  nonce: "n",
  port: 1,
  bind: "127.0.0.1",
  pid: 1,
});

describe("AttachedDevice re-attach", () => {
  it("retries with a delay doubling from REATTACH_FIRST_DELAY up to REATTACH_MAX_DELAY, then re-serves", async () => {
    const v = virtualHost();
    let events: AttachEvents | undefined;
    let daemonUp = true;
    const dials: number[] = [];
    const written: Uint8Array[] = [];
    const device = new AttachedDevice({
      host: v.host,
      socket: "/x/d.sock",
      dial: (e) => {
        dials.push(v.now);
        if (!daemonUp) return Promise.reject(new Error("ENOENT"));
        events = e;
        return Promise.resolve({ write: (b) => void written.push(b), queued: 0, close() {} });
      },
    });
    const attached = device.attach();
    await new Promise((r) => setTimeout(r, 0));
    events!.bytes(welcome);
    await attached;
    device.serve(0, ["echo"]);
    assert.equal(device.gone, false);

    // The daemon goes away and stays away for a while.
    daemonUp = false;
    events!.closed();
    assert.equal(device.gone, true);
    await v.advance(60_000);
    const gaps = dials.slice(1).map((t, i) => t - [0, ...dials.slice(1)][i]);
    const expected: number[] = [];
    for (let d = REATTACH_FIRST_DELAY; expected.length < gaps.length; d *= 2) {
      expected.push(Math.min(d, REATTACH_MAX_DELAY));
    }
    assert.deepEqual(gaps, expected, "the waits between attempts");
    assert.ok(gaps.length >= 10 && gaps.at(-1) === REATTACH_MAX_DELAY, `${gaps}`);
    assert.match(v.warnings[0], /is gone: .*re-attaching when it is back/);

    // Back: the next attempt attaches and names what is served again.
    daemonUp = true;
    written.length = 0;
    const attempts = dials.length;
    while (dials.length === attempts) await v.advance(10);
    events!.bytes(welcome);
    assert.equal(device.gone, false);
    assert.match(v.warnings.at(-1)!, /re-attached to the device daemon at "\/x\/d.sock"/);
    await new Promise((r) => setTimeout(r, 0));
    const out = new Uint8Array(written.reduce((n, b) => n + b.length, 0));
    written.reduce((at, b) => (out.set(b, at), at + b.length), 0);
    assert.ok(
      new TextDecoder().decode(out).includes('["echo"]'),
      "the server is named to the new daemon",
    );

    // The application closes: no more attempts.
    daemonUp = false;
    events!.closed();
    await device.close();
    const before = dials.length;
    await v.advance(60_000);
    assert.equal(dials.length, before, "no attempt after close()");
    assert.equal(v.pending(), 0);
  });
});

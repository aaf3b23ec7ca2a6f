/**
 * An OpenHarmony device played from its own recordings, for the BLE suites:
 * it replays the OpenHarmony side of one transcript of
 * `tests/vectors/openharmony-gatt-vectors.json` over the air mock, in the
 * transcript's GATT role (serving OpenHarmony's service, or connecting to
 * `LW_OH_TARGET`), sending OpenHarmony's recorded GATT values byte for byte.
 * Every message the transcript's other side sends is awaited from the device
 * under test and compared with the transcript's, masking only what may
 * legitimately differ (the ConnPktHead counter; devid, devtype and features
 * in basic info).
 *
 * Prints `ready`, then per step `match <k>` (or `mismatch <k> ...`, then
 * exits 1) and `sent <k> <tag>`, then `done`; afterwards `extra <type>` (or
 * `extra rc <delta> <ref>`) for each further message, and `closed <reason>`
 * when the BLE link ends.
 *
 * Env: `LW_OH_SCENARIO`, `LW_OH_MTU`, `LW_OH_ADAPTER` (`hci1`),
 * `LW_OH_TARGET` (when OpenHarmony is the GATT client), `LW_OH_SKIP` (a
 * regular expression: peer steps whose action matches are messages the
 * device under test cannot send, e.g. a NORMAL of 1025 bytes).
 *
 * @module
 */
import process from "node:process";
import { Reassembler } from "../../core/proto/openharmony/reassembly.ts";
import type { OhCharacteristic } from "../../core/proto/openharmony/wire.ts";
import { decodeMessage } from "../../core/proto/openharmony/decode.ts";
import { type GattLink, openBluez, OPENHARMONY_PROFILE } from "../../platform/bluez/mod.ts";
import { comparable } from "../openharmony/harness.ts";
import { fromHex, vectors } from "../openharmony/vectors.ts";

const env = process.env;
const t = vectors.transcripts.find((x) =>
  x.scenario === env.LW_OH_SCENARIO && x.mtu === Number(env.LW_OH_MTU)
);
if (t === undefined) throw new Error(`No transcript ${env.LW_OH_SCENARIO} at ${env.LW_OH_MTU}`);
const skip = env.LW_OH_SKIP ? new RegExp(env.LW_OH_SKIP) : undefined;
const mask = { seq: true, identity: true };
const say = (line: string) => console.log(line);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const bluez = await openBluez({ fdPath: false });
const adapter = bluez.adapter(env.LW_OH_ADAPTER ?? "hci1");
let link: GattLink;
if (t.ohRole === "server") {
  const server = await adapter.serve(OPENHARMONY_PROFILE, { fdPath: false });
  say("ready");
  link = await new Promise<GattLink>((r) => server.on("connection", r));
} else {
  say("ready");
  link = await adapter.connect(env.LW_OH_TARGET!, OPENHARMONY_PROFILE, { fdPath: false });
}
void link.done.then((c) => say(`closed ${c.reason}`));

// What the device under test sends, reassembled as OpenHarmony does (one
// buffer over both characteristics).
const rx = new Reassembler();
const inbox: { char: OhCharacteristic; message: Uint8Array }[] = [];
let wake = () => {};
for (const [i, ch] of link.channels.entries()) {
  const char: OhCharacteristic = i === 0 ? "2B00" : "2B01";
  ch.on("data", (v) => {
    const r = rx.push(v);
    if (r.type === "message") {
      inbox.push({ char, message: r.data.slice() });
      wake();
    }
  });
}
async function next(ms: number): Promise<{ char: OhCharacteristic; message: Uint8Array }> {
  const until = Date.now() + ms;
  while (inbox.length === 0) {
    if (Date.now() > until || link.closed) throw new Error(`no message within ${ms} ms`);
    await Promise.race([new Promise<void>((r) => (wake = r)), sleep(50)]);
  }
  return inbox.shift()!;
}

async function send(char: OhCharacteristic, writes: string[]): Promise<void> {
  const ch = link.channels[char === "2B00" ? 0 : 1];
  for (const w of writes) {
    if (!ch.write(fromHex(w))) {
      await new Promise<void>((r) => {
        ch.on("drain", () => {
          ch.off("drain");
          r();
        });
      });
    }
  }
}

let clock = 0;
for (const [k, step] of t.steps.entries()) {
  if (step.actor === "clock") {
    await sleep(Math.min(step.t - clock, 150));
  }
  clock = step.t;
  if (step.actor === "peer" && step.char !== undefined && step.messageHex !== undefined) {
    if (skip?.test(step.action)) {
      say(`skipped ${k}`);
    } else {
      const ours = await next(8000).catch((e) => {
        say(`mismatch ${k} ${(e as Error).message} (${step.action})`);
        process.exit(1);
      });
      const got = JSON.stringify(comparable(ours.char, ours.message, mask));
      const want = JSON.stringify(comparable(step.char, fromHex(step.messageHex), mask));
      if (ours.char !== step.char || got !== want) {
        say(`mismatch ${k} ${ours.char} ${got} expected ${step.char} ${want}`);
        process.exit(1);
      }
      say(`match ${k}`);
    }
  }
  for (const m of step.oh) {
    await send(m.char, m.writes);
    say(`sent ${k} ${m.tag ?? m.char}`);
  }
}
say("done");
for (;;) {
  const m = await next(60_000).catch(() => undefined);
  if (m === undefined) break;
  const d = decodeMessage(m.char, m.message) as unknown as Record<string, unknown>;
  const g = d.general as Record<string, unknown> | undefined;
  const rc = (d.control as { json?: Record<string, unknown> } | undefined)?.json;
  say(
    g !== undefined
      ? `extra ${g.msgTypeName}`
      : rc !== undefined
      ? `extra rc ${rc.KEY_DELTA} ${rc.KEY_REF_NUM}`
      : `extra ${d.layer}`,
  );
}

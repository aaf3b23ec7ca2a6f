/**
 * The seed examples of abilityConnectionManager (`examples/ability_*.ts`,
 * the documentation's code with only imports, hilog, AppStorage and UI
 * lines changed) run as two device processes: device B with its ability
 * (accepting, or the reject example), device A calling it; every device A
 * exits by itself once its ability terminates.
 *
 * @module
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { type Child, freePort, start } from "../_script.ts";
import { createImageCodec } from "../../wasm/image.ts";
import { photo } from "./_images.ts";
import { within } from "../harness/within.ts";

const A = "02:00:00:00:AE:0A";
const B = "02:00:00:00:AE:0B";
const children: Child[] = [];
const dir = mkdtempSync(join(tmpdir(), "ab-examples-"));

after(() => {
  for (const c of children) c.kill();
  rmSync(dir, { recursive: true, force: true });
});

function reports(c: Child): Record<string, unknown>[] {
  return c.out.split("\n").filter((l) => l.startsWith('{"b"')).map((l) => JSON.parse(l).b);
}

async function pair(
  sink: string,
  caller: string,
  env: Record<string, string> = {},
): Promise<{ a: Child; b: Child }> {
  const port = await freePort();
  const common = { LINKWEAVE_DISCOVERY: "off", ...env };
  const b = start(`examples/${sink}`, {
    ...common,
    LINKWEAVE_DEVICE_ID: B,
    LINKWEAVE_PORT: String(port),
  });
  children.push(b);
  await b.waitFor(/\{"ready":true\}/, 20_000);
  const a = start(`examples/${caller}`, {
    ...common,
    LINKWEAVE_DEVICE_ID: A,
    LINKWEAVE_PORT: "0",
    LINKWEAVE_PEERS: `${B}@127.0.0.1:${port}`,
  });
  children.push(a);
  assert.equal(await within(a.exited, 30_000, `${caller} exit`), 0, `${a.out}\n${a.err}`);
  return { a, b };
}

describe(
  "the abilityConnectionManager seed examples as two processes",
  { timeout: 120_000 },
  () => {
    it("seed 001: create, listen, connect, accept, message, data, peer info, disconnect, destroy", async () => {
      const { a, b } = await pair("ability_sink_001.ts", "ability_caller_001.ts");
      for (
        const line of [
          "I 0000/testTag: createSession sessionId is 100",
          "I 0000/testTag: session connect, sessionId is 100",
          "I 0000/testTag: sendMessage success",
          "I 0000/testTag: disconnectRemoteAbility begin",
          "I 0000/testTag: destroyAbilityConnectionSession called",
        ]
      ) assert.ok(a.out.includes(line), `device A printed "${line}":\n${a.out}`);
      assert.equal(a.out.split("sendMessage success").length - 1, 2, "sendMessage and sendData");
      const peer = JSON.parse(a.out.split("\n").find((l) => l.startsWith('{"peerInfo"'))!).peerInfo;
      assert.deepEqual(peer, {
        deviceId: B,
        bundleName: "com.example.remotephotodemo",
        moduleName: "entry",
        abilityName: "EntryAbility",
        serviceName: "collabTest",
      });
      await b.waitFor(/"disconnect":0/);
      assert.match(b.out, /Ability onCreate[^]*on collaborate[^]*acceptConnect success/);
      assert.deepEqual(reports(b), [
        { message: "message send success" },
        { data: "data send success", bytes: 17 },
        { disconnect: 0 },
      ]);
      b.kill();
    });

    it("seed 001's reject example: device A's connect fails", async () => {
      const { a, b } = await pair("ability_reject_001.ts", "ability_caller_001.ts");
      assert.match(a.out, /I 0000\/testTag: connect failed/);
      assert.doesNotMatch(a.out, /session connect/);
      assert.match(b.out, /on collaborate[^]*reject begin/);
      b.kill();
    });

    it("seeds 002 and 003: plural options, data, an image from a file, a camera stream, destroyStream", async () => {
      const { width, height, rgba } = photo(640, 480);
      const file = join(dir, "photo.jpg");
      writeFileSync(file, createImageCodec().encodeJpeg(rgba, width, height, 80));
      const { a, b } = await pair("ability_sink_002.ts", "ability_caller_002.ts", {
        LW_PHOTO: file,
      });
      assert.match(a.out, /createSession sessionId is 100[^]*sendMessage success[^]*image sent/);
      assert.match(a.out, /\{"frames":20\}/);
      await b.waitFor(/"disconnect":0/);
      assert.match(b.out, /surfaceId is\d+[^]*destroyStream called/);
      assert.deepEqual(reports(b), [
        { data: "data send success", bytes: 17 },
        { image: { width: 640, height: 480 } },
        { message: "start-camera" },
        { message: "stop-camera" },
        { disconnect: 0 },
      ]);
      b.kill();
    });
  },
);

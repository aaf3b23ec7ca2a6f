/**
 * linkEnhance in the `openharmony` profile end to end, over the air mock:
 * a linkweave device (its own process, `LINKWEAVE_PROFILE=openharmony`)
 * against a second process that replays the OpenHarmony side of the
 * transcripts in `tests/vectors/openharmony-gatt-vectors.json`
 * (`_oh_replay.ts`), in both GATT roles and at several ATT MTUs. The replay
 * checks every message the device sends against the transcript's; the
 * device shows what its app saw (connect results, data, disconnections with
 * OpenHarmony's codes).
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, afterEach, before, it } from "node:test";
import { DisconnectReason, ErrorCode } from "../../core/error_codes.ts";
import { airOptions, BLUEZ_NEEDS, type FakeBluez, startBluez } from "../harness/bluez.ts";
import { describeWith } from "../harness/env.ts";
import { type Child, start } from "../_script.ts";

const BOARD = "00:00:00:0B:0A:01";
const PHONE = "00:00:00:0B:0A:02";
const BUNDLE = "com.example.demo";

describeWith(
  "linkEnhance in the openharmony profile against OpenHarmony's recordings",
  BLUEZ_NEEDS,
  () => {
    let fake: FakeBluez;
    let state: string;
    const children: Child[] = [];
    const run = (module: string, env: Record<string, string>) => {
      const c = start(module, {
        DBUS_SYSTEM_BUS_ADDRESS: fake.bus.address,
        XDG_STATE_HOME: state,
        XDG_RUNTIME_DIR: state,
        LINKWEAVE_TRACE: "",
        ...env,
      });
      children.push(c);
      return c;
    };
    /** The linkweave device on the board's adapter, in the openharmony profile. */
    const board = (env: Record<string, string>) =>
      run("tests/bluez/_ble_device.ts", {
        LINKWEAVE_ADAPTER: "hci0",
        LINKWEAVE_TRANSPORTS: "bluez",
        LINKWEAVE_PROFILE: "openharmony",
        LINKWEAVE_BUNDLE: BUNDLE,
        ...env,
      });
    const replay = (scenario: string, mtu: number, env: Record<string, string> = {}) =>
      run("tests/bluez/_oh_replay.ts", {
        LW_OH_SCENARIO: scenario,
        LW_OH_MTU: String(mtu),
        LW_OH_ADAPTER: "hci1",
        ...env,
      });
    const mtu = (n: number) => fake.mock("Configure", "a{sv}", [airOptions({ mtu: n })]);

    before(async () => {
      state = mkdtempSync(join(tmpdir(), "lw-oh-state-"));
      fake = await startBluez({ adapters: [["hci0", BOARD, "board"], ["hci1", PHONE, "phone"]] });
    });

    afterEach(async () => {
      // Gone before the next test starts, so the mock has dropped their links.
      await Promise.all(children.splice(0).map((c) => (c.kill(), c.exited)));
    });

    after(async () => {
      await fake?.stop();
      rmSync(state, { recursive: true, force: true });
    });

    it("as GATT client: connects to an OpenHarmony server, exchanges data, sees its disconnect (MTU 23)", async () => {
      await mtu(23);
      const oh = replay("oh-server", 23, { LW_OH_SKIP: "1025 payload" });
      await oh.waitFor(/ready/, 20_000);
      const dev = board({
        LW_DEV_MODE: "client",
        LW_DEV_PEER: PHONE,
        LW_DEV_SEND: "cafe01",
        LW_DEV_SEND_AFTER: "3",
      });
      await oh.waitFor(/^done$/m, 20_000);
      // Basic info, the reference, the HANDSHAKE and our NORMAL are OpenHarmony's peer's.
      for (const k of [1, 2, 3, 8]) assert.match(oh.out, new RegExp(`^match ${k}$`, "m"));
      assert.match(oh.out, /^skipped 7$/m);
      await dev.waitFor(new RegExp(`disconnected 0 ${DisconnectReason.PEER_DISCONNECTED}`), 10_000);
      assert.match(dev.out, /^result 0 true 0$/m);
      assert.match(
        dev.out,
        /^data 0 1 00\ndata 0 1000 0001020304050607\ndata 0 1024 0001020304050607$/m,
      );
      assert.match(dev.out, /^sent 0 cafe01$/m);
      // Reset by its peer, the connection gives back its reference at once.
      await oh.waitFor(/^extra RC$|^extra rc|^extra connection/m, 5_000).catch(() => {});
    });

    it("as GATT client: a server that is not started fails the connect with OpenHarmony's code", async () => {
      await mtu(185);
      const oh = replay("oh-server-unknown-name", 185);
      await oh.waitFor(/ready/, 20_000);
      const dev = board({ LW_DEV_MODE: "client", LW_DEV_PEER: PHONE, LW_DEV_NAME: "nosuch" });
      await oh.waitFor(/^done$/m, 20_000);
      for (const k of [1, 2, 3]) assert.match(oh.out, new RegExp(`^match ${k}$`, "m"));
      await dev.waitFor(/^result 0 false \d+$/m, 10_000);
      assert.match(
        dev.out,
        new RegExp(`^result 0 false ${ErrorCode.PEER_SERVER_NOT_STARTED}$`, "m"),
      );
    });

    it("as GATT server: accepts an OpenHarmony client, answers as OpenHarmony does (MTU 512)", async () => {
      await mtu(512);
      const dev = board({ LW_DEV_MODE: "server" });
      await dev.waitFor(/serving/, 20_000);
      const oh = replay("oh-client", 512, { LW_OH_TARGET: BOARD });
      await oh.waitFor(/^done$/m, 20_000);
      // Our basic info and our ACK are the transcript's peer's.
      for (const k of [1, 2]) assert.match(oh.out, new RegExp(`^match ${k}$`, "m"));
      await dev.waitFor(new RegExp(`disconnected ${DisconnectReason.PEER_DISCONNECTED}`), 10_000);
      assert.match(dev.out, new RegExp(`^accepted ${PHONE}$`, "m"));
      assert.match(dev.out, /^data 1 00$/m);
      // Its last reference released, the board drops the BLE link at once.
      await oh.waitFor(/^closed disconnected$/m, 3_000);
    });

    it("as GATT server: a connection to a server not started gets the error ACK and RESET", async () => {
      await mtu(185);
      const dev = board({ LW_DEV_MODE: "server", LW_DEV_NAME: "other" });
      await dev.waitFor(/serving/, 20_000);
      const oh = replay("oh-client-rejected", 185, { LW_OH_TARGET: BOARD });
      await oh.waitFor(/^done$/m, 20_000);
      for (const k of [1, 2, 3]) assert.match(oh.out, new RegExp(`^match ${k}$`, "m"));
      assert.doesNotMatch(dev.out, /accepted/);
    });
  },
);

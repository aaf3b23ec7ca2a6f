/**
 * A device daemon and a peer device that list each other as static peers
 * and dial each other at the same moment: an application attached to the
 * daemon (device D) and the embedded device E each connect to the other's
 * server in the same tick, right after both started, for many rounds (new
 * ports, new runtimes each round). Every round must end with both connects
 * through, one link with one channel on each side (the merge rule of
 * `core/proto/handshake/decide.ts` keeps the channel dialled by the lower
 * id), and no warning (no clash). Everything runs in this process, over a
 * real Unix socket and real TCP on loopback.
 *
 * @module
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { after, describe, it } from "node:test";
import { freePort } from "../_script.ts";
import { createDevice, type Device } from "../../device.ts";
import { type Daemon, startDaemon } from "../../daemon.ts";
import { within } from "../harness/within.ts";

const ROUNDS = 12;
const dir = mkdtempSync(join(tmpdir(), "daemon2-simultaneous-"));
const saved = { state: process.env.XDG_STATE_HOME, account: process.env.LINKWEAVE_ACCOUNT };
process.env.XDG_STATE_HOME = join(dir, "state");
process.env.LINKWEAVE_ACCOUNT = "daemon2-simultaneous-account";

after(() => {
  for (const [k, v] of [["XDG_STATE_HOME", saved.state], ["LINKWEAVE_ACCOUNT", saved.account]]) {
    if (v === undefined) delete process.env[k!];
    else process.env[k!] = v;
  }
  rmSync(dir, { recursive: true, force: true });
});

/** Serve "mutual" (echo) on `device`, and connect to the other side's "mutual"; resolves once echoed. */
function mutual(device: Device, peer: string): { serve(): void; connect(): Promise<string> } {
  return {
    serve() {
      const s = device.createServer("mutual");
      s.on("connectionAccepted", (c) => c.on("dataReceived", (d: ArrayBuffer) => c.sendData(d)));
      s.start();
    },
    connect() {
      const conn = device.createConnection(peer, "mutual");
      return new Promise((resolve, reject) => {
        conn.on("connectResult", (r) => {
          if (!r.success) return reject(new Error(`connect to ${peer}: reason ${r.reason}`));
          conn.on("dataReceived", (d: ArrayBuffer) => resolve(new TextDecoder().decode(d)));
          conn.sendData(new TextEncoder().encode(`to ${peer}`).buffer as ArrayBuffer);
        });
        conn.connect();
      });
    },
  };
}

describe("a daemon and a peer that list each other, dialling at once", { timeout: 120_000 }, () => {
  // Both orders of the ids: the daemon's device has the lower one, then the higher.
  for (
    const [D, E] of [["02:00:00:00:DC:01", "02:00:00:00:DC:02"], [
      "02:00:00:00:DC:04",
      "02:00:00:00:DC:03",
    ]]
  ) {
    it(`${ROUNDS} rounds, daemon ${D}, peer ${E}: one link, one channel, no clash`, async () => {
      const warnings: string[] = [];
      const warn = console.warn;
      console.warn = (...args: unknown[]) => void warnings.push(args.map(String).join(" "));
      try {
        for (let round = 0; round < ROUNDS; round++) {
          warnings.length = 0; // what the previous round's teardown said
          const dPort = await freePort();
          const ePort = await freePort();
          const socket = join(dir, `d${round}-${D.slice(-2)}.sock`);
          let daemon: Daemon | undefined;
          let app: Device | undefined;
          const peer = createDevice({
            deviceId: E,
            port: ePort,
            peers: [`${D}@127.0.0.1:${dPort}`],
            discovery: "off",
            daemon: false,
          });
          try {
            daemon = await startDaemon({
              socket,
              device: {
                deviceId: D,
                port: dPort,
                peers: [`${E}@127.0.0.1:${ePort}`],
                discovery: "off",
              },
            });
            app = createDevice({ daemon: socket });
            const a = mutual(app, E);
            const e = mutual(peer, D);
            a.serve();
            e.serve();
            await Promise.all([app.runtime(), peer.runtime()]);
            // The same tick: each side dials the other.
            const [fromApp, fromPeer] = await within(
              Promise.all([a.connect(), e.connect()]),
              15_000,
              `round ${round}: both connects`,
            );
            assert.equal(fromApp, `to ${E}`);
            assert.equal(fromPeer, `to ${D}`);
            assert.deepEqual(daemon.links(), [E], `round ${round}: the daemon's links`);
            const stats = peer.linkStats();
            assert.deepEqual(
              stats.map((l) => [l.peer, l.channels.length]),
              [[D, 1]],
              `round ${round}: E has one link to D with one channel`,
            );
            assert.deepEqual(warnings, [], `round ${round}: no warning`);
          } finally {
            await app?.close();
            await daemon?.close();
            await peer.close();
          }
        }
      } finally {
        console.warn = warn;
      }
    });
  }
});

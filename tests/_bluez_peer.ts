/**
 * A BLE peripheral in its own process, for the BlueZ tests: serves a profile
 * on an emulated adapter (`DBUS_SYSTEM_BUS_ADDRESS` points at the mock's
 * bus), then for the central that connects:
 * - digests what arrives on each channel and prints
 *   `received <channel> <values> <digest>` once `LW_BLE_COUNT` values came;
 * - sends `LW_BLE_COUNT` values of its own on each channel (sizes 1..20,
 *   bytes from `LW_BLE_SEED`), waiting for `drain` when told to;
 * - prints `closed <reason>` when the link ends.
 *
 * It runs until killed. Env: `LW_BLE_ADAPTER` (hci1), `LW_BLE_PROFILE` (`linkweave:N` or
 * `openharmony`), `LW_BLE_FD` (`0` turns the fd path off), `LW_BLE_COUNT`,
 * `LW_BLE_SEED`.
 *
 * @module
 */
import process from "node:process";
import { linkweaveProfile, openBluez, OPENHARMONY_PROFILE } from "../platform/bluez/mod.ts";
import { digest, values } from "./_bluez_data.ts";

const env = process.env;
const count = Number(env.LW_BLE_COUNT ?? 100);
const seed = Number(env.LW_BLE_SEED ?? 1);
const spec = env.LW_BLE_PROFILE ?? "linkweave:2";
const profile = spec === "openharmony"
  ? OPENHARMONY_PROFILE
  : linkweaveProfile(Number(spec.split(":")[1] ?? 2));

const bluez = await openBluez({ fdPath: env.LW_BLE_FD !== "0" });
const server = await bluez.adapter(env.LW_BLE_ADAPTER ?? "hci1").serve(profile, {
  localName: "lw-peer",
});
console.log(`ready ${bluez.fdPath ? "fd" : "dbus"}`);

server.on("connection", (link) => {
  console.log(`connection ${link.peer}`);
  for (const channel of link.channels) {
    const got: Uint8Array[] = [];
    channel.on("data", (v) => {
      got.push(v);
      if (got.length === count) {
        console.log(`received ${channel.index} ${got.length} ${digest(got)}`);
      }
    });
    void (async () => {
      for (const v of values(seed + 100 + channel.index, count, 20)) {
        if (link.closed) return;
        if (!channel.write(v)) {
          await new Promise<void>((r) => {
            const done = () => {
              channel.off("drain", done);
              r();
            };
            channel.on("drain", done);
            void link.done.then(done);
          });
        }
      }
      console.log(`sent ${channel.index} ${channel.path}`);
    })();
  }
  void link.done.then((c) => console.log(`closed ${c.reason}`));
});
// Runs until killed; the mock drops the application when this process goes.

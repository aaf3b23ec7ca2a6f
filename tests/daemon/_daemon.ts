/**
 * A device daemon for the tests that start it under a prefix (`ip netns
 * exec`): `startDaemon()` with the socket `LW_SOCKET` and the manifest
 * `LW_MANIFEST`, printing what `linkweave daemon` prints (a `ready` line,
 * one line per event); it stops on SIGTERM.
 *
 * @module
 */
import process from "node:process";
import { startDaemon } from "../../daemon.ts";

const daemon = await startDaemon({
  socket: process.env.LW_SOCKET,
  manifest: process.env.LW_MANIFEST,
  onEvent: ({ event, ...rest }) => console.log(JSON.stringify({ daemon: event, ...rest })),
});
console.log(JSON.stringify({ daemon: "ready", deviceId: daemon.deviceId, port: daemon.port }));
process.once("SIGTERM", () => {
  void daemon.close().then(() => console.log(JSON.stringify({ daemon: "stopped" })));
});

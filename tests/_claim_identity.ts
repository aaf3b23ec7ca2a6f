/**
 * A process that takes a device identity, for `platform/identity_test.ts`:
 * at the wall-clock time `$LW_START_AT` (ms since the epoch, so several
 * processes claim at the same moment) or at once,
 * `claimIdentity({ stateDir: $LW_STATE_DIR, adapter: false })`, prints
 * `{"name":...,"deviceId":...,"pid":...}`, holds it for `$LW_HOLD_MS` ms
 * (default 0), then exits without releasing it when `$LW_NO_RELEASE=1`
 * (like a killed process), else after releasing it.
 *
 * @module
 */
import process from "node:process";
import { claimIdentity } from "../platform/identity.ts";

const at = Number(process.env.LW_START_AT ?? 0);
if (at > Date.now()) await new Promise((r) => setTimeout(r, at - Date.now()));
while (Date.now() < at) { /* the last milliseconds */ }
const held = await claimIdentity({ stateDir: process.env.LW_STATE_DIR, adapter: false });
console.log(JSON.stringify({ name: held.name, deviceId: held.deviceId, pid: process.pid }));
await new Promise((r) => setTimeout(r, Number(process.env.LW_HOLD_MS ?? 0)));
if (process.env.LW_NO_RELEASE !== "1") await held.release();
process.exit(0);

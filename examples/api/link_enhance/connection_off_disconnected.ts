// deno-fmt-ignore-file
// deno-lint-ignore-file
// The `off('disconnected')` (Connection) example of OpenHarmony's linkEnhance documentation,
// unchanged but for the imports and the hilog stand-in.
// Prints (each line; * is any text):
//   I 0000/testDemo: connection sever deviceId = 00:11:22:33:44:55
import { linkEnhance } from "../../../mod.ts";
import type { BusinessError } from "../../../mod.ts";
import { hilog } from "../../_hilog.ts";
const TAG = "testDemo";

try {
 let peerDeviceId: string = "00:11:22:33:44:55";
 hilog.info(0x0000, TAG, 'connection sever deviceId = ' + peerDeviceId);
 let connection: linkEnhance.Connection = linkEnhance.createConnection(peerDeviceId, "demo");
 connection.on('disconnected', (number: number)=> {
 hilog.info(0x0000, TAG, 'connection disconnected reason = ' + number);
 });
 // Unsubscribe from disconnected events.
 connection.off('disconnected', (number: number)=> {
 hilog.info(0x0000, TAG, 'connection disconnected reason = ' + number);
 });
} catch (err) {
 hilog.error(0x0000, TAG, 'errCode: ' + (err as BusinessError).code + ', errMessage: ' +
 (err as BusinessError).message);
}

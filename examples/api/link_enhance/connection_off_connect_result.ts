// deno-fmt-ignore-file
// deno-lint-ignore-file
// The `off('connectResult')` (Connection) example of OpenHarmony's linkEnhance documentation,
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
 connection.on('connectResult', (result: linkEnhance.ConnectResult): void => {
 hilog.info(0x0000, TAG, 'clientConnectResultCallback result = ' + result.success);
 });
 // Unsubscribe from connectResult events.
 connection.off('connectResult', (result: linkEnhance.ConnectResult): void => {
 hilog.info(0x0000, TAG, 'clientConnectResultCallback result = ' + result.success);
 });
} catch (err) {
 hilog.error(0x0000, TAG, 'errCode: ' + (err as BusinessError).code + ', errMessage: ' +
 (err as BusinessError).message);
}

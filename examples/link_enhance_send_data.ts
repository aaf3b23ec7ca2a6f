// deno-fmt-ignore-file
// deno-lint-ignore-file
// The `sendData()` example of linkEnhance's documentation,
// unchanged but for the imports and the hilog stand-in. It connects to device
// 00:11:22:33:44:55 (found through LINKWEAVE_PEERS or discovery), sends one
// byte and disconnects; the process then exits once the byte is delivered.
import { linkEnhance } from "../mod.ts";
import type { BusinessError } from "../mod.ts";
import { hilog } from "./_hilog.ts";
const TAG = "testDemo";

try {
 let peerDeviceId: string = "00:11:22:33:44:55";
 hilog.info(0x0000, TAG, 'connection sever deviceId = ' + peerDeviceId);
 let connection: linkEnhance.Connection = linkEnhance.createConnection(peerDeviceId, "demo");
 connection.on('connectResult', (result: linkEnhance.ConnectResult): void => {
 hilog.info(0x0000, TAG, 'clientConnectResultCallback result = ' + result.success);
 if (result.success) {
 let len = 1;
 let arraybuffer = new ArrayBuffer(len); // Create the data to send.
 connection.sendData(arraybuffer);
 hilog.info(0x0000, TAG, "sendData data connection peerDeviceId=%{public}s" + connection.getPeerDeviceId());
 connection.disconnect();
 }
 });
 connection.connect();
} catch (err) {
 hilog.error(0x0000, TAG, 'errCode: ' + (err as BusinessError).code + ', errMessage: ' +
 (err as BusinessError).message);
}

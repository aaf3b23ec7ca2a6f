// deno-fmt-ignore-file
// deno-lint-ignore-file
// The `on('connectionAccepted')` example of linkEnhance's documentation
// (OpenHarmony's), unchanged but for the imports and the hilog stand-in. Run it as
// a device: LINKWEAVE_DEVICE_ID=00:11:22:33:44:55 deno run -A examples/link_enhance_server.ts
import { linkEnhance } from "../mod.ts";
import type { BusinessError } from "../mod.ts";
import { hilog } from "./_hilog.ts";
const TAG = "testDemo";

try {
 let name: string = "demo";
 hilog.info(0x0000, TAG, 'start sever name = ' + name);
 // Construct a Server object using the specified name.
 let server: linkEnhance.Server = linkEnhance.createServer(name);

 // Subscribe to connectionAccepted events.
 server.on('connectionAccepted', (connection: linkEnhance.Connection): void => {
 hilog.info(0x0000, TAG, 'serverOnCallback = ' + JSON.stringify(connection));
 });
 // Start the server.
 server.start();
} catch (err) {
 hilog.info(0x0000, TAG, 'start sever errCode: ' + (err as BusinessError).code + ', errMessage: ' +
 (err as BusinessError).message);
}

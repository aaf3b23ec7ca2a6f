// deno-fmt-ignore-file
// deno-lint-ignore-file
// The `close()` (Server) example of OpenHarmony's linkEnhance documentation,
// unchanged but for the imports and the hilog stand-in.
// Prints (each line; * is any text):
//   I 0000/testDemo: start sever name = demo
import { linkEnhance } from "../../../mod.ts";
import type { BusinessError } from "../../../mod.ts";
import { hilog } from "../../_hilog.ts";
const TAG = "testDemo";

try {
 let name: string = "demo";
 hilog.info(0x0000, TAG, 'start sever name = ' + name);
 let server: linkEnhance.Server = linkEnhance.createServer(name);
 server.start();
 server.close();
} catch (err) {
 hilog.error(0x0000, TAG, 'start sever errCode: ' + (err as BusinessError).code + ', errMessage: ' +
 (err as BusinessError).message);
}

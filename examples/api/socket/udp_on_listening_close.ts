// deno-fmt-ignore-file
// deno-lint-ignore-file
// @ts-nocheck: OpenHarmony's socket examples (API 7) are untyped JavaScript
// The `on('listening' | 'close')` (UDPSocket) example of OpenHarmony's @ohos.net.socket documentation,
// unchanged but for the import and the placeholders: address
// 192.168.xx.xxx is 127.0.0.1, a bound port is 0 (the system picks one), and
// a peer's port is the one the test's peer listens on (none).
// Prints nothing (it only sets up callbacks).
import { socket } from "../../../mod.ts";

let udp = socket.constructUDPSocketInstance();
udp.on('listening', () => {
	console.log("on listening success");
});
udp.on('close', () => {
	console.log("on close success" );
});

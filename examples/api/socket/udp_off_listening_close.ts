// deno-fmt-ignore-file
// deno-lint-ignore-file
// @ts-nocheck: OpenHarmony's socket examples (API 7) are untyped JavaScript
// The `off('listening' | 'close')` (UDPSocket) example of OpenHarmony's @ohos.net.socket documentation,
// unchanged but for the import and the placeholders: address
// 192.168.xx.xxx is 127.0.0.1, a bound port is 0 (the system picks one), and
// a peer's port is the one the test's peer listens on (none).
// Prints nothing (it only sets up callbacks).
import { socket } from "../../../mod.ts";

let udp = socket.constructUDPSocketInstance();
let callback1 = () =>{
	console.log("on listening, success");
}
udp.on('listening', callback1);
// You can pass the callback of the on function to cancel listening for a certain type of callback. If you do not pass the callback, you will cancel listening for all callbacks.
udp.off('listening', callback1);
udp.off('listening');
let callback2 = () =>{
	console.log("on close, success");
}
udp.on('close', callback2);
// You can pass the callback of the on function to cancel listening for a certain type of callback. If you do not pass the callback, you will cancel listening for all callbacks.
udp.off('close', callback2);
udp.off('close');

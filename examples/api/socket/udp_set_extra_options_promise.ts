// deno-fmt-ignore-file
// deno-lint-ignore-file
// @ts-nocheck: OpenHarmony's socket examples (API 7) are untyped JavaScript
// The `setExtraOptions` (UDPSocket) example of OpenHarmony's @ohos.net.socket documentation,
// unchanged but for the import and the placeholders: address
// 192.168.xx.xxx is 127.0.0.1, a bound port is 0 (the system picks one), and
// a peer's port is the one the test's peer listens on (none).
// Prints (each line; * is any text):
//   bind success
//   setExtraOptions success
import { socket } from "../../../mod.ts";

let udp = socket.constructUDPSocketInstance();
let promise = udp.bind({address:'127.0.0.1', port: 0, family:1});
promise.then(() => {
  console.log('bind success');
  let promise1 = udp.setExtraOptions({
	receiveBufferSize:1000,
	sendBufferSize:1000,
	reuseAddress:false,
	socketTimeout:6000,
	broadcast:true
  });
  promise1.then(() => {
	console.log('setExtraOptions success');
  }).catch(err => {
	console.log('setExtraOptions fail');
  });
}).catch(err => {
  console.log('bind fail');
});

// deno-fmt-ignore-file
// deno-lint-ignore-file
// @ts-nocheck: OpenHarmony's socket examples (API 7) are untyped JavaScript
// The `send` (TCPSocket) example of OpenHarmony's @ohos.net.socket documentation,
// unchanged but for the import and the placeholders: address
// 192.168.xx.xxx is 127.0.0.1, a bound port is 0 (the system picks one), and
// a peer's port is the one the test's peer listens on (TCP_PEER_PORT).
// Prints (each line; * is any text):
//   connect success
//   send success
import { socket } from "../../../mod.ts";
import { TCP_PEER_PORT } from "./_peers.ts";

let tcp = socket.constructTCPSocketInstance();
let promise = tcp.connect({ address: {address: '127.0.0.1', port: TCP_PEER_PORT, family: 1} , timeout: 6000});
promise.then(() => {
  console.log('connect success');
  tcp.send({
	data:'Hello, server!'
  },err => {
	if (err) {
	  console.log('send fail');
	  return;
	}
	console.log('send success');
  })
}).catch(err => {
  console.log('connect fail');
});

// deno-fmt-ignore-file
// deno-lint-ignore-file
// @ts-nocheck: OpenHarmony's socket examples (API 7) are untyped JavaScript
// The `send` (UDPSocket) example of OpenHarmony's @ohos.net.socket documentation,
// unchanged but for the import and the placeholders: address
// 192.168.xx.xxx is 127.0.0.1, a bound port is 0 (the system picks one), and
// a peer's port is the one the test's peer listens on (UDP_PEER_PORT).
// A UDP send before bind fails (2301009, EBADF), as on OpenHarmony (docs/socket.md).
// Prints (each line; * is any text):
//   send fail
import { socket } from "../../../mod.ts";
import { UDP_PEER_PORT } from "./_peers.ts";

let udp = socket.constructUDPSocketInstance();
let promise = udp.send({
  data:'Hello, server!',
  address: {
	address:'127.0.0.1',
	port:UDP_PEER_PORT,
	family:1
  }
});
promise.then(() => {
  console.log('send success');
}).catch(err => {
  console.log('send fail');
});

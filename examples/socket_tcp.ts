// deno-fmt-ignore-file
// The TCPSocket examples of @ohos.net.socket (API 7), run as they are:
// only the import line and the placeholder addresses/ports changed
// (192.168.xx.xxx -> 127.0.0.1; xxxx -> 18080, where the test runs a server).
// deno-lint-ignore-file
// @ts-nocheck: the seed examples are untyped JavaScript
import { socket } from "../mod.ts";

{
  let tcp = socket.constructTCPSocketInstance();
  let promise1 = tcp.connect({ address: {address: '127.0.0.1', port: 18080, family: 1} , timeout: 6000});
  promise1.then(() => {
    console.log('connect success');
    let promise2 = tcp.send({
  	data:'Hello, server!'
    });
    promise2.then(() => {
  	console.log('send success');
    }).catch(err => {
  	console.log('send fail');
    });
  }).catch(err => {
    console.log('connect fail');
  });
}
{
  let tcp = socket.constructTCPSocketInstance();
  let promise = tcp.connect({ address: {address: '127.0.0.1', port: 18080, family: 1} , timeout: 6000});
  promise.then(() => {
    console.log('connect success');
    tcp.getRemoteAddress((err, data) => {
  	if (err) {
  	  console.log('getRemoteAddressfail');
  	  return;
  	}
  	console.log('getRemoteAddresssuccess:' + JSON.stringify(data));
    })
  }).catch(err => {
    console.log('connect fail');
  });
}
{
  let tcp = socket.constructTCPSocketInstance();
  let promise = tcp.connect({ address: {address: '127.0.0.1', port: 18080, family: 1} , timeout: 6000});
  promise.then(() => {
    console.log('connect success');
    tcp.getState((err, data) => {
  	if (err) {
  	  console.log('getState fail');
  	  return;
  	}
  	console.log('getState success:' + JSON.stringify(data));
    });
  }).catch(err => {
    console.log('connect fail');
  });
}
{
  let tcp = socket.constructTCPSocketInstance();
  let promise = tcp.connect({ address: {address: '127.0.0.1', port: 18080, family: 1} , timeout: 6000});
  promise.then(() => {
    console.log('connect success');
    tcp.setExtraOptions({
  	keepAlive: true,
  	OOBInline: true,
  	TCPNoDelay: true,
  	socketLinger: { on:true, linger:10 },
  	receiveBufferSize: 1000,
  	sendBufferSize: 1000,
  	reuseAddress: true,
  	socketTimeout: 3000,
    },err => {
  	if (err) {
  	  console.log('setExtraOptions fail');
  	  return;
  	}
  	console.log('setExtraOptions success');
    });
  }).catch(err => {
    console.log('connect fail');
  });
}
{
  let tcp = socket.constructTCPSocketInstance();
  tcp.on('message', value => {
  	console.log("on message, message:" + value.message + ", remoteInfo:" + value.remoteInfo)
  });
  tcp.on('connect', () => {
  	console.log("on connect success")
  });
  tcp.on('close', data => {
  	console.log("on close success")
  });
  tcp.on('error', err => {
  	console.log("on error, err:" + JSON.stringify(err))
  });
  tcp.connect({ address: {address: '127.0.0.1', port: 18080, family: 1} , timeout: 6000}, err => {
    if (err) {
  	console.log('connect fail');
  	return;
    }
    console.log('connect success');
    tcp.send({
  	data:'Hello, server!'
    },err => {
  	if (err) {
  	  console.log('send fail');
  	  return;
  	}
  	console.log('send success');
  	tcp.close(err => {
  	  if (err) {
  		console.log('close fail');
  		return;
  	  }
  	  console.log('close success');
  	})
    })
  })
}

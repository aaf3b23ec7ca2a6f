// deno-fmt-ignore-file
// The UDPSocket examples of @ohos.net.socket (API 7), run as they are:
// only the import line and the placeholder addresses/ports changed
// (192.168.xx.xxx -> 127.0.0.1; xxxx -> 0 for bind, 18081 for the peer).
// deno-lint-ignore-file
// @ts-nocheck: the seed examples are untyped JavaScript
import { socket } from "../mod.ts";

{
  let udp = socket.constructUDPSocketInstance();
  udp.bind({address: '127.0.0.1', port: 0, family: 1}, err => {
    if (err) {
  	console.log('bind fail');
  	return;
    }
    console.log('bind success');
  })
}
{
  let udp = socket.constructUDPSocketInstance();
  let promise = udp.bind({address: '127.0.0.1', port: 8080, family: 1});
  promise .then(() => {
    console.log('bind success');
  }).catch(err => {
    console.log('bind fail');
  });
}
{
  let udp = socket.constructUDPSocketInstance();
  udp.bind({address: '127.0.0.1', port: 0, family: 1}, err => {
    if (err) {
  	console.log('bind fail');
  	return;
    }
    console.log('bind success');
    udp.getState((err, data) => {
  	if (err) {
  	  console.log('getState fail');
  	  return;
  	}
  	console.log('getState success:' + JSON.stringify(data));
    })
  })
}
{
  let udp = socket.constructUDPSocketInstance();
  let promise = udp.bind({address:'127.0.0.1', port:0, family:1});
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
}
{
  let udp = socket.constructUDPSocketInstance();
  let callback = value =>{
  	console.log("on message, message:" + value.message + ", remoteInfo:" + value.remoteInfo);
  }
  udp.on('message', callback);
  udp.off('message', callback);
  udp.off('message');
  udp.on('listening', () => {
  	console.log("on listening success");
  });
  udp.on('close', () => {
  	console.log("on close success" );
  });
  udp.bind({address:'127.0.0.1', port:0, family:1}).then(() => {
    let promise = udp.send({
      data:'Hello, server!',
      address: {
  	address:'127.0.0.1',
  	port:18081,
  	family:1
      }
    });
    promise.then(() => {
      console.log('send success');
      let promise = udp.close();
      promise.then(() => {
        console.log('close success');
      }).catch(err => {
        console.log('close fail');
      });
    }).catch(err => {
      console.log('send fail');
    });
  });
}

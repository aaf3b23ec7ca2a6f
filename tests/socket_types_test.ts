/**
 * `@ohos.net.socket` written the way ported ArkTS apps write it: callbacks
 * typed `(err: BusinessError) => ...`, payloads typed with the module's own
 * names, `off` with and without the callback. `deno check` and `deno test`
 * type-check this file, so a public type that rejects such code fails the
 * build; the test then runs it over loopback. `@ts-expect-error` lines check
 * what the types must refuse.
 *
 * @module
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { type BusinessError, socket } from "../mod.ts";

describe("socket, ArkTS style", { timeout: 20_000 }, () => {
  it("type-checks and runs: a TCP echo, a UDP datagram, states and options", async () => {
    const log: string[] = [];

    // A server, in callback form.
    const tcpServer: socket.TCPSocketServer = socket.constructTCPSocketServerInstance();
    const listenAddr: socket.NetAddress = { address: "127.0.0.1", port: 0, family: 1 };
    tcpServer.on("connect", (client: socket.TCPSocketConnection) => {
      client.on("message", (value: socket.SocketMessageInfo) => {
        const options: socket.TCPSendOptions = { data: value.message };
        client.send(options, (err: BusinessError) => {
          if (err) log.push(`server send fail: ${err.code}`);
        });
      });
      client.on("close", () => log.push("server: client closed"));
      client.on("error", (err: BusinessError) => log.push(`server: ${JSON.stringify(err)}`));
    });
    tcpServer.on("error", (err: BusinessError) => log.push(`listen error ${err.code}`));
    await new Promise<void>((resolve) => {
      tcpServer.listen(listenAddr, (err: BusinessError) => {
        if (err) log.push(`listen fail: ${err.code}`);
        resolve();
      });
    });
    const local: socket.NetAddress = await tcpServer.getLocalAddress();

    // A client, in both forms.
    const tcp: socket.TCPSocket = socket.constructTCPSocketInstance();
    const received = new Promise<string>((resolve) => {
      tcp.on("message", (value: socket.SocketMessageInfo) => {
        const info: socket.SocketRemoteInfo = value.remoteInfo;
        resolve(`${new TextDecoder().decode(value.message)} from ${info.family}`);
      });
    });
    const onConnect = () => log.push("client connected");
    tcp.on("connect", onConnect);
    tcp.on("close", () => log.push("client closed"));
    tcp.on("error", (err: BusinessError) => {
      log.push("on error, err:" + JSON.stringify(err));
    });
    const connectOptions: socket.TCPConnectOptions = {
      address: { address: "127.0.0.1", port: local.port, family: 1 },
      timeout: 6000,
    };
    await new Promise<void>((resolve) => {
      tcp.connect(connectOptions, (err: BusinessError) => {
        if (err) log.push(`connect fail: ${err.code}`);
        resolve();
      });
    });
    tcp.getState((err: BusinessError, data: socket.SocketStateBase) => {
      if (!err) log.push(`connected: ${data.isConnected}`);
    });
    tcp.getRemoteAddress((err: BusinessError, data: socket.NetAddress) => {
      if (!err) log.push(`remote port ${data.port === local.port}`);
    });
    const extra: socket.TCPExtraOptions = {
      keepAlive: true,
      OOBInline: true,
      TCPNoDelay: true,
      socketLinger: { on: true, linger: 10 },
      receiveBufferSize: 8192,
      sendBufferSize: 8192,
      reuseAddress: true,
      socketTimeout: 3000,
    };
    await tcp.setExtraOptions(extra).catch((err: BusinessError) => log.push(`${err.code}`));
    const sendOptions: socket.TCPSendOptions = { data: "Hello, server!", encoding: "US-AECII" };
    await tcp.send(sendOptions).then(() => log.push("send success")).catch((err: BusinessError) => {
      log.push(`send fail: ${err.code}`);
    });
    assert.equal(await received, "Hello, server! from IPv4");
    tcp.off("connect", onConnect);
    tcp.off("message");

    // A UDP datagram to itself.
    const udp: socket.UDPSocket = socket.constructUDPSocketInstance();
    udp.on("listening", () => log.push("udp listening"));
    await udp.bind({ address: "127.0.0.1", port: 0, family: 1 });
    const self = await udp.getLocalAddress();
    const datagram = new Promise<number>((resolve) => {
      udp.on("message", (value: socket.SocketMessageInfo) => resolve(value.remoteInfo.size));
    });
    const udpSend: socket.UDPSendOptions = { data: "ping", address: self };
    udp.send(udpSend, (err: BusinessError) => {
      if (err) log.push(`udp send fail: ${err.code}`);
    });
    assert.equal(await datagram, 4);
    const udpExtra: socket.UDPExtraOptions = { broadcast: false, socketTimeout: 1000 };
    await udp.setExtraOptions(udpExtra);

    // What the types refuse (and the runtime too).
    // @ts-expect-error: a callback must be a function
    assert.throws(() => tcp.on("message", 5), { code: 401 });
    // @ts-expect-error: not an event of a TCP socket
    tcp.on("listening", () => {});

    await new Promise<void>((resolve) => tcp.close(() => resolve()));
    await udp.close();
    await tcpServer.close();
    assert.deepEqual(log.filter((l) => /fail|error/.test(l)), []);
    assert.ok(log.includes("client connected"));
    assert.ok(log.includes("connected: true"));
    assert.ok(log.includes("remote port true"));
    assert.ok(log.includes("send success"));
    assert.ok(log.includes("udp listening"));
  });
});

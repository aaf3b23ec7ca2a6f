/**
 * The socket adapter for Node: `node:net` and `node:dgram` (the shared
 * helpers of `platform/_node_net.ts`).
 *
 * @module
 */
import type { SocketPlatform } from "../../core/socket/platform.ts";
import {
  bindDgram,
  bindTcpNet,
  connectTcpNet,
  connectUnixNet,
  listenTcpNet,
  listenUnixNet,
} from "../_node_net.ts";

/** The Node adapter: `node:net` and `node:dgram`. */
export const nodeSocketPlatform: SocketPlatform = {
  name: "node",
  tcpConnect: (options, events) => connectTcpNet(options, events, "node"),
  tcpBind: (local) => bindTcpNet(local, "node"),
  tcpListen: (local, events) => listenTcpNet(local, events, "node"),
  unixConnect: (path, events) => connectUnixNet(path, events, "node"),
  unixListen: (path, events) => listenUnixNet(path, events, "node"),
  udpBind: (options, events) => bindDgram(options, events, "node", true),
};

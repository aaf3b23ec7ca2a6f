/**
 * The `@ohos.net.socket` semantics, bound to no runtime: every class takes a
 * {@linkcode SocketPlatform}.
 *
 * @module
 */
export * from "./types.ts";
export type * from "./platform.ts";
export { TCPSocket } from "./tcp.ts";
export { TCPSocketConnection, TCPSocketServer } from "./tcp_server.ts";
export { UDPSocket } from "./udp.ts";
export { MulticastSocket } from "./multicast.ts";
export { LocalSocket } from "./local.ts";
export { LocalSocketConnection, LocalSocketServer } from "./local_server.ts";

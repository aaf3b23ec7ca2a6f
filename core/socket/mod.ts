/**
 * The `@ohos.net.socket` semantics, bound to no runtime: every class takes a
 * {@linkcode SocketPlatform}.
 *
 * @module
 */
export * from "./types.ts";
export type * from "./platform.ts";
export { TCPSocket, TCPSocketConnection, TCPSocketServer } from "./tcp.ts";
export { MulticastSocket, UDPSocket } from "./udp.ts";
export { LocalSocket, LocalSocketConnection, LocalSocketServer } from "./local.ts";

/**
 * `@ohos.net.socket` for Deno, Bun and Node: TCP, UDP, multicast and
 * Unix-domain sockets over real OS sockets. Import it as
 * `import { socket } from "@linkweave/linkweave"`.
 *
 * @example Bind a UDP socket on loopback
 * ```ts
 * import * as socket from "./socket.ts";
 * const udp = socket.constructUDPSocketInstance();
 * await udp.bind({ address: "127.0.0.1", port: 0, family: 1 });
 * console.log(await udp.getState());
 * await udp.close();
 * ```
 *
 * @module
 */
import { autoSocketPlatform } from "./platform/auto.ts";
import type { ConstructOptions } from "./core/socket/types.ts";
import { LocalSocket } from "./core/socket/local.ts";
import { LocalSocketServer } from "./core/socket/local_server.ts";
import { TCPSocket } from "./core/socket/tcp.ts";
import { TCPSocketServer } from "./core/socket/tcp_server.ts";
import { UDPSocket } from "./core/socket/udp.ts";
import { MulticastSocket } from "./core/socket/multicast.ts";

export * from "./core/socket/types.ts";
export type {
  BoundTcpHandle,
  DatagramEvents,
  DatagramHandle,
  IpEndpoint,
  IpFamily,
  ListenerEvents,
  ListenerHandle,
  OptionTarget,
  Refable,
  SocketOption,
  SocketOptionMap,
  SocketPlatform,
  StreamEvents,
  StreamHandle,
  TcpConnectOptions,
  UdpBindOptions,
} from "./core/socket/platform.ts";
export { LocalSocket, LocalSocketServer, MulticastSocket, TCPSocket, TCPSocketServer, UDPSocket };
export { LocalSocketConnection } from "./core/socket/local_server.ts";
export { TCPSocketConnection } from "./core/socket/tcp_server.ts";

/**
 * Create a UDP socket.
 *
 * @param options `platform` (a linkweave extension) picks the adapter.
 * @returns The socket.
 *
 * @example
 * ```ts
 * const udp = constructUDPSocketInstance();
 * await udp.close();
 * ```
 */
export function constructUDPSocketInstance(options: ConstructOptions = {}): UDPSocket {
  return new UDPSocket(options.platform ?? autoSocketPlatform());
}

/**
 * Create a multicast UDP socket (API 11).
 *
 * @param options `platform` picks the adapter.
 * @returns The socket.
 *
 * @example
 * ```ts
 * const m = constructMulticastSocketInstance();
 * await m.close();
 * ```
 */
export function constructMulticastSocketInstance(options: ConstructOptions = {}): MulticastSocket {
  return new MulticastSocket(options.platform ?? autoSocketPlatform());
}

/**
 * Create a TCP client socket.
 *
 * @param options `platform` picks the adapter.
 * @returns The socket.
 *
 * @example
 * ```ts
 * const tcp = constructTCPSocketInstance();
 * await tcp.close();
 * ```
 */
export function constructTCPSocketInstance(options: ConstructOptions = {}): TCPSocket {
  return new TCPSocket(options.platform ?? autoSocketPlatform());
}

/**
 * Create a TCP server (API 10).
 *
 * @param options `platform` picks the adapter.
 * @returns The server.
 *
 * @example
 * ```ts
 * const server = constructTCPSocketServerInstance();
 * await server.listen({ address: "127.0.0.1", port: 0 });
 * await server.close();
 * ```
 */
export function constructTCPSocketServerInstance(
  options: ConstructOptions = {},
): TCPSocketServer {
  return new TCPSocketServer(options.platform ?? autoSocketPlatform());
}

/**
 * Create a Unix-domain client socket (API 11).
 *
 * @param options `platform` picks the adapter.
 * @returns The socket.
 *
 * @example
 * ```ts
 * const local = constructLocalSocketInstance();
 * await local.close();
 * ```
 */
export function constructLocalSocketInstance(options: ConstructOptions = {}): LocalSocket {
  return new LocalSocket(options.platform ?? autoSocketPlatform());
}

/**
 * Create a Unix-domain server (API 11).
 *
 * @param options `platform` picks the adapter.
 * @returns The server.
 *
 * @example
 * ```ts
 * const server = constructLocalSocketServerInstance();
 * await server.close();
 * ```
 */
export function constructLocalSocketServerInstance(
  options: ConstructOptions = {},
): LocalSocketServer {
  return new LocalSocketServer(options.platform ?? autoSocketPlatform());
}

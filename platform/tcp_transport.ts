/**
 * The TCP transport: channels over the runtime's TCP sockets (the socket
 * platform of `platform/auto.ts`), one TCP connection per channel, with
 * Nagle off and handles that never keep the process alive on their own.
 *
 * @module
 */
import type { BusinessError } from "../core/errors.ts";
import type {
  Channel,
  ChannelEvents,
  ChannelInfo,
  ListenEvents,
  PeerAddress,
  Transport,
  TransportListener,
} from "../core/device/channel.ts";
import type { IpEndpoint, SocketPlatform, StreamHandle } from "../core/socket/platform.ts";

/** The port TCP listens on when none is configured. */
export const DEFAULT_TCP_PORT = 38470;
/** The code a socket adapter reports for an address in use. */
const ADDRESS_IN_USE = 2301098;

/** Options of {@linkcode tcpTransport}. */
export interface TcpTransportOptions {
  /** Address to listen on. @default {"127.0.0.1"} */
  bind?: string;
  /** Port to listen on; 0 for any. @default {38470} */
  port?: number;
  /**
   * Whether `port` was asked for explicitly. When it was not and the default
   * port is taken, the transport listens on an ephemeral port instead.
   * @default {false}
   */
  portExplicit?: boolean;
}

/** One TCP connection as a channel. */
class TcpChannel implements Channel {
  readonly info: ChannelInfo;
  #handle: StreamHandle;

  constructor(handle: StreamHandle) {
    this.#handle = handle;
    const r = handle.remoteAddress;
    this.info = { kind: "tcp", mtu: 65535, remote: r ? endpointText(r) : "?" };
    (handle as { unref?: () => void }).unref?.();
    handle.setOption("noDelay", true);
  }

  write(bytes: Uint8Array): boolean {
    return this.#handle.write(bytes, "brief") !== false;
  }

  close(): void {
    void this.#handle.close().catch(() => {});
  }
}

function endpointText(e: IpEndpoint): string {
  return e.address.includes(":") ? `[${e.address}]:${e.port}` : `${e.address}:${e.port}`;
}

function family(address: string): "IPv4" | "IPv6" {
  return address.includes(":") ? "IPv6" : "IPv4";
}

function streamEvents(events: ChannelEvents) {
  return {
    onData: (bytes: Uint8Array) => events.onData(bytes),
    onDrain: () => events.onDrain(),
    onClose: (error?: BusinessError<unknown>) => events.onClose(error),
  };
}

/**
 * A TCP transport over a socket platform.
 *
 * @param sockets The runtime's sockets.
 * @param options Where to listen.
 * @returns The transport.
 */
export function tcpTransport(
  sockets: SocketPlatform,
  options: TcpTransportOptions = {},
): Transport {
  const bind = options.bind ?? "127.0.0.1";
  return {
    kind: "tcp",
    async listen(events: ListenEvents): Promise<TransportListener> {
      const on = {
        onConnection: (handle: StreamHandle) => {
          const ch = new TcpChannel(handle);
          return streamEvents(events.onChannel(ch));
        },
        onError: (e: BusinessError<unknown>) => events.onFailed(e),
      };
      const listen = (port: number) =>
        sockets.tcpListen({ address: bind, port, family: family(bind) }, on);
      let listener;
      try {
        listener = await listen(options.port ?? DEFAULT_TCP_PORT);
      } catch (e) {
        if (options.portExplicit || (e as BusinessError<unknown>).code !== ADDRESS_IN_USE) throw e;
        listener = await listen(0);
      }
      listener.unref();
      const at = listener.localAddress;
      return {
        address: { transport: "tcp", host: at?.address ?? bind, port: at?.port ?? 0 },
        close: () => listener.close(),
      };
    },
    async dial(address: PeerAddress, events: ChannelEvents): Promise<Channel> {
      const handle = await sockets.tcpConnect(
        { remote: { address: address.host, port: address.port, family: family(address.host) } },
        streamEvents(events),
      );
      return new TcpChannel(handle);
    },
  };
}

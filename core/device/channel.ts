/**
 * The channel contract: what a link needs from a physical path, and what a
 * transport (a way of making such paths: TCP, BLE GATT, an in-memory pipe in
 * tests) provides. This is the most important interface of the project:
 * every kind of channel satisfies it, the device driver (`driver.ts`) only
 * ever sees it, and adding a transport means adding one file that implements
 * it (`docs/architecture.md`).
 *
 * A channel carries bytes in order, both ways, until it closes. Writes never
 * block: `write` takes the bytes (copying what it cannot pass on at once) and
 * says when the writer should wait for `onDrain`.
 *
 * @module
 */

/** What a channel is, for metrics and logs. */
export interface ChannelInfo {
  /** The transport that made it: `tcp`, `ble`, `memory`, ... */
  readonly kind: string;
  /** Largest frame it carries, 23..65535 (TCP: 65535; BLE: from the ATT MTU). */
  readonly mtu: number;
  /** The far end, for logs (`192.0.2.7:38470`, a BLE address, ...). */
  readonly remote: string;
  /**
   * The link profile the channel speaks, when not linkweave's own (e.g.
   * `openharmony` over OpenHarmony's GATT service): no linkweave handshake
   * runs on it, so the transport must name the peer.
   */
  readonly profile?: string;
  /** The peer's device id, when the transport knows it (a BLE address). */
  readonly peer?: string;
}

/** What a channel tells its owner. Called from the channel's event loop turn, never reentrantly. */
export interface ChannelEvents {
  /**
   * Bytes arrived, in order. The view is valid during the call only: copy
   * what you keep.
   */
  onData(bytes: Uint8Array): void;
  /** The channel passed on everything it held: writing may go on. */
  onDrain(): void;
  /** The channel closed, or failed with `error`. Called once; nothing follows. */
  onClose(error?: Error): void;
}

/** One physical path to a peer. */
export interface Channel {
  /** What it is. */
  readonly info: ChannelInfo;
  /**
   * Write bytes. They are the caller's again when the call returns.
   *
   * @param bytes The bytes.
   * @returns `false` when the channel holds bytes it could not pass on yet:
   *   the caller should write no more until `onDrain`.
   */
  write(bytes: Uint8Array): boolean;
  /** Close: bytes already written are still sent, then the channel ends. */
  close(): void;
}

/** Where a peer can be reached over one transport. */
export interface PeerAddress {
  /** The transport (`tcp` when absent). */
  transport?: string;
  /** Host name, IP address, or transport-specific address (a BLE address). */
  host: string;
  /** Port (TCP), or 0 when the transport has none. */
  port: number;
}

/** A transport listening for channels from peers. */
export interface TransportListener {
  /** Where peers reach it (TCP: the bound address and port). */
  readonly address: PeerAddress;
  /** Stop listening; channels already accepted stay open. */
  close(): Promise<void>;
}

/** What a transport reports about its listener. */
export interface ListenEvents {
  /** A peer opened a channel: return the handlers of its events. */
  onChannel(channel: Channel): ChannelEvents;
  /** The listener died and accepts nothing more (a transient error is not reported). */
  onFailed(error: Error): void;
}

/** A way of making channels: it listens for peers and dials them. */
export interface Transport {
  /** Its kind, as in {@linkcode ChannelInfo.kind}. */
  readonly kind: string;
  /**
   * Listen for channels from peers.
   *
   * @param events Where new channels and a dead listener are reported.
   * @returns The listener.
   */
  listen(events: ListenEvents): Promise<TransportListener>;
  /**
   * Open a channel to a peer.
   *
   * @param address Where the peer is.
   * @param events The channel's events, active as soon as it connects.
   * @returns The channel, once connected; rejects when it cannot connect.
   */
  dial(address: PeerAddress, events: ChannelEvents): Promise<Channel>;
}

/** Finds addresses of peers this device has no static address for (discovery). */
export interface PeerFinder {
  /**
   * The address of a peer, if known.
   *
   * @param deviceId The peer.
   * @returns Its address.
   */
  lookup(deviceId: string): PeerAddress | undefined;
  /**
   * Every address known for a peer, the one `lookup` gives first (for
   * opening one channel of its link per address).
   *
   * @param deviceId The peer.
   * @returns Its addresses, possibly none.
   */
  addresses?(deviceId: string): PeerAddress[];
  /** Ask the network now (e.g. send an announcement that asks for answers). */
  announce(): void;
  /**
   * A dial to this address of the peer reached another device (the
   * handshake proved another key for the id): do not offer the address for
   * the peer again for a while. A forged announcement then costs one failed
   * dial, not every dial while its sender keeps announcing.
   *
   * @param deviceId The peer.
   * @param address The address dialled.
   */
  refuted?(deviceId: string, address: PeerAddress): void;
  /** Stop. */
  close(): Promise<void>;
}

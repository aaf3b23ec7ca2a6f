/**
 * The peer device of the daemon tests: an embedded device that lists the
 * daemon's device as a static peer, registers a caller ability (for
 * sessions to the daemon's applications) and serves "peerecho" (echoes
 * every message), for the applications to dial.
 *
 * @module
 */
import { createDevice, type Device } from "../../device.ts";
import type { UIAbility } from "../../ability_connection_manager.ts";

/** Options of {@linkcode startPeer}. */
export interface PeerOptions {
  /** The peer's device id. */
  id: string;
  /** Its TCP port. */
  port: number;
  /** The daemon's device: its id and TCP port on 127.0.0.1. */
  daemon: { id: string; port: number };
  /** The account both run in. */
  account: string;
  /** The ability the peer's sessions start from (`com.example.caller`). */
  caller: UIAbility;
}

/**
 * Start the peer.
 *
 * @param o Its id, port, the daemon's device, the account and the caller ability.
 * @returns The device (close it after the tests).
 */
export async function startPeer(o: PeerOptions): Promise<Device> {
  const peer = createDevice({
    deviceId: o.id,
    port: o.port,
    peers: [`${o.daemon.id}@127.0.0.1:${o.daemon.port}`],
    discovery: "off",
    account: o.account,
    daemon: false,
  });
  await peer.abilityConnectionManager.registerAbility(o.caller, {
    bundleName: "com.example.caller",
    moduleName: "entry",
    abilityName: "EntryAbility",
  });
  const echo = peer.createServer("peerecho");
  echo.on("connectionAccepted", (c) => c.on("dataReceived", (d: ArrayBuffer) => c.sendData(d)));
  echo.start();
  return peer;
}

/**
 * An application of the device daemon tests: its device comes from the
 * `LINKWEAVE_*` variables (`LINKWEAVE_DAEMON` names the daemon's socket), it
 * starts the linkEnhance server `LW_SERVER` (default `echo`) that echoes
 * every message, and registers the ability `LW_BUNDLE/entry/EntryAbility`
 * (default bundle `com.example.lw`) that accepts a collaboration (or
 * rejects it when the caller's `parameters.mode` is `reject`) and echoes
 * every text. It prints `{"ready":deviceId,"port":n}` once both serve, and
 * one JSON line per event. With `LW_STDIN=1` it reads commands from stdin:
 * `dial ID NAME` connects to server NAME of device ID and sends one message
 * (events `dialed`, `dialEcho`, `dialDisconnected`).
 *
 * @module
 */
import process from "node:process";
import { AbilityConstant, UIAbility } from "../../mod.ts";
import type { PeerInfo } from "../../ability_connection_manager.ts";
import { createDevice } from "../../device.ts";

const dev = createDevice();
const api = dev.abilityConnectionManager;

function log(event: Record<string, unknown>): void {
  console.log(JSON.stringify(event));
}

const server = dev.createServer(process.env.LW_SERVER ?? "echo");
server.on("connectionAccepted", (c) => {
  log({ event: "accepted", peer: c.getPeerDeviceId() });
  c.on("dataReceived", (data: ArrayBuffer) => c.sendData(data));
  c.on("disconnected", (reason: number) => log({ event: "disconnected", reason }));
});
server.start();

/** `dial ID NAME`: a linkEnhance connection from this application to a peer's server. */
function command(line: string): void {
  const [verb, id, name] = line.trim().split(" ");
  if (verb !== "dial") return;
  const c = dev.createConnection(id, name);
  c.on("connectResult", (r) => {
    log({ event: "dialed", success: r.success, reason: r.reason });
    if (r.success) c.sendData(new TextEncoder().encode("dial echo").buffer as ArrayBuffer);
  });
  c.on("dataReceived", (d: ArrayBuffer) => {
    log({ event: "dialEcho", text: new TextDecoder().decode(d) });
  });
  c.on("disconnected", (reason: number) => log({ event: "dialDisconnected", reason }));
  c.connect();
}

if (process.env.LW_STDIN === "1") {
  let pending = "";
  process.stdin.on("data", (b: Uint8Array) => {
    pending += new TextDecoder().decode(b);
    for (let i = pending.indexOf("\n"); i >= 0; i = pending.indexOf("\n")) {
      command(pending.slice(0, i));
      pending = pending.slice(i + 1);
    }
  });
}

class EntryAbility extends UIAbility {
  onCollaborate(wantParam: Record<string, unknown>): number {
    const p = wantParam["ohos.extra.param.key.supportCollaborateIndex"] as Record<string, unknown>;
    const peer = p["PeerInfo"] as PeerInfo;
    const option = p["ConnectOption"] as { parameters?: Record<string, string> };
    const token = p["ohos.dms.collabToken"] as string;
    log({ event: "collaborate", peer: peer.deviceId });
    if (option.parameters?.mode === "reject") {
      api.reject(token, "busy");
      return AbilityConstant.CollaborateResult.REJECT;
    }
    const id = api.createAbilityConnectionSession("daemonTest", this.context, peer, {
      needSendData: true,
    });
    api.on("receiveMessage", id, (info) => void api.sendMessage(id, info.msg!));
    api.on("disconnect", id, (info) => log({ event: "sessionEnded", reason: info.reason }));
    void api.acceptConnect(id, token).then(() => log({ event: "sessionAccepted" }));
    return AbilityConstant.CollaborateResult.ACCEPT;
  }
}

await api.registerAbility(new EntryAbility(), {
  bundleName: process.env.LW_BUNDLE ?? "com.example.lw",
  moduleName: "entry",
  abilityName: "EntryAbility",
});
const runtime = await dev.runtime();
log({ ready: runtime.deviceId, port: runtime.port });

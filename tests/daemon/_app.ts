/**
 * An application of the device daemon tests: its device comes from the
 * `LINKWEAVE_*` variables (`LINKWEAVE_DAEMON` names the daemon's socket), it
 * starts the linkEnhance server `LW_SERVER` (default `echo`) that echoes
 * every message, and registers the ability `LW_BUNDLE/entry/EntryAbility`
 * (default bundle `com.example.lw`) that accepts a collaboration (or
 * rejects it when the caller's `parameters.mode` is `reject`) and echoes
 * every text. It prints `{"ready":deviceId,"port":n}` once both serve, and
 * one JSON line per event.
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

// deno-fmt-ignore-file
// deno-lint-ignore-file
// Device B of the examples of OpenHarmony's `@ohos.distributedsched.abilityConnectionManager`:
// the acceptConnect example, unchanged but for the imports, the hilog and
// AppStorage stand-ins, and the last line that registers the ability (the
// system does that on OpenHarmony). Run it as a device:
// LINKWEAVE_DEVICE_ID=02:00:00:00:00:0B deno run -A examples/ability_sink_001.ts
import { AbilityConstant, UIAbility, type Want } from "../ability_connection_manager.ts";
import { abilityConnectionManager } from "../mod.ts";
import { AppStorage, hilog } from "./_ohos.ts";
import { run } from "./_ability_glue.ts";

export default class EntryAbility extends UIAbility {
onCreate(want: Want, launchParam: AbilityConstant.LaunchParam): void {
hilog.info(0x0000, 'testTag', '%{public}s', 'Ability onCreate');
}
onCollaborate(wantParam: Record<string, Object>): AbilityConstant.CollaborateResult {
hilog.info(0x0000, 'testTag', '%{public}s', 'on collaborate');
let param = wantParam["ohos.extra.param.key.supportCollaborateIndex"] as Record<string, Object>
this.onCollab(param);
return 0;
}
onCollab(collabParam: Record<string, Object>) {
const sessionId = this.createSessionFromWant(collabParam);
if (sessionId == -1) {
hilog.info(0x0000, 'testTag', 'Invalid session ID.');
return;
}
const collabToken = collabParam["ohos.dms.collabToken"] as string;
abilityConnectionManager.acceptConnect(sessionId, collabToken).then(() => {
hilog.info(0x0000, 'testTag', 'acceptConnect success');
}).catch(() => {
hilog.error(0x0000, 'testTag', 'failed');
})
}
createSessionFromWant(collabParam: Record<string, Object>): number {
let sessionId = -1;
const peerInfo = collabParam["PeerInfo"] as abilityConnectionManager.PeerInfo;
if (peerInfo == undefined) {
return sessionId;
}
const options = collabParam["ConnectOption"] as abilityConnectionManager.ConnectOptions;
try {
sessionId = abilityConnectionManager.createAbilityConnectionSession("collabTest", this.context, peerInfo, options);
AppStorage.setOrCreate('sessionId', sessionId);
hilog.info(0x0000, 'testTag', 'createSession sessionId is' + sessionId);
} catch (error) {
hilog.error(0x0000, 'testTag', error);
}
return sessionId;
}
}

await run(new EntryAbility());

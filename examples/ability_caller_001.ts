// deno-fmt-ignore-file
// deno-lint-ignore-file
// Device A of the examples of OpenHarmony's `@ohos.distributedsched.abilityConnectionManager`:
// the createSession (device A), on/off, connect, getPeerInfoById,
// sendMessage, sendData, disconnect and destroy examples, in that order,
// unchanged but for the imports, the hilog stand-in, the UI lines (the
// `@Entry @Component struct` is a class, `getUIContext().getHostContext()`
// is the registered ability's context), and the glue marked "glue" that
// registers this app's ability and waits between the steps. Run it with the
// peer in LINKWEAVE_PEERS:
// LINKWEAVE_PEERS=02:00:00:00:00:0B@127.0.0.1:38470 deno run -A examples/ability_caller_001.ts
import { abilityConnectionManager, distributedDeviceManager } from "../mod.ts";
import { UIAbility } from "../ability_connection_manager.ts";
import { hilog, logged, util } from "./_ohos.ts";
import { ABILITY } from "./_ability_glue.ts";

// glue: this application's ability, registered as the system would.
const ability = new UIAbility();
await abilityConnectionManager.registerAbility(ability, ABILITY);

let dmClass: distributedDeviceManager.DeviceManager; function initDmClass(): void { try { dmClass = distributedDeviceManager.createDeviceManager('com.example.remotephotodemo'); } catch (err) { hilog.error(0x0000, 'testTag', 'createDeviceManager err: ' + JSON.stringify(err)); } } function getRemoteDeviceId(): string | undefined { initDmClass(); if (typeof dmClass === 'object' && dmClass !== null) { hilog.info(0x0000, 'testTag', 'getRemoteDeviceId begin'); let list = dmClass.getAvailableDeviceListSync(); if (typeof (list) === 'undefined' || typeof (list.length) === 'undefined') { hilog.info(0x0000, 'testTag', 'getRemoteDeviceId err: list is null'); return; } if (list.length === 0) { hilog.info(0x0000, 'testTag', 'getRemoteDeviceId err: list is empty'); return; } return list[0].networkId; } else { hilog.info(0x0000, 'testTag', 'getRemoteDeviceId err: dmClass is null'); return; } } class Index { createSession(): void { // Define peer device information.
 const peerInfo: abilityConnectionManager.PeerInfo = { deviceId: getRemoteDeviceId()!, bundleName: 'com.example.remotephotodemo', moduleName: 'entry', abilityName: 'EntryAbility', serviceName: 'collabTest' }; const myRecord: Record<string, string> = { "newKey1": "value1", }; // Define connection options.
 const connectOptions: abilityConnectionManager.ConnectOptions = { needSendData: true, startOptions: abilityConnectionManager.StartOptionParams.START_IN_FOREGROUND, parameters: myRecord }; let context = ability.context; try { let sessionId = abilityConnectionManager.createAbilityConnectionSession("collabTest", context, peerInfo, connectOptions); hilog.info(0x0000, 'testTag', 'createSession sessionId is', sessionId); } catch (error) { hilog.error(0x0000, 'testTag', error); } } build() { } }

new Index().createSession(); // glue

{
let sessionId = 100;
abilityConnectionManager.on("connect", sessionId,(callbackInfo) => {
hilog.info(0x0000, 'testTag', 'session connect, sessionId is', callbackInfo.sessionId);
});
}
{
let sessionId = 100;
abilityConnectionManager.on("disconnect", sessionId,(callbackInfo) => {
hilog.info(0x0000, 'testTag', 'session disconnect, sessionId is', callbackInfo.sessionId);
});
}
{
let sessionId = 100;
abilityConnectionManager.on("receiveMessage", sessionId,(callbackInfo) => {
hilog.info(0x0000, 'testTag', 'receiveMessage, sessionId is', callbackInfo.sessionId);
});
}
{
let sessionId = 100;
abilityConnectionManager.on("receiveData", sessionId,(callbackInfo) => {
hilog.info(0x0000, 'testTag', 'receiveData, sessionId is', callbackInfo.sessionId);
});
}

{
let sessionId = 100;
abilityConnectionManager.connect(sessionId).then((ConnectResult) => {
if (!ConnectResult.isConnected) {
hilog.info(0x0000, 'testTag', 'connect failed');
return;
}
}).catch(() => {
hilog.error(0x0000, 'testTag', "connect failed");
})
}

// glue: connected, or refused.
await Promise.race([logged(/session connect, sessionId is 100/), logged(/connect failed/)]);

{
hilog.info(0x0000, 'testTag', 'getPeerInfoById called');
let sessionId = 100;
const peerInfo = abilityConnectionManager.getPeerInfoById(sessionId);
console.log(JSON.stringify({ peerInfo })); // glue
}

{
let sessionId = 100;
abilityConnectionManager.sendMessage(sessionId, "message send success").then(() => {
hilog.info(0x0000, 'testTag', "sendMessage success");
}).catch(() => {
hilog.error(0x0000, 'testTag', "connect failed");
})
}
await Promise.race([logged(/sendMessage success/), logged(/E .*connect failed/)]); // glue

{
let textEncoder = util.TextEncoder.create("utf-8");
const arrayBuffer = textEncoder.encodeInto("data send success");
let sessionId = 100;
abilityConnectionManager.sendData(sessionId, arrayBuffer.buffer).then(() => {
hilog.info(0x0000, 'testTag', "sendMessage success");
}).catch(() => {
hilog.error(0x0000, 'testTag', "sendMessage failed");
})
}
await Promise.race([logged(/sendMessage success/, 2), logged(/sendMessage failed/)]); // glue

{
let sessionId = 100;
abilityConnectionManager.off("connect", sessionId);
}
{
let sessionId = 100;
abilityConnectionManager.off("receiveMessage", sessionId);
}
{
let sessionId = 100;
abilityConnectionManager.off("receiveData", sessionId);
}

{
hilog.info(0x0000, 'testTag', 'disconnectRemoteAbility begin');
let sessionId = 100;
abilityConnectionManager.disconnect(sessionId);
}

{
hilog.info(0x0000, 'testTag', 'destroyAbilityConnectionSession called');
let sessionId = 100;
abilityConnectionManager.destroyAbilityConnectionSession(sessionId);
}

await ability.context.terminateSelf(); // glue: the app ends

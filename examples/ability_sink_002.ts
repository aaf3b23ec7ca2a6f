// deno-fmt-ignore-file
// deno-lint-ignore-file
// Device B of the examples of OpenHarmony's `@ohos.abilityConnectionManager` (older edition) and
// its system API: the older edition's acceptConnect example (it reads the plural
// "ConnectOptions" and becomes the stream's source), then, when device A
// asks (glue), the system API's createStream example (a source with a camera) and
// the system API's destroyStream example. Unchanged but for the imports, the hilog,
// AppStorage and camera stand-ins, and the glue marked "glue".
import { AbilityConstant, UIAbility, type Want } from "../ability_connection_manager.ts";
import { abilityConnectionManager } from "../mod.ts";
import { AppStorage, CameraService, hilog } from "./_ohos.ts";
import { run } from "./_ability_glue.ts";

  export default class EntryAbility extends UIAbility {
    onCreate(want: Want, launchParam: AbilityConstant.LaunchParam): void {
      hilog.info(0x0000, 'testTag', '%{public}s', 'Ability onCreate');
    }

    onCollaborate(wantParam: Record<string, Object>): AbilityConstant.OnCollaborateResult {
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
        hilog.error("failed");
      })
    }

    createSessionFromWant(collabParam: Record<string, Object>): number {
      let sessionId = -1;
      const peerInfo = collabParam["PeerInfo"] as abilityConnectionManager.PeerInfo;
      if (peerInfo == undefined) {
        return sessionId;
      }

      const options = collabParam["ConnectOptions"] as abilityConnectionManager.ConnectOptions;
      options.needSendBigData = true;
      options.needSendStream = true;
      options.needReceiveStream = false;
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

// the system API's createStream example (the glue calls it with the session id).
function createStreamExample(sessionId: number) {
  hilog.info(0x0000, 'testTag', 'startStream');
  abilityConnectionManager.createStream(sessionId ,{name: 'receive', role: 0}).then(async (streamId) => {
    let surfaceParam: abilityConnectionManager.SurfaceParam = {
      width: 640,
      height: 480,
      format: 1
    }
    let surfaceId = abilityConnectionManager.getSurfaceId(streamId, surfaceParam);
    hilog.info(0x0000, 'testTag', 'surfaceId is'+surfaceId);
    AppStorage.setOrCreate<string>('surfaceId', surfaceId);
    await CameraService.initCamera(surfaceId, 0);
    abilityConnectionManager.startStream(streamId);
    AppStorage.setOrCreate<number>('streamId', streamId); // glue
  })
}

// the system API's destroyStream example (its parameter is the stream id, whatever its name).
function destroyStreamExample(sessionId: number) {
  hilog.info(0x0000, 'testTag', 'destroyStream called');
  abilityConnectionManager.destroyStream(sessionId)
}

// glue: register, and run the stream examples when device A asks.
await run(new EntryAbility(), (id, text) => {
  if (text === "start-camera") createStreamExample(id);
  if (text === "stop-camera") destroyStreamExample(AppStorage.get<number>('streamId')!);
});

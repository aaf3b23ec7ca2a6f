// deno-fmt-ignore-file
// deno-lint-ignore-file
// Device A of the examples of OpenHarmony's `@ohos.abilityConnectionManager` (older edition) and
// its system API: the older edition's createSession (device A) and connect
// examples, the system API's on('receiveData' | 'receiveImage'), sendData and
// sendImage examples, a sink for device B's stream (glue: the documents have no
// sink example), then the older edition's disconnect and destroy examples. Unchanged but
// for the imports, the hilog and kit stand-ins, the UI lines (the code that
// reads `this.sessionId` sits in a class; `getContext(this)` is the
// registered ability's context), the placeholder `"sinkDeviceId"` (the
// example's own `getRemoteDeviceId()!`), and the glue marked "glue".
import { abilityConnectionManager, distributedDeviceManager } from "../mod.ts";
import { UIAbility, surface } from "../ability_connection_manager.ts";
import { image } from "../mod.ts";
import { fs, hilog, logged, photoAccessHelper, util } from "./_ohos.ts";
import { ABILITY } from "./_ability_glue.ts";

// glue: this application's ability, registered as the system would.
const ability = new UIAbility();
await abilityConnectionManager.registerAbility(ability, ABILITY);

   let dmClass: distributedDeviceManager.DeviceManager;
 
   function initDmClass(): void {
     try {
       dmClass = distributedDeviceManager.createDeviceManager('com.example.remotephotodemo');
     } catch (err) {
       hilog.error(0x0000, 'testTag', 'createDeviceManager err: ' + JSON.stringify(err));
     }
   }
 
   function getRemoteDeviceId(): string | undefined {
     initDmClass();
     if (typeof dmClass === 'object' && dmClass !== null) {
       hilog.info(0x0000, 'testTag', 'getRemoteDeviceId begin');
       let list = dmClass.getAvailableDeviceListSync();
       if (typeof (list) === 'undefined' || typeof (list.length) === 'undefined') {
         hilog.info(0x0000, 'testTag', 'getRemoteDeviceId err: list is null');
         return;
       }
       if (list.length === 0) {
         hilog.info(0x0000, 'testTag', 'getRemoteDeviceId err: list is empty');
         return;
       }
       return list[0].networkId;
     } else {
       hilog.info(0x0000, 'testTag', 'getRemoteDeviceId err: dmClass is null');
       return;
     }
   }

class Page {
  sessionId = -1;

  createSession() {
   const peerInfo: abilityConnectionManager.PeerInfo = {
     deviceId: getRemoteDeviceId()!,
     bundleName: 'com.example.remotephotodemo',
     moduleName: 'entry',
     abilityName: 'EntryAbility',
     serviceName: 'collabTest'
   };
   const myRecord: Record<string, string> = {
     "newKey1": "value1",
   };
 
   const options: Record<string, string> = {
     'ohos.collabrate.key.start.option': 'ohos.collabrate.value.foreground',
   };
 
   const connectOptions: abilityConnectionManager.ConnectOptions = {
     needSendBigData: true,
     needSendStream: false,
     needReceiveStream: true,
     options: options,
     parameters: myRecord
   };
   let context = ability.context;
   try {
     this.sessionId = abilityConnectionManager.createAbilityConnectionSession("collabTest", context, peerInfo, connectOptions);
     hilog.info(0x0000, 'testTag', 'createSession sessionId is', this.sessionId);
   } catch (error) {
     hilog.error(0x0000, 'testTag', error);
   }
  }

  connect() {
  abilityConnectionManager.connect(this.sessionId).then((ConnectResult) => {
    if (!ConnectResult.isConnected) {
      hilog.info(0x0000, 'testTag', 'connect failed');
      return;
    }
    hilog.info(0x0000, 'testTag', 'connected'); // glue
  }).catch(() => {
    hilog.error(0x0000, 'testTag', "connect failed");
  })
  }

  listen() {
  abilityConnectionManager.on("receiveData", this.sessionId,(callbackInfo) => {
    hilog.info(0x0000, 'testTag', 'session receiveData, sessionId is', callbackInfo.sessionId);
  });

  abilityConnectionManager.on("receiveImage", this.sessionId,(callbackInfo) => {
    hilog.info(0x0000, 'testTag', 'session receiveImage, sessionId is', callbackInfo.sessionId);
  });
  }

  sendData() {
  let textEncoder = util.TextEncoder.create("utf-8");
  const arrayBuffer  = textEncoder.encodeInto("data send success");

  abilityConnectionManager.sendData(this.sessionId, arrayBuffer.buffer).then(() => {
    hilog.info(0x0000, 'testTag', "sendMessage success");
  }).catch(() => {
    hilog.info(0x0000, 'testTag', "sendMessage failed");
  })
  }

  sendImage() {
  try {
    let photoSelectOptions = new photoAccessHelper.PhotoSelectOptions();
    photoSelectOptions.MIMEType = photoAccessHelper.PhotoViewMIMETypes.IMAGE_TYPE;
    photoSelectOptions.maxSelectNumber = 5;
    let photoPicker = new photoAccessHelper.PhotoViewPicker();
    photoPicker.select(photoSelectOptions).then((photoSelectResult) => {
      if (!photoSelectResult) {
        hilog.error(0x0000, 'testTag', 'photoSelectResult = null');
      return;
      }

      let file = fs.openSync(photoSelectResult.photoUris[0], fs.OpenMode.READ_ONLY);
      hilog.info(0x0000, 'testTag', 'file.fd:' + file.fd);

      let imageSourceApi: image.ImageSource = image.createImageSource(file.fd);
      if (imageSourceApi) {
        imageSourceApi.createPixelMap().then((pixelMap) => {
          abilityConnectionManager.sendImage(this.sessionId, pixelMap)
            .then(() => hilog.info(0x0000, 'testTag', 'image sent')); // glue
        });
      } else {
        hilog.info(0x0000, 'testTag', 'imageSourceApi is undefined');
      }
    })
  } catch (error) {
    hilog.error(0x0000, 'testTag', 'photoPicker failed with error: ' + JSON.stringify(error));
  }
  }

  disconnect() {
  hilog.info(0x0000, 'testTag', 'disconnectRemoteAbility begin');
  if (this.sessionId == -1) {
    hilog.info(0x0000, 'testTag', 'Invalid session ID.');
  return;
  }
  abilityConnectionManager.disconnect(this.sessionId);
  }

  destroy() {
  hilog.info(0x0000, 'testTag', 'destroyAbilityConnectionSession called');
  abilityConnectionManager.destroyAbilityConnectionSession(this.sessionId);
  }
}

// glue: the steps in order.
const page = new Page();
page.createSession();
page.connect();
await Promise.race([logged(/I .*connected/), logged(/connect failed/)]);
page.listen();
page.sendData();
await logged(/sendMessage (success|failed)/);
page.sendImage();
await logged(/image sent/);
// glue: a sink for B's camera stream.
const streamId = await abilityConnectionManager.createStream(page.sessionId, { name: "receive", role: 1 });
const display = surface.createSurface();
let frames = 0;
display.on("frame", () => frames++);
abilityConnectionManager.setSurfaceId(streamId, display.surfaceId, { width: 640, height: 480 });
abilityConnectionManager.startStream(streamId);
await abilityConnectionManager.sendMessage(page.sessionId, "start-camera");
for (let i = 0; i < 150 && frames < 20; i++) await new Promise((r) => setTimeout(r, 20));
console.log(JSON.stringify({ frames }));
await abilityConnectionManager.sendMessage(page.sessionId, "stop-camera");
await new Promise((r) => setTimeout(r, 100));
page.disconnect();
page.destroy();
await ability.context.terminateSelf();

/**
 * Device A of the network-namespace ability test: a process (configured by
 * `LINKWEAVE_*`) that registers `com.example.lw/entry/EntryAbility`,
 * collaborates with the same ability on `LW_PEER` (`tests/ability/_peer.ts`),
 * checks 50 texts come back in order and 8 MiB of data arrive intact, prints
 * `{"step":"connected",...}`, then waits for the session to end and prints
 * `{"disconnect":reason}`.
 *
 * @module
 */
import { createHash } from "node:crypto";
import process from "node:process";
import { createDevice } from "../../device.ts";
import { type EventCallbackInfo, UIAbility } from "../../ability_connection_manager.ts";

const dev = createDevice();
const m = dev.abilityConnectionManager;
const ability = new UIAbility();
const info = { bundleName: "com.example.lw", moduleName: "entry", abilityName: "EntryAbility" };
await m.registerAbility(ability, info);
const id = m.createAbilityConnectionSession("lwTest", ability.context, {
  deviceId: process.env.LW_PEER!,
  ...info,
}, { needSendData: true });
const result = await m.connect(id);
if (!result.isConnected) {
  console.log(JSON.stringify({ step: "failed", result }));
  process.exit(1);
}
const texts: string[] = [];
let hashReply: (s: string) => void = () => {};
m.on("receiveMessage", id, (i: EventCallbackInfo) => {
  if (i.msg!.startsWith("{")) hashReply(i.msg!);
  else texts.push(i.msg!);
});
const sent = Array.from({ length: 50 }, (_, i) => `text ${i}`);
for (const t of sent) await m.sendMessage(id, t);
while (texts.length < 50) await new Promise((r) => setTimeout(r, 10));
const data = new Uint8Array(8 * 1024 * 1024).map((_, i) => (i * 31) & 255);
const reply = new Promise<string>((r) => hashReply = r);
await m.sendData(id, data.buffer);
const r = JSON.parse(await reply);
const sha256 = createHash("sha256").update(data).digest("hex");
const gone = new Promise<EventCallbackInfo>((resolve) => m.on("disconnect", id, resolve));
console.log(JSON.stringify({
  step: "connected",
  inOrder: texts.join() === sent.join(),
  intact: r.sha256 === sha256 && r.bytes === data.length,
}));
const info2 = await gone;
console.log(JSON.stringify({ disconnect: info2.reason }));
await ability.context.terminateSelf();
await dev.close();

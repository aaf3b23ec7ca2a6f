// deno-fmt-ignore-file
// deno-lint-ignore-file
// Device B of the reject example of OpenHarmony's abilityConnectionManager documentation, unchanged but for the imports, the
// hilog stand-in and the last line that registers the ability.
import { AbilityConstant, UIAbility, type Want} from "../ability_connection_manager.ts";
import { abilityConnectionManager } from "../mod.ts";
import { hilog } from "./_ohos.ts";
import { run } from "./_ability_glue.ts";

export default class EntryAbility extends UIAbility {
onCollaborate(wantParam: Record<string, Object>): AbilityConstant.CollaborateResult {
hilog.info(0x0000, 'testTag', '%{public}s', 'on collaborate');
let collabParam = wantParam["ohos.extra.param.key.supportCollaborateIndex"] as Record<string, Object>;
const collabToken = collabParam["ohos.dms.collabToken"] as string;
const reason = "test";
hilog.info(0x0000, 'testTag', 'reject begin');
abilityConnectionManager.reject(collabToken, reason);
return AbilityConstant.CollaborateResult.REJECT;
}
}

await run(new EntryAbility());

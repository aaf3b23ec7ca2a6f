/**
 * What the ability examples run around the documentation's code: registering the
 * example's ability with the device (OpenHarmony's system does that), and
 * reporting what the session it creates receives, as JSON lines, so the
 * tests can check it.
 *
 * @module
 */
import { abilityConnectionManager } from "../mod.ts";
import { registerAbility, type UIAbility } from "../ability_connection_manager.ts";
import { AppStorage } from "./_ohos.ts";

/** The ability every example registers. */
export const ABILITY = {
  bundleName: "com.example.remotephotodemo",
  moduleName: "entry",
  abilityName: "EntryAbility",
};

/**
 * Register an ability, print `{"ready":true}`, and once the documentation's code puts
 * a session id in AppStorage, report what that session receives.
 *
 * @param ability The example's ability.
 * @param onMessage Called with each text the session receives.
 */
export async function run(
  ability: UIAbility,
  onMessage?: (id: number, text: string) => void,
): Promise<void> {
  await registerAbility(ability, ABILITY);
  console.log(JSON.stringify({ ready: true }));
  AppStorage.watch<number>("sessionId", (id) => {
    const report = (o: Record<string, unknown>) => console.log(JSON.stringify({ b: o }));
    abilityConnectionManager.on("receiveMessage", id, (i) => {
      report({ message: i.msg });
      onMessage?.(id, i.msg!);
    });
    abilityConnectionManager.on("receiveData", id, (i) => {
      report({ data: new TextDecoder().decode(i.data), bytes: i.data!.byteLength });
    });
    abilityConnectionManager.on("receiveImage", id, (i) => {
      report({ image: i.image!.getImageInfoSync().size });
    });
    abilityConnectionManager.on("disconnect", id, (i) => report({ disconnect: i.reason }));
  });
}

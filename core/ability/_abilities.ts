/**
 * The registry of a device's local abilities: their key (what a device
 * serves them by), their registration (context, `onCreate`) and their end
 * (`terminateSelf`, `onDestroy`). A registered ability keeps the process
 * alive until it ends.
 *
 * @module
 */
import { trace } from "../trace.ts";
import {
  type AbilityCallbacks,
  AbilityConstant,
  type AbilityInfo,
  type UIAbility,
  UIAbilityContext,
  type Want,
} from "./ability.ts";
import { checkString, describe, invalid } from "./_check.ts";
import type { AbilityRegistration, AbilityRuntime } from "./mod.ts";

/** A registered ability. */
export interface Registered {
  /** The instance. */
  ability: UIAbility;
  /** Its names. */
  info: AbilityInfo;
  /** The context it was given. */
  context: UIAbilityContext;
}

/**
 * The name an ability is served by (`DeviceSurface.serve`): its bundle,
 * module and ability names joined by NUL characters.
 *
 * @param bundle The bundle name.
 * @param module The module name.
 * @param ability The ability name.
 * @returns The key.
 */
export function abilityKey(bundle: string, module: string, ability: string): string {
  return `${bundle}\u0000${module}\u0000${ability}`;
}

/** The abilities registered on a device, by key and by context. */
export class AbilityRegistry {
  #rt: AbilityRuntime;
  #abilities = new Map<string, Registered>();
  #contexts = new WeakMap<UIAbilityContext, Registered>();
  #ended: (reg: Registered) => void;

  /**
   * @param rt The device's runtime (its host).
   * @param ended Called when an ability ends, once it is out of the registry
   *   and before its `onDestroy`.
   */
  constructor(rt: AbilityRuntime, ended: (reg: Registered) => void) {
    this.#rt = rt;
    this.#ended = ended;
  }

  /**
   * The ability registered with a key.
   *
   * @param key Its {@linkcode abilityKey}.
   * @returns The ability, if registered.
   */
  get(key: string): Registered | undefined {
    return this.#abilities.get(key);
  }

  /**
   * Whether an ability is registered with a key.
   *
   * @param key Its {@linkcode abilityKey}.
   * @returns Whether it is.
   */
  has(key: string): boolean {
    return this.#abilities.has(key);
  }

  /**
   * The ability a context was given to (also after it ended).
   *
   * @param context The context.
   * @returns The ability, if the context is one of ours.
   */
  ofContext(context: UIAbilityContext): Registered | undefined {
    return this.#contexts.get(context);
  }

  /**
   * Check the context argument of `createAbilityConnectionSession`.
   *
   * @param context The argument.
   * @throws {ParameterError} 401 when it is not the context of a registered ability.
   */
  checkContext(context: unknown): void {
    const reg = context instanceof UIAbilityContext ? this.#contexts.get(context) : undefined;
    if (
      reg === undefined ||
      !this.#abilities.has(abilityKey(reg.info.bundleName, reg.info.moduleName, reg.info.name))
    ) {
      throw invalid(
        "Invalid context: expected the context of a registered ability (ability.context after registerAbility)",
      );
    }
  }

  /**
   * The keys of the registered abilities.
   *
   * @returns The keys.
   */
  keys(): IterableIterator<string> {
    return this.#abilities.keys();
  }

  /**
   * The registered abilities.
   *
   * @returns The abilities.
   */
  values(): IterableIterator<Registered> {
    return this.#abilities.values();
  }

  /**
   * Register an ability (the checks and work of the manager's
   * `registerAbility`, all but starting the device).
   *
   * @param ability The instance.
   * @param info Its bundle, module and ability names.
   * @throws {ParameterError} 401 for a bad argument or an ability registered twice.
   */
  register(ability: UIAbility, info: AbilityRegistration): void {
    if (typeof ability !== "object" || ability === null) {
      throw invalid(`Invalid ability: expected a UIAbility, got ${describe(ability)}`);
    }
    if (typeof info !== "object" || info === null) {
      throw invalid(`Invalid info: expected { bundleName, moduleName, abilityName }`);
    }
    const bundleName = checkString(info.bundleName, "bundleName", { nonEmpty: true });
    const moduleName = checkString(info.moduleName, "moduleName", { nonEmpty: true });
    const abilityName = checkString(info.abilityName, "abilityName", { nonEmpty: true });
    const key = abilityKey(bundleName, moduleName, abilityName);
    if (this.#abilities.has(key)) {
      throw invalid(
        `Cannot register ability "${bundleName}/${moduleName}/${abilityName}": it is registered already`,
      );
    }
    if ([...this.#abilities.values()].some((r) => r.ability === ability)) {
      throw invalid("Cannot register an ability instance twice");
    }
    const abilityInfo: AbilityInfo = { bundleName, moduleName, name: abilityName };
    const context = new UIAbilityContext(abilityInfo, () => this.#terminate(key));
    const reg: Registered = { ability, info: abilityInfo, context };
    this.#abilities.set(key, reg);
    this.#contexts.set(context, reg);
    this.#rt.host.hold();
    ability.context = context;
    const want: Want = { bundleName, moduleName, abilityName };
    ability.launchWant = want;
    try {
      (ability as AbilityCallbacks).onCreate?.(want, {
        launchReason: AbilityConstant.LaunchReason.START_ABILITY,
      });
    } catch (error) {
      console.error("linkweave: onCreate threw:", error);
    }
    trace("ability.registered", { bundleName, moduleName, abilityName });
  }

  async #terminate(key: string): Promise<void> {
    const reg = this.#abilities.get(key);
    if (reg === undefined) return;
    this.#abilities.delete(key);
    this.#ended(reg);
    this.#rt.host.release();
    try {
      await (reg.ability as AbilityCallbacks).onDestroy?.();
    } catch (error) {
      console.error("linkweave: onDestroy threw:", error);
    }
  }

  /** Forget every ability (the device is closing): none keeps the process alive any more. */
  clear(): void {
    for (const _ of this.#abilities) this.#rt.host.release();
    this.#abilities.clear();
  }
}

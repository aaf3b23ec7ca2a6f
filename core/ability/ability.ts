/**
 * OpenHarmony's application model, as much of it as collaboration needs on
 * Linux (`@kit.AbilityKit`): a {@linkcode UIAbility} base class whose
 * instances get a {@linkcode UIAbilityContext} once registered, the
 * {@linkcode AbilityConstant} values, and the {@linkcode Want} type.
 *
 * On OpenHarmony the system starts an ability and calls `onCollaborate`; on
 * Linux the application registers its ability with `registerAbility` (the
 * root module `ability_connection_manager.ts`) and the device runtime calls
 * `onCollaborate` on that instance when a peer asks to collaborate with it.
 *
 * @module
 */

/** Constants of the application model. */
export const AbilityConstant = {
  /** What `onCollaborate` returns (API 18). */
  CollaborateResult: {
    /** Collaboration accepted. */
    ACCEPT: 0,
    /** Collaboration rejected. */
    REJECT: 1,
  },
  /** What `onCollaborate` returned in API 16 (the same values). */
  OnCollaborateResult: {
    /** Collaboration accepted. */
    ACCEPT: 0,
    /** Collaboration rejected. */
    REJECT: 1,
  },
  /** Why an ability was started. */
  LaunchReason: {
    /** Unknown. */
    UNKNOWN: 0,
    /** Started by `startAbility` (on Linux: by `registerAbility`). */
    START_ABILITY: 1,
  },
} as const;

/** Types of {@linkcode AbilityConstant}, by OpenHarmony's names. */
export declare namespace AbilityConstant {
  /** What `onCollaborate` returns: 0 (accept) or 1 (reject). */
  export type CollaborateResult = number;
  /** The API 16 name of {@linkcode CollaborateResult}. */
  export type OnCollaborateResult = number;
  /** Why an ability was started. */
  export interface LaunchParam {
    /** `AbilityConstant.LaunchReason`. */
    launchReason: number;
  }
}

/** Which ability: what `registerAbility` is told and `context.abilityInfo` says. */
export interface AbilityInfo {
  /** The application's bundle name. */
  bundleName: string;
  /** The module name. */
  moduleName: string;
  /** The ability's name. */
  name: string;
}

/** A request to start or address an ability. */
export interface Want {
  /** The device (empty: this one). */
  deviceId?: string;
  /** The bundle name. */
  bundleName?: string;
  /** The module name. */
  moduleName?: string;
  /** The ability name. */
  abilityName?: string;
  /** Extra parameters. */
  parameters?: Record<string, unknown>;
}

/**
 * The context of a registered ability: what `createAbilityConnectionSession`
 * takes to know which local ability a session belongs to.
 */
export class UIAbilityContext {
  /** The ability this context belongs to. */
  readonly abilityInfo: AbilityInfo;
  #terminate: () => Promise<void>;

  /**
   * @internal Made by `registerAbility`.
   * @param info The ability.
   * @param terminate What `terminateSelf` does.
   */
  constructor(info: AbilityInfo, terminate: () => Promise<void>) {
    this.abilityInfo = Object.freeze({ ...info });
    this.#terminate = terminate;
  }

  /**
   * End the ability: its sessions are destroyed (peers see `disconnect` with
   * `PEER_APP_EXIT`), it receives no more collaboration requests, and it no
   * longer keeps the process alive. `onDestroy` is called.
   *
   * @returns When done.
   */
  terminateSelf(): Promise<void> {
    return this.#terminate();
  }
}

/**
 * What an ability may implement (OpenHarmony's lifecycle callbacks that
 * collaboration uses). They are not declared on {@linkcode UIAbility}, so a
 * subclass defines them exactly as OpenHarmony's examples do (no `override`).
 */
export interface AbilityCallbacks {
  /** Called by `registerAbility`, once, with the Want and why it started. */
  onCreate?(want: Want, launchParam: AbilityConstant.LaunchParam): void;
  /** Called when the ability ends (`context.terminateSelf()`). */
  onDestroy?(): void | Promise<void>;
  /**
   * Called when a peer application asks to collaborate: create a session
   * with the `PeerInfo` and `ConnectOption` found under
   * `"ohos.extra.param.key.supportCollaborateIndex"`, then `acceptConnect`
   * with the token `"ohos.dms.collabToken"`, or `reject`. Returns
   * `AbilityConstant.CollaborateResult`. Without it, a peer's `connect`
   * ends with `PEER_ABILITY_NO_ONCOLLABORATE`.
   */
  onCollaborate?(wantParam: Record<string, unknown>): number;
}

/**
 * An ability: subclass it, implement `onCollaborate` (and `onCreate`,
 * `onDestroy` if wanted; see {@linkcode AbilityCallbacks}), and register an
 * instance with `registerAbility`.
 *
 * @example
 * ```ts
 * class EntryAbility extends UIAbility {
 *   onCollaborate(wantParam: Record<string, Object>): AbilityConstant.CollaborateResult {
 *     return AbilityConstant.CollaborateResult.REJECT;
 *   }
 * }
 * new EntryAbility();
 * ```
 */
export class UIAbility {
  /** The ability's context, set by `registerAbility`. */
  context!: UIAbilityContext;
  /** The Want it was started with, set by `registerAbility`. */
  launchWant?: Want;
}

/**
 * Collaboration requests: the request (hello) a caller sends, with its token,
 * and, on the callee's side, the requests
 * that wait for the app's answer (`acceptConnect` or `reject`), keyed by
 * their token, with the `onCollaborate` call that asks the app.
 *
 * @module
 */
import { ErrorCode } from "../error_codes.ts";
import type { IncomingRequest, Port } from "../device/driver.ts";
import { trace } from "../trace.ts";
import { type AbilityCallbacks, AbilityConstant, type AbilityInfo } from "./ability.ts";
import type { SessionOptions } from "./_session_port.ts";
import { type Hello, WIRE_VERSION } from "./wire.ts";
import { abilityKey, type AbilityRegistry } from "./_abilities.ts";
import { Incoming } from "./_incoming.ts";
import { COLLAB_TIMEOUT, ConnectErrorCode, type PeerInfo, StartOptionParams } from "./types.ts";
import type { AbilityRuntime } from "./mod.ts";

/** A collaboration token: 48 hex characters, as OpenHarmony's, but random. */
function newToken(): string {
  const b = new Uint8Array(24);
  crypto.getRandomValues(b);
  return [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
}

/**
 * The request a caller sends, with a fresh token.
 *
 * @param caller The calling ability.
 * @param peer The called ability and service name.
 * @param options The session's options.
 * @returns The request.
 */
export function callerHello(
  caller: AbilityInfo,
  peer: Required<PeerInfo>,
  options: SessionOptions,
): Hello {
  return {
    token: newToken(),
    caller: {
      bundleName: caller.bundleName,
      moduleName: caller.moduleName,
      abilityName: caller.name,
    },
    callee: {
      bundleName: peer.bundleName,
      moduleName: peer.moduleName,
      abilityName: peer.abilityName,
    },
    serviceName: peer.serviceName,
    options,
    wire: WIRE_VERSION,
  };
}

/** The incoming collaboration requests of a device, by token, while they wait for an answer. */
export class CollabRequests {
  #rt: AbilityRuntime;
  #abilities: AbilityRegistry;
  #pending = new Map<string, Incoming>();

  /**
   * @param rt The device's runtime (its host).
   * @param abilities The registered abilities.
   */
  constructor(rt: AbilityRuntime, abilities: AbilityRegistry) {
    this.#rt = rt;
    this.#abilities = abilities;
  }

  /**
   * A request waiting with this token, if any.
   *
   * @param token The request's `"ohos.dms.collabToken"`.
   * @returns The request.
   */
  get(token: string): Incoming | undefined {
    return this.#pending.get(token);
  }

  /** Refuse every waiting request (the device is closing). */
  refuseAll(): void {
    for (const inc of [...this.#pending.values()]) {
      inc.answer({ errorCode: ConnectErrorCode.SYSTEM_INTERNAL_ERROR, reason: "" });
    }
  }

  /**
   * The device's acceptor for `ServiceKind.ABILITY` streams.
   *
   * @param request The stream a peer opens.
   * @returns The request's port, or a code that refuses the stream.
   */
  accept(request: IncomingRequest): Port | number {
    const bundle = request.bundle;
    if (![...this.#abilities.values()].some((r) => r.info.bundleName === bundle)) {
      // No ability of that application runs here.
      return ErrorCode.PEER_SERVER_NOT_STARTED;
    }
    const inc: Incoming = new Incoming(request.peerId, {
      hello: (i) => this.#hello(i),
      gone: (i) => {
        if (i.hello !== undefined && this.#pending.get(i.hello.token) === i) {
          this.#pending.delete(i.hello.token);
        }
      },
    });
    // A request that never says hello, or is never answered, ends with the collaboration timeout.
    const host = this.#rt.host;
    host.setTimer(() => {
      if (inc.waiting) {
        inc.answer({ errorCode: ConnectErrorCode.SYSTEM_INTERNAL_ERROR, reason: "" });
      }
    }, COLLAB_TIMEOUT);
    return inc.port;
  }

  #hello(inc: Incoming): void {
    const h = inc.hello!;
    const reg = this.#abilities.get(
      abilityKey(h.callee.bundleName, h.callee.moduleName, h.callee.abilityName),
    );
    trace("ability.request", {
      peer: inc.peerId,
      callee: `${h.callee.bundleName}/${h.callee.moduleName}/${h.callee.abilityName}`,
      found: reg !== undefined,
    });
    if (reg === undefined) {
      inc.answer({ errorCode: ConnectErrorCode.SYSTEM_INTERNAL_ERROR, reason: "" });
      return;
    }
    const onCollaborate = (reg.ability as AbilityCallbacks).onCollaborate;
    if (typeof onCollaborate !== "function") {
      inc.answer({ errorCode: ConnectErrorCode.PEER_ABILITY_NO_ONCOLLABORATE, reason: "" });
      return;
    }
    if (this.#pending.has(h.token)) {
      inc.answer({ errorCode: ConnectErrorCode.SYSTEM_INTERNAL_ERROR, reason: "" });
      return;
    }
    this.#pending.set(h.token, inc);
    const peerInfo = {
      deviceId: inc.peerId,
      bundleName: h.caller.bundleName,
      moduleName: h.caller.moduleName,
      abilityName: h.caller.abilityName,
      serverId: h.serviceName,
      serviceName: h.serviceName,
    };
    const option = {
      needSendData: h.options.needSendData,
      needSendStream: h.options.needSendStream,
      needReceiveStream: h.options.needReceiveStream,
      parameters: { ...h.options.parameters },
    };
    const wantParam: Record<string, unknown> = {
      "ohos.extra.param.key.supportCollaborateIndex": {
        PeerInfo: peerInfo,
        ConnectOption: option,
        // The API reference's examples read the plural key: both are there.
        ConnectOptions: { ...option, parameters: { ...option.parameters } },
        "ohos.dms.collabToken": h.token,
      },
      "ohos.aafwk.param.callAbilityToForeground":
        h.options.startOptions === StartOptionParams.START_IN_FOREGROUND,
    };
    queueMicrotask(() => {
      let result: unknown;
      try {
        result = onCollaborate.call(reg.ability, wantParam);
      } catch (error) {
        console.error("linkweave: onCollaborate threw:", error);
        return;
      }
      if (result === AbilityConstant.CollaborateResult.REJECT && inc.waiting) {
        inc.answer({ errorCode: ConnectErrorCode.PEER_APP_REJECTED, reason: "" });
      }
    });
  }
}

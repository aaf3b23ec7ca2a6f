/**
 * A peer that breaks the session protocol: it talks to device B's ability
 * on raw streams of the link (the device driver's own `Port`), sending what
 * no linkweave device sends. What it breaks ends that session only: B's
 * application sees `disconnect` on it, another session on the same link
 * goes on, and what B holds stays within its limits.
 *
 * @module
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { createDevice, type Device } from "../../device.ts";
import { type DeviceDriver, Port } from "../../core/device/driver.ts";
import { ServiceKind } from "../../core/proto/link/control.ts";
import {
  AbilityConstant,
  ConnectErrorCode,
  DisconnectReason,
  type EventCallbackInfo,
  MAX_DATA_BYTES,
  type PeerInfo,
  UIAbility,
} from "../../ability_connection_manager.ts";
import {
  decodeMessage,
  encodeBegin,
  encodeHello,
  type Hello,
  type SessionMessage,
  TransferKind,
} from "../../core/ability/wire.ts";

const A = "02:00:00:00:AD:01";
const B = "02:00:00:00:AD:02";
const INFO = { bundleName: "com.example.h", moduleName: "entry", abilityName: "EntryAbility" };

/** A raw stream to B's ability service, recording what B sends. */
class RawPort extends Port {
  got: SessionMessage[] = [];
  opened: Promise<void>;
  closed: Promise<boolean>;
  #open!: () => void;
  #close!: (byPeer: boolean) => void;
  constructor() {
    super();
    this.opened = new Promise((r) => this.#open = r);
    this.closed = new Promise((r) => this.#close = r);
  }
  override onOpened(): void {
    this.#open();
  }
  override onData(data: ArrayBuffer): void {
    const m = decodeMessage(new Uint8Array(data));
    if (m !== undefined) this.got.push(m);
  }
  override onClosed(_reason: number, byPeer: boolean): void {
    this.#close(byPeer);
  }
}

function hello(token: string, serviceName = "h"): Hello {
  return {
    token,
    caller: { ...INFO },
    callee: { ...INFO },
    serviceName,
    options: {
      needSendData: true,
      needSendStream: false,
      needReceiveStream: false,
      startOptions: 0,
      parameters: {},
    },
  };
}

async function waitFor(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 250 && !cond(); i++) await new Promise((r) => setTimeout(r, 20));
  assert.ok(cond(), what);
}

describe("abilityConnectionManager against a peer that breaks the protocol", {
  timeout: 30_000,
}, () => {
  let a: Device;
  let b: Device;
  let driver: DeviceDriver;
  const sessions: number[] = [];
  const gone: EventCallbackInfo[] = [];

  before(async () => {
    b = createDevice({ deviceId: B, port: 0, discovery: "off" });
    const port = (await b.runtime()).port;
    a = createDevice({ deviceId: A, port: 0, discovery: "off", peers: [`${B}@127.0.0.1:${port}`] });
    driver = await a.runtime() as DeviceDriver;
    const m = b.abilityConnectionManager;
    class Sink extends UIAbility {
      onCollaborate(want: Record<string, unknown>): number {
        const p = want["ohos.extra.param.key.supportCollaborateIndex"] as Record<string, unknown>;
        const id = m.createAbilityConnectionSession(
          (p["PeerInfo"] as PeerInfo).serviceName!,
          this.context,
          p["PeerInfo"] as PeerInfo,
          { needSendData: true },
        );
        sessions.push(id);
        m.on("disconnect", id, (i) => gone.push(i));
        void m.acceptConnect(id, p["ohos.dms.collabToken"] as string);
        return AbilityConstant.CollaborateResult.ACCEPT;
      }
    }
    await m.registerAbility(new Sink(), INFO);
  });

  after(async () => {
    await a.close();
    await b.close();
  });

  function open(): RawPort {
    const p = new RawPort();
    driver.connect(B, "h", p, { kind: ServiceKind.ABILITY, bundle: INFO.bundleName });
    return p;
  }

  it("a first message that is not a request is answered SYSTEM_INTERNAL_ERROR and closed", async () => {
    const p = open();
    await p.opened;
    p.send(new Uint8Array([3, 0x68, 0x69])); // a text before any request
    assert.equal(await p.closed, true);
    assert.deepEqual(p.got, [{
      type: "result",
      result: { errorCode: ConnectErrorCode.SYSTEM_INTERNAL_ERROR, reason: "" },
    }]);
  });

  it("a transfer over the cap is refused, a stray chunk ends that session only", async () => {
    const bad = open();
    await bad.opened;
    bad.send(encodeHello(hello("1".repeat(48), "h1")));
    await waitFor(() => bad.got.length === 1, "an answer");
    assert.deepEqual(bad.got[0], { type: "result", result: {} });
    const good = open();
    await good.opened;
    good.send(encodeHello(hello("2".repeat(48), "h2")));
    await waitFor(() => good.got.length === 1, "an answer");
    assert.equal(sessions.length, 2);

    bad.send(encodeBegin(1, TransferKind.DATA, MAX_DATA_BYTES + 1));
    await waitFor(() => bad.got.length === 2, "a refusal");
    assert.equal(bad.got[1].type, "refuse");
    assert.equal(b.abilityConnectionManager.receiving, 0, "nothing allocated for it");

    // A chunk of a transfer that never began: a protocol error.
    const chunk = new Uint8Array(10);
    chunk[0] = 5;
    chunk[4] = 9;
    bad.send(chunk);
    await waitFor(() => gone.length === 1, "the session's end");
    assert.deepEqual(gone[0], {
      sessionId: sessions[0],
      reason: DisconnectReason.NETWORK_DISCONNECTED,
    });
    await bad.closed;
    // The other session on the same link goes on.
    good.send(new Uint8Array([3, 0x6f, 0x6b]));
    const got = new Promise<EventCallbackInfo>((r) =>
      b.abilityConnectionManager.on("receiveMessage", sessions[1], r)
    );
    assert.equal((await got).msg, "ok");
    assert.deepEqual(a.links(), [B], "the link stays");
  });
});

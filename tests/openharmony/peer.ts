/**
 * A scripted OpenHarmony-speaking peer for tests: builds the GATT values a
 * device would send (with our encoders, which the golden tests prove equal
 * to OpenHarmony's) and reads what a link sends back.
 *
 * @module
 */
import type { OhLink, OhLinkEvent } from "../../core/proto/openharmony/machine.ts";
import { type Decoded, decodeMessage } from "../../core/proto/openharmony/decode.ts";
import {
  ackPayload,
  type BasicInfo,
  encodeBasicInfo,
  encodeGeneralMessage,
  encodeRcMessage,
  fragment,
  handshakePayload,
  mergePayload,
  MsgType,
  type OhCharacteristic,
  resetPayload,
} from "../../core/proto/openharmony/wire.ts";
import { events, sent } from "./harness.ts";

/** A message to deliver. */
export interface Out {
  char: OhCharacteristic;
  writes: Uint8Array[];
}

/** The peer's side of one BLE connection. */
export class ScriptedPeer {
  #transSeq = 0;
  #pktSeq = 0;
  #rcSeq = 0;

  /** @param mtu The ATT MTU. */
  constructor(readonly mtu = 185) {}

  /** Cut a whole message into GATT values. */
  writes(char: OhCharacteristic, message: Uint8Array): Out {
    return { char, writes: fragment(message, this.mtu, this.#transSeq++) };
  }

  /** Basic info. */
  basicInfo(info: Partial<BasicInfo> = {}): Out {
    return this.writes(
      "2B00",
      encodeBasicInfo({
        devid: "0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF",
        type: 1,
        devtype: 14,
        features: 2,
        ...info,
      }),
    );
  }

  /** A reference-count message. */
  rc(delta: number, refNum: number): Out {
    return this.writes("2B01", encodeRcMessage(this.#rcSeq++, { delta, refNum, challenge: 0 }));
  }

  /** A general message. */
  general(msgType: number, localId: number, peerId: number, payload: Uint8Array): Out {
    const seq = this.#pktSeq++;
    return this.writes("2B01", encodeGeneralMessage({ seq, msgType, localId, peerId, payload }));
  }

  /** HANDSHAKE. */
  handshake(localId: number, name = "demo", bundle = "com.example.demo"): Out {
    return this.general(MsgType.HANDSHAKE, localId, 0, handshakePayload(name, bundle));
  }

  /** HANDSHAKE_ACK. */
  ack(localId: number, peerId: number, err = 0): Out {
    return this.general(MsgType.HANDSHAKE_ACK, localId, peerId, ackPayload(err));
  }

  /** RESET. */
  reset(localId: number, peerId: number): Out {
    return this.general(MsgType.RESET, localId, peerId, resetPayload());
  }

  /** MERGE. */
  merge(localId: number, peerId: number, updateHandle: number): Out {
    return this.general(MsgType.MERGE, localId, peerId, mergePayload(updateHandle));
  }

  /** NORMAL. */
  normal(localId: number, peerId: number, data: Uint8Array): Out {
    return this.general(MsgType.NORMAL, localId, peerId, data);
  }
}

/**
 * Deliver messages to a link.
 *
 * @param link The link.
 * @param now The time.
 * @param outs The messages.
 */
export function deliver(link: OhLink, now: number, ...outs: Out[]): void {
  for (const o of outs) for (const w of o.writes) link.handleBytes(o.char, w, now);
}

/**
 * What a link sent, decoded.
 *
 * @param link The link.
 * @param now The time.
 * @returns The decoded messages.
 */
export function replies(link: OhLink, now: number): (Decoded & { char: OhCharacteristic })[] {
  return sent(link, now).map((m) => ({ char: m.char, ...decodeMessage(m.char, m.message) }));
}

/**
 * A link's events, by type.
 *
 * @param link The link.
 * @returns The events.
 */
export function eventTypes(link: OhLink): { types: string[]; all: OhLinkEvent[] } {
  const all = events(link);
  return { types: all.map((e) => e.type), all };
}

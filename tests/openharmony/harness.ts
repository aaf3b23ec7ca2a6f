/**
 * Helpers for driving {@linkcode OhLink}s in tests: pull what a link sends,
 * group it into messages, compare messages with OpenHarmony's masking only
 * the fields that may legitimately differ, and run a virtual clock.
 *
 * @module
 */
import assert from "node:assert/strict";
import { decodeMessage } from "../../core/proto/openharmony/decode.ts";
import type { OhLink, OhLinkEvent } from "../../core/proto/openharmony/machine.ts";
import { Reassembler } from "../../core/proto/openharmony/reassembly.ts";
import { decodeTransHeader, type OhCharacteristic } from "../../core/proto/openharmony/wire.ts";
import { fromHex, hex, type VectorMessage } from "./vectors.ts";

/** One message a link sent, with its GATT values. */
export interface Sent {
  char: OhCharacteristic;
  message: Uint8Array;
  writes: Uint8Array[];
}

/**
 * Everything a link has to send now, grouped into messages.
 *
 * @param link The link.
 * @param now The time.
 * @returns The messages, in order.
 */
export function sent(link: OhLink, now: number): Sent[] {
  const out: Sent[] = [];
  const r = new Reassembler();
  let writes: Uint8Array[] = [];
  for (let t = link.pollTransmit(now); t; t = link.pollTransmit(now)) {
    writes.push(t.bytes);
    const res = r.push(t.bytes);
    assert.notEqual(res.type, "rejected", "we sent a value OpenHarmony drops");
    if (res.type === "message") {
      out.push({ char: t.char, message: res.data, writes });
      writes = [];
    }
  }
  assert.equal(writes.length, 0, "a message was left half sent");
  return out;
}

/**
 * Every event a link has.
 *
 * @param link The link.
 * @returns The events.
 */
export function events(link: OhLink): OhLinkEvent[] {
  const out: OhLinkEvent[] = [];
  for (let e = link.pollEvent(); e; e = link.pollEvent()) out.push(e);
  return out;
}

/**
 * Feed GATT values to a link.
 *
 * @param link The link.
 * @param char The characteristic.
 * @param writes The values, as hex or bytes.
 * @param now The time.
 */
export function feed(
  link: OhLink,
  char: OhCharacteristic,
  writes: (string | Uint8Array)[],
  now: number,
): void {
  for (const w of writes) link.handleBytes(char, typeof w === "string" ? fromHex(w) : w, now);
}

/**
 * Run a link's timers up to `until`, in order.
 *
 * @param link The link.
 * @param until The time to reach.
 * @param onTick Called after each timer (to pull what it sent).
 */
export function advance(link: OhLink, until: number, onTick?: (now: number) => void): void {
  for (let at = link.pollTimeout(); at !== undefined && at <= until; at = link.pollTimeout()) {
    link.handleTimeout(at);
    onTick?.(at);
  }
}

/** Fields that may differ between our messages and OpenHarmony's. */
export interface Mask {
  /** ConnPktHead seq (a per-process counter on the sender). */
  seq?: boolean;
  /** devid, devtype and FEATURE_SUPPORT in basic info. */
  identity?: boolean;
  /** BleTransHeader seq (when the transcript's side sent a message we cannot send). */
  transSeq?: boolean;
}

/**
 * A message's decoded fields with the masked ones removed.
 *
 * @param char The characteristic.
 * @param message The message.
 * @param mask What to leave out.
 * @returns The comparable fields.
 */
export function comparable(
  char: OhCharacteristic,
  message: Uint8Array,
  mask: Mask,
): Record<string, unknown> {
  const d = structuredClone(decodeMessage(char, message)) as unknown as Record<string, unknown>;
  if (mask.seq) delete d.seq;
  if (mask.identity && d.layer === "netCtrl") {
    const j = d.json as Record<string, unknown>;
    delete j.devid;
    delete j.devtype;
    delete j.FEATURE_SUPPORT;
    delete d.jsonText;
    delete d.len;
  }
  return d;
}

/**
 * Assert that our message is OpenHarmony's, field by field outside the mask,
 * and that it went out in the same GATT values (same headers, same chunks)
 * whenever the mask leaves its length alone.
 *
 * @param ours What we sent.
 * @param theirs What OpenHarmony sent.
 * @param mask Fields that may differ.
 * @param where For messages.
 */
export function assertSameMessage(ours: Sent, theirs: VectorMessage, mask: Mask, where: string) {
  assert.equal(ours.char, theirs.char, `${where}: characteristic`);
  const expected = fromHex(theirs.messageHex);
  assert.deepEqual(
    comparable(ours.char, ours.message, mask),
    comparable(theirs.char, expected, mask),
    `${where}: message`,
  );
  if (ours.message.length !== expected.length) {
    assert.ok(mask.identity, `${where}: length`);
    return;
  }
  const zeroSeq = (m: Uint8Array) => {
    const c = m.slice();
    if (mask.seq && theirs.char === "2B01" && c.length >= 24) c.fill(0, 8, 16);
    return c;
  };
  if (!mask.identity) {
    assert.equal(hex(zeroSeq(ours.message)), hex(zeroSeq(expected)), `${where}: bytes`);
  }
  const headers = (ws: Uint8Array[]) =>
    ws.map((w) => {
      const h = decodeTransHeader(w);
      return mask.transSeq && typeof h !== "string" ? { ...h, seq: 0 } : h;
    });
  assert.deepEqual(headers(ours.writes), headers(theirs.writes.map(fromHex)), `${where}: writes`);
}

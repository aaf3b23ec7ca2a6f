/**
 * The protocol dissector behind `linkweave dissect`: reads a `btmon -w`
 * capture (btsnoop) or text lines `<characteristic> <hex>`, reassembles each
 * direction as OpenHarmony does, and gives one JSON-ready record per message
 * (`{"char", "decoded"}`, `decoded` as in the vectors), or per value
 * OpenHarmony's reassembler drops (`{"result": "rejected", "layer":
 * "BleTransHeader", "reason"}`).
 *
 * Text lines: `[client|server] <characteristic> <hex>`, where the
 * characteristic is `2B00`, `2B01`, `net`, `conn` or the full UUID, the hex
 * may contain spaces and colons, `#` starts a comment, and the optional first
 * word names the sender (each sender has its own reassembly buffer; without
 * it, all lines share one).
 *
 * Captures: the handles of 2B00 and 2B01 are found in the GATT discovery the
 * capture holds (primary services, characteristics, attribute information),
 * restricted to OpenHarmony's service when the capture shows it; ATT Write
 * Request / Command (also signed and prepared writes) are the client's,
 * Handle Value Notification / Indication the server's. The ATT MTU comes
 * from the capture's exchange, or `options.mtu`; a value longer than
 * `MTU - 3` is reported as a warning.
 *
 * Besides the record of a message, `dropped` says when OpenHarmony would
 * ignore the message after reassembly (a bad head, a NORMAL payload the SDK
 * does not deliver, basic info it refuses).
 *
 * @example Two lines of text
 * ```ts
 * import assert from "node:assert/strict";
 * const records = dissect([
 *   "# an rc +1 from an OpenHarmony client, in one write",
 *   "client 2B01 00000001000000590000000000000059 cefabeba0b00000000000000000000000300000041000000" +
 *   "7b224b45595f4d4554484f44223a312c224b45595f44454c5441223a312c224b45595f5245465f4e554d223a312c22" +
 *   "4b45595f4348414c4c454e4745223a307d00",
 *   "conn 0000",
 * ].join("\n"));
 * assert.equal(records.length, 2);
 * assert.equal(records[0].char, "2B01");
 * assert.equal(records[1].result, "rejected");
 * ```
 *
 * @module
 */
import { type CaptureItem, isBtsnoop, readCapture } from "./btsnoop.ts";
import { type Decoded, decodeMessage, toHex } from "./decode.ts";
import { Reassembler, type ReassemblyResult } from "./reassembly.ts";
import {
  decodeConnPktHead,
  HeaderSize,
  Module,
  MsgType,
  OH_CONN_UUID,
  OH_NET_UUID,
  OH_SERVICE_UUID,
  type OhCharacteristic,
  OhLimits,
  parseBasicInfo,
  parseGeneral,
  parseRc,
} from "./wire.ts";

/** Who sent a value: the GATT client (writes) or the server (notifications). */
export type Sender = "client" | "server";

/** Options of {@linkcode dissect}. */
export interface DissectOptions {
  /** The ATT MTU, where the capture does not show the exchange. */
  mtu?: number;
  /** Value handles of 2B00 (`net`) and 2B01 (`conn`), where the capture lacks the discovery. */
  handles?: { net?: number; conn?: number };
}

/** Where a record comes from. */
export interface RecordPlace {
  /** The sender, when known. */
  from?: Sender;
  /** Text input: the line of the last value. */
  line?: number;
  /** Capture: the record number of the last value. */
  frame?: number;
  /** Capture: the ACL connection handle. */
  conn?: number;
}

/** A reassembled message. */
export interface MessageRecord extends RecordPlace {
  /** The characteristic of its last fragment. */
  char: OhCharacteristic;
  /** Its fields (as `decoded` in the vectors). */
  decoded: Decoded;
  /** Why OpenHarmony ignores it after reassembly, if it does. */
  dropped?: { layer: string; reason: string };
  /** Never set on a message. */
  result?: undefined;
  /** Never set on a message. */
  layer?: undefined;
}

/** Anything else worth a line. */
export interface NoteRecord extends RecordPlace {
  /**
   * `rejected` (a value OpenHarmony drops), `discarded` (a half-assembled
   * message it throws away), `warning` or `error` (input we cannot read).
   */
  result: "rejected" | "discarded" | "warning" | "error";
  /** `BleTransHeader`, `ATT`, `L2CAP`, `HCI`, `btsnoop` or `input`. */
  layer: string;
  /** Why. */
  reason: string;
  /** The characteristic, when known. */
  char?: OhCharacteristic;
  /** The value, for a rejected one. */
  hex?: string;
  /** Never set on a note. */
  decoded?: undefined;
}

/** One output record. */
export type DissectRecord = MessageRecord | NoteRecord;

const SHORT: Record<string, OhCharacteristic> = {
  "2B00": "2B00",
  "2B01": "2B01",
  "0X2B00": "2B00",
  "0X2B01": "2B01",
  NET: "2B00",
  CONN: "2B01",
  [OH_NET_UUID]: "2B00",
  [OH_CONN_UUID]: "2B01",
};

/** Reassembly of one sender's values, and what it saw. */
class Direction {
  rx = new Reassembler();
  sawBasicInfo = false;
}

function dropped(
  char: OhCharacteristic,
  msg: Uint8Array,
  dir: Direction,
): MessageRecord["dropped"] {
  if (char === "2B00") {
    if (dir.sawBasicInfo) {
      return { layer: "netCtrl", reason: "basic info was already exchanged: ignored" };
    }
    dir.sawBasicInfo = true;
    const info = parseBasicInfo(msg);
    return typeof info === "string"
      ? { layer: "netCtrl", reason: `${info}: the link is dropped` }
      : undefined;
  }
  const head = decodeConnPktHead(msg);
  if (head === undefined || msg.length === HeaderSize.CONN_PKT) {
    return { layer: "ConnPktHead", reason: `message of ${msg.length} bytes has no payload` };
  }
  const body = msg.subarray(HeaderSize.CONN_PKT);
  if (head.module === Module.CONNECTION) {
    const rc = parseRc(body);
    return typeof rc === "string" ? { layer: "control", reason: rc } : undefined;
  }
  if (head.module !== Module.BLE_GENERAL) {
    return { layer: "ConnPktHead", reason: `module ${head.module} is not linkEnhance's (102)` };
  }
  const g = parseGeneral(body);
  if (typeof g === "string") return { layer: "GeneralConnectionHead", reason: g };
  if (
    g.msgType === MsgType.NORMAL && (g.data.length === 0 || g.data.length > OhLimits.MAX_NORMAL)
  ) {
    return {
      layer: "SDK",
      reason: `NORMAL payload of ${g.data.length} bytes is not delivered (1..1024)`,
    };
  }
  return undefined;
}

function records(
  r: ReassemblyResult,
  char: OhCharacteristic,
  value: Uint8Array,
  dir: Direction,
  place: RecordPlace,
): DissectRecord[] {
  const out: DissectRecord[] = [];
  if (r.discarded !== undefined) {
    out.push({ result: "discarded", layer: "BleTransHeader", reason: r.discarded, char, ...place });
  }
  if (r.type === "rejected") {
    out.push({
      result: "rejected",
      layer: "BleTransHeader",
      reason: r.reason,
      char,
      ...place,
      hex: toHex(value.subarray(0, 64)) + (value.length > 64 ? "…" : ""),
    });
  } else if (r.type === "message") {
    const rec: MessageRecord = { char, decoded: decodeMessage(char, r.data), ...place };
    const why = dropped(char, r.data, dir);
    if (why !== undefined) rec.dropped = why;
    out.push(rec);
  }
  return out;
}

// ----------------------------------------------------------------------- text

function dissectText(text: string, options: DissectOptions): DissectRecord[] {
  const out: DissectRecord[] = [];
  const dirs = new Map<string, Direction>();
  const lines = text.split(/\r?\n/);
  lines.forEach((raw, i) => {
    const line = i + 1;
    const hash = raw.indexOf("#");
    const content = (hash >= 0 ? raw.slice(0, hash) : raw).trim();
    if (content === "") return;
    const tokens = content.split(/\s+/);
    let from: Sender | undefined;
    const first = tokens[0].toLowerCase();
    if (first === "client" || first === "server") {
      from = first;
      tokens.shift();
    }
    const char = tokens.length > 0 ? SHORT[tokens[0].toUpperCase()] : undefined;
    if (char === undefined) {
      out.push({
        result: "error",
        layer: "input",
        reason: `unknown characteristic ${JSON.stringify(tokens[0] ?? "")}`,
        line,
      });
      return;
    }
    const hex = tokens.slice(1).join("").replaceAll(":", "");
    if (hex === "" || hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) {
      out.push({
        result: "error",
        layer: "input",
        reason: "expected an even number of hex digits",
        line,
      });
      return;
    }
    const value = new Uint8Array(hex.length / 2);
    for (let k = 0; k < value.length; k++) value[k] = parseInt(hex.slice(2 * k, 2 * k + 2), 16);
    const key = from ?? "";
    let dir = dirs.get(key);
    if (dir === undefined) dirs.set(key, dir = new Direction());
    const place: RecordPlace = from === undefined ? { line } : { from, line };
    if (options.mtu !== undefined && value.length > options.mtu - 3) {
      out.push({
        result: "warning",
        layer: "ATT",
        reason: `value of ${value.length} bytes exceeds ATT MTU ${options.mtu} - 3`,
        char,
        ...place,
      });
    }
    out.push(...records(dir.rx.push(value), char, value, dir, place));
  });
  return out;
}

// -------------------------------------------------------------------- capture

function uuidOf(b: Uint8Array): string {
  if (b.length === 2) {
    const short = (b[0] | (b[1] << 8)).toString(16).toUpperCase().padStart(4, "0");
    return `0000${short}-0000-1000-8000-00805F9B34FB`;
  }
  const h = Array.from(b).reverse().map((x) => x.toString(16).padStart(2, "0")).join("")
    .toUpperCase();
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

const MAX_PREPARED = 65536;

class Connection {
  ranges: [number, number][] = [];
  candidates = new Map<number, OhCharacteristic>();
  findingService = false;
  clientMtu: number | undefined;
  serverMtu: number | undefined;
  client = new Direction();
  server = new Direction();
  prepared: { handle: number; offset: number; value: Uint8Array }[] = [];
  preparedBytes = 0;

  constructor(options: DissectOptions) {
    if (options.handles?.net !== undefined) this.candidates.set(options.handles.net, "2B00");
    if (options.handles?.conn !== undefined) this.candidates.set(options.handles.conn, "2B01");
  }

  mtu(fallback: number | undefined): number | undefined {
    if (this.clientMtu !== undefined && this.serverMtu !== undefined) {
      return Math.min(this.clientMtu, this.serverMtu);
    }
    return this.clientMtu ?? this.serverMtu ?? fallback;
  }

  charOf(handle: number): OhCharacteristic | undefined {
    const c = this.candidates.get(handle);
    if (c === undefined) return undefined;
    if (this.ranges.length === 0) return c;
    return this.ranges.some(([s, e]) => handle >= s && handle <= e) ? c : undefined;
  }

  characteristic(valueHandle: number, uuid: string): void {
    const c = uuid === OH_NET_UUID ? "2B00" : uuid === OH_CONN_UUID ? "2B01" : undefined;
    if (c !== undefined) this.candidates.set(valueHandle, c);
  }
}

function u16(b: Uint8Array, at: number): number {
  return b[at] | (b[at + 1] << 8);
}

function dissectCapture(file: Uint8Array, options: DissectOptions): DissectRecord[] {
  const out: DissectRecord[] = [];
  const conns = new Map<string, Connection>();
  const items: CaptureItem[] = readCapture(file);
  for (const item of items) {
    if (item.kind === "problem") {
      out.push({ result: "error", layer: item.layer, reason: item.reason, frame: item.frame });
      continue;
    }
    const key = `${item.index}/${item.handle}`;
    if (item.kind === "disconnect") {
      conns.delete(key);
      continue;
    }
    let c = conns.get(key);
    if (c === undefined) conns.set(key, c = new Connection(options));
    const pdu = item.pdu;
    const place = (from: Sender): RecordPlace => ({ from, frame: item.frame, conn: item.handle });
    const value = (from: Sender, handle: number, v: Uint8Array) => {
      const char = c!.charOf(handle);
      if (char === undefined) return;
      const mtu = c!.mtu(options.mtu);
      if (mtu !== undefined && v.length > mtu - 3) {
        out.push({
          result: "warning",
          layer: "ATT",
          reason: `value of ${v.length} bytes exceeds ATT MTU ${mtu} - 3`,
          char,
          ...place(from),
        });
      }
      const dir = from === "client" ? c!.client : c!.server;
      out.push(...records(dir.rx.push(v), char, v, dir, place(from)));
    };
    switch (pdu[0]) {
      case 0x02: // Exchange MTU Request
        if (pdu.length >= 3) c.clientMtu = u16(pdu, 1);
        break;
      case 0x03: // Exchange MTU Response
        if (pdu.length >= 3) c.serverMtu = u16(pdu, 1);
        break;
      case 0x05: { // Find Information Response
        const size = pdu[1] === 1 ? 2 : pdu[1] === 2 ? 16 : 0;
        if (size === 0) break;
        for (let at = 2; at + 2 + size <= pdu.length; at += 2 + size) {
          c.characteristic(u16(pdu, at), uuidOf(pdu.subarray(at + 2, at + 2 + size)));
        }
        break;
      }
      case 0x06: // Find By Type Value Request (primary service by UUID)
        c.findingService = pdu.length === 7 + 16 && u16(pdu, 5) === 0x2800 &&
          uuidOf(pdu.subarray(7, 23)) === OH_SERVICE_UUID;
        break;
      case 0x07: // Find By Type Value Response
        if (c.findingService) {
          for (let at = 1; at + 4 <= pdu.length; at += 4) {
            c.ranges.push([u16(pdu, at), u16(pdu, at + 2)]);
          }
        }
        c.findingService = false;
        break;
      case 0x09: { // Read By Type Response (characteristic declarations)
        const size = pdu[1];
        if (size !== 7 && size !== 21) break;
        for (let at = 2; at + size <= pdu.length; at += size) {
          c.characteristic(u16(pdu, at + 3), uuidOf(pdu.subarray(at + 5, at + size)));
        }
        break;
      }
      case 0x11: { // Read By Group Type Response (primary services)
        const size = pdu[1];
        if (size !== 6 && size !== 20) break;
        for (let at = 2; at + size <= pdu.length; at += size) {
          if (uuidOf(pdu.subarray(at + 4, at + size)) === OH_SERVICE_UUID) {
            c.ranges.push([u16(pdu, at), u16(pdu, at + 2)]);
          }
        }
        break;
      }
      case 0x12: // Write Request
      case 0x52: // Write Command
        if (pdu.length >= 3) value("client", u16(pdu, 1), pdu.subarray(3));
        break;
      case 0xd2: // Signed Write Command
        if (pdu.length >= 15) value("client", u16(pdu, 1), pdu.subarray(3, pdu.length - 12));
        break;
      case 0x16: // Prepare Write Request
        if (pdu.length >= 5 && c.preparedBytes + pdu.length <= MAX_PREPARED) {
          c.prepared.push({ handle: u16(pdu, 1), offset: u16(pdu, 3), value: pdu.slice(5) });
          c.preparedBytes += pdu.length;
        }
        break;
      case 0x18: { // Execute Write Request
        const parts = c.prepared;
        c.prepared = [];
        c.preparedBytes = 0;
        if (pdu[1] !== 1) break;
        for (const handle of new Set(parts.map((p) => p.handle))) {
          const mine = parts.filter((p) => p.handle === handle);
          const len = Math.max(...mine.map((p) => p.offset + p.value.length));
          const v = new Uint8Array(len);
          for (const p of mine) v.set(p.value, p.offset);
          value("client", handle, v);
        }
        break;
      }
      case 0x1b: // Handle Value Notification
      case 0x1d: // Handle Value Indication
        if (pdu.length >= 3) value("server", u16(pdu, 1), pdu.subarray(3));
        break;
      case 0x23: // Multiple Handle Value Notification
        for (let at = 1; at + 4 <= pdu.length;) {
          const len = u16(pdu, at + 2);
          if (at + 4 + len > pdu.length) break;
          value("server", u16(pdu, at), pdu.subarray(at + 4, at + 4 + len));
          at += 4 + len;
        }
        break;
    }
  }
  return out;
}

/**
 * Dissect a capture or text lines.
 *
 * @param input A btsnoop file (bytes), or text (a string, or bytes that are
 *   not a btsnoop file).
 * @param options The ATT MTU and the characteristic handles, where the input
 *   does not show them.
 * @returns One record per message, dropped value or problem, in input order.
 */
export function dissect(input: Uint8Array | string, options: DissectOptions = {}): DissectRecord[] {
  if (typeof input !== "string" && isBtsnoop(input)) return dissectCapture(input, options);
  const text = typeof input === "string" ? input : new TextDecoder().decode(input);
  return dissectText(text, options);
}

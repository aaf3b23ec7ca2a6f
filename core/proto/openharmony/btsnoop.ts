/**
 * Reading Bluetooth captures (btsnoop files, as `btmon -w` writes them) down
 * to ATT: records, HCI ACL packets, L2CAP reassembly, ATT PDUs on the fixed
 * ATT channel. Pure: bytes in, values out; nothing here throws on bad input
 * (a malformed part is reported as a {@linkcode CaptureProblem} and skipped).
 *
 * Supported link types: 2001 (Linux monitor, `btmon -w`), 1002 (HCI UART/H4,
 * Android's btsnoop_hci.log) and 1001 (unencapsulated HCI).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.equal(isBtsnoop(new TextEncoder().encode("btsnoop\0")), true);
 * assert.equal(isBtsnoop(new TextEncoder().encode("2B01 00")), false);
 * ```
 *
 * @module
 */

/** An ATT PDU found in a capture. */
export interface AttPdu {
  /** Record number in the capture (1-based). */
  frame: number;
  /** Controller index (btmon) or 0. */
  index: number;
  /** ACL connection handle. */
  handle: number;
  /** Whether the capturing host sent it (else it received it). */
  sent: boolean;
  /** The PDU, opcode first. */
  pdu: Uint8Array;
}

/** A connection that ended (its handle may be reused). */
export interface Disconnection {
  /** Record number in the capture (1-based). */
  frame: number;
  /** Controller index (btmon) or 0. */
  index: number;
  /** ACL connection handle. */
  handle: number;
}

/** Something in the capture that could not be read. */
export interface CaptureProblem {
  /** Record number, or 0 for the file header. */
  frame: number;
  /** `btsnoop`, `HCI` or `L2CAP`. */
  layer: string;
  /** What is wrong. */
  reason: string;
}

/** What a capture holds, in order. */
export type CaptureItem =
  | ({ kind: "att" } & AttPdu)
  | ({ kind: "disconnect" } & Disconnection)
  | ({ kind: "problem" } & CaptureProblem);

const MAGIC = [0x62, 0x74, 0x73, 0x6e, 0x6f, 0x6f, 0x70, 0x00]; // "btsnoop\0"
const ATT_CID = 0x0004;
/** Largest L2CAP PDU we reassemble (its length field is 16 bits). */
const MAX_L2CAP = 65535 + 4;

/**
 * Whether bytes start like a btsnoop file.
 *
 * @param bytes The file.
 * @returns Whether the magic is there.
 */
export function isBtsnoop(bytes: Uint8Array): boolean {
  return bytes.length >= 8 && MAGIC.every((b, i) => bytes[i] === b);
}

interface Partial {
  want: number;
  parts: Uint8Array[];
  have: number;
}

/**
 * Read a btsnoop capture down to ATT PDUs.
 *
 * @param file The capture.
 * @returns ATT PDUs, disconnections and problems, in capture order.
 */
export function readCapture(file: Uint8Array): CaptureItem[] {
  const out: CaptureItem[] = [];
  const problem = (frame: number, layer: string, reason: string) =>
    out.push({ kind: "problem", frame, layer, reason });
  if (!isBtsnoop(file) || file.length < 16) {
    problem(0, "btsnoop", "not a btsnoop file");
    return out;
  }
  const v = new DataView(file.buffer, file.byteOffset, file.byteLength);
  const link = v.getUint32(12);
  if (link !== 2001 && link !== 1002 && link !== 1001) {
    problem(0, "btsnoop", `link type ${link} is not supported (2001, 1002 or 1001)`);
    return out;
  }
  const pending = new Map<string, Partial>();
  let at = 16;
  for (let frame = 1; at < file.length; frame++) {
    if (at + 24 > file.length) {
      problem(frame, "btsnoop", "record header cut short");
      break;
    }
    const included = v.getUint32(at + 4);
    const flags = v.getUint32(at + 8);
    const start = at + 24;
    if (start + included > file.length) {
      problem(frame, "btsnoop", "record data cut short");
      break;
    }
    at = start + included;
    let data = file.subarray(start, start + included);
    let index = 0;
    let kind: "acl" | "event" | "other" = "other";
    let sent = false;
    if (link === 2001) {
      index = flags >>> 16;
      const op = flags & 0xffff;
      if (op === 4 || op === 5) {
        kind = "acl";
        sent = op === 4;
      } else if (op === 3) kind = "event";
    } else {
      sent = (flags & 1) === 0;
      if (link === 1002) {
        const type = data[0];
        data = data.subarray(1);
        kind = type === 0x02 ? "acl" : type === 0x04 ? "event" : "other";
      } else {
        kind = (flags & 2) !== 0 ? (sent ? "other" : "event") : "acl";
      }
    }
    if (kind === "event") {
      // Disconnection Complete: the handle's state ends.
      if (data.length >= 6 && data[0] === 0x05 && data[2] === 0x00) {
        const handle = (data[3] | (data[4] << 8)) & 0x0fff;
        for (const dir of ["s", "r"]) pending.delete(`${index}/${handle}/${dir}`);
        out.push({ kind: "disconnect", frame, index, handle });
      }
      continue;
    }
    if (kind !== "acl") continue;
    if (data.length < 4) {
      problem(frame, "HCI", `ACL packet of ${data.length} bytes`);
      continue;
    }
    const hf = data[0] | (data[1] << 8);
    const handle = hf & 0x0fff;
    const pb = (hf >> 12) & 0x3;
    const len = data[2] | (data[3] << 8);
    const payload = data.subarray(4, 4 + len);
    if (payload.length < len) problem(frame, "HCI", "ACL packet shorter than its length");
    const key = `${index}/${handle}/${sent ? "s" : "r"}`;
    let p = pending.get(key);
    if (pb === 0x1) {
      if (p === undefined) {
        problem(frame, "L2CAP", "continuation without a start");
        continue;
      }
    } else {
      if (p !== undefined) problem(frame, "L2CAP", "start while a PDU was incomplete");
      p = { want: -1, parts: [], have: 0 };
      pending.set(key, p);
    }
    p.parts.push(payload.slice());
    p.have += payload.length;
    if (p.want < 0 && p.have >= 4) {
      const head = join(p.parts, 4);
      p.want = 4 + (head[0] | (head[1] << 8));
    }
    if (p.have > MAX_L2CAP || (p.want >= 0 && p.have > p.want)) {
      pending.delete(key);
      problem(frame, "L2CAP", "more bytes than the PDU's length");
      continue;
    }
    if (p.want < 0 || p.have < p.want) continue;
    pending.delete(key);
    const pdu = join(p.parts, p.have);
    const cid = pdu[2] | (pdu[3] << 8);
    if (cid !== ATT_CID || pdu.length < 5) continue;
    out.push({ kind: "att", frame, index, handle, sent, pdu: pdu.subarray(4) });
  }
  return out;
}

function join(parts: Uint8Array[], n: number): Uint8Array {
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    if (at >= n) break;
    const take = p.subarray(0, n - at);
    out.set(take, at);
    at += take.length;
  }
  return out;
}

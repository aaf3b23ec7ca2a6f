/**
 * Builds btsnoop captures (`btmon -w` format, link type 2001) for the
 * dissector's tests: HCI ACL packets cut at an ACL MTU, carrying ATT PDUs,
 * with a GATT discovery that assigns the handles of 2B00 and 2B01.
 *
 * @module
 */

/** A GATT server layout in a capture. */
export interface Layout {
  /** OpenHarmony's service range. */
  service: [number, number];
  /** Value handle of 2B00. */
  net: number;
  /** Value handle of 2B01. */
  conn: number;
  /** A decoy 2B00 characteristic in another service (must be ignored). */
  decoy: number;
}

/** The layout the tests use. */
export const LAYOUT: Layout = {
  service: [0x0010, 0x0020],
  net: 0x0012,
  conn: 0x0015,
  decoy: 0x0003,
};

const OH_SERVICE_LE = Uint8Array.from(
  "11C8B31080E44276AFC0F81590B2177F".match(/../g)!.map((h) => parseInt(h, 16)),
).reverse();
const CONN_128_LE = Uint8Array.from(
  "00002B0100001000800000805F9B34FB".match(/../g)!.map((h) => parseInt(h, 16)),
).reverse();

function le16(n: number): number[] {
  return [n & 0xff, n >> 8];
}

/** A capture being written. */
export class Capture {
  #records: Uint8Array[] = [];
  #time = 0n;

  /**
   * @param aclMtu Largest ACL payload per packet (LE default: 27).
   */
  constructor(readonly aclMtu = 27) {}

  #record(opcode: number, data: Uint8Array, index = 0): void {
    const r = new Uint8Array(24 + data.length);
    const v = new DataView(r.buffer);
    v.setUint32(0, data.length);
    v.setUint32(4, data.length);
    v.setUint32(8, (index << 16) | opcode);
    v.setUint32(12, 0);
    v.setBigInt64(16, 0x00dcddb30f2f8000n + (this.#time += 1000n));
    r.set(data, 24);
    this.#records.push(r);
  }

  /** An ATT PDU on a connection, cut into ACL packets. */
  att(handle: number, sent: boolean, pdu: Uint8Array | number[]): void {
    const body = Uint8Array.from(pdu);
    const l2cap = Uint8Array.of(...le16(body.length), ...le16(4), ...body);
    for (let at = 0; at < l2cap.length; at += this.aclMtu) {
      const chunk = l2cap.subarray(at, at + this.aclMtu);
      const pb = at === 0 ? 0x2000 : 0x1000;
      this.#record(
        sent ? 4 : 5,
        Uint8Array.of(...le16(handle | pb), ...le16(chunk.length), ...chunk),
      );
    }
  }

  /** An HCI event (e.g. Disconnection Complete). */
  event(bytes: number[]): void {
    this.#record(3, Uint8Array.from(bytes));
  }

  /**
   * MTU exchange and a GATT discovery of OpenHarmony's service, with a
   * decoy 2B00 in the GAP service, as the client performs it.
   */
  discovery(handle: number, clientIsHost: boolean, mtu: number, layout = LAYOUT): void {
    const req = (pdu: number[]) => this.att(handle, clientIsHost, pdu);
    const rsp = (pdu: number[]) => this.att(handle, !clientIsHost, pdu);
    req([0x02, ...le16(mtu)]);
    rsp([0x03, ...le16(mtu)]);
    req([0x10, ...le16(1), ...le16(0xffff), ...le16(0x2800)]);
    rsp([0x11, 6, ...le16(1), ...le16(5), ...le16(0x1800)]);
    req([0x10, ...le16(6), ...le16(0xffff), ...le16(0x2800)]);
    rsp([0x11, 20, ...le16(layout.service[0]), ...le16(layout.service[1]), ...OH_SERVICE_LE]);
    req([0x08, ...le16(1), ...le16(5), ...le16(0x2803)]);
    rsp([0x09, 7, ...le16(layout.decoy - 1), 0x02, ...le16(layout.decoy), ...le16(0x2b00)]);
    req([0x08, ...le16(layout.service[0]), ...le16(layout.service[1]), ...le16(0x2803)]);
    rsp([0x09, 7, ...le16(layout.net - 1), 0x1e, ...le16(layout.net), ...le16(0x2b00)]);
    req([0x08, ...le16(layout.net + 1), ...le16(layout.service[1]), ...le16(0x2803)]);
    rsp([0x09, 21, ...le16(layout.conn - 1), 0x1e, ...le16(layout.conn), ...CONN_128_LE]);
    req([0x04, ...le16(layout.net + 1), ...le16(layout.net + 1)]);
    rsp([0x05, 1, ...le16(layout.net + 1), ...le16(0x2902)]);
  }

  /** A GATT value: a Write Command from the client or a notification from the server. */
  value(handle: number, clientIsHost: boolean, fromClient: boolean, attr: number, v: Uint8Array) {
    this.att(handle, fromClient === clientIsHost, [fromClient ? 0x52 : 0x1b, ...le16(attr), ...v]);
  }

  /** The file. */
  build(): Uint8Array {
    const head = Uint8Array.of(
      0x62,
      0x74,
      0x73,
      0x6e,
      0x6f,
      0x6f,
      0x70,
      0,
      0,
      0,
      0,
      1,
      0,
      0,
      7,
      0xd1,
    );
    const n = head.length + this.#records.reduce((a, r) => a + r.length, 0);
    const out = new Uint8Array(n);
    out.set(head);
    let at = head.length;
    for (const r of this.#records) {
      out.set(r, at);
      at += r.length;
    }
    return out;
  }
}

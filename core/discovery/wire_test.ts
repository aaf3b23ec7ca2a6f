import { describe, it } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import {
  type Announcement,
  type AnnouncementInit,
  Capability,
  CRITICAL_OPTION,
  decodeAnnouncement,
  encodeAnnouncement,
  HEADER_SIZE,
  MAX_ADDRESSES,
  MAX_ANNOUNCEMENT_SIZE,
  OptionType,
  randomNonce,
  WIRE_MAJOR,
} from "./wire.ts";
import { ParameterError } from "../errors.ts";
import { prng } from "../../tests/harness/framing.ts";

const A = "0A:00:00:00:00:01";
const NA = "000000000000000a";

function decoded(bytes: Uint8Array): Announcement {
  const r = decodeAnnouncement(bytes);
  assert.ok(r.ok, `not decoded: ${JSON.stringify(r)}`);
  return r.announcement;
}

function init(patch: Partial<AnnouncementInit> = {}): AnnouncementInit {
  return { deviceId: A, nonce: NA, port: 4000, ttl: 3000, ...patch };
}

/** An announcement with extra raw options appended. */
function withOptions(bytes: Uint8Array, ...options: number[][]): Uint8Array {
  const extra = options.flat();
  const out = new Uint8Array(bytes.length + extra.length);
  out.set(bytes);
  out.set(extra, bytes.length);
  return out;
}

describe("discovery wire format, version 2.0", () => {
  it("has the documented layout", () => {
    const bytes = encodeAnnouncement({
      deviceId: "aa:bb:cc:dd:ee:ff",
      nonce: "0102030405060708",
      port: 0x1234,
      ttl: 0x01020304,
      solicit: true,
      capabilities: 0x80000001,
      addresses: [{ host: "10.1.2.3", port: 0x5678 }],
    });
    assert.deepEqual([...bytes], [
      ...[0x4c, 0x57, 0x44, 0x41], // magic
      2, // major
      0, // minor
      2, // highest major spoken
      1, // flags: solicit
      ...[0x80, 0, 0, 1], // capabilities
      ...[1, 2, 3, 4, 5, 6, 7, 8], // nonce
      ...[1, 2, 3, 4], // TTL
      ...[0x12, 0x34], // port
      ...[OptionType.DEVICE_ID, 6, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff],
      ...[OptionType.ADDRESS_V4, 6, 10, 1, 2, 3, 0x56, 0x78],
    ]);
  });

  it("round-trips every field", () => {
    const cases: AnnouncementInit[] = [
      init({ port: 1, ttl: 0 }),
      init({
        deviceId: "FF:FF:FF:FF:FF:FF",
        nonce: "ffffffffffffffff",
        port: 65535,
        ttl: 0xffffffff,
        solicit: true,
        capabilities: 0xffffffff,
        addresses: Array.from({ length: MAX_ADDRESSES }, (_, i) => ({
          host: `192.168.0.${i + 1}`,
          port: 1000 + i,
        })),
      }),
      init({ deviceId: "00:00:00:00:00:00", nonce: "0000000000000000", capabilities: 0 }),
    ];
    for (const c of cases) {
      assert.deepEqual(decoded(encodeAnnouncement(c)), {
        major: WIRE_MAJOR,
        minor: 0,
        maxMajor: WIRE_MAJOR,
        capabilities: c.capabilities ?? Capability.LINK_TCP,
        solicit: c.solicit ?? false,
        deviceId: c.deviceId.toUpperCase(),
        nonce: c.nonce,
        ttl: c.ttl,
        port: c.port,
        addresses: c.addresses ?? [],
      });
    }
  });

  it("defaults: TTL 15 s, LINK_TCP, no solicit, id upper-cased", () => {
    const a = decoded(encodeAnnouncement({ deviceId: "0a:bc:00:00:00:01", nonce: NA, port: 9 }));
    assert.equal(a.ttl, 15000);
    assert.equal(a.capabilities, Capability.LINK_TCP);
    assert.equal(a.solicit, false);
    assert.equal(a.deviceId, "0A:BC:00:00:00:01");
  });

  it("encode rejects invalid fields with a ParameterError naming them", () => {
    const bad: Array<[Record<string, unknown>, RegExp]> = [
      [{ deviceId: "nope" }, /device id "nope"/],
      [{ nonce: "xyz" }, /nonce "xyz"/],
      [{ nonce: "000000000000000A" }, /nonce/],
      [{ port: 0 }, /port 0/],
      [{ port: 65536 }, /port 65536/],
      [{ port: 1.5 }, /port 1.5/],
      [{ ttl: -1 }, /TTL -1/],
      [{ ttl: 2 ** 32 }, /TTL/],
      [{ capabilities: -1 }, /capabilities -1/],
      [{ addresses: [{ host: "239.1.1.1", port: 1 }] }, /address "239.1.1.1"/],
      [{ addresses: [{ host: "10.0.0.1", port: 0 }] }, /address port 0/],
      [{ addresses: Array(MAX_ADDRESSES + 1).fill({ host: "10.0.0.1", port: 1 }) }, /at most 8/],
    ];
    for (const [patch, message] of bad) {
      assert.throws(
        () => encodeAnnouncement({ ...init(), ...patch } as AnnouncementInit),
        (e: unknown) => e instanceof ParameterError && e.code === 401 && message.test(e.message),
        JSON.stringify(patch),
      );
    }
  });

  it("decode tells what a datagram is not, without throwing", () => {
    const good = encodeAnnouncement(init());
    const variant = (f: (b: Uint8Array) => void) => {
      const b = good.slice();
      f(b);
      return b;
    };
    const reason = (b: unknown) => {
      const r = decodeAnnouncement(b as Uint8Array);
      return r.ok ? "ok" : r.reason;
    };
    assert.equal(reason(new Uint8Array(0)), "foreign");
    assert.equal(reason(variant((b) => (b[0] = 0x4d))), "foreign");
    assert.equal(reason("LWDA"), "foreign");
    assert.equal(reason(null), "foreign");
    assert.deepEqual(decodeAnnouncement(variant((b) => (b[4] = 1))), {
      ok: false,
      reason: "version",
      major: 1,
    });
    assert.deepEqual(decodeAnnouncement(variant((b) => (b[4] = 3))), {
      ok: false,
      reason: "version",
      major: 3,
    });
    assert.equal(reason(good.subarray(0, HEADER_SIZE - 1)), "malformed");
    assert.equal(reason(variant((b) => (b[24] = b[25] = 0))), "malformed"); // port 0
    assert.equal(reason(variant((b) => (b[6] = 1))), "malformed"); // speaks less than it sends
    assert.equal(reason(good.subarray(0, good.length - 1)), "malformed"); // option cut short
    assert.equal(reason(withOptions(good, [0x02])), "malformed"); // half an option header
    assert.equal(reason(withOptions(good, [1, 6, 1, 2, 3, 4, 5, 6])), "malformed"); // two ids
    assert.equal(reason(withOptions(good, [2, 5, 10, 0, 0, 1, 0])), "malformed"); // bad length
    assert.equal(reason(withOptions(good, [2, 6, 224, 0, 0, 1, 0, 1])), "malformed"); // multicast
    assert.equal(reason(withOptions(good, [2, 6, 10, 0, 0, 1, 0, 0])), "malformed"); // port 0
    const long = new Uint8Array(MAX_ANNOUNCEMENT_SIZE + 1);
    long.set(good);
    assert.equal(reason(long), "malformed");
    assert.equal(reason(good.subarray(0, HEADER_SIZE)), "anonymous"); // no device id
  });

  it("skips unknown and reserved options; a critical unknown option refuses the datagram", () => {
    const good = encodeAnnouncement(init());
    const skipped = withOptions(
      good,
      [OptionType.ADDRESS_V6, 18, ...new Array(16).fill(0), 0, 80],
      [OptionType.SEALED_ID, 16, ...new Array(16).fill(7)],
      [0x7f, 0],
      [OptionType.ACCOUNT_TAG, 32, ...new Array(32).fill(9)],
    );
    assert.deepEqual(decoded(skipped), decoded(good));
    const critical = withOptions(good, [CRITICAL_OPTION | 0x10, 2, 0, 0]);
    assert.deepEqual(decodeAnnouncement(critical), { ok: false, reason: "critical" });
    // a datagram of a later minor: more capability and flag bits, options before the id
    const later = encodeAnnouncement(init({ capabilities: 0xff }));
    later[5] = 7;
    later[6] = 9; // speaks up to major 9
    later[7] = 0xfe;
    const moved = new Uint8Array(later.length + 4);
    moved.set(later.subarray(0, HEADER_SIZE));
    moved.set([0x60, 2, 0xab, 0xcd], HEADER_SIZE);
    moved.set(later.subarray(HEADER_SIZE), HEADER_SIZE + 4);
    const a = decoded(moved);
    assert.deepEqual(
      [a.minor, a.maxMajor, a.capabilities, a.solicit, a.deviceId],
      [7, 9, 0xff, false, A],
    );
  });

  it("decode reads a datagram at an offset in a larger buffer", () => {
    const buf = new Uint8Array(100);
    const bytes = encodeAnnouncement(init({ port: 7 }));
    buf.set(bytes, 33);
    assert.equal(decoded(buf.subarray(33, 33 + bytes.length)).port, 7);
  });

  it("randomNonce() gives 16 hex digits, different each time", () => {
    const seen = new Set<string>();
    for (let i = 0; i < 100; i++) seen.add(randomNonce());
    assert.equal(seen.size, 100);
    for (const n of seen) assert.match(n, /^[0-9a-f]{16}$/);
  });
});

const SEED = Number(process.env.LINKWEAVE_FUZZ_SEED ?? Date.now() % 2 ** 31) >>> 0;

describe("discovery decoder fuzz", () => {
  it(`never throws on random or mutated datagrams, and what it accepts is valid (seed ${SEED})`, () => {
    const rnd = prng(SEED);
    const bases = [
      encodeAnnouncement(init()),
      encodeAnnouncement(init({
        solicit: true,
        addresses: [{ host: "10.0.0.2", port: 1 }, { host: "10.0.0.3", port: 2 }],
      })),
      withOptions(encodeAnnouncement(init()), [OptionType.SEALED_ID, 4, 1, 2, 3, 4]),
    ];
    const deadline = performance.now() + 1500;
    let runs = 0;
    let accepted = 0;
    try {
      for (; runs < 200_000 && performance.now() < deadline; runs++) {
        let b: Uint8Array;
        const kind = rnd(4);
        if (kind === 0) {
          b = new Uint8Array(rnd(80));
          for (let j = 0; j < b.length; j++) b[j] = rnd(256);
          if (b.length >= 5 && rnd(2) === 0) b.set([0x4c, 0x57, 0x44, 0x41, 2]);
        } else {
          const base = bases[rnd(bases.length)];
          b = base.slice(0, Math.max(0, base.length + rnd(12) - 6));
          if (b.length < base.length + 6) {
            const grown = new Uint8Array(b.length + rnd(6));
            grown.set(b);
            b = grown;
          }
          for (let k = 1 + rnd(kind * 2); k > 0 && b.length > 0; k--) b[rnd(b.length)] = rnd(256);
        }
        const r = decodeAnnouncement(b);
        if (!r.ok) {
          assert.ok(
            ["foreign", "version", "malformed", "critical", "anonymous"].includes(r.reason),
          );
          continue;
        }
        accepted++;
        const a = r.announcement;
        assert.equal(a.major, WIRE_MAJOR);
        assert.ok(a.maxMajor >= a.major);
        assert.match(a.deviceId, /^([0-9A-F]{2}:){5}[0-9A-F]{2}$/);
        assert.match(a.nonce, /^[0-9a-f]{16}$/);
        assert.ok(a.port >= 1 && a.port <= 65535);
        assert.ok(a.addresses.length <= MAX_ADDRESSES);
        // what was accepted re-encodes to an announcement that decodes the same
        const again = decoded(encodeAnnouncement({ ...a, capabilities: a.capabilities }));
        assert.deepEqual(
          { ...again, minor: a.minor, maxMajor: a.maxMajor },
          { ...a },
        );
      }
    } catch (e) {
      throw new Error(
        `Fuzz run ${runs} failed with LINKWEAVE_FUZZ_SEED=${SEED}: ${(e as Error).message}`,
      );
    }
    assert.ok(runs > 1000, `only ${runs} runs`);
    assert.ok(accepted > 0, "the mutations never produced a valid announcement");
  });
});

describe("sealed device ids (devices with an account)", () => {
  /** A toy seal for the wire test: XOR with a key byte, the AAD's first byte as a tag. */
  const seal = (k: number) => ({
    seal: (id: Uint8Array, aad: Uint8Array) =>
      new Uint8Array([Math.floor(Math.random() * 256), aad[4], ...id.map((b) => b ^ k)]),
    open: (s: Uint8Array, aad: Uint8Array) =>
      s.length === 8 && s[1] === aad[4] ? s.subarray(2).map((b) => b ^ k) : undefined,
  });

  it("carries the id sealed: readable with the account's seal, anonymous without", () => {
    const bytes = encodeAnnouncement({ ...init(), seal: seal(0x5a) });
    const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
    assert.ok(!hex.includes(A.replaceAll(":", "").toLowerCase()), "the id is not in the clear");
    const r = decodeAnnouncement(bytes, seal(0x5a));
    assert.ok(r.ok && r.announcement.deviceId === A);
    assert.deepEqual(decodeAnnouncement(bytes), { ok: false, reason: "anonymous" });
    const other = decodeAnnouncement(bytes, { ...seal(0x5a), open: () => undefined });
    assert.deepEqual(other, { ok: false, reason: "anonymous" });
  });
});

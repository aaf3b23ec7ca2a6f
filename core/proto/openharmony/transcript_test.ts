/**
 * Whole conversations from the vectors, replayed against our state machine in
 * both roles: in OpenHarmony's place (fed the peer's writes, we must emit
 * what OpenHarmony emitted, report what its app saw and drop the link when it
 * did), and in the peer's place (fed OpenHarmony's writes, we must send what
 * the transcript's peer sent and see what its app would see).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DisconnectReason, ErrorCode } from "../../error_codes.ts";
import {
  advance,
  assertSameMessage,
  events,
  feed,
  type Mask,
  type Sent,
  sent,
} from "../../../tests/openharmony/harness.ts";
import {
  fromHex,
  type Step,
  type Transcript,
  type VectorMessage,
  vectors,
} from "../../../tests/openharmony/vectors.ts";
import { softbusCode } from "./codes.ts";
import { decodeMessage } from "./decode.ts";
import { GeneralIds, OhLink, type OhLinkEvent, type OhRole } from "./machine.ts";
import { parseGeneral, sameIgnoringCase } from "./wire.ts";

const OH = vectors.identities.oh;
const PEER = vectors.identities.peer;
const SERVER_NAME = OH.serverOrConnectionName;

/** What an OpenHarmony app saw, in the vectors' words. */
type AppEvent = Record<string, unknown>;

/** Our link events in the words of the transcripts' `app` entries. */
function asAppEvents(evs: OhLinkEvent[], accepted: Set<number>): AppEvent[] {
  const out: AppEvent[] = [];
  for (const e of evs) {
    switch (e.type) {
      case "open":
        if (accepted.has(e.stream)) out.push({ app: "acceptConnect", handle: e.stream });
        break;
      case "opened":
        out.push({ app: "stateChange", handle: e.stream, stateName: "connected", reason: 0 });
        break;
      case "rejected":
        out.push({
          app: "stateChange",
          handle: e.stream,
          stateName: "connectFailed",
          reason: softbusCode(e.code),
        });
        break;
      case "closed":
        out.push({
          app: "stateChange",
          handle: e.stream,
          stateName: "disconnected",
          reason: e.reason,
        });
        break;
      case "data":
        out.push({ app: "dataReceived", handle: e.stream, len: e.data.byteLength, hex: e.data });
        break;
    }
  }
  return out;
}

/** What an app on our side sees of OpenHarmony's app events (the SDK's filters applied). */
function expectedAppEvents(step: Step, failed: Set<number>): AppEvent[] {
  const out: AppEvent[] = [];
  for (const a of step.app) {
    const handle = a.handle as number;
    if (a.app === "acceptConnect") out.push({ app: "acceptConnect", handle });
    if (a.app === "dataReceived") {
      // The SDK drops payloads over 1024 bytes; the app never sees them.
      if (a.sdkDelivers) out.push({ app: "dataReceived", handle, len: a.len, hex: a.hexPrefix });
    }
    if (a.app === "stateChange") {
      // After a failed connect the app's connection is gone: later reports are not seen.
      if (failed.has(handle)) continue;
      if (a.stateName === "connectFailed") failed.add(handle);
      out.push({ app: "stateChange", handle, stateName: a.stateName, reason: a.reason });
    }
  }
  return out;
}

function sameAppEvents(ours: AppEvent[], theirs: AppEvent[], where: string): void {
  const norm = (list: AppEvent[]) =>
    list.map((e) => {
      if (e.app !== "dataReceived") return e;
      const bytes = e.hex instanceof ArrayBuffer
        ? Array.from(new Uint8Array(e.hex), (b) => b.toString(16).padStart(2, "0")).join("")
        : e.hex as string;
      return { ...e, hex: bytes.slice(0, 64) };
    });
  assert.deepEqual(norm(ours), norm(theirs), `${where}: app events`);
}

/** The payload of a NORMAL message in the vectors. */
function normalPayload(m: VectorMessage): Uint8Array {
  const g = parseGeneral(fromHex(m.messageHex).subarray(24));
  assert.ok(typeof g !== "string" && g.msgType === 12);
  return g.data;
}

function isMerge(m: VectorMessage): boolean {
  const d = m.decoded as {
    general?: { msgType: number };
    control?: { json: { KEY_REF_NUM: number } };
  };
  return d.general?.msgType === 3 || (d.control !== undefined && d.control.json.KEY_REF_NUM === 2);
}

// ------------------------------------------------------------ as OpenHarmony

function replayAsOpenHarmony(t: Transcript): void {
  const ids = new GeneralIds();
  const links = new Map<OhRole, OhLink>();
  const order: OhRole[] = [];
  const accepted = new Set<number>();
  const failed = new Set<number>();
  let appStream = 0;
  const make = (role: OhRole, now: number, mtu: number) => {
    const link = new OhLink({
      role,
      bundleName: OH.bundleName,
      devid: OH.udid,
      devtype: OH.devtype,
      requestNetworkId: false,
      now,
      mtu,
      ids,
    });
    links.set(role, link);
    order.push(role);
    return link;
  };
  const mask: Mask = { seq: true };

  t.steps.forEach((step, i) => {
    const where = `${t.scenario}@${t.mtu} step ${i} (${step.action})`;
    const out = new Map<OhRole, Sent[]>([["server", []], ["client", []]]);
    const evs = new Map<OhRole, OhLinkEvent[]>([["server", []], ["client", []]]);
    const collect = (now: number) => {
      for (const [role, link] of links) {
        out.get(role)!.push(...sent(link, now));
        for (const e of events(link)) {
          evs.get(role)!.push(e);
          if (e.type === "open") {
            // The app has server SERVER_NAME started (OpenHarmony matches names case-insensitively).
            if (sameIgnoringCase(e.name, SERVER_NAME)) {
              link.accept(e.stream);
              accepted.add(e.stream);
              appStream = e.stream;
            } else link.reject(e.stream, ErrorCode.PEER_SERVER_NOT_STARTED);
            out.get(role)!.push(...sent(link, now));
          }
          if (e.type === "opened") appStream = e.stream;
        }
      }
    };
    for (const link of links.values()) advance(link, step.t, collect);
    const now = step.t;
    if (step.actor === "peer" && step.mtu !== undefined) {
      make("server", now, step.mtu);
    } else if (step.actor === "peer") {
      const link = links.get(order[order.length - 1])!;
      feed(link, step.char!, step.writes!, now);
    } else if (step.actor === "app" && step.action.startsWith("createConnection")) {
      appStream = make("client", now, t.mtu).open(SERVER_NAME, { now });
    } else if (step.actor === "app" && step.action.startsWith("sendData")) {
      const link = [...links.values()].find((l) => l.streamState(appStream) === "open")!;
      assert.ok(link.send(appStream, normalPayload(step.oh[0])), where);
    } else if (step.actor === "app" && step.action === "disconnect()") {
      for (const link of links.values()) link.closeStream(appStream, now);
    }
    collect(now);

    // Messages, per link: OpenHarmony's side "server" is our server link.
    for (const role of ["server", "client"] as const) {
      let expected = step.oh.filter((m) => m.ohSide === role);
      // We never start a merge (docs/openharmony-ble.md): OpenHarmony's MERGE and the
      // reference it takes for it are not ours to send.
      if (t.scenario === "merge") expected = expected.filter((m) => !isMerge(m));
      const ours = out.get(role)!;
      assert.equal(ours.length, expected.length, `${where}: ${role} link sent ${ours.length}`);
      expected.forEach((m, k) => assertSameMessage(ours[k], m, mask, `${where} message ${k}`));
    }
    const all = [...evs.get("server")!, ...evs.get("client")!];
    sameAppEvents(asAppEvents(all, accepted), expectedAppEvents(step, failed), where);
    for (const role of ["server", "client"] as const) {
      const dropped = evs.get(role)!.some((e) => e.type === "linkClosed");
      const expected = step.linkDrops.some((d) => d.ohSide === role);
      assert.equal(dropped, expected, `${where}: ${role} link dropped`);
    }
  });
}

// ---------------------------------------------------------------- as the peer

/**
 * Our machine in the transcript peer's place: fed OpenHarmony's writes, it must send the peer's
 * messages (our app sending what the peer's app sent), except where the scripted peer breaks the
 * rules, which we cannot be made to do.
 */
function replayAsPeer(t: Transcript): void {
  const ids = new GeneralIds();
  if (t.scenario === "oh-server-peer-id-7") { for (let k = 0; k < 6; k++) ids.allocate(); }
  const links = new Map<OhRole, OhLink>(); // keyed by OUR role
  const order: OhRole[] = [];
  const handshake = t.steps.find((s) =>
    (s.decoded as { general?: { msgType: number } } | undefined)?.general?.msgType === 0
  );
  const hs = (handshake?.decoded as { general: { json: { name: string; bundle_name: string } } })
    ?.general.json;
  const rejects = t.scenario === "oh-client-rejected";
  const silent = t.scenario === "oh-client-timeout";
  const devtype = t.scenario === "oh-server-unknown-devtype" ? 255 : PEER.devtype;
  const make = (role: OhRole, now: number, mtu: number) => {
    const link = new OhLink({
      role,
      bundleName: role === "client" && hs !== undefined ? hs.bundle_name : OH.bundleName,
      devid: PEER.udid,
      devtype,
      requestNetworkId: false,
      now,
      mtu,
      ids,
    });
    links.set(role, link);
    order.push(role);
    return link;
  };
  let outbox: Sent[] = [];
  const seen: OhLinkEvent[] = [];
  let ourStream = 0;
  const mergeTargets: { stream: number; into: number }[] = [];
  const collect = (now: number) => {
    for (const link of links.values()) {
      outbox.push(...sent(link, now));
      for (const e of events(link)) {
        seen.push(e);
        if (e.type === "open" && !silent) {
          if (rejects) link.reject(e.stream, ErrorCode.PEER_SERVER_NOT_STARTED);
          else link.accept(e.stream);
          outbox.push(...sent(link, now));
        }
        if (e.type === "open" || e.type === "opened") ourStream = e.stream;
        if (e.type === "merge") mergeTargets.push(e);
      }
    }
  };
  const mask: Mask = { seq: true, identity: true };
  const ourMessageFor = (step: Step, where: string) => {
    const mine = outbox.shift();
    assert.ok(mine !== undefined, `${where}: we sent nothing where the peer sent a message`);
    assertSameMessage(mine, step as unknown as VectorMessage, mask, where);
  };

  t.steps.forEach((step, i) => {
    const where = `${t.scenario}@${t.mtu} step ${i} (${step.action}) as the peer`;
    for (const link of links.values()) advance(link, step.t, collect);
    const now = step.t;
    collect(now);
    if (step.actor === "peer" && step.mtu !== undefined) {
      // The peer connects to OpenHarmony's server: we are the GATT client.
      const link = make("client", now, step.mtu);
      if (hs !== undefined) link.open(hs.name, { now });
      collect(now);
    } else if (step.actor === "peer") {
      const d = step.decoded as { general?: { msgType: number; payloadLen?: number } };
      const link = links.get(order[order.length - 1])!;
      const injected = step.action.startsWith("HANDSHAKE before") ||
        (d.general?.msgType === 12 && d.general.payloadLen! > 1024);
      if (injected && step.action.startsWith("HANDSHAKE before")) {
        // The transcript's peer skips basic info; we cannot be made to: we sent ours and
        // hold our HANDSHAKE until the server's basic info arrives.
        assert.deepEqual(outbox.map((m) => m.char), ["2B00"], where);
        outbox = [];
      } else if (injected) {
        // A NORMAL over 1024 bytes: more than an OpenHarmony app (or ours) can send. From
        // here on our BleTransHeader numbers run one behind the peer's.
        assert.throws(() => link.send(ourStream, new Uint8Array(1025)), RangeError);
        mask.transSeq = true;
      } else if (d.general?.msgType === 12) {
        assert.ok(link.send(ourStream, normalPayload(step as unknown as VectorMessage)), where);
        collect(now);
        ourMessageFor(step, where);
      } else if (d.general?.msgType === 2) {
        link.closeStream(ourStream, now);
        collect(now);
        ourMessageFor(step, where);
      } else {
        ourMessageFor(step, where);
      }
    } else if (step.actor === "app" && step.action.startsWith("createConnection")) {
      // OpenHarmony connects to us: we are the GATT server.
      make("server", now, t.mtu);
    }
    // OpenHarmony's messages reach our link of the matching side.
    for (const m of step.oh) {
      const ours: OhRole = m.ohSide === "server" ? "client" : "server";
      const link = links.get(ours)!;
      feed(link, m.char, m.writes, now);
      collect(now);
    }
    if (step.linkDrops.length > 0) {
      for (const d of step.linkDrops) {
        links.get(d.ohSide === "server" ? "client" : "server")?.handleDisconnected();
      }
      collect(now);
    }
  });
  // Beyond the peer's messages we may only have released our reference (the scripted
  // peer never does; a linkweave or OpenHarmony client does).
  for (const m of outbox) {
    const d = decodeMessage(m.char, m.message);
    assert.equal(
      (d.control?.json as { KEY_DELTA?: number })?.KEY_DELTA,
      -1,
      `${t.scenario}: extra`,
    );
  }
  checkPeerOutcome(t, seen, mergeTargets, links);
}

/** What our app (in the peer's place) must have seen by the end. */
function checkPeerOutcome(
  t: Transcript,
  seen: OhLinkEvent[],
  merges: { stream: number; into: number }[],
  links: Map<OhRole, OhLink>,
): void {
  const types = seen.map((e) => e.type);
  const data = seen.flatMap((e) => e.type === "data" ? [e.data.byteLength] : []);
  switch (t.scenario) {
    case "oh-server":
      assert.ok(types.includes("opened"));
      assert.deepEqual(data, [1, 1000, 1024]);
      assert.ok(
        seen.some((e) => e.type === "closed" && e.reason === DisconnectReason.PEER_DISCONNECTED),
      );
      break;
    case "oh-server-peer-id-7":
      assert.deepEqual(data, [1]);
      break;
    case "oh-server-unknown-name":
      assert.ok(
        seen.some((e) => e.type === "rejected" && e.code === ErrorCode.PEER_SERVER_NOT_STARTED),
      );
      break;
    case "oh-server-case-insensitive":
      assert.ok(types.includes("opened"));
      break;
    case "oh-client":
      assert.deepEqual(data, [1]);
      assert.ok(
        seen.some((e) => e.type === "closed" && e.reason === DisconnectReason.PEER_DISCONNECTED),
      );
      assert.ok(types.includes("linkClosed"), "the client's last release closes our server link");
      break;
    case "oh-client-rejected":
    case "oh-client-timeout":
      assert.ok(types.includes("linkClosed"), "the client's release closes our server link");
      break;
    case "merge":
      assert.deepEqual(merges.map((m) => [m.stream, m.into]), [[0x2c000001, 0x2c000002]]);
      assert.equal(links.get("server")!.state, "open");
      break;
  }
}

describe("openharmony transcripts", () => {
  for (const t of vectors.transcripts) {
    it(`${t.scenario} at MTU ${t.mtu}: in OpenHarmony's place we emit and see what it did`, () => {
      replayAsOpenHarmony(t);
    });
    it(`${t.scenario} at MTU ${t.mtu}: in the peer's place we send what the peer sent`, () => {
      replayAsPeer(t);
    });
  }

  it("decodes every transcript step it feeds", () => {
    for (const t of vectors.transcripts) {
      for (const s of t.steps) {
        if (s.messageHex !== undefined) {
          assert.deepEqual(decodeMessage(s.char!, fromHex(s.messageHex)), s.decoded);
        }
      }
    }
  });
});

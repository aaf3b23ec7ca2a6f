/**
 * abilityConnectionManager benchmark: two devices in two processes (this
 * one is device A, the caller; a child of the same runtime is device B,
 * whose ability accepts), each figure beside its baseline measured in the
 * same run, alternating, the median of `--reps` runs (default 3):
 *
 * 1. `sendData` of 100 MiB, from the call until the promise resolves (the
 *    peer has it), vs the runtime's raw TCP sending the same bytes until the
 *    receiver acknowledges the last one (`bench/_raw.ts`). Target: >= 0.8x.
 *    For context, the same bytes as 128 KiB messages on a bare stream of the
 *    same link (the device driver's `Port`, no session layer), vs the same
 *    raw TCP figure: what the link under the sessions carries; and the same
 *    again with the receiver copying each message into one fresh 100 MiB
 *    buffer, as a session's receiver must to deliver one `ArrayBuffer`.
 *    All four alternate within each repetition.
 * 2. `sendMessage` round trip (a 64-byte text echoed by B), p50 and p99 of
 *    2000 sequential ones, vs a raw TCP 64-byte ping-pong. For context, a
 *    64-byte message echoed on a bare stream of the same link.
 * 3. A 1920x1080 photo-like image: `sendImage` time (encode, send, decode,
 *    acknowledge) vs `sendData` of its raw RGBA pixels; and its size on the
 *    wire (JPEG, quality 30) vs the raw RGB pixels. Target: >= 3x smaller.
 * 4. Stream frame latency at 30 fps (150 frames of 2000 bytes, 1 Mbit/s),
 *    from `writeFrame` to the sink's `frame` event, p50 and p99, vs the same
 *    frames over raw TCP (timestamp to arrival).
 *
 * `--rows 1,3` measures some rows only (and writes only those).
 *
 * Results: `bench/results/ability-<runtime>.json`. Run: `npm run
 * bench:ability` (Deno, then Bun), or `deno run -A bench/ability_bench.ts` /
 * `bun bench/ability_bench.ts`.
 *
 * @module
 */
import process from "node:process";
import { fileURLToPath } from "node:url";
import { report, type Row, row } from "./_report.ts";
import { type Child, serveRole, sleep, spawnRole } from "./_ctl.ts";
import { RAW_NAME, rawConnect, rawListen } from "./_raw.ts";
import { createDevice, type Device } from "../device.ts";
import { type DeviceDriver, Port } from "../core/device/driver.ts";
import {
  AbilityConstant,
  type PeerInfo,
  StreamRole,
  surface,
  UIAbility,
} from "../ability_connection_manager.ts";
import type { ConnectOptions } from "../ability_connection_manager.ts";
import { createImagePacker, createPixelMapSync, PixelMapFormat } from "../image.ts";
import { photo } from "../tests/ability/_images.ts";

const SCRIPT = fileURLToPath(import.meta.url);
const A = "02:00:00:00:BA:01";
const B = "02:00:00:00:BA:02";
const INFO = { bundleName: "com.example.bench", moduleName: "entry", abilityName: "EntryAbility" };
const DATA = 100 * 1024 * 1024;
const RTT_N = 2000;
const TEXT = "x".repeat(64);
const FRAMES = 150;
const FRAME = 2000;
const BARE_KIND = 99;
const ECHO_KIND = 98;
const BARE_MSG = 128 * 1024;

/** A bare stream of the link: counts what arrives, answers one byte per `expect` reached. */
class Counter extends Port {
  expect = 0;
  got = 0;
  /** Copy every message into one fresh buffer, made at the first (as a session's receiver does). */
  assemble = false;
  into: Uint8Array | undefined;
  onAck: () => void = () => {};
  onDrained: () => void = () => {};
  override onData(data: ArrayBuffer): void {
    if (data.byteLength === 1) return this.onAck();
    if (this.assemble) {
      this.into ??= new Uint8Array(this.expect);
      this.into.set(new Uint8Array(data), this.got);
    }
    this.got += data.byteLength;
    if (this.expect > 0 && this.got >= this.expect) {
      this.expect = 0;
      this.got = 0;
      this.into = undefined;
      this.send(new Uint8Array(1));
    }
  }
  override onDrain(): void {
    this.onDrained();
  }
}

/** A bare stream of the link: B's end sends back what it gets, A's end calls `onEcho`. */
class Echo extends Port {
  constructor(readonly reply: boolean) {
    super();
  }
  onEcho: () => void = () => {};
  override onData(data: ArrayBuffer): void {
    if (this.reply) this.send(new Uint8Array(data));
    else this.onEcho();
  }
}

function flag(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

function wallClock(): number {
  return performance.timeOrigin + performance.now();
}

// ------------------------------------------------------------ device B (child)

async function receiver(): Promise<void> {
  const dev = createDevice({ deviceId: B, port: 0, discovery: "off" });
  const m = dev.abilityConnectionManager;
  let latencies: number[] = [];
  class Sink extends UIAbility {
    onCollaborate(want: Record<string, unknown>): number {
      const p = want["ohos.extra.param.key.supportCollaborateIndex"] as Record<string, unknown>;
      const o = p["ConnectOption"] as ConnectOptions;
      const id = m.createAbilityConnectionSession(
        "bench",
        this.context,
        p["PeerInfo"] as PeerInfo,
        {
          needSendData: true,
          needReceiveStream: o.needSendStream,
        },
      );
      m.on("receiveMessage", id, (i) => {
        if (i.msg === "sink") void sink(id);
        else void m.sendMessage(id, i.msg!);
      });
      void m.acceptConnect(id, p["ohos.dms.collabToken"] as string);
      return AbilityConstant.CollaborateResult.ACCEPT;
    }
  }
  const sink = async (id: number) => {
    const streamId = await m.createStream(id, { name: "bench", role: StreamRole.SINK });
    const display = surface.createSurface();
    display.on("frame", (f) => latencies.push(wallClock() - f.timestamp));
    m.setSurfaceId(streamId, display.surfaceId, { width: 64, height: 48 });
    m.startStream(streamId);
    await m.sendMessage(id, "sink-started");
  };
  await m.registerAbility(new Sink(), INFO);
  const runtime = await dev.runtime();
  const port = runtime.port;
  const bare = new Counter();
  (runtime as DeviceDriver).setAcceptor(BARE_KIND, () => bare);
  (runtime as DeviceDriver).setAcceptor(ECHO_KIND, () => new Echo(true));
  // Raw baselines: a sink that acknowledges a byte count, an echo, and a frame sink.
  let expect = 0;
  let got = 0;
  const sinkL = await rawListen((s) => (b) => {
    got += b.length;
    if (expect > 0 && got >= expect) {
      expect = 0;
      s.write(new Uint8Array([1]));
    }
  });
  const echoL = await rawListen((s) => (b) => s.write(b.slice()));
  let rawLatencies: number[] = [];
  const framesL = await rawListen(() => {
    let buf = new Uint8Array(0);
    return (b) => {
      const all = new Uint8Array(buf.length + b.length);
      all.set(buf);
      all.set(b, buf.length);
      let off = 0;
      while (all.length - off >= 12) {
        const v = new DataView(all.buffer, off);
        const len = v.getUint32(0);
        if (all.length - off < 12 + len) break;
        rawLatencies.push(wallClock() - v.getFloat64(4));
        off += 12 + len;
      }
      buf = all.slice(off);
    };
  });
  serveRole({ port, sink: sinkL.port, echo: echoL.port, frames: framesL.port }, {
    expect: ({ bytes, assemble }) => {
      got = 0;
      expect = bytes;
      bare.expect = bytes;
      bare.got = 0;
      bare.assemble = assemble === true;
      bare.into = undefined;
    },
    latencies: () => {
      const out = latencies;
      latencies = [];
      return out;
    },
    rawLatencies: () => {
      const out = rawLatencies;
      rawLatencies = [];
      return out;
    },
  });
}

// ------------------------------------------------------------ device A (parent)

interface Ports {
  port: number;
  sink: number;
  echo: number;
  frames: number;
}

async function main(): Promise<void> {
  const reps = Number(flag("--reps") ?? "3");
  const only = flag("--rows")?.split(",");
  const wanted = (r: string) => only === undefined || only.includes(r);
  const child: Child = await spawnRole(SCRIPT, "receiver");
  const ports = child.ready as Ports;
  const dev: Device = createDevice({
    deviceId: A,
    port: 0,
    discovery: "off",
    peers: [`${B}@127.0.0.1:${ports.port}`],
  });
  const m = dev.abilityConnectionManager;
  const ability = new UIAbility();
  await m.registerAbility(ability, INFO);
  const open = async (options: ConnectOptions, name: string) => {
    const id = m.createAbilityConnectionSession(
      name,
      ability.context,
      { deviceId: B, ...INFO },
      options,
    );
    const r = await m.connect(id);
    if (!r.isConnected) throw new Error(`connect failed: ${JSON.stringify(r)}`);
    return id;
  };
  const session = await open({ needSendData: true }, "bench");
  const rows: Row[] = [];
  let failed = false;

  // 1. sendData 100 MiB vs raw TCP; for context the same bytes on a bare stream of the link,
  // counted, and copied into one fresh buffer (what the session's receiver does).
  if (wanted("1")) {
    try {
      const data = new Uint8Array(DATA);
      for (let i = 0; i < DATA; i += 4096) data[i] = i >>> 12;
      let acked: () => void = () => {};
      const rawSock = await rawConnect(ports.sink, () => acked());
      const driver = await dev.runtime() as DeviceDriver;
      const bare = new Counter();
      const opened = new Promise<void>((resolve) => bare.onOpened = resolve);
      driver.connect(B, "bare", bare, { kind: BARE_KIND });
      await opened;
      const bareSend = async (assemble: boolean) => {
        await child.call("expect", { bytes: DATA, assemble });
        const done = new Promise<void>((resolve) => bare.onAck = resolve);
        const t = performance.now();
        for (let off = 0; off < DATA;) {
          const piece = data.slice(off, off + BARE_MSG);
          if (bare.send(piece)) off += BARE_MSG;
          else await new Promise<void>((resolve) => bare.onDrained = resolve);
        }
        await done;
        return DATA / 1e6 / ((performance.now() - t) / 1000);
      };
      const ours: number[] = [];
      const base: number[] = [];
      const link: number[] = [];
      const assembled: number[] = [];
      for (let r = 0; r < reps; r++) {
        let t = performance.now();
        await m.sendData(session, data.buffer);
        ours.push(DATA / 1e6 / ((performance.now() - t) / 1000));
        await child.call("expect", { bytes: DATA });
        const done = new Promise<void>((resolve) => acked = resolve);
        t = performance.now();
        for (let off = 0; off < DATA; off += 256 * 1024) {
          const w = rawSock.write(data.subarray(off, Math.min(DATA, off + 256 * 1024)));
          if (w !== undefined) await w;
        }
        await done;
        base.push(DATA / 1e6 / ((performance.now() - t) / 1000));
        link.push(await bareSend(false));
        assembled.push(await bareSend(true));
      }
      rawSock.close();
      bare.close();
      const baseline = `raw ${RAW_NAME}, the same bytes, until acknowledged`;
      rows.push(row({
        name: "sendData 100 MiB, until the peer has it",
        value: median(ours),
        unit: "MB/s",
        baseline,
        baselineValue: median(base),
      }, { target: { on: "ratio", min: 0.8 } }));
      rows.push(row({
        name: "the same bytes on a bare link stream, 128 KiB messages (context)",
        value: median(link),
        unit: "MB/s",
        baseline,
        baselineValue: median(base),
      }));
      rows.push(row({
        name: "the same on a bare link stream, copied into one fresh 100 MiB buffer (context)",
        value: median(assembled),
        unit: "MB/s",
        baseline,
        baselineValue: median(base),
      }));
    } catch (e) {
      failed = true;
      console.error(`row 1 failed: ${(e as Error).stack}`);
    }
  }

  // 2. sendMessage round trip vs raw ping-pong.
  if (wanted("2")) {
    try {
      const ours: number[] = [];
      let echoed: () => void = () => {};
      m.on("receiveMessage", session, () => echoed());
      const base: number[] = [];
      let pong: () => void = () => {};
      let pending = 0;
      const ping = new TextEncoder().encode(TEXT);
      const rawSock = await rawConnect(ports.echo, (b) => {
        pending -= b.length;
        if (pending <= 0) pong();
      });
      const driver = await dev.runtime() as DeviceDriver;
      const echo = new Echo(false);
      const opened = new Promise<void>((resolve) => echo.onOpened = resolve);
      driver.connect(B, "echo", echo, { kind: ECHO_KIND });
      await opened;
      const link: number[] = [];
      for (let r = 0; r < reps; r++) {
        for (let i = 0; i < RTT_N / reps; i++) {
          const t = performance.now();
          const back = new Promise<void>((resolve) => echo.onEcho = resolve);
          echo.send(ping);
          await back;
          link.push((performance.now() - t) * 1000);
        }
        for (let i = 0; i < RTT_N / reps; i++) {
          const t = performance.now();
          const back = new Promise<void>((resolve) => echoed = resolve);
          await m.sendMessage(session, TEXT);
          await back;
          ours.push((performance.now() - t) * 1000);
        }
        for (let i = 0; i < RTT_N / reps; i++) {
          const t = performance.now();
          const back = new Promise<void>((resolve) => pong = resolve);
          pending = ping.length;
          const w = rawSock.write(ping);
          if (w !== undefined) await w;
          await back;
          base.push((performance.now() - t) * 1000);
        }
      }
      rawSock.close();
      echo.close();
      m.off("receiveMessage", session);
      for (const p of [50, 99]) {
        rows.push(row({
          name: `sendMessage round trip p${p} (64-byte text echoed)`,
          value: percentile(ours, p),
          unit: "us",
          baseline: `raw ${RAW_NAME} 64-byte ping-pong`,
          baselineValue: percentile(base, p),
        }, { lowerIsBetter: true }));
      }
      for (const p of [50, 99]) {
        rows.push(row({
          name: `64-byte round trip p${p} on a bare link stream (context)`,
          value: percentile(link, p),
          unit: "us",
          baseline: `raw ${RAW_NAME} 64-byte ping-pong`,
          baselineValue: percentile(base, p),
        }, { lowerIsBetter: true }));
      }
    } catch (e) {
      failed = true;
      console.error(`row 2 failed: ${(e as Error).stack}`);
    }
  }

  // 3. A 1080p image: time vs its raw pixels; wire size vs raw RGB.
  if (wanted("3")) {
    try {
      const { width, height, rgba } = photo(1920, 1080);
      const pm = createPixelMapSync(rgba.buffer, {
        size: { width, height },
        srcPixelFormat: PixelMapFormat.RGBA_8888,
      });
      const jpeg = await createImagePacker().packToData(pm, { format: "image/jpeg", quality: 30 });
      const ours: number[] = [];
      const base: number[] = [];
      for (let r = 0; r < reps; r++) {
        let t = performance.now();
        await m.sendImage(session, pm);
        ours.push(performance.now() - t);
        t = performance.now();
        await m.sendData(session, rgba.buffer);
        base.push(performance.now() - t);
      }
      rows.push(row({
        name: "1920x1080 image, sendImage until the peer decoded it",
        value: median(ours),
        unit: "ms",
        baseline: "sendData of its raw RGBA pixels",
        baselineValue: median(base),
      }, { lowerIsBetter: true }));
      rows.push(row({
        name: "1920x1080 image on the wire (JPEG, quality 30)",
        value: jpeg.byteLength,
        unit: "bytes",
        baseline: "raw RGB pixels",
        baselineValue: width * height * 3,
      }, { lowerIsBetter: true, target: { on: "ratio", min: 3 } }));
    } catch (e) {
      failed = true;
      console.error(`row 3 failed: ${(e as Error).stack}`);
    }
  }

  // 4. Stream frame latency at 30 fps vs raw TCP.
  if (wanted("4")) {
    try {
      const streamSession = await open({ needSendStream: true }, "bench-stream");
      const started = new Promise<void>((resolve) =>
        m.on("receiveMessage", streamSession, () => resolve())
      );
      await m.sendMessage(streamSession, "sink");
      await started;
      const streamId = await m.createStream(streamSession, {
        name: "bench",
        role: StreamRole.SOURCE,
        bitrate: 1_000_000,
      });
      const producer = surface.getProducer(m.getSurfaceId(streamId, { width: 64, height: 48 }));
      m.startStream(streamId);
      const frame = new Uint8Array(FRAME);
      const rawSock = await rawConnect(ports.frames, () => {});
      const ours: number[] = [];
      const base: number[] = [];
      for (let r = 0; r < reps; r++) {
        for (let i = 0; i < FRAMES; i++) {
          producer.writeFrame(frame, { timestamp: wallClock() });
          await sleep(1000 / 30);
        }
        await sleep(200);
        ours.push(...await child.call("latencies"));
        for (let i = 0; i < FRAMES; i++) {
          const msg = new Uint8Array(12 + FRAME);
          const v = new DataView(msg.buffer);
          v.setUint32(0, FRAME);
          v.setFloat64(4, wallClock());
          const w = rawSock.write(msg);
          if (w !== undefined) await w;
          await sleep(1000 / 30);
        }
        await sleep(200);
        base.push(...await child.call("rawLatencies"));
      }
      rawSock.close();
      const stats = m.streamStats(streamId);
      console.log(
        `stream: ${stats.sent} frames sent, ${stats.dropped} dropped, ${ours.length} received`,
      );
      for (const p of [50, 99]) {
        rows.push(row({
          name: `stream frame latency p${p}, 30 fps, 2000-byte frames`,
          value: percentile(ours, p),
          unit: "ms",
          baseline: `the same frames over raw ${RAW_NAME}`,
          baselineValue: percentile(base, p),
        }, { lowerIsBetter: true }));
      }
    } catch (e) {
      failed = true;
      console.error(`row 4 failed: ${(e as Error).stack}`);
    }
  }

  report("ability", rows);
  await dev.close();
  await child.close();
  process.exit(failed ? 1 : 0);
}

if (process.argv[2] === "receiver") await receiver();
else await main();

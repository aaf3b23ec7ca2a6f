/**
 * Device B of the multi-process ability tests: a process that registers the
 * ability `com.example.lw/entry/EntryAbility` on its embedded device
 * (configured by `LINKWEAVE_*`) and answers collaborations as the caller's
 * `ConnectOptions.parameters.mode` says:
 *
 * - `accept` (default): accept; echo every text back; answer data with its
 *   SHA-256 (a JSON text), images with their pixels (`sendData`), and run a
 *   sink stream when asked (`stream-sink`), reporting frame order and
 *   latency on `stream-report`;
 * - `reject`: `reject(token, "busy: <n>")`;
 * - `return-reject`: return `REJECT` from `onCollaborate` without calling `reject`;
 * - `silent`: never answer (the caller times out).
 *
 * With `LW_NO_HANDLER=1` the ability has no `onCollaborate` at all. It prints
 * `{"ready":...}` once registered, and one JSON line per event it sees. It
 * samples its memory every 50 ms after a garbage collection (when the
 * runtime exposes one) and reports the peak with each data transfer.
 *
 * @module
 */
import { createHash } from "node:crypto";
import process from "node:process";
import { abilityConnectionManager as acm, AbilityConstant, UIAbility } from "../../mod.ts";
import { createDevice } from "../../device.ts";

const dev = createDevice();
const api = dev.abilityConnectionManager;

function log(event: Record<string, unknown>): void {
  console.log(JSON.stringify(event));
}

/** RSS after a full garbage collection where the runtime allows one (the tests expose it). */
function settledRss(): number {
  const g = globalThis as { gc?: () => void; Bun?: { gc(force: boolean): void } };
  if (g.Bun !== undefined) g.Bun.gc(true);
  else g.gc?.();
  return process.memoryUsage().rss;
}

// The highest settled RSS seen, sampled every 50 ms: what the process needed at its peak. (A
// forced full collection every 10 ms left a loaded machine too little time to receive 100 MiB.)
let peak = 0;
const sampler = setInterval(() => peak = Math.max(peak, settledRss()), 50);
(sampler as { unref?: () => void }).unref?.();
if (typeof sampler === "number" && "Deno" in globalThis) {
  (globalThis as unknown as { Deno: { unrefTimer(id: number): void } }).Deno.unrefTimer(sampler);
}

function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))];
}

function serve(id: number): void {
  api.on(
    "disconnect",
    id,
    (info) => log({ event: "disconnect", sessionId: id, reason: info.reason }),
  );
  api.on("receiveMessage", id, (info) => {
    const msg = info.msg!;
    if (msg === "stream-sink") return void startSink(id);
    if (msg === "stream-report") return void reportSink(id);
    void api.sendMessage(id, msg);
  });
  api.on("receiveData", id, (info) => {
    const data = info.data!;
    const sha256 = createHash("sha256").update(new Uint8Array(data)).digest("hex");
    const rss = Math.max(peak, settledRss());
    peak = 0;
    log({ event: "data", bytes: data.byteLength, sha256, rss });
    void api.sendMessage(id, JSON.stringify({ sha256, bytes: data.byteLength, rss }));
  });
  api.on("receiveImage", id, (info) => {
    const image = info.image!;
    const { size } = image.getImageInfoSync();
    log({ event: "image", ...size });
    const pixels = new ArrayBuffer(image.getPixelBytesNumber());
    image.readPixelsToBufferSync(pixels);
    void api.sendData(id, pixels);
  });
}

const sinks = new Map<number, { seqs: number[]; latencies: number[]; streamId: number }>();

async function startSink(id: number): Promise<void> {
  const streamId = await api.createStream(id, { name: "camera", role: acm.StreamRole.SINK });
  const display = acm.surface.createSurface();
  const stats = { seqs: [] as number[], latencies: [] as number[], streamId };
  sinks.set(id, stats);
  display.on("frame", (f) => {
    stats.seqs.push(f.seq);
    stats.latencies.push(performance.timeOrigin + performance.now() - f.timestamp);
  });
  api.setSurfaceId(streamId, display.surfaceId, { width: 64, height: 48 });
  api.startStream(streamId);
  log({ event: "sinkStarted", streamId });
  void api.sendMessage(id, "sink-started");
}

function reportSink(id: number): void {
  const s = sinks.get(id);
  if (s === undefined) return;
  const inOrder = s.seqs.every((x, i) => i === 0 || x > s.seqs[i - 1]);
  const report = {
    frames: s.seqs.length,
    inOrder,
    p50: percentile(s.latencies, 0.5),
    p99: percentile(s.latencies, 0.99),
    max: Math.max(...s.latencies),
  };
  log({ event: "sinkReport", ...report });
  void api.sendMessage(id, JSON.stringify(report));
}

class EntryAbility extends UIAbility {
  onCollaborate(wantParam: Record<string, unknown>): number {
    const p = wantParam["ohos.extra.param.key.supportCollaborateIndex"] as Record<string, unknown>;
    const peer = p["PeerInfo"] as acm.PeerInfo;
    const option = p["ConnectOption"] as acm.ConnectOptions;
    const token = p["ohos.dms.collabToken"] as string;
    const mode = option.parameters?.mode ?? "accept";
    log({ event: "collaborate", mode, peer, option, plural: p["ConnectOptions"] !== undefined });
    if (mode === "reject") {
      api.reject(token, `busy: ${option.parameters?.n ?? ""}`);
      return AbilityConstant.CollaborateResult.REJECT;
    }
    if (mode === "return-reject") return AbilityConstant.CollaborateResult.REJECT;
    if (mode === "silent") return AbilityConstant.CollaborateResult.ACCEPT;
    const id = api.createAbilityConnectionSession("lwTest", this.context, peer, {
      ...option,
      needSendData: true,
      needSendStream: false,
      needReceiveStream: option.needSendStream === true,
    });
    serve(id);
    api.acceptConnect(id, token).then(
      () => log({ event: "accepted", sessionId: id }),
      (e) => log({ event: "acceptFailed", sessionId: id, code: e.code, message: e.message }),
    );
    return AbilityConstant.CollaborateResult.ACCEPT;
  }
}

class NoHandlerAbility extends UIAbility {}

const ability = process.env.LW_NO_HANDLER === "1" ? new NoHandlerAbility() : new EntryAbility();
await api.registerAbility(ability, {
  bundleName: "com.example.lw",
  moduleName: "entry",
  abilityName: "EntryAbility",
});
const runtime = await dev.runtime();
log({ ready: runtime.port, id: runtime.deviceId, rss: settledRss() });

/**
 * `linkweave monitor` as a process, with a peer process running `linkweave
 * bench` against it over loopback: the JSON snapshots show the link and the
 * bench connection with its bytes and rates, and a round trip; `--count`
 * ends it with exit 0, SIGTERM too; `--web` serves the page, one snapshot
 * and server-sent events carrying the same live data, on 127.0.0.1 only,
 * refusing a request that names another host.
 */
import assert from "node:assert/strict";
import { request } from "node:http";
import process from "node:process";
import { after, before, describe, it } from "node:test";
import { jsonLines, linkweave, listeningPort, run, type Sandbox, sandbox } from "./_cli.ts";

const MON = "02:00:00:00:C7:01";
const PEER = "02:00:00:00:C7:02";

interface Snap {
  links: {
    peer: string;
    rtt: number | null;
    received: number;
    channels: { kind: string | null; health: string | null; rxRate: number | null }[];
  }[];
  connections: { peer: string; use: string; role: string; received: number }[];
}

/** GET a path with a given Host header: status and body. */
function get(port: number, path: string, host = `127.0.0.1:${port}`) {
  return new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path, headers: { host } }, (res) => {
      let body = "";
      res.on("data", (b: Uint8Array) => body += new TextDecoder().decode(b));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

/** Read server-sent events until one satisfies `ok` (at most `ms`). */
function waitForEvent(port: number, ok: (s: Snap) => boolean, ms = 15_000): Promise<Snap> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path: "/events" }, (res) => {
      assert.equal(res.headers["content-type"], "text/event-stream");
      let buf = "";
      res.on("data", (b: Uint8Array) => {
        buf += new TextDecoder().decode(b);
        let end;
        while ((end = buf.indexOf("\n\n")) >= 0) {
          const event = buf.slice(0, end);
          buf = buf.slice(end + 2);
          if (!event.startsWith("data: ")) continue;
          const s = JSON.parse(event.slice(6)) as Snap;
          if (ok(s)) {
            clearTimeout(timer);
            req.destroy();
            resolve(s);
          }
        }
      });
    });
    const timer = setTimeout(() => {
      req.destroy();
      reject(new Error("no such event"));
    }, ms);
    req.on("error", () => {});
    req.end();
  });
}

const busy = (s: Snap) =>
  s.links.some((l) => l.peer === PEER && l.received > 0) &&
  s.connections.some((c) => c.peer === PEER && c.use === "bench" && c.received > 0);

describe("linkweave monitor, as a process", () => {
  let box: Sandbox;
  before(() => {
    box = sandbox();
  });
  after(() => box.remove());

  /** `bench` from PEER to the monitor. */
  function bench(port: number) {
    return run(
      [
        "bench",
        "--seconds",
        "1",
        "--pings",
        "20",
        "--id",
        PEER,
        "--peer",
        `${MON}@127.0.0.1:${port}`,
        MON,
      ],
      box.env,
    );
  }

  it("--json snapshots show the link and the bench connection live; SIGTERM ends it", async () => {
    const m = linkweave(["monitor", "--json", "--interval", "0.25", "--id", MON], box.env);
    try {
      const port = await listeningPort(m);
      const b = await bench(port);
      assert.equal(b.code, 0, b.err);
      await m.waitFor(/"use":"bench"/);
      // Not m.proc.kill(): Deno then reports the signal, not the exit code.
      process.kill(m.proc.pid!, "SIGTERM");
      assert.equal(await m.exit(), 0, m.err);
      const snaps = jsonLines(m.out) as unknown as Snap[];
      const live = snaps.find(busy);
      assert.ok(live, m.out.slice(-2000));
      const link = live.links.find((l) => l.peer === PEER)!;
      assert.ok(link.channels.length >= 1);
      // The channel's own figures, from device.linkStats().
      assert.equal(link.channels[0].kind, "tcp");
      assert.equal(link.channels[0].health, "up");
      assert.ok(
        snaps.some((s) => s.links.some((l) => l.peer === PEER && (l.channels[0]?.rxRate ?? 0) > 0)),
        "no channel rate",
      );
      assert.ok(snaps.some((s) => s.links.some((l) => typeof l.rtt === "number")), "no rtt");
      assert.equal(live.connections.find((c) => c.use === "bench")!.role, "server");
    } finally {
      m.kill();
    }
  });

  it("--count N prints N views and exits 0", async () => {
    const m = await run(["monitor", "--count", "2", "--interval", "0.2", "--id", MON], box.env);
    assert.equal(m.code, 0, m.err);
    assert.equal(m.out.match(/^Links \(0\)$/gm)?.length, 2, m.out);
  });

  it("--web serves the page, /snapshot and live /events on loopback only", async () => {
    const m = linkweave(["monitor", "--web", "--interval", "0.25", "--id", MON], box.env);
    try {
      const port = await listeningPort(m);
      const web = Number((await m.waitFor(/web view on http:\/\/127\.0\.0\.1:(\d+)\//))[1]);
      const page = await get(web, "/");
      assert.equal(page.status, 200);
      assert.match(page.body, /new EventSource\("\/events"\)/);
      const first = await get(web, "/snapshot");
      assert.equal(first.status, 200);
      assert.deepEqual(JSON.parse(first.body).links, []);
      assert.equal((await get(web, "/snapshot", `evil.example:${web}`)).status, 403);
      assert.equal((await get(web, "/nosuch")).status, 404);
      const live = waitForEvent(web, busy);
      const b = await bench(port);
      assert.equal(b.code, 0, b.err);
      const s = await live;
      assert.ok(s.links.find((l) => l.peer === PEER)!.received > 0);
    } finally {
      m.kill();
    }
  });

  it("wrong usage is exit 2", async () => {
    const m = await run(["monitor", "--interval", "0"], box.env);
    assert.equal(m.code, 2);
    assert.match(m.err, /--interval "0"/);
  });
});

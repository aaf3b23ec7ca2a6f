/**
 * The page of `linkweave monitor --web` in headless Chromium, with a peer
 * process running `linkweave bench` against the monitor over loopback: the
 * page's own script (EventSource on /events) fills the tables with the
 * link and the bench connection and draws the receive rate in the link's
 * chart. With `LINKWEAVE_SCREENSHOT=FILE` it also saves a PNG of the page
 * (how `docs/monitor.png` was made).
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import process from "node:process";
import { after, before, it } from "node:test";
import { describeWith } from "../harness/env.ts";
import { openPage, type Page } from "./_chromium.ts";
import { linkweave, listeningPort, type Run, type Sandbox, sandbox } from "./_cli.ts";

const MON = "02:00:00:00:C8:01";
const PEER = "02:00:00:00:C8:02";

/** What the test reads from the page. */
interface Seen {
  status: string;
  links: string[][];
  connections: string[][];
  charts: string[];
  /** Pixels of the receive line's colour in the first chart. */
  rxPixels: number;
}

const READ = `(() => {
  if (document.getElementById("status") === null) return null; // still loading
  const rows = (id) => [...document.querySelectorAll("#" + id + " tr")].slice(1)
    .map((tr) => [...tr.cells].map((c) => c.textContent));
  const canvas = document.querySelector("#charts canvas");
  let rxPixels = 0;
  if (canvas) {
    const d = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
    for (let i = 0; i < d.length; i += 4) {
      if (Math.abs(d[i] - 0xd9) < 24 && Math.abs(d[i + 1] - 0x48) < 24 && Math.abs(d[i + 2] - 0x0f) < 24) rxPixels++;
    }
  }
  return {
    status: document.getElementById("status").textContent,
    links: rows("links"),
    connections: rows("connections"),
    charts: [...document.querySelectorAll("#charts figcaption")].map((f) => f.textContent),
    rxPixels,
  };
})()`;

describeWith("linkweave monitor --web in headless Chromium", {
  commands: { chromium: "chromium" },
}, () => {
  let box: Sandbox;
  let monitor: Run;
  let page: Page | undefined;
  before(() => {
    box = sandbox();
  });
  after(async () => {
    await page?.close();
    monitor?.kill();
    box.remove();
  });

  it("shows the live link, the bench connection and its rate chart", async () => {
    monitor = linkweave(["monitor", "--web", "--interval", "0.25", "--id", MON], box.env);
    const port = await listeningPort(monitor);
    const web = (await monitor.waitFor(/web view on (http:\/\/127\.0\.0\.1:\d+\/)/))[1];
    // The page first: a browser slow to start must not miss the 3 s the bench runs.
    page = await openPage(web);
    const bench = linkweave(
      [
        "bench",
        "--seconds",
        "3",
        "--pings",
        "50",
        "--id",
        PEER,
        "--peer",
        `${MON}@127.0.0.1:${port}`,
        MON,
      ],
      box.env,
    );
    try {
      let seen: Seen | undefined;
      const until = Date.now() + 15_000;
      while (Date.now() < until) {
        seen = await page.evaluate<Seen | null>(READ) ?? undefined;
        if (seen === undefined) {
          await new Promise((r) => setTimeout(r, 100));
          continue;
        }
        const conn = seen.connections.find((c) => c[0] === PEER && c[3] === "bench");
        // Received/s of the bench connection not zero, and the chart drawn.
        if (conn !== undefined && !/^0 B\/s$/.test(conn[6]) && seen.rxPixels > 20) break;
        await new Promise((r) => setTimeout(r, 250));
      }
      assert.ok(seen !== undefined);
      assert.match(seen.status, new RegExp(`device ${MON} on 127\\.0\\.0\\.1:${port}`));
      assert.deepEqual(seen.links.map((l) => l[0]), [PEER], JSON.stringify(seen));
      const conn = seen.connections.find((c) => c[0] === PEER && c[3] === "bench");
      assert.ok(conn !== undefined, JSON.stringify(seen));
      assert.doesNotMatch(conn[6], /^0 B\/s$/, JSON.stringify(seen));
      assert.match(seen.charts[0], new RegExp(`^link ${PEER}`));
      assert.ok(seen.rxPixels > 20, `the chart has no receive line: ${JSON.stringify(seen)}`);
      const shot = process.env.LINKWEAVE_SCREENSHOT;
      if (shot !== undefined && shot !== "") {
        // In the bench's download phase: both directions are in the chart.
        await new Promise((r) => setTimeout(r, 4500));
        writeFileSync(shot, await page.screenshot());
      }
      assert.equal(await bench.exit(20_000), 0, bench.err);
    } finally {
      bench.kill();
    }
  });
});

/**
 * The page of `linkweave monitor --web`: one HTML document with its script,
 * no other file. It reads the snapshots from `/events` (server-sent events)
 * and draws, per link and per channel that reports its own rates, the send
 * and receive rates of the last two minutes, with the tables of links and
 * connections under them.
 *
 * @module
 */

/** The page. */
export const PAGE: string = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>linkweave monitor</title>
<style>
  body { font: 14px system-ui, sans-serif; margin: 1.5em; color: #1d2330; background: #f7f8fa; }
  h1 { font-size: 1.3em; margin: 0 0 .2em; }
  h2 { font-size: 1.05em; margin: 1.4em 0 .5em; }
  #status { color: #5b6475; }
  #status.live::before { content: "\\25CF "; color: #1a9c4a; }
  .charts { display: flex; flex-wrap: wrap; gap: 1em; }
  figure { margin: 0; background: #fff; border: 1px solid #dde1e8; border-radius: 6px; padding: .6em; }
  figcaption { font-weight: 600; margin-bottom: .3em; }
  figcaption span { font-weight: 400; color: #5b6475; margin-left: .6em; }
  canvas { display: block; }
  table { border-collapse: collapse; background: #fff; border: 1px solid #dde1e8; }
  th, td { text-align: left; padding: .3em .8em; border-bottom: 1px solid #eceef2; white-space: nowrap; }
  th { background: #eef1f5; font-weight: 600; }
  .tx { color: #2a6fdb; } .rx { color: #d9480f; }
  .empty { color: #5b6475; font-style: italic; }
</style>
</head>
<body>
<h1>linkweave monitor</h1>
<div id="status">connecting...</div>
<h2>Throughput <span class="tx">&#9644; sent</span> <span class="rx">&#9644; received</span></h2>
<div class="charts" id="charts"><p class="empty">No link yet.</p></div>
<h2>Links</h2>
<div id="links"></div>
<h2>Connections</h2>
<div id="connections"></div>
<script>
"use strict";
const HISTORY = 120;
const series = new Map();
function bytes(n) {
  if (n === null || n === undefined) return "-";
  if (n < 1000) return Math.round(n) + " B";
  const u = ["kB", "MB", "GB", "TB"]; let v = n / 1000; let i = 0;
  while (v >= 1000 && i < u.length - 1) { v /= 1000; i++; }
  return (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)) + " " + u[i];
}
function rate(n) { return n === null || n === undefined ? "-" : bytes(n) + "/s"; }
function ms(n) { return n === null || n === undefined ? "-" : n.toFixed(2) + " ms"; }
function cell(tag, text) { const e = document.createElement(tag); e.textContent = text; return e; }
function table(head, rows) {
  if (rows.length === 0) return cell("p", "None.");
  const t = document.createElement("table");
  const h = t.insertRow(); for (const x of head) h.appendChild(cell("th", x));
  for (const r of rows) { const tr = t.insertRow(); for (const x of r) tr.appendChild(cell("td", x)); }
  return t;
}
function track(key, title, tx, rx) {
  let s = series.get(key);
  if (!s) { s = { title, tx: [], rx: [], seen: 0 }; series.set(key, s); }
  s.title = title; s.tx.push(tx); s.rx.push(rx);
  if (s.tx.length > HISTORY) { s.tx.shift(); s.rx.shift(); }
  s.seen = Date.now();
}
function draw(canvas, s) {
  const dpr = window.devicePixelRatio || 1, w = 420, h = 150;
  canvas.width = w * dpr; canvas.height = h * dpr; canvas.style.width = w + "px"; canvas.style.height = h + "px";
  const g = canvas.getContext("2d"); g.scale(dpr, dpr);
  const max = Math.max(1, ...s.tx, ...s.rx);
  g.fillStyle = "#fff"; g.fillRect(0, 0, w, h);
  g.strokeStyle = "#eceef2"; g.fillStyle = "#5b6475"; g.font = "11px system-ui";
  for (let i = 0; i <= 4; i++) {
    const y = 10 + (h - 30) * i / 4;
    g.beginPath(); g.moveTo(60, y); g.lineTo(w - 5, y); g.stroke();
    g.fillText(rate(max * (4 - i) / 4), 2, y + 4);
  }
  for (const [data, color] of [[s.tx, "#2a6fdb"], [s.rx, "#d9480f"]]) {
    g.strokeStyle = color; g.lineWidth = 2; g.beginPath();
    data.forEach((v, i) => {
      const x = 60 + (w - 65) * (HISTORY - data.length + i) / (HISTORY - 1);
      const y = 10 + (h - 30) * (1 - v / max);
      if (i === 0) g.moveTo(x, y); else g.lineTo(x, y);
    });
    g.stroke();
  }
  g.fillStyle = "#5b6475"; g.fillText("last " + HISTORY + " snapshots", 60, h - 4);
}
function show(s) {
  document.getElementById("status").className = "live";
  document.getElementById("status").textContent = "device " + s.device.id + " on " +
    s.device.bind + ":" + s.device.port + ", " + new Date(s.at).toLocaleTimeString();
  for (const l of s.links) {
    track(l.peer, "link " + l.peer, l.txRate, l.rxRate);
    for (const c of l.channels) {
      if (c.txRate !== null || c.rxRate !== null) {
        track(l.peer + "#" + c.id, "channel " + c.id + (c.kind ? " (" + c.kind + ")" : "") +
          " of " + l.peer, c.txRate ?? 0, c.rxRate ?? 0);
      }
    }
  }
  const live = new Set(s.links.flatMap((l) => [l.peer, ...l.channels.map((c) => l.peer + "#" + c.id)]));
  const charts = document.getElementById("charts");
  charts.replaceChildren();
  for (const [key, sr] of series) {
    if (!live.has(key)) continue;
    const f = document.createElement("figure"); f.dataset.key = key;
    const cap = cell("figcaption", sr.title);
    const now = cell("span", "sent " + rate(sr.tx.at(-1)) + ", received " + rate(sr.rx.at(-1)));
    now.className = "now"; cap.appendChild(now); f.appendChild(cap);
    const cv = document.createElement("canvas"); f.appendChild(cv); charts.appendChild(f);
    draw(cv, sr);
  }
  if (charts.children.length === 0) charts.appendChild(cell("p", "No link yet.")).className = "empty";
  document.getElementById("links").replaceChildren(table(
    ["Peer", "Channels", "RTT", "Sent/s", "Received/s", "Sent", "Received"],
    s.links.map((l) => [l.peer, String(l.channels.length), ms(l.rtt), rate(l.txRate), rate(l.rxRate),
      bytes(l.sent), bytes(l.received)])));
  document.getElementById("connections").replaceChildren(table(
    ["Peer", "Name", "Role", "Use", "State", "Sent/s", "Received/s", "Sent", "Received", "Queued"],
    s.connections.map((c) => [c.peer, c.name, c.role, c.use, c.state, rate(c.txRate),
      rate(c.rxRate), bytes(c.sent), bytes(c.received), bytes(c.buffered)])));
}
const events = new EventSource("/events");
events.onmessage = (e) => { const s = JSON.parse(e.data); if (s) show(s); };
events.onerror = () => {
  document.getElementById("status").className = "";
  document.getElementById("status").textContent = "disconnected: is linkweave monitor still running?";
};
</script>
</body>
</html>
`;

/**
 * Three devices in three network namespaces this test creates (veth pairs to
 * a bridge in a fourth), finding each other by multicast discovery. Each
 * opens 5 connections to each of the other two at the same moment (10 in
 * all; an 11th gets 32390204), and `ss` must then show exactly one TCP
 * connection per pair of devices. Needs root and iproute2.
 *
 * @module
 */
import assert from "node:assert/strict";
import { after, before, it } from "node:test";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describeWith } from "./harness/env.ts";
import { type Child, start } from "./_script.ts";
import { createLan, type Lan } from "./_netns.ts";

const IDS = [1, 2, 3].map((i) => `02:00:00:00:0D:0${i}`);

describeWith("linkEnhance across three network namespaces", {
  root: true,
  commands: { ip: "iproute2", ss: "iproute2" },
}, () => {
  const children: Child[] = [];

  let lan: Lan | undefined;
  let run = "";
  let devices: { ns: string; addr: string; id: string }[] = [];

  before(() => {
    run = mkdtempSync(join(tmpdir(), "lw-netns-run-"));
    lan = createLan(3, "lwl");
    devices = lan.namespaces.map((ns, i) => ({ ns, addr: lan!.addresses[i], id: IDS[i] }));
  });

  after(() => {
    for (const c of children) c.kill();
    lan?.close();
    if (run !== "") rmSync(run, { recursive: true, force: true });
  });

  it("discovers, connects 10 per device, refuses the 11th, keeps one TCP per pair", async () => {
    for (const d of devices) {
      children.push(start("tests/_link_netns_device.ts", {
        LINKWEAVE_DEVICE_ID: d.id,
        LINKWEAVE_BIND: d.addr,
        LINKWEAVE_DISCOVERY: "auto",
        // Devices on several machines share an account (a per-user one stays on loopback).
        LINKWEAVE_ACCOUNT: "netns test account",
        XDG_RUNTIME_DIR: run, // the local registry of these (killed) devices
        LW_OTHERS: devices.filter((o) => o !== d).map((o) => o.id).join(","),
      }, ["ip", "netns", "exec", d.ns]));
    }
    const reports = await Promise.all(children.map(async (c) => {
      const [line] = await c.waitFor(/\{"id".*\}/, 30_000);
      return JSON.parse(line);
    }));
    for (const r of reports) {
      assert.deepEqual(
        { ok: r.ok, failed: r.failed, eleventh: r.eleventh },
        { ok: 10, failed: [], eleventh: 32390204 },
        `device ${r.id}: ${children.map((c) => c.err).join("\n")}`,
      );
      assert.equal(r.links.length, 2, `device ${r.id} has a link to each other device`);
    }
    // Every device accepted the 10 connections the others opened to it.
    await Promise.all(children.map((c) => c.waitFor(/\{"accepted":10\}/, 10_000)));
    // One TCP connection per pair, seen from each namespace.
    for (const d of devices) {
      const lines = spawnSync("ip", ["netns", "exec", d.ns, "ss", "-Htn", "state", "established"], {
        encoding: "utf8",
      }).stdout.trim().split("\n").filter((l) => l.trim() !== "");
      for (const o of devices.filter((o) => o !== d)) {
        const n = lines.filter((l) => l.includes(`${o.addr}:`)).length;
        assert.equal(n, 1, `${d.addr} has ${n} TCP connections to ${o.addr}:\n${lines.join("\n")}`);
      }
      assert.equal(lines.length, 2, `${d.addr} has exactly two TCP connections`);
    }
  });
});

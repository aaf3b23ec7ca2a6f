/**
 * Two devices on one machine with no configuration at all (a temporary HOME
 * and XDG directories, every `LINKWEAVE_*` variable unset): each takes its
 * own identity, they find each other through the local registry and
 * exchange linkEnhance data, and each keeps its id across restarts, also
 * after being killed.
 *
 * @module
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { type Child, start } from "./_script.ts";

const home = mkdtempSync(join(tmpdir(), "disc-home-"));
const children: Child[] = [];
after(() => {
  for (const c of children) c.kill();
  rmSync(home, { recursive: true, force: true });
});

/** The environment of a user who never configured linkweave. */
function bareEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {
    HOME: home,
    XDG_STATE_HOME: "",
    XDG_RUNTIME_DIR: join(home, "run"),
    LINKWEAVE_TRACE: "1",
  };
  for (const k of Object.keys(process.env)) if (k.startsWith("LINKWEAVE_")) env[k] ??= "";
  env.LINKWEAVE_TRACE = "1";
  return { ...env, ...extra };
}

function device(extra: Record<string, string> = {}): Child {
  const c = start("tests/_local_device.ts", bareEnv(extra));
  children.push(c);
  return c;
}

async function line<T>(c: Child, re: RegExp): Promise<T> {
  const [l] = await c.waitFor(re, 30_000);
  return JSON.parse(l) as T;
}

describe("two devices on one machine with no configuration", { timeout: 90_000 }, () => {
  it("take different ids, find each other, exchange data, and keep their ids", async () => {
    rmSync(join(home, "run"), { recursive: true, force: true });
    const server = device();
    const a = await line<{ id: string; port: number }>(server, /\{"ready".*\}/);
    const client = device({ LW_TARGET: a.id });
    const b = await line<{ id: string }>(client, /\{"ready".*\}/);
    assert.notEqual(b.id, a.id, "two processes are two devices");
    const got = await line<{ echo?: string; peer?: string; failed?: number }>(
      client,
      /\{"(echo|failed)".*\}/,
    );
    assert.deepEqual(got, { echo: `hello from ${b.id}`, peer: a.id }, client.err);
    assert.equal(await client.exited, 0, client.err);
    // the client found the server in the local registry, and says so when tracing
    assert.match(
      client.err,
      /\{"linkweave":"discovery\.learned","deviceId":"[^"]+","host":"127\.0\.0\.1",.*"source":"local"\}/,
    );
    const known = await line<{ known: { deviceId: string; addresses: { source: string }[] }[] }>(
      client,
      /\{"known".*\}/,
    );
    assert.deepEqual(known.known.map((d) => [d.deviceId, d.addresses[0].source]), [[
      a.id,
      "local",
    ]]);

    // the client again: same id
    const client2 = device({ LW_TARGET: a.id });
    assert.equal((await line<{ id: string }>(client2, /\{"ready".*\}/)).id, b.id);
    assert.equal(
      (await line<{ echo?: string }>(client2, /\{"(echo|failed)".*\}/)).echo,
      `hello from ${b.id}`,
    );
    assert.equal(await client2.exited, 0, client2.err);

    // the server killed (its lock and record left behind) and started again: same id, found again
    server.kill();
    await server.exited;
    const server2 = device();
    assert.equal((await line<{ id: string }>(server2, /\{"ready".*\}/)).id, a.id);
    const client3 = device({ LW_TARGET: a.id });
    const got3 = await line<{ echo?: string; failed?: number }>(client3, /\{"(echo|failed)".*\}/);
    assert.equal(got3.echo, `hello from ${b.id}`, client3.err);
    assert.equal(await client3.exited, 0, client3.err);
    server2.kill();
  });
});

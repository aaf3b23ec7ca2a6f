/**
 * The two small programs of `examples/`, each as two processes on loopback
 * with discovery off: a sensor board streaming readings to a collector
 * (`sensor_board.ts`, `sensor_collector.ts`) and a file drop
 * (`file_drop.ts`), with the refusals a drop box owes a careless or hostile
 * sender.
 *
 * @module
 */
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { type Child, freePort, start } from "../tests/_script.ts";
import { createDevice } from "../device.ts";

const children: Child[] = [];
const dir = mkdtempSync(join(tmpdir(), "pkg-programs-"));

after(() => {
  for (const c of children) c.kill();
  rmSync(dir, { recursive: true, force: true });
});

function spawn(module: string, id: string, env: Record<string, string>, args: string[]): Child {
  const c = start(
    module,
    {
      LINKWEAVE_DEVICE_ID: id,
      LINKWEAVE_DISCOVERY: "off",
      LINKWEAVE_PORT: "0",
      ...env,
    },
    [],
    { args },
  );
  children.push(c);
  return c;
}

async function exits(c: Child, ms = 20_000): Promise<number | string> {
  let t: ReturnType<typeof setTimeout> | undefined;
  const code = await Promise.race([
    c.exited,
    new Promise<string>((r) => t = setTimeout(() => r("still running"), ms)),
  ]);
  clearTimeout(t);
  return code;
}

describe("a sensor board streams readings to a collector", { timeout: 60_000 }, () => {
  it("every reading arrives, in order, before the board is reported gone", async () => {
    const port = await freePort();
    const collector = spawn("examples/sensor_collector.ts", "02:00:00:00:5E:01", {
      LINKWEAVE_PORT: String(port),
    }, []);
    await collector.waitFor(/collector serving "sensors"/);
    const board = spawn("examples/sensor_board.ts", "02:00:00:00:5E:02", {
      LINKWEAVE_PEERS: `02:00:00:00:5E:01@127.0.0.1:${port}`,
    }, ["02:00:00:00:5E:01", "--count", "8", "--interval", "20"]);
    assert.equal(await exits(board), 0, `board: ${board.out}${board.err}`);
    assert.match(board.out, /sent 8 readings/);
    await collector.waitFor(/board 02:00:00:00:5E:02 gone/);
    const seqs = [
      ...collector.out.matchAll(
        /^reading board=02:00:00:00:5E:02 seq=(\d+) load1=\d+\.\d\d memFreeMiB=\d+ celsius=(-|-?\d+\.\d)$/gm,
      ),
    ]
      .map((m) => Number(m[1]));
    assert.deepEqual(seqs, [1, 2, 3, 4, 5, 6, 7, 8], collector.out);
    assert.match(collector.out, /board 02:00:00:00:5E:02 gone after 8 readings, last seq 8, 0 bad/);
    assert.equal(collector.proc.exitCode, null, "the collector keeps running");
  });
});

describe("a file drop between two devices", { timeout: 60_000 }, () => {
  const box = join(dir, "box");
  let port = 0;
  let dropBox: Child;
  const env = () => ({ LINKWEAVE_PEERS: `02:00:00:00:FD:01@127.0.0.1:${port}` });

  it("the file arrives whole, confirmed by its SHA-256", async () => {
    port = await freePort();
    rmSync(box, { recursive: true, force: true });
    mkdirSync(box);
    dropBox = spawn(
      "examples/file_drop.ts",
      "02:00:00:00:FD:01",
      { LINKWEAVE_PORT: String(port) },
      [
        "receive",
        box,
      ],
    );
    await dropBox.waitFor(/drop box serving "filedrop"/);
    const bytes = randomBytes(700_001); // many messages, the last one short, past one drain
    const file = join(dir, "photo.jpg");
    writeFileSync(file, bytes);
    const sender = spawn("examples/file_drop.ts", "02:00:00:00:FD:02", env(), [
      "send",
      "02:00:00:00:FD:01",
      file,
    ]);
    assert.equal(await exits(sender), 0, `sender: ${sender.out}${sender.err}`);
    const sha = createHash("sha256").update(bytes).digest("hex");
    assert.match(sender.out, new RegExp(`sent photo\\.jpg \\(700001 bytes, sha256 ${sha}\\)`));
    await dropBox.waitFor(new RegExp(`received photo\\.jpg \\(700001 bytes, sha256 ${sha}\\)`));
    assert.deepEqual(readFileSync(join(box, "photo.jpg")), bytes);
    assert.deepEqual(readdirSync(box), ["photo.jpg"]);
  });

  it("a second file of the same name is refused and the first stays", async () => {
    const sender = spawn("examples/file_drop.ts", "02:00:00:00:FD:03", env(), [
      "send",
      "02:00:00:00:FD:01",
      join(dir, "photo.jpg"),
    ]);
    assert.equal(await exits(sender), 1, `sender: ${sender.out}${sender.err}`);
    assert.match(sender.err, /"photo\.jpg" exists already/);
    assert.equal(readFileSync(join(box, "photo.jpg")).length, 700_001);
  });

  it("a name with a path, and bytes past the announced size, are refused", async () => {
    const device = createDevice({
      deviceId: "02:00:00:00:FD:04",
      port: 0,
      discovery: "off",
      peers: [`02:00:00:00:FD:01@127.0.0.1:${port}`],
    });
    try {
      const answer = async (messages: unknown[]): Promise<{ ok: boolean; error?: string }> => {
        const conn = device.createConnection("02:00:00:00:FD:01", "filedrop");
        const got = new Promise<{ ok: boolean; error?: string }>((resolve, reject) => {
          conn.on("dataReceived", (d) => resolve(JSON.parse(new TextDecoder().decode(d))));
          conn.on("connectResult", (r) => {
            if (!r.success) return reject(new Error(`connect: ${r.reason}`));
            for (const m of messages) {
              conn.sendData(
                typeof m === "string"
                  ? new TextEncoder().encode(m).buffer
                  : new TextEncoder().encode(JSON.stringify(m)).buffer,
              );
            }
          });
        });
        conn.connect();
        let t: ReturnType<typeof setTimeout> | undefined;
        try {
          return await Promise.race([
            got,
            new Promise<never>((_, reject) =>
              t = setTimeout(() => reject(new Error("no answer within 10 s")), 10_000)
            ),
          ]);
        } finally {
          clearTimeout(t);
          conn.close();
        }
      };
      const escape = await answer([{ name: "../escape", size: 1 }, "x"]);
      assert.deepEqual(escape, { ok: false, error: 'invalid name "../escape"' });
      const long = await answer([{ name: "long.txt", size: 2 }, "abc"]);
      assert.deepEqual(long, { ok: false, error: 'more bytes than announced for "long.txt"' });
      const huge = await answer([{ name: "huge.bin", size: 2 ** 40 }]);
      assert.equal(huge.ok, false);
      assert.match(huge.error!, /^invalid size 1099511627776/);
      await dropBox.waitFor(/refused from 02:00:00:00:FD:04: more bytes than announced/);
      assert.ok(!existsSync(join(dir, "escape")), "nothing written outside the box");
      assert.deepEqual(readdirSync(box), ["photo.jpg"], "no partial file left");
    } finally {
      await device.close();
    }
  });
});

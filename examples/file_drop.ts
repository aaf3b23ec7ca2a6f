/**
 * File drop: one machine keeps a drop box, another sends it a file, over a
 * linkEnhance connection named `filedrop`.
 *
 * ```sh
 * # The drop box: files land in DIR (it must exist).
 * LINKWEAVE_DEVICE_ID=02:00:00:00:FD:01 deno run -A examples/file_drop.ts receive DIR
 * # The sender: exits 0 once the drop box confirmed the file's SHA-256.
 * deno run -A examples/file_drop.ts send 02:00:00:00:FD:01 FILE
 * ```
 *
 * On one machine the sender finds the drop box by itself. Between two
 * machines both need the same account secret (`LINKWEAVE_ACCOUNT_FILE`), the
 * drop box listens off loopback (`LINKWEAVE_BIND=0.0.0.0`) and the sender names
 * its address (`LINKWEAVE_PEERS=02:00:00:00:FD:01@192.0.2.10:38470`).
 *
 * The protocol, one linkEnhance message each (at most 1024 bytes): a header
 * `{"name","size"}`, then the file's bytes in 1024-byte messages; the drop box
 * answers `{"ok":true,"sha256"}` or `{"ok":false,"error"}`. The sender paces
 * itself by `bufferedAmount` and the `drain` event (linkweave extensions).
 * The drop box writes as bytes arrive, into `NAME.part`, renamed to `NAME`
 * once complete (removed if the sender goes away first); it refuses a name
 * with a path in it, a file that exists, a size over `MAX_SIZE`, and bytes
 * beyond the announced size. It runs until stopped.
 *
 * @module
 */
import { createHash } from "node:crypto";
import {
  closeSync,
  existsSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeSync,
} from "node:fs";
import { basename, join } from "node:path";
import process from "node:process";
import { linkEnhance } from "../mod.ts";

/** The largest file the drop box accepts. */
const MAX_SIZE = 1024 * 2 ** 20;
/** Bytes per message: linkEnhance's limit. */
const CHUNK = 1024;
/** The sender waits for `drain` above this many queued bytes. */
const HIGH_WATER = 512 * 1024;

const encode = (o: unknown): ArrayBuffer => new TextEncoder().encode(JSON.stringify(o)).buffer;

function receive(dir: string): void {
  const server = linkEnhance.createServer("filedrop");
  server.on("connectionAccepted", (conn) => {
    const peer = conn.getPeerDeviceId();
    let file: { name: string; size: number; fd: number; got: number } | undefined;
    const hash = createHash("sha256");
    const refuse = (error: string) => {
      console.log(`refused from ${peer}: ${error}`);
      conn.sendData(encode({ ok: false, error }));
      conn.disconnect();
    };
    conn.on("dataReceived", (data) => {
      if (file === undefined) {
        let header: { name?: unknown; size?: unknown };
        try {
          header = JSON.parse(new TextDecoder().decode(data));
        } catch {
          return refuse("the header is not JSON");
        }
        const { name, size } = header;
        if (typeof name !== "string" || name === "" || basename(name) !== name || name === "..") {
          return refuse(`invalid name ${JSON.stringify(name)}`);
        }
        if (!Number.isInteger(size) || (size as number) < 0 || (size as number) > MAX_SIZE) {
          return refuse(`invalid size ${JSON.stringify(size)} (at most ${MAX_SIZE} bytes)`);
        }
        if (existsSync(join(dir, name))) return refuse(`"${name}" exists already`);
        file = { name, size: size as number, fd: openSync(join(dir, `${name}.part`), "w"), got: 0 };
      } else {
        if (file.got + data.byteLength > file.size) {
          closeSync(file.fd);
          rmSync(join(dir, `${file.name}.part`), { force: true });
          const name = file.name;
          file = undefined;
          return refuse(`more bytes than announced for "${name}"`);
        }
        writeSync(file.fd, new Uint8Array(data));
        hash.update(new Uint8Array(data));
        file.got += data.byteLength;
      }
      if (file !== undefined && file.got === file.size) {
        closeSync(file.fd);
        renameSync(join(dir, `${file.name}.part`), join(dir, file.name));
        const sha256 = hash.digest("hex");
        console.log(`received ${file.name} (${file.size} bytes, sha256 ${sha256}) from ${peer}`);
        conn.sendData(encode({ ok: true, sha256 }));
        file = undefined;
      }
    });
    conn.on("disconnected", () => {
      if (file !== undefined) {
        closeSync(file.fd);
        rmSync(join(dir, `${file.name}.part`), { force: true });
        console.log(`incomplete ${file.name} from ${peer}: ${file.got} of ${file.size} bytes`);
      }
      conn.close();
    });
  });
  server.start();
  console.log(`drop box serving "filedrop" into ${dir}`);
}

function send(to: string, path: string): void {
  const bytes = new Uint8Array(readFileSync(path));
  const sha256 = createHash("sha256").update(bytes).digest("hex");
  const conn = linkEnhance.createConnection(to, "filedrop");
  const fail = (why: string) => {
    console.error(`cannot send ${path} to ${to}: ${why}`);
    conn.close();
    process.exitCode = 1;
  };
  let at = 0;
  const pump = () => {
    while (at < bytes.length && conn.bufferedAmount < HIGH_WATER) {
      conn.sendData(bytes.slice(at, at + CHUNK).buffer);
      at += CHUNK;
    }
  };
  conn.on("connectResult", (r) => {
    if (!r.success) return fail(`connect failed (${r.reason})`);
    conn.sendData(encode({ name: basename(path), size: bytes.length }));
    conn.on("drain", pump);
    pump();
  });
  conn.on("dataReceived", (data) => {
    const answer = JSON.parse(new TextDecoder().decode(data)) as {
      ok: boolean;
      sha256?: string;
      error?: string;
    };
    if (!answer.ok) return fail(answer.error ?? "refused");
    if (answer.sha256 !== sha256) return fail(`the drop box has sha256 ${answer.sha256}`);
    console.log(`sent ${basename(path)} (${bytes.length} bytes, sha256 ${sha256})`);
    conn.close();
  });
  conn.on("disconnected", () => fail("the drop box went away"));
  conn.connect();
}

const [mode, a, b] = process.argv.slice(2);
if (mode === "receive" && a !== undefined) receive(a);
else if (mode === "send" && a !== undefined && b !== undefined) send(a, b);
else {
  console.error("Usage: file_drop.ts receive DIR | file_drop.ts send DEVICE_ID FILE");
  process.exitCode = 2;
}

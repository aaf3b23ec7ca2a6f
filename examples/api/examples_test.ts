/**
 * Every example of OpenHarmony's documentation that is not a program of its
 * own elsewhere in `examples/` runs here, unchanged but for the imports and
 * placeholders, and prints what its header says (`// Prints`):
 *
 * - `socket/`: in this process, one after another, against a TCP server and a
 *   UDP socket on loopback whose ports replace the placeholders.
 * - `link_enhance/`: each as a process of its own (it uses the process's
 *   device), beside a server device `00:11:22:33:44:55` serving `demo` in this
 *   process; an example that keeps its process running (a started server, an
 *   open connection) is stopped once it printed its lines.
 *
 * @module
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { createDevice, type Device } from "../../device.ts";
import {
  constructTCPSocketServerInstance,
  constructUDPSocketInstance,
  type TCPSocketConnection,
  type TCPSocketServer,
  type UDPSocket,
} from "../../socket.ts";
import { start } from "../../tests/_script.ts";

const DIR = join(process.cwd(), "examples", "api");

/** What an example's header says it prints, as patterns of whole lines. */
function prints(file: string): RegExp[] {
  const head = readFileSync(file, "utf8").split("\n").filter((l) => l.startsWith("//"));
  const at = head.findIndex((l) => l.startsWith("// Prints"));
  assert.ok(at >= 0, `${file} says what it prints`);
  if (head[at].startsWith("// Prints nothing")) return [];
  return head.slice(at + 1).filter((l) => l.startsWith("//   ")).map((l) => {
    const text = l.slice(5).split("*").map((p) => p.replace(/[.+?^${}()|[\]\\]/g, "\\$&"));
    return new RegExp(`^${text.join(".*")}$`, "m");
  });
}

function names(dir: string): string[] {
  return readdirSync(join(DIR, dir)).filter((f) => f.endsWith(".ts") && !f.startsWith("_"))
    .map((f) => f.slice(0, -3)).sort();
}

/** The socket examples, by name (static imports, so that esbuild bundles them for Node). */
const SOCKET: Record<string, () => Promise<unknown>> = {
  construct_tcp_socket_instance: () => import("./socket/construct_tcp_socket_instance.ts"),
  construct_udp_socket_instance: () => import("./socket/construct_udp_socket_instance.ts"),
  tcp_bind_callback: () => import("./socket/tcp_bind_callback.ts"),
  tcp_bind_promise: () => import("./socket/tcp_bind_promise.ts"),
  tcp_close_callback: () => import("./socket/tcp_close_callback.ts"),
  tcp_close_promise: () => import("./socket/tcp_close_promise.ts"),
  tcp_connect_callback: () => import("./socket/tcp_connect_callback.ts"),
  tcp_connect_promise: () => import("./socket/tcp_connect_promise.ts"),
  tcp_get_remote_address_callback: () => import("./socket/tcp_get_remote_address_callback.ts"),
  tcp_get_remote_address_promise: () => import("./socket/tcp_get_remote_address_promise.ts"),
  tcp_get_state_callback: () => import("./socket/tcp_get_state_callback.ts"),
  tcp_get_state_promise: () => import("./socket/tcp_get_state_promise.ts"),
  tcp_off_connect_close: () => import("./socket/tcp_off_connect_close.ts"),
  tcp_off_error: () => import("./socket/tcp_off_error.ts"),
  tcp_off_message: () => import("./socket/tcp_off_message.ts"),
  tcp_on_connect_close: () => import("./socket/tcp_on_connect_close.ts"),
  tcp_on_error: () => import("./socket/tcp_on_error.ts"),
  tcp_on_message: () => import("./socket/tcp_on_message.ts"),
  tcp_send_callback: () => import("./socket/tcp_send_callback.ts"),
  tcp_send_promise: () => import("./socket/tcp_send_promise.ts"),
  tcp_set_extra_options_callback: () => import("./socket/tcp_set_extra_options_callback.ts"),
  tcp_set_extra_options_promise: () => import("./socket/tcp_set_extra_options_promise.ts"),
  udp_bind_callback: () => import("./socket/udp_bind_callback.ts"),
  udp_bind_promise: () => import("./socket/udp_bind_promise.ts"),
  udp_close_callback: () => import("./socket/udp_close_callback.ts"),
  udp_close_promise: () => import("./socket/udp_close_promise.ts"),
  udp_get_state_callback: () => import("./socket/udp_get_state_callback.ts"),
  udp_get_state_promise: () => import("./socket/udp_get_state_promise.ts"),
  udp_off_error: () => import("./socket/udp_off_error.ts"),
  udp_off_listening_close: () => import("./socket/udp_off_listening_close.ts"),
  udp_off_message: () => import("./socket/udp_off_message.ts"),
  udp_on_error: () => import("./socket/udp_on_error.ts"),
  udp_on_listening_close: () => import("./socket/udp_on_listening_close.ts"),
  udp_on_message: () => import("./socket/udp_on_message.ts"),
  udp_send_callback: () => import("./socket/udp_send_callback.ts"),
  udp_send_promise: () => import("./socket/udp_send_promise.ts"),
  udp_set_extra_options_callback: () => import("./socket/udp_set_extra_options_callback.ts"),
  udp_set_extra_options_promise: () => import("./socket/udp_set_extra_options_promise.ts"),
};

describe("OpenHarmony's socket examples", { timeout: 60_000 }, () => {
  let server: TCPSocketServer;
  let udp: UDPSocket;
  const clients: TCPSocketConnection[] = [];
  const logs: string[] = [];
  const original = console.log;

  before(async () => {
    server = constructTCPSocketServerInstance();
    server.on("connect", (c) => clients.push(c));
    await server.listen({ address: "127.0.0.1", port: 0 });
    udp = constructUDPSocketInstance();
    await udp.bind({ address: "127.0.0.1", port: 0 });
    process.env.EXAMPLE_TCP_PORT = String((await server.getLocalAddress()).port);
    process.env.EXAMPLE_UDP_PORT = String((await udp.getLocalAddress()).port);
    console.log = (...args: unknown[]) => logs.push(args.join(" "));
  });

  after(async () => {
    console.log = original;
    await Promise.all(clients.map((c) => c.close()));
    await server.close();
    await udp.close();
  });

  it("every example file is run by this test", () => {
    assert.deepEqual(Object.keys(SOCKET).sort(), names("socket"));
  });

  for (const name of Object.keys(SOCKET)) {
    it(name, async () => {
      const want = prints(join(DIR, "socket", `${name}.ts`));
      logs.length = 0;
      await SOCKET[name]();
      const until = Date.now() + 5000;
      while (logs.length < want.length && Date.now() < until) {
        await new Promise((r) => setTimeout(r, 10));
      }
      await new Promise((r) => setTimeout(r, 30)); // nothing more comes
      assert.equal(logs.length, want.length, `printed: ${JSON.stringify(logs)}`);
      want.forEach((re, i) => assert.match(logs[i], re));
    });
  }
});

describe("OpenHarmony's linkEnhance examples, each a process", { timeout: 120_000 }, () => {
  let device: Device;
  let port = 0;

  before(async () => {
    device = createDevice({ deviceId: "00:11:22:33:44:55", port: 0, discovery: "off" });
    const server = device.createServer("demo");
    server.on("connectionAccepted", (c) => {
      c.on("dataReceived", () => {});
      // Something for the examples that wait for data.
      setTimeout(() => {
        try {
          c.sendData(new TextEncoder().encode("hi").buffer);
        } catch {
          // the example disconnected already
        }
      }, 50);
    });
    server.start();
    port = (await device.runtime()).port;
  });

  after(() => device.close());

  names("link_enhance").forEach((name, i) => {
    it(name, async () => {
      const file = join("examples", "api", "link_enhance", `${name}.ts`);
      const want = prints(join(process.cwd(), file));
      const child = start(file, {
        LINKWEAVE_DEVICE_ID: `02:00:00:00:E8:${(16 + i).toString(16).toUpperCase()}`,
        LINKWEAVE_PORT: "0",
        LINKWEAVE_DISCOVERY: "off",
        LINKWEAVE_PEERS: `00:11:22:33:44:55@127.0.0.1:${port}`,
      });
      try {
        const keepsRunning = readFileSync(join(process.cwd(), file), "utf8")
          .includes("keeps running");
        const lines = () => child.out.split("\n").filter((l) => l !== "");
        if (keepsRunning) {
          await child.waitFor(want.at(-1)!, 20_000);
        } else {
          const code = await Promise.race([
            child.exited,
            new Promise((r) => setTimeout(() => r("still running"), 20_000)),
          ]);
          assert.equal(code, 0, `exit ${code}\nstdout: ${child.out}\nstderr: ${child.err}`);
        }
        assert.equal(lines().length, want.length, `printed:\n${child.out}${child.err}`);
        want.forEach((re, n) => assert.match(lines()[n], re));
      } finally {
        child.kill();
      }
    });
  });
});

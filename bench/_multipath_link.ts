/**
 * The slots for "our link over N channels" in `npm run bench:multipath`
 * (`bench/multipath_bench.ts`, issue 14), and the two devices they run, also
 * used by the lab test (`tests/multipath_lab_test.ts`).
 *
 * Both slots get a lab from `scripts/netlab.ts`, already up with the
 * topology's paths. {@linkcode startLink} runs the receiving device
 * (`bench/_multipath_peer.ts receiver`) in the lab's server namespace and the
 * sending one in the client namespace, each a process of the runtime running
 * this module (Node runs it bundled), configured only by `LINKWEAVE_*`
 * variables as a user would: an account secret (so the link is encrypted, the
 * default), discovery off, the receiver bound to every address on port
 * {@linkcode LINK_PORT}, the sender given the receiver as a static peer once
 * per path (`LINKWEAVE_PEERS=ID@10.100.2.2:5100,ID@10.101.2.2:5100,...`) and
 * `LINKWEAVE_CHANNELS` (one channel per path by default), each device with
 * its own state and runtime directories in a temporary directory. Ports below
 * 5200 and above 5400 are free in the lab; both slots leave no process or
 * directory behind when they resolve.
 *
 * @module
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Lab } from "../scripts/netlab.ts";
import { type Child, start } from "../tests/_script.ts";

/** What a slot is told besides the lab. */
export interface SlotOptions {
  /** How long the transfer (or the load) lasts, in seconds. */
  seconds: number;
}

/**
 * One bulk transfer from the client to the server over our link with one
 * channel per path of the lab, for `seconds`.
 *
 * @returns Payload Mbit/s delivered to the receiving application (10^6 bits/s).
 */
export type LinkThroughput = (lab: Lab, options: SlotOptions) => Promise<number>;

/**
 * 1 KiB request/response round trips over our link (one channel per path)
 * while another connection of the same link saturates it, for `seconds`.
 *
 * @returns Every round-trip time, in ms.
 */
export type LinkRoundTrips = (lab: Lab, options: SlotOptions) => Promise<number[]>;

/** The receiving device's id. */
export const RECEIVER_ID = "02:00:00:00:4D:02";
/** The sending device's id. */
export const SENDER_ID = "02:00:00:00:4D:01";
/** The receiving device's TCP port, on every address of the server namespace. */
export const LINK_PORT = 5100;
const SENDER_PORT = 5101;
const PEER = "bench/_multipath_peer.ts";
/** Both devices' account: the link is authenticated and encrypted, as by default. */
const ACCOUNT = "linkweave multipath lab account";

/** Options of {@linkcode startLink}. */
export interface LinkOptions {
  /** `LINKWEAVE_CHANNELS` of both devices. @default {String(lab.paths.length)} */
  channels?: string;
  /** Paths whose server address the sender is given (in this order). @default {every path} */
  paths?: number[];
  /** More variables for the receiver (`LW_MP_*`, see `bench/_multipath_peer.ts`). @default {{}} */
  receiver?: Record<string, string>;
  /** More variables for the sender. @default {{}} */
  sender?: Record<string, string>;
}

/** Two devices running in a lab, linked once the sender has connected. */
export interface RunningLink {
  /** The receiving device (server namespace). */
  receiver: Child;
  /** The sending device (client namespace). */
  sender: Child;
  /** The last JSON line from `child` that has `key`, waiting up to `ms` for one. */
  line(child: Child, key: string, ms: number): Promise<Record<string, unknown>>;
  /** End both processes and remove their directory. */
  stop(): Promise<void>;
}

/** Every JSON line of a child's stdout that has `key`. */
export function lines(child: Child, key: string): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const text of child.out.split("\n")) {
    if (!text.startsWith("{")) continue;
    try {
      const doc = JSON.parse(text);
      if (key in doc) out.push(doc);
    } catch {
      // a line cut by the read: the next read completes it
    }
  }
  return out;
}

/**
 * Start the receiver in the lab's server namespace, wait until it is ready,
 * then start the sender in the client namespace.
 *
 * @param lab The lab.
 * @param options Channels, paths and the devices' `LW_MP_*` variables.
 * @returns Both devices; call `stop()` when done.
 */
export async function startLink(lab: Lab, options: LinkOptions = {}): Promise<RunningLink> {
  const dir = mkdtempSync(join(tmpdir(), "lw-mplab-"));
  const channels = options.channels ?? String(lab.paths.length);
  const common = (side: string) => ({
    LINKWEAVE_ACCOUNT: ACCOUNT,
    LINKWEAVE_DISCOVERY: "off",
    LINKWEAVE_DAEMON: "off",
    LINKWEAVE_BIND: "0.0.0.0",
    LINKWEAVE_CHANNELS: channels,
    XDG_STATE_HOME: join(dir, side, "state"),
    XDG_RUNTIME_DIR: join(dir, side, "run"),
  });
  const started: Child[] = [];
  const stop = async () => {
    for (const c of started) c.kill();
    await Promise.all(started.map((c) => c.exited));
    rmSync(dir, { recursive: true, force: true });
  };
  const line = async (child: Child, key: string, ms: number) => {
    await child.waitFor(new RegExp(`^\\{"${key}":.*\\}$`, "m"), ms);
    const all = lines(child, key);
    return all[all.length - 1];
  };
  try {
    const receiver = start(
      PEER,
      {
        ...common("receiver"),
        ...options.receiver,
        LINKWEAVE_DEVICE_ID: RECEIVER_ID,
        LINKWEAVE_PORT: String(LINK_PORT),
      },
      lab.command("server", []),
      { args: ["receiver"] },
    );
    started.push(receiver);
    await receiver.waitFor(/"ready"/, 30_000);
    const peers = (options.paths ?? lab.paths.map((p) => p.index))
      .map((i) => `${RECEIVER_ID}@${lab.paths[i].serverAddress}:${LINK_PORT}`);
    const sender = start(
      PEER,
      {
        ...common("sender"),
        ...options.sender,
        LINKWEAVE_DEVICE_ID: SENDER_ID,
        LINKWEAVE_PORT: String(SENDER_PORT),
        LINKWEAVE_PEERS: peers.join(","),
        LW_MP_PEER: RECEIVER_ID,
      },
      lab.command("client", []),
      { args: ["sender"] },
    );
    started.push(sender);
    return { receiver, sender, line, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** Fail with what the devices said when the sender reported an error or a broken connection. */
function check(link: RunningLink): void {
  const bad = [...lines(link.sender, "error"), ...lines(link.sender, "disconnected")];
  if (bad.length > 0) {
    throw new Error(`The link failed: ${JSON.stringify(bad[0])}\n${link.sender.err.slice(-2000)}`);
  }
}

/** Our link's throughput over every path of the lab: payload Mbit/s at the receiver. */
export const linkThroughput: LinkThroughput | undefined = async (lab, { seconds }) => {
  const link = await startLink(lab, { receiver: { LW_MP_SECONDS: String(seconds) } });
  try {
    const got = await link.line(link.receiver, "window", seconds * 1000 + 30_000).catch((e) => {
      check(link);
      throw e;
    });
    check(link);
    return (Number(got.window) * 8) / (Number(got.ms) * 1000);
  } finally {
    await link.stop();
  }
};

/** Our link's 1 KiB round trips (ms) on one connection while another saturates the link. */
export const linkRoundTrips: LinkRoundTrips | undefined = async (lab, { seconds }) => {
  const link = await startLink(lab, { sender: { LW_MP_RTT_SECONDS: String(seconds) } });
  try {
    const got = await link.line(link.sender, "rtts", seconds * 1000 + 30_000).catch((e) => {
      check(link);
      throw e;
    });
    check(link);
    return got.rtts as number[];
  } finally {
    await link.stop();
  }
};

/**
 * A raw attacker for the link-level hostile suites: one TCP connection
 * (plain `node:net`) on which a test writes whatever frames it likes, built
 * with our own codec (`encodeBatch`) and control messages
 * (`encodeControl`), and reads back the victim's frames.
 *
 * The channel handshake is done by exactly one function,
 * {@linkcode handshake}, with our own `core/proto/handshake/` module, so
 * when the handshake becomes cryptographic (the trust issue) only that
 * function changes.
 *
 * @example
 * ```ts
 * const peer = await RawPeer.connect(port);
 * const answer = await handshake(peer, { id: "02:BA:D0:00:00:01" });
 * if (answer.op === "welcome") peer.send([openFrame(1, "echo")]);
 * peer.destroy();
 * ```
 *
 * @module
 */
import * as net from "node:net";
import { createCodec } from "../../wasm/mod.ts";
import { nativeCrc } from "../../platform/crc.ts";
import { type Frame, FRAME_OVERHEAD, type FrameInit, FrameType } from "../../core/proto/frame.ts";
import { encodeHello, type Hello, HelloReader } from "../../core/proto/handshake/hello.ts";
import { decodeControl, encodeControl } from "../../core/proto/link/control.ts";

/** The codec every raw peer uses. */
export const codec: ReturnType<typeof createCodec> = createCodec({ crc: nativeCrc() });

/** A frame the victim sent, copied out of the decoder. */
export interface ReceivedFrame {
  /** Frame type. */
  type: number;
  /** Stream id. */
  stream: number;
  /** Sequence number (credit frames: the bytes of credit). */
  seq: number;
  /** Message length. */
  total: number;
  /** Fragment offset. */
  offset: number;
  /** The payload (a copy). */
  payload: Uint8Array;
}

/** Most frames a raw peer keeps (the oldest go first). */
const KEEP_FRAMES = 10_000;

/** One attacker connection. */
export class RawPeer {
  /** The socket. */
  readonly socket: net.Socket;
  /** Frames received after the handshake (at most the last 10000). */
  readonly frames: ReceivedFrame[] = [];
  /** Bytes received in all. */
  received = 0;
  /** Whether the victim closed (or reset) the connection, or we destroyed it. */
  closed = false;
  /** Resolves when the connection is closed. */
  readonly done: Promise<void>;
  #raw: Uint8Array[] | undefined = [];
  #tap: ((bytes: Uint8Array) => boolean) | undefined;
  #decoder: ReturnType<typeof codec.createDecoder> | undefined;
  #waiters = new Set<() => void>();
  #read = 0;
  #acked = 0;
  /** Whether to acknowledge the frames read (a protocol-following peer does); `false` to test a peer that never does. */
  autoAck = true;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on("error", () => {});
    socket.on("data", (b: Uint8Array) => this.#bytes(b));
    this.done = new Promise((resolve) =>
      socket.once("close", () => {
        this.closed = true;
        this.#wake();
        resolve();
      })
    );
  }

  /**
   * Connect to a victim.
   *
   * @param port Its port.
   * @param host Its address. @default {"127.0.0.1"}
   * @returns The connected peer.
   */
  static connect(port: number, host = "127.0.0.1"): Promise<RawPeer> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ port, host, noDelay: true });
      s.once("error", reject);
      s.once("connect", () => {
        s.off("error", reject);
        resolve(new RawPeer(s));
      });
    });
  }

  #bytes(b: Uint8Array): void {
    this.received += b.length;
    if (this.#decoder !== undefined) {
      this.#decoder.push(b, (f: Frame) => {
        if (f.type !== FrameType.ACK) this.#read += FRAME_OVERHEAD + f.payload.length;
        if (this.frames.length >= KEEP_FRAMES) this.frames.shift();
        this.frames.push({
          type: f.type,
          stream: f.stream,
          seq: f.seq,
          total: f.total,
          offset: f.offset,
          payload: f.payload.slice(),
        });
      });
      // Acknowledge what was read, as a peer following the protocol does
      // (docs/link-protocol.md section 4): without it the victim's in-flight
      // budget stops its answers.
      if (this.autoAck && this.#read !== this.#acked && !this.closed) {
        this.#acked = this.#read;
        this.socket.write(
          codec.encodeBatch([{
            type: FrameType.ACK,
            stream: 0,
            seq: this.#read % 2 ** 32,
            total: 0,
            offset: 0,
            payload: new Uint8Array(0),
          }]).slice(),
        );
      }
    } else if (this.#tap !== undefined) {
      // Once the tap has what it wanted, later bytes wait for decodeFrames.
      if (this.#tap(b)) {
        this.#tap = undefined;
        this.#raw = [];
      }
    } else {
      this.#raw?.push(b.slice());
    }
    this.#wake();
  }

  #wake(): void {
    for (const w of [...this.#waiters]) w();
  }

  /**
   * Hand every byte received so far, and every later one, to `tap` (the
   * handshake reader) until it returns `true`; bytes after that wait for
   * {@linkcode RawPeer.decodeFrames}.
   *
   * @param tap Called with each chunk; `true` when it needs no more.
   */
  tap(tap: (bytes: Uint8Array) => boolean): void {
    const raw = this.#raw ?? [];
    this.#raw = undefined;
    this.#tap = tap;
    for (const [i, b] of raw.entries()) {
      if (!tap(b)) continue;
      this.#tap = undefined;
      this.#raw = raw.slice(i + 1);
      return;
    }
  }

  /**
   * From now on decode what arrives as link frames into `frames`.
   *
   * @param rest Bytes the tap had received after what it read.
   */
  decodeFrames(rest: Uint8Array = new Uint8Array(0)): void {
    const later = this.#raw ?? [];
    this.#raw = undefined;
    this.#tap = undefined;
    this.#decoder = codec.createDecoder();
    this.received -= rest.length;
    this.#bytes(rest.slice());
    for (const b of later) {
      this.received -= b.length;
      this.#bytes(b);
    }
  }

  /**
   * Wait until `probe` holds (checked at every arrival and at close).
   *
   * @param probe The condition.
   * @param ms At most this long.
   * @param what For the error.
   */
  until(probe: () => boolean, ms: number, what: string): Promise<void> {
    if (probe()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!probe()) return;
        done();
        resolve();
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`Timed out after ${ms} ms waiting for ${what}`));
      }, ms);
      const done = () => {
        clearTimeout(timer);
        this.#waiters.delete(check);
      };
      this.#waiters.add(check);
    });
  }

  /**
   * Write bytes, waiting for the socket to drain when it asks to.
   *
   * @param bytes The bytes.
   */
  async write(bytes: Uint8Array): Promise<void> {
    if (this.closed) return;
    if (this.socket.write(bytes)) return;
    await new Promise<void>((resolve) => {
      const go = () => {
        this.socket.off("drain", go);
        this.socket.off("close", go);
        resolve();
      };
      this.socket.on("drain", go);
      this.socket.on("close", go);
    });
  }

  /**
   * Write frames, encoded in one batch.
   *
   * @param frames The frames.
   */
  send(frames: readonly FrameInit[]): Promise<void> {
    return this.write(codec.encodeBatch(frames).slice());
  }

  /** Send an RST (SO_LINGER 0) and forget the socket. */
  reset(): void {
    this.closed = true;
    this.socket.resetAndDestroy();
  }

  /** Close the socket at once. */
  destroy(): void {
    this.closed = true;
    this.socket.destroy();
  }
}

/**
 * Say hello as device `id` on a raw connection, with our own handshake
 * module, and read the victim's answer. The one place that knows how the
 * handshake goes: once it answered, the peer decodes link frames.
 *
 * @param peer The connection.
 * @param me The id to claim and the runtime nonce to show (random by default).
 * @param ms How long to wait for the answer. @default {3000}
 * @returns The victim's answer (`welcome`, or `refuse` with its reason).
 * @throws {Error} When the victim answers nothing valid in time.
 */
export async function handshake(
  peer: RawPeer,
  me: { id: string; nonce?: string },
  ms = 3000,
): Promise<Hello> {
  const reader = new HelloReader(codec);
  let got: ReturnType<HelloReader["push"]>;
  peer.tap((bytes) => (got = reader.push(bytes)) !== undefined);
  const nonce = me.nonce ?? Math.random().toString(36).slice(2);
  await peer.write(encodeHello(codec, { op: "hello", id: me.id, nonce }));
  await peer.until(() => got !== undefined || peer.closed, ms, `the answer to ${me.id}'s hello`);
  if (got === undefined) throw new Error(`The victim closed the channel before answering ${me.id}`);
  if ("error" in got) throw new Error(`The victim's answer is not a handshake: ${got.error}`);
  peer.decodeFrames(got.rest);
  return got.hello;
}

/**
 * The frame that opens stream `stream` to service `name`.
 *
 * @param stream The stream id (the attacker's parity).
 * @param name The service. @default {"echo"}
 * @param window The window it grants the victim. @default {1048576}
 * @returns The frame.
 */
export function openFrame(stream: number, name = "echo", window = 1 << 20): FrameInit {
  const payload = encodeControl({ op: "open", window, kind: 0, name, bundle: "" });
  return { type: FrameType.CONTROL, stream, seq: 0, total: payload.length, offset: 0, payload };
}

/**
 * A DATA frame: a whole message, or one fragment of a `total`-byte one.
 *
 * @param stream The stream.
 * @param seq The message's sequence number on the stream (the first after the open is 1).
 * @param payload The fragment's bytes.
 * @param fragment Where it lies in a larger message.
 * @returns The frame.
 */
export function dataFrame(
  stream: number,
  seq: number,
  payload: Uint8Array,
  fragment: { offset: number; total: number } = { offset: 0, total: payload.length },
): FrameInit {
  return { type: FrameType.DATA, stream, seq, payload, ...fragment };
}

/**
 * What the victim answered on a stream: `accept` or `reject` (control
 * messages), `close` (a CLOSE frame: a reset, or a graceful close).
 *
 * @param peer The attacker's connection.
 * @param stream The stream.
 * @returns The answers, in order.
 */
export function answers(peer: RawPeer, stream: number): string[] {
  return peer.frames.filter((f) => f.stream === stream).flatMap((f) => {
    if (f.type === FrameType.CLOSE) return ["close"];
    if (f.type !== FrameType.CONTROL) return [];
    const c = decodeControl(f.payload);
    return c === undefined ? ["malformed"] : [c.op];
  });
}

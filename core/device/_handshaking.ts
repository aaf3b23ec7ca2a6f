/**
 * One channel's handshake as the endpoint drives it, whichever kind the
 * device runs: the authenticated one (`core/proto/handshake/secure.ts`,
 * the default) or the plain `hello` of a device configured with
 * `security: "none"`. It reads handshake frames off the channel, answers
 * them, and ends with the peer it proved and, when secure, the record layer
 * of the channel. The merge rule (which channel a pair of devices keeps) is
 * the endpoint's: the acceptor stops at `decide` for it.
 *
 * A secure device refuses a plain `hello` (no downgrade), and a plain one
 * refuses a secure handshake: they are not the same protocol.
 *
 * @module
 */
import { type Codec, FrameType } from "../proto/frame.ts";
import {
  encodeHello,
  HandshakeReader,
  parseHello,
  PROTOCOL_VERSION,
  type RefuseReason,
} from "../proto/handshake/hello.ts";
import {
  type ChannelKeys,
  Kind,
  type ProvenPeer,
  type Refusal,
  refusalOf,
  refusePayload,
  SecureHandshake,
  type SecureOptions,
} from "../proto/handshake/secure.ts";
import { JoinHandshake } from "../proto/handshake/join.ts";
import { RecordOpener, RecordSealer } from "../proto/record.ts";
import { Pairing, PairKind } from "../proto/handshake/pairing.ts";

/** The peer a handshake ended with. */
export interface HandshakePeer {
  /** Its device id. */
  id: string;
  /** Its runtime nonce. */
  nonce: string;
  /** Whether it proved a key (secure handshake) rather than just saying its id. */
  proven: boolean;
  /** The proof, for a secure handshake. */
  secure?: ProvenPeer;
}

/** A finished handshake. */
export interface HandshakeOutcome {
  /** The peer. */
  peer: HandshakePeer;
  /** The record layer (secure handshakes). */
  records?: { seal: RecordSealer; open: RecordOpener; keys: ChannelKeys };
  /** Bytes after the handshake (already the link's; records when secure). */
  rest: Uint8Array;
}

/** What a step of the handshake asks the endpoint to do. */
export type HandshakeResult =
  /** Wait for more bytes (after sending `send`). */
  | { kind: "more"; send: Uint8Array[] }
  /** (Acceptor) apply the merge rule, then `accept` or `refuse`. */
  | { kind: "decide"; send: Uint8Array[]; peer: HandshakePeer }
  /** Attach the channel to the peer's link. */
  | { kind: "done"; send: Uint8Array[]; outcome: HandshakeOutcome }
  /**
   * (Acceptor) the channel asks to join an open link: find it (by `linkId`
   * when secure, by the peer's id and the nonce pair when plain), then
   * `acceptJoin` or `refuse`. `token` names a secure join (J1) for replays.
   */
  | {
    kind: "join";
    send: Uint8Array[];
    linkId?: Uint8Array;
    token?: string;
    peer?: { id: string; nonce: string; join: string };
  }
  /** Pairing succeeded: trust this key as paired, then close the channel. */
  | { kind: "paired"; send: Uint8Array[]; id: string; publicKey: Uint8Array }
  /** Close the channel (after sending `send`). */
  | {
    kind: "failed";
    send: Uint8Array[];
    reason: Refusal | RefuseReason | "frame";
    message: string;
    remote: boolean;
  };

/** What a channel handshake needs. */
export interface HandshakingOptions {
  /** The framing codec. */
  codec: Codec;
  /** This device's id. */
  localId: string;
  /** This runtime's nonce. */
  nonce: string;
  /** Secure handshake settings; absent means the plain `hello` (`security: "none"`). */
  secure?: Omit<SecureOptions, "nonce" | "expect">;
  /** (Dialer) pair with the code the person typed, instead of connecting. */
  pair?: string;
  /** (Acceptor) the code of the open pairing offer, if any (consumed by one attempt). */
  offer?: () => string | undefined;
  /**
   * (Dialer) join the open link to the peer instead of making one: the
   * peer's runtime nonce on that link, and its keys when secure.
   */
  join?: { nonce: string; keys?: ChannelKeys };
}

/** The handshake of one channel. */
export class ChannelHandshake {
  readonly #o: HandshakingOptions;
  readonly #dialer: boolean;
  readonly #reader: HandshakeReader;
  readonly #secure: SecureHandshake | undefined;
  #rest: Uint8Array = new Uint8Array(0);
  #pending: HandshakePeer | undefined;
  #pairing: Pairing | undefined;
  /** The secure join (J1/J2) this channel runs, if it joins a link. */
  #join: JoinHandshake | undefined;
  /** The J1 a joining channel sent (acceptor). */
  #j1: Uint8Array | undefined;
  /** No handshake payload was read yet. */
  #first = true;
  #expect: string | undefined;

  /**
   * @param dialer Whether this device dialled the channel.
   * @param expect (Dialer) the peer it means to reach.
   * @param options Codec, identity and security.
   */
  constructor(dialer: boolean, expect: string | undefined, options: HandshakingOptions) {
    this.#o = options;
    this.#dialer = dialer;
    this.#reader = new HandshakeReader(options.codec);
    this.#expect = expect;
    this.#secure = options.secure === undefined ? undefined : new SecureHandshake(
      dialer ? "dialer" : "acceptor",
      { ...options.secure, nonce: options.nonce, expect },
    );
  }

  /**
   * What the dialer says first.
   *
   * @returns Frames to send.
   */
  start(): Uint8Array[] {
    if (!this.#dialer) return [];
    if (this.#o.pair !== undefined && this.#o.secure !== undefined) {
      this.#pairing = new Pairing(
        "enters",
        this.#o.secure.crypto,
        this.#o.secure.identity,
        this.#o.pair,
      );
      return this.#pairing.start().send.map((m) => this.#frame(m));
    }
    const join = this.#o.join;
    if (join !== undefined && this.#secure !== undefined) {
      const keys = join.keys!;
      this.#join = new JoinHandshake("dialer", this.#o.secure!.crypto, {
        joinSecret: keys.joinSecret,
        linkId: keys.linkId,
        cipher: keys.tx.cipher,
      });
      return [this.#frame(this.#join.start())];
    }
    if (this.#secure !== undefined) return [this.#frame(this.#secure.start()!)];
    return [
      encodeHello(this.#o.codec, {
        op: "hello",
        id: this.#o.localId,
        nonce: this.#o.nonce,
        ...(join !== undefined ? { join: join.nonce } : {}),
      }),
    ];
  }

  /**
   * Bytes arrived.
   *
   * @param bytes The channel's next bytes.
   * @param now The current time (ms).
   * @returns What to do.
   */
  push(bytes: Uint8Array, now: number): HandshakeResult {
    const send: Uint8Array[] = [];
    let input: Uint8Array = bytes;
    while (true) {
      const got = this.#reader.push(input);
      if (got === undefined) return { kind: "more", send };
      if ("error" in got) {
        return { kind: "failed", send, reason: "frame", message: got.error, remote: false };
      }
      input = new Uint8Array(0);
      const r = this.#pairing !== undefined || (got.payload[0] === PairKind.HELLO && !this.#dialer)
        ? this.#onPairing(got.payload, send)
        : this.#secure !== undefined
        ? this.#onSecure(got.payload, got.rest, send, now)
        : this.#onPlain(got.payload, got.rest, send);
      if (r !== undefined) return r;
      if (got.rest.length === 0) return { kind: "more", send };
      input = got.rest;
    }
  }

  /**
   * (Acceptor, after `decide`) keep the channel.
   *
   * @param now The current time (ms).
   * @returns Frames to send and the outcome.
   */
  accept(now: number): { send: Uint8Array[]; outcome: HandshakeOutcome } {
    const peer = this.#pending!;
    if (this.#secure === undefined) {
      const welcome = encodeHello(this.#o.codec, {
        op: "welcome",
        id: this.#o.localId,
        nonce: this.#o.nonce,
      });
      return { send: [welcome], outcome: { peer, rest: this.#rest } };
    }
    const step = this.#secure.accept();
    const keys = step.done!.keys;
    return {
      send: [this.#frame(step.send!)],
      outcome: { peer, rest: this.#rest, records: this.#records(keys, now) },
    };
  }

  /**
   * (Acceptor, after `join`) the link the join names was found: answer it.
   *
   * @param keys The link's keys (its first channel's), when secure.
   * @param now The current time (ms).
   * @returns Frames to send, the bytes after the handshake and the channel's
   *   records; `undefined` when a secure join does not prove the link's secret.
   */
  acceptJoin(
    keys: ChannelKeys | undefined,
    now: number,
  ): { send: Uint8Array[]; outcome: Omit<HandshakeOutcome, "peer"> } | undefined {
    if (this.#secure === undefined) {
      const welcome = encodeHello(this.#o.codec, {
        op: "welcome",
        id: this.#o.localId,
        nonce: this.#o.nonce,
      });
      return { send: [welcome], outcome: { rest: this.#rest } };
    }
    if (keys === undefined || this.#j1 === undefined) return undefined;
    const got = new JoinHandshake("acceptor", this.#o.secure!.crypto).answer(this.#j1, {
      joinSecret: keys.joinSecret,
      cipher: keys.tx.cipher,
    });
    if (got === undefined) return undefined;
    return {
      send: [this.#frame(got.send)],
      outcome: { rest: this.#rest, records: this.#records({ ...keys, ...got.keys }, now) },
    };
  }

  /**
   * (Acceptor, after `decide`, or any time) refuse the channel.
   *
   * @param reason Why.
   * @returns Frames to send before closing.
   */
  refuse(reason: RefuseReason): Uint8Array[] {
    if (this.#secure !== undefined) {
      const secureReason: Refusal = reason === "version" ? "version" : reason;
      return [this.#frame(refusePayload(secureReason))];
    }
    return [
      encodeHello(this.#o.codec, {
        op: "refuse",
        id: this.#o.localId,
        nonce: this.#o.nonce,
        reason,
      }),
    ];
  }

  #onPairing(payload: Uint8Array, send: Uint8Array[]): HandshakeResult | undefined {
    if (this.#pairing === undefined) {
      const code = this.#o.offer?.();
      if (this.#o.secure === undefined || code === undefined) {
        send.push(this.#frame(new Uint8Array([PairKind.FAIL])));
        return {
          kind: "failed",
          send,
          reason: "account",
          message: "no pairing offer is open",
          remote: false,
        };
      }
      this.#pairing = new Pairing("shows", this.#o.secure.crypto, this.#o.secure.identity, code);
    }
    const step = this.#pairing.handle(payload);
    for (const m of step.send) send.push(this.#frame(m));
    if (step.error !== undefined) {
      return {
        kind: "failed",
        send,
        reason: "account",
        message: `pairing failed: ${step.error}`,
        remote: false,
      };
    }
    if (step.paired !== undefined) {
      return { kind: "paired", send, id: step.paired.id, publicKey: step.paired.publicKey };
    }
    return undefined;
  }

  #onPlain(payload: Uint8Array, rest: Uint8Array, send: Uint8Array[]): HandshakeResult | undefined {
    if (payload[0] === Kind.INIT && !this.#dialer) {
      send.push(...this.refuse("version"));
      return {
        kind: "failed",
        send,
        reason: "version",
        message: "the peer runs the secure handshake; this device runs with security: none",
        remote: false,
      };
    }
    const h = parseHello(payload);
    if ("error" in h) {
      if (h.version !== undefined && !this.#dialer) send.push(...this.refuse("version"));
      return { kind: "failed", send, reason: "version", message: h.error, remote: false };
    }
    const hello = h.hello;
    if (!this.#dialer) {
      if (hello.op !== "hello") {
        return {
          kind: "failed",
          send,
          reason: "frame",
          message: `expected hello, got ${hello.op}`,
          remote: false,
        };
      }
      this.#rest = rest;
      if (hello.join !== undefined) {
        return { kind: "join", send, peer: { id: hello.id, nonce: hello.nonce, join: hello.join } };
      }
      this.#pending = { id: hello.id, nonce: hello.nonce, proven: false };
      return { kind: "decide", send, peer: this.#pending };
    }
    if (hello.op === "refuse") {
      return {
        kind: "failed",
        send,
        reason: hello.reason ?? "frame",
        message: `refused by ${hello.id} (${hello.reason ?? "no reason"})`,
        remote: true,
      };
    }
    if (hello.op !== "welcome") {
      return {
        kind: "failed",
        send,
        reason: "frame",
        message: `expected welcome, got ${hello.op}`,
        remote: false,
      };
    }
    return {
      kind: "done",
      send,
      outcome: { peer: { id: hello.id, nonce: hello.nonce, proven: false }, rest },
    };
  }

  #onSecure(
    payload: Uint8Array,
    rest: Uint8Array,
    send: Uint8Array[],
    now: number,
  ): HandshakeResult | undefined {
    if (payload[0] === 0x7b && !this.#dialer) {
      // A plain JSON hello: refused, never downgraded to.
      send.push(
        encodeHello(this.#o.codec, {
          op: "refuse",
          id: this.#o.localId,
          nonce: this.#o.nonce,
          reason: "version",
        }),
      );
      return {
        kind: "failed",
        send,
        reason: "version",
        message:
          `the peer offered the unauthenticated handshake (protocol ${PROTOCOL_VERSION}); refused`,
        remote: false,
      };
    }
    const first = this.#first;
    this.#first = false;
    if (this.#join !== undefined) return this.#onJoined(payload, rest, send, now);
    if (first && !this.#dialer && payload[0] === Kind.JOIN) {
      const linkId = JoinHandshake.linkOf(payload);
      if (linkId === undefined) {
        return {
          kind: "failed",
          send,
          reason: "protocol",
          message: "malformed join",
          remote: false,
        };
      }
      this.#j1 = payload.slice();
      this.#rest = rest;
      const token = Array.from(payload.subarray(49, 65), (b) => b.toString(16).padStart(2, "0"))
        .join("");
      return { kind: "join", send, linkId, token };
    }
    const step = this.#secure!.handle(payload);
    if (step.send !== undefined) send.push(this.#frame(step.send));
    if (step.error !== undefined) {
      return {
        kind: "failed",
        send,
        reason: step.error.reason,
        message: step.error.message,
        remote: step.error.remote,
      };
    }
    if (step.proven !== undefined) {
      const p = step.proven;
      this.#pending = { id: p.id, nonce: p.nonce, proven: true, secure: p };
      this.#rest = rest;
      return { kind: "decide", send, peer: this.#pending };
    }
    if (step.done !== undefined) {
      const p = step.done.peer;
      return {
        kind: "done",
        send,
        outcome: {
          peer: { id: p.id, nonce: p.nonce, proven: true, secure: p },
          rest,
          records: this.#records(step.done.keys, now),
        },
      };
    }
    return undefined;
  }

  /** (Dialer of a secure join) J2 or a refusal arrived. */
  #onJoined(
    payload: Uint8Array,
    rest: Uint8Array,
    send: Uint8Array[],
    now: number,
  ): HandshakeResult {
    if (payload[0] === Kind.REFUSE) {
      const reason = refusalOf(payload);
      return {
        kind: "failed",
        send,
        reason,
        message: `the peer refused the join: ${reason}`,
        remote: true,
      };
    }
    const keys = this.#join!.finish(payload);
    if (keys === undefined) {
      return {
        kind: "failed",
        send,
        reason: "link",
        message: "the join's answer does not prove the link's secret",
        remote: false,
      };
    }
    const link = this.#o.join!;
    return {
      kind: "done",
      send,
      outcome: {
        peer: { id: this.#expect ?? "", nonce: link.nonce, proven: true },
        rest,
        records: this.#records({ ...link.keys!, ...keys }, now),
      },
    };
  }

  #records(keys: ChannelKeys, now: number) {
    const crypto = this.#o.secure!.crypto;
    return {
      seal: new RecordSealer(crypto, keys.tx, now),
      open: new RecordOpener(crypto, keys.rx, now),
      keys,
    };
  }

  #frame(payload: Uint8Array): Uint8Array {
    return this.#o.codec.encodeBatch([
      { type: FrameType.CONTROL, stream: 0, seq: 0, total: payload.length, offset: 0, payload },
    ]).slice();
  }
}

/**
 * What the authenticated handshake needs from the machine: the account key,
 * this device's long-term key pair, and the store of the keys it trusts.
 * Everything secret lives in files only the user can read (mode 0600, in
 * 0700 folders). `docs/security.md` explains the threat model.
 *
 * - **Account**: `LINKWEAVE_ACCOUNT` (a secret string), else
 *   `LINKWEAVE_ACCOUNT_FILE` (a file holding one), else a per-user secret
 *   created on first use in `<state>/account`: every device one user runs
 *   on one machine then trusts the others, and no other user's does. The
 *   32-byte account key is `SHA-256("linkweave account v1" || secret)`.
 * - **Device key**: an Ed25519 key pair in the identity's folder (`key`).
 * - **Trust store**: `trust.json` in the identity's folder: keys pinned to
 *   device ids (the first key proven for an id in the account, or the key
 *   exchanged at pairing), paired devices, revoked keys.
 *
 * @module
 */
import {
  chmodSync,
  linkSync,
  mkdirSync,
  readFileSync,
  renameSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { dirname, join } from "node:path";
import { Buffer } from "node:buffer";
import { Cipher, concatBytes, equalBytes } from "../core/proto/handshake/crypto.ts";
import type { CryptoSuite } from "../core/proto/handshake/crypto.ts";
import type { IdSeal } from "../core/discovery/wire.ts";
import type { Identity, TrustView } from "../core/proto/handshake/secure.ts";

/** Where the account secret came from. */
export type AccountSource =
  | "LINKWEAVE_ACCOUNT"
  | "LINKWEAVE_ACCOUNT_FILE"
  | "configure"
  | "per-user";

/** An account key and where it came from. */
export interface Account {
  /** The 32-byte key. */
  key: Uint8Array;
  /** Its source: a per-user default keeps the device on loopback. */
  source: AccountSource;
}

const ACCOUNT_FILE = "account";
const KEY_FILE = "key";
const TRUST_FILE = "trust.json";

function b64(b: Uint8Array): string {
  return Buffer.from(b).toString("base64");
}

function unb64(s: unknown, n: number): Uint8Array | undefined {
  if (typeof s !== "string") return undefined;
  const b = new Uint8Array(Buffer.from(s, "base64"));
  return b.length === n ? b : undefined;
}

/** Write a file readable by the user only, atomically (a temp file renamed over it). */
function writePrivate(file: string, text: string): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${Math.random().toString(36).slice(2)}.tmp`;
  writeFileSync(tmp, text, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, file);
}

function readText(file: string): string | undefined {
  try {
    return readFileSync(file, "utf8");
  } catch (e) {
    if ((e as { code?: string }).code === "ENOENT") return undefined;
    throw e;
  }
}

/**
 * The account key.
 *
 * @param crypto The suite (for SHA-256 and fresh secrets).
 * @param options A secret from `configure`, the environment, the state directory.
 * @returns The account.
 * @throws {Error} When `LINKWEAVE_ACCOUNT_FILE` cannot be read or is empty, or
 *   the per-user secret cannot be written (the message names the file).
 */
export function loadAccount(
  crypto: CryptoSuite,
  options: { secret?: string; env: Record<string, string | undefined>; stateDir: string },
): Account {
  const key = (secret: string) =>
    crypto.sha256(new TextEncoder().encode(`linkweave account v1\n${secret}`));
  if (options.secret !== undefined && options.secret !== "") {
    return { key: key(options.secret), source: "configure" };
  }
  const env = options.env;
  if (env.LINKWEAVE_ACCOUNT !== undefined && env.LINKWEAVE_ACCOUNT !== "") {
    return { key: key(env.LINKWEAVE_ACCOUNT), source: "LINKWEAVE_ACCOUNT" };
  }
  const file = env.LINKWEAVE_ACCOUNT_FILE;
  if (file !== undefined && file !== "") {
    let secret: string | undefined;
    try {
      secret = readText(file)?.trim();
    } catch (e) {
      throw new Error(`Cannot read LINKWEAVE_ACCOUNT_FILE="${file}": ${(e as Error).message}`);
    }
    if (secret === undefined || secret === "") {
      throw new Error(`LINKWEAVE_ACCOUNT_FILE="${file}" is missing or empty`);
    }
    return { key: key(secret), source: "LINKWEAVE_ACCOUNT_FILE" };
  }
  const own = join(options.stateDir, ACCOUNT_FILE);
  let secret = readText(own)?.trim();
  if (secret === undefined || secret === "") {
    secret = b64(crypto.random(32));
    try {
      writePrivate(own, `${secret}\n`);
    } catch (e) {
      throw new Error(
        `Cannot keep the per-user account secret in "${own}": ${(e as Error).message} ` +
          "(set LINKWEAVE_ACCOUNT, or XDG_STATE_HOME to a writable directory)",
      );
    }
    // Another process may have written it first: use what is there.
    secret = readText(own)?.trim() ?? secret;
  }
  return { key: key(secret), source: "per-user" };
}

/**
 * This device's long-term key pair, created on first use.
 *
 * @param crypto The suite.
 * @param dir The identity's folder.
 * @param id The device id.
 * @returns The identity.
 */
export function loadIdentity(crypto: CryptoSuite, dir: string, id: string): Identity {
  const file = join(dir, KEY_FILE);
  const text = readText(file);
  if (text !== undefined) {
    try {
      const j = JSON.parse(text);
      const publicKey = unb64(j.publicKey, 32);
      const privateKey = unb64(j.privateKey, 32);
      if (publicKey !== undefined && privateKey !== undefined) return { id, publicKey, privateKey };
    } catch {
      // rewritten below
    }
    throw new Error(`The device key in "${file}" is damaged; move it away to make a new one`);
  }
  const k = crypto.ed25519();
  const json = JSON.stringify({ publicKey: b64(k.publicKey), privateKey: b64(k.privateKey) });
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const tmp = `${file}.${Math.random().toString(36).slice(2)}.tmp`;
  writeFileSync(tmp, `${json}\n`, { mode: 0o600 });
  try {
    // Exclusive: when another process made the key first, that one is the device's.
    linkSync(tmp, file);
  } catch (e) {
    if ((e as { code?: string }).code !== "EEXIST") throw e;
    return loadIdentity(crypto, dir, id);
  } finally {
    unlinkSync(tmp);
  }
  return { id, publicKey: k.publicKey, privateKey: k.privateKey };
}

/** A device this one trusts, as {@linkcode FileTrust.list} reports it. */
export interface TrustedDevice {
  /** Its device id. */
  id: string;
  /** Its key, base64. */
  key: string;
  /** How it came to be trusted. */
  how: "account" | "paired";
  /** When (ms since the epoch). */
  since: number;
  /** Where it was reached when paired (`host:port`), to dial it again by id. */
  address?: string;
}

interface TrustFile {
  pins: TrustedDevice[];
  revoked: { id: string; key: string }[];
}

/**
 * The trust store, in the identity's folder: read when the device starts,
 * written (atomically) on every change.
 */
export class FileTrust implements TrustView {
  readonly #file: string;
  #data: TrustFile = { pins: [], revoked: [] };

  /** @param dir The identity's folder. */
  constructor(dir: string) {
    this.#file = join(dir, TRUST_FILE);
    const text = readText(this.#file);
    if (text !== undefined) {
      try {
        const j = JSON.parse(text);
        if (Array.isArray(j.pins) && Array.isArray(j.revoked)) this.#data = j;
      } catch {
        throw new Error(`The trust store "${this.#file}" is damaged; fix or remove it`);
      }
    }
  }

  pinned(id: string): Uint8Array | undefined {
    const p = this.#data.pins.find((p) => p.id === id);
    return p === undefined ? undefined : unb64(p.key, 32);
  }

  paired(id: string): boolean {
    return this.#data.pins.some((p) => p.id === id && p.how === "paired");
  }

  anyPaired(): boolean {
    return this.#data.pins.some((p) => p.how === "paired");
  }

  revoked(id: string, key: Uint8Array): boolean {
    return this.#data.revoked.some((r) =>
      r.id === id && equalBytes(unb64(r.key, 32) ?? new Uint8Array(0), key)
    );
  }

  pin(id: string, publicKey: Uint8Array): void {
    this.#set({ id, key: b64(publicKey), how: "account", since: Date.now() });
  }

  /**
   * Trust a device's key without an account (pairing).
   *
   * @param id The device id.
   * @param publicKey Its key.
   */
  pair(id: string, publicKey: Uint8Array): void {
    this.#set({ id, key: b64(publicKey), how: "paired", since: Date.now() });
  }

  /**
   * Remember where a trusted device was reached (pairing), to dial it by id.
   *
   * @param id The device id.
   * @param address `host:port`.
   */
  remember(id: string, address: string): void {
    const p = this.#data.pins.find((p) => p.id === id);
    if (p === undefined) return;
    this.#set({ ...p, address });
  }

  /**
   * Where a trusted device was reached, if remembered.
   *
   * @param id The device id.
   * @returns `{ host, port }`.
   */
  addressOf(id: string): { host: string; port: number } | undefined {
    const a = this.#data.pins.find((p) => p.id === id)?.address;
    const m = a === undefined ? null : /^\[?([^\]]+)\]?:(\d+)$/.exec(a);
    return m === null ? undefined : { host: m[1], port: Number(m[2]) };
  }

  /**
   * The devices trusted now.
   *
   * @returns Copies of the records.
   */
  list(): TrustedDevice[] {
    return this.#data.pins.map((p) => ({ ...p }));
  }

  /**
   * Stop trusting a device: its key is forgotten and refused from now on
   * (the device must be paired, or its key removed from the revoked list by
   * hand, to come back).
   *
   * @param id The device id.
   * @returns Whether it was trusted.
   */
  revoke(id: string): boolean {
    const p = this.#data.pins.find((p) => p.id === id);
    if (p === undefined) return false;
    this.#data = {
      pins: this.#data.pins.filter((q) => q !== p),
      revoked: [...this.#data.revoked, { id, key: p.key }],
    };
    this.#save();
    return true;
  }

  #set(record: TrustedDevice): void {
    const key = unb64(record.key, 32)!;
    this.#data = {
      pins: [...this.#data.pins.filter((p) => p.id !== record.id), record],
      revoked: this.#data.revoked.filter((r) =>
        !(r.id === record.id && equalBytes(unb64(r.key, 32) ?? new Uint8Array(0), key) &&
          record.how === "paired")
      ),
    };
    this.#save();
  }

  #save(): void {
    writePrivate(this.#file, JSON.stringify(this.#data, null, 2) + "\n");
  }
}

/**
 * Seals device ids in discovery announcements with the account: AES-256-GCM
 * (every runtime has it) under `HKDF(account, "linkweave discovery")`, with
 * a random nonce per announcement, so the sealed id differs every time and
 * only account members can read it.
 *
 * @param crypto The suite.
 * @param account The account key.
 * @returns The seal.
 */
export function accountIdSeal(crypto: CryptoSuite, account: Uint8Array): IdSeal {
  const key = crypto.aead(
    Cipher.AES_256_GCM,
    crypto.hkdf(account, new Uint8Array(32), new TextEncoder().encode("linkweave discovery"), 32),
  );
  return {
    seal(id, aad) {
      const nonce = crypto.random(12);
      const out = new Uint8Array(12 + id.length + 16);
      out.set(nonce);
      key.seal(nonce, id, aad, out, 12);
      return out;
    },
    open(sealed, aad) {
      if (sealed.length !== 12 + 6 + 16) return undefined;
      return key.open(sealed.subarray(0, 12), sealed.subarray(12), concatBytes(aad));
    },
  };
}

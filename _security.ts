/**
 * Composes the authenticated handshake's settings for a device from the
 * platform (account, key pair, trust store, crypto): a private root module,
 * used by every public module that starts a device.
 *
 * @module
 */
import process from "node:process";
import { join } from "node:path";
import type { DeviceConfig } from "./core/device/config.ts";
import type { EndpointOptions } from "./core/device/endpoint.ts";
import { nodeCrypto } from "./platform/crypto.ts";
import { stateDirectory } from "./platform/identity.ts";
import {
  type Account,
  accountIdSeal,
  FileTrust,
  loadAccount,
  loadIdentity,
} from "./platform/security.ts";
import type { IdSeal } from "./core/discovery/wire.ts";

/** A device's security, and the trust store behind it. */
export interface DeviceSecurity {
  /** For the driver. */
  security: NonNullable<EndpointOptions["security"]>;
  /** The trust store (list, revoke, pair). */
  trust: FileTrust;
  /** Where the account came from. */
  account: Account;
  /** Seals this device's id in discovery (only account members read it). */
  seal: IdSeal;
}

/**
 * The security of a device about to start, or `undefined` with `security: "none"`.
 *
 * @param config The configuration (its device id resolved).
 * @param deviceId The device id.
 * @param identityDir The identity's folder, when the device took one; else a
 *   folder named by the id is used in the state directory.
 * @returns The security.
 */
export function deviceSecurity(
  config: DeviceConfig,
  deviceId: string,
  identityDir: string | undefined,
): DeviceSecurity | undefined {
  if (config.security === "none") return undefined;
  const crypto = nodeCrypto();
  const stateDir = stateDirectory(process.env);
  const account = loadAccount(crypto, { secret: config.account, env: process.env, stateDir });
  const dir = identityDir ?? join(stateDir, "ids", deviceId.replaceAll(":", "-"));
  const identity = loadIdentity(crypto, dir, deviceId);
  const trust = new FileTrust(dir);
  return {
    security: { crypto, identity, account: account.key, trust },
    trust,
    account,
    seal: accountIdSeal(crypto, account.key),
  };
}

/**
 * Whether an address is loopback only.
 *
 * @param bind The listen address.
 * @returns Whether it is.
 */
export function isLoopback(bind: string): boolean {
  return bind === "localhost" || bind === "::1" || bind.startsWith("127.");
}

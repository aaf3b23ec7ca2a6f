/**
 * The raw exports of the framing module and its lazy, synchronous, memoised
 * instantiation from the embedded base64.
 *
 * @module
 */
import { FRAMING_WASM_BASE64 } from "./_generated/framing_wasm.ts";

/** The framing module's exports: numbers only (see `wasm/assembly/index.ts`). */
export interface FramingExports {
  /** The module's memory; its size is fixed once the module has started. */
  memory: WebAssembly.Memory;
  /** Region addresses and capacities, by index. */
  layout(i: number): number;
  /** CRC-32 of `len` bytes at `ptr`, continuing from `seed`. */
  crc32(ptr: number, len: number, seed: number): number;
  /** Fragments of a message of `total` bytes at an MTU, or -1. */
  chunkCount(total: number, mtu: number): number;
  /** Scan frames in memory; writes descriptors and status. */
  decodeScan(ptr: number, len: number, maxFrame: number, withCrc: number): number;
  /** Write headers (and CRCs) of `n` frames described in ENC_DESC. */
  encodeBatch(n: number, withCrc: number): number;
  /** Chunk and encode a part of a message from MSG_IN. */
  encodeMessage(
    type: number,
    stream: number,
    seq: number,
    total: number,
    start: number,
    partLen: number,
    mtu: number,
    withCrc: number,
  ): number;
  /** Reset a reassembler slot and set its limits. */
  raInit(
    slot: number,
    maxMessage: number,
    maxStream: number,
    maxLink: number,
    maxMessages: number,
    maxHoles: number,
  ): void;
  /** Account for a fragment. */
  raPush(
    slot: number,
    stream: number,
    seq: number,
    total: number,
    offset: number,
    len: number,
    type: number,
  ): number;
  /** Drop all messages of a slot. */
  raReset(slot: number): void;
  /** Drop the messages of one stream; returns how many. */
  raResetStream(slot: number, stream: number): number;
  /** Pending bytes of one stream. */
  raStreamPending(slot: number, stream: number): number;
  /** Pending bytes of a slot. */
  raLinkPending(slot: number): number;
  /** Messages in reassembly on a slot. */
  raCount(slot: number): number;
}

let module: WebAssembly.Module | undefined;
let exports: FramingExports | undefined;

/**
 * The compiled framing module (compiled once, on first use).
 *
 * @returns The module.
 */
export function framingModule(): WebAssembly.Module {
  if (module === undefined) {
    const text = atob(FRAMING_WASM_BASE64);
    const bytes: Uint8Array<ArrayBuffer> = new Uint8Array(text.length);
    for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
    module = new WebAssembly.Module(bytes);
  }
  return module;
}

/**
 * The shared instance of the framing module (instantiated once, on first use).
 *
 * @returns Its exports.
 */
export function framingExports(): FramingExports {
  if (exports === undefined) {
    const instance = new WebAssembly.Instance(framingModule(), {});
    exports = instance.exports as unknown as FramingExports;
  }
  return exports;
}

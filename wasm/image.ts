/**
 * The JPEG codec of `sendImage` / `receiveImage`: a baseline JPEG encoder
 * (JFIF, YCbCr 4:2:0, the Annex K tables scaled by quality as the IJG
 * library does) and decoder (baseline Huffman, one or three components,
 * sampling factors up to 2, restart intervals), in WebAssembly
 * (AssemblyScript in `wasm/assembly/image/`, embedded as base64 in
 * `wasm/_generated/image_wasm.ts`). It is a module of its own, separate from
 * the framing module: each call gets a fresh instance, so the memory an
 * image needs is given back with it (wasm memory never shrinks).
 *
 * @example Round trip
 * ```ts
 * import assert from "node:assert/strict";
 * const codec = createImageCodec();
 * const rgba = new Uint8Array(16 * 16 * 4).fill(200);
 * const jpeg = codec.encodeJpeg(rgba, 16, 16, 90);
 * assert.deepEqual([...jpeg.subarray(0, 2)], [0xff, 0xd8]);
 * const back = codec.decodeJpeg(jpeg, 1 << 20);
 * assert.equal(back.width, 16);
 * assert.ok(Math.abs(back.rgba[0] - 200) <= 2);
 * ```
 *
 * @module
 */
import { IMAGE_WASM_BASE64 } from "./_generated/image_wasm.ts";

/** The image module's exports (see `wasm/assembly/image/index.ts`). */
interface ImageExports {
  memory: WebAssembly.Memory;
  reserve(n: number): number;
  encodeRgba(ptr: number, width: number, height: number, quality: number): number;
  encodedPtr(): number;
  decodeHeader(ptr: number, len: number, maxPixels: number): number;
  decodeScan(): number;
  decodedWidth(): number;
  decodedHeight(): number;
  decodedPtr(): number;
}

/** A JPEG encoder and decoder. */
export interface JpegCodec {
  /**
   * Encode RGBA pixels (alpha dropped).
   *
   * @param rgba `width * height * 4` bytes.
   * @param width Width.
   * @param height Height.
   * @param quality 0..100.
   * @returns The JPEG.
   */
  encodeJpeg(rgba: Uint8Array, width: number, height: number, quality: number): Uint8Array;
  /**
   * Decode a baseline JPEG to RGBA (alpha 255).
   *
   * @param jpeg The bytes.
   * @param maxPixels The largest image accepted.
   * @returns Size and pixels.
   */
  decodeJpeg(
    jpeg: Uint8Array,
    maxPixels: number,
  ): { width: number; height: number; rgba: Uint8Array };
}

const ERRORS: Record<number, string> = {
  [-1]: "not a JPEG",
  [-2]: "the JPEG is truncated",
  [-3]: "unsupported JPEG (only baseline, 8-bit, 1 or 3 components, one scan)",
  [-4]: "the image is too large",
  [-5]: "the JPEG is corrupt",
  [-6]: "out of memory",
};

let compiled: WebAssembly.Module | undefined;

function instance(): ImageExports {
  if (compiled === undefined) {
    const text = atob(IMAGE_WASM_BASE64);
    const bytes: Uint8Array<ArrayBuffer> = new Uint8Array(text.length);
    for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
    compiled = new WebAssembly.Module(bytes);
  }
  return new WebAssembly.Instance(compiled, {}).exports as unknown as ImageExports;
}

function fail(code: number, action: string): never {
  throw new Error(`Cannot ${action}: ${ERRORS[code] ?? `error ${code}`}`);
}

/**
 * The WebAssembly JPEG codec.
 *
 * @returns The codec.
 */
export function createImageCodec(): JpegCodec {
  return {
    encodeJpeg(rgba, width, height, quality) {
      const x = instance();
      const at = x.reserve(rgba.length);
      if (at === 0) fail(-6, "encode the image");
      new Uint8Array(x.memory.buffer, at, rgba.length).set(rgba);
      const n = x.encodeRgba(at, width, height, quality);
      if (n < 0) fail(n, "encode the image");
      return new Uint8Array(x.memory.buffer, x.encodedPtr(), n).slice();
    },
    decodeJpeg(jpeg, maxPixels) {
      const x = instance();
      const at = x.reserve(jpeg.length);
      if (at === 0) fail(-6, "decode the image");
      new Uint8Array(x.memory.buffer, at, jpeg.length).set(jpeg);
      const h = x.decodeHeader(at, jpeg.length, maxPixels);
      if (h < 0) fail(h, "decode the image");
      const r = x.decodeScan();
      if (r < 0) fail(r, "decode the image");
      const width = x.decodedWidth();
      const height = x.decodedHeight();
      const rgba = new Uint8Array(x.memory.buffer, x.decodedPtr(), width * height * 4).slice();
      return { width, height, rgba };
    },
  };
}

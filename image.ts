/**
 * A minimal `image` module (OpenHarmony's Image Kit): {@linkcode PixelMap}
 * (made from pixels, its information, its pixels read back, released),
 * what `abilityConnectionManager.sendImage` takes and `receiveImage`
 * delivers, plus JPEG packing and decoding with the same WebAssembly codec
 * the sessions use (`wasm/image.ts`): {@linkcode createImagePacker} and
 * {@linkcode createImageSource}.
 *
 * @example Pack a PixelMap as JPEG and decode it again
 * ```ts
 * import assert from "node:assert/strict";
 * const colors = new Uint8Array(32 * 32 * 4).fill(128).buffer;
 * const pm = await createPixelMap(colors, { size: { width: 32, height: 32 } });
 * const jpeg = await createImagePacker().packToData(pm, { format: "image/jpeg", quality: 30 });
 * const back = await createImageSource(jpeg).createPixelMap();
 * assert.deepEqual(back.getImageInfoSync().size, { width: 32, height: 32 });
 * await pm.release();
 * ```
 *
 * @module
 */
import { readFileSync } from "node:fs";
import { ParameterError } from "./core/errors.ts";
import {
  type ImageCodec,
  MAX_IMAGE_PIXELS,
  PixelMap,
  pixelMapFromJpeg,
} from "./core/ability/pixel_map.ts";
import { createImageCodec } from "./wasm/image.ts";

export {
  AlphaType,
  createPixelMap,
  createPixelMapSync,
  MAX_IMAGE_PIXELS,
  PixelMap,
  PixelMapFormat,
} from "./core/ability/pixel_map.ts";
export type {
  ImageCodec,
  ImageInfo,
  InitializationOptions,
  Size,
} from "./core/ability/pixel_map.ts";

let codec: ImageCodec | undefined;

function jpegCodec(): ImageCodec {
  return codec ??= createImageCodec();
}

/** Options of {@linkcode ImagePacker.packToData}. */
export interface PackingOption {
  /** The MIME type: only `"image/jpeg"`. */
  format: string;
  /** JPEG quality, 0..100. */
  quality: number;
}

/** Encodes PixelMaps (`image.ImagePacker`). */
export class ImagePacker {
  /** The formats it writes. */
  readonly supportedFormats: string[] = ["image/jpeg"];

  /**
   * Encode a PixelMap.
   *
   * @param source The image.
   * @param options Format (`image/jpeg`) and quality.
   * @returns The encoded bytes.
   */
  packToData(source: PixelMap, options: PackingOption): Promise<ArrayBuffer> {
    try {
      if (!(source instanceof PixelMap) || source.released) {
        throw new ParameterError("Invalid source: expected a PixelMap that is not released");
      }
      if (options?.format !== "image/jpeg") {
        throw new ParameterError(
          `Invalid format ${JSON.stringify(options?.format)}: expected "image/jpeg"`,
        );
      }
      const q = options.quality;
      if (!Number.isInteger(q) || q < 0 || q > 100) {
        throw new ParameterError(`Invalid quality ${JSON.stringify(q)}: expected 0..100`);
      }
      const { size } = source.getImageInfoSync();
      const jpeg = jpegCodec().encodeJpeg(source.rgba(), size.width, size.height, q);
      return Promise.resolve(jpeg.buffer as ArrayBuffer);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Release the packer. @returns When done. */
  release(): Promise<void> {
    return Promise.resolve();
  }
}

/**
 * A JPEG encoder.
 *
 * @returns The packer.
 */
export function createImagePacker(): ImagePacker {
  return new ImagePacker();
}

/** A JPEG to decode (`image.ImageSource`). */
export class ImageSource {
  #bytes: Uint8Array;

  /**
   * @internal Use {@linkcode createImageSource}.
   * @param bytes The encoded image.
   */
  constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
  }

  /**
   * Decode it.
   *
   * @returns The PixelMap (`RGBA_8888`); rejects for what the decoder cannot read.
   */
  createPixelMap(): Promise<PixelMap> {
    try {
      return Promise.resolve(
        pixelMapFromJpeg(jpegCodec().decodeJpeg(this.#bytes, MAX_IMAGE_PIXELS)),
      );
    } catch (e) {
      return Promise.reject(new ParameterError(`Cannot decode the image: ${(e as Error).message}`));
    }
  }

  /** Release the source. @returns When done. */
  release(): Promise<void> {
    return Promise.resolve();
  }
}

/**
 * An image source: from JPEG bytes, a file path or an open file descriptor.
 *
 * @param source The bytes, a path, or a file descriptor.
 * @returns The source.
 * @throws {TypeError} 401 for something else, or a file that cannot be read.
 */
export function createImageSource(source: ArrayBuffer | string | number): ImageSource {
  if (source instanceof ArrayBuffer) return new ImageSource(new Uint8Array(source));
  if (typeof source === "string" || typeof source === "number") {
    try {
      return new ImageSource(new Uint8Array(readFileSync(source)));
    } catch (e) {
      throw new ParameterError(
        `Cannot read the image ${JSON.stringify(source)}: ${(e as Error).message}`,
      );
    }
  }
  throw new ParameterError("Invalid source: expected an ArrayBuffer, a path or a file descriptor");
}

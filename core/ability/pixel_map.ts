/**
 * A minimal `image.PixelMap` (OpenHarmony's Image Kit): pixels in memory with
 * their geometry, made from a buffer, read back, released. It is what
 * `sendImage` takes and `receiveImage` delivers; the JPEG codec that carries
 * it between devices is behind {@linkcode ImageCodec} (the root module
 * `image.ts` hands in the WebAssembly one).
 *
 * Formats: `RGBA_8888` and `BGRA_8888`, 4 bytes per pixel, rows packed (the
 * stride is `width * 4`).
 *
 * @example Make a 2x1 image and read it back
 * ```ts
 * import assert from "node:assert/strict";
 * const colors = new Uint8Array([1, 2, 3, 255, 4, 5, 6, 255]).buffer;
 * const pm = createPixelMapSync(colors, {
 *   size: { width: 2, height: 1 },
 *   srcPixelFormat: PixelMapFormat.RGBA_8888,
 * });
 * assert.deepEqual(pm.getImageInfoSync().size, { width: 2, height: 1 });
 * const out = new ArrayBuffer(pm.getPixelBytesNumber());
 * pm.readPixelsToBufferSync(out);
 * assert.deepEqual([...new Uint8Array(out)], [1, 2, 3, 255, 4, 5, 6, 255]);
 * ```
 *
 * @module
 */
import { ParameterError } from "../errors.ts";

/** Pixel formats (OpenHarmony's values; linkweave stores the two 32-bit ones). */
export const PixelMapFormat = {
  /** Unknown. */
  UNKNOWN: 0,
  /** R, G, B, A bytes. */
  RGBA_8888: 3,
  /** B, G, R, A bytes (OpenHarmony's default source format). */
  BGRA_8888: 4,
} as const;

/** How alpha is stored. */
export const AlphaType = {
  /** Unknown. */
  UNKNOWN: 0,
  /** No alpha: every pixel is opaque. */
  OPAQUE: 1,
  /** Premultiplied alpha. */
  PREMUL: 2,
  /** Straight (not premultiplied) alpha. */
  UNPREMUL: 3,
} as const;

/** Width and height in pixels. */
export interface Size {
  /** Height in pixels. */
  height: number;
  /** Width in pixels. */
  width: number;
}

/** What `getImageInfo` reports. */
export interface ImageInfo {
  /** The size. */
  size: Size;
  /** Bytes per row. */
  stride: number;
  /** `PixelMapFormat`. */
  pixelFormat: number;
  /** `AlphaType`. */
  alphaType: number;
  /** Pixel density (0: unknown). */
  density: number;
  /** Always `false`. */
  isHdr: boolean;
  /** The MIME type it was decoded from, or `""`. */
  mimeType: string;
}

/** Options of {@linkcode createPixelMap}. */
export interface InitializationOptions {
  /** The size. */
  size: Size;
  /** The format of the bytes given. @default {PixelMapFormat.BGRA_8888} */
  srcPixelFormat?: number;
  /** The format to store. @default {PixelMapFormat.RGBA_8888} */
  pixelFormat?: number;
  /** Whether the pixels may be changed. @default {false} */
  editable?: boolean;
  /** How alpha is stored. @default {AlphaType.UNPREMUL} */
  alphaType?: number;
}

/** Largest image, in pixels, that is created or decoded (4096 x 4096). */
export const MAX_IMAGE_PIXELS: number = 4096 * 4096;

/** A JPEG encoder and decoder (the root module `image.ts` gives the WebAssembly one). */
export interface ImageCodec {
  /**
   * Encode RGBA pixels as a baseline JPEG (alpha is dropped).
   *
   * @param rgba `width * height * 4` bytes.
   * @param width Width in pixels.
   * @param height Height in pixels.
   * @param quality 0..100.
   * @returns The JPEG bytes.
   */
  encodeJpeg(rgba: Uint8Array, width: number, height: number, quality: number): Uint8Array;
  /**
   * Decode a baseline JPEG to RGBA (alpha 255).
   *
   * @param jpeg The bytes.
   * @param maxPixels Refuse larger images.
   * @returns The pixels and size.
   * @throws {Error} When the bytes are not a JPEG it can decode, or too large.
   */
  decodeJpeg(
    jpeg: Uint8Array,
    maxPixels: number,
  ): { width: number; height: number; rgba: Uint8Array };
}

function invalid(message: string): ParameterError {
  return new ParameterError(message);
}

function checkSize(size: unknown): Size {
  const s = size as Size | undefined;
  if (typeof s !== "object" || s === null) {
    throw invalid(`Invalid size ${JSON.stringify(size)}: expected { width, height }`);
  }
  const { width, height } = s;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw invalid(
      `Invalid size ${
        JSON.stringify({ width, height })
      }: expected positive integer width and height`,
    );
  }
  if (width * height > MAX_IMAGE_PIXELS) {
    throw invalid(
      `Invalid size ${width}x${height}: more than ${MAX_IMAGE_PIXELS} pixels`,
    );
  }
  return { width, height };
}

function checkFormat(format: unknown, what: string): number {
  if (format !== PixelMapFormat.RGBA_8888 && format !== PixelMapFormat.BGRA_8888) {
    throw invalid(
      `Invalid ${what} ${
        JSON.stringify(format)
      }: expected PixelMapFormat.RGBA_8888 (3) or BGRA_8888 (4)`,
    );
  }
  return format;
}

/** Swap R and B of 4-byte pixels, `src` into `dst` (which may be `src`). */
function swapRb(src: Uint8Array, dst: Uint8Array): void {
  for (let i = 0; i < dst.length; i += 4) {
    const r = src[i];
    dst[i] = src[i + 2];
    dst[i + 1] = src[i + 1];
    dst[i + 2] = r;
    dst[i + 3] = src[i + 3];
  }
}

/** Pixels and their geometry. */
export class PixelMap {
  #pixels: Uint8Array | undefined;
  #size: Size;
  #format: number;
  #alpha: number;
  #editable: boolean;
  #mime: string;

  /**
   * @internal Use {@linkcode createPixelMap} or {@linkcode createPixelMapSync}.
   * @param pixels The stored bytes (taken, not copied).
   * @param init Size, stored format, alpha type, editability and MIME type.
   */
  constructor(
    pixels: Uint8Array,
    init: { size: Size; format: number; alphaType: number; editable: boolean; mimeType?: string },
  ) {
    this.#pixels = pixels;
    this.#size = init.size;
    this.#format = init.format;
    this.#alpha = init.alphaType;
    this.#editable = init.editable;
    this.#mime = init.mimeType ?? "";
  }

  /** Whether the pixels may be changed. */
  get isEditable(): boolean {
    return this.#editable;
  }

  /** Always `false`: rows are packed. */
  get isStrideAlignment(): boolean {
    return false;
  }

  /** Whether `release()` was called. */
  get released(): boolean {
    return this.#pixels === undefined;
  }

  #live(action: string): Uint8Array {
    if (this.#pixels === undefined) {
      throw invalid(`Cannot ${action}: the PixelMap is released`);
    }
    return this.#pixels;
  }

  /**
   * The image's geometry and format.
   *
   * @returns The information.
   * @throws {ParameterError} 401 after `release()`.
   */
  getImageInfoSync(): ImageInfo {
    this.#live("get the image information");
    return {
      size: { ...this.#size },
      stride: this.#size.width * 4,
      pixelFormat: this.#format,
      alphaType: this.#alpha,
      density: 0,
      isHdr: false,
      mimeType: this.#mime,
    };
  }

  /**
   * The image's geometry and format.
   *
   * @returns The information.
   */
  getImageInfo(): Promise<ImageInfo> {
    try {
      return Promise.resolve(this.getImageInfoSync());
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * Bytes per row.
   *
   * @returns `width * 4`.
   */
  getBytesNumberPerRow(): number {
    return this.#size.width * 4;
  }

  /**
   * Bytes of all pixels.
   *
   * @returns `width * height * 4`.
   */
  getPixelBytesNumber(): number {
    return this.#size.width * this.#size.height * 4;
  }

  /**
   * Copy the pixels, in the stored format, into `dst`.
   *
   * @param dst At least {@linkcode PixelMap.getPixelBytesNumber} bytes.
   * @throws {ParameterError} 401 for a smaller or non-ArrayBuffer `dst`, or after `release()`.
   */
  readPixelsToBufferSync(dst: ArrayBuffer): void {
    const pixels = this.#live("read pixels");
    if (!(dst instanceof ArrayBuffer) || dst.byteLength < pixels.length) {
      throw invalid(
        `Cannot read pixels: expected an ArrayBuffer of at least ${pixels.length} bytes`,
      );
    }
    new Uint8Array(dst).set(pixels);
  }

  /**
   * Copy the pixels, in the stored format, into `dst`.
   *
   * @param dst At least {@linkcode PixelMap.getPixelBytesNumber} bytes.
   * @returns When copied.
   */
  readPixelsToBuffer(dst: ArrayBuffer): Promise<void> {
    try {
      this.readPixelsToBufferSync(dst);
      return Promise.resolve();
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * Replace the pixels from `src` (same format and size); editable maps only.
   *
   * @param src At least {@linkcode PixelMap.getPixelBytesNumber} bytes.
   * @throws {ParameterError} 401 when not editable, for a short buffer, or after `release()`.
   */
  writeBufferToPixelsSync(src: ArrayBuffer): void {
    const pixels = this.#live("write pixels");
    if (!this.#editable) throw invalid("Cannot write pixels: the PixelMap is not editable");
    if (!(src instanceof ArrayBuffer) || src.byteLength < pixels.length) {
      throw invalid(
        `Cannot write pixels: expected an ArrayBuffer of at least ${pixels.length} bytes`,
      );
    }
    pixels.set(new Uint8Array(src, 0, pixels.length));
  }

  /**
   * Free the pixels; the map is unusable afterwards.
   *
   * @returns When done.
   */
  release(): Promise<void> {
    this.#pixels = undefined;
    return Promise.resolve();
  }

  /**
   * @internal The pixels as RGBA (a view when stored as RGBA, else a copy).
   * @returns The bytes.
   */
  rgba(): Uint8Array {
    const pixels = this.#live("read pixels");
    if (this.#format === PixelMapFormat.RGBA_8888) return pixels;
    const out = new Uint8Array(pixels.length);
    swapRb(pixels, out);
    return out;
  }

  /** A plain description (for `JSON.stringify`). */
  toJSON(): { width: number; height: number; pixelFormat: number; released: boolean } {
    return { ...this.#size, pixelFormat: this.#format, released: this.released };
  }
}

/**
 * Make a PixelMap from pixels (copied).
 *
 * @param colors The pixels, `width * height * 4` bytes at least, in `srcPixelFormat`.
 * @param options Size, source and stored formats, editability, alpha type.
 * @returns The PixelMap.
 * @throws {ParameterError} 401 for a bad size or format, or a short buffer.
 */
export function createPixelMapSync(colors: ArrayBuffer, options: InitializationOptions): PixelMap {
  if (typeof options !== "object" || options === null) {
    throw invalid("Invalid options: expected { size, ... }");
  }
  const size = checkSize(options.size);
  const src = checkFormat(options.srcPixelFormat ?? PixelMapFormat.BGRA_8888, "srcPixelFormat");
  const format = checkFormat(options.pixelFormat ?? PixelMapFormat.RGBA_8888, "pixelFormat");
  const n = size.width * size.height * 4;
  if (!(colors instanceof ArrayBuffer) || colors.byteLength < n) {
    throw invalid(
      `Invalid colors: expected an ArrayBuffer of at least ${n} bytes for ${size.width}x${size.height}`,
    );
  }
  const pixels = new Uint8Array(n);
  const from = new Uint8Array(colors, 0, n);
  if (src === format) pixels.set(from);
  else swapRb(from, pixels);
  return new PixelMap(pixels, {
    size,
    format,
    alphaType: options.alphaType ?? AlphaType.UNPREMUL,
    editable: options.editable === true,
  });
}

/**
 * Make a PixelMap from pixels (copied).
 *
 * @param colors The pixels, in `srcPixelFormat`.
 * @param options Size, formats, editability, alpha type.
 * @returns The PixelMap.
 */
export function createPixelMap(
  colors: ArrayBuffer,
  options: InitializationOptions,
): Promise<PixelMap> {
  try {
    return Promise.resolve(createPixelMapSync(colors, options));
  } catch (e) {
    return Promise.reject(e);
  }
}

/**
 * A PixelMap around decoded RGBA pixels (not copied).
 *
 * @param decoded What {@linkcode ImageCodec.decodeJpeg} returned.
 * @returns The PixelMap, `RGBA_8888`, opaque, `image/jpeg`.
 */
export function pixelMapFromJpeg(
  decoded: { width: number; height: number; rgba: Uint8Array },
): PixelMap {
  return new PixelMap(decoded.rgba, {
    size: { width: decoded.width, height: decoded.height },
    format: PixelMapFormat.RGBA_8888,
    alphaType: AlphaType.OPAQUE,
    editable: false,
    mimeType: "image/jpeg",
  });
}

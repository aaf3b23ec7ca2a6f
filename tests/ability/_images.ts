/**
 * Test images and their comparison: a deterministic photo-like image
 * (smooth gradients, soft shapes, fine texture and sensor-like noise, so it
 * compresses like a photograph rather than like a flat test card), and the
 * PSNR between two RGBA buffers over R, G, B.
 *
 * @module
 */

/**
 * A photo-like RGBA image.
 *
 * @param width Width.
 * @param height Height.
 * @param seed The noise seed. @default {1}
 * @returns The pixels.
 */
export function photo(
  width: number,
  height: number,
  seed = 1,
): { width: number; height: number; rgba: Uint8Array<ArrayBuffer> } {
  const rgba = new Uint8Array(width * height * 4);
  let s = seed >>> 0 || 1;
  const noise = () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return ((s >>> 0) % 17) - 8;
  };
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const u = x / width;
      const v = y / height;
      // Sky to ground, a sun, hills, and a textured field.
      const sun = Math.exp(-(((u - 0.7) ** 2) + ((v - 0.25) ** 2)) * 40);
      const hill = v > 0.55 + 0.08 * Math.sin(u * 9) ? 1 : 0;
      const texture = 12 * Math.sin(x * 0.9) * Math.cos(y * 0.7) * hill;
      const i = (y * width + x) * 4;
      // Sensor noise is mostly in brightness, a little in colour.
      const grain = noise();
      const r = 90 + 120 * v + 140 * sun - 40 * hill + texture + grain + noise() / 4;
      const g = 140 + 60 * v + 100 * sun + 30 * hill + texture + grain + noise() / 4;
      const b = 230 - 120 * v + 40 * sun - 120 * hill + grain + noise() / 4;
      rgba[i] = Math.max(0, Math.min(255, r));
      rgba[i + 1] = Math.max(0, Math.min(255, g));
      rgba[i + 2] = Math.max(0, Math.min(255, b));
      rgba[i + 3] = 255;
    }
  }
  return { width, height, rgba };
}

/**
 * Peak signal-to-noise ratio over R, G and B (dB).
 *
 * @param a RGBA pixels.
 * @param b RGBA pixels of the same size.
 * @returns The PSNR; `Infinity` when identical.
 */
export function psnr(a: Uint8Array, b: Uint8Array): number {
  let se = 0;
  let n = 0;
  for (let i = 0; i < a.length; i += 4) {
    for (let k = 0; k < 3; k++) {
      const d = a[i + k] - b[i + k];
      se += d * d;
      n++;
    }
  }
  return se === 0 ? Infinity : 10 * Math.log10((255 * 255) / (se / n));
}

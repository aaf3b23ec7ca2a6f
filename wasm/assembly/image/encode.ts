// Baseline JPEG encoder: JFIF, YCbCr with 4:2:0 chroma subsampling, the
// Annex K quantization tables scaled by quality as the IJG library does, the
// Annex K Huffman tables, a floating-point AAN forward DCT.
import { alloc, ensure, heapTop } from "./heap";
import {
  AAN,
  AC_CHROMA_BITS,
  AC_CHROMA_VALS,
  AC_LUMA_BITS,
  AC_LUMA_VALS,
  CHROMA_Q,
  DC_CHROMA_BITS,
  DC_CHROMA_VALS,
  DC_LUMA_BITS,
  DC_LUMA_VALS,
  LUMA_Q,
  ZIGZAG,
} from "./tables";

// Scratch: Huffman codes (4 tables x 256 x (u16 code, u16 size)), scaled
// quantization tables (2 x 64 u8, natural order), DCT divisors (2 x 64 f32),
// one MCU of samples and one block.
const EHUF: usize = memory.data(4 * 256 * 4, 16);
const QT: usize = memory.data(2 * 64, 16);
const DIV: usize = memory.data(2 * 64 * 4, 16);
const YBUF: usize = memory.data(256 * 4, 16);
const CBBUF: usize = memory.data(64 * 4, 16);
const CRBUF: usize = memory.data(64 * 4, 16);
const BLOCK: usize = memory.data(64 * 4, 16);

let out: usize = 0;
let outLen: usize = 0;
let outCap: usize = 0;
let bitBuf: u32 = 0;
let bitCnt: i32 = 0;
let failed = false;

// @ts-ignore: decorator
@inline function byte(b: u32): void {
  if (outLen >= outCap) {
    const cap = outCap * 2;
    if (!ensure(out + cap)) {
      failed = true;
      outLen = 0;
    } else {
      outCap = cap;
    }
  }
  store<u8>(out + outLen, <u8>b);
  outLen++;
}

function word(w: u32): void {
  byte(w >>> 8);
  byte(w & 0xff);
}

function bits(code: u32, size: i32): void {
  bitBuf = (bitBuf << <u32>size) | (code & ((<u32>1 << <u32>size) - 1));
  bitCnt += size;
  while (bitCnt >= 8) {
    const b = (bitBuf >>> <u32>(bitCnt - 8)) & 0xff;
    byte(b);
    if (b == 0xff) byte(0);
    bitCnt -= 8;
  }
  bitBuf &= (<u32>1 << <u32>bitCnt) - 1;
}

function flushBits(): void {
  if (bitCnt > 0) bits(0x7f, 8 - bitCnt);
  bitBuf = 0;
  bitCnt = 0;
}

/** Derive the code and size of every symbol of a table (Annex C). */
function deriveCodes(table: i32, counts: usize, vals: usize): void {
  const base = EHUF + <usize>(table * 256 * 4);
  memory.fill(base, 0, 256 * 4);
  let code: u32 = 0;
  let k: usize = 0;
  for (let len = 1; len <= 16; len++) {
    const n = <i32>load<u8>(counts + <usize>(len - 1));
    for (let i = 0; i < n; i++) {
      const sym = <usize>load<u8>(vals + k);
      store<u16>(base + sym * 4, <u16>code);
      store<u16>(base + sym * 4 + 2, <u16>len);
      code++;
      k++;
    }
    code <<= 1;
  }
}

// @ts-ignore: decorator
@inline function huff(table: i32, sym: i32): void {
  const p = EHUF + <usize>(table * 256 * 4) + <usize>(sym * 4);
  bits(<u32>load<u16>(p), <i32>load<u16>(p + 2));
}

/** Quantization tables scaled for `quality` (IJG's rule), and the DCT divisors. */
function setQuality(quality: i32): void {
  let q = quality;
  if (q < 1) q = 1;
  if (q > 100) q = 100;
  const scale = q < 50 ? 5000 / q : 200 - q * 2;
  for (let t = 0; t < 2; t++) {
    const src = t == 0 ? LUMA_Q : CHROMA_Q;
    for (let i = 0; i < 64; i++) {
      let v = (<i32>load<u8>(src + <usize>i) * scale + 50) / 100;
      if (v < 1) v = 1;
      if (v > 255) v = 255;
      store<u8>(QT + <usize>(t * 64 + i), <u8>v);
      const row = i >> 3;
      const col = i & 7;
      const d = <f32>v * load<f32>(AAN + <usize>(row * 4)) * load<f32>(AAN + <usize>(col * 4)) *
        8.0;
      store<f32>(DIV + <usize>((t * 64 + i) * 4), 1.0 / d);
    }
  }
}

/** Floating-point AAN forward DCT of BLOCK, in place (rows, then columns). */
function fdct(): void {
  for (let pass = 0; pass < 2; pass++) {
    const step: usize = pass == 0 ? 4 : 32; // element stride within a line
    const next: usize = pass == 0 ? 32 : 4; // stride between lines
    for (let line = 0; line < 8; line++) {
      const p = BLOCK + <usize>line * next;
      const d0 = load<f32>(p);
      const d1 = load<f32>(p + step);
      const d2 = load<f32>(p + step * 2);
      const d3 = load<f32>(p + step * 3);
      const d4 = load<f32>(p + step * 4);
      const d5 = load<f32>(p + step * 5);
      const d6 = load<f32>(p + step * 6);
      const d7 = load<f32>(p + step * 7);
      const tmp0 = d0 + d7;
      const tmp7 = d0 - d7;
      const tmp1 = d1 + d6;
      const tmp6 = d1 - d6;
      const tmp2 = d2 + d5;
      const tmp5 = d2 - d5;
      const tmp3 = d3 + d4;
      const tmp4 = d3 - d4;
      // Even part.
      const tmp10 = tmp0 + tmp3;
      const tmp13 = tmp0 - tmp3;
      const tmp11 = tmp1 + tmp2;
      const tmp12 = tmp1 - tmp2;
      store<f32>(p, tmp10 + tmp11);
      store<f32>(p + step * 4, tmp10 - tmp11);
      const z1 = (tmp12 + tmp13) * 0.707106781;
      store<f32>(p + step * 2, tmp13 + z1);
      store<f32>(p + step * 6, tmp13 - z1);
      // Odd part.
      const t10 = tmp4 + tmp5;
      const t11 = tmp5 + tmp6;
      const t12 = tmp6 + tmp7;
      const z5 = (t10 - t12) * 0.382683433;
      const z2 = t10 * 0.5411961 + z5;
      const z4 = t12 * 1.306562965 + z5;
      const z3 = t11 * 0.707106781;
      const z11 = tmp7 + z3;
      const z13 = tmp7 - z3;
      store<f32>(p + step * 5, z13 + z2);
      store<f32>(p + step * 3, z13 - z2);
      store<f32>(p + step, z11 + z4);
      store<f32>(p + step * 7, z11 - z4);
    }
  }
}

/** DCT, quantize and Huffman-code BLOCK; returns the new DC predictor. */
function codeBlock(table: i32, lastDc: i32): i32 {
  fdct();
  const div = DIV + <usize>(table * 64 * 4);
  const dcTable = table * 2;
  const acTable = table * 2 + 1;
  // DC.
  const dc = <i32>nearest<f32>(load<f32>(BLOCK) * load<f32>(div));
  let diff = dc - lastDc;
  let mag = diff < 0 ? -diff : diff;
  let nb = 0;
  while (mag != 0) {
    nb++;
    mag >>= 1;
  }
  huff(dcTable, nb);
  if (nb > 0) bits(<u32>(diff < 0 ? diff - 1 : diff), nb);
  // AC, in zigzag order.
  let run = 0;
  for (let k = 1; k < 64; k++) {
    const n = <usize>load<u8>(ZIGZAG + <usize>k);
    let v = <i32>nearest<f32>(load<f32>(BLOCK + n * 4) * load<f32>(div + n * 4));
    if (v == 0) {
      run++;
      continue;
    }
    if (v > 1023) v = 1023;
    if (v < -1023) v = -1023;
    while (run > 15) {
      huff(acTable, 0xf0);
      run -= 16;
    }
    let m = v < 0 ? -v : v;
    let size = 0;
    while (m != 0) {
      size++;
      m >>= 1;
    }
    huff(acTable, (run << 4) | size);
    bits(<u32>(v < 0 ? v - 1 : v), size);
    run = 0;
  }
  if (run > 0) huff(acTable, 0);
  return dc;
}

function marker(m: u32): void {
  byte(0xff);
  byte(m);
}

function headers(width: i32, height: i32): void {
  marker(0xd8); // SOI
  marker(0xe0); // APP0 JFIF 1.01, no density, no thumbnail
  word(16);
  byte(0x4a);
  byte(0x46);
  byte(0x49);
  byte(0x46);
  byte(0);
  byte(1);
  byte(1);
  byte(0);
  word(1);
  word(1);
  byte(0);
  byte(0);
  for (let t = 0; t < 2; t++) { // DQT
    marker(0xdb);
    word(67);
    byte(t);
    for (let k = 0; k < 64; k++) {
      byte(<u32>load<u8>(QT + <usize>(t * 64) + <usize>load<u8>(ZIGZAG + <usize>k)));
    }
  }
  marker(0xc0); // SOF0: 8 bits, 3 components, Y 2x2, Cb 1x1, Cr 1x1
  word(17);
  byte(8);
  word(<u32>height);
  word(<u32>width);
  byte(3);
  byte(1);
  byte(0x22);
  byte(0);
  byte(2);
  byte(0x11);
  byte(1);
  byte(3);
  byte(0x11);
  byte(1);
  dht(0x00, DC_LUMA_BITS, DC_LUMA_VALS);
  dht(0x10, AC_LUMA_BITS, AC_LUMA_VALS);
  dht(0x01, DC_CHROMA_BITS, DC_CHROMA_VALS);
  dht(0x11, AC_CHROMA_BITS, AC_CHROMA_VALS);
  marker(0xda); // SOS
  word(12);
  byte(3);
  byte(1);
  byte(0x00);
  byte(2);
  byte(0x11);
  byte(3);
  byte(0x11);
  byte(0);
  byte(63);
  byte(0);
}

function dht(classId: u32, counts: usize, vals: usize): void {
  let n = 0;
  for (let i = 0; i < 16; i++) n += <i32>load<u8>(counts + <usize>i);
  marker(0xc4);
  word(<u32>(19 + n));
  byte(classId);
  for (let i = 0; i < 16; i++) byte(<u32>load<u8>(counts + <usize>i));
  for (let i = 0; i < n; i++) byte(<u32>load<u8>(vals + <usize>i));
}

/**
 * Encode `width * height` RGBA pixels at `rgba`. The output starts at
 * `encodedPtr()`; returns its length, or a negative code.
 */
export function encodeRgba(rgba: usize, width: i32, height: i32, quality: i32): i32 {
  if (width < 1 || height < 1 || width > 65535 || height > 65535) return -3;
  deriveCodes(0, DC_LUMA_BITS, DC_LUMA_VALS);
  deriveCodes(1, AC_LUMA_BITS, AC_LUMA_VALS);
  deriveCodes(2, DC_CHROMA_BITS, DC_CHROMA_VALS);
  deriveCodes(3, AC_CHROMA_BITS, AC_CHROMA_VALS);
  setQuality(quality);
  out = heapTop();
  outCap = 65536;
  outLen = 0;
  failed = false;
  bitBuf = 0;
  bitCnt = 0;
  if (!ensure(out + outCap)) return -6;
  headers(width, height);
  let dcY = 0;
  let dcCb = 0;
  let dcCr = 0;
  const stride = <usize>width * 4;
  for (let my = 0; my < height; my += 16) {
    for (let mx = 0; mx < width; mx += 16) {
      // Samples of the MCU (edges repeated), chroma averaged over 2x2.
      memory.fill(CBBUF, 0, 64 * 4);
      memory.fill(CRBUF, 0, 64 * 4);
      for (let y = 0; y < 16; y++) {
        let sy = my + y;
        if (sy >= height) sy = height - 1;
        const row = rgba + <usize>sy * stride;
        for (let x = 0; x < 16; x++) {
          let sx = mx + x;
          if (sx >= width) sx = width - 1;
          const px = row + <usize>sx * 4;
          const r = <f32>load<u8>(px);
          const g = <f32>load<u8>(px + 1);
          const b = <f32>load<u8>(px + 2);
          store<f32>(YBUF + <usize>((y * 16 + x) * 4), 0.299 * r + 0.587 * g + 0.114 * b - 128.0);
          const c = CBBUF + <usize>(((y >> 1) * 8 + (x >> 1)) * 4);
          store<f32>(c, load<f32>(c) + (-0.168736 * r - 0.331264 * g + 0.5 * b) * 0.25);
          const d = CRBUF + <usize>(((y >> 1) * 8 + (x >> 1)) * 4);
          store<f32>(d, load<f32>(d) + (0.5 * r - 0.418688 * g - 0.081312 * b) * 0.25);
        }
      }
      for (let by = 0; by < 2; by++) {
        for (let bx = 0; bx < 2; bx++) {
          for (let y = 0; y < 8; y++) {
            memory.copy(
              BLOCK + <usize>(y * 32),
              YBUF + <usize>(((by * 8 + y) * 16 + bx * 8) * 4),
              32,
            );
          }
          dcY = codeBlock(0, dcY);
        }
      }
      memory.copy(BLOCK, CBBUF, 256);
      dcCb = codeBlock(1, dcCb);
      memory.copy(BLOCK, CRBUF, 256);
      dcCr = codeBlock(1, dcCr);
      if (failed) return -6;
    }
  }
  flushBits();
  marker(0xd9); // EOI
  if (failed) return -6;
  // The output region is the heap's last allocation.
  alloc(outLen);
  return <i32>outLen;
}

/** Where the last encoded image starts. */
export function encodedPtr(): usize {
  return out;
}

// Baseline JPEG decoder: SOF0/SOF1 frames of 8-bit samples, one or three
// components (YCbCr) with sampling factors 1..2, one interleaved Huffman
// scan, restart intervals, floating-point AAN inverse DCT, chroma upsampled
// by replication. Every read is bounds-checked against the input: a corrupt
// or hostile file ends in an error code, never a read outside the input.
import { alloc } from "./heap";
import { AAN, ZIGZAG } from "./tables";

/** Error codes (negative returns). */
const E_NOT_JPEG: i32 = -1;
const E_TRUNCATED: i32 = -2;
const E_UNSUPPORTED: i32 = -3;
const E_TOO_LARGE: i32 = -4;
const E_CORRUPT: i32 = -5;
const E_MEMORY: i32 = -6;

// Quantization tables: 4 x 64 f32 IDCT multipliers (natural order).
const QMUL: usize = memory.data(4 * 64 * 4, 16);
const QDEF: usize = memory.data(4);
// Huffman tables: 8 (4 DC, 4 AC). Per table: fast lookup 512 x u16
// (symbol << 8 | length, 0 when longer than 9 bits), maxcode 18 x i32,
// valptr 17 x i32, mincode 17 x i32, values 256 x u8.
const HT_FAST: usize = 0;
const HT_MAX: usize = 1024;
const HT_VALPTR: usize = HT_MAX + 18 * 4;
const HT_MIN: usize = HT_VALPTR + 17 * 4;
const HT_VALS: usize = HT_MIN + 17 * 4;
const HT_SIZE: usize = HT_VALS + 256;
const HUFF: usize = memory.data(8 * <i32>HT_SIZE, 16);
const HDEF: usize = memory.data(8);
// Components: up to 3, 16 i32 fields each.
const C_ID = 0;
const C_H = 1;
const C_V = 2;
const C_TQ = 3;
const C_TD = 4;
const C_TA = 5;
const C_PLANE = 6;
const C_BW = 7; // plane width in pixels
const C_BH = 8; // plane height in pixels
const C_PRED = 9;
const COMP: usize = memory.data(3 * 16 * 4, 16);
const COEF: usize = memory.data(64 * 4, 16);
const WS: usize = memory.data(64 * 4, 16);

let src: usize = 0;
let end: usize = 0;
let pos: usize = 0;
let width: i32 = 0;
let height: i32 = 0;
let ncomp: i32 = 0;
let hmax: i32 = 1;
let vmax: i32 = 1;
let restart: i32 = 0;
let scanOrder: u32 = 0; // component indexes of the scan, 2 bits each
let bitBuf: u32 = 0;
let bitCnt: i32 = 0;
let hitMarker = false;
let rgbaOut: usize = 0;

// @ts-ignore: decorator
@inline function cget(c: i32, f: i32): i32 {
  return load<i32>(COMP + <usize>((c * 16 + f) * 4));
}
// @ts-ignore: decorator
@inline function cset(c: i32, f: i32, v: i32): void {
  store<i32>(COMP + <usize>((c * 16 + f) * 4), v);
}

function u16at(p: usize): i32 {
  return (<i32>load<u8>(p) << 8) | <i32>load<u8>(p + 1);
}

/** Parse DQT at `p` (length excluded) of `len` bytes. */
function dqt(p: usize, len: i32): i32 {
  let q = p;
  const stop = p + <usize>len;
  while (q < stop) {
    const pq = <i32>load<u8>(q) >> 4;
    const tq = <i32>load<u8>(q) & 15;
    q++;
    if (tq > 3 || pq > 1) return E_CORRUPT;
    const n: usize = pq == 0 ? 64 : 128;
    if (q + n > stop) return E_TRUNCATED;
    for (let k = 0; k < 64; k++) {
      const v = pq == 0 ? <i32>load<u8>(q + <usize>k) : u16at(q + <usize>(k * 2));
      const nat = <i32>load<u8>(ZIGZAG + <usize>k);
      const m = <f32>v * load<f32>(AAN + <usize>((nat >> 3) * 4)) *
        load<f32>(AAN + <usize>((nat & 7) * 4));
      store<f32>(QMUL + <usize>((tq * 64 + nat) * 4), m);
    }
    store<u8>(QDEF + <usize>tq, 1);
    q += n;
  }
  return 0;
}

/** Parse DHT at `p` of `len` bytes. */
function dht(p: usize, len: i32): i32 {
  let q = p;
  const stop = p + <usize>len;
  while (q < stop) {
    if (q + 17 > stop) return E_TRUNCATED;
    const tc = <i32>load<u8>(q) >> 4;
    const th = <i32>load<u8>(q) & 15;
    if (tc > 1 || th > 3) return E_CORRUPT;
    const t = HUFF + <usize>((tc * 4 + th) * <i32>HT_SIZE);
    let total = 0;
    for (let i = 1; i <= 16; i++) total += <i32>load<u8>(q + <usize>i);
    if (total > 256 || q + 17 + <usize>total > stop) return E_CORRUPT;
    memory.copy(t + HT_VALS, q + 17, <usize>total);
    memory.fill(t + HT_FAST, 0, 1024);
    // Canonical codes (Annex C), decoding tables (Annex F.2.2.3), fast lookup.
    let code = 0;
    let k = 0;
    for (let l = 1; l <= 16; l++) {
      const n = <i32>load<u8>(q + <usize>l);
      store<i32>(t + HT_VALPTR + <usize>(l * 4), k);
      store<i32>(t + HT_MIN + <usize>(l * 4), code);
      for (let i = 0; i < n; i++) {
        if (l <= 9) {
          const shift = 9 - l;
          const first = code << shift;
          const sym = <i32>load<u8>(t + HT_VALS + <usize>k);
          for (let j = 0; j < (1 << shift); j++) {
            store<u16>(t + HT_FAST + <usize>((first + j) * 2), <u16>((sym << 8) | l));
          }
        }
        code++;
        k++;
      }
      if (code > (1 << l)) return E_CORRUPT;
      store<i32>(t + HT_MAX + <usize>(l * 4), n == 0 ? -1 : code - 1);
      code <<= 1;
    }
    store<i32>(t + HT_MAX + 17 * 4, 0x7fffffff);
    store<u8>(HDEF + <usize>(tc * 4 + th), 1);
    q += 17 + <usize>total;
  }
  return 0;
}

function sof(p: usize, len: i32, maxPixels: i32): i32 {
  if (len < 6) return E_TRUNCATED;
  if (<i32>load<u8>(p) != 8) return E_UNSUPPORTED;
  height = u16at(p + 1);
  width = u16at(p + 3);
  ncomp = <i32>load<u8>(p + 5);
  if (width == 0 || height == 0) return E_UNSUPPORTED; // DNL is not supported
  if (<i64>width * <i64>height > <i64>maxPixels) return E_TOO_LARGE;
  if (ncomp != 1 && ncomp != 3) return E_UNSUPPORTED;
  if (len < 6 + ncomp * 3) return E_TRUNCATED;
  hmax = 1;
  vmax = 1;
  for (let c = 0; c < ncomp; c++) {
    const q = p + 6 + <usize>(c * 3);
    const hv = <i32>load<u8>(q + 1);
    let h = hv >> 4;
    let v = hv & 15;
    if (ncomp == 1) {
      h = 1;
      v = 1;
    }
    if (h < 1 || h > 2 || v < 1 || v > 2) return E_UNSUPPORTED;
    const tq = <i32>load<u8>(q + 2);
    if (tq > 3) return E_CORRUPT;
    cset(c, C_ID, <i32>load<u8>(q));
    cset(c, C_H, h);
    cset(c, C_V, v);
    cset(c, C_TQ, tq);
    if (h > hmax) hmax = h;
    if (v > vmax) vmax = v;
  }
  return 0;
}

function sos(p: usize, len: i32): i32 {
  if (len < 1) return E_TRUNCATED;
  const ns = <i32>load<u8>(p);
  if (ns != ncomp) return E_UNSUPPORTED; // one scan with every component
  if (len < 1 + ns * 2 + 3) return E_TRUNCATED;
  scanOrder = 0;
  for (let i = 0; i < ns; i++) {
    const id = <i32>load<u8>(p + 1 + <usize>(i * 2));
    const t = <i32>load<u8>(p + 2 + <usize>(i * 2));
    let c = -1;
    for (let j = 0; j < ncomp; j++) if (cget(j, C_ID) == id) c = j;
    if (c < 0) return E_CORRUPT;
    const td = t >> 4;
    const ta = t & 15;
    if (td > 3 || ta > 3) return E_CORRUPT;
    if (load<u8>(HDEF + <usize>td) == 0 || load<u8>(HDEF + <usize>(4 + ta)) == 0) {
      return E_CORRUPT;
    }
    if (load<u8>(QDEF + <usize>cget(c, C_TQ)) == 0) return E_CORRUPT;
    cset(c, C_TD, td);
    cset(c, C_TA, ta);
    scanOrder |= <u32>c << <u32>(i * 2);
  }
  const q = p + 1 + <usize>(ns * 2);
  // Baseline: spectral selection 0..63, no successive approximation.
  if (load<u8>(q) != 0 || load<u8>(q + 1) != 63 || load<u8>(q + 2) != 0) return E_UNSUPPORTED;
  return 0;
}

/**
 * Parse the markers of the JPEG at `ptr` (`len` bytes) up to the scan.
 * Returns 0, or a negative error code. `decodedWidth()` and
 * `decodedHeight()` tell the size.
 */
export function decodeHeader(ptr: usize, len: i32, maxPixels: i32): i32 {
  src = ptr;
  end = ptr + <usize>len;
  width = 0;
  height = 0;
  ncomp = 0;
  restart = 0;
  memory.fill(QDEF, 0, 4);
  memory.fill(HDEF, 0, 8);
  if (len < 4 || load<u8>(src) != 0xff || load<u8>(src + 1) != 0xd8) return E_NOT_JPEG;
  pos = src + 2;
  let frame = false;
  while (true) {
    // Skip fill bytes to the next marker.
    while (pos < end && load<u8>(pos) != 0xff) pos++;
    while (pos < end && load<u8>(pos) == 0xff) pos++;
    if (pos >= end) return E_TRUNCATED;
    const m = <i32>load<u8>(pos);
    pos++;
    if (m == 0xd8 || (m >= 0xd0 && m <= 0xd7) || m == 0x01) continue;
    if (m == 0xd9) return E_TRUNCATED; // EOI before any scan
    if (pos + 2 > end) return E_TRUNCATED;
    const seg = u16at(pos);
    if (seg < 2 || pos + <usize>seg > end) return E_TRUNCATED;
    const body = pos + 2;
    const blen = seg - 2;
    pos += <usize>seg;
    let r = 0;
    if (m == 0xdb) r = dqt(body, blen);
    else if (m == 0xc4) r = dht(body, blen);
    else if (m == 0xdd) {
      if (blen < 2) return E_TRUNCATED;
      restart = u16at(body);
    } else if (m == 0xc0 || m == 0xc1) {
      if (frame) return E_CORRUPT;
      frame = true;
      r = sof(body, blen, maxPixels);
    } else if ((m >= 0xc2 && m <= 0xcf) && m != 0xc4 && m != 0xc8 && m != 0xcc) {
      return E_UNSUPPORTED; // progressive, lossless, arithmetic coding
    } else if (m == 0xda) {
      if (!frame) return E_CORRUPT;
      r = sos(body, blen);
      if (r == 0) return 0;
    }
    if (r != 0) return r;
  }
}

export function decodedWidth(): i32 {
  return width;
}

export function decodedHeight(): i32 {
  return height;
}

// ------------------------------------------------------------ entropy decoding

function fill(): void {
  while (bitCnt <= 24) {
    let b: u32 = 0;
    if (!hitMarker) {
      if (pos >= end) {
        hitMarker = true;
      } else {
        b = <u32>load<u8>(pos);
        if (b == 0xff) {
          const nb = pos + 1 < end ? <u32>load<u8>(pos + 1) : 0xd9;
          if (nb == 0) {
            pos += 2;
          } else {
            hitMarker = true;
            b = 0;
          }
        } else {
          pos++;
        }
      }
    }
    bitBuf |= b << <u32>(24 - bitCnt);
    bitCnt += 8;
  }
}

// @ts-ignore: decorator
@inline function getBits(n: i32): i32 {
  if (bitCnt < n) fill();
  const v = <i32>(bitBuf >>> <u32>(32 - n));
  bitBuf <<= <u32>n;
  bitCnt -= n;
  return v;
}

/** Decode one Huffman symbol of table `t`, or -1 when no code matches. */
function symbol(t: usize): i32 {
  if (bitCnt < 16) fill();
  const look = <i32>(bitBuf >>> 23);
  const e = <i32>load<u16>(t + HT_FAST + <usize>(look * 2));
  if (e != 0) {
    const l = e & 0xff;
    bitBuf <<= <u32>l;
    bitCnt -= l;
    return e >> 8;
  }
  let code = 0;
  for (let l = 1; l <= 16; l++) {
    code = (code << 1) | <i32>(bitBuf >>> 31);
    bitBuf <<= 1;
    bitCnt--;
    if (code <= load<i32>(t + HT_MAX + <usize>(l * 4))) {
      const k = load<i32>(t + HT_VALPTR + <usize>(l * 4)) + code -
        load<i32>(t + HT_MIN + <usize>(l * 4));
      if (k < 0 || k > 255) return -1;
      return <i32>load<u8>(t + HT_VALS + <usize>k);
    }
  }
  return -1;
}

// @ts-ignore: decorator
@inline function extend(v: i32, s: i32): i32 {
  return v < (1 << (s - 1)) ? v - (1 << s) + 1 : v;
}

/** Decode one block of component `c` into COEF (natural order). */
function block(c: i32): i32 {
  memory.fill(COEF, 0, 256);
  const dcT = HUFF + <usize>(cget(c, C_TD) * <i32>HT_SIZE);
  const acT = HUFF + <usize>((4 + cget(c, C_TA)) * <i32>HT_SIZE);
  const s = symbol(dcT);
  if (s < 0 || s > 11) return E_CORRUPT;
  let diff = 0;
  if (s > 0) diff = extend(getBits(s), s);
  const dc = cget(c, C_PRED) + diff;
  cset(c, C_PRED, dc);
  store<i32>(COEF, dc);
  let k = 1;
  while (k < 64) {
    const rs = symbol(acT);
    if (rs < 0) return E_CORRUPT;
    const r = rs >> 4;
    const sz = rs & 15;
    if (sz == 0) {
      if (r != 15) break; // end of block
      k += 16;
      continue;
    }
    k += r;
    if (k > 63) return E_CORRUPT;
    const v = extend(getBits(sz), sz);
    store<i32>(COEF + <usize>(<i32>load<u8>(ZIGZAG + <usize>k) * 4), v);
    k++;
  }
  return 0;
}

/** Floating-point AAN inverse DCT of COEF with table `tq`, into 8x8 bytes at `out`. */
function idct(tq: i32, out: usize, stride: usize): void {
  const q = QMUL + <usize>(tq * 256);
  // Columns into WS.
  for (let col = 0; col < 8; col++) {
    const ci = COEF + <usize>(col * 4);
    const qi = q + <usize>(col * 4);
    const wi = WS + <usize>(col * 4);
    if (
      load<i32>(ci + 32) == 0 && load<i32>(ci + 64) == 0 && load<i32>(ci + 96) == 0 &&
      load<i32>(ci + 128) == 0 && load<i32>(ci + 160) == 0 && load<i32>(ci + 192) == 0 &&
      load<i32>(ci + 224) == 0
    ) {
      const dc = <f32>load<i32>(ci) * load<f32>(qi);
      for (let r = 0; r < 8; r++) store<f32>(wi + <usize>(r * 32), dc);
      continue;
    }
    let tmp0 = <f32>load<i32>(ci) * load<f32>(qi);
    let tmp1 = <f32>load<i32>(ci + 64) * load<f32>(qi + 64);
    let tmp2 = <f32>load<i32>(ci + 128) * load<f32>(qi + 128);
    let tmp3 = <f32>load<i32>(ci + 192) * load<f32>(qi + 192);
    let tmp10 = tmp0 + tmp2;
    let tmp11 = tmp0 - tmp2;
    let tmp13 = tmp1 + tmp3;
    let tmp12 = (tmp1 - tmp3) * 1.414213562 - tmp13;
    tmp0 = tmp10 + tmp13;
    tmp3 = tmp10 - tmp13;
    tmp1 = tmp11 + tmp12;
    tmp2 = tmp11 - tmp12;
    let tmp4 = <f32>load<i32>(ci + 32) * load<f32>(qi + 32);
    let tmp5 = <f32>load<i32>(ci + 96) * load<f32>(qi + 96);
    let tmp6 = <f32>load<i32>(ci + 160) * load<f32>(qi + 160);
    let tmp7 = <f32>load<i32>(ci + 224) * load<f32>(qi + 224);
    const z13 = tmp6 + tmp5;
    const z10 = tmp6 - tmp5;
    const z11 = tmp4 + tmp7;
    const z12 = tmp4 - tmp7;
    tmp7 = z11 + z13;
    tmp11 = (z11 - z13) * 1.414213562;
    const z5 = (z10 + z12) * 1.847759065;
    tmp10 = z12 * 1.0823922 - z5;
    tmp12 = z10 * -2.61312593 + z5;
    tmp6 = tmp12 - tmp7;
    tmp5 = tmp11 - tmp6;
    tmp4 = tmp10 + tmp5;
    store<f32>(wi, tmp0 + tmp7);
    store<f32>(wi + 224, tmp0 - tmp7);
    store<f32>(wi + 32, tmp1 + tmp6);
    store<f32>(wi + 192, tmp1 - tmp6);
    store<f32>(wi + 64, tmp2 + tmp5);
    store<f32>(wi + 160, tmp2 - tmp5);
    store<f32>(wi + 128, tmp3 + tmp4);
    store<f32>(wi + 96, tmp3 - tmp4);
  }
  // Rows out.
  for (let row = 0; row < 8; row++) {
    const w = WS + <usize>(row * 32);
    let tmp10 = load<f32>(w) + load<f32>(w + 16);
    let tmp11 = load<f32>(w) - load<f32>(w + 16);
    let tmp13 = load<f32>(w + 8) + load<f32>(w + 24);
    let tmp12 = (load<f32>(w + 8) - load<f32>(w + 24)) * 1.414213562 - tmp13;
    const tmp0 = tmp10 + tmp13;
    const tmp3 = tmp10 - tmp13;
    const tmp1 = tmp11 + tmp12;
    const tmp2 = tmp11 - tmp12;
    const z13 = load<f32>(w + 20) + load<f32>(w + 12);
    const z10 = load<f32>(w + 20) - load<f32>(w + 12);
    const z11 = load<f32>(w + 4) + load<f32>(w + 28);
    const z12 = load<f32>(w + 4) - load<f32>(w + 28);
    const tmp7 = z11 + z13;
    tmp11 = (z11 - z13) * 1.414213562;
    const z5 = (z10 + z12) * 1.847759065;
    tmp10 = z12 * 1.0823922 - z5;
    tmp12 = z10 * -2.61312593 + z5;
    const tmp6 = tmp12 - tmp7;
    const tmp5 = tmp11 - tmp6;
    const tmp4 = tmp10 + tmp5;
    const o = out + <usize>row * stride;
    put(o, tmp0 + tmp7);
    put(o + 7, tmp0 - tmp7);
    put(o + 1, tmp1 + tmp6);
    put(o + 6, tmp1 - tmp6);
    put(o + 2, tmp2 + tmp5);
    put(o + 5, tmp2 - tmp5);
    put(o + 4, tmp3 + tmp4);
    put(o + 3, tmp3 - tmp4);
  }
}

// @ts-ignore: decorator
@inline function put(p: usize, v: f32): void {
  let x = <i32>nearest<f32>(v * 0.125) + 128;
  if (x < 0) x = 0;
  if (x > 255) x = 255;
  store<u8>(p, <u8>x);
}

/** After a restart interval: find the RSTn marker, reset the predictors and the bit reader. */
function restartMarker(): i32 {
  bitBuf = 0;
  bitCnt = 0;
  hitMarker = false;
  while (pos + 1 < end) {
    if (load<u8>(pos) == 0xff) {
      const m = <i32>load<u8>(pos + 1);
      if (m >= 0xd0 && m <= 0xd7) {
        pos += 2;
        for (let c = 0; c < ncomp; c++) cset(c, C_PRED, 0);
        return 0;
      }
      if (m != 0 && m != 0xff) return E_CORRUPT;
    }
    pos++;
  }
  return E_TRUNCATED;
}

/**
 * Decode the scan found by `decodeHeader` into RGBA (alpha 255). Returns 0,
 * or a negative error code; the pixels are at `decodedPtr()`.
 */
export function decodeScan(): i32 {
  const mcux = (width + 8 * hmax - 1) / (8 * hmax);
  const mcuy = (height + 8 * vmax - 1) / (8 * vmax);
  for (let c = 0; c < ncomp; c++) {
    const bw = mcux * cget(c, C_H) * 8;
    const bh = mcuy * cget(c, C_V) * 8;
    const plane = alloc(<usize>bw * <usize>bh);
    if (plane == 0) return E_MEMORY;
    cset(c, C_PLANE, <i32>plane);
    cset(c, C_BW, bw);
    cset(c, C_BH, bh);
    cset(c, C_PRED, 0);
  }
  rgbaOut = alloc(<usize>width * <usize>height * 4);
  if (rgbaOut == 0) return E_MEMORY;
  bitBuf = 0;
  bitCnt = 0;
  hitMarker = false;
  let left = restart;
  const total = mcux * mcuy;
  for (let m = 0; m < total; m++) {
    if (restart > 0) {
      if (left == 0) {
        const r = restartMarker();
        if (r != 0) return r;
        left = restart;
      }
      left--;
    }
    const mx = m % mcux;
    const my = m / mcux;
    for (let i = 0; i < ncomp; i++) {
      const c = <i32>((scanOrder >>> <u32>(i * 2)) & 3);
      const h = cget(c, C_H);
      const v = cget(c, C_V);
      const bw = <usize>cget(c, C_BW);
      const plane = <usize>cget(c, C_PLANE);
      for (let by = 0; by < v; by++) {
        for (let bx = 0; bx < h; bx++) {
          const r = block(c);
          if (r != 0) return r;
          const x = <usize>((mx * h + bx) * 8);
          const y = <usize>((my * v + by) * 8);
          idct(cget(c, C_TQ), plane + y * bw + x, bw);
        }
      }
    }
  }
  // Every component at full resolution, then color conversion.
  let p1: usize = 0;
  let p2: usize = 0;
  let s1: usize = 0;
  let s2: usize = 0;
  const p0 = fullPlane(0);
  if (p0 == 0) return E_MEMORY;
  const s0 = planeStride;
  if (ncomp == 3) {
    p1 = fullPlane(1);
    s1 = planeStride;
    p2 = fullPlane(2);
    s2 = planeStride;
    if (p1 == 0 || p2 == 0) return E_MEMORY;
  }
  for (let y = 0; y < height; y++) {
    const o = rgbaOut + <usize>y * <usize>width * 4;
    const r0 = p0 + <usize>y * s0;
    const r1 = p1 + <usize>y * s1;
    const r2 = p2 + <usize>y * s2;
    for (let x = 0; x < width; x++) {
      const d = o + <usize>x * 4;
      const yy = <f32>load<u8>(r0 + <usize>x);
      if (ncomp == 1) {
        const g = <u8>yy;
        store<u8>(d, g);
        store<u8>(d + 1, g);
        store<u8>(d + 2, g);
      } else {
        const cb = <f32>load<u8>(r1 + <usize>x) - 128.0;
        const cr = <f32>load<u8>(r2 + <usize>x) - 128.0;
        store<u8>(d, clamp(yy + 1.402 * cr));
        store<u8>(d + 1, clamp(yy - 0.344136 * cb - 0.714136 * cr));
        store<u8>(d + 2, clamp(yy + 1.772 * cb));
      }
      store<u8>(d + 3, 255);
    }
  }
  return 0;
}

// @ts-ignore: decorator
@inline function colSum(row: usize, other: usize, k: i32): i32 {
  return 3 * <i32>load<u8>(row + <usize>k) + <i32>load<u8>(other + <usize>k);
}

/** The stride of the plane `fullPlane` returned last. */
let planeStride: usize = 0;

/**
 * Component `c` at full resolution: its own plane when it is not
 * subsampled; otherwise upsampled with libjpeg's "fancy" triangle filters
 * for 2x2 and 2x1 subsampling (the edges as libjpeg does them), and by
 * replication for any other factor. Returns 0 when memory runs out.
 */
function fullPlane(c: i32): usize {
  const h = cget(c, C_H);
  const v = cget(c, C_V);
  const src = <usize>cget(c, C_PLANE);
  const bw = <usize>cget(c, C_BW);
  if (h == hmax && v == vmax) {
    planeStride = bw;
    return src;
  }
  const out = alloc(<usize>width * <usize>height);
  if (out == 0) return 0;
  planeStride = <usize>width;
  // The component's own size (libjpeg's downsampled_width and height).
  const cw = (width * h + hmax - 1) / hmax;
  const ch = (height * v + vmax - 1) / vmax;
  if (h * 2 == hmax && (v * 2 == vmax || v == vmax)) {
    const twoRows = v * 2 == vmax;
    for (let y = 0; y < height; y++) {
      const o = out + <usize>y * <usize>width;
      const sy = twoRows ? y >> 1 : y;
      const row = src + <usize>sy * bw;
      let other = row;
      if (twoRows) {
        // The nearer neighbouring row: above for even output rows, below for odd.
        let ny = (y & 1) == 0 ? sy - 1 : sy + 1;
        if (ny < 0) ny = 0;
        if (ny >= ch) ny = ch - 1;
        other = src + <usize>ny * bw;
      }
      for (let x = 0; x < width; x++) {
        const sx = x >> 1;
        let v0: i32;
        if (twoRows) {
          const here = colSum(row, other, sx);
          if (cw == 1) v0 = (here * 4 + 8) >> 4;
          else if ((x & 1) == 0) {
            v0 = sx == 0 ? (here * 4 + 8) >> 4 : (here * 3 + colSum(row, other, sx - 1) + 8) >> 4;
          } else {
            v0 = sx == cw - 1
              ? (here * 4 + 7) >> 4
              : (here * 3 + colSum(row, other, sx + 1) + 7) >> 4;
          }
        } else {
          const here = <i32>load<u8>(row + <usize>sx);
          if (cw == 1) v0 = here;
          else if ((x & 1) == 0) {
            v0 = sx == 0 ? here : (here * 3 + <i32>load<u8>(row + <usize>(sx - 1)) + 1) >> 2;
          } else {
            v0 = sx == cw - 1 ? here : (here * 3 + <i32>load<u8>(row + <usize>(sx + 1)) + 2) >> 2;
          }
        }
        store<u8>(o + <usize>x, <u8>v0);
      }
    }
    return out;
  }
  for (let y = 0; y < height; y++) {
    const row = src + <usize>(y * v / vmax) * bw;
    const o = out + <usize>y * <usize>width;
    for (let x = 0; x < width; x++) store<u8>(o + <usize>x, load<u8>(row + <usize>(x * h / hmax)));
  }
  return out;
}

// @ts-ignore: decorator
@inline function clamp(v: f32): u8 {
  const x = <i32>nearest<f32>(v);
  return <u8>(x < 0 ? 0 : x > 255 ? 255 : x);
}

/** Where the last decoded image's RGBA pixels are. */
export function decodedPtr(): usize {
  return rgbaOut;
}

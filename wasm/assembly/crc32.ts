// CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320, as zlib).
//
// Two kernels, both working on the raw CRC register (the value before the
// final inversion):
//
// - Runs of 1 KiB and more: a 16-lane SIMD kernel. A run of 16 * blk bytes is
//   cut into 16 blocks of blk bytes, one per byte lane, and each lane computes
//   the CRC register of its own block. The 16 registers are kept as 4 byte
//   planes (P0 holds byte 0 of every lane's register, ...). Absorbing one byte
//   d per lane is  reg' = (reg >>> 8) ^ T[(reg ^ d) & 0xff]  where T is the
//   byte table; `>>> 8` is a renaming of the planes, and since T is linear,
//   T[i] = T[i & 0x0f] ^ T[i & 0xf0], so each byte of T[i] is two
//   i8x16.swizzle lookups in 16-entry tables. One step (16 bytes, one per
//   lane) is 8 swizzles and a dozen xors/ands. The blocks are read 16 bytes
//   at a time and transposed so that vector t holds byte t of every block.
//   The lane registers are then joined: reg(A || B) = shift(reg(A), |B|) ^
//   reg0(B), where shift by blk bytes is a linear map on 32 bits, tabulated as
//   4 byte tables (like one slicing step).
// - The rest (runs under 1 KiB, and the tail of longer ones): slicing-by-16,
//   with the lookups that depend on the running register XORed last, so the
//   12 lookups of the other bytes overlap the previous step.
//
// WebAssembly has no carry-less multiply, so this stays table-driven.
import { CRC_COLUMNS, CRC_NIBBLES, CRC_SHIFT, CRC_TABLE } from "./layout";

/** Block length of the large SIMD run (16 KiB per run). */
const BLK_LARGE: usize = 1024;
/** Block length of the small SIMD run (1 KiB per run). */
const BLK_SMALL: usize = 64;

// @ts-ignore: decorator
@inline function b0(v: u32): usize {
  return <usize>((v << 2) & 0x3fc);
}
// @ts-ignore: decorator
@inline function b1(v: u32): usize {
  return <usize>((v >>> 6) & 0x3fc);
}
// @ts-ignore: decorator
@inline function b2(v: u32): usize {
  return <usize>((v >>> 14) & 0x3fc);
}
// @ts-ignore: decorator
@inline function b3(v: u32): usize {
  return <usize>((v >>> 22) & 0x3fc);
}

/** The register shifted by 16 zero bytes (one slicing-by-16 step over zeros). */
function zeros16(r: u32): u32 {
  return (load<u32>(b0(r), CRC_TABLE + 15360) ^ load<u32>(b1(r), CRC_TABLE + 14336)) ^
    (load<u32>(b2(r), CRC_TABLE + 13312) ^ load<u32>(b3(r), CRC_TABLE + 12288));
}

/** Tabulate the shift of the register by `blk` zero bytes into 4 byte tables at `at`. */
function initShift(at: usize, blk: usize): void {
  // Images of the 32 basis vectors, then every byte value by linearity.
  const basis = CRC_COLUMNS; // free at start: 32 u32
  for (let i: u32 = 0; i < 32; i++) {
    let r: u32 = 1 << i;
    for (let n: usize = 0; n < blk; n += 16) r = zeros16(r);
    store<u32>(basis + (<usize>i << 2), r);
  }
  for (let k: u32 = 0; k < 4; k++) {
    for (let v: u32 = 0; v < 256; v++) {
      let r: u32 = 0;
      for (let i: u32 = 0; i < 8; i++) {
        if (v & (1 << i)) r ^= load<u32>(basis + (<usize>(k * 8 + i) << 2));
      }
      store<u32>(at + (<usize>k << 10) + (<usize>v << 2), r);
    }
  }
}

/** Fill the tables. Called once at start. */
export function initCrcTables(): void {
  for (let i: u32 = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    store<u32>(CRC_TABLE + (<usize>i << 2), c);
  }
  for (let t: usize = 1; t < 16; t++) {
    for (let i: usize = 0; i < 256; i++) {
      const prev = load<u32>(CRC_TABLE + ((t - 1) << 10) + (i << 2));
      const next = (prev >>> 8) ^ load<u32>(CRC_TABLE + (<usize>(prev & 0xff) << 2));
      store<u32>(CRC_TABLE + (t << 10) + (i << 2), next);
    }
  }
  // Nibble tables: byte k of T[v] at CRC_NIBBLES + 16k + v, byte k of T[v << 4] at + 64.
  for (let v: usize = 0; v < 16; v++) {
    const lo = load<u32>(CRC_TABLE + (v << 2));
    const hi = load<u32>(CRC_TABLE + (v << 6));
    for (let k: usize = 0; k < 4; k++) {
      store<u8>(CRC_NIBBLES + (k << 4) + v, <u8>(lo >>> (<u32>k << 3)));
      store<u8>(CRC_NIBBLES + 64 + (k << 4) + v, <u8>(hi >>> (<u32>k << 3)));
    }
  }
  initShift(CRC_SHIFT, BLK_LARGE);
  initShift(CRC_SHIFT + 4096, BLK_SMALL);
}

// Interleave the low or high halves of a and b, by elements of 1, 2, 4 and 8 bytes.
// @ts-ignore: decorator
@inline function lo8(a: v128, b: v128): v128 {
  return i8x16.shuffle(a, b, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
}
// @ts-ignore: decorator
@inline function hi8(a: v128, b: v128): v128 {
  return i8x16.shuffle(a, b, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
}
// @ts-ignore: decorator
@inline function lo16(a: v128, b: v128): v128 {
  return i16x8.shuffle(a, b, 0, 8, 1, 9, 2, 10, 3, 11);
}
// @ts-ignore: decorator
@inline function hi16(a: v128, b: v128): v128 {
  return i16x8.shuffle(a, b, 4, 12, 5, 13, 6, 14, 7, 15);
}
// @ts-ignore: decorator
@inline function lo32(a: v128, b: v128): v128 {
  return i32x4.shuffle(a, b, 0, 4, 1, 5);
}
// @ts-ignore: decorator
@inline function hi32(a: v128, b: v128): v128 {
  return i32x4.shuffle(a, b, 2, 6, 3, 7);
}
// @ts-ignore: decorator
@inline function lo64(a: v128, b: v128): v128 {
  return i64x2.shuffle(a, b, 0, 2);
}
// @ts-ignore: decorator
@inline function hi64(a: v128, b: v128): v128 {
  return i64x2.shuffle(a, b, 1, 3);
}

/**
 * Transpose 16 bytes of each of the 16 blocks at q, q + blk, ... into
 * CRC_COLUMNS: column t (16 bytes at CRC_COLUMNS + 16t) holds byte t of block
 * l in lane l. Four rounds of interleaving rows i and i + 8 leave lane l
 * holding row bitrev4(l), so row i is loaded from block bitrev4(i).
 */
// @ts-ignore: decorator
@inline function transpose(q: usize, blk: usize): void {
  const r0 = v128.load(q);
  const r1 = v128.load(q + 8 * blk);
  const r2 = v128.load(q + 4 * blk);
  const r3 = v128.load(q + 12 * blk);
  const r4 = v128.load(q + 2 * blk);
  const r5 = v128.load(q + 10 * blk);
  const r6 = v128.load(q + 6 * blk);
  const r7 = v128.load(q + 14 * blk);
  const r8 = v128.load(q + blk);
  const r9 = v128.load(q + 9 * blk);
  const r10 = v128.load(q + 5 * blk);
  const r11 = v128.load(q + 13 * blk);
  const r12 = v128.load(q + 3 * blk);
  const r13 = v128.load(q + 11 * blk);
  const r14 = v128.load(q + 7 * blk);
  const r15 = v128.load(q + 15 * blk);
  const a0 = lo8(r0, r8), a1 = hi8(r0, r8), a2 = lo8(r1, r9), a3 = hi8(r1, r9);
  const a4 = lo8(r2, r10), a5 = hi8(r2, r10), a6 = lo8(r3, r11), a7 = hi8(r3, r11);
  const a8 = lo8(r4, r12), a9 = hi8(r4, r12), a10 = lo8(r5, r13), a11 = hi8(r5, r13);
  const a12 = lo8(r6, r14), a13 = hi8(r6, r14), a14 = lo8(r7, r15), a15 = hi8(r7, r15);
  const c0 = lo16(a0, a8), c1 = hi16(a0, a8), c2 = lo16(a1, a9), c3 = hi16(a1, a9);
  const c4 = lo16(a2, a10), c5 = hi16(a2, a10), c6 = lo16(a3, a11), c7 = hi16(a3, a11);
  const c8 = lo16(a4, a12), c9 = hi16(a4, a12), c10 = lo16(a5, a13), c11 = hi16(a5, a13);
  const c12 = lo16(a6, a14), c13 = hi16(a6, a14), c14 = lo16(a7, a15), c15 = hi16(a7, a15);
  const e0 = lo32(c0, c8), e1 = hi32(c0, c8), e2 = lo32(c1, c9), e3 = hi32(c1, c9);
  const e4 = lo32(c2, c10), e5 = hi32(c2, c10), e6 = lo32(c3, c11), e7 = hi32(c3, c11);
  const e8 = lo32(c4, c12), e9 = hi32(c4, c12), e10 = lo32(c5, c13), e11 = hi32(c5, c13);
  const e12 = lo32(c6, c14), e13 = hi32(c6, c14), e14 = lo32(c7, c15), e15 = hi32(c7, c15);
  v128.store(CRC_COLUMNS, lo64(e0, e8), 0);
  v128.store(CRC_COLUMNS, hi64(e0, e8), 16);
  v128.store(CRC_COLUMNS, lo64(e1, e9), 32);
  v128.store(CRC_COLUMNS, hi64(e1, e9), 48);
  v128.store(CRC_COLUMNS, lo64(e2, e10), 64);
  v128.store(CRC_COLUMNS, hi64(e2, e10), 80);
  v128.store(CRC_COLUMNS, lo64(e3, e11), 96);
  v128.store(CRC_COLUMNS, hi64(e3, e11), 112);
  v128.store(CRC_COLUMNS, lo64(e4, e12), 128);
  v128.store(CRC_COLUMNS, hi64(e4, e12), 144);
  v128.store(CRC_COLUMNS, lo64(e5, e13), 160);
  v128.store(CRC_COLUMNS, hi64(e5, e13), 176);
  v128.store(CRC_COLUMNS, lo64(e6, e14), 192);
  v128.store(CRC_COLUMNS, hi64(e6, e14), 208);
  v128.store(CRC_COLUMNS, lo64(e7, e15), 224);
  v128.store(CRC_COLUMNS, hi64(e7, e15), 240);
}

/** The register shifted by `blk` zero bytes, from the tables at `shift`. */
// @ts-ignore: decorator
@inline function shiftBy(r: u32, shift: usize): u32 {
  return (load<u32>(shift + b0(r)) ^ load<u32>(shift + 1024 + b1(r))) ^
    (load<u32>(shift + 2048 + b2(r)) ^ load<u32>(shift + 3072 + b3(r)));
}

/**
 * Run the register `r` over `runs` runs of 16 * blk bytes from `p` with the
 * 16-lane kernel; returns the register.
 */
// @ts-ignore: decorator
@inline function lanes(r: u32, p: usize, runs: usize, blk: usize, shift: usize): u32 {
  const zero = i32x4.splat(0);
  for (let run: usize = 0; run < runs; run++) {
    // Lane 0 continues from r; the other lanes start from 0 (their blocks' own registers).
    let p0 = i32x4.replace_lane(zero, 0, r & 0xff);
    let p1 = i32x4.replace_lane(zero, 0, (r >>> 8) & 0xff);
    let p2 = i32x4.replace_lane(zero, 0, (r >>> 16) & 0xff);
    let p3 = i32x4.replace_lane(zero, 0, r >>> 24);
    const stop = p + blk;
    while (p < stop) {
      transpose(p, blk);
      for (let t: usize = 0; t < 256; t += 16) {
        // The nibble tables are loaded here (loads are cheap) rather than held
        // in 8 of the 16 vector registers across the transpose: held, they
        // made JavaScriptCore spill the transpose (about 10% slower on Bun).
        const m = i8x16.splat(0x0f);
        const x = v128.xor(p0, v128.load(CRC_COLUMNS + t));
        const lo = v128.and(x, m);
        const hi = v128.and(i16x8.shr_u(x, 4), m);
        const n0 = v128.xor(
          i8x16.swizzle(v128.load(CRC_NIBBLES, 0), lo),
          i8x16.swizzle(v128.load(CRC_NIBBLES, 64), hi),
        );
        const n1 = v128.xor(
          i8x16.swizzle(v128.load(CRC_NIBBLES, 16), lo),
          i8x16.swizzle(v128.load(CRC_NIBBLES, 80), hi),
        );
        const n2 = v128.xor(
          i8x16.swizzle(v128.load(CRC_NIBBLES, 32), lo),
          i8x16.swizzle(v128.load(CRC_NIBBLES, 96), hi),
        );
        const n3 = v128.xor(
          i8x16.swizzle(v128.load(CRC_NIBBLES, 48), lo),
          i8x16.swizzle(v128.load(CRC_NIBBLES, 112), hi),
        );
        p0 = v128.xor(p1, n0);
        p1 = v128.xor(p2, n1);
        p2 = v128.xor(p3, n2);
        p3 = n3;
      }
      p += 16;
    }
    // Lane registers as u32: lanes 0-3 in g0, 4-7 in g1, 8-11 in g2, 12-15 in g3.
    const w0 = lo8(p0, p1), w1 = hi8(p0, p1), w2 = lo8(p2, p3), w3 = hi8(p2, p3);
    const g0 = lo16(w0, w2), g1 = hi16(w0, w2), g2 = lo16(w1, w3), g3 = hi16(w1, w3);
    r = i32x4.extract_lane(g0, 0);
    r = shiftBy(r, shift) ^ i32x4.extract_lane(g0, 1);
    r = shiftBy(r, shift) ^ i32x4.extract_lane(g0, 2);
    r = shiftBy(r, shift) ^ i32x4.extract_lane(g0, 3);
    r = shiftBy(r, shift) ^ i32x4.extract_lane(g1, 0);
    r = shiftBy(r, shift) ^ i32x4.extract_lane(g1, 1);
    r = shiftBy(r, shift) ^ i32x4.extract_lane(g1, 2);
    r = shiftBy(r, shift) ^ i32x4.extract_lane(g1, 3);
    r = shiftBy(r, shift) ^ i32x4.extract_lane(g2, 0);
    r = shiftBy(r, shift) ^ i32x4.extract_lane(g2, 1);
    r = shiftBy(r, shift) ^ i32x4.extract_lane(g2, 2);
    r = shiftBy(r, shift) ^ i32x4.extract_lane(g2, 3);
    r = shiftBy(r, shift) ^ i32x4.extract_lane(g3, 0);
    r = shiftBy(r, shift) ^ i32x4.extract_lane(g3, 1);
    r = shiftBy(r, shift) ^ i32x4.extract_lane(g3, 2);
    r = shiftBy(r, shift) ^ i32x4.extract_lane(g3, 3);
    p += 15 * blk;
  }
  return r;
}

function lanesLarge(r: u32, p: usize, runs: usize): u32 {
  return lanes(r, p, runs, BLK_LARGE, CRC_SHIFT);
}

function lanesSmall(r: u32, p: usize, runs: usize): u32 {
  return lanes(r, p, runs, BLK_SMALL, CRC_SHIFT + 4096);
}

/** Slicing-by-16 over [p, end), then byte at a time; returns the register. */
function slicing(c: u32, p: usize, end: usize): u32 {
  while (p + 16 <= end) {
    const w1 = load<u32>(p, 4);
    const w2 = load<u32>(p, 8);
    const w3 = load<u32>(p, 12);
    const x = ((load<u32>(b0(w3), CRC_TABLE + 3072) ^ load<u32>(b1(w3), CRC_TABLE + 2048)) ^
      (load<u32>(b2(w3), CRC_TABLE + 1024) ^ load<u32>(b3(w3), CRC_TABLE))) ^
      ((load<u32>(b0(w2), CRC_TABLE + 7168) ^ load<u32>(b1(w2), CRC_TABLE + 6144)) ^
        (load<u32>(b2(w2), CRC_TABLE + 5120) ^ load<u32>(b3(w2), CRC_TABLE + 4096))) ^
      ((load<u32>(b0(w1), CRC_TABLE + 11264) ^ load<u32>(b1(w1), CRC_TABLE + 10240)) ^
        (load<u32>(b2(w1), CRC_TABLE + 9216) ^ load<u32>(b3(w1), CRC_TABLE + 8192)));
    const a = load<u32>(p) ^ c;
    c = x ^ ((load<u32>(b0(a), CRC_TABLE + 15360) ^ load<u32>(b1(a), CRC_TABLE + 14336)) ^
      (load<u32>(b2(a), CRC_TABLE + 13312) ^ load<u32>(b3(a), CRC_TABLE + 12288)));
    p += 16;
  }
  while (p < end) {
    c = load<u32>(b0(c ^ <u32>load<u8>(p)), CRC_TABLE) ^ (c >>> 8);
    p++;
  }
  return c;
}

/**
 * Continue a CRC over `len` bytes at `ptr`. `crc` is the running value (the
 * finished value of the bytes before, or 0 to start); returns the finished value.
 */
export function crcUpdate(crc: u32, ptr: usize, len: usize): u32 {
  let c = ~crc;
  let p = ptr;
  const large = len / (16 * BLK_LARGE);
  if (large > 0) {
    c = lanesLarge(c, p, large);
    p += large * 16 * BLK_LARGE;
    len -= large * 16 * BLK_LARGE;
  }
  const small = len / (16 * BLK_SMALL);
  if (small > 0) {
    c = lanesSmall(c, p, small);
    p += small * 16 * BLK_SMALL;
    len -= small * 16 * BLK_SMALL;
  }
  return ~slicing(c, p, p + len);
}

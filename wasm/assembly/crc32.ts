// CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320, as zlib), slicing-by-16.
import { CRC_TABLE } from "./layout";

/** Fill the 16 lookup tables. Called once at start. */
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
}

// Table t lives at CRC_TABLE + t * 1024. CRC_TABLE is a static data segment,
// so every table address below is a compile-time constant and each lookup is
// one load with an immediate offset.
// @ts-ignore: decorator
@inline function lo(v: u32): usize {
  return <usize>(v & 0xff) << 2;
}

/**
 * Continue a CRC over `len` bytes at `ptr`. `crc` is the running value (the
 * finished value of the bytes before, or 0 to start); returns the finished value.
 */
export function crcUpdate(crc: u32, ptr: usize, len: usize): u32 {
  let c = ~crc;
  let p = ptr;
  const end = ptr + len;
  while (p + 16 <= end) {
    const a = load<u32>(p) ^ c;
    const b = load<u32>(p, 4);
    const d = load<u32>(p, 8);
    const e = load<u32>(p, 12);
    c = load<u32>(lo(a), CRC_TABLE + 15360) ^ load<u32>(lo(a >>> 8), CRC_TABLE + 14336) ^
      load<u32>(lo(a >>> 16), CRC_TABLE + 13312) ^ load<u32>(<usize>(a >>> 24) << 2, CRC_TABLE + 12288) ^
      load<u32>(lo(b), CRC_TABLE + 11264) ^ load<u32>(lo(b >>> 8), CRC_TABLE + 10240) ^
      load<u32>(lo(b >>> 16), CRC_TABLE + 9216) ^ load<u32>(<usize>(b >>> 24) << 2, CRC_TABLE + 8192) ^
      load<u32>(lo(d), CRC_TABLE + 7168) ^ load<u32>(lo(d >>> 8), CRC_TABLE + 6144) ^
      load<u32>(lo(d >>> 16), CRC_TABLE + 5120) ^ load<u32>(<usize>(d >>> 24) << 2, CRC_TABLE + 4096) ^
      load<u32>(lo(e), CRC_TABLE + 3072) ^ load<u32>(lo(e >>> 8), CRC_TABLE + 2048) ^
      load<u32>(lo(e >>> 16), CRC_TABLE + 1024) ^ load<u32>(<usize>(e >>> 24) << 2, CRC_TABLE);
    p += 16;
  }
  while (p < end) {
    c = load<u32>(lo(c ^ load<u8>(p)), CRC_TABLE) ^ (c >>> 8);
    p++;
  }
  return ~c;
}

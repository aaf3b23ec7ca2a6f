// Static memory layout of the framing module. Every region is reserved once,
// when the module starts; nothing is allocated afterwards.

/** Frame header length in bytes. */
export const HEADER: i32 = 18;
/** Header plus CRC-32 trailer. */
export const OVERHEAD: i32 = 22;

/** CRC tables: 16 tables of 256 u32 (slicing-by-16). */
export const CRC_TABLE_SIZE: i32 = 16 * 256 * 4;
/** CRC nibble tables of the SIMD kernel: 8 x 16 bytes. */
export const CRC_NIBBLES_SIZE: i32 = 128;
/** CRC transposed columns of the SIMD kernel: 16 x 16 bytes. */
export const CRC_COLUMNS_SIZE: i32 = 256;
/** CRC shift-by-block tables of the SIMD kernel: 2 block lengths x 4 tables of 256 u32. */
export const CRC_SHIFT_SIZE: i32 = 2 * 4 * 256 * 4;
/** Scratch for CRC of bytes that live outside wasm memory. */
export const CRC_SCRATCH_CAP: i32 = 64 * 1024;
/** Encoder: frame descriptors, 6 u32 each (type, stream, seq, total, offset, length). */
export const ENC_DESC_CAP: i32 = 4096;
export const ENC_DESC_SIZE: i32 = 24;
/** Encoder output region. */
export const ENC_OUT_CAP: i32 = 1024 * 1024;
/** Encoder message input region (encodeMessage). */
export const MSG_IN_CAP: i32 = 512 * 1024;
/** Decoder staging region (bytes that arrive from outside wasm memory). */
export const DEC_STAGE_CAP: i32 = 256 * 1024;
/** Decoder input region a reader can fill in place. */
export const DEC_INPUT_CAP: i32 = 256 * 1024;
/** Decoder descriptors, 8 u32 each (ptr, type, stream, seq, total, offset, length, crc). */
export const DEC_DESC_CAP: i32 = 4096;
export const DEC_DESC_SIZE: i32 = 32;
/** Status words written by calls (consumed bytes, error code, freed entries). */
export const STATUS_SIZE: i32 = 1024;

/** Reassembler slots (one per link). */
export const RA_SLOTS: i32 = 16;
/** Concurrent messages tracked per slot. */
export const RA_MSG_CAP: i32 = 128;
/** Received ranges tracked per message (the hole limit is at most RA_RANGE_CAP - 1). */
export const RA_RANGE_CAP: i32 = 64;
/** Entry: stream, seq, total, type, received, ranges, active position, spare, then RA_RANGE_CAP (start, end) pairs. */
export const RA_ENTRY_SIZE: i32 = 32 + RA_RANGE_CAP * 8;
/** Slot header (see reassemble.ts), then the active list, the free stack, the entries. */
export const RA_SLOT_HEADER: i32 = 64;
export const RA_SLOT_SIZE: i32 = RA_SLOT_HEADER + RA_MSG_CAP * 8 + RA_MSG_CAP * RA_ENTRY_SIZE;

function align(p: usize): usize {
  return (p + 63) & ~(63 as usize);
}

/** CRC tables: static data segments, so their addresses are compile-time constants. */
export const CRC_TABLE: usize = memory.data(CRC_TABLE_SIZE, 64);
export const CRC_NIBBLES: usize = memory.data(CRC_NIBBLES_SIZE, 16);
export const CRC_COLUMNS: usize = memory.data(CRC_COLUMNS_SIZE, 16);
export const CRC_SHIFT: usize = memory.data(CRC_SHIFT_SIZE, 64);
export const CRC_SCRATCH: usize = align(__heap_base);
export const ENC_DESC: usize = align(CRC_SCRATCH + <usize>CRC_SCRATCH_CAP);
export const ENC_OUT: usize = align(ENC_DESC + <usize>(ENC_DESC_CAP * ENC_DESC_SIZE));
export const MSG_IN: usize = align(ENC_OUT + <usize>ENC_OUT_CAP);
export const DEC_STAGE: usize = align(MSG_IN + <usize>MSG_IN_CAP);
export const DEC_INPUT: usize = align(DEC_STAGE + <usize>DEC_STAGE_CAP);
export const DEC_DESC: usize = align(DEC_INPUT + <usize>DEC_INPUT_CAP);
export const STATUS: usize = align(DEC_DESC + <usize>(DEC_DESC_CAP * DEC_DESC_SIZE));
export const RA_BASE: usize = align(STATUS + <usize>STATUS_SIZE);
export const LAYOUT_END: usize = align(RA_BASE + <usize>(RA_SLOTS * RA_SLOT_SIZE));

// Reserve the pages once, at start.
const pagesNeeded: i32 = <i32>((LAYOUT_END + 65535) >> 16);
const pagesHave: i32 = memory.size();
if (pagesNeeded > pagesHave) memory.grow(pagesNeeded - pagesHave);

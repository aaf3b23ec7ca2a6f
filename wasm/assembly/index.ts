// The ABI of the framing module: numbers only, over static regions reserved at
// start (see layout.ts). Nothing here allocates after start.
import {
  CRC_SCRATCH,
  CRC_SCRATCH_CAP,
  DEC_DESC,
  DEC_DESC_CAP,
  DEC_INPUT,
  DEC_INPUT_CAP,
  DEC_STAGE,
  DEC_STAGE_CAP,
  ENC_DESC,
  ENC_DESC_CAP,
  ENC_OUT,
  ENC_OUT_CAP,
  MSG_IN,
  MSG_IN_CAP,
  RA_MSG_CAP,
  RA_RANGE_CAP,
  RA_SLOTS,
  STATUS,
} from "./layout";
import { crcUpdate, initCrcTables } from "./crc32";

export { chunkCount, decodeScan, encodeBatch, encodeMessage } from "./codec";
export {
  raCount,
  raInit,
  raLinkPending,
  raPush,
  raReset,
  raResetStream,
  raStreamPending,
} from "./reassemble";

initCrcTables();

/** CRC-32 of `len` bytes at `ptr`, continuing from `seed` (0 to start). */
export function crc32(ptr: usize, len: u32, seed: u32): u32 {
  return crcUpdate(seed, ptr, <usize>len);
}

/**
 * Where each region is and how large: `layout(i)` for i = 0.. returns, in
 * order, CRC_SCRATCH, its capacity, ENC_DESC, its capacity (frames), ENC_OUT,
 * its capacity, MSG_IN, its capacity, DEC_STAGE, its capacity, DEC_INPUT, its
 * capacity, DEC_DESC, its capacity (frames), STATUS, RA_SLOTS, RA_MSG_CAP,
 * RA_RANGE_CAP.
 */
export function layout(i: i32): u32 {
  switch (i) {
    case 0: return <u32>CRC_SCRATCH;
    case 1: return <u32>CRC_SCRATCH_CAP;
    case 2: return <u32>ENC_DESC;
    case 3: return <u32>ENC_DESC_CAP;
    case 4: return <u32>ENC_OUT;
    case 5: return <u32>ENC_OUT_CAP;
    case 6: return <u32>MSG_IN;
    case 7: return <u32>MSG_IN_CAP;
    case 8: return <u32>DEC_STAGE;
    case 9: return <u32>DEC_STAGE_CAP;
    case 10: return <u32>DEC_INPUT;
    case 11: return <u32>DEC_INPUT_CAP;
    case 12: return <u32>DEC_DESC;
    case 13: return <u32>DEC_DESC_CAP;
    case 14: return <u32>STATUS;
    case 15: return <u32>RA_SLOTS;
    case 16: return <u32>RA_MSG_CAP;
    case 17: return <u32>RA_RANGE_CAP;
    default: return 0;
  }
}

// Frame layout, batch encoding, chunking and the decoder's header scan.
import {
  DEC_DESC,
  DEC_DESC_CAP,
  DEC_DESC_SIZE,
  ENC_DESC,
  ENC_DESC_SIZE,
  ENC_OUT,
  HEADER,
  MSG_IN,
  OVERHEAD,
  STATUS,
} from "./layout";
import { crcUpdate } from "./crc32";

const VERSION: u32 = 1;
const MAX_TYPE: u32 = 5; // MAX_FRAME_TYPE of core/proto/frame.ts

const BAD_CRC: i32 = 1;
const BAD_VERSION: i32 = 2;
const BAD_TYPE: i32 = 3;
const BAD_LENGTH: i32 = 4;

// @ts-ignore: decorator
@inline function writeHeader(
  p: usize,
  type: u32,
  stream: u32,
  seq: u32,
  total: u32,
  offset: u32,
  len: u32,
): void {
  store<u16>(p, <u16>(VERSION | (type << 8)));
  store<u16>(p, bswap<u16>(<u16>stream), 2);
  store<u32>(p, bswap<u32>(seq), 4);
  store<u32>(p, bswap<u32>(total), 8);
  store<u32>(p, bswap<u32>(offset), 12);
  store<u16>(p, bswap<u16>(<u16>len), 16);
}

// @ts-ignore: decorator
@inline function sealFrame(p: usize, len: u32): void {
  const n = <usize>HEADER + <usize>len;
  store<u32>(p + n, bswap<u32>(crcUpdate(0, p, n)));
}

/**
 * Write the headers (and, with `withCrc`, the CRCs) of `n` frames laid out back
 * to back from ENC_OUT, described by ENC_DESC. The payloads are already in
 * place. Returns the number of bytes laid out.
 */
export function encodeBatch(n: i32, withCrc: bool): i32 {
  let out = ENC_OUT;
  let d = ENC_DESC;
  const end = ENC_DESC + <usize>(n * ENC_DESC_SIZE);
  while (d < end) {
    const len = load<u32>(d, 20);
    writeHeader(out, load<u32>(d), load<u32>(d, 4), load<u32>(d, 8), load<u32>(d, 12), load<u32>(d, 16), len);
    if (withCrc) sealFrame(out, len);
    out += <usize>OVERHEAD + <usize>len;
    d += ENC_DESC_SIZE;
  }
  return <i32>(out - ENC_OUT);
}

/**
 * The number of fragments of a message of `total` bytes at MTU `mtu`, or -1
 * when the MTU is outside 23..65535.
 */
export function chunkCount(total: u32, mtu: i32): i32 {
  if (mtu < OVERHEAD + 1 || mtu > 65535) return -1;
  if (total == 0) return 1;
  const pay = <u32>(mtu - OVERHEAD);
  return <i32>((<u64>total + <u64>pay - 1) / <u64>pay);
}

/**
 * Chunk and encode bytes [start, start + partLen) of a message (found at MSG_IN)
 * into frames of at most `mtu` bytes at ENC_OUT. Every fragment but the last of
 * the message carries mtu - 22 bytes; `start` must be a multiple of that.
 * Returns the number of bytes written, or -1 when the MTU is invalid.
 */
export function encodeMessage(
  type: u32,
  stream: u32,
  seq: u32,
  total: u32,
  start: u32,
  partLen: u32,
  mtu: i32,
  withCrc: bool,
): i32 {
  if (mtu < OVERHEAD + 1 || mtu > 65535) return -1;
  let out = ENC_OUT;
  if (total == 0) {
    writeHeader(out, type, stream, seq, 0, 0, 0);
    if (withCrc) sealFrame(out, 0);
    return OVERHEAD;
  }
  const pay = <u32>(mtu - OVERHEAD);
  let done: u32 = 0;
  while (done < partLen) {
    const rest = partLen - done;
    const len = rest < pay ? rest : pay;
    writeHeader(out, type, stream, seq, total, start + done, len);
    memory.copy(out + <usize>HEADER, MSG_IN + <usize>done, <usize>len);
    if (withCrc) sealFrame(out, len);
    out += <usize>OVERHEAD + <usize>len;
    done += len;
  }
  return <i32>(out - ENC_OUT);
}

/**
 * Scan complete frames in [ptr, ptr + len). For each valid frame, write a
 * descriptor (ptr, type, stream, seq, total, offset, length, stored crc) to
 * DEC_DESC. Stops at the first invalid frame, at an incomplete frame, or when
 * the descriptor table is full. Header fields are checked as soon as the 18
 * header bytes are present; the CRC (when `withCrc`) once the frame is whole.
 * STATUS[0] = bytes consumed by the described frames, STATUS[1] = error code
 * (0 when none). Returns the number of descriptors written.
 */
export function decodeScan(ptr: usize, len: u32, maxFrame: u32, withCrc: bool): i32 {
  let pos: u32 = 0;
  let n: i32 = 0;
  let err: i32 = 0;
  let d = DEC_DESC;
  while (n < DEC_DESC_CAP) {
    const rem = len - pos;
    if (rem < <u32>HEADER) break;
    const p = ptr + <usize>pos;
    const vt = load<u16>(p);
    if ((vt & 0xff) != VERSION) {
      err = BAD_VERSION;
      break;
    }
    const type = <u32>(vt >>> 8);
    if (type > MAX_TYPE) {
      err = BAD_TYPE;
      break;
    }
    const flen = <u32>bswap<u16>(load<u16>(p, 16));
    const total = bswap<u32>(load<u32>(p, 8));
    const offset = bswap<u32>(load<u32>(p, 12));
    if (
      flen + <u32>OVERHEAD > maxFrame || <u64>offset + <u64>flen > <u64>total ||
      (flen == 0 && total != 0)
    ) {
      err = BAD_LENGTH;
      break;
    }
    const size = flen + <u32>OVERHEAD;
    if (rem < size) break;
    const stored = bswap<u32>(load<u32>(p + <usize>HEADER + <usize>flen));
    if (withCrc && crcUpdate(0, p, <usize>HEADER + <usize>flen) != stored) {
      err = BAD_CRC;
      break;
    }
    store<u32>(d, <u32>p);
    store<u32>(d, type, 4);
    store<u32>(d, <u32>bswap<u16>(load<u16>(p, 2)), 8);
    store<u32>(d, bswap<u32>(load<u32>(p, 4)), 12);
    store<u32>(d, total, 16);
    store<u32>(d, offset, 20);
    store<u32>(d, flen, 24);
    store<u32>(d, stored, 28);
    d += DEC_DESC_SIZE;
    n++;
    pos += size;
  }
  store<u32>(STATUS, pos);
  store<i32>(STATUS, err, 4);
  return n;
}

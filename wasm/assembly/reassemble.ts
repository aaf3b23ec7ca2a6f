// Reassembly bookkeeping: which byte ranges of which messages arrived, and the
// per-stream and per-link accounting. The message bytes themselves live in JS.
import { RA_BASE, RA_ENTRY_SIZE, RA_MSG_CAP, RA_SLOT_HEADER, RA_SLOT_SIZE, STATUS } from "./layout";

const BAD_LENGTH: i32 = 4;
const DUPLICATE_FRAGMENT: i32 = 5;
const OVERLAPPING_FRAGMENT: i32 = 6;
const MESSAGE_TOO_LARGE: i32 = 7;
const STREAM_LIMIT_EXCEEDED: i32 = 8;
const LINK_LIMIT_EXCEEDED: i32 = 9;
const TOO_MANY_MESSAGES: i32 = 10;
const TOO_FRAGMENTED: i32 = 11;
const FRAGMENT_MISMATCH: i32 = 12;

/** Result flag: the fragment starts a new message (allocate its buffer). */
const FLAG_NEW: i32 = 0x10000;
/** Result flag: the message is complete. */
const FLAG_DONE: i32 = 0x20000;
/** Entry index reported for a message that completes at once (no entry). */
const NO_ENTRY: i32 = 0xffff;

// Slot header offsets.
const H_MAX_MESSAGE = 0;
const H_MAX_STREAM = 4;
const H_MAX_LINK = 8;
const H_MAX_MESSAGES = 12;
const H_MAX_HOLES = 16;
const H_ACTIVE = 20;
const H_FREE = 24;
const H_LAST = 28;
const H_LINK_PENDING = 32;

// Entry offsets.
const E_STREAM = 0;
const E_SEQ = 4;
const E_TOTAL = 8;
const E_TYPE = 12;
const E_RECEIVED = 16;
const E_RANGES = 20;
const E_POS = 24;
const E_RANGE0 = 32;

// @ts-ignore: decorator
@inline function slotPtr(slot: i32): usize {
  return RA_BASE + <usize>(slot * RA_SLOT_SIZE);
}
// @ts-ignore: decorator
@inline function activeList(s: usize): usize {
  return s + <usize>RA_SLOT_HEADER;
}
// @ts-ignore: decorator
@inline function freeStack(s: usize): usize {
  return s + <usize>RA_SLOT_HEADER + <usize>(RA_MSG_CAP * 4);
}
// @ts-ignore: decorator
@inline function entryPtr(s: usize, e: i32): usize {
  return s + <usize>RA_SLOT_HEADER + <usize>(RA_MSG_CAP * 8) + <usize>(e * RA_ENTRY_SIZE);
}
// @ts-ignore: decorator
@inline function rStart(ep: usize, i: u32): u32 {
  return load<u32>(ep + <usize>E_RANGE0 + (<usize>i << 3));
}
// @ts-ignore: decorator
@inline function rEnd(ep: usize, i: u32): u32 {
  return load<u32>(ep + <usize>E_RANGE0 + (<usize>i << 3), 4);
}
// @ts-ignore: decorator
@inline function setRange(ep: usize, i: u32, start: u32, end: u32): void {
  const p = ep + <usize>E_RANGE0 + (<usize>i << 3);
  store<u32>(p, start);
  store<u32>(p, end, 4);
}

/** Reset a slot and set its limits. */
export function raInit(
  slot: i32,
  maxMessage: u32,
  maxStream: u32,
  maxLink: u32,
  maxMessages: i32,
  maxHoles: i32,
): void {
  const s = slotPtr(slot);
  store<u32>(s, maxMessage, H_MAX_MESSAGE);
  store<u32>(s, maxStream, H_MAX_STREAM);
  store<u32>(s, maxLink, H_MAX_LINK);
  store<i32>(s, maxMessages, H_MAX_MESSAGES);
  store<i32>(s, maxHoles, H_MAX_HOLES);
  raReset(slot);
}

/** Drop every message of a slot. */
export function raReset(slot: i32): void {
  const s = slotPtr(slot);
  store<i32>(s, 0, H_ACTIVE);
  store<i32>(s, RA_MSG_CAP, H_FREE);
  store<i32>(s, -1, H_LAST);
  store<u64>(s, 0, H_LINK_PENDING);
  const fs = freeStack(s);
  for (let i = 0; i < RA_MSG_CAP; i++) store<i32>(fs + <usize>(i << 2), RA_MSG_CAP - 1 - i);
}

function find(s: usize, stream: u32, seq: u32): i32 {
  const last = load<i32>(s, H_LAST);
  if (last >= 0) {
    const ep = entryPtr(s, last);
    if (load<u32>(ep, E_SEQ) == seq && load<u32>(ep, E_STREAM) == stream) return last;
  }
  const n = load<i32>(s, H_ACTIVE);
  const al = activeList(s);
  for (let i = 0; i < n; i++) {
    const e = load<i32>(al + <usize>(i << 2));
    const ep = entryPtr(s, e);
    if (load<u32>(ep, E_SEQ) == seq && load<u32>(ep, E_STREAM) == stream) {
      store<i32>(s, e, H_LAST);
      return e;
    }
  }
  return -1;
}

function release(s: usize, e: i32): void {
  const ep = entryPtr(s, e);
  const al = activeList(s);
  const n = load<i32>(s, H_ACTIVE) - 1;
  const pos = load<i32>(ep, E_POS);
  if (pos != n) {
    const moved = load<i32>(al + <usize>(n << 2));
    store<i32>(al + <usize>(pos << 2), moved);
    store<i32>(entryPtr(s, moved), pos, E_POS);
  }
  store<i32>(s, n, H_ACTIVE);
  const free = load<i32>(s, H_FREE);
  store<i32>(freeStack(s) + <usize>(free << 2), e);
  store<i32>(s, free + 1, H_FREE);
  store<u64>(s, load<u64>(s, H_LINK_PENDING) - <u64>load<u32>(ep, E_TOTAL), H_LINK_PENDING);
  if (load<i32>(s, H_LAST) == e) store<i32>(s, -1, H_LAST);
}

/** Bytes of messages pending on one stream of a slot. */
export function raStreamPending(slot: i32, stream: u32): f64 {
  const s = slotPtr(slot);
  const n = load<i32>(s, H_ACTIVE);
  const al = activeList(s);
  let sum: u64 = 0;
  for (let i = 0; i < n; i++) {
    const ep = entryPtr(s, load<i32>(al + <usize>(i << 2)));
    if (load<u32>(ep, E_STREAM) == stream) sum += <u64>load<u32>(ep, E_TOTAL);
  }
  return <f64>sum;
}

/** Bytes of messages pending on a slot. */
export function raLinkPending(slot: i32): f64 {
  return <f64>load<u64>(slotPtr(slot), H_LINK_PENDING);
}

/** Messages being reassembled on a slot. */
export function raCount(slot: i32): i32 {
  return load<i32>(slotPtr(slot), H_ACTIVE);
}

/**
 * Drop every message of one stream. Writes the freed entry indices from
 * STATUS + 64 and returns how many there are.
 */
export function raResetStream(slot: i32, stream: u32): i32 {
  const s = slotPtr(slot);
  const al = activeList(s);
  let freed = 0;
  let i = 0;
  while (i < load<i32>(s, H_ACTIVE)) {
    const e = load<i32>(al + <usize>(i << 2));
    if (load<u32>(entryPtr(s, e), E_STREAM) == stream) {
      store<i32>(STATUS + 64 + <usize>(freed << 2), e);
      freed++;
      release(s, e); // moves the last active entry to position i
    } else {
      i++;
    }
  }
  return freed;
}

/**
 * Account for one fragment. Returns -code when it is refused (nothing
 * changes), otherwise the entry index with FLAG_NEW when it starts a message
 * and FLAG_DONE when the message is complete.
 */
export function raPush(
  slot: i32,
  stream: u32,
  seq: u32,
  total: u32,
  offset: u32,
  len: u32,
  type: u32,
): i32 {
  const s = slotPtr(slot);
  const end64 = <u64>offset + <u64>len;
  if (end64 > <u64>total || (len == 0 && total != 0)) return -BAD_LENGTH;
  if (total > load<u32>(s, H_MAX_MESSAGE)) return -MESSAGE_TOO_LARGE;
  const end = <u32>end64;
  const e = find(s, stream, seq);
  if (e >= 0) {
    const ep = entryPtr(s, e);
    if (load<u32>(ep, E_TOTAL) != total || load<u32>(ep, E_TYPE) != type) return -FRAGMENT_MISMATCH;
    const n = load<u32>(ep, E_RANGES);
    let i: u32 = 0;
    while (i < n && rEnd(ep, i) < offset) i++;
    if (i < n) {
      if (rStart(ep, i) <= offset && rEnd(ep, i) >= end) return -DUPLICATE_FRAGMENT;
      if (rStart(ep, i) < end && rEnd(ep, i) > offset) return -OVERLAPPING_FRAGMENT;
      if (i + 1 < n && rStart(ep, i + 1) < end) return -OVERLAPPING_FRAGMENT;
    }
    const leftAdj = i < n && rEnd(ep, i) == offset;
    const r = leftAdj ? i + 1 : i;
    const rightAdj = r < n && rStart(ep, r) == end;
    const received = load<u32>(ep, E_RECEIVED) + len;
    if (received == total) {
      release(s, e);
      return e | FLAG_DONE;
    }
    const newN = n + 1 - <u32>leftAdj - <u32>rightAdj;
    const first = n > 0 && rStart(ep, 0) < offset ? rStart(ep, 0) : offset;
    const last = n > 0 && rEnd(ep, n - 1) > end ? rEnd(ep, n - 1) : end;
    const holes = <i32>newN - 1 + <i32>(first > 0) + <i32>(last < total);
    if (holes > load<i32>(s, H_MAX_HOLES)) return -TOO_FRAGMENTED;
    if (leftAdj && rightAdj) {
      setRange(ep, i, rStart(ep, i), rEnd(ep, i + 1));
      for (let k = i + 1; k + 1 < n; k++) setRange(ep, k, rStart(ep, k + 1), rEnd(ep, k + 1));
    } else if (leftAdj) {
      setRange(ep, i, rStart(ep, i), end);
    } else if (rightAdj) {
      setRange(ep, r, offset, rEnd(ep, r));
    } else {
      for (let k = n; k > i; k--) setRange(ep, k, rStart(ep, k - 1), rEnd(ep, k - 1));
      setRange(ep, i, offset, end);
    }
    store<u32>(ep, newN, E_RANGES);
    store<u32>(ep, received, E_RECEIVED);
    return e;
  }
  // A new message.
  const sp = raStreamPending(slot, stream);
  if (sp + <f64>total > <f64>load<u32>(s, H_MAX_STREAM)) return -STREAM_LIMIT_EXCEEDED;
  const lp = load<u64>(s, H_LINK_PENDING);
  if (lp + <u64>total > <u64>load<u32>(s, H_MAX_LINK)) return -LINK_LIMIT_EXCEEDED;
  if (len == total) return NO_ENTRY | FLAG_NEW | FLAG_DONE;
  const active = load<i32>(s, H_ACTIVE);
  if (active >= load<i32>(s, H_MAX_MESSAGES)) return -TOO_MANY_MESSAGES;
  const holes = <i32>(offset > 0) + <i32>(end < total);
  if (holes > load<i32>(s, H_MAX_HOLES)) return -TOO_FRAGMENTED;
  const free = load<i32>(s, H_FREE) - 1;
  const ne = load<i32>(freeStack(s) + <usize>(free << 2));
  store<i32>(s, free, H_FREE);
  const ep = entryPtr(s, ne);
  store<u32>(ep, stream, E_STREAM);
  store<u32>(ep, seq, E_SEQ);
  store<u32>(ep, total, E_TOTAL);
  store<u32>(ep, type, E_TYPE);
  store<u32>(ep, len, E_RECEIVED);
  store<u32>(ep, 1, E_RANGES);
  store<i32>(ep, active, E_POS);
  setRange(ep, 0, offset, end);
  store<i32>(activeList(s) + <usize>(active << 2), ne);
  store<i32>(s, active + 1, H_ACTIVE);
  store<i32>(s, ne, H_LAST);
  store<u64>(s, lp + <u64>total, H_LINK_PENDING);
  return ne | FLAG_NEW;
}

// A bump allocator over the module's memory. The host makes one instance per
// image, so nothing is ever freed: the instance (and its memory) goes away
// with the call.

let top: usize = 0;

/** Start allocating after the static data. */
export function resetHeap(): void {
  top = (__heap_base + 63) & ~(63 as usize);
}

/** Grow memory so that `end` is addressable; false when it cannot. */
export function ensure(end: usize): bool {
  const need = <i32>((end + 0xffff) >>> 16);
  const have = memory.size();
  return need <= have || memory.grow(need - have) >= 0;
}

/** Reserve `n` bytes (64-aligned), or 0 when memory cannot grow. */
export function alloc(n: usize): usize {
  const p = (top + 63) & ~(63 as usize);
  if (!ensure(p + n)) return 0;
  top = p + n;
  return p;
}

/** The first free address (where a growing region may start). */
export function heapTop(): usize {
  return (top + 63) & ~(63 as usize);
}

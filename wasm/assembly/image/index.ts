// The ABI of the image module: numbers only. The host makes one instance per
// image: it reserves room for its input with `reserve`, copies it there,
// then encodes (`encodeRgba`, output at `encodedPtr`) or decodes
// (`decodeHeader`, then `decodeScan`, pixels at `decodedPtr`).
import { alloc, resetHeap } from "./heap";

resetHeap();

/** Reserve `n` bytes for the host to fill; 0 when memory cannot grow. */
export function reserve(n: i32): usize {
  return alloc(<usize>n);
}

export { encodedPtr, encodeRgba } from "./encode";
export { decodedHeight, decodedPtr, decodedWidth, decodeHeader, decodeScan } from "./decode";

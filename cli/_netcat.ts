/**
 * What `serve` and `connect` share: standard input cut into messages (one
 * per line, a line over 1024 bytes in several), and received messages
 * written out as they came or as JSON lines.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { MAX_SEND_DATA } from "../link_enhance.ts";
import type { Io } from "./mod.ts";

/**
 * Send standard input line by line: each line with its newline is one
 * message (a longer one several of at most 1024 bytes); what follows the last
 * newline is sent at end of input.
 *
 * @param io Where to read.
 * @param send Sends one message (waits for room).
 * @returns Bytes sent, at end of input.
 */
export async function pumpLines(
  io: Io,
  send: (message: Uint8Array) => Promise<void>,
): Promise<number> {
  let pending = new Uint8Array(0);
  let total = 0;
  const emit = async (bytes: Uint8Array) => {
    for (let at = 0; at < bytes.length; at += MAX_SEND_DATA) {
      const piece = bytes.slice(at, at + MAX_SEND_DATA);
      await send(piece);
      total += piece.length;
    }
  };
  for await (const chunk of io.input()) {
    const data = pending.length === 0 ? chunk : concat(pending, chunk);
    let start = 0;
    for (let nl = data.indexOf(10); nl >= 0; nl = data.indexOf(10, start)) {
      await emit(data.subarray(start, nl + 1));
      start = nl + 1;
    }
    pending = data.slice(start);
    if (pending.length >= MAX_SEND_DATA) {
      const whole = pending.length - pending.length % MAX_SEND_DATA;
      await emit(pending.subarray(0, whole));
      pending = pending.slice(whole);
    }
  }
  if (pending.length > 0) await emit(pending);
  return total;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * One JSON line for a received message: its text when it is UTF-8, else
 * base64.
 *
 * @param peer The sender.
 * @param data The message.
 * @returns `{"event":"data","peer":...,"bytes":N,"text":...}` or `...,"base64":...}`.
 */
export function dataLine(peer: string, data: ArrayBuffer): string {
  const bytes = new Uint8Array(data);
  let body: Record<string, string>;
  try {
    body = { text: utf8.decode(bytes) };
  } catch {
    body = { base64: Buffer.from(bytes).toString("base64") };
  }
  return `${JSON.stringify({ event: "data", peer, bytes: bytes.length, ...body })}\n`;
}

/**
 * One JSON line for an event.
 *
 * @param event Its name.
 * @param fields Its fields.
 * @returns The line.
 */
export function eventLine(event: string, fields: Record<string, unknown>): string {
  return `${JSON.stringify({ event, ...fields })}\n`;
}

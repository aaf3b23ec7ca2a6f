/**
 * `LINKWEAVE_TRACE=1`: one JSON line per event on stderr, from every layer
 * (the API, the device driver, discovery), so a user can see what the
 * runtime does: dials, handshakes, refusals, links up and down, connects,
 * data. Off by default; reading the switch needs no import, so this stays
 * usable from `core/`.
 *
 * @example
 * ```ts
 * trace("example", { detail: 1 }); // prints only with LINKWEAVE_TRACE=1
 * ```
 *
 * @module
 */

declare const process: { env?: Record<string, string | undefined> } | undefined;

/** Whether tracing is on (`LINKWEAVE_TRACE=1` when the module loaded). */
export const TRACE: boolean = (() => {
  try {
    return typeof process !== "undefined" && process.env?.LINKWEAVE_TRACE === "1";
  } catch {
    return false;
  }
})();

/**
 * Print one trace line, `{"linkweave": event, ...detail}`, when tracing is on.
 *
 * @param event What happened.
 * @param detail Its fields.
 */
export function trace(event: string, detail: Record<string, unknown>): void {
  if (TRACE) console.error(JSON.stringify({ linkweave: event, ...detail }));
}

/**
 * A stand-in for OpenHarmony's `hilog` (`@kit.PerformanceAnalysisKit`) so the
 * documentation's examples run unchanged: it prints to stdout/stderr with
 * the domain and tag, and substitutes `%{public}s`-style placeholders.
 *
 * @module
 */

function format(fmt: string, args: unknown[]): string {
  let i = 0;
  return fmt.replace(/%\{(?:public|private)\}[sd]|%[sd]/g, () => String(args[i++] ?? ""));
}

function line(level: string, domain: number, tag: string, fmt: string, args: unknown[]): string {
  return `${level} ${domain.toString(16).padStart(4, "0")}/${tag}: ${format(fmt, args)}`;
}

/** `hilog.info` / `hilog.error` with OpenHarmony's signature. */
export const hilog: {
  info(domain: number, tag: string, fmt: string, ...args: unknown[]): void;
  error(domain: number, tag: string, fmt: string, ...args: unknown[]): void;
} = {
  info: (domain, tag, fmt, ...args) => console.log(line("I", domain, tag, fmt, args)),
  error: (domain, tag, fmt, ...args) => console.error(line("E", domain, tag, fmt, args)),
};

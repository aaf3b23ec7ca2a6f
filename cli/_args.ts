/**
 * The command line of one command: options (`--name`, `--name VALUE`,
 * `--name=VALUE`, repeatable ones) and positional arguments, checked against
 * what the command declares. Anything else is a {@linkcode UsageError}, which
 * the command table turns into exit code 2.
 *
 * @module
 */

/** Wrong usage: an unknown option, a missing or bad value (exit code 2). */
export class UsageError extends Error {
  /**
   * A usage error.
   *
   * @param message What is wrong, naming the value.
   */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** One option a command accepts. */
export interface OptionSpec {
  /** It takes a value. @default {false} */
  value?: boolean;
  /** It may be given more than once (values are kept in order). @default {false} */
  repeat?: boolean;
}

/** A parsed command line. */
export interface Parsed {
  /** Options without a value that were given. */
  flags: Set<string>;
  /** Values of options with a value, in order. */
  values: Map<string, string[]>;
  /** The positional arguments. */
  positionals: string[];
}

/**
 * Parse a command's arguments.
 *
 * @param args The arguments after the command's name.
 * @param spec The options it accepts, by name without `--`.
 * @returns The options and positional arguments.
 * @throws {UsageError} For an unknown option, a missing value, a value given
 *   to a flag, or an option repeated that may not be.
 */
export function parseArgs(args: readonly string[], spec: Record<string, OptionSpec>): Parsed {
  const out: Parsed = { flags: new Set(), values: new Map(), positionals: [] };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--") {
      out.positionals.push(...args.slice(i + 1));
      break;
    }
    if (!a.startsWith("--") || a === "-") {
      if (a.startsWith("-") && a !== "-") throw new UsageError(`unknown option "${a}"`);
      out.positionals.push(a);
      continue;
    }
    const eq = a.indexOf("=");
    const name = a.slice(2, eq < 0 ? undefined : eq);
    const s = Object.hasOwn(spec, name) ? spec[name] : undefined;
    if (s === undefined) throw new UsageError(`unknown option "--${name}"`);
    if (s.value !== true) {
      if (eq >= 0) throw new UsageError(`option "--${name}" takes no value`);
      out.flags.add(name);
      continue;
    }
    const value = eq >= 0 ? a.slice(eq + 1) : args[++i];
    if (value === undefined) throw new UsageError(`option "--${name}" needs a value`);
    const list = out.values.get(name) ?? [];
    if (list.length > 0 && s.repeat !== true) {
      throw new UsageError(`option "--${name}" given twice`);
    }
    list.push(value);
    out.values.set(name, list);
  }
  return out;
}

/**
 * The positional arguments, exactly as many as the command takes.
 *
 * @param p The parsed line.
 * @param names Their names, for the message; a name ending in `?` is optional.
 * @returns The arguments (an optional one may be `undefined`).
 * @throws {UsageError} When there are too few or too many.
 */
export function positionals(p: Parsed, names: readonly string[]): (string | undefined)[] {
  const required = names.filter((n) => !n.endsWith("?")).length;
  if (p.positionals.length < required) {
    throw new UsageError(`missing ${names[p.positionals.length].replace(/\?$/, "")}`);
  }
  if (p.positionals.length > names.length) {
    throw new UsageError(`unexpected argument "${p.positionals[names.length]}"`);
  }
  return names.map((_, i) => p.positionals[i]);
}

/**
 * A whole number option.
 *
 * @param p The parsed line.
 * @param name The option.
 * @param range Its bounds and its value when not given.
 * @returns The value.
 * @throws {UsageError} When it is not a whole number in range.
 */
export function intOption(
  p: Parsed,
  name: string,
  range: { min: number; max: number; default: number },
): number {
  const v = p.values.get(name)?.[0];
  if (v === undefined) return range.default;
  const n = /^\d+$/.test(v) ? Number(v) : NaN;
  if (!(n >= range.min && n <= range.max)) {
    throw new UsageError(`--${name} "${v}" is not a whole number in ${range.min}..${range.max}`);
  }
  return n;
}

/**
 * A duration option in seconds (decimals allowed), returned in ms.
 *
 * @param p The parsed line.
 * @param name The option.
 * @param range Bounds and default, in seconds.
 * @returns Milliseconds.
 * @throws {UsageError} When it is not a number of seconds in range.
 */
export function secondsOption(
  p: Parsed,
  name: string,
  range: { min: number; max: number; default: number },
): number {
  const v = p.values.get(name)?.[0];
  if (v === undefined) return range.default * 1000;
  const n = /^\d+(\.\d+)?$/.test(v) ? Number(v) : NaN;
  if (!(n >= range.min && n <= range.max)) {
    throw new UsageError(
      `--${name} "${v}" is not a number of seconds in ${range.min}..${range.max}`,
    );
  }
  return Math.round(n * 1000);
}

/**
 * D-Bus type signatures and names: parsing, validation and the limits the
 * specification sets on both. Pure: no I/O.
 *
 * A signature is parsed into a tree of {@linkcode DBusType}s. Parsed
 * signatures are cached (the cache is bounded, so a peer sending many
 * different signatures cannot grow it).
 *
 * @module
 */

/** The specification's limits on signatures, enforced by {@linkcode parseSignature}. */
export const SIGNATURE_LIMITS = {
  /** Longest signature, in characters. */
  maxLength: 255,
  /** Deepest nesting of arrays. */
  maxArrayDepth: 32,
  /** Deepest nesting of structs and dict entries. */
  maxStructDepth: 32,
} as const;

/** Longest bus, interface, member or error name, in bytes. */
export const MAX_NAME_LENGTH = 255;

/** A parsed single complete type. */
export interface DBusType {
  /** The type code: a basic type, `v`, `a`, `(` (struct) or `{` (dict entry). */
  readonly code: string;
  /** The signature text of this type, e.g. `a{sv}`. */
  readonly signature: string;
  /** Its alignment in bytes (1, 2, 4 or 8). */
  readonly align: number;
  /** The element type of an array. */
  readonly elem?: DBusType;
  /** The fields of a struct, or key and value of a dict entry. */
  readonly fields?: readonly DBusType[];
}

/** The alignment of every type code. */
const ALIGN: Readonly<Record<string, number>> = {
  y: 1,
  b: 4,
  n: 2,
  q: 2,
  i: 4,
  u: 4,
  x: 8,
  t: 8,
  d: 8,
  h: 4,
  s: 4,
  o: 4,
  g: 1,
  v: 1,
  a: 4,
  "(": 8,
  "{": 8,
};

/** The basic (non-container) type codes, which may be dict keys. */
const BASIC = "ybnqiuxtdhsog";

const BASIC_TYPES: ReadonlyMap<string, DBusType> = new Map(
  [...BASIC, "v"].map((c) => [c, { code: c, signature: c, align: ALIGN[c] }]),
);

/**
 * Whether a type code is a basic type (a valid dict key).
 *
 * @param code One type code.
 * @returns `true` for `y b n q i u x t d h s o g`.
 */
export function isBasicCode(code: string): boolean {
  return code.length === 1 && BASIC.includes(code);
}

/** Why a signature is invalid, or `undefined`. */
class SignatureParser {
  #sig: string;
  #pos = 0;

  constructor(sig: string) {
    this.#sig = sig;
  }

  get done(): boolean {
    return this.#pos >= this.#sig.length;
  }

  /** Parse one complete type at the current position. */
  one(arrays: number, structs: number): DBusType {
    const sig = this.#sig;
    const start = this.#pos;
    const c = sig[this.#pos++];
    if (c === undefined) throw new Error("a type is missing");
    const basic = BASIC_TYPES.get(c);
    if (basic !== undefined) return basic;
    if (c === "a") {
      if (arrays + 1 > SIGNATURE_LIMITS.maxArrayDepth) {
        throw new Error(`arrays nest deeper than ${SIGNATURE_LIMITS.maxArrayDepth}`);
      }
      if (sig[this.#pos] === "{") {
        this.#pos++;
        if (structs + 1 > SIGNATURE_LIMITS.maxStructDepth) {
          throw new Error(`structs nest deeper than ${SIGNATURE_LIMITS.maxStructDepth}`);
        }
        const keyCode = sig[this.#pos];
        if (keyCode === undefined || !isBasicCode(keyCode)) {
          throw new Error("a dict entry key must be a basic type");
        }
        const key = this.one(arrays + 1, structs + 1);
        if (sig[this.#pos] === "}") throw new Error("a dict entry must have exactly two types");
        const value = this.one(arrays + 1, structs + 1);
        if (sig[this.#pos++] !== "}") throw new Error("a dict entry must have exactly two types");
        const entrySig = sig.slice(start + 1, this.#pos);
        const entry: DBusType = { code: "{", signature: entrySig, align: 8, fields: [key, value] };
        return { code: "a", signature: sig.slice(start, this.#pos), align: 4, elem: entry };
      }
      const elem = this.one(arrays + 1, structs);
      return { code: "a", signature: sig.slice(start, this.#pos), align: 4, elem };
    }
    if (c === "(") {
      if (structs + 1 > SIGNATURE_LIMITS.maxStructDepth) {
        throw new Error(`structs nest deeper than ${SIGNATURE_LIMITS.maxStructDepth}`);
      }
      const fields: DBusType[] = [];
      while (sig[this.#pos] !== ")") {
        if (this.#pos >= sig.length) throw new Error("a struct is not closed");
        fields.push(this.one(arrays, structs + 1));
      }
      this.#pos++;
      if (fields.length === 0) throw new Error("a struct must have at least one field");
      return { code: "(", signature: sig.slice(start, this.#pos), align: 8, fields };
    }
    if (c === "{") throw new Error("a dict entry may appear only as an array element");
    throw new Error(`"${c}" is not a type code`);
  }
}

/** Cache of parsed signatures, cleared when full. */
const cache = new Map<string, readonly DBusType[]>();
const CACHE_SIZE = 512;

/**
 * Parse a signature (zero or more complete types).
 *
 * @param signature The signature, e.g. `sa{sv}as`.
 * @returns One parsed type per complete type.
 * @throws {Error} With the reason when the signature is invalid (callers turn
 *   it into the error their side needs).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const [t] = parseSignature("a{sv}");
 * assert.equal(t.code, "a");
 * assert.equal(t.elem?.fields?.[0].code, "s");
 * assert.throws(() => parseSignature("a{vs}"), /basic type/);
 * ```
 */
export function parseSignature(signature: string): readonly DBusType[] {
  const hit = cache.get(signature);
  if (hit !== undefined) return hit;
  if (signature.length > SIGNATURE_LIMITS.maxLength) {
    throw new Error(`it is longer than ${SIGNATURE_LIMITS.maxLength} characters`);
  }
  const p = new SignatureParser(signature);
  const types: DBusType[] = [];
  while (!p.done) types.push(p.one(0, 0));
  if (cache.size >= CACHE_SIZE) cache.clear();
  cache.set(signature, types);
  return types;
}

/**
 * Parse a signature that must hold exactly one complete type (a variant's).
 *
 * @param signature The signature.
 * @returns The type.
 * @throws {Error} When it is invalid or holds more or fewer than one type.
 */
export function parseSingleType(signature: string): DBusType {
  const types = parseSignature(signature);
  if (types.length !== 1) throw new Error("it must hold exactly one complete type");
  return types[0];
}

/**
 * Why a signature is invalid, or `undefined` when it is valid.
 *
 * @param signature The signature.
 * @returns The reason, or `undefined`.
 */
export function signatureProblem(signature: string): string | undefined {
  try {
    parseSignature(signature);
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
}

/** Names found valid, by kind (bounded: cleared when full). */
const valid = new Set<string>();
const VALID_SIZE = 2048;

function remember(key: string, ok: boolean): boolean {
  if (ok) {
    if (valid.size >= VALID_SIZE) valid.clear();
    valid.add(key);
  }
  return ok;
}

const ELEMENT = /^[A-Za-z_][A-Za-z0-9_]*$/;
const BUS_ELEMENT = /^[A-Za-z_-][A-Za-z0-9_-]*$/;
const UNIQUE_ELEMENT = /^[A-Za-z0-9_-]+$/;
const PATH = /^\/([A-Za-z0-9_]+(\/[A-Za-z0-9_]+)*)?$/;

/**
 * Whether a string is a valid object path (`/`, or `/`-separated elements of
 * `[A-Za-z0-9_]`).
 *
 * @param path The path.
 * @returns Validity.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.ok(isObjectPath("/org/bluez/hci0"));
 * assert.ok(!isObjectPath("/org/bluez/"));
 * ```
 */
export function isObjectPath(path: string): boolean {
  const key = `o${path}`;
  return valid.has(key) || remember(key, PATH.test(path));
}

/**
 * Whether a string is a valid interface or error name (two or more
 * `.`-separated elements, none starting with a digit).
 *
 * @param name The name.
 * @returns Validity.
 */
export function isInterfaceName(name: string): boolean {
  const key = `i${name}`;
  if (valid.has(key)) return true;
  if (name.length > MAX_NAME_LENGTH) return false;
  const parts = name.split(".");
  return remember(key, parts.length >= 2 && parts.every((p) => ELEMENT.test(p)));
}

/**
 * Whether a string is a valid member (method, signal or property) name.
 *
 * @param name The name.
 * @returns Validity.
 */
export function isMemberName(name: string): boolean {
  const key = `m${name}`;
  return valid.has(key) || remember(key, name.length <= MAX_NAME_LENGTH && ELEMENT.test(name));
}

/**
 * Whether a string is a valid bus name: unique (`:1.42`) or well-known
 * (`org.bluez`).
 *
 * @param name The name.
 * @returns Validity.
 */
export function isBusName(name: string): boolean {
  const key = `b${name}`;
  if (valid.has(key)) return true;
  if (name.length > MAX_NAME_LENGTH) return false;
  const unique = name.startsWith(":");
  const parts = (unique ? name.slice(1) : name).split(".");
  if (parts.length < 2) return false;
  return remember(key, parts.every((p) => (unique ? UNIQUE_ELEMENT : BUS_ELEMENT).test(p)));
}

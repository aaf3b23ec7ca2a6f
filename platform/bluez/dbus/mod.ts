/**
 * linkweave's own D-Bus client: a sans-IO codec (signatures, values in
 * either byte order, messages, SASL) and a bus connection on Deno, Bun and
 * Node, with file-descriptor passing where the runtime has FFI.
 *
 * @module
 */
export * from "./address.ts";
export * from "./auth.ts";
export * from "./connection.ts";
export * from "./errors.ts";
export * from "./marshal.ts";
export * from "./message.ts";
export * from "./signature.ts";

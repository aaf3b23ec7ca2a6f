import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { checkFile, importsOf } from "./check_deps.ts";

describe("dependency rule (scripts/check_deps.ts)", () => {
  it("finds static, type-only, re-exported and dynamic imports, not commented ones", () => {
    const src = [
      'import { a } from "./a.ts";',
      'import type { B } from "../b.ts";',
      'export { c } from "./c.ts";',
      'export * as d from "./d.ts";',
      'import "./side.ts";',
      'const e = await import("./e.ts");',
      '// import { x } from "./commented.ts";',
      '/* import { y } from "./block.ts"; */',
      "import {\n  f,\n  g,\n} from './fg.ts';",
    ].join("\n");
    assert.deepEqual(importsOf(src), [
      "./a.ts",
      "../b.ts",
      "./c.ts",
      "./d.ts",
      "./side.ts",
      "./e.ts",
      "./fg.ts",
    ]);
  });

  it("refuses a core module importing wasm/, a package or a runtime module", () => {
    const got = checkFile("core/proto/link.ts", ["../../wasm/mod.ts", "node:zlib", "./frame.ts"]);
    assert.deepEqual(got.map((v) => v.specifier), ["../../wasm/mod.ts", "node:zlib"]);
    assert.match(got[0].rule, /core\/ imports only core\//);
  });

  it("lets wasm/ import only the codec contract and the errors from core/", () => {
    const got = checkFile("wasm/mod.ts", [
      "../core/proto/frame.ts",
      "../core/errors.ts",
      "../core/error_codes.ts",
      "./_abi.ts",
      "../core/proto/link.ts",
      "node:zlib",
    ]);
    assert.deepEqual(got.map((v) => v.specifier), ["../core/proto/link.ts", "node:zlib"]);
  });

  it("refuses a runtime adapter importing another runtime's folder", () => {
    const got = checkFile("platform/deno/socket.ts", [
      "../node/socket.ts",
      "../_errors.ts",
      "../../core/errors.ts",
      "node:net",
      "./mod.ts",
    ]);
    assert.deepEqual(got.map((v) => v.specifier), ["../node/socket.ts"]);
    assert.match(got[0].rule, /platform\/deno\/ never imports another runtime's folder/);
    assert.equal(checkFile("platform/bluez/bus.ts", ["../node/mod.ts"]).length, 0);
  });

  it("lets cli/ use the public modules and diagnostics.ts only", () => {
    const got = checkFile("cli/dissect.ts", [
      "../diagnostics.ts",
      "../link_enhance.ts",
      "./mod.ts",
      "node:fs/promises",
      "../_transports.ts",
      "../core/proto/openharmony/dissect.ts",
      "../platform/bluez/mod.ts",
      "esbuild",
    ]);
    assert.deepEqual(got.map((v) => v.specifier), [
      "../_transports.ts",
      "../core/proto/openharmony/dissect.ts",
      "../platform/bluez/mod.ts",
      "esbuild",
    ]);
    assert.match(got[0].rule, /cli\/ imports only cli\/, the public modules/);
  });

  it("refuses jsr: everywhere, tests included, and leaves other test imports alone", () => {
    assert.equal(checkFile("core/x_test.ts", ["jsr:@std/assert"]).length, 1);
    assert.equal(checkFile("core/x_test.ts", ["node:test", "../../wasm/mod.ts"]).length, 0);
    assert.equal(checkFile("mod.ts", ["./wasm/mod.ts", "./platform/host.ts"]).length, 0);
  });
});

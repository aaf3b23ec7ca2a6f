// The npm package as npm packs it and as a user installs it (dist/npm, built
// by scripts/build_npm.ts before `node --test` runs this): what `npm pack`
// ships, `import` and `require()` by the package's name, and its types seen
// by TypeScript. Run by `node --test` only.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const ROOT = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");
const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8"));
const deno = JSON.parse(readFileSync(join(ROOT, "deno.json"), "utf8"));
const LIMIT = 60_000;

/** Run node in `cwd` with a script; its stdout, stderr and status. */
function node(cwd, args) {
  const r = spawnSync(process.execPath, args, { cwd, encoding: "utf8", timeout: LIMIT });
  return { out: r.stdout, err: r.stderr, status: r.status };
}

describe("npm pack", { timeout: LIMIT }, () => {
  let files;
  before(() => {
    // The package is built already; --ignore-scripts skips prepack's rebuild.
    const json = execFileSync("npm", ["pack", "--dry-run", "--json", "--ignore-scripts"], {
      cwd: ROOT,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    });
    files = new Map(JSON.parse(json)[0].files.map((f) => [f.path, f]));
  });

  it("ships every export's bundle, CommonJS entry and types, the command, README and LICENSE", () => {
    const wanted = ["package.json", "README.md", "LICENSE", pkg.types, pkg.bin.linkweave];
    for (const entry of Object.values(pkg.exports)) wanted.push(...Object.values(entry));
    for (const path of wanted) {
      assert.ok(files.has(path.replace(/^\.\//, "")), `"${path}" is not in the package`);
    }
    assert.equal(Object.keys(pkg.exports).length, Object.keys(deno.exports).length);
  });

  it("the command is executable and starts with a shebang", () => {
    const bin = files.get(pkg.bin.linkweave);
    assert.equal(bin.mode & 0o111, 0o111, `mode ${bin.mode.toString(8)}`);
    assert.match(readFileSync(join(ROOT, pkg.bin.linkweave), "utf8"), /^#!\/usr\/bin\/env node\n/);
  });

  it("ships no tests, no sources, no wasm sources, no state and no native code", () => {
    const allowed = [
      /^(package\.json|README\.md|LICENSE)$/,
      /^docs\/[a-z0-9-]+\.(md|svg|png)$/,
      /^dist\/npm\/([a-z_]+\/)?[a-z_]+\.(mjs|cjs)$/,
      /^dist\/npm\/chunks\/[A-Za-z0-9_-]+\.mjs$/,
      /^dist\/npm\/types\/[a-z0-9_/]+\.d\.ts$/,
    ];
    // Test files, wasm sources and builds, native addons, benchmark results,
    // and a device's state (identity keys, locks, the state directory).
    const forbidden =
      /(^|\/)(tests?|assembly|build|results|\.test-results|node-tests|state|\.local)\/|_test\.|_bench\.|\.wasm$|\.node$|binding\.gyp|\.lock$|\.key$|\.pem$/;
    for (const path of files.keys()) {
      assert.ok(allowed.some((re) => re.test(path)), `unexpected file "${path}"`);
      assert.doesNotMatch(path, forbidden);
    }
  });

  it("installs nothing native: no install scripts, no dependencies", () => {
    for (const hook of ["preinstall", "install", "postinstall"]) {
      assert.equal(pkg.scripts[hook], undefined, hook);
    }
    assert.equal(pkg.dependencies, undefined);
    assert.equal(pkg.gypfile, undefined);
    assert.match(pkg.scripts.prepack, /build:npm/);
    assert.equal(pkg.engines.node, ">=20");
  });
});

describe("the package installed by name", { timeout: LIMIT }, () => {
  let dir;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "pkg-npm-"));
    mkdirSync(join(dir, "node_modules"));
    symlinkSync(ROOT, join(dir, "node_modules", "linkweave"), "dir");
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("every export imports by its name", () => {
    const names = Object.keys(pkg.exports).map((k) =>
      k === "." ? "linkweave" : `linkweave/${k.slice(2)}`
    );
    const script = `for (const n of ${JSON.stringify(names)}) {
      const m = await import(n);
      if (Object.keys(m).length === 0) throw new Error(n + " is empty");
    }
    console.log("imported " + ${names.length});`;
    const r = node(dir, ["--input-type=module", "-e", script]);
    assert.equal(r.status, 0, r.err);
    assert.match(r.out, new RegExp(`imported ${names.length}`));
  });

  it("require() gets the very module import gets (Node 20.19 and later)", () => {
    const script = `const cjs = require("linkweave/link-enhance");
      const root = require("linkweave");
      import("linkweave/link-enhance").then((esm) => {
        console.log(esm.createServer === cjs.createServer, typeof root.BusinessError);
      });`;
    const r = node(dir, ["--input-type=commonjs", "-e", script]);
    assert.equal(r.status, 0, r.err);
    assert.equal(r.out.trim(), "true function");
  });

  it("require() where the runtime cannot load an ES module says what to do", () => {
    const r = node(dir, ["--no-experimental-require-module", "-e", 'require("linkweave/socket")']);
    assert.notEqual(r.status, 0);
    assert.match(r.err, /Cannot require "linkweave\/socket": it is an ES module/);
    assert.match(r.err, /await import\("linkweave\/socket"\)/);
  });

  it("TypeScript finds the types of every export, for ES modules and CommonJS", () => {
    writeFileSync(
      join(dir, "use.mts"),
      `import { BusinessError, linkEnhance, socket } from "linkweave";
import { createConnection } from "linkweave/link-enhance";
import type { TCPSocket } from "linkweave/socket";
const c: linkEnhance.Connection = createConnection("00:11:22:33:44:55", "demo");
const t: TCPSocket = socket.constructTCPSocketInstance();
const e: number = new BusinessError(401).code;
// @ts-expect-error: sendData takes an ArrayBuffer
c.sendData("text");
export { e, t };
`,
    );
    writeFileSync(
      join(dir, "use.cts"),
      `import lw = require("linkweave");
const n: number = lw.ErrorCode.CONNECT_TIMEOUT;
export = n;
`,
    );
    const tsc = join(ROOT, "node_modules", ".bin", "tsc");
    const r = spawnSync(tsc, [
      "--noEmit",
      "--strict",
      "--skipLibCheck",
      "--module",
      "nodenext",
      "--moduleResolution",
      "nodenext",
      "--target",
      "es2022",
      "--lib",
      "es2024,esnext.disposable,dom",
      "--types",
      "node",
      "--typeRoots",
      join(ROOT, "node_modules", "@types"),
      join(dir, "use.mts"),
      join(dir, "use.cts"),
    ], { cwd: dir, encoding: "utf8", timeout: LIMIT });
    assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
  });
});

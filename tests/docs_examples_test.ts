/**
 * Every `@example` of the public modules, and every `ts` snippet of the
 * README, runs as a program of its own and exits by itself: a documented example that leaves the process hanging
 * (a device never closed, a hold never released) is a bug a new user hits
 * first. `deno test --doc` runs the same examples inside the test runner,
 * where a hanging handle goes unnoticed.
 *
 * @module
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { start } from "./_script.ts";
import * as root from "../mod.ts";
import * as linkEnhance from "../link_enhance.ts";
import * as socket from "../socket.ts";
import * as device from "../device.ts";
import * as abilityConnectionManager from "../ability_connection_manager.ts";
import * as distributedDeviceManager from "../distributed_device_manager.ts";
import * as image from "../image.ts";

/** The public modules and what each exports. */
const MODULES: Record<string, Record<string, unknown>> = {
  "mod.ts": root,
  "link_enhance.ts": linkEnhance,
  "socket.ts": socket,
  "device.ts": device,
  "ability_connection_manager.ts": abilityConnectionManager,
  "distributed_device_manager.ts": distributedDeviceManager,
  "image.ts": image,
};
const DIR = ".test-results/doc-examples";
const EXIT_MS = 20_000;

/** The `ts` code blocks of a module's JSDoc. */
function examples(source: string): string[] {
  const out: string[] = [];
  const re = /^\s*\* ```ts\n([\s\S]*?)^\s*\* ```/gm;
  for (const m of source.matchAll(re)) {
    out.push(m[1].split("\n").map((l) => l.replace(/^\s*\*( |$)/, "")).join("\n"));
  }
  return out;
}

/** Run a program; it must exit with 0 within `EXIT_MS`. */
async function runs(file: string, env: Record<string, string>): Promise<string> {
  const child = start(file, env);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const code = await Promise.race([
    child.exited,
    new Promise<string>((r) => timer = setTimeout(() => r("still running"), EXIT_MS)),
  ]);
  clearTimeout(timer);
  child.kill();
  assert.equal(code, 0, `${file} ${code}\nstdout: ${child.out}\nstderr: ${child.err}`);
  return child.out;
}

describe("the README's snippets run as written and exit", () => {
  const readme = readFileSync(join(process.cwd(), "README.md"), "utf8");
  const snippets = [...readme.matchAll(/^```ts\n([\s\S]*?)^```/gm)].map((m) => m[1]);
  it("there are snippets", () => assert.ok(snippets.length >= 2));
  snippets.forEach((code, i) => {
    it(`README snippet ${i + 1}`, { timeout: EXIT_MS + 10_000 }, async () => {
      mkdirSync(join(process.cwd(), DIR), { recursive: true });
      const file = `${DIR}/readme_${i + 1}.ts`;
      // Only the import changes, as for a user: the package's name becomes its source.
      writeFileSync(
        join(process.cwd(), file),
        code.replace(/from "(@linkweave\/linkweave|linkweave)"/g, 'from "../../mod.ts"'),
      );
      // A fresh user: own state and runtime directories, nothing else configured.
      const home = join(process.cwd(), DIR, `readme_${i + 1}_home`);
      rmSync(home, { recursive: true, force: true });
      mkdirSync(join(home, "run"), { recursive: true, mode: 0o700 });
      const env: Record<string, string> = {
        XDG_STATE_HOME: join(home, "state"),
        XDG_RUNTIME_DIR: join(home, "run"),
      };
      const out = await runs(file, env);
      // What the snippet's comments say it prints, it prints.
      for (const [, said] of code.matchAll(/console\.log\(.*\/\/ (.+)$/gm)) {
        assert.match(out, new RegExp(`^${said.trim()}$`, "m"), `snippet ${i + 1} output:\n${out}`);
      }
    });
  });
});

describe("documented examples run as programs and exit", () => {
  mkdirSync(join(process.cwd(), DIR), { recursive: true });
  for (const [module, exports] of Object.entries(MODULES)) {
    const source = readFileSync(join(process.cwd(), module), "utf8");
    examples(source).forEach((code, i) => {
      it(`${module} example ${i + 1}`, { timeout: EXIT_MS + 10_000 }, async () => {
        const exported = Object.keys(exports);
        const used = exported.filter((name) => new RegExp(`\\b${name}\\b`).test(code));
        const file = `${DIR}/${module.replace(/\.ts$/, "")}_${i + 1}.ts`;
        const header = used.length > 0
          ? `import { ${used.join(", ")} } from "../../${module}";\n`
          : "";
        const body = code.replace(/from "\.\/([^"]+)"/g, 'from "../../$1"');
        writeFileSync(join(process.cwd(), file), `${header}${body}\n`);
        const child = start(file, { LINKWEAVE_DISCOVERY: "off" });
        let timer: ReturnType<typeof setTimeout> | undefined;
        const code_ = await Promise.race([
          child.exited,
          new Promise<string>((r) => timer = setTimeout(() => r("still running"), EXIT_MS)),
        ]);
        clearTimeout(timer);
        child.kill();
        assert.equal(code_, 0, `${file} ${code_}\nstdout: ${child.out}\nstderr: ${child.err}`);
      });
    });
  }
});

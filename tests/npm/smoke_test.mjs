// Smoke test of the npm bundle (dist/npm, built by scripts/build_npm.ts), run
// by `node --test` the way an npm user would import it.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";

const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8"));
const load = (key) => import(new URL(`../../${pkg.exports[key].import}`, import.meta.url).href);

describe("npm bundle", () => {
  it("every export in package.json loads and has its types", async () => {
    for (const [key, entry] of Object.entries(pkg.exports)) {
      const mod = await load(key);
      assert.ok(Object.keys(mod).length > 0, `export "${key}" is empty`);
      assert.ok(readFileSync(new URL(`../../${entry.types}`, import.meta.url), "utf8").length > 0);
    }
  });

  it("the root export throws BusinessError with numeric codes", async () => {
    const { BusinessError, ErrorCode } = await load(".");
    const err = new BusinessError(ErrorCode.CONNECTION_NOT_READY);
    assert.equal(err.code, 32390205);
    assert.equal(err.message, "Connection is not ready");
  });
});

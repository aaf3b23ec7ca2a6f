/**
 * Every command `linkweave --help` lists, as a process: `--help` and `-h` print its usage
 * on stdout and exit 0; an unknown option is wrong usage (exit 2, saying
 * which); so are an unknown command and no command at all.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { run } from "./_cli.ts";

describe("linkweave --help and wrong usage, as processes", () => {
  it("lists every command; no command is exit 2, an unknown one too", async () => {
    const [help, none, unknown] = await Promise.all([
      run(["--help"]),
      run([]),
      run(["nosuch"]),
    ]);
    assert.equal(help.code, 0);
    assert.deepEqual(commands(help.out).slice(0, 3), ["devices", "serve", "connect"]);
    assert.equal(none.code, 2);
    assert.match(none.err, /Usage: linkweave <command>/);
    assert.equal(unknown.code, 2);
    assert.match(unknown.err, /unknown command "nosuch"/);
  });

  it("every command: --help and -h exit 0 with its usage; an unknown option exits 2", async () => {
    const names = commands((await run(["--help"])).out);
    assert.ok(names.length >= 11, names.join(" "));
    for (const name of names) {
      const [long, short, bad] = await Promise.all([
        run([name, "--help"]),
        run([name, "-h"]),
        run([name, "--no-such-option"]),
      ]);
      assert.equal(long.code, 0, `${name}: ${long.err}`);
      assert.match(long.out, new RegExp(`^Usage: linkweave ${name}\\b`));
      assert.match(long.out, /Exit codes/, name);
      assert.equal(short.code, 0, `${name} -h: ${short.err}`);
      assert.equal(short.out, long.out, `${name} -h: ${short.err}`);
      assert.equal(bad.code, 2, `${name}: ${bad.err}`);
      assert.match(bad.err, /--no-such-option/, name);
    }
  });
});

/** The command names `linkweave --help` lists. */
function commands(help: string): string[] {
  const list = help.split("Commands:\n")[1].split("\n\n")[0];
  return list.split("\n").map((l) => l.trim().split(" ")[0]);
}

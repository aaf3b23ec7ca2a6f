import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MAX_MANIFEST_ENTRIES, parseManifest } from "./manifest.ts";

const entry = {
  bundleName: "com.example.b",
  moduleName: "entry",
  abilityName: "EntryAbility",
  command: "/bin/true",
};
const parse = (doc: unknown) => parseManifest(JSON.stringify(doc), "m.json");

describe("device daemon manifest", () => {
  it("an entry's optional fields take their defaults; given ones are kept", () => {
    const m = parse({
      abilities: [entry, {
        ...entry,
        abilityName: "Other",
        args: ["-x"],
        cwd: "w",
        env: { A: "1" },
        startOptions: "START_IN_BACKGROUND",
        log: "l",
      }],
    });
    assert.deepEqual(m.abilities[0], { ...entry, args: [], env: {} });
    assert.deepEqual(m.abilities[1], {
      ...entry,
      abilityName: "Other",
      args: ["-x"],
      cwd: "w",
      env: { A: "1" },
      startOptions: "START_IN_BACKGROUND",
      log: "l",
    });
  });

  it("a wrong file names the file, the entry and the field", () => {
    const cases: [unknown, RegExp][] = [
      [{}, /"m.json": expected an object with "abilities"/],
      [{ abilities: [1] }, /ability 0: expected an object/],
      [
        { abilities: [{ ...entry, command: "" }] },
        /ability 0: "command" must be a non-empty string/,
      ],
      [{ abilities: [{ ...entry, bundleName: 7 }] }, /"bundleName" must be a non-empty string/],
      [{ abilities: [{ ...entry, args: [1] }] }, /"args" must be an array of strings/],
      [{ abilities: [{ ...entry, env: { A: 1 } }] }, /"env" must be an object of strings/],
      [{ abilities: [{ ...entry, startOptions: "NOW" }] }, /"startOptions" must be/],
      [
        { abilities: [entry, entry] },
        /ability 1: com.example.b\/entry\/EntryAbility is listed twice/,
      ],
      [
        { abilities: Array.from({ length: MAX_MANIFEST_ENTRIES + 1 }, () => entry) },
        /1025 abilities, over 1024/,
      ],
    ];
    for (const [doc, re] of cases) assert.throws(() => parse(doc), re, JSON.stringify(doc));
    assert.throws(() => parseManifest("{", "m.json"), /"m.json": not JSON/);
  });
});

/**
 * The JPEG codec of images between devices (`wasm/image.ts`): its error
 * bound, its size on a 1080p photo-like image, odd sizes, hostile input,
 * and agreement with libjpeg-turbo both ways (that part needs `djpeg` and
 * `cjpeg`: `apt-get install -y libjpeg-turbo-progs`).
 *
 * The error bound the tests hold the codec to (and `docs/ability-connection.md`
 * states): on the 320x240 photo-like test image, PSNR of at least 29 dB at
 * quality 30 (OpenHarmony's default) and 37 dB at quality 100 (4:2:0 chroma
 * subsampling bounds what any quality can give at sharp colour edges).
 *
 * @module
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { createImageCodec } from "../../wasm/image.ts";
import { describeWith } from "../harness/env.ts";
import { photo, psnr } from "./_images.ts";

const codec = createImageCodec();

describe("the JPEG codec", () => {
  it("round-trips within its error bound: 29 dB at quality 30, 37 dB at 100", () => {
    const { width, height, rgba } = photo(320, 240);
    for (const [q, min] of [[30, 29], [100, 37]]) {
      const back = codec.decodeJpeg(codec.encodeJpeg(rgba, width, height, q), 1 << 20);
      assert.equal(back.width, width);
      assert.equal(back.height, height);
      const db = psnr(rgba, back.rgba);
      assert.ok(db >= min, `quality ${q}: ${db.toFixed(1)} dB`);
      for (let i = 3; i < back.rgba.length; i += 4) assert.equal(back.rgba[i], 255);
    }
  });

  it("makes a 1920x1080 photo-like image at least 3 times smaller than raw RGB", () => {
    const { width, height, rgba } = photo(1920, 1080);
    const jpeg = codec.encodeJpeg(rgba, width, height, 30);
    const raw = width * height * 3;
    assert.ok(raw / jpeg.length >= 3, `${jpeg.length} bytes, ${(raw / jpeg.length).toFixed(1)}x`);
    const better = codec.encodeJpeg(rgba, width, height, 90);
    assert.ok(better.length > jpeg.length, "a higher quality costs more bytes");
  });

  it("handles sizes that are not multiples of the block size", () => {
    for (const [w, h] of [[1, 1], [17, 9], [33, 65], [7, 300]]) {
      const { rgba } = photo(w, h, w * h);
      const back = codec.decodeJpeg(codec.encodeJpeg(rgba, w, h, 95), 1 << 20);
      assert.deepEqual([back.width, back.height], [w, h]);
      assert.ok(psnr(rgba, back.rgba) > 22, `${w}x${h}: ${psnr(rgba, back.rgba).toFixed(1)} dB`);
    }
  });

  it("refuses hostile input with an error, never a crash or a read outside it", () => {
    const { width, height, rgba } = photo(64, 48);
    const good = codec.encodeJpeg(rgba, width, height, 50);
    let decoded = 0;
    let refused = 0;
    const attempt = (bytes: Uint8Array) => {
      try {
        const r = codec.decodeJpeg(bytes, 1 << 20);
        assert.equal(r.rgba.length, r.width * r.height * 4);
        decoded++;
      } catch (e) {
        assert.match((e as Error).message, /^Cannot decode the image: /);
        refused++;
      }
    };
    for (let n = 0; n < good.length; n += 7) attempt(good.subarray(0, n));
    let s = 12345;
    for (let i = 0; i < 300; i++) {
      const bad = good.slice();
      for (let k = 0; k < 4; k++) {
        s = (s * 1103515245 + 12345) >>> 0;
        bad[s % bad.length] = s >>> 24;
      }
      attempt(bad);
    }
    for (let i = 0; i < 50; i++) {
      const junk = new Uint8Array(200 + i);
      for (let k = 0; k < junk.length; k++) junk[k] = (k * 131 + i * 17) & 255;
      junk[0] = 0xff;
      junk[1] = 0xd8;
      attempt(junk);
    }
    assert.ok(refused > 0 && decoded > 0, `${decoded} decoded, ${refused} refused`);
    // A frame claiming 60000 x 60000 pixels is refused before anything is allocated.
    const huge = good.slice();
    const sof = huge.findIndex((b, i) => b === 0xff && huge[i + 1] === 0xc0);
    huge[sof + 5] = 0xea;
    huge[sof + 6] = 0x60;
    huge[sof + 7] = 0xea;
    huge[sof + 8] = 0x60;
    assert.throws(() => codec.decodeJpeg(huge, 1 << 24), /too large/);
  });
});

function run(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")}: ${r.stderr}`);
}

function readPpm(path: string): { width: number; height: number; rgba: Uint8Array } {
  const b = readFileSync(path);
  const fields: string[] = [];
  let off = 0;
  while (fields.length < 4) {
    let f = "";
    while (b[off] !== 0x20 && b[off] !== 0x0a) f += String.fromCharCode(b[off++]);
    off++;
    if (f !== "") fields.push(f);
  }
  const [kind, w, h] = fields;
  const width = Number(w);
  const height = Number(h);
  const channels = kind === "P5" ? 1 : 3;
  const rgba = new Uint8Array(width * height * 4);
  for (let i = 0; i < width * height; i++) {
    for (let k = 0; k < 3; k++) rgba[i * 4 + k] = b[off + i * channels + (channels === 1 ? 0 : k)];
    rgba[i * 4 + 3] = 255;
  }
  return { width, height, rgba };
}

function maxDiff(a: Uint8Array, b: Uint8Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describeWith("the JPEG codec and libjpeg-turbo agree", {
  commands: { djpeg: "libjpeg-turbo-progs", cjpeg: "libjpeg-turbo-progs" },
}, () => {
  const dir = mkdtempSync(join(tmpdir(), "ab-jpeg-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("djpeg decodes our JPEG as our decoder does", () => {
    const { width, height, rgba } = photo(200, 120);
    const jpeg = codec.encodeJpeg(rgba, width, height, 30);
    writeFileSync(join(dir, "ours.jpg"), jpeg);
    run("djpeg", [
      "-dct",
      "float",
      "-ppm",
      "-outfile",
      join(dir, "ours.ppm"),
      join(dir, "ours.jpg"),
    ]);
    const theirs = readPpm(join(dir, "ours.ppm"));
    const mine = codec.decodeJpeg(jpeg, 1 << 20);
    assert.deepEqual([theirs.width, theirs.height], [width, height]);
    assert.ok(maxDiff(theirs.rgba, mine.rgba) <= 3, `differ by ${maxDiff(theirs.rgba, mine.rgba)}`);
  });

  it("our decoder reads cjpeg's JPEGs (4:2:0, 4:2:2, 4:4:4, gray, restart markers)", () => {
    const { width, height, rgba } = photo(150, 97);
    const ppm = new Uint8Array(width * height * 3);
    for (let i = 0; i < width * height; i++) ppm.set(rgba.subarray(i * 4, i * 4 + 3), i * 3);
    const header = new TextEncoder().encode(`P6\n${width} ${height}\n255\n`);
    const src = join(dir, "src.ppm");
    writeFileSync(src, new Uint8Array([...header, ...ppm]));
    const variants: string[][] = [
      ["-quality", "30"],
      ["-quality", "85", "-sample", "2x1"],
      ["-quality", "90", "-sample", "1x1"],
      ["-quality", "75", "-grayscale"],
      ["-quality", "60", "-restart", "3"],
      ["-quality", "60", "-optimize"],
    ];
    for (const v of variants) {
      const jpg = join(dir, "theirs.jpg");
      const out = join(dir, "theirs.ppm");
      run("cjpeg", [...v, "-outfile", jpg, src]);
      run("djpeg", ["-dct", "float", "-ppm", "-outfile", out, jpg]);
      const theirs = readPpm(out);
      const mine = codec.decodeJpeg(new Uint8Array(readFileSync(jpg)), 1 << 20);
      assert.deepEqual([mine.width, mine.height], [width, height], v.join(" "));
      const d = maxDiff(theirs.rgba, mine.rgba);
      assert.ok(d <= 3, `${v.join(" ")}: differ by ${d}`);
    }
  });
});

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { BusinessError } from "../core/errors.ts";
import {
  ACCEPT_BACKOFF_MAX,
  ACCEPT_BACKOFF_MIN,
  ACCEPT_UNKNOWN_LIMIT,
  AcceptLoop,
  AcceptRetry,
} from "./_accept.ts";

const errno = (n: number) => new BusinessError(2301000 + n);
const ENOTCONN = errno(107);
const ECONNRESET = errno(104);
const ECONNABORTED = errno(103);
const EMFILE = errno(24);
const EBADF = errno(9);

describe("AcceptRetry", () => {
  it("skips a client's failure at once, however often", () => {
    const retry = new AcceptRetry();
    for (let i = 0; i < 1000; i++) {
      for (const e of [ENOTCONN, ECONNRESET, ECONNABORTED, errno(71), errno(4), errno(11)]) {
        assert.equal(retry.failed(e), 0, `errno ${e.code - 2301000}`);
      }
    }
  });

  it("backs off from running out of descriptors or memory, doubling to a cap, never dying", () => {
    const retry = new AcceptRetry();
    const delays: number[] = [];
    for (let i = 0; i < 100; i++) {
      delays.push(retry.failed([EMFILE, errno(23), errno(105), errno(12)][i % 4])!);
    }
    assert.deepEqual(delays.slice(0, 8), [10, 20, 40, 80, 160, 320, 640, 1000]);
    assert.ok(delays.every((d) => d >= ACCEPT_BACKOFF_MIN && d <= ACCEPT_BACKOFF_MAX));
    retry.succeeded();
    assert.equal(retry.failed(EMFILE), ACCEPT_BACKOFF_MIN);
  });

  it("ends the listener when its own socket failed", () => {
    for (const n of [9, 14, 22, 88]) assert.equal(new AcceptRetry().failed(errno(n)), undefined);
  });

  it("backs off from unknown failures and ends the listener after too many in a row", () => {
    const retry = new AcceptRetry();
    const unknown = new BusinessError(2300002);
    for (let i = 1; i < ACCEPT_UNKNOWN_LIMIT; i++) assert.ok(retry.failed(unknown)! > 0);
    retry.succeeded();
    for (let i = 1; i < ACCEPT_UNKNOWN_LIMIT; i++) assert.ok(retry.failed(unknown)! > 0);
    assert.equal(retry.failed(unknown), undefined);
  });
});

/** An `accept` that plays a script: numbers are connections, errors are thrown; then it waits. */
function scripted(
  script: Array<number | BusinessError>,
): { accept(): Promise<number>; calls: number } {
  const s = {
    calls: 0,
    accept(): Promise<number> {
      s.calls++;
      const next = script.shift();
      if (next === undefined) return new Promise(() => {});
      return next instanceof BusinessError ? Promise.reject(next) : Promise.resolve(next);
    },
  };
  return s;
}

describe("AcceptLoop", () => {
  it("accepts past reset clients and a shortage, then reports a dead socket once and stops", async () => {
    const src = scripted([ENOTCONN, 1, ECONNRESET, ECONNABORTED, EMFILE, EMFILE, 2, EBADF, 3]);
    const got: number[] = [];
    const died: BusinessError<unknown>[] = [];
    const loop = new AcceptLoop<number>({
      accept: () => src.accept(),
      onConnection: (n) => got.push(n),
      toError: (e) => e as BusinessError,
      onDied: (e) => died.push(e),
    });
    await loop.done;
    assert.deepEqual(got, [1, 2]);
    assert.deepEqual(died, [EBADF]);
    assert.equal(src.calls, 8); // nothing accepted after the socket died
  });

  it("stop() ends a back-off at once and reports nothing", async () => {
    const src = scripted(Array(20).fill(EMFILE));
    const died: unknown[] = [];
    const loop = new AcceptLoop<number>({
      accept: () => src.accept(),
      onConnection: () => assert.fail("no connection"),
      toError: (e) => e as BusinessError,
      onDied: (e) => died.push(e),
    });
    loop.unref();
    await new Promise((r) => setTimeout(r, 100)); // a few back-offs: 10, 20, 40 ms
    const calls = src.calls;
    assert.ok(calls >= 2 && calls < 20, `${calls} accepts`);
    loop.stop();
    // Ended without waiting for any timer: before a 0 ms timeout fires.
    const first = await Promise.race([
      loop.done.then(() => "done"),
      new Promise((r) => setTimeout(() => r("timer"), 0)),
    ]);
    assert.equal(first, "done");
    assert.equal(src.calls, calls);
    assert.deepEqual(died, []);
  });

  it("a failure after stop() is not a death", async () => {
    let fail: (e: unknown) => void = () => {};
    const died: unknown[] = [];
    const loop = new AcceptLoop<number>({
      accept: () => new Promise((_, reject) => (fail = reject)),
      onConnection: () => {},
      toError: (e) => e as BusinessError,
      onDied: (e) => died.push(e),
    });
    loop.stop();
    fail(EBADF); // what closing the socket does to the pending accept
    await loop.done;
    assert.deepEqual(died, []);
  });
});

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Emitter } from "./emitter.ts";

type Events = { data: number; close: undefined };

describe("Emitter", () => {
  it("on() calls listeners in registration order, several per type", () => {
    const e = new Emitter<Events>();
    const calls: string[] = [];
    e.on("data", (n) => calls.push(`a${n}`));
    e.on("data", (n) => calls.push(`b${n}`));
    assert.equal(e.emit("data", 1), true);
    assert.deepEqual(calls, ["a1", "b1"]);
    assert.equal(e.emit("close", undefined), false);
  });

  it("off(type, cb) removes that one listener only", () => {
    const e = new Emitter<Events>();
    const calls: string[] = [];
    const a = () => calls.push("a");
    const b = () => calls.push("b");
    e.on("data", a);
    e.on("data", b);
    e.off("data", a);
    e.emit("data", 0);
    assert.deepEqual(calls, ["b"]);
    e.off("data", a); // removing twice is harmless
    assert.equal(e.listenerCount("data"), 1);
  });

  it("off(type) without a callback removes every listener of that type", () => {
    const e = new Emitter<Events>();
    let n = 0;
    e.on("data", () => n++);
    e.on("data", () => n++);
    e.on("close", () => n += 10);
    e.off("data");
    e.emit("data", 0);
    e.emit("close", undefined);
    assert.equal(n, 10);
  });

  it("on() with once removes the listener after the first call", () => {
    const e = new Emitter<Events>();
    let n = 0;
    e.on("data", () => n++, { once: true });
    e.emit("data", 0);
    e.emit("data", 0);
    assert.equal(n, 1);
    assert.equal(e.listenerCount("data"), 0);
  });

  it("on() with a signal removes the listener on abort, and ignores an aborted one", () => {
    const e = new Emitter<Events>();
    const ac = new AbortController();
    let n = 0;
    e.on("data", () => n++, { signal: ac.signal });
    e.emit("data", 0);
    ac.abort();
    e.emit("data", 0);
    e.on("data", () => n++, { signal: ac.signal });
    e.emit("data", 0);
    assert.equal(n, 1);
    assert.equal(e.listenerCount("data"), 0);
  });

  it("a throwing listener does not stop the others and its error is reported", () => {
    const errors: unknown[] = [];
    const e = new Emitter<Events>({ onListenerError: (err) => errors.push(err) });
    const calls: number[] = [];
    e.on("data", () => {
      throw new Error("boom");
    });
    e.on("data", (n) => calls.push(n));
    e.emit("data", 7);
    assert.deepEqual(calls, [7]);
    assert.equal(errors.length, 1);
    assert.equal((errors[0] as Error).message, "boom");
  });

  it("listeners added or removed during emit do not change the current dispatch", () => {
    const e = new Emitter<Events>();
    const calls: string[] = [];
    const late = () => calls.push("late");
    const b = () => calls.push("b");
    e.on("data", () => {
      calls.push("a");
      e.on("data", late);
      e.off("data", b);
    });
    e.on("data", b);
    e.emit("data", 0);
    assert.deepEqual(calls, ["a", "b"]);
  });

  it("clear() removes everything", () => {
    const e = new Emitter<Events>();
    e.on("data", () => {});
    e.on("close", () => {});
    e.clear();
    assert.equal(e.listenerCount("data") + e.listenerCount("close"), 0);
  });
});

describe("Emitter with { single: true }", () => {
  it("on() replaces the listener of that type and leaves other types alone", () => {
    const e = new Emitter<Events>({ single: true });
    const calls: string[] = [];
    e.on("data", (n) => calls.push(`a${n}`));
    e.on("data", (n) => calls.push(`b${n}`));
    e.on("close", () => calls.push("close"));
    e.emit("data", 1);
    e.emit("close", undefined);
    assert.deepEqual(calls, ["b1", "close"]);
    assert.equal(e.listenerCount("data"), 1);
  });

  it("the same function registered twice is called once", () => {
    const e = new Emitter<Events>({ single: true });
    let n = 0;
    const cb = () => n++;
    e.on("data", cb);
    e.on("data", cb);
    e.emit("data", 0);
    assert.equal(n, 1);
  });

  it("off(type, cb) removes the listener only when cb is it; off(type) always", () => {
    const e = new Emitter<Events>({ single: true });
    let n = 0;
    const cb = () => n++;
    e.on("data", cb);
    e.off("data", () => {});
    e.emit("data", 0);
    assert.equal(n, 1);
    e.off("data", cb);
    e.emit("data", 0);
    assert.equal(n, 1);
    e.on("data", cb);
    e.off("data");
    e.emit("data", 0);
    assert.equal(n, 1);
  });

  it("a replaced listener's signal no longer matters, and once still applies", () => {
    const e = new Emitter<Events>({ single: true });
    const ac = new AbortController();
    const calls: string[] = [];
    e.on("data", () => calls.push("old"), { signal: ac.signal });
    e.on("data", () => calls.push("new"), { once: true });
    ac.abort(); // aborting the replaced listener's signal removes nothing
    e.emit("data", 0);
    e.emit("data", 0);
    assert.deepEqual(calls, ["new"]);
    assert.equal(e.listenerCount("data"), 0);
  });

  it("a listener replaced during emit does not change the current dispatch", () => {
    const e = new Emitter<Events>({ single: true });
    const calls: string[] = [];
    e.on("data", () => {
      calls.push("first");
      e.on("data", () => calls.push("second"));
    });
    e.emit("data", 0);
    e.emit("data", 0);
    assert.deepEqual(calls, ["first", "second"]);
  });
});

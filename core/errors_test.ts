import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { BusinessError, isBusinessError, ParameterError, PlatformError } from "./errors.ts";
import {
  CodecErrorCode,
  codecErrorMessage,
  DisconnectReason,
  ErrorCode,
  errorMessage,
  socketErrorCode,
} from "./error_codes.ts";

describe("error_codes", () => {
  it("ErrorCode holds every code the APIs document", () => {
    const codes = new Set<number>(Object.values(ErrorCode));
    for (
      const c of [
        201,
        202,
        401,
        801,
        32390200,
        32390201,
        32390202,
        32390203,
        32390204,
        32390205,
        32390206,
        32390300,
        32390301,
        32390302,
        32300001,
        32300002,
        32300003,
        32300004,
        2300002,
        2301000,
      ]
    ) assert.ok(codes.has(c), `missing ${c}`);
  });

  it("errorMessage() gives each code its own message without a trailing period", () => {
    const seen = new Set<string>();
    for (const code of Object.values(ErrorCode)) {
      if (code === ErrorCode.SOCKET_ERRNO_BASE) continue;
      const msg = errorMessage(code);
      assert.ok(!msg.startsWith("Unknown"), `no message for ${code}`);
      assert.ok(!msg.endsWith("."), `trailing period in ${JSON.stringify(msg)}`);
      assert.ok(!seen.has(msg), `duplicate message ${JSON.stringify(msg)}`);
      seen.add(msg);
    }
    assert.equal(errorMessage(32390206), "Invalid parameter");
    assert.equal(errorMessage(123), "Unknown error 123");
  });

  it("socketErrorCode() maps errno numbers and names to 2301000 + errno", () => {
    assert.equal(socketErrorCode(98), 2301098);
    assert.equal(socketErrorCode("EADDRINUSE"), 2301098);
    assert.equal(socketErrorCode("ECONNREFUSED"), 2301111);
    assert.equal(socketErrorCode(-111), 2301111);
    assert.equal(socketErrorCode("ENOSUCHTHING"), 2300002);
    assert.equal(socketErrorCode(0), 2300002);
    assert.equal(errorMessage(2301111), "ECONNREFUSED (errno 111)");
    assert.equal(errorMessage(2301555), "System error (errno 555)");
  });

  it("DisconnectReason uses OpenHarmony's softbus numbers", () => {
    const base = -((203 << 21) | (2 << 16) | 0xffff);
    assert.equal(DisconnectReason.LINK_CLOSED, base + 400 + 3);
    assert.equal(DisconnectReason.PEER_DISCONNECTED, base + 400 + 4);
    assert.equal(DisconnectReason.SERVICE_DIED, base + 1);
  });

  it("codecErrorMessage() names every codec code", () => {
    for (const code of Object.values(CodecErrorCode)) {
      assert.ok(!codecErrorMessage(code).startsWith("Unknown"), `no message for ${code}`);
    }
    assert.equal(codecErrorMessage(99), "Unknown codec error 99");
  });
});

describe("errors", () => {
  it("BusinessError carries a numeric code, default message, data and cause", () => {
    const cause = new Error("inner");
    const err = new BusinessError(32390200, undefined, { data: { peer: "x" }, cause });
    assert.equal(err.code, 32390200);
    assert.equal(err.message, "Connect timeout");
    assert.deepEqual(err.data, { peer: "x" });
    assert.equal(err.cause, cause);
    assert.equal(err.name, "BusinessError");
    assert.ok(err instanceof Error);
    assert.ok(!("data" in new BusinessError(201)));
  });

  it("ParameterError is a TypeError with code 401 or a documented code", () => {
    const err = new ParameterError('Invalid port "-1"');
    assert.ok(err instanceof TypeError);
    assert.equal(err.code, 401);
    assert.equal(err.name, "ParameterError");
    assert.equal(new ParameterError("bad name", 32390206).code, 32390206);
  });

  it("PlatformError keeps the native name and cause", () => {
    const native = new Error("boom");
    const err = new PlatformError(2301111, "Cannot connect", {
      data: { platform: "deno", name: "ConnectionRefused" },
      cause: native,
    });
    assert.ok(err instanceof BusinessError);
    assert.equal(err.name, "PlatformError");
    assert.equal(err.data?.name, "ConnectionRefused");
    assert.equal(err.cause, native);
  });

  it("isBusinessError() accepts errors with numeric codes only", () => {
    assert.ok(isBusinessError(new BusinessError(201)));
    assert.ok(isBusinessError(new ParameterError("x")));
    assert.ok(!isBusinessError(Object.assign(new Error("x"), { code: "ECONNREFUSED" })));
    assert.ok(!isBusinessError({ code: 201 }));
    assert.ok(!isBusinessError(undefined));
  });
});

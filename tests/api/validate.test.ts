/**
 * The address checks operators meet: a member URL with or without its
 * scheme (`checkMemberAddress`, for --cluster, RAFT_CLUSTER and --join) and
 * the strict base URL (`checkBaseUrl`, for URLs that are stored), which
 * says what to write when the scheme is missing.
 *
 * @module
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { checkBaseUrl, checkMemberAddress } from "../../src/api/validate.ts";

describe("checkMemberAddress() and checkBaseUrl()", () => {
  it("HOST:PORT without a scheme means http://HOST:PORT", () => {
    assert.deepEqual(checkMemberAddress("localhost:7000"), { ok: true, value: "http://localhost:7000" });
    assert.deepEqual(checkMemberAddress("10.0.0.5:7001"), { ok: true, value: "http://10.0.0.5:7001" });
    assert.deepEqual(checkMemberAddress("[::1]:7000"), { ok: true, value: "http://[::1]:7000" });
  });

  it("a full URL is checked as a base URL", () => {
    assert.deepEqual(checkMemberAddress("https://raft.example:443/"), { ok: true, value: "https://raft.example" });
    assert.deepEqual(checkMemberAddress("http://127.0.0.1:7000"), { ok: true, value: "http://127.0.0.1:7000" });
    assert.equal(checkMemberAddress("http://127.0.0.1:7000/kv").ok, false);
    assert.equal(checkMemberAddress("localhost", "--cluster URL").ok, false);
    assert.equal(checkMemberAddress("ftp://x:21").ok, false);
  });

  it("checkBaseUrl refuses HOST:PORT, saying what to write", () => {
    assert.deepEqual(checkBaseUrl("localhost:7000", "member URL"), { ok: false, error: 'Malformed member URL "localhost:7000": no scheme; write http://localhost:7000' });
  });
});

/**
 * Tests of peer request authentication: signatures, cluster ids, replayed
 * and stale requests, and the bounded replay cache.
 *
 * @module
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  HEADER_CLUSTER,
  HEADER_FROM,
  HEADER_SIG,
  HEADER_TO,
  NonceSource,
  checkRequestHead,
  ReplayCache,
  signRequest,
  timingSafeEqual,
  verifyRequest,
  type VerifyParams,
  type VerifyResult,
} from "../../src/transport/auth.ts";

const SECRET = new TextEncoder().encode("correct horse battery staple");
const NOW = 1_700_000_000_000;
const BODY = new Uint8Array([1, 2, 3, 4]);
const PATH = "/raft/v1/messages";

function sign(over: Partial<Parameters<typeof signRequest>[0]> = {}): Record<string, string> {
  return signRequest({
    secret: SECRET, clusterId: "c1", from: "n1", to: "n2", method: "POST", path: PATH,
    body: BODY, nowMs: NOW, nonce: "abcdefgh-1", ...over,
  });
}

function verify(headers: Record<string, string>, over: Partial<VerifyParams> = {}): VerifyResult {
  return verifyRequest({
    secret: SECRET, clusterId: "c1", nodeId: "n2", method: "POST", path: PATH,
    header: (name) => headers[name] ?? null, body: BODY, nowMs: NOW, clockSkewMsMax: 30_000,
    replayCache: new ReplayCache(30_000, 1000), ...over,
  });
}

describe("auth", () => {
  it("accepts a good signature and names the sender", () => {
    assert.deepStrictEqual(verify(sign()), { ok: true, from: "n1" });
  });

  it("refuses sender and receiver ids that are not member ids, without reading on (a path, a newline, non-ASCII)", () => {
    for (const secret of [SECRET, null]) {
      for (const bad of ["x%2F..%2F..%2Fescaped", "x/../../escaped", "n1%0Aforged", "n%C5%93ud", "", "a".repeat(65)]) {
        const h: Record<string, string> = { ...sign({ secret }), [HEADER_FROM]: bad };
        const r = checkRequestHead({ secret, clusterId: "c1", nodeId: "n2", header: (n) => h[n] ?? null, nowMs: NOW, clockSkewMsMax: 30_000, replayCache: new ReplayCache(30_000, 10) });
        assert.equal(r.ok, false, bad);
        assert.equal(!r.ok && r.status, secret === null ? 400 : 401, bad);
        assert.ok(!r.ok && !r.reason.includes(bad === "" ? "\u0000" : bad), `the reason does not echo ${bad}`);
      }
    }
  });

  it("checks everything but the signature from the head alone, and refuses requests stamped before the process started", () => {
    const cache = new ReplayCache(30_000, 1000, NOW - 1000);
    const head = (h: Record<string, string>) => checkRequestHead({ secret: SECRET, clusterId: "c1", nodeId: "n2", header: (n) => h[n] ?? null, nowMs: NOW, clockSkewMsMax: 30_000, replayCache: cache });
    assert.equal(head(sign()).ok, true);
    // Recorded 2 s before a restart at NOW - 1000, and still inside the skew window: refused anyway.
    const before = head(sign({ nowMs: NOW - 2000 }));
    assert.equal(!before.ok && before.status, 401);
    assert.match(!before.ok ? before.reason : "", /before this member started/);
    assert.equal(verify(sign({ nowMs: NOW - 2000 }), { replayCache: cache }).ok, false);
    // A head check records nothing: only a verified body does, and a seen nonce is then refused by the head.
    assert.equal(verify(sign(), { replayCache: cache }).ok, true);
    const again = head(sign());
    assert.equal(!again.ok && again.status, 401);
  });

  it("refuses a wrong secret with 401", () => {
    const r = verify(sign({ secret: new TextEncoder().encode("wrong") }));
    assert.equal(r.ok, false);
    assert.equal(!r.ok && r.status, 401);
  });

  it("refuses a missing signature, and a tampered body, path, sender or receiver with 401", () => {
    const h = sign();
    const { [HEADER_SIG]: _sig, ...unsigned } = h;
    assert.equal((verify(unsigned) as { status: number }).status, 401);
    assert.equal((verify(h, { body: new Uint8Array([1, 2, 3, 5]) }) as { status: number }).status, 401);
    assert.equal((verify(h, { path: "/raft/v1/snapshot/chunk?id=x&offset=0" }) as { status: number }).status, 401);
    assert.equal((verify({ ...h, [HEADER_FROM]: "n3" }) as { status: number }).status, 401);
    assert.equal((verify({ ...h, [HEADER_TO]: "n3" }, { nodeId: "n3" }) as { status: number }).status, 401);
  });

  it("refuses a wrong or missing cluster id with 403, with or without a secret", () => {
    for (const secret of [SECRET, null]) {
      const h = sign({ secret, clusterId: "other" });
      assert.equal((verify(h, { secret }) as { status: number }).status, 403);
      const { [HEADER_CLUSTER]: _c, ...noCluster } = sign({ secret });
      assert.equal((verify(noCluster, { secret }) as { status: number }).status, 403);
    }
  });

  it("without a secret checks only the cluster id and ids", () => {
    const h = sign({ secret: null });
    assert.deepStrictEqual(Object.keys(h).sort(), [HEADER_CLUSTER, HEADER_FROM, HEADER_TO].sort());
    assert.deepStrictEqual(verify(h, { secret: null, replayCache: null }), { ok: true, from: "n1" });
    const { [HEADER_FROM]: _f, ...noFrom } = h;
    assert.equal((verify(noFrom, { secret: null }) as { status: number }).status, 400);
  });

  it("refuses a request for another member with 421", () => {
    assert.equal((verify(sign({ to: "n3" })) as { status: number }).status, 421);
  });

  it("refuses a replayed request, and accepts the same request with a fresh nonce", () => {
    const cache = new ReplayCache(30_000, 1000);
    const h = sign();
    assert.equal(verify(h, { replayCache: cache }).ok, true);
    const again = verify(h, { replayCache: cache, nowMs: NOW + 5_000 });
    assert.equal(!again.ok && again.status, 401);
    assert.match(!again.ok ? again.reason : "", /replay/);
    assert.equal(verify(sign({ nonce: "abcdefgh-2" }), { replayCache: cache }).ok, true);
    // The same nonce from another sender is a different request.
    assert.equal(verify(sign({ from: "n3" }), { replayCache: cache }).ok, true);
  });

  it("refuses a stale or future timestamp, so a replay after the window fails too", () => {
    const h = sign();
    const late = verify(h, { nowMs: NOW + 30_001 });
    assert.equal(!late.ok && late.status, 401);
    assert.match(!late.ok ? late.reason : "", /timestamp/);
    assert.equal((verify(h, { nowMs: NOW - 30_001 }) as { status: number }).status, 401);
    assert.equal(verify(h, { nowMs: NOW + 30_000 }).ok, true);
  });

  it("a full replay cache forgets its oldest nonce but refuses its timestamp from then on", () => {
    const cache = new ReplayCache(30_000, 3);
    for (let i = 1; i <= 3; i++) assert.equal(cache.remember("n1", `nonce-${i}`, NOW + i, NOW + 10), true);
    assert.equal(cache.remember("n1", "nonce-4", NOW + 4, NOW + 10), true);
    assert.equal(cache.size, 3);
    // nonce-1 is forgotten, but its timestamp is now below the floor: still refused.
    assert.equal(cache.remember("n1", "nonce-1", NOW + 1, NOW + 10), false);
    assert.equal(cache.remember("n1", "nonce-5", NOW + 5, NOW + 10), true);
    // Entries past the window are dropped without loss of protection.
    assert.equal(cache.remember("n1", "nonce-6", NOW + 40_000, NOW + 40_000), true);
    assert.equal(cache.size, 1);
    assert.equal(cache.remember("n1", "nonce-5", NOW + 5, NOW + 10), false);
  });

  it("nonces from one source never repeat and are well-formed", () => {
    const a = new NonceSource();
    const b = new NonceSource();
    const seen = new Set<string>();
    for (let i = 0; i < 1000; i++) {
      for (const n of [a.next(), b.next()]) {
        assert.match(n, /^[A-Za-z0-9_-]{8,64}$/);
        assert.equal(seen.has(n), false);
        seen.add(n);
      }
    }
  });

  it("timingSafeEqual compares contents and lengths", () => {
    assert.equal(timingSafeEqual(new Uint8Array([1, 2]), new Uint8Array([1, 2])), true);
    assert.equal(timingSafeEqual(new Uint8Array([1, 2]), new Uint8Array([1, 3])), false);
    assert.equal(timingSafeEqual(new Uint8Array([1, 2]), new Uint8Array([1, 2, 3])), false);
  });
});

/**
 * Fuzzes every peer and client route of a real member (a `raft start`
 * process with a cluster secret, on this runtime) with random and mutated
 * valid bodies from senders that may not change anything: unsigned, signed
 * with the client token instead of the secret, signed with the secret but
 * from an id outside the membership (or the member's own), and clients
 * without the token. Every answer must be a 4xx or a closed connection (a
 * 200 only for the read-only routes), never a 5xx; the member must still
 * run, and its term, log, membership and data must be what they were.
 * A failure prints the seed (`FUZZ_SEED=N` replays it) and the case.
 *
 * @module
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import process from "node:process";
import type { Message } from "../../src/raft/types.ts";
import { clientTokenFor } from "../../src/transport/credentials.ts";
import { encodeMessages } from "../../src/transport/codec.ts";
import { peerHeaders } from "../helpers/peer-requests.ts";
import { waitFor } from "../helpers/wait.ts";
import { randomMessage, Rng } from "../transport/_messages.ts";
import { Cluster } from "./cluster-harness.ts";
import type { MemberProcess } from "./cluster-harness.ts";
import { RUNTIME } from "./run-cli.ts";

const SECRET = "fuzz-secret-0123456789abcdef";
const TOKEN = clientTokenFor(new TextEncoder().encode(SECRET));
const SEED = Number(process.env.FUZZ_SEED ?? 20_261_201);
const CASES = 400;

/** Read-only routes: the only ones that may answer 200 to anyone. */
const READ_ONLY = new Set(["GET /status", "GET /metrics", "GET /raft/v1/info"]);

interface Case {
  readonly what: string;
  readonly method: string;
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body?: Uint8Array;
}

/** Flips a few random bits of `b` (a copy). */
function mutate(rng: Rng, b: Uint8Array): Uint8Array {
  const out = b.slice();
  const n = 1 + rng.int(4);
  for (let i = 0; i < n && out.length > 0; i++) {
    const at = rng.int(out.length);
    out[at] = out[at]! ^ (1 << rng.int(8));
  }
  return out;
}

/** One hostile request. */
function makeCase(rng: Rng, member: { id: string; clusterId: string }): Case {
  const peerPaths = ["/raft/v1/messages", `/raft/v1/snapshot/begin?id=s${rng.int(9)}&bytes=${rng.int(5000)}`, `/raft/v1/snapshot/chunk?id=s${rng.int(9)}&offset=${rng.int(100)}`, `/raft/v1/snapshot/finish?id=s${rng.int(9)}&offset=${rng.int(100)}`, "/raft/v1/join"];
  const clientRoutes: [string, string][] = [["PUT", "/kv/k0"], ["GET", "/kv/k0"], ["DELETE", "/kv/k1"], ["POST", "/kv/k2/cas"], ["POST", "/cluster/members"], ["DELETE", `/cluster/members/${member.id}`], ["POST", "/cluster/transfer"], ["GET", "/status"], ["GET", "/metrics"], ["GET", "/raft/v1/info"]];
  if (rng.int(2) === 0) {
    // A peer route: a valid batch from a sender that may not send, then perhaps mutated, or random bytes.
    const path = rng.pick(peerPaths);
    const sender = rng.pick([`mallory-${rng.int(100)}`, member.id, "evil"]);
    const msgs: Message[] = Array.from({ length: 1 + rng.int(3) }, () => ({ ...randomMessage(rng), from: sender, to: member.id }) as Message);
    let body: Uint8Array;
    try {
      body = encodeMessages(msgs);
    } catch {
      body = new Uint8Array(0);
    }
    const kind = rng.int(3);
    if (kind === 1) body = mutate(rng, body);
    if (kind === 2) body = rng.bytes(rng.int(300));
    const signer = rng.pick(["none", "token", "secret"] as const);
    const headers = signer === "none"
      ? { "x-raft-cluster": member.clusterId, "x-raft-from": sender, "x-raft-to": member.id }
      : peerHeaders({ clusterId: member.clusterId, secret: new TextEncoder().encode(signer === "token" ? TOKEN : SECRET), from: sender, to: member.id }, path, body);
    if (path === "/raft/v1/join") {
      const join = new TextEncoder().encode(JSON.stringify({ id: sender, url: "http://127.0.0.1:1" }));
      return { what: `join as ${sender} (${signer})`, method: "POST", path, headers: signer === "token" ? { authorization: `Bearer ${SECRET}` } : {}, body: kind === 0 ? join : body };
    }
    return { what: `${msgs.map((m) => m.type).join("+")} from ${sender}, ${["valid", "mutated", "random"][kind]}, ${signer}`, method: "POST", path, headers, body };
  }
  // A client route without the token (or with the secret or a wrong one instead).
  const [method, path] = rng.pick(clientRoutes);
  const auth = rng.pick([{}, { authorization: `Bearer ${SECRET}` }, { authorization: "Bearer nope" }, { authorization: `Basic ${TOKEN}` }]);
  const bodyKind = rng.int(3);
  const body = method === "GET" || method === "DELETE" ? undefined
    : bodyKind === 0 ? new TextEncoder().encode(JSON.stringify({ id: "n9", url: "http://127.0.0.1:1", expect: null, value: "fuzz", to: member.id }))
    : bodyKind === 1 ? mutate(rng, new TextEncoder().encode('{"expect":null,"value":"x"}'))
    : rng.bytes(rng.int(500));
  return { what: `${method} ${path} (${JSON.stringify(auth)})`, method, path, headers: { ...auth, "idempotency-key": `fuzz-${rng.int(1e9)}` }, ...(body === undefined ? {} : { body }) };
}

describe(`fuzzing every route of a member on ${RUNTIME} (seed ${SEED})`, () => {
  let c: Cluster;
  let m: MemberProcess;

  before(async () => {
    c = await Cluster.create(["f1"], RUNTIME);
    m = c.member("f1");
    const secretFile = `${c.root}/secret`;
    fs.writeFileSync(secretFile, `${SECRET}\n`, { mode: 0o600 });
    m.start(["--id", "f1", "--data", m.dir, "--listen", `127.0.0.1:${m.port}`, "--bootstrap", "--secret-file", secretFile]);
    await m.ready();
    await c.waitLeader([m]);
  });

  after(async () => {
    await c.destroy();
  });

  it(`${CASES} hostile requests: each a 4xx or a closed connection, no crash, no change`, async () => {
    const auth = { authorization: `Bearer ${TOKEN}` };
    let last = 0;
    for (const k of ["k0", "k1", "k2"]) {
      const res = await fetch(`${m.url}/kv/${k}`, { method: "PUT", body: `v-${k}`, headers: auth });
      assert.equal(res.status, 200);
      last = ((await res.json()) as { index: number }).index;
    }
    // /status is a copy at most a tick old in worker mode: wait for it to show the last write.
    await waitFor("the status to show the last write", async () => ((await (await fetch(`${m.url}/status`)).json()) as { commitIndex: number }).commitIndex >= last);
    const info = (await (await fetch(`${m.url}/raft/v1/info`)).json()) as { clusterId: string; id: string };
    const snapshot = async () => {
      const s = (await (await fetch(`${m.url}/status`)).json()) as Record<string, unknown>;
      const values: string[] = [];
      for (const k of ["k0", "k1", "k2"]) values.push(await (await fetch(`${m.url}/kv/${k}`, { headers: auth })).text());
      return { term: s.term, commitIndex: s.commitIndex, lastIndex: s.lastIndex, members: s.members, values };
    };
    const before = await snapshot();
    const rng = new Rng(SEED);
    for (let i = 0; i < CASES; i++) {
      const k = makeCase(rng, info);
      const context = `FUZZ_SEED=${SEED} case ${i}: ${k.what} -> ${k.method} ${k.path}`;
      let status: number | null;
      try {
        const res = await fetch(m.url + k.path, { method: k.method, headers: k.headers, ...(k.body === undefined ? {} : { body: k.body as Uint8Array<ArrayBuffer> }), signal: AbortSignal.timeout(10_000) });
        await res.arrayBuffer();
        status = res.status;
      } catch (err) {
        if (err instanceof Error && /timed? ?out|TimeoutError|aborted/i.test(`${err.name} ${err.message}`)) throw new Error(`${context}: no answer within 10 s`);
        status = null; // the connection was closed: allowed
      }
      const readOnly = READ_ONLY.has(`${k.method} ${k.path}`);
      assert.ok(status === null || (status >= 400 && status < 500) || (readOnly && status === 200), `${context}: answered ${status}\n${c.diagnostics()}`);
    }
    assert.ok(m.child !== null, `the member stopped (FUZZ_SEED=${SEED})\n${c.diagnostics()}`);
    assert.deepEqual(await snapshot(), before, `state changed under fuzzing (FUZZ_SEED=${SEED})`);
  });
});

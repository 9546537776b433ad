/**
 * Hostile peer RPCs against a real 3-member cluster on loopback (processes,
 * files, SIGKILL), run with a cluster secret and an attacker who holds it
 * where that makes the attack stronger (a stolen key, a forged sender):
 * terms past the limit, strangers and removed members, snapshots from a
 * member that does not lead, a path in a header, bodies larger than
 * declared, snapshot floods, replays across a restart. After the attacks the
 * cluster still has a leader, every acknowledged write, and commits more.
 * A failure prints the members' ports, data directories and stderr.
 *
 * @module
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { runtime } from "../../adapters/mod.ts";
import { clientTokenFor } from "../../src/transport/credentials.ts";
import { encodeMessages } from "../../src/transport/codec.ts";
import { freePorts } from "../helpers/ports.ts";
import { heartbeatWithTerm, peerHeaders, post, postMessages, postPartial, type Signer } from "../helpers/peer-requests.ts";
import type { RuntimeName } from "../helpers/runtimes.ts";
import { waitFor } from "../helpers/wait.ts";
import { Harness } from "./harness.ts";

const RT = runtime.name as RuntimeName;
const SECRET_TEXT = "hostile-peers-secret-0123456789";
const SECRET = new TextEncoder().encode(SECRET_TEXT);
const all = ["a", "b", "c", "d"];

describe(`hostile peer RPCs against a 3-member cluster (${RT})`, () => {
  const h = new Harness("hostile");
  let failed = false;
  after(async () => {
    await h.stop(failed);
  });

  it("refuses every attack before it changes anything; the cluster keeps its leader and every acknowledged write", async () => {
    try {
      // Four members, one of which is removed midway: the attacks end on a 3-member cluster.
      const ports = await freePorts(4);
      const flag = all.map((id, i) => `${id}=http://127.0.0.1:${ports[i]}`).join(",");
      const common = ["--secret", SECRET_TEXT, "--snapshot-idle-ms", "800"];
      await Promise.all(all.map((id, i) => h.start(id, ports[i]!, RT, ["--id", id, "--port", String(ports[i]), "--members", flag, ...common])));
      let leader = await h.leader(all);
      // The member removed in step 6, and the three that stay.
      const gone = all.filter((x) => x !== leader).at(-1)!;
      const ids = all.filter((x) => x !== gone);
      const acked = new Map<string, number>();
      for (let i = 0; i < 20; i++) {
        const { status, json } = await h.call<{ index: number }>(leader, "POST", "/p", `w${i}`);
        assert.equal(status, 200);
        acked.set(`w${i}`, json.index);
      }
      const url = (id: string) => h.members.get(id)!.url;
      const info = (await (await fetch(`${url(leader)}/raft/v1/info`)).json()) as { clusterId: string };
      const st = async (id: string) => (await h.call<{ term: number; leader: { id: string } | null; members: { id: string }[] }>(id, "GET", "/st")).json;
      const term = (await st(leader)).term;
      const follower = ids.find((x) => x !== leader)!;
      // The one who refuses the removed member after a restart, in step 6.
      const other = ids.find((x) => x !== leader && x !== follower)!;
      const as = (from: string, o: Partial<Signer> = {}): Signer => ({ clusterId: info.clusterId, secret: SECRET, from, to: follower, ...o });

      // 1. Terms at the limit, even signed with the secret and from the leader's own id: 400; a stranger: 403 before anything.
      for (const t of [Number.MAX_SAFE_INTEGER, 2 ** 52]) {
        assert.equal((await postMessages(url(follower), as(leader), heartbeatWithTerm(leader, follower, t))).status, 400, `term ${t} from ${leader}`);
        assert.equal((await postMessages(url(follower), as("evil"), heartbeatWithTerm("evil", follower, t))).status, 403, `term ${t} from evil`);
      }

      // 2. Strangers, and members signing with a client's token, get nowhere: no entry of theirs is ever applied.
      const evilApp = (from: string) => encodeMessages([{
        type: "MsgApp", from, to: follower, term: term + 1, prevLogIndex: 0, prevLogTerm: 0, leaderCommit: 0,
        entries: [{ index: 1, term: term + 1, type: "normal", data: new TextEncoder().encode("evil-write") }],
      }]);
      assert.equal((await postMessages(url(follower), as("mallory"), evilApp("mallory"))).status, 403);
      const token = new TextEncoder().encode(clientTokenFor(SECRET));
      assert.equal((await postMessages(url(follower), as(leader, { secret: token }), evilApp(leader))).status, 401, "signed with the client token");
      assert.equal((await postMessages(url(follower), as(leader, { secret: null }), evilApp(leader))).status, 401, "unsigned");
      // A snapshot only from the member that leads its term: from a stranger 403, from a voter that does not lead 403, a stale term 409.
      const snapBody = (from: string, t: number) => encodeMessages([{ type: "MsgSnap", from, to: follower, term: t, snapshot: { index: 999, term: t, membership: [{ id: from, url: "http://127.0.0.1:1", voter: true }] } }]);
      const begin = (from: string, t: number, bytes: number, id = "s1") => {
        const p = `/raft/v1/snapshot/begin?id=${id}&bytes=${bytes}`;
        const body = snapBody(from, t);
        return post(url(follower), p, body, peerHeaders(as(from), p, body));
      };
      assert.equal((await begin("mallory", term + 1, 100)).status, 403);
      assert.equal((await begin(other, term, 100)).status, 403, `${other} does not lead term ${term}`);
      assert.equal((await begin(leader, term - 1, 100)).status, 409);

      // 3. A path in x-raft-from is refused before anything is named after it.
      for (const from of ["x/../../../escaped", "x%2F..%2F..%2F..%2Fescaped", "n1%0Aforged log line"]) {
        const body = encodeMessages([{ type: "MsgHeartbeat", from: "a", to: follower, term, leaderCommit: 0, readContext: 0 }]);
        const hdrs = { ...peerHeaders(as("a"), "/raft/v1/snapshot/begin?id=e&bytes=1", body), "x-raft-from": from };
        assert.equal((await post(url(follower), "/raft/v1/snapshot/begin?id=e&bytes=1", body, hdrs)).status, 401, from);
      }
      assert.deepEqual(fs.readdirSync(h.root).filter((n) => n.includes("escaped")), []);
      assert.ok(!h.describe().includes("forged log line\n"), "no forged log line");

      // 4. Bodies are refused before they are read: the answer comes with most of the declared body never sent.
      const big = 256 * 1024 * 1024;
      const unsigned = { "x-raft-cluster": info.clusterId, "x-raft-from": leader, "x-raft-to": follower };
      for (const [what, hdrs] of [
        ["unsigned", unsigned],
        ["a stranger, signature well-formed", { ...peerHeaders(as("mallory"), "/raft/v1/messages", new Uint8Array(0)) }],
        ["a member, over the size limit", { ...peerHeaders(as(leader), "/raft/v1/messages", new Uint8Array(0)) }],
      ] as const) {
        const r = await postPartial(url(follower), "/raft/v1/messages", hdrs, big, 64 * 1024);
        assert.ok(r.status === null || (r.status >= 400 && r.status < 500), `${what}: ${r.status}`);
      }

      // 5. Snapshot floods: a size that does not fit is 507; one transfer at a time (503); an idle one is dropped with its file.
      assert.equal((await begin(leader, term, 2 ** 50)).status, 507);
      assert.equal((await begin(leader, term, 1000, "flood-1")).status, 200);
      assert.equal((await begin(leader, term, 1000, "flood-2")).status, 503);
      const snapDir = path.join(h.members.get(follower)!.dataDir, "snapshots");
      assert.equal(fs.readdirSync(snapDir).filter((n) => n.endsWith(".part")).length, 1);
      await waitFor("the idle transfer to be dropped", async () => (await begin(leader, term, 1000, "flood-3")).status === 200, 10_000);
      assert.equal(fs.readdirSync(snapDir).filter((n) => n.endsWith(".part")).length, 1, "the dropped transfer's file is gone");

      // 6. After a restart: a signed request recorded before it is refused (the replay cache is gone, the
      // timestamp is not), and a removed member is still answered 410 (DATA/REMOVED).
      const hb = encodeMessages([{ type: "MsgHeartbeat", from: leader, to: follower, term, leaderCommit: 0, readContext: 0 }]);
      const recorded = peerHeaders(as(leader), "/raft/v1/messages", hb);
      assert.equal((await post(url(follower), "/raft/v1/messages", hb, recorded)).status, 204);
      assert.equal((await post(url(follower), "/raft/v1/messages", hb, recorded)).status, 401, "replayed");
      assert.equal((await h.call(leader, "POST", "/members/remove", JSON.stringify({ id: gone }))).status, 200);
      await h.kill(gone);
      const fromGone = (): Signer => ({ clusterId: info.clusterId, secret: SECRET, from: gone, to: follower });
      await waitFor(`${follower} to answer ${gone} with 410`, async () => (await postMessages(url(follower), fromGone(), heartbeatWithTerm(gone, follower, term))).status === 410);
      await waitFor(`${follower} to save the removed ids`, () => fs.existsSync(path.join(h.members.get(follower)!.dataDir, "REMOVED")));
      await h.kill(follower);
      await h.start(follower, h.members.get(follower)!.port, RT, common);
      assert.equal((await post(url(follower), "/raft/v1/messages", hb, recorded)).status, 401, "replayed after a restart");
      assert.equal((await postMessages(url(follower), fromGone(), heartbeatWithTerm(gone, follower, term))).status, 410, "removed, after a restart");

      // After all that: a leader, small terms, no stranger's entry, every acknowledged write, and a new one commits.
      leader = await h.leader(ids, 30_000);
      const fresh = await h.call<{ index: number }>(leader, "POST", "/p", "after-attacks");
      assert.equal(fresh.status, 200);
      for (const id of ids) {
        assert.ok(h.members.get(id)!.child !== null, `${id} is running`);
        await waitFor(`${id} to apply ${fresh.json.index}`, async () => (await h.applied(id)).some(([i]) => i >= fresh.json.index), 20_000);
        const applied = await h.applied(id);
        const have = new Map(applied.map(([i, d]) => [d, i]));
        for (const [data, index] of acked) assert.equal(have.get(data), index, `${id} lost ${data}@${index}`);
        assert.ok(!applied.some(([, d]) => d === "evil-write"), `${id} applied a stranger's entry`);
        assert.ok((await st(id)).term < 1000, `${id} term ${(await st(id)).term}`);
      }
    } catch (err) {
      failed = true;
      console.error(`\nhostile peers failed; members (data kept under ${h.root}):\n${h.describe()}`);
      throw err;
    }
  });
});

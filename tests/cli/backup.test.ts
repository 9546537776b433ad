/**
 * Backups end to end with real processes on this runtime: `raft snapshot
 * save` from a member of a 3-member cluster under a stream of writes,
 * `raft snapshot status`, `raft snapshot restore` into three fresh
 * directories, and the restored cluster (one member in caller mode, two in
 * worker mode) serving exactly the writes acknowledged at or before the
 * backup's index, with their values. A truncated and a bit-flipped copy of
 * the file are refused by `status` and `restore`, naming the file and the
 * offset. `raft snapshot take` compacts a member's log, in both thread
 * modes. A failing step prints the ports, data directories and the members'
 * stderr tails.
 *
 * @module
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import process from "node:process";
import { freePorts } from "../helpers/ports.ts";
import { waitFor } from "../helpers/wait.ts";
import { Cluster, MemberProcess } from "./cluster-harness.ts";
import { pool, runCli, RUNTIME } from "./run-cli.ts";
import type { CliRun } from "./run-cli.ts";
import { stepper } from "../helpers/steps.ts";
import { httpGet, httpPut } from "../helpers/kv-http.ts";

function cliOk(r: CliRun, code = 0): CliRun {
  assert.equal(r.code, code, `${r.cmd}\nexit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r;
}

describe(`raft snapshot save / status / restore / take on ${RUNTIME}`, () => {
  let c: Cluster;
  let restored: MemberProcess[] = [];
  let file = "";
  let saveIndex = 0;
  /** Every acknowledged write: key, value, index. */
  const acked: { key: string; value: string; index: number }[] = [];

  const diagnostics = () => [c.diagnostics(), ...restored.map((m) => `== restored ${m.id}: ${m.url}, data ${m.dir}\n${m.log.slice(-30).map((l) => `   ${l}`).join("\n")}`)].join("\n");
  const step = stepper(diagnostics);

  before(async () => {
    c = await Cluster.create(["n1", "n2", "n3"], RUNTIME);
    const list = c.members.map((m) => `${m.id}=${m.url}`).join(",");
    await pool(3, c.members.map((m) => async () => void cliOk(await runCli(["bootstrap", "--data", m.dir, "--id", m.id, "--members", list]))));
    for (const m of c.members) m.start(["--data", m.dir]);
    await Promise.all(c.members.map((m) => m.ready()));
    file = path.join(c.root, "backup.snap");
  });

  after(async () => {
    await Promise.all(restored.map((m) => m.stop("SIGKILL")));
    await c.destroy();
  });

  it("saves a backup from a follower while writes stream in; status reports its index, term, members and checksum", step(async () => {
    const leader = await c.waitLeader();
    const follower = c.members.find((m) => m !== leader)!;
    let stop = false;
    let n = 0;
    const writer = async () => {
      while (!stop) {
        const i = n++;
        const key = `k${i % 60}`;
        const value = `v${i}`;
        acked.push({ key, value, index: await httpPut(leader.url, key, value) });
      }
    };
    const writers = Promise.all([writer(), writer(), writer(), writer()]);
    await waitFor("120 acknowledged writes", () => acked.length >= 120);
    const saved = cliOk(await runCli(["snapshot", "save", file, "--cluster", follower.url]));
    const atSave = acked.length;
    await waitFor("30 more writes after the save", () => acked.length >= atSave + 30);
    stop = true;
    await writers;
    const m = /snapshot at index (\d+), term (\d+)/.exec(saved.stdout);
    assert.ok(m !== null, `save says its index: ${saved.stdout}`);
    saveIndex = Number(m[1]);
    assert.ok(!fs.existsSync(`${file}.part`), "the .part file is renamed away");
    assert.ok(acked.some((a) => a.index <= saveIndex) && acked.some((a) => a.index > saveIndex), `writes on both sides of the save's index ${saveIndex}`);
    const st = cliOk(await runCli(["snapshot", "status", file, "--json"]));
    const info = JSON.parse(st.stdout) as Record<string, unknown>;
    assert.equal(info.index, saveIndex);
    assert.equal(info.term, Number(m[2]));
    assert.equal(info.memberId, follower.id);
    assert.deepEqual((info.members as { id: string }[]).map((x) => x.id).sort(), ["n1", "n2", "n3"]);
    assert.match(String(info.sha256), /^[0-9a-f]{64}$/);
    assert.equal(info.fileBytes, fs.statSync(file).size);
    const text = cliOk(await runCli(["snapshot", "status", file]));
    assert.match(text.stdout, new RegExp(`^index +${saveIndex}$`, "m"));
  }));

  it("a truncated or bit-flipped backup is refused by status and restore, naming the file and the offset; nothing is restored", step(async () => {
    const bytes = fs.readFileSync(file);
    const truncated = path.join(c.root, "truncated.snap");
    fs.writeFileSync(truncated, bytes.subarray(0, bytes.length - 100));
    const flipped = path.join(c.root, "flipped.snap");
    const copy = Buffer.from(bytes);
    const at = Math.floor(bytes.length / 2);
    copy[at]! ^= 0x10;
    fs.writeFileSync(flipped, copy);
    for (const [f, re] of [[truncated, new RegExp(`byte offset ${bytes.length - 100}: .*truncated`)], [flipped, /byte offset \d+: the block of \d+ bytes at offset \d+ does not match its checksum/]] as const) {
      const st = await runCli(["snapshot", "status", f]);
      assert.equal(st.code, 1, `${st.cmd}: ${st.stdout} ${st.stderr}`);
      assert.ok(st.stderr.includes(f), `names the file: ${st.stderr}`);
      assert.match(st.stderr, re);
      const dir = path.join(c.root, `restore-${path.basename(f)}`);
      const r = await runCli(["snapshot", "restore", f, "--data", dir, "--id", "a", "--members", "a=http://127.0.0.1:1"]);
      assert.equal(r.code, 1, `${r.cmd}: ${r.stdout} ${r.stderr}`);
      assert.match(r.stderr, re);
      assert.ok(!fs.existsSync(dir) || fs.readdirSync(dir).length === 0, "nothing was written");
    }
  }));

  it("restores into three fresh directories; the new cluster serves every write acknowledged at or before the backup's index, with the saved values, and none after", step(async () => {
    const ports = await freePorts(3);
    restored = ["a", "b", "c"].map((id, i) => new MemberProcess(id, ports[i]!, path.join(c.root, `restored-${id}`), RUNTIME));
    const list = restored.map((m) => `${m.id}=${m.url}`).join(",");
    const runs = await pool(3, restored.map((m) => () => runCli(["snapshot", "restore", file, "--data", m.dir, "--id", m.id, "--members", list])));
    const ids = runs.map((r) => /new cluster ([0-9a-f]+)/.exec(cliOk(r).stdout)?.[1]);
    assert.ok(ids[0] !== undefined && ids.every((x) => x === ids[0]), `every member gets the same new cluster id: ${ids.join(", ")}`);
    const again = await runCli(["snapshot", "restore", file, "--data", restored[0]!.dir, "--id", "a", "--members", list]);
    assert.equal(again.code, 2, "a non-empty directory is refused");
    assert.match(again.stderr, /not empty/);
    restored[0]!.start(["--data", restored[0]!.dir, "--thread", "caller"]);
    for (const m of restored.slice(1)) m.start(["--data", m.dir]);
    await Promise.all(restored.map((m) => m.ready()));
    const leader = await waitFor("a leader of the restored cluster", async () => {
      for (const m of restored) if ((await m.status())?.role === "leader") return m;
      return undefined;
    });
    const st = (await leader.status())!;
    assert.equal(st.clusterId, ids[0]);
    // The last acknowledged value of each key as of the backup's index.
    const expected = new Map<string, string>();
    for (const a of [...acked].sort((x, y) => x.index - y.index)) if (a.index <= saveIndex) expected.set(a.key, a.value);
    const keys = [...new Set(acked.map((a) => a.key))];
    const got = await pool(8, keys.map((k) => () => httpGet(leader.url, k)));
    keys.forEach((k, i) => assert.equal(got[i], expected.get(k) ?? null, `key ${k} as of index ${saveIndex}`));
    // The new cluster takes writes.
    await httpPut(leader.url, "after-restore", "yes");
    assert.equal(await httpGet(leader.url, "after-restore"), "yes");
  }));

  it("raft snapshot take compacts a member's log, in caller mode and in worker mode", step(async () => {
    for (let i = 0; i < 20; i++) await httpPut(restored[0]!.url, `t${i}`, "x").catch(async () => {
      const l = await waitFor("a leader", async () => {
        for (const m of restored) if ((await m.status())?.role === "leader") return m;
        return undefined;
      });
      await httpPut(l.url, `t${i}`, "x");
    });
    const last = await httpPut((await waitFor("a leader", async () => {
      for (const m of restored) if ((await m.status())?.role === "leader") return m;
      return undefined;
    })).url, "t-last", "x");
    // Every member holds the last write: the leader's compaction floor (what followers still need) is past it.
    await waitFor("every member to apply the last write", async () => {
      for (const m of restored) if (((await m.status())?.lastApplied as number | undefined ?? 0) < last) return false;
      return true;
    });
    for (const m of restored.slice(0, 2)) {
      const before = (await m.status())!;
      const r = cliOk(await runCli(["snapshot", "take", "--cluster", m.url]));
      const t = /snapshot at index (\d+) .*log compacted through index (\d+)/.exec(r.stdout);
      assert.ok(t !== null, r.stdout);
      assert.ok(Number(t[1]) > saveIndex, `a new snapshot past the restored one (${r.stdout})`);
      const after = await waitFor(`${m.id}'s first index to move`, async () => {
        const s = await m.status();
        return s !== null && (s.firstIndex as number) > (before.firstIndex as number) ? s : undefined;
      });
      assert.equal(after.firstIndex, Number(t[2]) + 1, `${m.id}: the log starts after the compaction point`);
      assert.ok(fs.readdirSync(path.join(m.dir, "snapshots")).some((n) => n.startsWith(`snap-${t[1]!.padStart(20, "0")}`)), "the snapshot is in the data directory");
    }
  }));
});

describe(`raft snapshot: bad input on ${RUNTIME}`, () => {
  it("missing or extra arguments are usage errors (exit 2); an unreachable member is exit 1 naming it; nothing is written", async () => {
    const [port] = await freePorts(1);
    const tmp = fs.mkdtempSync(path.join(fs.realpathSync(process.env.TMPDIR ?? "/tmp"), "raft-snap-bad-"));
    try {
      const cases: [readonly string[], number, RegExp][] = [
        [["snapshot"], 2, /Missing subcommand/],
        [["snapshot", "copy", "x"], 2, /Unknown subcommand "copy"/],
        [["snapshot", "save"], 2, /Missing argument/],
        [["snapshot", "save", path.join(tmp, "x.snap"), "--cluster", "127.0.0.1:1,127.0.0.1:2"], 2, /one member/],
        [["snapshot", "restore", path.join(tmp, "x.snap"), "--id", "a"], 2, /--data, --id and --members/],
        [["snapshot", "restore", path.join(tmp, "x.snap"), "--data", path.join(tmp, "d"), "--id", "a", "--members", "b=http://127.0.0.1:1"], 2, /does not include this member \(a\)/],
        [["snapshot", "restore", path.join(tmp, "x.snap"), "--data", path.join(tmp, "d"), "--id", "a", "--members", "a=http://127.0.0.1:1"], 1, /x\.snap is unusable at byte offset 0: the file does not exist/],
        [["snapshot", "save", path.join(tmp, "x.snap"), "--cluster", `127.0.0.1:${port}`], 1, new RegExp(`Cannot reach http://127.0.0.1:${port}/cluster/snapshot: connection refused`)],
        [["start", "--data", path.join(tmp, "none"), "--force-new-cluster"], 2, /holds no member yet/],
      ];
      const runs = await pool(3, cases.map(([args]) => () => runCli(args)));
      runs.forEach((r, i) => {
        assert.equal(r.code, cases[i]![1], `${r.cmd}: ${r.stdout} ${r.stderr}`);
        assert.match(r.stderr, cases[i]![2], r.cmd);
      });
      assert.deepEqual(fs.readdirSync(tmp), [], "no file or directory was left behind");
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
});

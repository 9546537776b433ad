/**
 * Real process death: a child process on each runtime appends, truncates,
 * compacts and changes terms in a loop; it is killed with SIGKILL at a random
 * moment, the directory is reopened, and everything acknowledged must be
 * there, intact. Then a new child continues on the recovered directory and
 * is killed again.
 *
 * @module
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { SegmentedLog } from "../../src/storage/segmented-log.ts";
import { StateFile } from "../../src/storage/state-file.ts";
import { RUNTIMES, runCommand } from "../helpers/runtimes.ts";
import { exited, trackExit, waitFor } from "../helpers/wait.ts";
import { entryData, prng, removeDir, tempDir } from "./helpers.ts";

const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), "fixtures", "kill-child.ts");

describe("SIGKILL at a random moment", () => {
  const dirs: string[] = [];
  after(() => dirs.forEach(removeDir));

  for (const rt of RUNTIMES) {
    it(`loses nothing acknowledged by a ${rt} child`, async () => {
      const dir = tempDir(`kill-${rt}`);
      dirs.push(dir);
      const rand = prng(rt.length * 7919);
      for (let round = 0; round < 2; round++) {
        const killAfter = 40 + Math.floor(rand() * 200);
        const [cmd, args] = runCommand(rt, CHILD, [dir, String(round + 1)]);
        const child = trackExit(spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] }));
        let out = "";
        let err = "";
        child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
        child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
        const ctx = () => `${rt} child, round ${round}, dir ${dir}; stderr: ${err.slice(-2000)}`;
        await waitFor(`${killAfter} acknowledged appends (${ctx()})`, () => (out.match(/^acked /gm)?.length ?? 0) >= killAfter, 60_000);
        child.kill("SIGKILL");
        await exited(child);
        // What was acknowledged before the kill (more lines may follow killAfter).
        let lastAcked = 0;
        let truncAfterAck = Infinity;
        let stateTerm = 0;
        for (const line of out.split("\n")) {
          const [what, n] = line.split(" ");
          if (what === "acked") {
            lastAcked = Number(n);
            truncAfterAck = Infinity;
          } else if (what === "trunc") truncAfterAck = Number(n);
          else if (what === "state") stateTerm = Number(n);
        }
        const log = await SegmentedLog.open(dir);
        const floor = Math.min(lastAcked, truncAfterAck - 1);
        assert.ok(log.lastIndex() >= floor, `lastIndex ${log.lastIndex()} below the acknowledged ${floor}: ${ctx()}`);
        const es = log.entries(log.firstIndex(), log.lastIndex() + 1, Infinity);
        let prevTerm = 0;
        for (const e of es) {
          assert.ok(e.term >= prevTerm, `term goes back at ${e.index}: ${ctx()}`);
          assert.deepEqual([...e.data], [...entryData(e.index, e.term, e.data.length)], `entry ${e.index} intact: ${ctx()}`);
          prevTerm = e.term;
        }
        await log.close();
        const sf = await StateFile.open(dir);
        assert.ok(sf.read().term >= stateTerm, `term ${sf.read().term} below the acknowledged ${stateTerm}: ${ctx()}`);
        await sf.close();
      }
    });
  }
});

/**
 * Tests of `TransferProgress` (src/node/transfer-progress.ts): a start line,
 * at most one progress line per interval, an end line, on a virtual clock.
 *
 * @module
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { CatchUpGaps, PROGRESS_LOG_INTERVAL_MS, TransferProgress } from "../../src/node/transfer-progress.ts";

describe("TransferProgress", () => {
  it("logs start, at most one line per interval with bytes and percent, and the end once", () => {
    const lines: string[] = [];
    let now = 0;
    const p = new TransferProgress((l) => lines.push(l), "sending snapshot 9 to n2", 1000, () => now);
    for (let b = 10; b <= 1000; b += 10) {
      now += PROGRESS_LOG_INTERVAL_MS / 10; // ten updates per interval
      p.update(b);
    }
    p.end(1000);
    p.end(1000);
    assert.equal(lines[0], "sending snapshot 9 to n2: started, 1000 bytes");
    assert.equal(lines[1], "sending snapshot 9 to n2: 100 of 1000 bytes (10%)");
    assert.equal(lines.length, 1 + 10 + 1, lines.join("\n"));
    assert.equal(lines.at(-1), "sending snapshot 9 to n2: done, 1000 bytes in 10.0 s");
  });

  it("without a total it logs bytes; a failure says where it stopped", () => {
    const lines: string[] = [];
    let now = 0;
    const p = new TransferProgress((l) => lines.push(l), "receiving snapshot 9 from n1", null, () => now);
    now = 2000;
    p.update(512);
    p.end(512, new Error("dropped"));
    assert.deepEqual(lines, ["receiving snapshot 9 from n1: started", "receiving snapshot 9 from n1: 512 bytes", "receiving snapshot 9 from n1: failed after 512 bytes in 2.0 s: dropped"]);
  });
});

describe("CatchUpGaps", () => {
  it("gives the share of the first round's gap closed, restarting at round 1", () => {
    const g = new CatchUpGaps();
    assert.equal(g.percent("n4", 1, 200), 0);
    assert.equal(g.percent("n4", 2, 50), 75);
    assert.equal(g.percent("n4", 3, 300), 0);
    assert.equal(g.percent("n4", 1, 0), 100);
    g.forget("n4");
    assert.equal(g.percent("n4", 2, 10), 0);
  });
});

/**
 * Short, one-line renderings of messages for the simulator's traces
 * (`npm run sim -- --seed N --verbose`).
 *
 * @module
 */
import type { Message } from "../../src/raft/types.ts";

/** One message as a short trace string. */
export function describeMessage(m: Message): string {
  const head = `${m.from}->${m.to} ${m.type} t${m.term}`;
  switch (m.type) {
    case "MsgApp": {
      const e = m.entries;
      return `${head} prev ${m.prevLogIndex}/${m.prevLogTerm} ${e.length === 0 ? "probe" : `ents[${e[0]?.index}..${e[e.length - 1]?.index}]`} c${m.leaderCommit}`;
    }
    case "MsgAppResp":
      return `${head} ${m.success ? "ok" : "reject"} match ${m.matchIndex} hint ${m.conflictIndex}/${m.conflictTerm} last ${m.lastLogIndex}`;
    case "MsgVote":
    case "MsgPreVote":
      return `${head} last ${m.lastLogIndex}/${m.lastLogTerm}${m.transfer ? " transfer" : ""}`;
    case "MsgVoteResp":
    case "MsgPreVoteResp":
      return `${head} ${m.granted ? "granted" : "rejected"}`;
    case "MsgHeartbeat":
      return `${head} c${m.leaderCommit} ctx ${m.readContext}`;
    case "MsgHeartbeatResp":
      return `${head} ctx ${m.readContext}`;
    case "MsgSnap":
      return `${head} snap ${m.snapshot.index}/${m.snapshot.term}`;
    case "MsgTimeoutNow":
      return head;
  }
}

/**
 * `GET /metrics`: the node's status and counters in the Prometheus text
 * exposition format (version 0.0.4). Latencies are exported in seconds, as
 * Prometheus convention asks, from the node's millisecond histograms.
 *
 * @module
 */
import type { Hono } from "hono";
import type { Histogram, NodeMetrics, NodeStatus, RaftNodeApi } from "../node/types.ts";
import { loopDelay, threadName } from "./loop-delay.ts";
import { addProcessMetrics, memoryReading } from "./process-metrics.ts";

/** The Content-Type of the Prometheus text format. */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

const _ROLES = ["leader", "follower", "candidate", "precandidate", "learner"] as const;

function _label(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

/** Accumulates metric families, each with its HELP and TYPE lines. */
export class Exposition {
  private readonly _lines: string[] = [];

  family(name: string, type: "gauge" | "counter" | "histogram", help: string): void {
    this._lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
  }

  sample(name: string, value: number, labels: Record<string, string> = {}): void {
    const l = Object.entries(labels).map(([k, v]) => `${k}="${_label(v)}"`).join(",");
    this._lines.push(`${name}${l === "" ? "" : `{${l}}`} ${Number.isFinite(value) ? String(value) : value > 0 ? "+Inf" : value < 0 ? "-Inf" : "NaN"}`);
  }

  one(name: string, type: "gauge" | "counter", help: string, value: number): void {
    this.family(name, type, help);
    this.sample(name, value);
  }

  histogramMs(name: string, help: string, h: Histogram, labels: Record<string, string> = {}): void {
    this.family(name, "histogram", help);
    h.boundsMs.forEach((b, i) => this.sample(`${name}_bucket`, h.cumulative[i] ?? 0, { ...labels, le: String(b / 1000) }));
    this.sample(`${name}_bucket`, h.cumulative[h.boundsMs.length] ?? h.count, { ...labels, le: "+Inf" });
    this.sample(`${name}_sum`, h.sumMs / 1000, labels);
    this.sample(`${name}_count`, h.count, labels);
  }

  text(): string {
    return this._lines.join("\n") + "\n";
  }
}

/** Renders status, metrics and service gauges (e.g. `kv_keys`) as Prometheus text; `more` adds families (the process's). */
export function renderMetrics(s: NodeStatus, m: NodeMetrics, service: Record<string, { help: string; value: number }> = {}, more: (x: Exposition) => void = () => {}): string {
  const x = new Exposition();
  x.one("raft_term", "gauge", "Current term of this member.", s.term);
  x.family("raft_role", "gauge", "1 for the role this member plays, 0 for the others.");
  for (const r of _ROLES) x.sample("raft_role", s.role === r ? 1 : 0, { role: r });
  x.one("raft_is_leader", "gauge", "1 if this member is the leader.", s.role === "leader" ? 1 : 0);
  x.one("raft_leader_known", "gauge", "1 if this member knows a leader.", s.leader === null ? 0 : 1);
  x.one("raft_commit_index", "gauge", "Highest log index known to be committed.", s.commitIndex);
  x.one("raft_applied_index", "gauge", "Highest log index applied to the state machine.", s.lastApplied);
  x.one("raft_last_index", "gauge", "Last index in this member's log.", s.lastIndex);
  x.one("raft_first_index", "gauge", "First index still held in the log (after compaction).", s.firstIndex);
  x.family("raft_members", "gauge", "Members in the configuration, by voting right.");
  x.sample("raft_members", s.members.filter((mm) => mm.voter).length, { voter: "true" });
  x.sample("raft_members", s.members.filter((mm) => !mm.voter).length, { voter: "false" });
  x.one("raft_pending_config_change", "gauge", "1 while a membership change is appended but not committed.", s.pendingConfigChange ? 1 : 0);
  x.family("raft_follower_lag_entries", "gauge", "Leader only: entries each member is behind the leader's last index.");
  for (const mm of s.members) if (mm.lag !== null) x.sample("raft_follower_lag_entries", mm.lag, { member: mm.id });
  x.one("raft_proposals_total", "counter", "Proposals accepted by this member as leader.", m.proposals);
  x.one("raft_proposals_failed_total", "counter", "Proposals that did not complete.", m.proposalsFailed);
  x.histogramMs("raft_commit_latency_seconds", "Time from proposal to apply on the leader.", m.commitLatency);
  x.histogramMs("raft_fsync_latency_seconds", "Time of one fsync of the log.", m.fsyncLatency);
  x.one("raft_rpcs_sent_total", "counter", "Peer RPCs sent.", m.rpcsSent);
  x.one("raft_rpcs_received_total", "counter", "Peer RPCs received.", m.rpcsReceived);
  x.one("raft_rpcs_sent_in_responses_total", "counter", "Peer replies sent in the response of the request they answer (counted in raft_rpcs_sent_total too).", m.rpcsSentInResponses);
  x.one("raft_rpcs_refused_total", "counter", "Peer RPCs refused (authentication, wrong cluster, malformed).", m.rpcsRefused);
  x.one("raft_snapshot_sent_bytes_total", "counter", "Snapshot bytes sent to other members.", m.snapshotBytesSent);
  x.one("raft_snapshot_received_bytes_total", "counter", "Snapshot bytes received from the leader.", m.snapshotBytesReceived);
  x.one("raft_leader_changes_total", "counter", "Times this member saw the leader change.", m.leaderChanges);
  x.one("raft_log_bytes", "gauge", "Bytes of the log's segment files on disk.", m.logBytes);
  x.one("raft_snapshot_bytes", "gauge", "Bytes of the stored snapshots' data files on disk.", m.snapshotBytes);
  for (const [name, g] of Object.entries(service)) x.one(name, "gauge", g.help, g.value);
  more(x);
  return x.text();
}

/**
 * Mounts `GET /metrics`, with the process families (memory, event-loop
 * delay of this thread, build info); the loop-delay sampler runs from now
 * until the node stops.
 */
export function metricsRoute(app: Hono, node: RaftNodeApi, service: () => Record<string, { help: string; value: number }> = () => ({})): void {
  loopDelay.acquire();
  let released = false;
  const unsubscribe = node.on((e) => {
    if ((e.type === "closing" || e.type === "stopped") && !released) {
      released = true;
      loopDelay.release();
      unsubscribe();
    }
  });
  app.get("/metrics", () => {
    const more = (x: Exposition) => addProcessMetrics(x, threadName(), memoryReading(), loopDelay.reading());
    return new Response(renderMetrics(node.status(), node.metrics(), service(), more), { headers: { "content-type": PROMETHEUS_CONTENT_TYPE } });
  });
}

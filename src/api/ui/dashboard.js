// The dashboard's script, inlined into the page by page.ts (no build step, no
// library). It reads the live feed of one member (`GET /events`, Server-Sent
// Events read through fetch so that it can carry the bearer token), prefers
// the leader's feed (its charts are the cluster's commit latency), moves to
// another member's URL when that one stops answering, and falls back to
// polling every member's `/status` when no event stream can be had (or with
// `?transport=poll`). Everything shown goes through textContent: no markup
// from the wire is ever parsed.
(() => {
  "use strict";
  const config = JSON.parse(document.getElementById("raft-config").textContent);
  const forcePoll = new URLSearchParams(location.search).get("transport") === "poll";
  const auth = config.token ? { authorization: "Bearer " + config.token } : {};
  const $ = (id) => document.getElementById(id);
  const SWITCH = new Error("switching to the leader's feed");
  /** A member that failed is not tried again for this long, unless none is left. */
  const RETRY_AFTER_MS = 3000;
  const CHART_WINDOW_MS = 5 * 60 * 1000;
  const CATCH_UP_SHOWN_MS = 60 * 1000;

  const state = {
    report: null,
    /** Browser clock minus the reporting member's clock. */
    skewMs: 0,
    source: null,
    sourceId: null,
    mode: forcePoll ? "poll" : "stream",
    pollUntilMs: 0,
    noStream: 0,
    known: [location.origin],
    failures: new Map(),
    prefer: null,
    timeline: [],
    timelineFrom: null,
    series: [],
  };

  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const el = (tag, attrs, ...children) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") e.className = v;
      else e.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children) if (c !== null && c !== undefined) e.append(c instanceof Node ? c : String(c));
    return e;
  };
  const fmt = (n) => (n === null || n === undefined ? "-" : String(n));
  const ms = (v) => (v === null || v === undefined ? "-" : v < 10 ? v.toFixed(2) + " ms" : v.toFixed(0) + " ms");
  const ago = (atMs) => {
    if (atMs === null || atMs === undefined) return "never";
    const s = Math.max(0, (Date.now() - state.skewMs - atMs) / 1000);
    return s < 60 ? s.toFixed(1) + " s ago" : s < 3600 ? Math.floor(s / 60) + " min ago" : Math.floor(s / 3600) + " h ago";
  };
  const mib = (b) => (b / (1024 * 1024)).toFixed(1);
  const errorText = async (res) => {
    try {
      const j = await res.json();
      if (j && typeof j.error === "string") return j.error + " (HTTP " + res.status + ")";
    } catch {
      // not JSON
    }
    return "HTTP " + res.status;
  };

  // ---- where to read from ----

  function remember(urls) {
    for (const u of urls) if (!state.known.includes(u)) state.known.push(u);
  }

  function pickSource() {
    const leader = state.report && state.report.leader ? state.report.leader.url : null;
    const order = [...new Set([state.prefer, leader, location.origin, ...state.known].filter(Boolean))];
    state.prefer = null;
    const now = Date.now();
    const fresh = order.filter((u) => !state.failures.has(u) || now - state.failures.get(u).atMs > RETRY_AFTER_MS);
    if (fresh.length > 0) return fresh[0];
    return order.sort((a, b) => state.failures.get(a).atMs - state.failures.get(b).atMs)[0];
  }

  function setConnection(kind, text) {
    const c = $("connection");
    c.dataset.state = kind;
    c.textContent = text;
  }

  // ---- the event stream ----

  function parseBlock(block) {
    let event = "message";
    const data = [];
    for (const line of block.split("\n")) {
      if (line === "" || line.startsWith(":")) continue;
      const i = line.indexOf(":");
      const field = i < 0 ? line : line.slice(0, i);
      let value = i < 0 ? "" : line.slice(i + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "event") event = value;
      else if (field === "data") data.push(value);
    }
    return data.length === 0 ? null : { event, data: JSON.parse(data.join("\n")) };
  }

  async function streamFrom(url) {
    const ctl = new AbortController();
    let heartbeatMs = 10000;
    let watchdog = 0;
    const arm = () => {
      clearTimeout(watchdog);
      watchdog = setTimeout(() => ctl.abort(), heartbeatMs * 2.5);
    };
    arm();
    try {
      const res = await fetch(url + "/events", { headers: auth, signal: ctl.signal, cache: "no-store" });
      if (!res.ok) throw new Error(await errorText(res));
      if (!(res.headers.get("content-type") || "").startsWith("text/event-stream") || res.body === null) {
        throw Object.assign(new Error("no event stream at " + url), { noStream: true });
      }
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = "";
      let got = false;
      for (;;) {
        let r;
        try {
          r = await reader.read();
        } catch (err) {
          throw ctl.signal.aborted ? Object.assign(new Error("no data for " + (heartbeatMs * 2.5) / 1000 + " s"), { noStream: !got }) : err;
        }
        if (r.done) throw new Error("the stream from " + url + " ended");
        arm();
        buf += r.value.replace(/\r\n/g, "\n");
        let i;
        while ((i = buf.indexOf("\n\n")) >= 0) {
          const m = parseBlock(buf.slice(0, i));
          buf = buf.slice(i + 2);
          if (m === null) continue;
          got = true;
          if (m.event === "hello") {
            heartbeatMs = m.data.heartbeatMs;
            arm();
            state.noStream = 0;
            if (state.source !== url) {
              state.timeline = [];
              state.series = [];
            }
            state.source = url;
            state.sourceId = m.data.id;
            state.failures.delete(url);
            setConnection("live", "live from " + m.data.id + " (" + url + ")");
          } else if (m.event === "report") {
            onReport(m.data);
            const l = m.data.leader;
            const lm = l && m.data.members.find((x) => x.id === l.id);
            if (l && l.url !== url && lm && lm.role !== "down" && !recentlyFailed(l.url)) {
              state.prefer = l.url;
              throw SWITCH;
            }
          } else if (m.event === "timeline") {
            const seen = new Set(state.timeline.map((e) => e.seq));
            for (const e of m.data) if (!seen.has(e.seq)) state.timeline.push(e);
            state.timelineFrom = state.sourceId;
            renderTimeline();
            renderMembers();
          } else if (m.event === "series") {
            state.series.push(...m.data);
            const cut = Date.now() - state.skewMs - CHART_WINDOW_MS;
            state.series = state.series.filter((s) => s.atMs >= cut);
            renderCharts(state.sourceId);
          } else if (m.event === "bye") {
            throw new Error(state.sourceId + " is stopping (" + m.data.reason + ")");
          }
        }
      }
    } finally {
      clearTimeout(watchdog);
      ctl.abort();
    }
  }

  function recentlyFailed(url) {
    const f = state.failures.get(url);
    return f !== undefined && Date.now() - f.atMs < RETRY_AFTER_MS;
  }

  function onReport(r) {
    state.skewMs = Date.now() - r.serverNowMs;
    state.report = r;
    remember(r.members.map((m) => m.url));
    render();
  }

  // ---- the fallback: every member's /status ----

  async function fetchStatus(url) {
    try {
      const res = await fetch(url + "/status", { headers: auth, cache: "no-store", signal: AbortSignal.timeout(1500) });
      if (!res.ok) return { url, error: await errorText(res) };
      return { url, status: await res.json() };
    } catch (err) {
      return { url, error: err && err.name === "TimeoutError" ? "no answer in time" : "not reachable" };
    }
  }

  async function pollOnce() {
    const first = await Promise.all(state.known.map(fetchStatus));
    const answers = first.filter((a) => a.status);
    let leader = null;
    for (const a of answers) if (a.status.role === "leader" && (leader === null || a.status.term > leader.term)) leader = a.status;
    const base = leader || (answers[0] && answers[0].status);
    if (!base) {
      setConnection("lost", "polling: no member answers (" + first.map((a) => a.url + ": " + a.error).join("; ") + ")");
      return;
    }
    remember(base.members.map((m) => m.url));
    const byUrl = new Map(first.map((a) => [a.url, a]));
    const missing = base.members.filter((m) => !byUrl.has(m.url));
    for (const a of await Promise.all(missing.map((m) => fetchStatus(m.url)))) byUrl.set(a.url, a);
    const maxCommit = Math.max(0, ...[...byUrl.values()].filter((a) => a.status).map((a) => a.status.commitIndex));
    const members = base.members.map((m) => {
      const a = byUrl.get(m.url);
      const s = a && a.status;
      const view = leader ? leader.members.find((x) => x.id === m.id) : null;
      let heard = null;
      for (const b of byUrl.values()) {
        const t = b.status && (b.status.members.find((x) => x.id === m.id) || {}).lastHeardAtMs;
        if (t && (heard === null || t > heard)) heard = t;
      }
      return {
        id: m.id, url: m.url, voter: m.voter, role: s ? s.role : "down", error: s ? null : a.error,
        term: s ? s.term : null, commitIndex: s ? s.commitIndex : null, lastApplied: s ? s.lastApplied : null,
        lag: view && view.lag !== null ? view.lag : s ? Math.max(0, maxCommit - s.commitIndex) : null,
        reachableFromLeader: view ? view.reachable : null, matchIndex: view ? view.matchIndex : null, lastHeardAtMs: heard,
        catchUp: view ? view.catchUp : null, snapshotTransfer: view ? view.snapshotTransfer : null, progress: "",
      };
    });
    const problems = [];
    if (!leader) problems.push("No leader answers");
    for (const m of members) if (m.role === "down") problems.push("Member " + m.id + " (" + m.url + ") does not answer: " + m.error);
    onReport({
      clusterId: base.clusterId, leader: leader ? { id: leader.id, url: leader.url, term: leader.term } : null,
      leaderLastIndex: leader ? leader.lastIndex : null, term: Math.max(...members.map((m) => m.term || 0)),
      pendingConfigChange: leader ? leader.pendingConfigChange : false, members, problems, serverNowMs: Date.now(),
    });
    setConnection("polling", "polling /status of " + members.length + " members (no event stream)");
  }

  // ---- rendering ----

  function render() {
    const r = state.report;
    if (r === null) return;
    $("cluster-id").textContent = r.clusterId ? "cluster " + r.clusterId : "";
    $("term").textContent = fmt(r.term);
    const leader = $("leader");
    leader.textContent = r.leader ? r.leader.id + " (" + r.leader.url + ")" : "none";
    leader.dataset.leader = r.leader ? r.leader.id : "";
    const list = $("problem-list");
    list.replaceChildren(...(r.problems.length === 0 ? [el("li", { "data-empty": true }, "No problems: every member answers and follows the leader.")] : r.problems.map((p) => el("li", {}, p))));
    renderMembers();
  }

  /** The latest catch-up entry of the timeline about `id`, if recent. */
  function recentCatchUp(id) {
    for (let i = state.timeline.length - 1; i >= 0; i--) {
      const e = state.timeline[i];
      if (e.kind === "catch-up" && e.about === id) return Date.now() - state.skewMs - e.atMs < CATCH_UP_SHOWN_MS ? e : null;
    }
    return null;
  }

  function bar(kind, fraction, text) {
    const fill = el("div");
    fill.style.width = Math.round(Math.max(0, Math.min(1, fraction)) * 100) + "%";
    return el("div", { class: "bar", "data-progress": kind, "data-fraction": fraction.toFixed(3) }, fill, el("span", {}, text));
  }

  function renderMembers() {
    const r = state.report;
    if (r === null) return;
    // A card's buttons are carried over to its new card when they stay the same: a click whose
    // mousedown and mouseup straddle a re-render then still lands on one element (new buttons
    // each time would swallow it, measured under load).
    const kept = new Map();
    for (const a of $("members").querySelectorAll("article[data-member] > .actions")) kept.set(a.parentElement.dataset.member + " " + a.dataset.sig, a);
    const cards = r.members.map((m) => {
      const isLeader = r.leader !== null && r.leader.id === m.id;
      const role = m.role === "down" ? "down" : isLeader ? "leader" : m.role;
      const bars = [];
      if (m.snapshotTransfer) {
        const t = m.snapshotTransfer;
        bars.push(bar("snapshot", t.totalBytes ? t.sentBytes / t.totalBytes : 0, "snapshot " + mib(t.sentBytes) + (t.totalBytes ? " of " + mib(t.totalBytes) : "") + " MiB sent"));
      }
      if (!m.voter && r.leaderLastIndex) {
        const done = m.matchIndex || 0;
        const round = m.catchUp ? "round " + m.catchUp.round + ", " : "round 1, ";
        bars.push(bar("catch-up", done / r.leaderLastIndex, m.catchUp && m.catchUp.failed ? "catch-up failed: " + m.catchUp.failed : "catching up: " + round + done + " of " + r.leaderLastIndex + " entries"));
      } else {
        const e = recentCatchUp(m.id);
        if (e !== null) {
          // Our own timeline's words (src/api/ui/timeline.ts): "catching up ID: round N ended L entries behind".
          const round = /round (\d+)/.exec(e.text);
          bars.push(bar("catch-up", m.voter ? 1 : 0.5, m.voter ? "caught up" + (round ? " in round " + round[1] : "") + ", promoted to voter" : e.text));
        }
      }
      const canTransfer = r.leader !== null && !isLeader && m.voter && m.role !== "down";
      const sig = canTransfer ? "transfer remove" : "remove";
      return el("article", { class: "card", "data-member": m.id, "data-role": role },
        el("div", { class: "head" }, el("span", { class: "id" }, m.id), el("span", { class: "role" }, role), el("span", { class: "voter" }, m.voter ? "voter" : "learner")),
        el("div", { class: "url" }, m.url),
        el("dl", {},
          el("dt", {}, "term"), el("dd", {}, fmt(m.term)),
          el("dt", {}, "lag"), el("dd", { "data-field": "lag" }, fmt(m.lag)),
          el("dt", {}, "commit"), el("dd", { "data-field": "commit" }, fmt(m.commitIndex)),
          el("dt", {}, "applied"), el("dd", { "data-field": "applied" }, fmt(m.lastApplied)),
          el("dt", {}, "answers"), el("dd", { "data-field": "answers" }, m.role === "down" ? "no" : "yes"),
          el("dt", {}, "leader hears"), el("dd", {}, m.reachableFromLeader === null ? "-" : isLeader ? "-" : m.reachableFromLeader ? "yes" : "no"),
          el("dt", {}, "last heard"), el("dd", { "data-field": "last-heard", "data-at": m.lastHeardAtMs }, ago(m.lastHeardAtMs))),
        ...bars,
        m.error ? el("div", { class: "error" }, "not answering: " + m.error) : null,
        kept.get(m.id + " " + sig) ?? el("div", { class: "actions", "data-sig": sig },
          canTransfer ? el("button", { "data-action": "transfer", "data-target": m.id, title: "Hand leadership to " + m.id }, "Make leader") : null,
          el("button", { class: "danger", "data-action": "remove", "data-target": m.id, title: "Remove " + m.id + " from the cluster" }, "Remove")));
    });
    $("members").replaceChildren(...cards);
  }

  function renderTimeline() {
    $("timeline-from").textContent = state.timelineFrom ? "(the last hour, as " + state.timelineFrom + " saw it)" : "";
    const items = state.timeline.slice().reverse().map((e) =>
      el("li", { "data-kind": e.kind, "data-about": e.about },
        el("time", { datetime: new Date(e.atMs).toISOString() }, new Date(e.atMs).toLocaleTimeString()),
        el("span", { class: "kind" }, e.kind),
        el("span", {}, e.text)));
    $("timeline").replaceChildren(...(items.length > 0 ? items : [el("li", {}, el("span", {}, ""), el("span", {}, ""), el("span", {}, "nothing in the last hour")) ]));
  }

  const SVG = "http://www.w3.org/2000/svg";
  function chart(name, lines, label) {
    const fig = document.querySelector('[data-chart="' + name + '"]');
    const svg = fig.querySelector("svg");
    const now = Date.now() - state.skewMs;
    const points = lines.map((l) => state.series.filter((s) => s[l.key] !== null).map((s) => [s.atMs, s[l.key]]));
    const max = Math.max(1e-9, ...points.flat().map((p) => p[1])) * 1.1;
    const kids = [];
    const axis = document.createElementNS(SVG, "line");
    for (const [k, v] of Object.entries({ x1: 0, y1: 79.5, x2: 300, y2: 79.5, class: "axis" })) axis.setAttribute(k, String(v));
    kids.push(axis);
    lines.forEach((l, i) => {
      const pl = document.createElementNS(SVG, "polyline");
      pl.setAttribute("class", l.cls);
      pl.setAttribute("points", points[i].map(([t, v]) => (((t - (now - CHART_WINDOW_MS)) / CHART_WINDOW_MS) * 300).toFixed(1) + "," + (80 - (v / max) * 78).toFixed(1)).join(" "));
      kids.push(pl);
    });
    svg.replaceChildren(...kids);
    const last = state.series[state.series.length - 1];
    fig.querySelector(".now").textContent = last === undefined ? "no samples yet" : label(last);
  }

  function renderCharts(from) {
    $("charts-from").textContent = from ? "(measured on " + from + ", last 5 minutes)" : "";
    chart("commits", [{ key: "commitsPerS", cls: "p50" }], (s) => s.commitsPerS.toFixed(1) + " /s");
    chart("commit-latency", [{ key: "commitP50Ms", cls: "p50" }, { key: "commitP99Ms", cls: "p99" }], (s) => "p50 " + ms(s.commitP50Ms) + " · p99 " + ms(s.commitP99Ms));
    chart("fsync-latency", [{ key: "fsyncP50Ms", cls: "p50" }, { key: "fsyncP99Ms", cls: "p99" }], (s) => "p50 " + ms(s.fsyncP50Ms) + " · p99 " + ms(s.fsyncP99Ms));
  }

  // ---- actions (the only writes), each confirmed ----

  function confirmAction(text, verb) {
    const d = $("confirm");
    $("confirm-text").textContent = text;
    $("confirm-ok").textContent = verb;
    d.showModal();
    return new Promise((resolve) => d.addEventListener("close", () => resolve(d.returnValue === "ok"), { once: true }));
  }

  function setResult(text, ok) {
    const r = $("action-result");
    r.textContent = text;
    r.dataset.ok = ok === undefined ? "" : String(ok);
  }

  async function act(kind, id) {
    const r = state.report;
    const leader = r && r.leader;
    const question = kind === "transfer"
      ? "Hand leadership to " + id + "? The current leader steps down once " + id + " has caught up."
      : "Remove " + id + " from the cluster?" + (leader && leader.id === id ? " It is the leader: the others elect a new one." : " It stops once the removal is committed.");
    if (!(await confirmAction(question, kind === "transfer" ? "Transfer" : "Remove"))) return;
    const base = leader ? leader.url : state.source || location.origin;
    const [path, init] = kind === "transfer"
      ? ["/cluster/transfer", { method: "POST", body: JSON.stringify({ to: id }) }]
      : ["/cluster/members/" + encodeURIComponent(id), { method: "DELETE" }];
    setResult((kind === "transfer" ? "handing leadership to " : "removing ") + id + " …");
    try {
      const res = await fetch(base + path, { ...init, headers: { ...auth, "content-type": "application/json" } });
      if (!res.ok) {
        setResult((kind === "transfer" ? "transfer" : "removal") + " failed: " + (await errorText(res)), false);
        return;
      }
      const body = await res.json();
      setResult(kind === "transfer" ? "leader is now " + (body.leader ? body.leader.id : "unknown") : id + " was removed", true);
    } catch (err) {
      setResult((kind === "transfer" ? "transfer" : "removal") + " failed: " + (base + " is not reachable"), false);
    }
  }

  $("members").addEventListener("click", (ev) => {
    const b = ev.target.closest("button[data-action]");
    if (b) void act(b.dataset.action, b.dataset.target);
  });
  for (const b of document.querySelectorAll("#confirm button")) b.addEventListener("click", () => $("confirm").close(b.value));

  // ---- main loop ----

  async function main() {
    setConnection("connecting", "connecting to " + location.origin + " …");
    for (;;) {
      if (state.mode === "poll") {
        await pollOnce();
        await sleep(1000);
        if (!forcePoll && Date.now() > state.pollUntilMs) state.mode = "stream";
        continue;
      }
      const url = pickSource();
      try {
        await streamFrom(url);
      } catch (err) {
        if (err === SWITCH) continue;
        state.failures.set(url, { atMs: Date.now(), error: String(err && err.message) });
        if (err && err.noStream && ++state.noStream >= 2) {
          state.mode = "poll";
          state.pollUntilMs = Date.now() + 30000;
          continue;
        }
        setConnection("lost", "lost " + url + " (" + (err && err.message ? err.message : "no answer") + "); trying another member");
        await sleep(state.failures.size >= state.known.length ? 1000 : 100);
      }
    }
  }

  // "last heard" moves on between reports.
  setInterval(() => {
    for (const dd of document.querySelectorAll('[data-field="last-heard"][data-at]')) dd.textContent = ago(Number(dd.dataset.at));
  }, 1000);
  void main();
})();

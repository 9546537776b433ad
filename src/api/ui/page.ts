/**
 * `GET /ui`: the dashboard, one self-contained page served by the member
 * itself: markup from here, the style and script of `dashboard.css` and
 * `dashboard.js` beside this file inlined into it. Nothing is fetched from
 * elsewhere; the Content-Security-Policy says so to the browser (scripts
 * and styles only the inlined ones, by hash; connections only to http(s)
 * members).
 *
 * With a secret, the page is served only to a request that carries the
 * client token (a browser asks for it as a password, see `bearerAuth`), and
 * it hands the token to its script, which sends it as a bearer token to the other
 * members (a browser keeps an HTTP Basic password per origin, and each
 * member is its own origin). `Cache-Control: no-store` keeps that page out
 * of every cache.
 *
 * @module
 */
import * as fs from "node:fs";
import type { Hono } from "hono";
import { sha256 } from "@noble/hashes/sha2.js";

/** Options of `uiRoute`. */
export interface UiOptions {
  /** The client token (the route is behind the auth middleware when set); never the cluster secret. */
  readonly token: string | null;
}

interface _Assets {
  readonly css: string;
  readonly js: string;
  readonly csp: string;
}

let _assets: _Assets | null = null;

function _hash(text: string): string {
  return `'sha256-${btoa(String.fromCharCode(...sha256(new TextEncoder().encode(text))))}'`;
}

/** The style and script, read once (they ship beside this file). */
function _load(): _Assets {
  if (_assets !== null) return _assets;
  const read = (name: string) => fs.readFileSync(new URL(`./${name}`, import.meta.url), "utf8");
  const css = read("dashboard.css");
  const js = read("dashboard.js");
  const csp = [
    "default-src 'none'",
    `style-src ${_hash(css)}`,
    `script-src ${_hash(js)}`,
    "img-src data:",
    "connect-src http: https:",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join("; ");
  _assets = { css, js, csp };
  return _assets;
}

/** JSON that is safe inside a `<script>` element (no `</script>`, no `<!--`). */
function _scriptJson(v: unknown): string {
  return JSON.stringify(v).replace(/</g, "\\u003c").replace(/\u2028/g, "\\u2028").replace(/\u2029/g, "\\u2029");
}

/** The whole page. */
export function dashboardPage(opts: UiOptions): { html: string; csp: string } {
  const a = _load();
  const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>raft dashboard</title>
<style>${a.css}</style>
</head>
<body>
<header class="top">
  <h1>raft <small id="cluster-id"></small></h1>
  <div id="summary"><span>term <b id="term">-</b></span><span>leader <b id="leader" data-leader="">-</b></span></div>
  <div id="connection" data-state="connecting">connecting</div>
</header>
<main>
  <section aria-live="polite"><h2>Problems</h2><ul id="problem-list"></ul></section>
  <section><h2>Members</h2><div id="members" class="cards"></div><p id="action-result" role="status"></p></section>
  <section><h2>Charts <small id="charts-from"></small></h2>
    <div class="charts">
      <figure data-chart="commits"><figcaption><span>commits per second</span><span class="now"></span></figcaption><svg viewBox="0 0 300 80" preserveAspectRatio="none" role="img" aria-label="commits per second"></svg></figure>
      <figure data-chart="commit-latency"><figcaption><span>commit latency <span class="legend-p50">p50</span> <span class="legend-p99">p99</span></span><span class="now"></span></figcaption><svg viewBox="0 0 300 80" preserveAspectRatio="none" role="img" aria-label="commit latency"></svg></figure>
      <figure data-chart="fsync-latency"><figcaption><span>fsync latency <span class="legend-p50">p50</span> <span class="legend-p99">p99</span></span><span class="now"></span></figcaption><svg viewBox="0 0 300 80" preserveAspectRatio="none" role="img" aria-label="fsync latency"></svg></figure>
    </div>
  </section>
  <section><h2>Timeline <small id="timeline-from"></small></h2><ol id="timeline"></ol></section>
</main>
<dialog id="confirm">
  <p id="confirm-text"></p>
  <div class="buttons"><button value="cancel" data-action="cancel">Cancel</button><button id="confirm-ok" class="danger" value="ok" data-action="confirm">Confirm</button></div>
</dialog>
<script type="application/json" id="raft-config">${_scriptJson({ token: opts.token })}</script>
<script>${a.js}</script>
</body>
</html>
`;
  return { html, csp: a.csp };
}

/** Mounts `GET /ui`. */
export function uiRoute(app: Hono, opts: UiOptions): void {
  const serve = () => {
    const { html, csp } = dashboardPage(opts);
    return new Response(html, {
      headers: {
        "content-type": "text/html; charset=utf-8",
        "content-security-policy": csp,
        "cache-control": "no-store",
        "x-content-type-options": "nosniff",
        "referrer-policy": "no-referrer",
      },
    });
  };
  app.get("/ui", serve);
}

/**
 * Which requests are a member's peer routes: every path under `/raft/`
 * (RPCs, snapshots, info, join). The turn gate never holds them; mutual TLS
 * asks their clients for a member certificate.
 *
 * @module
 */

/** True if `path` (a request's path, with or without its query) is a peer route. */
export function isPeerPath(path: string): boolean {
  return path.startsWith("/raft/");
}

/** True if `url` (an absolute URL, as a fetch handler's `req.url`) is a peer route: its path starts after "scheme://host". */
export function isPeerUrl(url: string): boolean {
  return url.startsWith("/raft/", url.indexOf("/", url.indexOf("//") + 2));
}

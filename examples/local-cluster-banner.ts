/**
 * What `npm start` (local-cluster.ts) prints when it starts: where to look, and commands that work
 * when pasted into any shell (the user's shell has no SHOAL_HTTP_TOKEN: the launcher generated it).
 */

/** Ports and management token of the local cluster the launcher starts. */
export interface LocalCluster {
  /** clusterd's `host:port`. */
  readonly daemon: string
  /** Node i (0-based) listens on `base + i`, its management endpoint on `httpBase + i`. */
  readonly base: number
  readonly httpBase: number
  /** The management token the nodes run with (SHOAL_HTTP_TOKEN: the bearer of their POST routes; not the cluster secret). */
  readonly httpToken: string
}

/** `s` as one POSIX shell word: single-quoted, with any `'` written as `'\''`. */
export function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`
}

/** A curl command that makes the node whose management endpoint is on `httpPort` leave gracefully. */
export function leaveCommand(httpPort: number, httpToken: string): string {
  return `curl -X POST -H ${shellQuote(`Authorization: Bearer ${httpToken}`)} http://127.0.0.1:${httpPort}/cluster/leave`
}

/** The text printed once the processes are started. */
export function banner(c: LocalCluster): string {
  return `
A local Shoal cluster is starting: clusterd on ${c.daemon}, nodes on 127.0.0.1:${c.base}–${c.base + 2}.
Where to look:
  curl http://127.0.0.1:${c.httpBase}/cluster/members      membership as node 1 sees it (JSON)
  npx shoal status --http 127.0.0.1:${c.httpBase + 1}         the same as a table, from node 2
  curl http://127.0.0.1:${c.httpBase + 2}/metrics           Prometheus metrics of node 3
Make node 3 leave gracefully (the bearer is the nodes' management token, not the cluster secret):
  ${leaveCommand(c.httpBase + 2, c.httpToken)}
Press Ctrl-C to stop: the nodes leave gracefully, then clusterd stops.
`
}

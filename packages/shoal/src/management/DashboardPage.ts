/**
 * The dashboard's page (`GET /dashboard`) and script (`GET /dashboard/app.js`): plain HTML and
 * JavaScript, no build, no external asset (a strict Content-Security-Policy: same origin only). It
 * reads `/dashboard/state` every 2 s while the tab is visible (nothing is sampled otherwise): every
 * member's traffic, actors by type, top methods, singletons and shards; and `/cluster/events` for
 * a live event log of the last 200 events (membership, singleton and shard moves). Read-only: leave and down stay
 * behind the management token (`POST /cluster/leave`, `/cluster/down`).
 * @module
 */

export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Shoal cluster</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #1d2733; background: #f7f9fb; }
  h1 { font-size: 1.3rem; margin: 0 0 .2rem; } h2 { font-size: 1rem; margin: 1.4rem 0 .4rem; }
  .meta { color: #5b6773; } .grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(10rem, 1fr)); gap: .6rem; }
  .card { background: #fff; border: 1px solid #dde3e9; border-radius: 6px; padding: .6rem .8rem; }
  .card b { display: block; font-size: 1.3rem; }
  table { border-collapse: collapse; width: 100%; background: #fff; border: 1px solid #dde3e9; }
  th, td { text-align: left; padding: .3rem .6rem; border-bottom: 1px solid #eef1f4; }
  th { background: #eef2f6; font-weight: 600; }
  .badge { display: inline-block; padding: 0 .4rem; border-radius: 4px; font-size: .8rem; margin-left: .3rem; background: #e3ecf7; }
  .up { color: #137333; } .unreachable, .down { color: #b3261e; font-weight: 600; } .leaving, .exiting, .joining { color: #9a6700; }
  #log { font: 12px/1.5 ui-monospace, monospace; background: #fff; border: 1px solid #dde3e9; max-height: 16rem; overflow: auto; padding: .4rem .6rem; }
</style>
</head>
<body>
<h1>Shoal cluster</h1>
<div class="meta">seen from <span id="node">…</span> · updated <span id="updated">never</span></div>
<h2>Cluster</h2>
<div class="grid">
  <div class="card">members up<b id="upCount">–</b></div>
  <div class="card">calls/s<b id="rate">–</b></div>
  <div class="card">errors<b id="errors">–</b></div>
  <div class="card">worst remote p99<b id="p99">–</b></div>
  <div class="card">actors<b id="actors">–</b></div>
  <div class="card">associations<b id="associations">–</b></div>
  <div class="card">memory (RSS)<b id="rss">–</b></div>
</div>
<h2>Members</h2>
<table id="members"><thead><tr><th>member</th><th>status</th><th>reachability</th><th>unreachable from</th><th>roles</th><th>age</th></tr></thead><tbody></tbody></table>
<h2>Nodes</h2>
<table id="nodes"><thead><tr><th>node</th><th>calls/s</th><th>errors</th><th>remote p99</th><th>actors</th><th>active virtual ids</th><th>shards owned</th><th>associations</th><th>RSS</th></tr></thead><tbody></tbody></table>
<h2>Actors by type</h2>
<table id="types"><thead><tr><th>type</th><th>total</th><th>per node</th></tr></thead><tbody></tbody></table>
<h2>Top methods <span class="meta">(served; estimated from one call in 16, sampled while this page is open)</span></h2>
<table id="methods"><thead><tr><th>method</th><th>node</th><th>calls/s</th><th>errors/s</th><th>mean</th><th>p99</th></tr></thead><tbody></tbody></table>
<h2>Singletons</h2>
<table id="singletons"><thead><tr><th>name</th><th>host</th><th>lease epoch</th><th>held calls</th></tr></thead><tbody></tbody></table>
<h2>Virtual actors</h2>
<table id="virtual"><thead><tr><th>node</th><th>role</th><th>shards owned</th><th>open</th><th>active ids</th><th>held calls</th><th>table</th></tr></thead><tbody></tbody></table>
<h2>Refusals (since start)</h2>
<div id="refused" class="meta">none</div>
<h2>Events</h2>
<div id="log"></div>
<script src="/dashboard/app.js"></script>
</body>
</html>
`

export const DASHBOARD_JS = `'use strict'
const $ = (id) => document.getElementById(id)
const METHOD_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
/** Each node's previous answer (by address), for rates over the last interval. */
const previous = new Map()
/** Singleton hosts last seen, to log a move. */
const hosts = new Map()
function cell(text, cls) { const td = document.createElement('td'); td.textContent = text; if (cls) td.className = cls; return td }
function rows(table, items, make) {
  const body = $(table).tBodies[0]
  body.replaceChildren(...items.map((item) => { const tr = document.createElement('tr'); tr.append(...make(item)); return tr }))
}
const sum = (xs) => xs.reduce((a, b) => a + b, 0)
const ms = (s) => s === undefined ? '–' : (s * 1000).toFixed(s < 0.01 ? 2 : 1) + ' ms'
/** The p99 upper bound of the calls between two cumulative histograms. */
function p99(prev, now) {
  if (!prev) return undefined
  const d = now.counts.map((c, i) => c - (prev.counts[i] || 0))
  const total = d[d.length - 1]
  if (!(total > 0)) return undefined
  return now.le[d.findIndex((c) => c >= 0.99 * total)]
}
/** The p99 bucket bound of per-bucket (not cumulative) counts. */
function p99Buckets(counts) {
  const total = sum(counts)
  if (!(total > 0)) return undefined
  let seen = 0
  for (let i = 0; i < counts.length; i++) { seen += counts[i]; if (seen >= 0.99 * total) return METHOD_BUCKETS[i] ?? Infinity }
}
const failedOf = (calls) => sum(Object.entries(calls).filter(([k]) => k !== 'ok' && k !== 'retried').map(([, v]) => v))
/** Rates of one node over the interval since its previous answer. */
function rates(n) {
  const p = previous.get(n.node)
  if (!p || p.at >= n.at) return undefined
  const seconds = (n.at - p.at) / 1000
  const calls = sum(Object.values(n.calls)) - sum(Object.values(p.calls))
  const failed = failedOf(n.calls) - failedOf(p.calls)
  const methods = []
  const before = p.methods.since === n.methods.since ? new Map(p.methods.methods.map((m) => [m.actorType + '.' + m.method, m])) : new Map()
  for (const m of n.methods.methods) {
    const b = before.get(m.actorType + '.' + m.method)
    const c = m.calls - (b ? b.calls : 0)
    if (c <= 0) continue
    const buckets = m.buckets.map((x, i) => x - (b ? b.buckets[i] : 0))
    methods.push({ name: m.actorType + '.' + m.method, node: n.name, rate: c / seconds, errors: (m.errors - (b ? b.errors : 0)) / seconds, mean: (m.seconds - (b ? b.seconds : 0)) / c, p99: p99Buckets(buckets) })
  }
  return { rate: calls / seconds, errors: calls > 0 ? failed / calls : 0, p99: p99(p.latency, n.latency), methods }
}
async function refresh() {
  if (document.visibilityState !== 'visible') return
  const s = await fetch('/dashboard/state', { cache: 'no-store' }).then((r) => r.json()).catch(() => undefined)
  if (!s) return
  $('node').textContent = s.node
  $('updated').textContent = new Date(s.at).toLocaleTimeString()
  $('upCount').textContent = s.members.filter((m) => m.status === 'up' && m.reachability === 'reachable').length + ' / ' + s.members.length
  const live = s.nodes.filter((n) => !n.error)
  const r = new Map(live.map((n) => [n.node, rates(n)]))
  for (const n of live) previous.set(n.node, n)
  const known = [...r.values()].filter(Boolean)
  if (known.length) {
    const total = sum(known.map((x) => x.rate))
    $('rate').textContent = total.toFixed(1)
    $('errors').textContent = total > 0 ? (100 * sum(known.map((x) => x.errors * x.rate)) / total).toFixed(1) + ' %' : '0 %'
    const worst = Math.max(...known.map((x) => x.p99 ?? 0))
    $('p99').textContent = worst > 0 ? ms(worst) : '–'
  }
  $('actors').textContent = sum(live.map((n) => n.actors.total))
  $('associations').textContent = sum(live.map((n) => n.associations))
  $('rss').textContent = (sum(live.map((n) => n.memory.rss)) / 1048576).toFixed(0) + ' MiB'
  rows('members', s.members, (m) => {
    const name = cell(m.name + ' ' + m.node)
    for (const [flag, label] of [[m.node === s.leader, 'leader'], [m.node === s.oldest, 'oldest']]) {
      if (!flag) continue
      const b = document.createElement('span'); b.className = 'badge'; b.textContent = label; name.append(b)
    }
    return [name, cell(m.status, m.status), cell(m.reachability, m.reachability), cell(m.observedBy.join(', ')), cell(m.roles.join(', ')), cell(m.upNumber ? '#' + m.upNumber : '')]
  })
  rows('nodes', s.nodes, (n) => {
    if (n.error) return [cell(n.name + ' ' + n.node), cell(n.error, 'unreachable'), cell(''), cell(''), cell(''), cell(''), cell(''), cell(''), cell('')]
    const x = r.get(n.node)
    const v = n.virtual || []
    return [cell(n.name + ' ' + n.node), cell(x ? x.rate.toFixed(1) : '–'), cell(x ? (100 * x.errors).toFixed(1) + ' %' : '–'), cell(x ? ms(x.p99) : '–'),
      cell(String(n.actors.total)), cell(String(sum(v.map((g) => g.active)))), cell(String(sum(v.map((g) => g.owned)))), cell(String(n.associations)), cell((n.memory.rss / 1048576).toFixed(0) + ' MiB')]
  })
  const types = new Map()
  for (const n of live) for (const [t, c] of Object.entries(n.actors.byType)) { if (!types.has(t)) types.set(t, []); types.get(t).push(n.name + ' ' + c) }
  rows('types', [...types.entries()].sort((a, b) => a[0].localeCompare(b[0])), ([t, per]) => [cell(t), cell(String(sum(per.map((x) => Number(x.split(' ').pop()))))), cell(per.join(' · '))])
  const methods = known.flatMap((x) => x.methods).sort((a, b) => b.rate - a.rate).slice(0, 15)
  rows('methods', methods, (m) => [cell(m.name), cell(m.node), cell(m.rate.toFixed(1)), cell(m.errors.toFixed(1), m.errors > 0 ? 'down' : ''), cell(ms(m.mean)), cell(m.p99 === Infinity ? '> 10 s' : ms(m.p99))])
  const singletons = new Map()
  for (const n of live) for (const g of n.singletons) if (!singletons.has(g.name) || g.here) singletons.set(g.name, g)
  for (const g of singletons.values()) {
    const was = hosts.get(g.name)
    if (was !== undefined && was !== g.host) log('singleton ' + g.name + ': ' + (was || '(none)') + ' → ' + (g.host || '(none)'))
    hosts.set(g.name, g.host)
  }
  rows('singletons', [...singletons.values()], (g) => [cell(g.name), cell(g.host || '(none)'), cell(g.leaseEpoch === null ? '' : String(g.leaseEpoch)), cell(String(g.held))])
  rows('virtual', live.flatMap((n) => (n.virtual || []).map((g) => ({ ...g, node: n.name }))), (g) => [cell(g.node), cell(g.role || '(any)'), cell(String(g.owned)), cell(String(g.open)), cell(String(g.active)), cell(String(g.held)), cell('v' + g.tableVersion)])
  const refused = live.flatMap((n) => Object.entries(n.refused).map(([k, v]) => n.name + ' ' + k + ': ' + v))
  $('refused').textContent = refused.length ? refused.join(' · ') : 'none'
}
function log(text) {
  const line = document.createElement('div')
  line.textContent = new Date().toLocaleTimeString() + '  ' + text
  $('log').prepend(line)
  while ($('log').childElementCount > 200) $('log').lastElementChild.remove()
}
const events = new EventSource('/cluster/events')
events.addEventListener('snapshot', (e) => log('snapshot: ' + JSON.parse(e.data).members.length + ' members'))
events.addEventListener('member', (e) => { const d = JSON.parse(e.data); log('member ' + d.member.node + ': ' + (d.previous || 'new') + ' → ' + d.member.status); void refresh() })
events.addEventListener('reachability', (e) => { const d = JSON.parse(e.data); log('reachability ' + d.member.node + ': ' + d.member.reachability) })
events.addEventListener('leader', (e) => { const d = JSON.parse(e.data); log('leader: ' + (d.leader ? d.leader.node : 'none')) })
events.addEventListener('singleton', (e) => { const d = JSON.parse(e.data); log('singleton ' + d.singleton + ' ' + d.event + ' on ' + d.node) })
events.addEventListener('shards', (e) => { const d = JSON.parse(e.data); log('shards' + (d.role ? ' (' + d.role + ')' : '') + ': table v' + d.version + ', ' + d.moved + ' moved (' + d.node + ' +' + d.gained + ' −' + d.lost + ')') })
setInterval(refresh, 2000)
document.addEventListener('visibilitychange', refresh)
void refresh()
`

/**
 * The dashboard's page (`GET /dashboard`) and script (`GET /dashboard/app.js`): plain HTML and
 * JavaScript, no build, no external asset (a strict Content-Security-Policy: same origin only). It
 * reads `/dashboard/state` every 2 s while the tab is visible (nothing is sampled otherwise), and
 * `/cluster/events` for a live event log of the last 200 events. Read-only: leave and down stay
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
<h2>Traffic (this node)</h2>
<div class="grid">
  <div class="card">members up<b id="upCount">–</b></div>
  <div class="card">calls/s<b id="rate">–</b></div>
  <div class="card">errors<b id="errors">–</b></div>
  <div class="card">remote p99<b id="p99">–</b></div>
  <div class="card">actors<b id="actors">–</b></div>
  <div class="card">associations<b id="associations">–</b></div>
  <div class="card">memory (RSS)<b id="rss">–</b></div>
</div>
<h2>Members</h2>
<table id="members"><thead><tr><th>member</th><th>status</th><th>reachability</th><th>unreachable from</th><th>roles</th><th>age</th></tr></thead><tbody></tbody></table>
<h2>Singletons</h2>
<table id="singletons"><thead><tr><th>name</th><th>host</th><th>here</th><th>lease epoch</th><th>held calls</th></tr></thead><tbody></tbody></table>
<h2>Virtual actors (this node)</h2>
<table id="virtual"><thead><tr><th>role</th><th>shards owned</th><th>open</th><th>active ids</th><th>held calls</th><th>table</th></tr></thead><tbody></tbody></table>
<h2>Refusals (this node, since start)</h2>
<div id="refused" class="meta">none</div>
<h2>Events</h2>
<div id="log"></div>
<script src="/dashboard/app.js"></script>
</body>
</html>
`

export const DASHBOARD_JS = `'use strict'
const $ = (id) => document.getElementById(id)
let previous
function cell(text, cls) { const td = document.createElement('td'); td.textContent = text; if (cls) td.className = cls; return td }
function rows(table, items, make) {
  const body = $(table).tBodies[0]
  body.replaceChildren(...items.map((item) => { const tr = document.createElement('tr'); tr.append(...make(item)); return tr }))
}
function p99(prev, now) {
  if (!prev) return undefined
  const d = now.counts.map((c, i) => c - (prev.counts[i] || 0))
  const total = d[d.length - 1]
  if (!(total > 0)) return undefined
  const i = d.findIndex((c) => c >= 0.99 * total)
  return now.le[i]
}
async function refresh() {
  if (document.visibilityState !== 'visible') return
  const s = await fetch('/dashboard/state', { cache: 'no-store' }).then((r) => r.json()).catch(() => undefined)
  if (!s) return
  $('node').textContent = s.node
  $('updated').textContent = new Date(s.at).toLocaleTimeString()
  $('upCount').textContent = s.members.filter((m) => m.status === 'up' && m.reachability === 'reachable').length + ' / ' + s.members.length
  const total = Object.values(s.calls).reduce((a, b) => a + b, 0)
  const failed = Object.entries(s.calls).filter(([k]) => k !== 'ok' && k !== 'retried').reduce((a, [, b]) => a + b, 0)
  if (previous) {
    const seconds = (s.at - previous.at) / 1000
    const prevTotal = Object.values(previous.calls).reduce((a, b) => a + b, 0)
    const prevFailed = Object.entries(previous.calls).filter(([k]) => k !== 'ok' && k !== 'retried').reduce((a, [, b]) => a + b, 0)
    $('rate').textContent = ((total - prevTotal) / seconds).toFixed(1)
    $('errors').textContent = total > prevTotal ? (100 * (failed - prevFailed) / (total - prevTotal)).toFixed(1) + ' %' : '0 %'
    const q = p99(previous.latency, s.latency)
    $('p99').textContent = q === undefined ? '–' : (q * 1000).toFixed(1) + ' ms'
  }
  previous = s
  $('actors').textContent = s.actors
  $('associations').textContent = s.associations
  $('rss').textContent = (s.memory.rss / 1048576).toFixed(0) + ' MiB'
  rows('members', s.members, (m) => {
    const name = cell(m.name + ' ' + m.node)
    for (const [flag, label] of [[m.node === s.leader, 'leader'], [m.node === s.oldest, 'oldest']]) {
      if (!flag) continue
      const b = document.createElement('span'); b.className = 'badge'; b.textContent = label; name.append(b)
    }
    return [name, cell(m.status, m.status), cell(m.reachability, m.reachability), cell(m.observedBy.join(', ')), cell(m.roles.join(', ')), cell(m.upNumber ? '#' + m.upNumber : '')]
  })
  rows('singletons', s.singletons, (g) => [cell(g.name), cell(g.host || '(none)'), cell(g.here ? 'yes' : ''), cell(g.leaseEpoch === null ? '' : String(g.leaseEpoch)), cell(String(g.held))])
  rows('virtual', s.virtual || [], (g) => [cell(g.role || '(any)'), cell(String(g.owned)), cell(String(g.open)), cell(String(g.active)), cell(String(g.held)), cell('v' + g.tableVersion)])
  const refused = Object.entries(s.refused)
  $('refused').textContent = refused.length ? refused.map(([k, v]) => k + ': ' + v).join(' · ') : 'none'
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
setInterval(refresh, 2000)
document.addEventListener('visibilitychange', refresh)
void refresh()
`

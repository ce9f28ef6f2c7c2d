/**
 * The Shoal Grafana dashboard, as code: `npm run grafana:build` writes `shoal-dashboard.json` (the
 * export form Grafana imports, with a `DS_PROMETHEUS` input). Every panel queries metrics the nodes
 * really emit; `deploy-grafana.test.ts` lints the JSON (dashboard-linter's rules) and runs every
 * query against a real Prometheus scraping a test cluster, so a panel over a metric nobody emits
 * fails the build.
 *
 * Queries use `$job`/`$instance` matchers and `$__rate_interval`; `S` below writes the selector.
 */
import { writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

/** A metric selector with the dashboard's matchers and any extra ones. */
const S = (metric: string, extra = ''): string => `${metric}{job=~"$job",instance=~"$instance"${extra ? `,${extra}` : ''}}`
const rate = (metric: string, extra = ''): string => `rate(${S(metric, extra)}[$__rate_interval])`
const increase = (metric: string, extra = ''): string => `increase(${S(metric, extra)}[$__rate_interval])`
const p99 = (histogram: string, extra = ''): string => `histogram_quantile(0.99, sum by (le, instance) (${rate(`${histogram}_bucket`, extra)}))`

interface PanelSpec {
  readonly title: string
  readonly description: string
  readonly unit: string
  /** PromQL and its legend. */
  readonly targets: ReadonlyArray<readonly [string, string]>
  readonly type?: 'timeseries' | 'stat'
}

interface RowSpec {
  readonly title: string
  readonly panels: readonly PanelSpec[]
}

export const ROWS: readonly RowSpec[] = [
  {
    title: 'Cluster health',
    panels: [
      {
        title: 'Members up and reachable',
        description: 'Members each node sees up and reachable. Nodes that disagree have not converged yet, or are partitioned.',
        unit: 'short',
        type: 'stat',
        targets: [[`sum by (instance) (${S('shoal_cluster_members', 'status="up",reachability="reachable"')})`, '{{instance}}']],
      },
      {
        title: 'Unreachable members',
        description: 'Members each node finds unreachable (any status). Above 0 for longer than stable-after means a downing decision is coming.',
        unit: 'short',
        targets: [[`sum by (instance) (${S('shoal_cluster_members', 'reachability="unreachable"')})`, '{{instance}}']],
      },
      {
        title: 'Members by status',
        description: 'Members by membership status, as each node sees them.',
        unit: 'short',
        targets: [[`sum by (instance, status) (${S('shoal_cluster_members')})`, '{{instance}} {{status}}']],
      },
      {
        title: 'Leader and convergence',
        description: 'Which node leads (1), and whether each node has converged (1): the leader moves members up and out only once converged.',
        unit: 'short',
        targets: [
          [`max by (instance) (${S('shoal_cluster_leader')})`, 'leader {{instance}}'],
          [`min by (instance) (${S('shoal_cluster_converged')})`, 'converged {{instance}}'],
        ],
      },
      {
        title: 'Leader changes and downing decisions',
        description:
          'Leader changes seen and downing decisions taken in each interval. Downing outside a real failure points at a flapping network or long pauses.',
        unit: 'short',
        targets: [
          [`sum by (instance) (${increase('shoal_cluster_leader_changes_total')})`, 'leader changes {{instance}}'],
          [`sum by (instance, kind) (${increase('shoal_cluster_downing_decisions_total')})`, 'downing {{kind}} {{instance}}'],
        ],
      },
    ],
  },
  {
    title: 'Calls',
    panels: [
      {
        title: 'Calls per second',
        description: 'Calls made from each node, by outcome (ok, or the stable error code).',
        unit: 'reqps',
        targets: [[`sum by (instance, outcome) (${rate('shoal_calls_total')})`, '{{instance}} {{outcome}}']],
      },
      {
        title: 'Error ratio',
        description:
          'Share of calls from each node that failed (timeouts, refusals, remote errors); calls a route took back and sent again (retried) are not failures.',
        unit: 'percentunit',
        targets: [
          [
            `sum by (instance) (${rate('shoal_calls_total', 'outcome!~"ok|retried"')}) / sum by (instance) (${rate('shoal_calls_total')}) or sum by (instance) (${rate('shoal_calls_total')}) * 0`,
            '{{instance}}',
          ],
        ],
      },
      {
        title: 'Remote call latency p99',
        description: '99th percentile latency of remote calls made from each node (every remote call is timed).',
        unit: 's',
        targets: [[p99('shoal_call_duration_seconds', 'target="remote"'), '{{instance}}']],
      },
      {
        title: 'Mailboxes and actors',
        description: 'Calls waiting in local mailboxes, and live local actors, per node.',
        unit: 'short',
        targets: [
          [`sum by (instance) (${S('shoal_mailbox_depth')})`, 'waiting {{instance}}'],
          [`sum by (instance) (${S('shoal_actors')})`, 'actors {{instance}}'],
        ],
      },
    ],
  },
  {
    title: 'Transport',
    panels: [
      {
        title: 'Transport throughput',
        description: 'Bytes per second through the TCP transport, in and out.',
        unit: 'Bps',
        targets: [[`sum by (instance, direction) (${rate('shoal_transport_bytes_total')})`, '{{instance}} {{direction}}']],
      },
      {
        title: 'Associations and refusals',
        description: 'Established associations per node, and refusals per second by reason (handshake, protocol, method, management).',
        unit: 'short',
        targets: [
          [`sum by (instance) (${S('shoal_associations')})`, 'associations {{instance}}'],
          [`sum by (instance, reason) (${rate('shoal_refused_total')})`, 'refused {{reason}} {{instance}}'],
        ],
      },
      {
        title: 'Inbound backpressure',
        description: 'Times per second a connection stopped reading because its peer had too much work outstanding here.',
        unit: 'short',
        targets: [[`sum by (instance) (${rate('shoal_inbound_paused_total')})`, '{{instance}}']],
      },
    ],
  },
  {
    title: 'SWIM failure detection',
    panels: [
      {
        title: 'SWIM members by status',
        description: 'Members by SWIM status (alive, suspect, dead) as each node sees them.',
        unit: 'short',
        targets: [[`sum by (instance, status) (${S('shoal_swim_members')})`, '{{instance}} {{status}}']],
      },
      {
        title: 'Local health',
        description: 'Lifeguard local health multiplier (0 = healthy). It rises when this node misses its own probes: a slow node, not a failing peer.',
        unit: 'short',
        targets: [[`max by (instance) (${S('shoal_swim_local_health')})`, '{{instance}}']],
      },
      {
        title: 'Probes and suspicions',
        description: 'Probes, failed probes and suspicions raised per second.',
        unit: 'short',
        targets: [
          [`sum by (instance) (${rate('shoal_swim_probes_total')})`, 'probes {{instance}}'],
          [`sum by (instance) (${rate('shoal_swim_failed_probes_total')})`, 'failed {{instance}}'],
          [`sum by (instance) (${rate('shoal_swim_suspicions_raised_total')})`, 'suspicions {{instance}}'],
        ],
      },
    ],
  },
  {
    title: 'Singletons',
    panels: [
      {
        title: 'Singleton host',
        description: 'Which node runs each singleton (1). Two nodes at 1 at once for the same name would be a split brain.',
        unit: 'short',
        targets: [[`max by (instance, name) (${S('shoal_singleton_hosting')})`, '{{name}} {{instance}}']],
      },
      {
        title: 'Singleton lease epoch and held calls',
        description: 'The lease epoch of each running singleton (a change means it moved), and calls proxies hold while no instance is known.',
        unit: 'short',
        targets: [
          [`max by (name) (${S('shoal_singleton_lease_epoch')})`, 'epoch {{name}}'],
          [`sum by (instance, name) (${S('shoal_singleton_held_calls')})`, 'held {{name}} {{instance}}'],
        ],
      },
    ],
  },
  {
    title: 'Virtual actors',
    panels: [
      {
        title: 'Active virtual actors',
        description: 'Virtual actors active on each node, by placement group (role).',
        unit: 'short',
        targets: [[`sum by (instance, role) (${S('shoal_virtual_activations')})`, '{{instance}} {{role}}']],
      },
      {
        title: 'Shards owned and open',
        description: 'Shards each node owns in its table and serves now; a gap is a hand-over in progress.',
        unit: 'short',
        targets: [[`sum by (instance, state) (${S('shoal_virtual_shards')})`, '{{instance}} {{state}}']],
      },
      {
        title: 'Held calls and forwarding',
        description: 'Calls held for shards without an open owner, and calls per second routers forwarded to an owner elsewhere.',
        unit: 'short',
        targets: [
          [`sum by (instance) (${S('shoal_virtual_held_calls')})`, 'held {{instance}}'],
          [`sum by (instance) (${rate('shoal_virtual_forwarded_total')})`, 'forwarded/s {{instance}}'],
        ],
      },
      {
        title: 'Activations and deactivations',
        description: 'Virtual actors activated and deactivated per second (idle passivation, moves).',
        unit: 'short',
        targets: [
          [`sum by (instance) (${rate('shoal_virtual_activations_total')})`, 'activated {{instance}}'],
          [`sum by (instance) (${rate('shoal_virtual_deactivations_total')})`, 'deactivated {{instance}}'],
        ],
      },
    ],
  },
  {
    title: 'Journal',
    panels: [
      {
        title: 'Appends per second',
        description: 'Events appended per second by outcome; SHOAL_JOURNAL_CONFLICT means two activations of one entity wrote.',
        unit: 'short',
        targets: [[`sum by (instance, outcome) (${rate('shoal_journal_appends_total')})`, '{{instance}} {{outcome}}']],
      },
      {
        title: 'Append latency p99',
        description: '99th percentile from emit to the store’s acknowledgement (queueing and group commit included).',
        unit: 's',
        targets: [[p99('shoal_journal_append_seconds'), '{{instance}}']],
      },
      {
        title: 'Write batches',
        description:
          'Store transactions per second, and the median and 99th percentile of the appends each carried (group commit: 1 under load means emits do not overlap; hundreds mean the store is the bottleneck). SQLite and PostgreSQL stores.',
        unit: 'short',
        targets: [
          [`sum by (instance) (${rate('shoal_journal_batch_appends_count')})`, 'transactions/s {{instance}}'],
          [`histogram_quantile(0.5, sum by (le, instance) (${rate('shoal_journal_batch_appends_bucket')}))`, 'p50 appends {{instance}}'],
          [p99('shoal_journal_batch_appends'), 'p99 appends {{instance}}'],
        ],
      },
      {
        title: 'Recoveries',
        description: 'Event-sourced actors recovered per second, and the 99th percentile of their recovery time.',
        unit: 'short',
        targets: [
          [`sum by (instance) (${rate('shoal_journal_recoveries_total')})`, 'recoveries/s {{instance}}'],
          [p99('shoal_journal_recovery_seconds'), 'p99 seconds {{instance}}'],
        ],
      },
    ],
  },
  {
    title: 'Node.js',
    panels: [
      {
        title: 'Event-loop lag p99',
        description: 'Event-loop delay, 99th percentile: above ~100 ms heartbeats and probes run late and peers may suspect this node.',
        unit: 's',
        targets: [[`max by (instance) (${S('nodejs_eventloop_lag_p99_seconds')})`, '{{instance}}']],
      },
      {
        title: 'Memory',
        description: 'Resident set size and V8 heap used.',
        unit: 'bytes',
        targets: [
          [`max by (instance) (${S('process_resident_memory_bytes')})`, 'rss {{instance}}'],
          [`max by (instance) (${S('nodejs_heap_size_used_bytes')})`, 'heap used {{instance}}'],
        ],
      },
      {
        title: 'CPU and GC',
        description: 'CPU seconds per second, and seconds per second spent in garbage collection.',
        unit: 'percentunit',
        targets: [
          [`max by (instance) (${rate('process_cpu_seconds_total')})`, 'cpu {{instance}}'],
          [`sum by (instance) (${rate('nodejs_gc_duration_seconds_sum')})`, 'gc {{instance}}'],
        ],
      },
    ],
  },
]

const DS = { type: 'prometheus', uid: '${datasource}' }

function variable(name: string, label: string): object {
  return {
    name,
    label,
    type: 'query',
    datasource: DS,
    query: { query: name === 'job' ? 'label_values(shoal_associations, job)' : 'label_values(shoal_associations{job=~"$job"}, instance)', refId: name },
    definition: name === 'job' ? 'label_values(shoal_associations, job)' : 'label_values(shoal_associations{job=~"$job"}, instance)',
    multi: true,
    includeAll: true,
    allValue: '.+',
    refresh: 2,
    sort: 1,
    current: { selected: true, text: ['All'], value: ['$__all'] },
  }
}

/** The dashboard JSON, in Grafana's export form. */
export function dashboard(): object {
  const panels: object[] = []
  let id = 1
  let y = 0
  for (const row of ROWS) {
    panels.push({ id: id++, type: 'row', title: row.title, collapsed: false, gridPos: { h: 1, w: 24, x: 0, y }, panels: [] })
    y += 1
    row.panels.forEach((p, i) => {
      const w = 24 / Math.min(row.panels.length, 4)
      panels.push({
        id: id++,
        type: p.type ?? 'timeseries',
        title: p.title,
        description: p.description,
        datasource: DS,
        gridPos: { h: 8, w, x: (i % 4) * w, y: y + Math.floor(i / 4) * 8 },
        fieldConfig: { defaults: { unit: p.unit }, overrides: [] },
        options: p.type === 'stat' ? { reduceOptions: { calcs: ['lastNotNull'] } } : { legend: { displayMode: 'list', placement: 'bottom' } },
        targets: p.targets.map(([expr, legendFormat], k) => ({ datasource: DS, expr, legendFormat, refId: String.fromCharCode(65 + k) })),
      })
    })
    y += Math.ceil(row.panels.length / 4) * 8
  }
  return {
    __inputs: [{ name: 'DS_PROMETHEUS', label: 'Prometheus', type: 'datasource', pluginId: 'prometheus', pluginName: 'Prometheus' }],
    __requires: [
      { type: 'grafana', id: 'grafana', name: 'Grafana', version: '10.0.0' },
      { type: 'datasource', id: 'prometheus', name: 'Prometheus', version: '1.0.0' },
      { type: 'panel', id: 'timeseries', name: 'Time series', version: '' },
      { type: 'panel', id: 'stat', name: 'Stat', version: '' },
    ],
    id: null,
    uid: 'shoal-cluster',
    title: 'Shoal cluster',
    description:
      'A Shoal cluster: membership, calls, transport, SWIM, singletons, virtual actors, journal and Node.js. Generated by deploy/grafana/dashboard.ts.',
    tags: ['shoal'],
    timezone: 'browser',
    schemaVersion: 39,
    version: 1,
    editable: true,
    refresh: '10s',
    time: { from: 'now-1h', to: 'now' },
    templating: {
      list: [
        {
          name: 'datasource',
          label: 'Data Source',
          type: 'datasource',
          query: 'prometheus',
          current: { selected: false, text: 'Prometheus', value: '${DS_PROMETHEUS}' },
        },
        variable('job', 'Job'),
        variable('instance', 'Instance'),
      ],
    },
    annotations: { list: [] },
    panels,
  }
}

/** The committed file's text. */
export function dashboardText(): string {
  return `${JSON.stringify(dashboard(), null, 2)}\n`
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const out = fileURLToPath(new URL('./shoal-dashboard.json', import.meta.url))
  writeFileSync(out, dashboardText())
  console.log(`wrote ${out}`)
}

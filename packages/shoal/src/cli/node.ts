/**
 * `shoal node` and `shoal clusterd`: run a cluster node (or the rendezvous daemon) as a process.
 * Logs go to stdout: pretty on a terminal, JSON lines otherwise. SIGTERM or SIGINT leaves the
 * cluster gracefully and exits 0; every other stop exits 1 (marked down, or removed without having
 * left), so a supervisor restarts it with a new incarnation.
 * @module
 */
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { type Logger, pino } from 'pino'
import { checkNodeHost } from '../actor/ClusterNode.ts'
import type { DiscoveryProvider } from '../discovery/Discovery.ts'
import { DnsDiscovery } from '../discovery/DnsDiscovery.ts'
import { KubernetesDiscovery } from '../discovery/KubernetesDiscovery.ts'
import { ConfigError } from '../errors.ts'
import type { EventStore } from '../journal/EventStore.ts'
import { journalPlugin } from '../journal/JournalPlugin.ts'
import { MemoryEventStore } from '../journal/MemoryEventStore.ts'
import { ManagementServer } from '../management/ManagementServer.ts'
import { ClusterSystem } from '../system/ClusterSystem.ts'
import { isLoopbackHost } from '../system/Settings.ts'
import { checkSecretStrength } from '../util/secretStrength.ts'

/** Help text of `shoal node`. */
export const NODE_USAGE = `Usage: shoal node --port P [options]

Runs one cluster node. The secret comes from SHOAL_SECRET or --secret-file.

  --name N             system name (default shoal)
  --cluster-name C     cluster name; nodes of other clusters are refused (default SHOAL_CLUSTER_NAME or shoal)
  --host H             host to bind and advertise (default 127.0.0.1); any other than loopback
                       needs the cluster secret, or --insecure
  --insecure           allow a non-loopback --host without a cluster secret (anyone on the
                       network could join and call actors)
  --port P             TCP port, and UDP for failure detection (default 7337)
  --seed HOST:PORT     a node to join (repeatable)
  --clusterd [H:P]     register with a clusterd (default 127.0.0.1:3137)
  --dns NAME           join the A/AAAA records of NAME (a headless service) on --port
  --k8s SELECTOR       join pods matching SELECTOR (in-cluster Kubernetes API)
  --k8s-namespace NS   namespace of those pods (default the pod's own)
  --k8s-api-url URL    Kubernetes API outside a pod (with --k8s-token-file, --k8s-ca-file)
  --roles R1,R2        roles of this node
  --http PORT          management endpoint on 127.0.0.1:PORT (--http-host H --http-public
                       to expose it over plain HTTP); its GET routes need no token
  --http-token-file F  read the management token from F (default SHOAL_HTTP_TOKEN): the
                       bearer of POST /cluster/leave and /cluster/down, at least 32 random
                       characters (npx shoal secret), not the cluster secret; without one
                       those routes are refused
  --downing STRATEGY   keep-majority (default), static-quorum:N, keep-oldest, down-all, timeout[:ms], none
  --stable-after MS    how long the view must be stable before downing (default 3000)
  --min-members N      members needed before anyone is up (default 1)
  --journal STORE      event sourcing: sqlite:PATH (needs @shoal/journal-sqlite),
                       postgres://… (needs @shoal/journal-postgres) or memory
  --secret-file F      read the cluster secret from F
  --log-level L        trace, debug, info (default), warn, error, fatal, silent
                       (default SHOAL_LOG_LEVEL or info)
`

/** Help text of `shoal clusterd`. */
export const CLUSTERD_USAGE = `Usage: shoal clusterd [--host H] [--port P]

Runs the clusterd rendezvous daemon (default 127.0.0.1:3137). Nodes started with --clusterd
register with it and join each other. Needs the cluster secret (SHOAL_SECRET or --secret-file),
the same as the nodes'.

  --host H             host to bind (default 127.0.0.1; another needs the secret, or --insecure)
  --port P             TCP port (default 3137)
  --insecure           allow a non-loopback --host without a cluster secret
  --secret-file F      read the cluster secret from F
  --log-level L        trace, debug, info (default), warn, error, fatal, silent
`

/** Options both daemons take. */
const COMMON_OPTIONS = {
  'secret-file': { type: 'string' },
  'log-level': { type: 'string', default: process.env.SHOAL_LOG_LEVEL || 'info' },
  insecure: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const

/** The levels `--log-level` accepts (pino's). */
const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']

/** Throws a usage error unless `level` is one of {@link LOG_LEVELS}. */
function checkLogLevel(level: string): string {
  if (!LOG_LEVELS.includes(level)) {
    throw new ConfigError(`--log-level ${JSON.stringify(level)} is not a log level: use one of ${LOG_LEVELS.join(', ')} (also SHOAL_LOG_LEVEL).`)
  }
  return level
}

/**
 * The cluster secret, refusing an invalid `--host` (the forms a node can advertise) and a
 * non-loopback one without a secret unless `insecure`: the CLI's own wording of the checks
 * `ClusterSystem.start` makes.
 */
function secretFor(host: string, file: string | undefined, insecure: boolean): string | undefined {
  checkNodeHost(host, '--host')
  const secret = readSecret(file)
  if ((secret === undefined || secret === '') && !isLoopbackHost(host) && !insecure) {
    throw new ConfigError(
      `--host ${host} without a cluster secret would let anyone on the network join and call actors: set SHOAL_SECRET (or --secret-file F) to the same secret on every node, or pass --insecure to accept that.`,
    )
  }
  return secret
}

/** The pino logger of a CLI process: pretty on a terminal, JSON lines otherwise. */
export function cliLogger(level: string): Logger {
  if (process.stdout.isTTY) {
    try {
      return pino({ level, transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'HH:MM:ss.l' } } })
    } catch {
      // pino-pretty is a development dependency; JSON it is.
    }
  }
  return pino({ level })
}

/** The cluster secret from `file` or SHOAL_SECRET, refused if weak (see `util/secretStrength.ts`). */
function readSecret(file: string | undefined): string | undefined {
  let secret: string | undefined
  if (file === undefined) secret = process.env.SHOAL_SECRET
  else {
    try {
      secret = readFileSync(file, 'utf8').trim()
    } catch (e) {
      throw new ConfigError(`Cannot read --secret-file ${file}: ${(e as Error).message}`)
    }
  }
  checkSecretStrength(secret, file === undefined ? 'SHOAL_SECRET' : `--secret-file ${file}`)
  return secret
}

/**
 * The management token: from `file`, else SHOAL_HTTP_TOKEN; undefined when neither (the POST
 * routes are then refused). Never the cluster secret: a leaked token must not let anyone join.
 */
function httpToken(file: string | undefined, clusterSecret: string | undefined): string | undefined {
  let token = process.env.SHOAL_HTTP_TOKEN
  if (file !== undefined) {
    try {
      token = readFileSync(file, 'utf8').trim()
    } catch (e) {
      throw new ConfigError(`Cannot read --http-token-file ${file}: ${(e as Error).message}`)
    }
  }
  if (token === undefined || token === '') return undefined
  if (token === clusterSecret) {
    throw new ConfigError(
      'The management token (SHOAL_HTTP_TOKEN or --http-token-file) is the cluster secret: give it its own value (npx shoal secret prints one), so that whoever holds it cannot join the cluster.',
    )
  }
  return token
}

function int(v: string | undefined, name: string, fallback: number): number {
  if (v === undefined) return fallback
  const n = Number(v)
  if (!Number.isInteger(n) || n < 0) throw new ConfigError(`--${name} must be a whole number, got "${v}".`)
  return n
}

/** `--clusterd` takes an optional value: give it an empty one when none follows. */
function normalizeOptional(argv: string[], flag: string): string[] {
  const out: string[] = []
  for (let i = 0; i < argv.length; i++) {
    out.push(argv[i]!)
    if (argv[i] === flag && (i + 1 >= argv.length || argv[i + 1]!.startsWith('--'))) out.push('')
  }
  return out
}

/** Runs `shoal node`: starts the node, waits until it stops; 0 after a leave the operator asked for, 1 otherwise. */
export async function nodeCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: normalizeOptional(argv, '--clusterd'),
    options: {
      name: { type: 'string' },
      'cluster-name': { type: 'string' },
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '7337' },
      seed: { type: 'string', multiple: true },
      clusterd: { type: 'string' },
      dns: { type: 'string' },
      k8s: { type: 'string' },
      'k8s-namespace': { type: 'string' },
      'k8s-api-url': { type: 'string' },
      'k8s-token-file': { type: 'string' },
      'k8s-ca-file': { type: 'string' },
      roles: { type: 'string' },
      http: { type: 'string' },
      'http-host': { type: 'string', default: '127.0.0.1' },
      'http-public': { type: 'boolean', default: false },
      'http-token-file': { type: 'string' },
      downing: { type: 'string', default: 'keep-majority' },
      'stable-after': { type: 'string' },
      'min-members': { type: 'string' },
      journal: { type: 'string' },
      ...COMMON_OPTIONS,
    },
  })
  if (values.help) {
    process.stdout.write(NODE_USAGE)
    return 0
  }
  const log = cliLogger(checkLogLevel(values['log-level']))
  const port = int(values.port, 'port', 7337)
  const secret = secretFor(values.host, values['secret-file'], values.insecure)
  const discovery: DiscoveryProvider[] = []
  if (values.dns !== undefined) discovery.push(new DnsDiscovery({ name: values.dns, port }))
  if (values.k8s !== undefined) {
    const apiUrl = values['k8s-api-url']
    if (apiUrl === undefined && (!process.env.KUBERNETES_SERVICE_HOST || !process.env.KUBERNETES_SERVICE_PORT)) {
      throw new ConfigError(
        `--k8s ${values.k8s}: this is not a Kubernetes pod (KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set): run it in a pod, or pass --k8s-api-url URL (with --k8s-token-file F, --k8s-ca-file F and --k8s-namespace NS) to reach the API from outside.`,
      )
    }
    discovery.push(
      new KubernetesDiscovery({
        selector: values.k8s,
        namespace: values['k8s-namespace'],
        port,
        apiUrl,
        tokenFile: values['k8s-token-file'],
        caFile: values['k8s-ca-file'],
      }),
    )
  }
  const store = values.journal === undefined ? undefined : await openStore(values.journal)
  const system = await ClusterSystem.start({
    plugins: store ? [journalPlugin({ store })] : [],
    name: values.name,
    clusterName: values['cluster-name'],
    host: values.host,
    port,
    secret,
    insecure: values.insecure,
    logger: log,
    cluster: {
      seeds: values.seed ?? [],
      clusterd: values.clusterd === undefined ? undefined : values.clusterd === '' ? true : values.clusterd,
      discovery,
      roles: values.roles?.split(',').filter(Boolean) ?? [],
      downing: values.downing,
      stableAfter: values['stable-after'] === undefined ? undefined : int(values['stable-after'], 'stable-after', 3000),
      minMembers: int(values['min-members'], 'min-members', 1),
    },
  })
  let leaving: Promise<void> | undefined
  const leave = (why: string): Promise<void> => {
    if (leaving) {
      // A second signal: the operator does not want to wait for the hand-over.
      if (why.startsWith('SIG')) {
        log.warn({ why }, 'second signal: exiting at once')
        process.exit(130)
      }
      return leaving
    }
    log.info({ why }, 'leaving the cluster')
    leaving = system.cluster
      .leave()
      .then(() => system.shutdown())
      .catch((e: unknown) => log.error({ err: e }, 'leave failed'))
    return leaving
  }
  let management: ManagementServer | undefined
  if (values.http !== undefined) {
    try {
      if (!/^(127\.|::1$|localhost$)/.test(values['http-host']) && !values['http-public']) {
        throw new ConfigError(
          `--http-host ${values['http-host']} would expose the management endpoint over plain HTTP (membership, metrics, and the management token in clear): keep it on loopback (behind a TLS proxy), or pass --http-public to accept that.`,
        )
      }
      management = await ManagementServer.start(system, {
        host: values['http-host'],
        port: int(values.http, 'http', 0),
        token: httpToken(values['http-token-file'], secret),
        onLeave: () => leave('POST /cluster/leave'),
      })
    } catch (e) {
      // Leave no half-started node behind: peers would have to detect a crash.
      await system.shutdown()
      throw e
    }
    log.info({ url: `http://${values['http-host']}:${management.port}`, port: management.port }, 'management endpoint listening')
  }
  process.on('SIGTERM', () => void leave('SIGTERM'))
  process.on('SIGINT', () => void leave('SIGINT'))
  await system.terminated
  await management?.close()
  await store?.close()
  // 0 only after a leave the operator asked for; 1 for every stop the cluster caused (downed, or
  // removed without leaving after missing its down during a partition): a supervisor restarts it.
  const downed = system.cluster.downed
  log.info({ downed, status: system.cluster.status }, 'node stopped')
  return leaving !== undefined && !downed ? 0 : 1
}

/**
 * The event store named by `--journal`. The store packages depend on this one, so they are
 * imported by name at run time (installed next to it), not at build time.
 */
async function openStore(spec: string): Promise<EventStore> {
  if (spec === 'memory') return new MemoryEventStore()
  const load = async (pkg: string): Promise<Record<string, { open(...a: unknown[]): EventStore | Promise<EventStore> }>> => {
    try {
      return (await import(pkg)) as Record<string, { open(...a: unknown[]): EventStore | Promise<EventStore> }>
    } catch (e) {
      throw new ConfigError(`--journal ${spec} needs the package ${pkg}: npm install ${pkg} (${(e as Error).message}).`)
    }
  }
  if (spec.startsWith('sqlite:')) return (await load('@shoal/journal-sqlite')).SqliteEventStore!.open(spec.slice('sqlite:'.length))
  if (/^postgres(ql)?:\/\//.test(spec)) return (await load('@shoal/journal-postgres')).PostgresEventStore!.open(spec)
  throw new ConfigError(`--journal ${spec}: use sqlite:PATH, postgres://… or memory.`)
}

/** Runs `shoal clusterd` until SIGTERM or SIGINT. */
export async function clusterdCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '3137' },
      ...COMMON_OPTIONS,
    },
  })
  if (values.help) {
    process.stdout.write(CLUSTERD_USAGE)
    return 0
  }
  const log = cliLogger(checkLogLevel(values['log-level']))
  const daemon = await ClusterSystem.startClusterDaemon({
    host: values.host,
    port: int(values.port, 'port', 3137),
    secret: secretFor(values.host, values['secret-file'], values.insecure),
    insecure: values.insecure,
    logger: log,
  })
  log.info({ endpoint: `${values.host}:${daemon.node.endpoint.port}` }, 'clusterd listening')
  const stop = (): void => void daemon.shutdown()
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
  await daemon.terminated
  return 0
}

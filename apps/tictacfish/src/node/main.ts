/**
 * One TicTacFish node as an OS process (what `npm start` launches four of).
 *
 *   node main.ts --roles gateway|players|lobby[,…] [--host H] [--port P]
 *                [--clusterd H:P | --seed H:P … | --dns NAME]
 *                [--http P] [--http-host H] [--management P] [--management-host H]
 *                [--journal sqlite:FILE|postgres://…] [--name N]
 *                [--stable-after MS] [--down-margin MS] [--idle-timeout MS]
 *
 * In a container: `--host` is the pod's IP (bound and advertised), `--dns` a headless service
 * whose records are the other nodes, `--http-host`/`--management-host` 0.0.0.0 so that the
 * Service and the probes reach them.
 *
 * The cluster secret comes from SHOAL_SECRET, the management endpoint's token from
 * SHOAL_HTTP_TOKEN. Logs are JSON lines on stdout. SIGTERM or SIGINT leaves the cluster gracefully
 * (hand-over of the lobby and of the node's virtual actors) and exits 0; any other end exits 1.
 */
import { parseArgs } from 'node:util'
import { pino } from 'pino'
import { DnsDiscovery, ManagementServer } from 'shoal'
import { ROLES, type Role, startTicTacFishNode } from './TicTacFishNode.ts'

const { values } = parseArgs({
  options: {
    roles: { type: 'string', default: 'gateway,players,lobby' },
    name: { type: 'string' },
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '0' },
    seed: { type: 'string', multiple: true, default: [] },
    clusterd: { type: 'string' },
    dns: { type: 'string' },
    http: { type: 'string', default: '8080' },
    'http-host': { type: 'string', default: '127.0.0.1' },
    management: { type: 'string' },
    'management-host': { type: 'string', default: '127.0.0.1' },
    journal: { type: 'string', default: 'sqlite:./data/tictacfish.db' },
    'idle-timeout': { type: 'string' },
    'stable-after': { type: 'string' },
    'down-margin': { type: 'string' },
    'log-level': { type: 'string', default: process.env.SHOAL_LOG_LEVEL ?? 'info' },
  },
})

const roles = values.roles.split(',').map((r) => r.trim()) as Role[]
const unknown = roles.filter((r) => !ROLES.includes(r))
if (unknown.length > 0) {
  process.stderr.write(`Unknown role ${unknown.join(', ')}: use ${ROLES.join(', ')}.\n`)
  process.exit(2)
}
const int = (v: string | undefined): number | undefined => (v === undefined ? undefined : Number.parseInt(v, 10))
const logger = pino({ level: values['log-level'], base: { node: values.name ?? roles.join('+') } })

const node = await startTicTacFishNode({
  roles,
  system: {
    name: values.name ?? 'tictacfish',
    host: values.host,
    port: int(values.port),
    secret: process.env.SHOAL_SECRET,
    logger,
    cluster: {
      seeds: values.seed,
      stableAfter: int(values['stable-after']),
      ...(values.clusterd ? { clusterd: values.clusterd } : {}),
      ...(values.dns ? { discovery: [new DnsDiscovery({ name: values.dns, port: int(values.port) ?? 0 })] } : {}),
    },
  },
  journal: values.journal,
  gateway: { port: int(values.http), host: values['http-host'] },
  idleTimeout: int(values['idle-timeout']),
  downMargin: int(values['down-margin']),
})
const { system } = node
if (node.gateway) logger.info({ url: `http://${values.host}:${node.gateway.address.port}`, port: node.gateway.address.port }, 'gateway listening')

let leaving: Promise<void> | undefined
const leave = (why: string): Promise<void> => {
  if (leaving) return leaving
  logger.info({ why }, 'leaving the cluster')
  leaving = node.stop().catch((e: unknown) => logger.error({ err: e }, 'leave failed'))
  return leaving
}

const management =
  values.management === undefined
    ? undefined
    : await ManagementServer.start(system, {
        host: values['management-host'],
        port: int(values.management)!,
        token: process.env.SHOAL_HTTP_TOKEN,
        onLeave: () => leave('POST /cluster/leave'),
      })
if (management) logger.info({ url: `http://${values['management-host']}:${management.port}`, port: management.port }, 'management endpoint listening')
logger.info({ roles, address: `${system.node.endpoint.host}:${system.node.endpoint.port}` }, 'tictacfish node started')

process.on('SIGTERM', () => void leave('SIGTERM'))
process.on('SIGINT', () => void leave('SIGINT'))
await system.terminated
await leaving
await management?.close()
logger.info({ downed: system.cluster.downed }, 'node stopped')
process.exit(leaving !== undefined && !system.cluster.downed ? 0 : 1)

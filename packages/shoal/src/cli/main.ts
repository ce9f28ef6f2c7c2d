/**
 * The `shoal` command line.
 * @module
 */
import { readFileSync } from 'node:fs'
import { ShoalError } from '../errors.ts'
import { CLUSTERD_USAGE, clusterdCommand, NODE_USAGE, nodeCommand } from './node.ts'
import { SECRET_USAGE, secretCommand } from './secret.ts'
import { SIM_USAGE, simCommand } from './sim.ts'
import { SIM_CLUSTER_USAGE, simClusterCommand } from './simCluster.ts'
import { STATUS_USAGE, statusCommand } from './status.ts'

const USAGE = `Usage: shoal <command> [options]
       shoal --version

Commands:
  node       run a cluster node (shoal node --help)
  clusterd   run the clusterd rendezvous daemon
  status     print a node's view of the cluster (shoal status --http host:port)
  secret     print a fresh cluster secret (256 random bits, hex): export SHOAL_SECRET=$(npx shoal secret)
  sim        simulate a SWIM cluster, or with --cluster whole nodes under faults (shoal sim --help)
`

const USAGES: Record<string, string> = {
  node: NODE_USAGE,
  clusterd: CLUSTERD_USAGE,
  status: STATUS_USAGE,
  sim: `${SIM_USAGE}\n${SIM_CLUSTER_USAGE}`,
  secret: SECRET_USAGE,
}

/** Runs a `shoal` command; resolves with the exit code. */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv
  try {
    switch (command) {
      case 'node':
        return await nodeCommand(rest)
      case 'clusterd':
        return await clusterdCommand(rest)
      case 'status':
        return await statusCommand(rest)
      case 'sim':
        if (rest.includes('--cluster')) return await simClusterCommand(rest)
        simCommand(rest)
        return 0
      case 'secret':
        return secretCommand(rest)
      case '-v':
      case '--version':
        process.stdout.write(`${version()}\n`)
        return 0
      case undefined:
      case '-h':
      case '--help':
      case 'help':
        process.stdout.write(USAGE)
        return command === undefined ? 1 : 0
      default:
        process.stderr.write(`Unknown command "${command}".\n\n${USAGE}`)
        return 1
    }
  } catch (e) {
    // A bad setting: one line that says what to change. Unparsable arguments: the usage too.
    if (e instanceof ShoalError) {
      process.stderr.write(`shoal ${command}: ${e.message}\n`)
      return 2
    }
    if ((e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`shoal ${command}: ${(e as Error).message}\n${USAGES[command ?? ''] ? `\n${USAGES[command ?? '']}` : ''}`)
      return 2
    }
    throw e
  }
}

/** The version of this package (src/cli and dist/cli are both two levels below its package.json). */
function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
  return pkg.version
}

const code = await main(process.argv.slice(2))
process.exitCode = code
// A node or daemon that stopped exits even if a stray handle lingers.
if (process.argv[2] === 'node' || process.argv[2] === 'clusterd') setTimeout(() => process.exit(code), 500)

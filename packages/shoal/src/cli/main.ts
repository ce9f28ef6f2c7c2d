/**
 * The `shoal` command line.
 * @module
 */
import { ShoalError } from '../errors.ts'
import { SIM_USAGE, simCommand } from './sim.ts'

const USAGE = `Usage: shoal <command> [options]

Commands:
  sim      simulate a SWIM cluster on a virtual clock (shoal sim --help)
`

export function main(argv: string[]): number {
  const [command, ...rest] = argv
  try {
    switch (command) {
      case 'sim':
        simCommand(rest)
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
    if (e instanceof ShoalError || (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`shoal ${command}: ${(e as Error).message}\n${command === 'sim' ? `\n${SIM_USAGE}` : ''}`)
      return 2
    }
    throw e
  }
}

process.exitCode = main(process.argv.slice(2))

/**
 * `npm start`: two Shoal nodes in two OS processes on loopback.
 *
 * This process starts node sea_1 and hosts an Island actor; it then forks a second process, node
 * sea_2, which resolves the island by its id and calls it. Every step is printed.
 */
import { fork } from 'node:child_process'
import { type ActorRef, ClusterSystem, DistributedActor, distributed } from 'shoal'

class Island extends DistributedActor {
  private rocks = 0
  @distributed async addRock(n: number): Promise<number> {
    this.rocks += n
    this.log.info({ n, rocks: this.rocks }, 'rock added')
    return this.rocks
  }
  @distributed async visit(visitor: ActorRef<Boat>): Promise<string> {
    // Call back into the caller's node while the caller waits on us: re-entrancy across nodes.
    return `island with ${this.rocks} rocks meets ${await visitor.name()}`
  }
  /** Not declared @distributed: unreachable through refs, locally and remotely. */
  dig(): void {
    this.rocks = 0
  }
}

class Boat extends DistributedActor {
  @distributed async name(): Promise<string> {
    return `a boat from ${this.system.node.endpoint.name}`
  }
}

const say = (who: string, what: string): void => console.log(`[${who}] ${what}`)
const logLevel = process.env.SHOAL_LOG_LEVEL ?? 'warn'

async function host(): Promise<void> {
  const sea1 = await ClusterSystem.start({ name: 'sea_1', host: '127.0.0.1', port: 2550, logLevel })
  const island = sea1.spawn(Island)
  say('sea_1', `started on 127.0.0.1:2550, hosting ${island.id}`)
  const child = fork(process.argv[1]!, ['visitor', island.id.toString()], { execArgv: process.execArgv, stdio: 'inherit' })
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve))
  say('sea_1', `visitor process exited with code ${code}; the island now has ${await island.addRock(0)} rocks`)
  await sea1.shutdown()
  say('sea_1', 'shut down')
  process.exitCode = code ?? 1
}

async function visitor(islandId: string): Promise<void> {
  const sea2 = await ClusterSystem.start({ name: 'sea_2', host: '127.0.0.1', port: 2551, logLevel })
  say('sea_2', `started on 127.0.0.1:2551 (pid ${process.pid})`)
  const island = sea2.resolve(Island, islandId)
  say('sea_2', `addRock(3) -> ${await island.addRock(3)}`)
  say('sea_2', `addRock(4) -> ${await island.addRock(4)}`)
  const boat = sea2.spawn(Boat)
  say('sea_2', `visit(boat) -> ${await island.visit(boat)}`)
  const t = performance.now()
  const n = 10_000
  await Promise.all(Array.from({ length: n }, () => island.addRock(0)))
  say('sea_2', `${n} concurrent calls took ${(performance.now() - t).toFixed(0)} ms`)
  try {
    await (island as unknown as { dig(): Promise<void> }).dig()
  } catch (e) {
    say('sea_2', `calling an undeclared method is refused: ${(e as Error & { code: string }).code}`)
  }
  await sea2.shutdown()
  say('sea_2', 'shut down')
}

if (process.argv[2] === 'visitor') await visitor(process.argv[3]!)
else await host()

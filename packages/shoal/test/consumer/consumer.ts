/**
 * A user's program, type-checked against the published declarations (`dist/*.d.ts`, no `source`
 * condition, `skipLibCheck: false`): catches declarations that name something `stripInternal`
 * removed, or that only type-check against the sources.
 */
import {
  type ActorRef,
  type CallTraceContext,
  ClusterSystem,
  callTracing,
  DistributedActor,
  distributed,
  type Plugin,
  type PluginContext,
  ReceptionKey,
  singletonPlugin,
  type Termination,
} from 'shoal'
import { eventually } from 'shoal/testkit'

class Counter extends DistributedActor {
  #n = 0
  @distributed async add(k: number): Promise<number> {
    this.#n += k
    return this.#n
  }
}

const plugin: Plugin<{ readonly ready: number }> = {
  name: 'ready-counter',
  start(ctx: PluginContext) {
    let ready = 0
    ctx.control.onControl(201, () => undefined)
    const ref: ActorRef<Counter> = ctx.actors.wellKnownRef<Counter>('/system/x')
    void ref
    return {
      get ready() {
        return ready++
      },
    }
  },
}

export async function main(): Promise<Termination> {
  callTracing.subscribe({ start: (c: CallTraceContext) => void c.headers, end: () => {}, asyncStart: () => {}, asyncEnd: () => {}, error: () => {} })
  const system = await ClusterSystem.start({ port: 0, plugins: [plugin, singletonPlugin()] })
  const counter = system.spawn(Counter)
  await eventually(async () => (await counter.add(1)) > 0)
  system.receptionist.checkIn(counter, new ReceptionKey<Counter>('counters'))
  return system.watch(counter)
}

// ActorRef<T> offers public methods only: helpers kept protected or #private are not on the ref.
class Scored extends DistributedActor {
  #n = 0
  @distributed async hit(): Promise<number> {
    return this.bump()
  }
  protected bump(): number {
    return ++this.#n
  }
  private reset(): void {
    this.#n = 0
  }
}
export function refTypes(ref: ActorRef<Scored>): void {
  void ref.hit()
  // @ts-expect-error: protected helpers are not on the ref
  void ref.bump
  // @ts-expect-error: private helpers are not on the ref
  void ref.reset
}

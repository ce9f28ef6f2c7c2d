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

/**
 * Virtual actors' metrics on one node, read from the plugin's status on scrape: per placement group
 * (role; `""` for types hosted without one) the shards this node owns and serves, its activations,
 * the calls it holds and the table version it has; and counts of activations, deactivations and
 * calls its routers forwarded.
 * @module
 */
import { Gauge, type Registry } from 'prom-client'
import { counterReading } from '../observability/Metrics.ts'
import type { VirtualActorsStatus } from './VirtualActorsPlugin.ts'

/** Registers the metrics; `status` is read on every scrape. */
export function registerVirtualMetrics(read: () => VirtualActorsStatus, registry: Registry): void {
  const registers = [registry]
  // A scrape collects its seven metrics in one synchronous pass (prom-client calls every collect
  // before awaiting any), each from the same status, a walk over every shard: read it once per pass.
  let cached: VirtualActorsStatus | undefined
  const status = (): VirtualActorsStatus => {
    if (cached === undefined) {
      cached = read()
      queueMicrotask(() => (cached = undefined))
    }
    return cached
  }
  const perGroup = (name: string, help: string, read: (g: VirtualActorsStatus['groups'][number]) => number): void => {
    new Gauge({
      name,
      help,
      labelNames: ['role'],
      registers,
      collect() {
        this.reset()
        for (const g of status().groups) this.set({ role: g.role ?? '' }, read(g))
      },
    })
  }
  new Gauge({
    name: 'shoal_virtual_shards',
    help: 'Shards of each placement group this node owns in its table (state="owned") and serves now (state="open"); they differ during a hand-over',
    labelNames: ['role', 'state'],
    registers,
    collect() {
      this.reset()
      for (const g of status().groups) {
        this.set({ role: g.role ?? '', state: 'owned' }, g.owned)
        this.set({ role: g.role ?? '', state: 'open' }, g.open)
      }
    },
  })
  perGroup('shoal_virtual_activations', 'Virtual actors active on this node', (g) => g.active)
  perGroup('shoal_virtual_held_calls', 'Calls this node holds for shards that have no open owner yet (a hand-over, a node that just joined)', (g) => g.held)
  perGroup('shoal_virtual_table_version', 'Version of the shard table this node holds (a change means shards moved)', (g) => g.tableVersion)
  const s = status
  counterReading({ name: 'shoal_virtual_activations_total', help: 'Virtual actors activated on this node', registers }, () => [[{}, s().activations]])
  counterReading({ name: 'shoal_virtual_deactivations_total', help: 'Virtual actors deactivated on this node (idle, moved, asked)', registers }, () => [
    [{}, s().deactivations],
  ])
  counterReading(
    {
      name: 'shoal_virtual_forwarded_total',
      help: 'Calls this node’s routers sent on to an owner elsewhere (first calls, calls after a move, traced calls)',
      registers,
    },
    () => [[{}, s().forwarded]],
  )
}

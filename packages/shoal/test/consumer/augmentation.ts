/**
 * docs/plugins.md's advice, checked against the published declarations: a plugin's facade typed on
 * the system by augmenting `ClusterSystem` through `declare module 'shoal'`.
 */
import { ClusterSystem } from 'shoal'

declare module 'shoal' {
  interface ClusterSystem {
    readonly counterFacade: { readonly live: number }
  }
}
export async function f(): Promise<number> {
  const s = await ClusterSystem.start({ port: 0 })
  return s.counterFacade.live
}

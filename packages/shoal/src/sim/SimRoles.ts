/**
 * Roles in a cluster simulation (`ClusterSimOptions.roles`): the singleton runs only on nodes 0–2
 * (role `backend`), the virtual actors only on nodes 1 and up (role `players`), so that placement
 * by role, and nodes that call what they cannot host, are exercised too.
 * @module
 */

/** The singleton's role and the virtual actors' role in a run with roles. */
export const SIM_ROLES = { singleton: 'backend', shards: 'players' } as const

/** Node `i`'s roles: none in a run without roles. */
export function rolesOf(i: number, roles: boolean | undefined): string[] {
  if (!roles) return []
  return [...(i <= 2 ? [SIM_ROLES.singleton] : []), ...(i >= 1 ? [SIM_ROLES.shards] : [])]
}

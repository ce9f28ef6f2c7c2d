/**
 * Version vectors for membership gossip: one counter per node uid. A node increments its own
 * entry when it changes the membership; comparing two vectors tells whether one state saw
 * everything the other did (`before`/`after`), both are the same, or they diverged (`concurrent`).
 * @module
 */
export type VersionVector = ReadonlyMap<string, number>

/** How two versions relate. */
export type Ordering = 'same' | 'before' | 'after' | 'concurrent'

/** Compares `a` with `b` (`before`: b saw everything a did, and more). */
export function compareVersions(a: VersionVector, b: VersionVector): Ordering {
  let aBigger = false
  let bBigger = false
  for (const [k, va] of a) {
    const vb = b.get(k) ?? 0
    if (va > vb) aBigger = true
    else if (va < vb) bBigger = true
  }
  for (const [k, vb] of b) if (!a.has(k) && vb > 0) bBigger = true
  if (aBigger && bBigger) return 'concurrent'
  if (aBigger) return 'after'
  if (bBigger) return 'before'
  return 'same'
}

/** The entry-wise maximum. */
export function mergeVersions(a: VersionVector, b: VersionVector): Map<string, number> {
  const out = new Map(a)
  for (const [k, v] of b) out.set(k, Math.max(v, out.get(k) ?? 0))
  return out
}

/** A copy with `node`'s counter raised by one. */
export function incrementVersion(v: VersionVector, node: string): Map<string, number> {
  const out = new Map(v)
  out.set(node, (out.get(node) ?? 0) + 1)
  return out
}

/**
 * Drops the entries of nodes that are gone for good (removed members), to keep vectors small. The
 * same vector when every entry stays (the common case: every gossip received is pruned).
 */
export function pruneVersion(v: VersionVector, keep: (node: string) => boolean): VersionVector {
  let drop = false
  for (const k of v.keys())
    if (!keep(k)) {
      drop = true
      break
    }
  if (!drop) return v
  const out = new Map<string, number>()
  for (const [k, n] of v) if (keep(k)) out.set(k, n)
  return out
}

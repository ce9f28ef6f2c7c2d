/**
 * Seeded randomness for the simulator: the same seed gives the same numbers on every machine.
 * @module
 */

/** A uniform [0, 1) generator from a 32-bit seed (mulberry32: small, fast, good enough to simulate with). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** Mixes several integers into one 32-bit seed (splitmix-style), to derive independent streams. */
export function mixSeed(...parts: number[]): number {
  let h = 0x9e3779b9
  for (const p of parts) {
    h = Math.imul(h ^ (p >>> 0), 0x85ebca6b) >>> 0
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0
    h = (h ^ (h >>> 16)) >>> 0
  }
  return h
}

/** 16 hex digits from a generator (a simulated node uid). */
export function randomUid(random: () => number): string {
  let s = ''
  for (let i = 0; i < 4; i++)
    s += Math.floor(random() * 65536)
      .toString(16)
      .padStart(4, '0')
  return s
}

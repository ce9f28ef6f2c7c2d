/**
 * How strong a cluster secret is, estimated conservatively, and the check every entry point runs
 * (`ClusterSystem.start`, `startClusterDaemon`, `SwimMember.start`, the CLI).
 *
 * The estimate is `length × log2(alphabet)`, where the alphabet is the size of the character
 * classes the secret uses (hex digits 16; otherwise lower case 26, upper case 26, digits 10, other
 * printable ASCII 33, anything else 128), capped by the number of distinct characters it contains,
 * and the length counts only characters that make a pair with the one before not seen earlier (so
 * a repeated pattern counts once): a random 64-character hex string (`npx shoal secret`) scores
 * about 220 bits, a 43-character base64url string about 210, `change-me` 28, `abab…` 3 and
 * `aaaa…` 0. It overestimates a secret a person
 * made up (words are far from random), which is why the bar is 128 bits and not less. A Buffer
 * counts bytes: 32 random bytes pass, 16 do not (too few distinct values to tell them from a
 * pattern).
 * @module
 */
import { ConfigError } from '../errors.ts'

/** The least estimated entropy, in bits, of a cluster secret a node accepts. */
export const MIN_SECRET_BITS = 128

/** How to make a good secret; part of every refusal. */
const HOW = 'make one with `npx shoal secret` (256 random bits) and give the same one to every node and clusterd'

/**
 * The number of characters that count: the first, then each one that makes a pair (with the one
 * before it) not seen earlier in the secret. `abab…` counts 3, a random string nearly its length.
 */
function freshLength<T>(items: readonly T[]): number {
  if (items.length === 0) return 0
  const pairs = new Set<string>()
  let n = 1
  for (let i = 1; i < items.length; i++) {
    const pair = `${String(items[i - 1])}\u0000${String(items[i])}`
    if (!pairs.has(pair)) n++
    pairs.add(pair)
  }
  return n
}

/** The conservative entropy estimate, in bits, of `secret` (see the module comment). */
export function secretBits(secret: string | Buffer): number {
  if (Buffer.isBuffer(secret)) {
    if (secret.length === 0) return 0
    return freshLength([...secret]) * Math.log2(Math.min(256, new Set(secret).size))
  }
  const chars = [...secret]
  if (chars.length === 0) return 0
  const distinct = new Set(chars).size
  let alphabet: number
  if (/^[0-9a-f]+$/.test(secret) || /^[0-9A-F]+$/.test(secret)) alphabet = 16
  else {
    alphabet = 0
    if (/[a-z]/.test(secret)) alphabet += 26
    if (/[A-Z]/.test(secret)) alphabet += 26
    if (/[0-9]/.test(secret)) alphabet += 10
    if (/[\x20-\x2f\x3a-\x40\x5b-\x60\x7b-\x7e]/.test(secret)) alphabet += 33
    if (/[^\x20-\x7e]/u.test(secret)) alphabet += 128
  }
  return freshLength(chars) * Math.log2(Math.min(alphabet, distinct))
}

/**
 * Throws a {@link ConfigError} unless `secret` (undefined or empty: no secret, not checked here)
 * has at least {@link MIN_SECRET_BITS} of estimated entropy. `where` names the setting for the
 * message (e.g. `secret (or SHOAL_SECRET)`).
 */
export function checkSecretStrength(secret: string | Buffer | undefined, where: string): void {
  if (secret === undefined || secret.length === 0) return
  const bits = secretBits(secret)
  if (bits >= MIN_SECRET_BITS) return
  throw new ConfigError(
    `The cluster secret in ${where} is too weak: about ${Math.floor(bits)} bits of entropy, and a node needs at least ${MIN_SECRET_BITS} (a weak secret can be guessed, and it guards who may join and call actors): ${HOW}.`,
  )
}

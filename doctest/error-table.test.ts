/** docs/actors.md's error table lists every error class `shoal` exports, with its code. */
import { readFileSync } from 'node:fs'
import * as shoal from 'shoal'
import { expect, it } from 'vitest'

it('docs/actors.md lists every exported error class and its code', () => {
  const table = readFileSync(new URL('../docs/actors.md', import.meta.url), 'utf8')
  const rows = new Map([...table.matchAll(/^\| `(\w+Error)` \| `(SHOAL_\w+)` \|/gm)].map((m) => [m[1]!, m[2]!] as const))
  const exported = Object.entries(shoal).filter(
    ([name, value]) => typeof value === 'function' && value.prototype instanceof shoal.ShoalError && name.endsWith('Error'),
  ) as [string, new (message: string) => shoal.ShoalError][]
  expect(exported.length).toBeGreaterThan(15)
  for (const [name, Class] of exported) expect(rows.get(name), `${name} in docs/actors.md`).toBe(new Class('x').code)
})

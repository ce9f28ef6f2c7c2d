#!/usr/bin/env node
// The `shoal` command: the compiled CLI when the package is built, else the TypeScript
// sources through tsx (a checkout of the repository).
import { existsSync } from 'node:fs'

const dist = new URL('../dist/cli/main.js', import.meta.url)
if (existsSync(dist)) {
  await import(dist.href)
} else {
  const { register } = await import('tsx/esm/api')
  register()
  await import(new URL('../src/cli/main.ts', import.meta.url).href)
}

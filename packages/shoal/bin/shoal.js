#!/usr/bin/env node
// The `shoal` command. In a checkout (tsx is installed) it runs the TypeScript sources, so a stale
// build can never answer for them; an installed package runs its compiled dist/.
let register
try {
  ;({ register } = await import('tsx/esm/api'))
} catch {
  register = undefined
}
if (register) {
  register()
  await import(new URL('../src/cli/main.ts', import.meta.url).href)
} else {
  await import(new URL('../dist/cli/main.js', import.meta.url).href)
}

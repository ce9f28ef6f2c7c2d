import { transform } from 'esbuild'
import { defineConfig, type Plugin } from 'vitest/config'

/**
 * Vite 8 transforms TypeScript with oxc, which does not implement TC39 standard decorators yet;
 * esbuild (the same transformer tsx uses for `npm start`) does, so tests see the code users run.
 */
function esbuildTypeScript(): Plugin {
  return {
    name: 'shoal:esbuild-typescript',
    enforce: 'pre',
    async transform(code, id) {
      if (!/\.[cm]?ts$/.test(id.split('?')[0]!)) return null
      const out = await transform(code, { loader: 'ts', target: 'es2022', format: 'esm', sourcemap: true, sourcefile: id })
      return { code: out.code, map: out.map }
    },
  }
}

export default defineConfig({
  plugins: [esbuildTypeScript()],
  oxc: false,
  resolve: { conditions: ['source'] },
  ssr: { resolve: { conditions: ['source'] } },
  test: {
    include: ['packages/*/test/**/*.test.ts', 'apps/*/test/**/*.test.ts', 'doctest/**/*.test.ts', 'deploy/test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Two files at a time even on two cores (Vitest's default there is one): most of the suite
    // waits on real processes, sockets and timers rather than the CPU, so this halves the wall
    // clock (904 s → 416 s on this machine kind). Tests that share the host (network namespaces,
    // PostgreSQL, ports) use names, schemas and ports of their own.
    maxWorkers: 2,
    env: { SHOAL_LOG_LEVEL: 'silent' },
    setupFiles: ['packages/shoal/test/support/isolate.ts'],
  },
})

/**
 * The browser UI's files, served by the gateway: index.html and app.js, bundled from main.ts by
 * esbuild in memory when the gateway starts (about 50 ms; nothing to build beforehand).
 */
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'

export type UiFiles = ReadonlyMap<string, { readonly type: string; readonly body: string | Buffer }>

export async function uiFiles(): Promise<UiFiles> {
  const out = await build({
    entryPoints: [fileURLToPath(new URL('./main.ts', import.meta.url))],
    bundle: true,
    format: 'esm',
    minify: true,
    target: 'es2022',
    write: false,
    logLevel: 'silent',
  })
  return new Map([
    ['/index.html', { type: 'text/html; charset=utf-8', body: readFileSync(new URL('./index.html', import.meta.url)) }],
    ['/app.js', { type: 'text/javascript; charset=utf-8', body: Buffer.from(out.outputFiles[0]!.contents) }],
  ])
}

import { createServer, connect, type Socket } from 'node:net'
import postgres from 'postgres'
import { PostgresEventStore } from '@shoal/journal-postgres'
const socks = new Set<Socket>()
const server = createServer((c) => { const u = connect(5432, '127.0.0.1'); socks.add(c); socks.add(u); c.pipe(u); u.pipe(c); const end = () => { c.destroy(); u.destroy() }; c.on('error', end); u.on('error', end); c.on('close', end); u.on('close', end) })
await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
const port = (server.address() as { port: number }).port
const schema = 'exp_close'
const store = await PostgresEventStore.open(`postgres://postgres@127.0.0.1:${port}/test`, { schema, max: 4, client: { connect_timeout: 5, backoff: () => 0.05 } as never })
await store.append([{ persistenceId: 'x', seq: Date.now(), type: 't', version: 1, payload: new Uint8Array(1), tags: [] }])
const mode = process.argv[2]
if (mode === 'drop') { for (const s of socks) s.destroy(); socks.clear(); await new Promise((r) => setTimeout(r, 100)) }
if (mode === 'dropwrite') { for (const s of socks) s.destroy(); socks.clear(); await new Promise((r) => setTimeout(r, 100)); await store.append([{ persistenceId: 'x', seq: Date.now(), type: 't', version: 1, payload: new Uint8Array(1), tags: [] }]).catch((e) => console.log('append', e.message)) }
const t = Date.now()
await store.close()
console.log(mode, 'close ms', Date.now() - t)
server.close()
const d = postgres('postgres://postgres@127.0.0.1:5432/test'); await d`DROP SCHEMA IF EXISTS exp_close CASCADE`; await d.end()

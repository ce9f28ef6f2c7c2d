import { type ChildProcess, spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { ClusterSystem, NodeDownError, NodeUnreachableError, TimeoutError } from 'shoal'
import { afterEach, describe, expect, it } from 'vitest'
import { Island } from './fixtures/island.ts'

const fixture = fileURLToPath(new URL('./fixtures/island-node.ts', import.meta.url))
const children: ChildProcess[] = []
const systems: ClusterSystem[] = []

async function startIslandProcess(port = 0): Promise<{ child: ChildProcess; id: string; port: number }> {
  const child = spawn(process.execPath, ['--conditions=source', '--import', 'tsx', fixture], {
    env: { ...process.env, PORT: String(port) },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  children.push(child)
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', resolve)
    child.once('exit', (code) => reject(new Error(`island process exited with ${code}`)))
  })
  const { id, port: bound } = JSON.parse(line) as { id: string; port: number }
  return { child, id, port: bound }
}

afterEach(async () => {
  for (const c of children.splice(0)) {
    if (c.exitCode === null && c.signalCode === null) {
      c.kill('SIGCONT')
      c.kill('SIGKILL')
    }
  }
  await Promise.all(systems.splice(0).map((s) => s.shutdown()))
})

async function caller(): Promise<ClusterSystem> {
  const s = await ClusterSystem.start({ name: 'caller', port: 0, logLevel: 'silent' })
  systems.push(s)
  return s
}

describe('across OS processes', () => {
  it('calls an actor in another process', async () => {
    const { id, child } = await startIslandProcess()
    const sys = await caller()
    const island = sys.resolve(Island, id)
    expect(await island.addRock(2)).toBe(2)
    expect(await island.addRock(3)).toBe(5)
    expect(await island.pid()).toBe(child.pid)
  })

  it('fails a pending call at once when the process is killed with SIGKILL, not at its timeout', async () => {
    const { id, child } = await startIslandProcess()
    const sys = await caller()
    const island = sys.resolve(Island, id)
    expect(await island.addRock(1)).toBe(1)
    const pending = island
      .withTimeout(60_000)
      .sleep(50_000)
      .catch((e: unknown) => e)
    await new Promise((r) => setTimeout(r, 100))
    const killedAt = Date.now()
    child.kill('SIGKILL')
    const err = await pending
    expect(err).toBeInstanceOf(NodeUnreachableError)
    expect(Date.now() - killedAt).toBeLessThan(30_000)
    await expect(island.addRock(1)).rejects.toBeInstanceOf(NodeUnreachableError)
  })

  it('times out calls to a stopped (SIGSTOP) process and recovers after SIGCONT', async () => {
    const { id, child } = await startIslandProcess()
    const sys = await caller()
    const island = sys.resolve(Island, id)
    expect(await island.addRock(1)).toBe(1)
    child.kill('SIGSTOP')
    await expect(island.withTimeout(300).addRock(1)).rejects.toBeInstanceOf(TimeoutError)
    child.kill('SIGCONT')
    // The timed-out call may still run; later calls see its effect.
    expect(await island.withTimeout(20_000).addRock(1)).toBe(3)
  })

  it('fails calls to a gracefully stopped process with NodeDownError', async () => {
    const { id, child } = await startIslandProcess()
    const sys = await caller()
    const island = sys.resolve(Island, id)
    expect(await island.addRock(1)).toBe(1)
    const exited = new Promise((r) => child.once('exit', r))
    child.kill('SIGTERM')
    await exited
    await expect(island.addRock(1)).rejects.toBeInstanceOf(NodeDownError)
  })
})

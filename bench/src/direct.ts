/**
 * Direct method call on a plain object: the floor of what an in-process call can cost with the
 * same harness (an async method, so each call still makes a promise).
 * @module
 */
import type { Payload } from './harness.ts'
import type { LocalPeer, LocalTarget } from './protocol.ts'

class PlainEcho {
  async echo(arg: Payload): Promise<Payload> {
    return arg
  }
}

function open(): Promise<LocalTarget> {
  const echo = new PlainEcho()
  return Promise.resolve({ call: (arg: Payload) => echo.echo(arg), close: () => Promise.resolve() })
}

export const local: LocalPeer = { open }

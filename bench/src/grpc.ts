/**
 * gRPC unary calls with @grpc/grpc-js. The service is defined in code with msgpackr as the
 * message codec (the same codec as the raw baseline), so no .proto file or loader is needed.
 * @module
 */
import * as grpc from '@grpc/grpc-js'
import { Packr, Unpackr } from 'msgpackr'
import type { Payload } from './harness.ts'
import type { RemoteClient, RemotePeer, Server } from './protocol.ts'

const packr = new Packr({ useRecords: false })
const unpackr = new Unpackr({ useRecords: false })
const encode = (value: Payload): Buffer => packr.pack(value)
const decode = (bytes: Buffer): Payload => unpackr.unpack(bytes) as Payload

const echoMethod: grpc.MethodDefinition<Payload, Payload> = {
  path: '/bench.Echo/Echo',
  requestStream: false,
  responseStream: false,
  requestSerialize: encode,
  requestDeserialize: decode,
  responseSerialize: encode,
  responseDeserialize: decode,
}
const service: grpc.ServiceDefinition = { echo: echoMethod }

type UnaryCallback = (error: grpc.ServiceError | null, value?: Payload) => void
/** The generated client method, typed: grpc-js types generated methods as bare `Function`. */
type EchoClient = grpc.Client & { echo(arg: Payload, callback: UnaryCallback): grpc.ClientUnaryCall }

async function serve(): Promise<Server> {
  const server = new grpc.Server()
  const echo: grpc.handleUnaryCall<Payload, Payload> = (call, callback) => callback(null, call.request)
  server.addService(service, { echo })
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound)))
  })
  return {
    info: { port },
    close: () => new Promise<void>((resolve) => server.tryShutdown(() => resolve())),
  }
}

async function connect(info: unknown): Promise<RemoteClient> {
  const port = (info as { port?: unknown } | null)?.port
  if (typeof port !== 'number') throw new Error(`grpc: bad server info ${JSON.stringify(info)}`)
  const Client = grpc.makeGenericClientConstructor(service, 'Echo')
  const client = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as unknown as EchoClient
  await new Promise<void>((resolve, reject) => client.waitForReady(Date.now() + 10_000, (error) => (error ? reject(error) : resolve())))
  const call = (arg: Payload): Promise<Payload> =>
    new Promise((resolve, reject) => {
      client.echo(arg, (error, value) => (error ? reject(error) : resolve(value!)))
    })
  return {
    call,
    close: () => {
      client.close()
      return Promise.resolve()
    },
  }
}

export const remote: RemotePeer = { serve, connect }

/**
 * Discovery providers. DNS: a fake resolver answering like node's (records, or ENOTFOUND / ENODATA /
 * ETIMEOUT errors). Kubernetes: a local HTTPS server with a throwaway CA answering in the API's JSON
 * format (PodList, EndpointSliceList, Status), and service account files in a temporary directory.
 */

import { randomUUID } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { createServer, type Server } from 'node:https'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, test, vi } from 'vitest'
import { DnsDiscovery, type DnsResolver, type DnsSrvRecord } from '../src/discovery/DnsDiscovery.ts'
import { KubernetesDiscovery, type KubernetesDiscoveryOptions } from '../src/discovery/KubernetesDiscovery.ts'
import { ConfigError, ErrorCode } from '../src/errors.ts'
import { createTestPki, type TestPki } from './support/certs.ts'

const signal = (): AbortSignal => new AbortController().signal

// ---------------------------------------------------------------------------------------------- DNS

/** As node's resolver rejects: message `query<Type> <CODE> <name>`, with `code` and `hostname`. */
const dnsError = (type: string, code: string, hostname: string): Error => Object.assign(new Error(`query${type} ${code} ${hostname}`), { code, hostname })

/** An answer: records, or the code of the error node's resolver would reject with. */
type FakeAnswer<T> = readonly T[] | { readonly error: string }

/** A resolver answering from tables; a name missing from a table is NXDOMAIN (ENOTFOUND). */
function fakeResolver(tables: {
  readonly a?: Record<string, FakeAnswer<string>>
  readonly aaaa?: Record<string, FakeAnswer<string>>
  readonly srv?: Record<string, FakeAnswer<DnsSrvRecord>>
}): DnsResolver & { readonly queries: string[] } {
  const queries: string[] = []
  const answer = <T>(type: string, table: Record<string, FakeAnswer<T>> | undefined, name: string): Promise<readonly T[]> => {
    queries.push(`${type} ${name}`)
    const a = table?.[name]
    const t = type === 'AAAA' ? 'Aaaa' : type === 'SRV' ? 'Srv' : 'A'
    if (a === undefined) return Promise.reject(dnsError(t, 'ENOTFOUND', name))
    if ('error' in a) return Promise.reject(dnsError(t, a.error, name))
    return Promise.resolve(a)
  }
  return {
    queries,
    resolve4: (name) => answer('A', tables.a, name),
    resolve6: (name) => answer('AAAA', tables.aaaa, name),
    resolveSrv: (name) => answer('SRV', tables.srv, name),
  }
}

const SVC = 'shoal.default.svc.cluster.local'

describe('DnsDiscovery', () => {
  test('A+AAAA (the default) merges both families, deduplicated and sorted, on the configured port', async () => {
    const resolver = fakeResolver({
      a: { [SVC]: ['10.0.0.2', '10.0.0.10', '10.0.0.1', '10.0.0.2'] },
      aaaa: { [SVC]: ['fd00::2', 'FD00::1', 'fd00::1'] },
    })
    const dns = new DnsDiscovery({ name: SVC, port: 7355, resolver })
    expect(dns.name).toBe(`dns:${SVC}`)
    expect(dns.interval).toBe(5000)
    expect(await dns.list(signal())).toEqual([
      { host: '10.0.0.1', port: 7355 },
      { host: '10.0.0.10', port: 7355 },
      { host: '10.0.0.2', port: 7355 },
      { host: 'fd00::1', port: 7355 },
      { host: 'fd00::2', port: 7355 },
    ])
    expect(resolver.queries.sort()).toEqual([`A ${SVC}`, `AAAA ${SVC}`])
  })

  test('one family with no records (ENODATA, NXDOMAIN or empty) is fine', async () => {
    const v4only = fakeResolver({ a: { [SVC]: ['10.0.0.1'] }, aaaa: { [SVC]: { error: 'ENODATA' } } })
    expect(await new DnsDiscovery({ name: SVC, port: 1, resolver: v4only }).list(signal())).toEqual([{ host: '10.0.0.1', port: 1 }])
    const v6only = fakeResolver({ a: { [SVC]: [] }, aaaa: { [SVC]: ['fd00::1'] } })
    expect(await new DnsDiscovery({ name: SVC, port: 1, resolver: v6only }).list(signal())).toEqual([{ host: 'fd00::1', port: 1 }])
    // A lookup failure of one family does not hide the other's answer: discovery only adds candidates.
    const flaky = fakeResolver({ a: { [SVC]: ['10.0.0.1'] }, aaaa: { [SVC]: { error: 'ETIMEOUT' } } })
    expect(await new DnsDiscovery({ name: SVC, port: 1, resolver: flaky }).list(signal())).toEqual([{ host: '10.0.0.1', port: 1 }])
  })

  test('both families failing throws, saying what to check', async () => {
    const nothing = new DnsDiscovery({ name: SVC, port: 7355, resolver: fakeResolver({ aaaa: { [SVC]: { error: 'ENODATA' } } }) })
    await expect(nothing.list(signal())).rejects.toThrow(/has no A or AAAA records.*fully qualified.*publishNotReadyAddresses/)
    // A real lookup failure is reported as such, not as "no records".
    const failing = new DnsDiscovery({
      name: SVC,
      port: 7355,
      resolver: fakeResolver({ a: { [SVC]: { error: 'ETIMEOUT' } }, aaaa: { [SVC]: { error: 'ENODATA' } } }),
    })
    await expect(failing.list(signal())).rejects.toThrow(/DNS A lookup of shoal\.default\.svc\.cluster\.local failed \(queryA ETIMEOUT/)
  })

  test('type A asks only for A records, and no records is an error', async () => {
    const resolver = fakeResolver({ a: { [SVC]: ['10.0.0.1'] }, aaaa: { [SVC]: ['fd00::1'] } })
    expect(await new DnsDiscovery({ name: SVC, port: 9, type: 'A', resolver }).list(signal())).toEqual([{ host: '10.0.0.1', port: 9 }])
    expect(resolver.queries).toEqual([`A ${SVC}`])
    const empty = new DnsDiscovery({ name: SVC, port: 9, type: 'AAAA', resolver: fakeResolver({ aaaa: { [SVC]: { error: 'ENODATA' } } }) })
    await expect(empty.list(signal())).rejects.toThrow(/no AAAA records/)
  })

  test('SRV: port from each record, targets resolved to A and AAAA, IP targets used as they are', async () => {
    const name = `_shoal._tcp.${SVC}`
    const resolver = fakeResolver({
      srv: {
        [name]: [
          { name: `shoal-1.${SVC}`, port: 7355, priority: 0, weight: 50 },
          { name: `shoal-0.${SVC}`, port: 7355, priority: 0, weight: 50 },
          { name: `shoal-0.${SVC}`, port: 7355, priority: 0, weight: 50 },
          { name: '10.0.0.9', port: 7400, priority: 0, weight: 50 },
          { name: `gone.${SVC}`, port: 7355, priority: 0, weight: 50 },
          { name: '.', port: 7355, priority: 0, weight: 0 },
        ],
      },
      a: { [`shoal-0.${SVC}`]: ['10.0.0.1'], [`shoal-1.${SVC}`]: ['10.0.0.2'] },
      aaaa: { [`shoal-0.${SVC}`]: ['fd00::1'], [`shoal-1.${SVC}`]: { error: 'ENODATA' } },
    })
    const dns = new DnsDiscovery({ name, type: 'SRV', resolver })
    expect(await dns.list(signal())).toEqual([
      { host: '10.0.0.1', port: 7355 },
      { host: '10.0.0.2', port: 7355 },
      { host: '10.0.0.9', port: 7400 },
      { host: 'fd00::1', port: 7355 },
    ])
    expect(resolver.queries).not.toContain('A 10.0.0.9')
    expect(resolver.queries).not.toContain('A .')
  })

  test('SRV: no records, or targets without addresses, throw', async () => {
    const name = `_shoal._tcp.${SVC}`
    await expect(new DnsDiscovery({ name, type: 'SRV', resolver: fakeResolver({}) }).list(signal())).rejects.toThrow(/has no SRV records/)
    const dangling = fakeResolver({ srv: { [name]: [{ name: `shoal-0.${SVC}`, port: 7355 }] } })
    await expect(new DnsDiscovery({ name, type: 'SRV', resolver: dangling }).list(signal())).rejects.toThrow(/SRV targets have no A or AAAA records/)
  })

  test('settings are checked: a ConfigError for a missing or misplaced port, a bad name, type or interval', () => {
    const resolver = fakeResolver({})
    const configError = (f: () => unknown, message: RegExp): void => {
      let caught: unknown
      try {
        f()
      } catch (e) {
        caught = e
      }
      expect(caught).toBeInstanceOf(ConfigError)
      expect(caught).toMatchObject({ code: ErrorCode.Config })
      expect((caught as Error).message).toMatch(message)
    }
    configError(() => new DnsDiscovery({ name: SVC, resolver }), /A\+AAAA records carry no port; set port/)
    configError(() => new DnsDiscovery({ name: SVC, type: 'A', resolver }), /A records carry no port/)
    configError(() => new DnsDiscovery({ name: SVC, type: 'SRV', port: 7355, resolver }), /SRV records carry the port; remove port/)
    configError(() => new DnsDiscovery({ name: SVC, port: 70000, resolver }), /port 70000 is invalid/)
    configError(() => new DnsDiscovery({ name: 'not a name', port: 1, resolver }), /is not a DNS name/)
    configError(() => new DnsDiscovery({ name: SVC, port: 1, type: 'MX' as 'A', resolver }), /type "MX" is invalid/)
    configError(() => new DnsDiscovery({ name: SVC, port: 1, interval: 0, resolver }), /interval/)
  })

  test('aborting the signal rejects at once and cancels the outstanding queries', async () => {
    const cancel = vi.fn()
    const pending = (): Promise<never> => new Promise<never>(() => {})
    const resolver: DnsResolver = { resolve4: pending, resolve6: pending, resolveSrv: pending, cancel }
    const controller = new AbortController()
    const listing = new DnsDiscovery({ name: SVC, port: 1, resolver }).list(controller.signal)
    const reason = new Error('poller stopped')
    controller.abort(reason)
    await expect(listing).rejects.toBe(reason)
    expect(cancel).toHaveBeenCalledTimes(1)
    await expect(new DnsDiscovery({ name: SVC, port: 1, resolver }).list(controller.signal)).rejects.toBe(reason)
  })
})

// --------------------------------------------------------------------------------------- Kubernetes

const NAMESPACE = 'shoal-test'

interface PodShape {
  readonly phase?: string
  readonly ip?: string
  readonly ready?: boolean
  readonly deleting?: boolean
  readonly containers?: readonly { readonly name: string; readonly ports: readonly { readonly name?: string; readonly containerPort: number }[] }[]
}

/** A pod as `GET /api/v1/namespaces/{ns}/pods` returns it (the fields that matter, and some that do not). */
function pod(name: string, shape: PodShape = {}): object {
  const { phase = 'Running', ip, ready = true, deleting = false } = shape
  const containers = shape.containers ?? [{ name: 'shoal', ports: [{ name: 'shoal', containerPort: 7355 }] }]
  const at = '2025-06-01T10:00:00Z'
  return {
    metadata: {
      name,
      generateName: 'shoal-',
      namespace: NAMESPACE,
      uid: randomUUID(),
      resourceVersion: '48213',
      creationTimestamp: at,
      labels: { app: 'shoal', 'pod-template-hash': '7d9f8c6b5' },
      ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'shoal-7d9f8c6b5', uid: randomUUID(), controller: true, blockOwnerDeletion: true }],
      ...(deleting ? { deletionTimestamp: at, deletionGracePeriodSeconds: 30 } : {}),
    },
    spec: {
      containers: containers.map((c) => ({
        name: c.name,
        image: 'ghcr.io/example/shoal:0.1.0',
        ports: c.ports.map((p) => ({ ...p, protocol: 'TCP' })),
        resources: {},
        imagePullPolicy: 'IfNotPresent',
      })),
      restartPolicy: 'Always',
      serviceAccountName: 'shoal',
      nodeName: 'worker-1',
    },
    status: {
      phase,
      ...(ip !== undefined ? { podIP: ip, podIPs: [{ ip }] } : {}),
      hostIP: '172.18.0.2',
      startTime: at,
      qosClass: 'BestEffort',
      conditions:
        phase === 'Pending'
          ? [{ type: 'PodScheduled', status: 'True', lastProbeTime: null, lastTransitionTime: at }]
          : [
              { type: 'Initialized', status: 'True', lastProbeTime: null, lastTransitionTime: at },
              {
                type: 'Ready',
                status: ready ? 'True' : 'False',
                lastProbeTime: null,
                lastTransitionTime: at,
                ...(ready ? {} : { reason: 'ContainersNotReady' }),
              },
              { type: 'ContainersReady', status: ready ? 'True' : 'False', lastProbeTime: null, lastTransitionTime: at },
              { type: 'PodScheduled', status: 'True', lastProbeTime: null, lastTransitionTime: at },
            ],
    },
  }
}

const podList = (items: readonly unknown[]): object => ({ kind: 'PodList', apiVersion: 'v1', metadata: { resourceVersion: '48290' }, items })

interface SliceEndpoint {
  readonly addresses: readonly string[]
  readonly conditions?: { readonly ready?: boolean | null; readonly serving?: boolean; readonly terminating?: boolean }
}

/** An EndpointSlice as `GET /apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices` returns it. */
function slice(
  name: string,
  endpoints: readonly SliceEndpoint[],
  ports: readonly { readonly name?: string; readonly port: number }[],
  addressType = 'IPv4',
): object {
  return {
    metadata: {
      name,
      generateName: 'shoal-',
      namespace: NAMESPACE,
      uid: randomUUID(),
      resourceVersion: '51877',
      generation: 3,
      creationTimestamp: '2025-06-01T10:00:00Z',
      labels: { app: 'shoal', 'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io', 'kubernetes.io/service-name': 'shoal' },
      ownerReferences: [{ apiVersion: 'v1', kind: 'Service', name: 'shoal', uid: randomUUID(), controller: true, blockOwnerDeletion: true }],
    },
    addressType,
    endpoints: endpoints.map((e, i) => ({
      ...e,
      nodeName: `worker-${i}`,
      targetRef: { kind: 'Pod', namespace: NAMESPACE, name: `shoal-${i}`, uid: randomUUID() },
    })),
    ports: ports.map((p) => ({ ...p, protocol: 'TCP' })),
  }
}

const sliceList = (items: readonly unknown[]): object => ({
  kind: 'EndpointSliceList',
  apiVersion: 'discovery.k8s.io/v1',
  metadata: { resourceVersion: '51900' },
  items,
})

/** The Status object the API server sends with errors. */
const status = (code: number, reason: string, message: string): object => ({
  kind: 'Status',
  apiVersion: 'v1',
  metadata: {},
  status: 'Failure',
  message,
  reason,
  code,
})

interface Seen {
  readonly method: string
  readonly path: string
  readonly query: URLSearchParams
  readonly authorization: string | undefined
  readonly accept: string | undefined
}

type Handler = (req: IncomingMessage, res: ServerResponse) => void
const json =
  (body: unknown, code = 200): Handler =>
  (_req, res) => {
    res.writeHead(code, { 'Content-Type': 'application/json' })
    res.end(typeof body === 'string' ? body : JSON.stringify(body))
  }

describe('KubernetesDiscovery', () => {
  let pki: TestPki
  let server: Server
  let apiUrl: string
  const notFound = json(status(404, 'NotFound', 'the server could not find the requested resource'), 404)
  let handler: Handler = notFound
  const seen: Seen[] = []
  let dir: string
  let caFile: string
  let otherCaFile: string
  let tokenFile: string

  /** Options for the test server, with files from the temporary service account directory. */
  const options = (extra: Partial<KubernetesDiscoveryOptions> = {}): KubernetesDiscoveryOptions => ({
    selector: 'app=shoal',
    namespace: NAMESPACE,
    apiUrl,
    tokenFile,
    caFile,
    ...extra,
  })

  beforeAll(async () => {
    pki = await createTestPki()
    dir = pki.dir
    const ca = await pki.ca('cluster_ca')
    const otherCa = await pki.ca('other_ca')
    const serverCert = await pki.node(ca, 'apiserver')
    caFile = ca.certPath
    otherCaFile = otherCa.certPath
    tokenFile = join(dir, 'token')
    await writeFile(tokenFile, 'token-1\n')
    server = createServer({ key: serverCert.key, cert: serverCert.cert }, (req, res) => {
      const url = new URL(req.url ?? '/', 'https://127.0.0.1')
      seen.push({ method: req.method ?? '', path: url.pathname, query: url.searchParams, authorization: req.headers.authorization, accept: req.headers.accept })
      handler(req, res)
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    apiUrl = `https://127.0.0.1:${(server.address() as AddressInfo).port}`
  })

  afterEach(async () => {
    seen.length = 0
    handler = notFound
    await writeFile(tokenFile, 'token-1\n')
    vi.unstubAllEnvs()
  })

  afterAll(async () => {
    server?.closeAllConnections()
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()))
    await pki?.cleanup()
  })

  test('pods: only running, ready pods that are not being deleted, on the port named shoal', async () => {
    handler = json(
      podList([
        pod('shoal-b', { ip: '10.244.1.12' }),
        pod('shoal-a', { ip: '10.244.2.7' }),
        pod('shoal-starting', { ip: '10.244.1.13', ready: false }),
        pod('shoal-pending', { phase: 'Pending' }),
        pod('shoal-done', { ip: '10.244.1.14', phase: 'Succeeded' }),
        pod('shoal-deleting', { ip: '10.244.1.15', deleting: true }),
      ]),
    )
    const k8s = new KubernetesDiscovery(options())
    expect(k8s.name).toBe('k8s:app=shoal')
    expect(k8s.interval).toBe(5000)
    expect(await k8s.list(signal())).toEqual([
      { host: '10.244.1.12', port: 7355 },
      { host: '10.244.2.7', port: 7355 },
    ])
    expect(seen).toHaveLength(1)
    const [req] = seen
    expect(req).toMatchObject({ method: 'GET', path: `/api/v1/namespaces/${NAMESPACE}/pods`, authorization: 'Bearer token-1', accept: 'application/json' })
    expect(req!.query.get('labelSelector')).toBe('app=shoal')
    expect(req!.query.get('fieldSelector')).toBe('status.phase=Running')
    expect(req!.query.get('resourceVersion')).toBe('0')
  })

  test('pods: a named port is looked up in every container; a number is used as is', async () => {
    const containers = [
      { name: 'app', ports: [{ name: 'http', containerPort: 8080 }] },
      { name: 'node', ports: [{ containerPort: 9000 }, { name: 'cluster', containerPort: 7400 }] },
    ]
    handler = json(podList([pod('shoal-0', { ip: '10.244.0.5', containers }), pod('shoal-1', { ip: 'fd00:10:244::6', containers })]))
    expect(await new KubernetesDiscovery(options({ port: 'cluster' })).list(signal())).toEqual([
      { host: '10.244.0.5', port: 7400 },
      { host: 'fd00:10:244::6', port: 7400 },
    ])
    expect(await new KubernetesDiscovery(options({ port: 7500 })).list(signal())).toEqual([
      { host: '10.244.0.5', port: 7500 },
      { host: 'fd00:10:244::6', port: 7500 },
    ])
    expect(await new KubernetesDiscovery(options({ port: '7600' })).list(signal())).toEqual([
      { host: '10.244.0.5', port: 7600 },
      { host: 'fd00:10:244::6', port: 7600 },
    ])
    // No port set, and none named shoal: the error says to name one or set port.
    await expect(new KubernetesDiscovery(options()).list(signal())).rejects.toThrow(/no container port named "shoal".*set port/)
  })

  test('endpointslices: addresses of endpoints not marked unready, on the port named shoal or the named one', async () => {
    const ports = [
      { name: 'http', port: 8080 },
      { name: 'shoal', port: 7355 },
    ]
    handler = json(
      sliceList([
        slice(
          'shoal-abc12',
          [
            { addresses: ['10.244.1.12'], conditions: { ready: true, serving: true, terminating: false } },
            { addresses: ['10.244.1.13'], conditions: { ready: false, serving: false, terminating: true } },
            { addresses: ['10.244.1.16'], conditions: {} },
          ],
          ports,
        ),
        slice('shoal-def34', [{ addresses: ['10.244.2.7', '10.244.1.12'], conditions: { ready: true, serving: true, terminating: false } }], ports),
        slice('shoal-empty', [], ports),
      ]),
    )
    const k8s = new KubernetesDiscovery(options({ kind: 'endpointslices', selector: 'kubernetes.io/service-name=shoal' }))
    expect(k8s.name).toBe('k8s:endpointslices:kubernetes.io/service-name=shoal')
    expect(await k8s.list(signal())).toEqual([
      { host: '10.244.1.12', port: 7355 },
      { host: '10.244.1.16', port: 7355 },
      { host: '10.244.2.7', port: 7355 },
    ])
    expect(seen[0]).toMatchObject({ path: `/apis/discovery.k8s.io/v1/namespaces/${NAMESPACE}/endpointslices`, authorization: 'Bearer token-1' })
    expect(seen[0]!.query.get('labelSelector')).toBe('kubernetes.io/service-name=shoal')
    expect(await new KubernetesDiscovery(options({ kind: 'endpointslices', port: 'http' })).list(signal())).toContainEqual({ host: '10.244.2.7', port: 8080 })
    await expect(new KubernetesDiscovery(options({ kind: 'endpointslices', port: 'gossip' })).list(signal())).rejects.toThrow(/have no port named "gossip"/)
  })

  test('endpointslices: without a port named shoal, the first port', async () => {
    handler = json(
      sliceList([
        slice(
          'shoal-x',
          [{ addresses: ['10.244.3.3'], conditions: { ready: true } }],
          [
            { name: '', port: 7000 },
            { name: 'metrics', port: 9090 },
          ],
        ),
      ]),
    )
    expect(await new KubernetesDiscovery(options({ kind: 'endpointslices' })).list(signal())).toEqual([{ host: '10.244.3.3', port: 7000 }])
  })

  test('the token file is re-read on every poll (rotated tokens)', async () => {
    handler = json(podList([pod('shoal-0', { ip: '10.244.0.5' })]))
    const k8s = new KubernetesDiscovery(options())
    await k8s.list(signal())
    await writeFile(tokenFile, 'token-2-rotated\n')
    await k8s.list(signal())
    expect(seen.map((s) => s.authorization)).toEqual(['Bearer token-1', 'Bearer token-2-rotated'])
  })

  test('403: the error carries the status, the API message and the RBAC permission to grant', async () => {
    handler = json(
      status(
        403,
        'Forbidden',
        `pods is forbidden: User "system:serviceaccount:${NAMESPACE}:default" cannot list resource "pods" in API group "" in the namespace "${NAMESPACE}"`,
      ),
      403,
    )
    const error = await new KubernetesDiscovery(options()).list(signal()).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(Error)
    const message = (error as Error).message
    expect(message).toMatch(/answered 403/)
    expect(message).toContain('cannot list resource "pods"')
    expect(message).toMatch(/RBAC: the service account needs get and list on pods in namespace shoal-test/)

    handler = json(status(403, 'Forbidden', 'endpointslices.discovery.k8s.io is forbidden'), 403)
    await expect(new KubernetesDiscovery(options({ kind: 'endpointslices' })).list(signal())).rejects.toThrow(
      /get and list on endpointslices \(API group discovery\.k8s\.io\)/,
    )

    handler = (_req, res) => {
      res.writeHead(401, { 'Content-Type': 'text/plain' })
      res.end('Unauthorized')
    }
    await expect(new KubernetesDiscovery(options()).list(signal())).rejects.toThrow(/answered 401: the token was not accepted/)
  })

  test('a server certificate from another CA is refused with a clear error', async () => {
    handler = json(podList([pod('shoal-0', { ip: '10.244.0.5' })]))
    const error = await new KubernetesDiscovery(options({ caFile: otherCaFile })).list(signal()).catch((e: unknown) => e)
    expect((error as Error).message).toMatch(/TLS certificate is not accepted/)
    expect((error as Error).message).toContain(otherCaFile)
    expect(seen).toHaveLength(0)
  })

  test('malformed items are skipped; a body that is not a list is an error', async () => {
    handler = json(
      podList([
        null,
        42,
        'pod',
        [],
        {},
        { metadata: 'x', status: { phase: 'Running', podIP: '10.244.0.9' }, spec: { containers: 'none' } },
        { status: { phase: 'Running', podIP: 'not-an-ip' }, spec: { containers: [{ ports: [{ name: 'shoal', containerPort: 7355 }] }] } },
        {
          status: { phase: 'Running', podIP: '10.244.0.10', conditions: 'ready' },
          spec: { containers: [{ ports: [{ name: 'shoal', containerPort: 99999 }, null] }] },
        },
        {
          status: { phase: 'Running', podIP: '10.244.0.11', conditions: [null, { type: 'Ready', status: 'True' }] },
          spec: { containers: [null, { ports: [{ name: 'shoal', containerPort: 7355 }] }] },
        },
        pod('shoal-ok', { ip: '10.244.0.12' }),
      ]),
    )
    expect(await new KubernetesDiscovery(options()).list(signal())).toEqual([
      { host: '10.244.0.11', port: 7355 },
      { host: '10.244.0.12', port: 7355 },
    ])

    handler = json(
      sliceList([
        null,
        { endpoints: 'x' },
        { endpoints: [null, { addresses: [1, '', 'bad host!', '10.244.0.13'] }], ports: [{ port: '7355' }, { port: 7355 }] },
      ]),
    )
    expect(await new KubernetesDiscovery(options({ kind: 'endpointslices' })).list(signal())).toEqual([{ host: '10.244.0.13', port: 7355 }])

    for (const body of ['[]', '{"kind":"PodList","apiVersion":"v1","metadata":{}}', '{"items":{}}', 'null']) {
      handler = json(body)
      await expect(new KubernetesDiscovery(options()).list(signal())).rejects.toThrow(/not a list \(no items array\)/)
    }
    handler = (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/html' })
      res.end('<html>login</html>')
    }
    await expect(new KubernetesDiscovery(options()).list(signal())).rejects.toThrow(/not JSON/)
  })

  test('the response body is bounded', async () => {
    handler = json(podList(Array.from({ length: 20 }, (_, i) => pod(`shoal-${i}`, { ip: `10.244.0.${i + 1}` }))))
    await expect(new KubernetesDiscovery(options({ maxResponseBytes: 4096 })).list(signal())).rejects.toThrow(/over the 4096-byte limit/)
    // Without Content-Length (chunked), the limit applies while reading.
    handler = (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/json' })
      res.write('{"kind":"PodList","items":[')
      res.write(' '.repeat(8192))
      res.end(']}')
    }
    await expect(new KubernetesDiscovery(options({ maxResponseBytes: 4096 })).list(signal())).rejects.toThrow(/over the 4096-byte limit/)
  })

  test('a server that does not answer hits fetchTimeout; an aborted signal rejects with its reason', async () => {
    handler = () => {} // never answers
    await expect(new KubernetesDiscovery(options({ fetchTimeout: 200 })).list(signal())).rejects.toThrow(/no complete answer within 200 ms/)
    const controller = new AbortController()
    const listing = new KubernetesDiscovery(options()).list(controller.signal)
    await vi.waitFor(() => expect(seen.length).toBe(2))
    const reason = new Error('stopping')
    controller.abort(reason)
    await expect(listing).rejects.toBe(reason)
  })

  test('in-cluster defaults: API address from the environment, namespace from the service account file', async () => {
    const port = new URL(apiUrl).port
    vi.stubEnv('KUBERNETES_SERVICE_HOST', '127.0.0.1')
    vi.stubEnv('KUBERNETES_SERVICE_PORT', port)
    const namespaceFile = join(dir, 'namespace')
    await writeFile(namespaceFile, 'from-file\n')
    handler = json(podList([pod('shoal-0', { ip: '10.244.0.5' })]))
    const k8s = new KubernetesDiscovery({ selector: 'app=shoal,tier in (a,b)', tokenFile, caFile, namespaceFile })
    expect(await k8s.list(signal())).toEqual([{ host: '10.244.0.5', port: 7355 }])
    expect(seen[0]!.path).toBe('/api/v1/namespaces/from-file/pods')
    expect(seen[0]!.query.get('labelSelector')).toBe('app=shoal,tier in (a,b)')
  })

  test('outside a pod, without apiUrl: a ConfigError naming the environment variables', () => {
    vi.stubEnv('KUBERNETES_SERVICE_HOST', undefined)
    vi.stubEnv('KUBERNETES_SERVICE_PORT', undefined)
    let caught: unknown
    try {
      new KubernetesDiscovery({ selector: 'app=shoal' })
    } catch (e) {
      caught = e
    }
    expect(caught).toBeInstanceOf(ConfigError)
    expect(caught).toMatchObject({ code: ErrorCode.Config })
    expect((caught as Error).message).toMatch(/KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT.*set apiUrl/)
  })

  test('bad settings are ConfigErrors; missing files are runtime errors that say what to set', async () => {
    const bad: Partial<KubernetesDiscoveryOptions>[] = [
      { selector: '' },
      { namespace: 'Not_A_Namespace' },
      { namespace: '../kube-system' },
      { port: 0 },
      { port: 'Bad Name' },
      { kind: 'services' as 'pods' },
      { apiUrl: 'http://127.0.0.1:8001' },
      { apiUrl: 'not a url' },
      { interval: -1 },
      { fetchTimeout: Number.NaN },
    ]
    for (const extra of bad) expect(() => new KubernetesDiscovery(options(extra)), JSON.stringify(extra)).toThrow(ConfigError)
    await expect(new KubernetesDiscovery(options({ tokenFile: join(dir, 'missing-token') })).list(signal())).rejects.toThrow(
      /cannot read .*missing-token.*set tokenFile/,
    )
    await expect(new KubernetesDiscovery(options({ caFile: join(dir, 'missing-ca') })).list(signal())).rejects.toThrow(/cannot read .*missing-ca.*set caFile/)
    await expect(new KubernetesDiscovery(options({ namespace: undefined, namespaceFile: join(dir, 'missing-ns') })).list(signal())).rejects.toThrow(
      /set the namespace option/,
    )
    expect(seen).toHaveLength(0)
  })
})

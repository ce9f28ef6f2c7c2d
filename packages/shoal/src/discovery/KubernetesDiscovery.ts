/**
 * Discovery through the Kubernetes API: the pods (or EndpointSlice endpoints) matching a label
 * selector in one namespace, listed with the pod's service account.
 * @module
 */
import { readFile } from 'node:fs/promises'
import { request } from 'node:https'
import { isIP } from 'node:net'
import { isValidHost } from '../actor/ClusterNode.ts'
import { ConfigError } from '../errors.ts'
import type { DiscoveredEndpoint, DiscoveryProvider } from './Discovery.ts'

/** Where Kubernetes mounts a pod's service account credentials. */
const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount'
const MiB = 1024 * 1024
/** `setTimeout` cannot wait longer. */
const MAX_TIMER_MS = 2 ** 31 - 1
/** The port name looked up when `port` is not set. */
const DEFAULT_PORT_NAME = 'shoal'

/** What {@link KubernetesDiscovery} lists. */
export type KubernetesDiscoveryKind = 'pods' | 'endpointslices'

/** Settings of {@link KubernetesDiscovery}. Every default is the in-cluster one. */
export interface KubernetesDiscoveryOptions {
  /**
   * Label selector, e.g. `app=shoal` or `app=shoal,tier in (a,b)`. For `endpointslices`, slices carry
   * the labels of their Service plus `kubernetes.io/service-name=<service>`, which is the usual choice.
   */
  readonly selector: string
  /** Namespace to list in. Default: the pod's own, read from {@link namespaceFile} (once). */
  readonly namespace?: string
  /**
   * The nodes' cluster port. A number is used as is (a string of digits too). A name is looked up in
   * each pod's `spec.containers[].ports[].name` (pods) or the slice's `ports[].name` (endpointslices).
   * Default: the port named `shoal`; for endpointslices, the slice's first port when none is named `shoal`.
   */
  readonly port?: number | string
  /**
   * Default `pods`: needs only pod permissions and sees pods directly. `endpointslices` lists the
   * endpoints of a Service instead (their readiness as the Service sees it, `publishNotReadyAddresses`
   * included).
   */
  readonly kind?: KubernetesDiscoveryKind
  /**
   * Base URL of the API server (`https:` only; a path prefix is kept). Default
   * `https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT`, which Kubernetes sets in every pod.
   */
  readonly apiUrl?: string
  /** Bearer token file, re-read on every poll because projected tokens are rotated (hourly by default). Default: the pod's service account token. */
  readonly tokenFile?: string
  /** PEM bundle trusted for the API server's certificate (instead of the system CAs), re-read on every poll. Default: the pod's service account `ca.crt`. */
  readonly caFile?: string
  /** Where the pod's namespace is read when `namespace` is not set. Default: the service account's `namespace` file. */
  readonly namespaceFile?: string
  /** Poll interval in ms. Default 5000. Every node polls, so a large cluster makes nodes × (1000 / interval) list requests per second. */
  readonly interval?: number
  /** Limit for one request, connect to last byte, in ms. Default 5000. */
  readonly fetchTimeout?: number
  /** Largest response body accepted, in bytes. Default 16 MiB (about 2000 typical pods); narrow the selector rather than raise it. */
  readonly maxResponseBytes?: number
}

type Json = Record<string, unknown>
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v)

/** RFC 1123 label: what Kubernetes accepts as a namespace name. */
const NAMESPACE = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/
/** IANA service name: what Kubernetes accepts as a port name. */
const PORT_NAME = /^(?=.*[a-z])[a-z0-9](?:[a-z0-9-]{0,13}[a-z0-9])?$/
/** Printable ASCII without space: a bearer token that cannot break the header. */
const TOKEN = /^[\x21-\x7e]+$/
const TLS_TRUST_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'ERR_TLS_CERT_ALTNAME_INVALID',
])

const codeOf = (e: unknown): string | undefined => {
  const code = (e as { code?: unknown } | null)?.code
  return typeof code === 'string' ? code : undefined
}
const messageOf = (e: unknown): string => (e instanceof Error ? e.message : String(e))
/** Untrusted text for a log line: no control characters, bounded. */
const clean = (s: string, max = 300): string => {
  // eslint-disable-next-line no-control-regex -- removing control characters is the point
  const flat = s.replace(/[\u0000-\u001f\u007f-\u009f]+/g, ' ').trim()
  return flat.length > max ? `${flat.slice(0, max)}…` : flat
}

/** Deduplicated, sorted by host then port (plain code-unit order, the same on every machine). */
function uniqueSorted(endpoints: Iterable<DiscoveredEndpoint>): DiscoveredEndpoint[] {
  const byKey = new Map<string, DiscoveredEndpoint>()
  for (const e of endpoints) byKey.set(`${e.host}\n${e.port}`, e)
  return [...byKey.values()].sort((a, b) => (a.host < b.host ? -1 : a.host > b.host ? 1 : a.port - b.port))
}

const validPort = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= 65535

/** The in-cluster API URL from the environment Kubernetes gives every pod. */
function inClusterApiUrl(): string {
  const host = process.env['KUBERNETES_SERVICE_HOST']
  const port = process.env['KUBERNETES_SERVICE_PORT']
  if (host === undefined || host === '' || port === undefined || port === '') {
    throw new ConfigError(
      'KubernetesDiscovery: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set, so this is not running in a Kubernetes pod: set apiUrl (and tokenFile, caFile, namespace) to use it from outside.',
    )
  }
  // IPv6-only clusters give a bare IPv6 address, which a URL must bracket.
  return `https://${isIP(host) === 6 ? `[${host}]` : host}:${port}`
}

/**
 * Lists Shoal nodes through the Kubernetes API every `interval` ms (default 5 s): the pods matching
 * `selector` in the namespace (default), or the endpoints of the EndpointSlices matching it.
 *
 * In a pod, `new KubernetesDiscovery({ selector: 'app=shoal' })` is enough: the API address, token,
 * CA and namespace come from what Kubernetes mounts and sets. Gotchas:
 * - RBAC: the pod's service account needs `get` and `list` on `pods` (core API group), or on
 *   `endpointslices` (group `discovery.k8s.io`), in the namespace. Without them every poll fails with
 *   403; the error says which permission is missing.
 * - Pods are listed only when `Running`, with a pod IP, not being deleted, and Ready (when they report
 *   a Ready condition). If the readiness probe waits for the cluster to form, no pod becomes ready and
 *   none is found: keep readiness independent of membership. EndpointSlices follow the Service
 *   instead: endpoints whose `ready` is `false` are skipped, and a Service with
 *   `publishNotReadyAddresses: true` marks every endpoint ready.
 * - The token is re-read on every poll: bound service account tokens are rotated by the kubelet.
 * - Lists ask for `resourceVersion=0`, which the API server answers from its cache rather than etcd:
 *   cheap, possibly a moment stale, which is fine for discovery (it only adds candidates).
 *
 * `list()` returns endpoints deduplicated and sorted. The response is treated as untrusted: items that
 * do not have the expected shape are skipped, but a body that is not a JSON object with an `items`
 * array is an error. Failures (network, TLS, HTTP status, missing files, no named port found) throw
 * a plain `Error` saying what to fix.
 */
export class KubernetesDiscovery implements DiscoveryProvider {
  /** `k8s:<selector>` for pods, `k8s:endpointslices:<selector>` for EndpointSlices. */
  readonly name: string
  readonly interval: number
  readonly #selector: string
  readonly #kind: KubernetesDiscoveryKind
  readonly #port: number | string | undefined
  readonly #apiUrl: URL
  readonly #tokenFile: string
  readonly #caFile: string
  readonly #namespaceFile: string
  readonly #fetchTimeout: number
  readonly #maxResponseBytes: number
  /** The configured namespace, or the one read from the namespace file. */
  #namespace: string | undefined

  /** @throws {ConfigError} for invalid settings, or outside a pod without `apiUrl`. */
  constructor(options: KubernetesDiscoveryOptions) {
    const { selector, namespace, kind = 'pods', interval = 5000, fetchTimeout = 5000, maxResponseBytes = 16 * MiB } = options
    // eslint-disable-next-line no-control-regex -- a selector with control characters is refused
    if (typeof selector !== 'string' || selector.trim() === '' || selector.length > 4096 || /[\u0000-\u001f\u007f]/.test(selector)) {
      throw new ConfigError(`KubernetesDiscovery selector ${JSON.stringify(selector)} is invalid: use a label selector such as app=shoal.`)
    }
    if (kind !== 'pods' && kind !== 'endpointslices')
      throw new ConfigError(`KubernetesDiscovery kind ${JSON.stringify(kind)} is invalid: use pods or endpointslices.`)
    if (namespace !== undefined && (typeof namespace !== 'string' || !NAMESPACE.test(namespace))) {
      throw new ConfigError(
        `KubernetesDiscovery namespace ${JSON.stringify(namespace)} is not a valid namespace name (lowercase letters, digits and -, at most 63).`,
      )
    }
    let port = options.port
    if (typeof port === 'string' && /^\d+$/.test(port)) port = Number(port)
    if (typeof port === 'number' ? !validPort(port) : port !== undefined && (typeof port !== 'string' || !PORT_NAME.test(port))) {
      throw new ConfigError(`KubernetesDiscovery port ${JSON.stringify(options.port)} is invalid: use a number 1..65535 or a port name (as in the pod spec).`)
    }
    const positive = (what: string, v: number): void => {
      if (!Number.isFinite(v) || v <= 0 || v > MAX_TIMER_MS) throw new ConfigError(`KubernetesDiscovery ${what} must be a positive number of ms (got ${v}).`)
    }
    positive('interval', interval)
    positive('fetchTimeout', fetchTimeout)
    if (!Number.isSafeInteger(maxResponseBytes) || maxResponseBytes <= 0) {
      throw new ConfigError(`KubernetesDiscovery maxResponseBytes must be a positive integer (got ${maxResponseBytes}).`)
    }
    const rawUrl = options.apiUrl ?? inClusterApiUrl()
    let apiUrl: URL
    try {
      apiUrl = new URL(rawUrl)
    } catch (e) {
      throw new ConfigError(`KubernetesDiscovery apiUrl ${JSON.stringify(rawUrl)} is not a URL: use https://host:port.`, { cause: e })
    }
    if (apiUrl.protocol !== 'https:' || apiUrl.search !== '' || apiUrl.hash !== '' || apiUrl.username !== '' || apiUrl.password !== '') {
      throw new ConfigError(`KubernetesDiscovery apiUrl ${JSON.stringify(rawUrl)} must be a plain https:// URL (no query, fragment or credentials).`)
    }
    this.name = kind === 'pods' ? `k8s:${selector}` : `k8s:endpointslices:${selector}`
    this.interval = interval
    this.#selector = selector
    this.#kind = kind
    this.#port = port
    this.#apiUrl = apiUrl
    this.#namespace = namespace
    this.#tokenFile = options.tokenFile ?? `${SERVICE_ACCOUNT_DIR}/token`
    this.#caFile = options.caFile ?? `${SERVICE_ACCOUNT_DIR}/ca.crt`
    this.#namespaceFile = options.namespaceFile ?? `${SERVICE_ACCOUNT_DIR}/namespace`
    this.#fetchTimeout = fetchTimeout
    this.#maxResponseBytes = maxResponseBytes
  }

  /** One list request, with the token and CA read now. Aborting `signal` rejects at once with its reason. */
  async list(signal: AbortSignal): Promise<readonly DiscoveredEndpoint[]> {
    signal.throwIfAborted()
    const namespace = await this.#resolveNamespace()
    const [token, ca] = await Promise.all([this.#readToken(), this.#readCa()])
    signal.throwIfAborted()
    const selector = encodeURIComponent(this.#selector)
    const path =
      this.#kind === 'pods'
        ? `/api/v1/namespaces/${namespace}/pods?labelSelector=${selector}&fieldSelector=${encodeURIComponent('status.phase=Running')}&resourceVersion=0`
        : `/apis/discovery.k8s.io/v1/namespaces/${namespace}/endpointslices?labelSelector=${selector}&resourceVersion=0`
    const body = await this.#get(path, token, ca, namespace, signal)
    if (!isObject(body) || !Array.isArray(body['items'])) {
      throw new Error(
        `Kubernetes API ${this.#describe(path)}: the answer is not a list (no items array): check that apiUrl points at the Kubernetes API server.`,
      )
    }
    const items: unknown[] = body['items']
    return this.#kind === 'pods' ? this.#fromPods(items, namespace) : this.#fromSlices(items, namespace)
  }

  #fromPods(items: readonly unknown[], namespace: string): DiscoveredEndpoint[] {
    const found: DiscoveredEndpoint[] = []
    let withoutPort = 0
    for (const pod of items) {
      if (!isObject(pod)) continue
      const metadata = isObject(pod['metadata']) ? pod['metadata'] : {}
      if (metadata['deletionTimestamp'] !== undefined && metadata['deletionTimestamp'] !== null) continue
      const status = pod['status']
      if (!isObject(status) || status['phase'] !== 'Running') continue
      const ip = status['podIP']
      if (typeof ip !== 'string' || isIP(ip) === 0) continue
      const conditions = Array.isArray(status['conditions']) ? status['conditions'] : []
      const ready = conditions.find((c): c is Json => isObject(c) && c['type'] === 'Ready')
      if (ready !== undefined && ready['status'] !== 'True') continue
      const port = typeof this.#port === 'number' ? this.#port : containerPort(pod['spec'], this.#port ?? DEFAULT_PORT_NAME)
      if (port === undefined) withoutPort++
      else found.push({ host: ip.toLowerCase(), port })
    }
    if (found.length === 0 && withoutPort > 0) {
      const name = typeof this.#port === 'string' ? this.#port : DEFAULT_PORT_NAME
      throw new Error(
        `Kubernetes pods matching ${this.#selector} in ${namespace} have no container port named ${JSON.stringify(name)}: name the port in the pod spec (ports: [{ name: ${name}, containerPort: ... }]) or set port to the cluster port number.`,
      )
    }
    return uniqueSorted(found)
  }

  #fromSlices(items: readonly unknown[], namespace: string): DiscoveredEndpoint[] {
    const found: DiscoveredEndpoint[] = []
    let withoutPort = 0
    for (const slice of items) {
      if (!isObject(slice)) continue
      const hosts: string[] = []
      for (const endpoint of Array.isArray(slice['endpoints']) ? slice['endpoints'] : []) {
        if (!isObject(endpoint)) continue
        // `ready` absent or null means unknown, which the API says to treat as ready.
        if (isObject(endpoint['conditions']) && endpoint['conditions']['ready'] === false) continue
        for (const address of Array.isArray(endpoint['addresses']) ? endpoint['addresses'] : []) {
          if (typeof address === 'string' && isValidHost(address)) hosts.push(address.toLowerCase())
        }
      }
      if (hosts.length === 0) continue
      const port = slicePort(slice['ports'], this.#port)
      if (port === undefined) withoutPort++
      else for (const host of hosts) found.push({ host, port })
    }
    if (found.length === 0 && withoutPort > 0) {
      const what = typeof this.#port === 'string' ? `port named ${JSON.stringify(this.#port)}` : 'port'
      throw new Error(
        `Kubernetes EndpointSlices matching ${this.#selector} in ${namespace} have no ${what}: name the Service port accordingly or set port to the cluster port number.`,
      )
    }
    return uniqueSorted(found)
  }

  async #resolveNamespace(): Promise<string> {
    if (this.#namespace !== undefined) return this.#namespace
    let text: string
    try {
      text = await readFile(this.#namespaceFile, 'utf8')
    } catch (e) {
      throw new Error(`Kubernetes namespace: cannot read ${this.#namespaceFile} (${messageOf(e)}): set the namespace option.`, { cause: e })
    }
    const namespace = text.trim()
    if (!NAMESPACE.test(namespace)) throw new Error(`Kubernetes namespace: ${this.#namespaceFile} does not hold a namespace name: set the namespace option.`)
    this.#namespace = namespace
    return namespace
  }

  async #readToken(): Promise<string> {
    let text: string
    try {
      text = await readFile(this.#tokenFile, 'utf8')
    } catch (e) {
      throw new Error(
        `Kubernetes token: cannot read ${this.#tokenFile} (${messageOf(e)}): mount a service account token (automountServiceAccountToken must not be false) or set tokenFile.`,
        { cause: e },
      )
    }
    const token = text.trim()
    if (!TOKEN.test(token)) throw new Error(`Kubernetes token: ${this.#tokenFile} is empty or holds characters a bearer token cannot have.`)
    return token
  }

  async #readCa(): Promise<Buffer> {
    try {
      return await readFile(this.#caFile)
    } catch (e) {
      throw new Error(`Kubernetes CA: cannot read ${this.#caFile} (${messageOf(e)}): set caFile to the PEM of the CA that signed the API server certificate.`, {
        cause: e,
      })
    }
  }

  #describe(path: string): string {
    return `GET ${path.split('?')[0]!} at ${this.#apiUrl.host}`
  }

  /** GET `path` under the API URL; resolves to the parsed JSON of a 200 answer. */
  #get(path: string, token: string, ca: Buffer, namespace: string, signal: AbortSignal): Promise<unknown> {
    const url = new URL(this.#apiUrl.href)
    const [pathname, search] = path.split('?') as [string, string]
    url.pathname = url.pathname.replace(/\/+$/, '') + pathname
    url.search = search
    const what = this.#describe(path)
    const limit = this.#maxResponseBytes
    return new Promise<unknown>((resolve, reject) => {
      let settled = false
      const finish = (error: unknown, value?: unknown): void => {
        if (settled) return
        settled = true
        clearTimeout(timer)
        signal.removeEventListener('abort', onAbort)
        req.destroy()
        if (error === undefined) resolve(value)
        else reject(error instanceof Error ? error : new Error(String(error)))
      }
      const onAbort = (): void => finish(signal.reason)
      const req = request(
        url,
        { method: 'GET', ca, agent: false, headers: { Authorization: `Bearer ${token}`, Accept: 'application/json', 'User-Agent': 'shoal-discovery' } },
        (res) => {
          const status = res.statusCode ?? 0
          const declared = Number(res.headers['content-length'])
          if (Number.isFinite(declared) && declared > limit) {
            finish(
              new Error(
                `Kubernetes API ${what}: the answer is ${declared} bytes, over the ${limit}-byte limit: narrow the selector or raise maxResponseBytes.`,
              ),
            )
            return
          }
          const chunks: Buffer[] = []
          let size = 0
          res.on('data', (chunk: Buffer) => {
            size += chunk.length
            if (size > limit)
              finish(new Error(`Kubernetes API ${what}: the answer is over the ${limit}-byte limit: narrow the selector or raise maxResponseBytes.`))
            else chunks.push(chunk)
          })
          res.on('error', (e) => finish(new Error(`Kubernetes API ${what}: the answer was cut off (${messageOf(e)}).`, { cause: e })))
          res.on('close', () => finish(new Error(`Kubernetes API ${what}: the connection closed before the answer was complete.`)))
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8')
            if (status !== 200) {
              finish(this.#statusError(what, status, text, namespace))
              return
            }
            try {
              finish(undefined, JSON.parse(text))
            } catch (e) {
              finish(
                new Error(`Kubernetes API ${what}: the answer is not JSON (${messageOf(e)}): check that apiUrl points at the Kubernetes API server.`, {
                  cause: e,
                }),
              )
            }
          })
        },
      )
      req.on('error', (e) => finish(this.#requestError(what, e)))
      const timer = setTimeout(
        () => finish(new Error(`Kubernetes API ${what}: no complete answer within ${this.#fetchTimeout} ms (fetchTimeout).`)),
        this.#fetchTimeout,
      )
      if (signal.aborted) onAbort()
      else signal.addEventListener('abort', onAbort, { once: true })
      req.end()
    })
  }

  #requestError(what: string, e: Error): Error {
    const code = codeOf(e)
    if (code !== undefined && TLS_TRUST_CODES.has(code)) {
      return new Error(
        `Kubernetes API ${what}: the server's TLS certificate is not accepted (${code}: ${e.message}): check that caFile (${this.#caFile}) holds the CA of this API server and that apiUrl uses a name or IP its certificate covers.`,
        { cause: e },
      )
    }
    return new Error(
      `Kubernetes API ${what}: request failed (${code !== undefined && !e.message.includes(code) ? `${code}: ` : ''}${e.message}): check that apiUrl is reachable.`,
      { cause: e },
    )
  }

  #statusError(what: string, status: number, text: string, namespace: string): Error {
    let apiMessage: string | undefined
    try {
      const parsed: unknown = JSON.parse(text)
      if (isObject(parsed) && typeof parsed['message'] === 'string') apiMessage = clean(parsed['message'])
    } catch {
      // not a Status object: the status code alone has to do
    }
    const resource = this.#kind === 'pods' ? 'pods' : 'endpointslices (API group discovery.k8s.io)'
    const hint =
      status === 401
        ? `the token was not accepted: check that ${this.#tokenFile} holds a current service account token.`
        : status === 403
          ? `RBAC: the service account needs get and list on ${resource} in namespace ${namespace}; grant them with a Role and RoleBinding.`
          : status === 404
            ? this.#kind === 'pods'
              ? `check that namespace ${namespace} exists and apiUrl points at the Kubernetes API server.`
              : `check that namespace ${namespace} exists and the cluster serves discovery.k8s.io/v1 (Kubernetes 1.21 or later).`
            : status === 400
              ? `check the label selector ${JSON.stringify(this.#selector)}.`
              : status === 429 || status >= 500
                ? 'the API server is busy or failing; the next poll retries.'
                : 'unexpected status.'
    return new Error(`Kubernetes API ${what} answered ${status}${apiMessage !== undefined ? ` (${apiMessage})` : ''}: ${hint}`)
  }
}

/** The `containerPort` named `name` in a pod spec, or undefined. */
function containerPort(spec: unknown, name: string): number | undefined {
  if (!isObject(spec) || !Array.isArray(spec['containers'])) return undefined
  for (const container of spec['containers']) {
    if (!isObject(container) || !Array.isArray(container['ports'])) continue
    for (const p of container['ports']) {
      if (isObject(p) && p['name'] === name && validPort(p['containerPort'])) return p['containerPort']
    }
  }
  return undefined
}

/** The port of an EndpointSlice: `wanted` if a number, the port named `wanted`, else the one named `shoal` or the first. */
function slicePort(ports: unknown, wanted: number | string | undefined): number | undefined {
  if (typeof wanted === 'number') return wanted
  const valid = (Array.isArray(ports) ? ports : []).filter((p): p is Json & { port: number } => isObject(p) && validPort(p['port']))
  if (wanted !== undefined) return valid.find((p) => p['name'] === wanted)?.port
  return (valid.find((p) => p['name'] === DEFAULT_PORT_NAME) ?? valid[0])?.port
}

/**
 * The Kubernetes manifests (deploy/k8s), checked offline: `kubectl kustomize` renders the base and
 * the TicTacFish overlay, every object validates against the Kubernetes schemas
 * (kubernetes-models), and policy tests hold the rules of docs/operations.md: a Deployment rolled
 * with surge 1 and unavailable 0, a headless Service publishing not-ready addresses for discovery,
 * pod-reading RBAC only, probes on the management endpoint, a preStop sleep and a grace period
 * that covers leave and hand-over, a PodDisruptionBudget, a restricted securityContext, the secrets
 * from a Secret, named ports, no `:latest`.
 */
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { parseAllDocuments } from 'yaml'

const K8S = fileURLToPath(new URL('../k8s/', import.meta.url))
const KUBECTL = ['/usr/bin/kubectl', '/usr/local/bin/kubectl'].find((p) => existsSync(p))

// biome-ignore lint/suspicious/noExplicitAny: manifests are checked field by field below
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Obj = any

function render(dir: string): Obj[] {
  const out = execFileSync(KUBECTL!, ['kustomize', `${K8S}${dir}`], { encoding: 'utf8' })
  return parseAllDocuments(out).map((d) => d.toJS() as Obj)
}

/** The kubernetes-models class for an object, by apiVersion and kind. */
async function modelOf(o: Obj): Promise<new (data: Obj) => { validate(): void }> {
  const [group, version] = String(o.apiVersion).includes('/') ? String(o.apiVersion).split('/') : ['', o.apiVersion]
  const path = group === '' ? `kubernetes-models/v1/${o.kind}` : `kubernetes-models/${group}/${version}/${o.kind}`
  const mod = (await import(path)) as Record<string, new (data: Obj) => { validate(): void }>
  return mod[o.kind as string]!
}

const one = (objs: Obj[], kind: string, name?: string): Obj => {
  const found = objs.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name))
  expect(found, `${kind} ${name ?? ''}`).toHaveLength(1)
  return found[0]
}

describe.skipIf(!KUBECTL)(`Kubernetes manifests${KUBECTL ? '' : ' — skipped: kubectl is not installed'}`, () => {
  const base = render('base')
  const demo = render('overlays/tictacfish')

  it('both render, and every object validates against the Kubernetes schemas', async () => {
    expect(base.map((o) => o.kind).sort()).toEqual(['Deployment', 'PodDisruptionBudget', 'Role', 'RoleBinding', 'Service', 'ServiceAccount'])
    expect(demo.map((o) => o.kind).sort()).toEqual([
      'Deployment',
      'Ingress',
      'PodDisruptionBudget',
      'Role',
      'RoleBinding',
      'Service',
      'Service',
      'ServiceAccount',
    ])
    for (const o of [...base, ...demo]) {
      const Model = await modelOf(o)
      expect(() => new Model(o).validate(), `${o.kind} ${o.metadata.name}`).not.toThrow()
    }
  })

  it('the validation is not a rubber stamp: a broken object fails it', async () => {
    const d = structuredClone(one(demo, 'Deployment'))
    d.spec.template.spec.containers[0].ports[0].containerPort = 'seventy'
    const Model = await modelOf(d)
    expect(() => new Model(d).validate()).toThrow()
  })

  describe.each([
    ['base', base],
    ['overlays/tictacfish', demo],
  ])('%s', (_name, objs) => {
    const deployment = one(objs, 'Deployment')
    const pod = deployment.spec.template.spec
    const container = pod.containers[0]

    it('a Deployment rolled one new pod at a time, never below its size', () => {
      expect(deployment.spec.strategy).toEqual({ type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } })
      expect(deployment.spec.replicas).toBeGreaterThanOrEqual(3)
    })

    it('the selector is within the pod template labels; Services select those pods', () => {
      const labels = deployment.spec.template.metadata.labels
      for (const [k, v] of Object.entries(deployment.spec.selector.matchLabels as Record<string, string>)) expect(labels[k]).toBe(v)
      for (const svc of objs.filter((o) => o.kind === 'Service'))
        for (const [k, v] of Object.entries((svc.spec.selector ?? {}) as Record<string, string>)) expect(labels[k], svc.metadata.name).toBe(v)
      for (const svc of objs.filter((o) => o.kind === 'Service')) expect(svc.spec.selector, svc.metadata.name).toBeDefined()
    })

    it('discovery: a headless Service that publishes not-ready addresses, named after --dns', () => {
      const svc = one(objs, 'Service', 'shoal-cluster')
      expect(svc.spec.clusterIP).toBe('None')
      expect(svc.spec.publishNotReadyAddresses).toBe(true)
      const dns = container.args[container.args.indexOf('--dns') + 1]
      expect(dns).toBe('shoal-cluster.$(POD_NAMESPACE).svc.cluster.local')
      expect(svc.spec.ports.map((p: Obj) => `${p.name}/${p.protocol}`).sort()).toEqual(['shoal-udp/UDP', 'shoal/TCP'])
    })

    it('named ports, and every targetPort names one', () => {
      const names = container.ports.map((p: Obj) => p.name)
      expect(names).toEqual(expect.arrayContaining(['shoal', 'shoal-udp', 'management']))
      for (const svc of objs.filter((o) => o.kind === 'Service')) for (const p of svc.spec.ports) expect(names, svc.metadata.name).toContain(p.targetPort)
    })

    it('RBAC reads pods only', () => {
      const role = one(objs, 'Role')
      for (const rule of role.rules) {
        expect(rule.resources).toEqual(['pods'])
        for (const verb of rule.verbs) expect(['get', 'list', 'watch', 'patch']).toContain(verb)
      }
      const binding = one(objs, 'RoleBinding')
      expect(binding.roleRef.name).toBe(role.metadata.name)
      expect(binding.subjects[0].name).toBe(pod.serviceAccountName)
    })

    it('probes: readiness on /ready, liveness and startup on /health, all on the management port', () => {
      expect(container.readinessProbe.httpGet).toEqual({ path: '/ready', port: 'management' })
      expect(container.livenessProbe.httpGet).toEqual({ path: '/health', port: 'management' })
      expect(container.startupProbe.httpGet.path).toBe('/health')
      expect(container.args[container.args.indexOf('--management-host') + 1]).toBe('0.0.0.0')
    })

    it('a preStop sleep, and a grace period that covers it, the leave and the hand-over', () => {
      const sleep = container.lifecycle.preStop.sleep.seconds as number
      expect(sleep).toBeGreaterThanOrEqual(3)
      // Leave and hand-over: the actors' shutdownTimeout (10 s) plus the leave itself; 30 s spare.
      expect(pod.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(sleep + 10 + 30)
    })

    it('a PodDisruptionBudget of one', () => {
      expect(one(objs, 'PodDisruptionBudget').spec).toEqual({ maxUnavailable: 1, selector: deployment.spec.selector })
    })

    it('a restricted securityContext: not root, no escalation, read-only root, no capabilities, RuntimeDefault seccomp', () => {
      expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } })
      expect(pod.securityContext.runAsUser).not.toBe(0)
      expect(container.securityContext).toEqual({
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        runAsNonRoot: true,
        capabilities: { drop: ['ALL'] },
      })
      const mounts = container.volumeMounts.map((m: Obj) => m.mountPath)
      expect(mounts).toEqual(expect.arrayContaining(['/tmp', '/app/data']))
    })

    it('secrets come from a Secret, never inline; the node binds and advertises the pod IP', () => {
      for (const name of ['SHOAL_SECRET', 'SHOAL_HTTP_TOKEN']) {
        const env = container.env.find((e: Obj) => e.name === name)
        expect(env?.valueFrom?.secretKeyRef?.name, name).toBe('shoal')
        expect(env.value).toBeUndefined()
      }
      expect(container.args[container.args.indexOf('--host') + 1]).toBe('$(POD_IP)')
      expect(container.env.find((e: Obj) => e.name === 'POD_IP').valueFrom.fieldRef.fieldPath).toBe('status.podIP')
    })

    it('images are pinned to a version, never :latest', () => {
      for (const c of pod.containers) {
        expect(c.image).toMatch(/:[\w.-]+$/)
        expect(c.image).not.toMatch(/:latest$/)
      }
    })
  })

  it('the demo: every role, PostgreSQL from the Secret, a Service and an Ingress that does not buffer the streams', () => {
    const c = one(demo, 'Deployment').spec.template.spec.containers[0]
    expect(c.image).toBe('tictacfish:0.1.0')
    expect(c.args[c.args.indexOf('--roles') + 1]).toBe('gateway,players,lobby')
    expect(c.args[c.args.indexOf('--journal') + 1]).toBe('$(JOURNAL_URL)')
    expect(c.env.find((e: Obj) => e.name === 'JOURNAL_URL').valueFrom.secretKeyRef).toEqual({ name: 'shoal', key: 'journal-url' })
    const ingress = one(demo, 'Ingress')
    expect(ingress.metadata.annotations).toMatchObject({
      'nginx.ingress.kubernetes.io/proxy-request-buffering': 'off',
      'nginx.ingress.kubernetes.io/proxy-buffering': 'off',
    })
    expect(Number(ingress.metadata.annotations['nginx.ingress.kubernetes.io/proxy-read-timeout'])).toBeGreaterThanOrEqual(600)
    expect(ingress.spec.rules[0].http.paths[0].backend.service).toEqual({ name: 'tictacfish', port: { name: 'http' } })
  })
})

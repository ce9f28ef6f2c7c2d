/**
 * Test support: a throwaway PKI made with the openssl CLI in a temporary directory. Certificate
 * authorities and node certificates (EC P-256, valid for one day) for mutual-TLS tests.
 * @module
 */
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)

export interface Ca {
  readonly name: string
  readonly keyPath: string
  readonly certPath: string
  /** PEM of the CA certificate, to trust it. */
  readonly cert: Buffer
}

/** What a node passes as `tls` (plus `ca`): its key and certificate, PEM. */
export interface NodeCert {
  readonly key: Buffer
  readonly cert: Buffer
}

export interface TestPki {
  readonly dir: string
  /** A new certificate authority. */
  ca(name: string): Promise<Ca>
  /** A node certificate signed by `ca`, for server and client use; SAN `IP:127.0.0.1` unless `san` says otherwise. */
  node(ca: Ca, name: string, options?: { readonly san?: string }): Promise<NodeCert>
  /** Deletes the directory and every key in it. */
  cleanup(): Promise<void>
}

async function openssl(args: readonly string[], cwd: string): Promise<void> {
  try {
    await run('openssl', args, { cwd, timeout: 60_000 })
  } catch (e) {
    const stderr = (e as { stderr?: unknown }).stderr
    throw new Error(`openssl ${args[0] ?? ''} failed: ${typeof stderr === 'string' ? stderr : String(e)}`, { cause: e })
  }
}

const REQ_CONFIG = '[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = placeholder\n'

const safe = (name: string): string => {
  if (!/^[A-Za-z0-9_-]+$/.test(name)) throw new Error(`certificate name ${JSON.stringify(name)} must be letters, digits, _ or -`)
  return name
}

/** Creates an empty PKI in a fresh temporary directory (mkdtemp). */
export async function createTestPki(): Promise<TestPki> {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-tls-'))
  const newKey = (path: string): Promise<void> => openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', path], dir)
  // Our own config files, so the system openssl.cnf cannot add or duplicate extensions.
  const reqConfig = join(dir, 'req.cnf')
  await writeFile(reqConfig, REQ_CONFIG)

  return {
    dir,
    async ca(name) {
      const n = safe(name)
      const keyPath = join(dir, `${n}.key`)
      const certPath = join(dir, `${n}.crt`)
      const configPath = join(dir, `${n}.cnf`)
      await writeFile(
        configPath,
        `${REQ_CONFIG}[v3_ca]\nbasicConstraints = critical, CA:TRUE\nkeyUsage = critical, keyCertSign, cRLSign\nsubjectKeyIdentifier = hash\n`,
      )
      await newKey(keyPath)
      await openssl(
        ['req', '-new', '-x509', '-config', configPath, '-extensions', 'v3_ca', '-key', keyPath, '-subj', `/CN=${n}`, '-days', '1', '-out', certPath],
        dir,
      )
      return { name: n, keyPath, certPath, cert: await readFile(certPath) }
    },
    async node(ca, name, options = {}) {
      const n = safe(name)
      const keyPath = join(dir, `${n}.key`)
      const csrPath = join(dir, `${n}.csr`)
      const certPath = join(dir, `${n}.crt`)
      const extPath = join(dir, `${n}.ext`)
      const san = options.san ?? 'IP:127.0.0.1'
      await writeFile(
        extPath,
        `[v3_node]\nbasicConstraints = critical, CA:FALSE\nkeyUsage = critical, digitalSignature\nextendedKeyUsage = serverAuth, clientAuth\nsubjectAltName = ${san}\nauthorityKeyIdentifier = keyid\n`,
      )
      await newKey(keyPath)
      await openssl(['req', '-new', '-config', reqConfig, '-key', keyPath, '-subj', `/CN=${n}`, '-out', csrPath], dir)
      const serial = `0x${randomBytes(8).toString('hex')}`
      await openssl(
        [
          'x509',
          '-req',
          '-in',
          csrPath,
          '-CA',
          ca.certPath,
          '-CAkey',
          ca.keyPath,
          '-set_serial',
          serial,
          '-days',
          '1',
          '-extfile',
          extPath,
          '-extensions',
          'v3_node',
          '-out',
          certPath,
        ],
        dir,
      )
      return { key: await readFile(keyPath), cert: await readFile(certPath) }
    },
    cleanup: () => rm(dir, { recursive: true, force: true }),
  }
}

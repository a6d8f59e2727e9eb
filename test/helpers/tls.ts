import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { appendFileSync, chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { connect as tlsConnect } from 'node:tls'
import { freePort } from '../../src/core/sandbox/cluster'
import { waitFor } from './wait'

/**
 * Real TLS servers for the encrypted-connection tests: a throwaway CA made with openssl, a
 * PostgreSQL 15 from the machine's binaries started with ssl=on and a certificate from that CA,
 * and redis-server on a TLS port. Everything lives in one private folder removed at the end.
 */

const isRoot = () => typeof process.getuid === 'function' && process.getuid() === 0
const PG_BIN = '/usr/lib/postgresql/15/bin'

export interface TestCa {
  dir: string
  /** The CA that signed the servers' certificate. */
  caFile: string
  /** Another CA, which signed nothing the servers present. */
  otherCaFile: string
  certFile: string
  keyFile: string
  remove(): void
}

function ids(user: string): { uid: number; gid: number } | null {
  const r = spawnSync('id', ['-u', user], { encoding: 'utf8' })
  const g = spawnSync('id', ['-g', user], { encoding: 'utf8' })
  if (r.status !== 0 || g.status !== 0) return null
  return { uid: Number(r.stdout.trim()), gid: Number(g.stdout.trim()) }
}

/** The account the test PostgreSQL runs as: "postgres" when we are root (initdb refuses root), else us. */
function serverUser(): { uid: number; gid: number } | null {
  return isRoot() ? ids('postgres') : null
}

/** Why the TLS PostgreSQL cannot run here (null when it can). */
export function canRunPostgres15(): string | null {
  if (!existsSync(join(PG_BIN, 'initdb'))) return `no PostgreSQL 15 binaries at ${PG_BIN}`
  if (isRoot() && !ids('postgres')) return 'running as root without a "postgres" user to run the server'
  return canMakeCerts()
}

/** Why no certificates can be made here (null when they can). */
export function canMakeCerts(): string | null {
  return spawnSync('openssl', ['version']).status === 0 ? null : 'openssl is not installed'
}

const openssl = (dir: string, args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' })

function makeCaIn(dir: string, name: string): void {
  openssl(dir, [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', `${name}.key`, '-out', `${name}.crt`, '-days', '2', '-subj', `/CN=${name}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ]) // prettier-ignore
}

/** A CA and a server certificate for localhost and 127.0.0.1, in a private folder (0700, keys 0600). */
export function makeTestCa(): TestCa {
  // Root's temporary folder may be closed to the server's user: then the folder lives under /var/tmp.
  const dir = mkdtempSync(join(isRoot() ? '/var/tmp' : tmpdir(), 'ops-tls-'))
  chmodSync(dir, 0o700)
  makeCaIn(dir, 'test-ca')
  makeCaIn(dir, 'other-ca')
  openssl(dir, [
    'req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost',
  ]) // prettier-ignore
  writeFileSync(
    join(dir, 'server.ext'),
    'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n',
  )
  openssl(dir, [
    'x509', '-req', '-in', 'server.csr', '-CA', 'test-ca.crt', '-CAkey', 'test-ca.key', '-CAcreateserial',
    '-out', 'server.crt', '-days', '2', '-extfile', 'server.ext',
  ]) // prettier-ignore
  for (const f of readdirSync(dir)) chmodSync(join(dir, f), f.endsWith('.key') ? 0o600 : 0o644)
  // The server reads its key as its own user; PostgreSQL refuses a key others can read.
  const owner = serverUser()
  if (owner) {
    chownSync(dir, owner.uid, owner.gid)
    for (const f of readdirSync(dir)) chownSync(join(dir, f), owner.uid, owner.gid)
  }
  return {
    dir,
    caFile: join(dir, 'test-ca.crt'),
    otherCaFile: join(dir, 'other-ca.crt'),
    certFile: join(dir, 'server.crt'),
    keyFile: join(dir, 'server.key'),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  }
}

export interface TlsPostgres {
  port: number
  /** postgres://postgres@<host>:<port>/postgres, without any sslmode. */
  url(host?: string): string
  stop(): Promise<void>
}

/**
 * PostgreSQL 15 (the machine's binaries) with ssl=on and the CA's server certificate, listening on
 * 127.0.0.1 and 127.0.0.2 (a loopback address the certificate does not name). Connections without
 * TLS are rejected by pg_hba, so anything that connects in clear text fails loudly.
 */
export async function startTlsPostgres(ca: TestCa): Promise<TlsPostgres> {
  const owner = serverUser()
  const as = owner ? { uid: owner.uid, gid: owner.gid } : {}
  const data = join(ca.dir, 'pgdata')
  const initdb = spawnSync(join(PG_BIN, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C'], {
    ...as,
    encoding: 'utf8',
    env: { ...process.env, LC_ALL: 'C' },
  })
  if (initdb.status !== 0) throw new Error(`initdb failed: ${initdb.stderr}`)
  const port = await freePort()
  appendFileSync(
    join(data, 'postgresql.conf'),
    [
      `port = ${port}`,
      `listen_addresses = '127.0.0.1,127.0.0.2'`,
      `unix_socket_directories = '${ca.dir}'`,
      `fsync = off`,
      `max_connections = 30`,
      `wal_level = logical`,
      `ssl = on`,
      `ssl_cert_file = '${ca.certFile}'`,
      `ssl_key_file = '${ca.keyFile}'`,
      '',
    ].join('\n'),
  )
  writeFileSync(
    join(data, 'pg_hba.conf'),
    ['local all all trust', 'hostssl all all 127.0.0.0/8 trust', 'hostnossl all all 127.0.0.0/8 reject', ''].join('\n'),
  )
  const log = join(data, 'server.log')
  const start = spawnSync(join(PG_BIN, 'pg_ctl'), ['-D', data, '-l', log, '-w', '-t', '60', 'start'], { ...as, encoding: 'utf8' })
  if (start.status !== 0) throw new Error(`pg_ctl start failed: ${start.stderr}${start.stdout}`)
  return {
    port,
    url: (host = '127.0.0.1') => `postgres://postgres@${host}:${port}/postgres`,
    stop: async () => {
      spawnSync(join(PG_BIN, 'pg_ctl'), ['-D', data, '-m', 'immediate', '-w', 'stop'], { ...as, encoding: 'utf8' })
    },
  }
}

export interface TlsRedis {
  port: number
  url: string
  stop(): Promise<void>
}

/** redis-server listening only on a TLS port with the CA's server certificate (no client certificates asked). */
export async function startTlsRedis(ca: TestCa): Promise<TlsRedis> {
  const port = await freePort()
  const child: ChildProcess = spawn(
    'redis-server',
    [
      '--port', '0', '--tls-port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
      '--tls-cert-file', ca.certFile, '--tls-key-file', ca.keyFile, '--tls-ca-cert-file', ca.caFile, '--tls-auth-clients', 'no',
    ], // prettier-ignore
    { stdio: 'ignore' },
  )
  let exited = false
  child.once('exit', () => (exited = true))
  const { readFileSync } = await import('node:fs')
  const caPem = readFileSync(ca.caFile)
  const pong = () =>
    new Promise<boolean>((resolve) => {
      const s = tlsConnect({ host: '127.0.0.1', port, ca: caPem }, () => s.write('PING\r\n'))
      s.on('data', (d) => {
        s.destroy()
        resolve(String(d).startsWith('+PONG'))
      })
      s.on('error', () => resolve(false))
    })
  await waitFor(
    async () => {
      if (exited) throw new Error('redis-server exited: was it built without TLS?')
      return pong()
    },
    'redis-server to answer PING over TLS',
    10_000,
    50,
  )
  return {
    port,
    url: `rediss://127.0.0.1:${port}`,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve()
        child.once('exit', () => resolve())
        child.kill('SIGTERM')
      }),
  }
}

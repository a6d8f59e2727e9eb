import { existsSync, readFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'
import type { TLSSocket } from 'node:tls'
import pg from 'pg'
import { isLoopbackHost, type Transport } from './transport'

/**
 * Every PostgreSQL connection the console makes starts here: a URL (plus PGSSLMODE, PGSSLROOTCERT,
 * PGSSLCERT, PGSSLKEY from the environment) becomes pg client options with the `ssl` that libpq would
 * use for the same URL, so `sslmode` means what the PostgreSQL documentation says it means:
 *
 * - `disable`: clear text.
 * - `allow`, `prefer` (libpq's default, and ours when nothing is said): TLS when the server offers it,
 *   without checking its certificate; clear text when it does not. (`allow` is treated as `prefer`.)
 * - `require`: TLS or no connection; the certificate is not checked, unless a root certificate is
 *   given (`sslrootcert`, PGSSLROOTCERT or ~/.postgresql/root.crt), which makes it `verify-ca`, as in libpq.
 * - `verify-ca`: TLS, and the certificate must be signed by the root certificate.
 * - `verify-full`: that, and the certificate must name the host connected to.
 * `sslrootcert=system` uses the system's trusted CAs (PostgreSQL 16's spelling).
 *
 * node-postgres reads `sslmode` differently (`require` means verify-full unless `uselibpqcompat=true`)
 * and has no `prefer` fallback, so the TLS query parameters are taken out of the URL handed to it and
 * replaced by an explicit `ssl` object; `prefer` is done by a client that continues in clear text on
 * the same socket when the server answers "no TLS" (what libpq does). A certificate that cannot be
 * verified fails the connection with a sentence that names the problem and what to set.
 *
 * Use `pgClient(url, extra)` and `pgPool(url, extra)` instead of `new pg.Client` / `new pg.Pool`;
 * `pgClientConfig` is for libraries that build their own client (the replication stream).
 */

export type SslMode = 'disable' | 'allow' | 'prefer' | 'require' | 'verify-ca' | 'verify-full'
const MODES: SslMode[] = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full']

/** What the URL and environment ask for, resolved. */
export interface PgTls {
  mode: SslMode
  /** Where the root certificate came from (a path, "system"), or null when none is used. */
  rootCert: string | null
  host: string
  port: number
  /** A Unix socket: libpq never uses TLS there. */
  socket: boolean
  /** The `ssl` option handed to pg. */
  ssl: false | pg.ClientConfig['ssl']
  /** A setting that cannot work (a missing certificate file, an unknown mode): the connection fails with it. */
  problem: string | null
}

type Env = Record<string, string | undefined>
/** Query parameters about TLS that we interpret and node-postgres must not. */
const TLS_PARAMS = ['sslmode', 'sslrootcert', 'sslcert', 'sslkey', 'sslpassword', 'ssl', 'sslcompat', 'uselibpqcompat']

function readPem(path: string, what: string, setting: string): { pem: string | null; problem: string | null } {
  try {
    return { pem: readFileSync(path, 'utf8'), problem: null }
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : `cannot be read (${(e as Error).message})`
    return { pem: null, problem: `The ${what} file ${path} (${setting}) ${why}: point ${setting} at a readable PEM file.` }
  }
}

/** Resolve the TLS settings for a PostgreSQL URL the way libpq would. */
export function resolvePgTls(url: string, env: Env = process.env): { connectionString: string; tls: PgTls } {
  let u: URL
  try {
    u = new URL(url)
  } catch {
    // Not a URL (a bare socket path or key=value string): pg parses it; no TLS of ours.
    return {
      connectionString: url,
      tls: { mode: 'disable', rootCert: null, host: url, port: 5432, socket: true, ssl: false, problem: null },
    }
  }
  const q = u.searchParams
  const hostParam = q.get('host')
  const host = hostParam || decodeURIComponent(u.hostname.replace(/^\[(.+)\]$/, '$1')) || env.PGHOST || 'localhost'
  const port = Number(q.get('port') || u.port || env.PGPORT || 5432)
  const socket = host.startsWith('/')

  let problem: string | null = null
  let raw = q.get('sslmode') ?? null
  let legacyVerify = false
  if (raw === null) {
    // node-postgres' own spelling: ssl=true verifies fully (against the system's CAs), ssl=false is clear text.
    const legacy = q.get('ssl')
    legacyVerify = legacy === 'true' || legacy === '1'
    if (legacyVerify) raw = 'verify-full'
    else if (legacy === 'false' || legacy === '0') raw = 'disable'
    else if (legacy === 'no-verify') raw = 'require'
  }
  raw ??= env.PGSSLMODE || 'prefer'
  let mode: SslMode = 'prefer'
  if ((MODES as string[]).includes(raw)) mode = raw as SslMode
  else if (raw === 'no-verify') mode = 'require'
  else problem = `sslmode "${raw}" is not one of ${MODES.join(', ')}: fix it in DATABASE_URL or PGSSLMODE.`

  const cert = q.get('sslcert') ?? env.PGSSLCERT ?? null
  const key = q.get('sslkey') ?? env.PGSSLKEY ?? null
  const passphrase = q.get('sslpassword')
  const rootParam = q.get('sslrootcert') ?? env.PGSSLROOTCERT ?? null
  const defaultRoot = join(homedir(), '.postgresql', 'root.crt')
  const setting = q.has('sslrootcert') ? 'sslrootcert' : rootParam ? 'PGSSLROOTCERT' : defaultRoot
  let rootCert: string | null = rootParam
  if (!rootCert && existsSync(defaultRoot)) rootCert = defaultRoot
  if (!rootCert && legacyVerify) rootCert = 'system'

  for (const p of TLS_PARAMS) q.delete(p)
  const connectionString = u.toString()
  const base = { host, port, socket, rootCert: null as string | null }

  if (socket || mode === 'disable') return { connectionString, tls: { ...base, mode, ssl: false, problem } }

  const ssl: NonNullable<Exclude<pg.ClientConfig['ssl'], boolean>> = {}
  const wantsRoot = mode === 'verify-ca' || mode === 'verify-full' || (mode === 'require' && rootCert !== null)
  if (wantsRoot) {
    if (mode === 'require') mode = 'verify-ca' // libpq: require with a root certificate verifies it
    if (!rootCert)
      problem ??= `sslmode=${mode} needs the CA that signed the server's certificate: set sslrootcert in DATABASE_URL or PGSSLROOTCERT to its file (or sslrootcert=system for a public CA).`
    else if (rootCert !== 'system') {
      const r = readPem(rootCert, 'root certificate', setting)
      if (r.pem) ssl.ca = r.pem
      problem ??= r.problem
    }
    ssl.rejectUnauthorized = true
    if (mode === 'verify-ca') ssl.checkServerIdentity = () => undefined
  } else {
    rootCert = null
    ssl.rejectUnauthorized = false
  }
  // A client certificate, when the server asks for one.
  if (cert && key) {
    const c = readPem(cert, 'client certificate', 'sslcert')
    const k = readPem(key, 'client key', 'sslkey')
    if (c.pem) ssl.cert = c.pem
    if (k.pem) ssl.key = k.pem
    if (passphrase) ssl.passphrase = passphrase
    problem ??= c.problem ?? k.problem
  }
  return { connectionString, tls: { ...base, mode, rootCert, ssl, problem } }
}

/** The extra options a pg config carries to our client class (pg ignores keys it does not know). */
interface Carried {
  examforgeTls: PgTls
}

/** pg client options for a URL, with the TLS libpq would use. For code that must build the client itself. */
export function pgClientConfig(url: string, extra: Omit<pg.ClientConfig, 'connectionString' | 'ssl'> = {}, env?: Env): pg.ClientConfig {
  const { connectionString, tls } = resolvePgTls(url, env)
  return { ...extra, connectionString, ssl: tls.ssl, examforgeTls: tls } as pg.ClientConfig & Carried
}

/**
 * As pgClientConfig, for a second connection to the same server once a first has told whether it
 * offers TLS: `prefer` becomes TLS or clear text accordingly (for clients that cannot fall back).
 */
export function pgClientConfigLike(
  first: pg.Client,
  url: string,
  extra: Omit<pg.ClientConfig, 'connectionString' | 'ssl'> = {},
): pg.ClientConfig {
  const cfg = pgClientConfig(url, extra) as pg.ClientConfig & Carried
  const mode = cfg.examforgeTls.mode
  if ((mode === 'prefer' || mode === 'allow') && !pgTransport(first).encrypted) cfg.ssl = false
  return cfg
}

interface PgConnectionInternals {
  ssl: unknown
  sslNegotiation?: string
  stream: NodeJS.EventEmitter & { end(): void }
  _ending?: boolean
  connect(port: number | string, host?: string): void
  upgradeToSSL(host: string | undefined, onError: (e: NodeJS.ErrnoException) => void): void
  attachListeners(stream: unknown): void
  emit(event: string, ...args: unknown[]): boolean
}

/**
 * libpq's `prefer` on pg's connection: after asking for TLS, an "N" (the server has none) continues
 * in clear text on the same socket instead of failing. Relies on pg's Connection internals
 * (stream, upgradeToSSL, attachListeners; pinned by the lockfile and covered by the TLS tests).
 */
function preferFallback(con: PgConnectionInternals): void {
  // A pg whose internals moved keeps its own behaviour (an "N" fails the connection) rather than guessing.
  if (typeof con.upgradeToSSL !== 'function' || typeof con.attachListeners !== 'function') return
  const connect = con.connect.bind(con)
  con.connect = (port, host) => {
    connect(port, host)
    if (!con.ssl || con.sslNegotiation === 'direct') return // direct TLS has no answer byte to fall back on
    con.stream.removeAllListeners('data') // pg's own answer handler: "N" would be an error there
    const onError = (error: NodeJS.ErrnoException) => {
      if (con._ending && (error.code === 'ECONNRESET' || error.code === 'EPIPE')) return
      con.emit('error', error)
    }
    con.stream.once('data', (buffer: Buffer) => {
      // Exactly one byte: anything sent with it would be read as if it came over TLS (CVE-2021-23222).
      const answer = buffer.length === 1 ? buffer.toString('latin1') : ''
      if (answer === 'S') return con.upgradeToSSL(typeof host === 'string' ? host : undefined, onError)
      if (answer === 'N') {
        con.ssl = false
        con.attachListeners(con.stream)
        con.emit('sslconnect') // the client sends its startup message now, in clear text
        return
      }
      con.stream.end()
      con.emit('error', new Error('There was an error establishing an SSL connection'))
    })
  }
}

/** A pg client that speaks libpq's sslmode and explains certificate problems. */
export class PgClient extends pg.Client {
  readonly tls: PgTls
  constructor(config: pg.ClientConfig = {}) {
    const tls = (config as pg.ClientConfig & Partial<Carried>).examforgeTls ?? resolvePgTls(config.connectionString ?? '').tls
    super(config)
    this.tls = tls
    // A connection lost while idle (the server shut down under us, as a terminal's Ctrl+C does to the sandbox's
    // PostgreSQL, or the network cut) arrives as an 'error' event, and one with no listener ends the process.
    // Queries in flight still reject and later ones fail, where their callers say what happened.
    this.on('error', () => {})
    if ((tls.mode === 'prefer' || tls.mode === 'allow') && config.ssl) preferFallback(this.connection as unknown as PgConnectionInternals)
  }

  override connect(): Promise<pg.Client>
  override connect(callback: (err: Error | null) => void): void
  override connect(callback?: (err: Error | null) => void): Promise<pg.Client> | void {
    if (this.tls.problem) {
      const e = Object.assign(new Error(this.tls.problem), { code: 'TLS_SETTINGS' })
      if (callback) return void process.nextTick(() => callback(e))
      return Promise.reject(e)
    }
    if (callback) return void super.connect((err: Error | null) => callback(err ? (explainTlsError(err, this.tls) as Error) : null))
    return super.connect().then(
      () => this,
      (e: unknown) => {
        throw explainTlsError(e, this.tls)
      },
    )
  }
}

/** A client for `url` (not yet connected). */
export function pgClient(url: string, extra: Omit<pg.ClientConfig, 'connectionString' | 'ssl'> = {}): PgClient {
  return new PgClient(pgClientConfig(url, extra))
}

/** A pool for `url` whose clients speak libpq's sslmode. */
export function pgPool(url: string, extra: Omit<pg.PoolConfig, 'connectionString' | 'ssl' | 'Client'> = {}): pg.Pool {
  const pool = new pg.Pool({ ...pgClientConfig(url, extra), Client: PgClient as unknown as pg.PoolConfig['Client'] })
  // An idle client's lost connection is re-emitted by the pool (which then drops that client): never fatal.
  pool.on('error', () => {})
  return pool
}

const UNTRUSTED = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
])

/** A TLS failure as a sentence an operator can act on; other errors pass through unchanged. */
export function explainTlsError(e: unknown, tls: PgTls): unknown {
  const err = e as NodeJS.ErrnoException
  const code = err?.code ?? ''
  const at = `${tls.host}:${tls.port}`
  const ca = tls.rootCert === 'system' ? "the system's trusted CAs" : tls.rootCert ? `the CA in ${tls.rootCert}` : 'the trusted CAs'
  let message: string | null = null
  if (UNTRUSTED.has(code))
    message = `PostgreSQL at ${at} presented a certificate that is not signed by ${ca} (${err.message}): set sslrootcert (or PGSSLROOTCERT) to the CA that issued the server's certificate, or use sslmode=require to encrypt without verifying.`
  else if (code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID')
    message = `PostgreSQL at ${at} presented a certificate that is ${code === 'CERT_HAS_EXPIRED' ? 'expired' : 'not yet valid'}: renew the server's certificate (and check this machine's clock).`
  else if (code === 'ERR_TLS_CERT_ALTNAME_INVALID')
    message = `PostgreSQL's certificate does not name "${tls.host}" (${err.message}): connect with a host name the certificate lists, or use sslmode=verify-ca to check only the CA.`
  else if (err?.message === 'The server does not support SSL connections')
    message = `PostgreSQL at ${at} does not offer TLS, but sslmode=${tls.mode} requires it: turn ssl on in the server, or use sslmode=prefer (or disable) on a trusted network.`
  else if (code === '28000' && /no encryption/.test(err.message ?? ''))
    message = `PostgreSQL at ${at} accepts only encrypted connections (pg_hba.conf) and sslmode=${tls.mode} sent none: use sslmode=verify-full with sslrootcert (or sslmode=require).`
  if (!message) return e
  return Object.assign(new Error(message, { cause: e }), { code: code || 'TLS_UNAVAILABLE' })
}

/** What a connected client's socket is: encrypted, verified, loopback, in a sentence. */
export function pgTransport(client: pg.Client): Transport {
  const tls = (client as Partial<PgClient>).tls
  if (!tls) throw new Error('pgTransport needs a client made by pgClient or pgPool.')
  const stream = (client as unknown as { connection?: { stream?: Partial<TLSSocket> } }).connection?.stream
  const loopback = tls.socket || isLoopbackHost(tls.host)
  if (!stream?.encrypted) {
    const why = tls.mode === 'disable' ? 'sslmode=disable' : tls.socket ? 'a Unix socket' : 'the server offers no TLS'
    return {
      encrypted: false,
      verified: false,
      loopback,
      detail: loopback ? `Not encrypted (${why}); fine on this machine's loopback.` : `Not encrypted (${why}).`,
    }
  }
  const proto = stream.getProtocol?.() ?? 'TLS'
  const cipher = stream.getCipher?.()?.name
  const what = cipher ? `${proto}, ${cipher}` : proto
  const ca = tls.rootCert === 'system' ? "the system's CAs" : (tls.rootCert ?? 'the trusted CAs')
  if (tls.mode === 'verify-full' && stream.authorized)
    return {
      encrypted: true,
      verified: true,
      loopback,
      detail: `Encrypted (${what}); certificate verified against ${ca} for "${tls.host}".`,
    }
  if (tls.mode === 'verify-ca' && stream.authorized)
    return {
      encrypted: true,
      verified: false,
      loopback,
      detail: `Encrypted (${what}); certificate signed by ${ca}, host name not checked (sslmode=verify-ca).`,
    }
  return {
    encrypted: true,
    verified: false,
    loopback,
    detail: `Encrypted (${what}); the server's certificate is not verified (sslmode=${tls.mode}): set sslmode=verify-full and sslrootcert to verify it.`,
  }
}

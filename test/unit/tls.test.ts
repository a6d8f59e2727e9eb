import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { resolvePgTls } from '../../src/core/db/connect'
import { redisConnection } from '../../src/core/db/redis'
import { isLoopbackHost, urlTransport } from '../../src/core/db/transport'
import { OpsEvents } from '../../src/core/events'
import type { Probe } from '../../src/core/health/probe'
import { HealthService } from '../../src/core/health/service'
import { applyTransportRule } from '../../src/core/health/transport'
import { silentLogger } from '../../src/core/log/logger'
import { renderHealth } from '../../src/host/format'
import type { HealthTransport } from '../../src/shared/domain'

const dir = mkdtempSync(join(tmpdir(), 'ops-tls-unit-'))
const ca = join(dir, 'ca.crt')
writeFileSync(ca, '-----BEGIN CERTIFICATE-----\nnot checked here\n-----END CERTIFICATE-----\n')
// libpq's default root certificate (~/.postgresql/root.crt) must not leak in from the machine.
const savedHome = process.env.HOME
beforeAll(() => {
  process.env.HOME = dir
})
afterAll(() => {
  process.env.HOME = savedHome
})

const sslOf = (url: string, env: Record<string, string> = {}) => resolvePgTls(url, env)

describe('sslmode as libpq reads it (not as node-postgres does)', () => {
  it('no sslmode is prefer: TLS without verification, clear text fallback (libpq default)', () => {
    const { tls, connectionString } = sslOf('postgres://u:p@db.example.com/app')
    expect(tls.mode).toBe('prefer')
    expect(tls.ssl).toEqual({ rejectUnauthorized: false })
    expect(connectionString).toBe('postgres://u:p@db.example.com/app')
  })

  it('disable is clear text; require encrypts without checking the certificate', () => {
    expect(sslOf('postgres://db.example.com/app?sslmode=disable').tls.ssl).toBe(false)
    const req = sslOf('postgres://db.example.com/app?sslmode=require')
    expect(req.tls.mode).toBe('require')
    expect(req.tls.ssl).toEqual({ rejectUnauthorized: false })
  })

  it('verify-full checks the CA and the host name; verify-ca only the CA; require with a root certificate is verify-ca', () => {
    const full = sslOf(`postgres://db.example.com/app?sslmode=verify-full&sslrootcert=${ca}`).tls
    expect(full.ssl).toMatchObject({ rejectUnauthorized: true, ca: expect.stringContaining('BEGIN CERTIFICATE') })
    expect((full.ssl as { checkServerIdentity?: unknown }).checkServerIdentity).toBeUndefined()
    const vca = sslOf(`postgres://db.example.com/app?sslmode=verify-ca&sslrootcert=${ca}`).tls
    expect((vca.ssl as { checkServerIdentity?: () => unknown }).checkServerIdentity?.()).toBeUndefined()
    expect(typeof (vca.ssl as { checkServerIdentity?: unknown }).checkServerIdentity).toBe('function')
    expect(sslOf(`postgres://db.example.com/app?sslmode=require&sslrootcert=${ca}`).tls.mode).toBe('verify-ca')
    expect(sslOf(`postgres://db.example.com/app?sslmode=verify-full&sslrootcert=system`).tls.ssl).toEqual({ rejectUnauthorized: true })
  })

  it('the TLS parameters are taken out of the URL node-postgres sees (it would read them its own way)', () => {
    const { connectionString } = sslOf(`postgres://u@db.example.com:6543/app?sslmode=require&sslrootcert=${ca}&application_name=x`)
    expect(connectionString).toBe('postgres://u@db.example.com:6543/app?application_name=x')
  })

  it('PGSSLMODE and PGSSLROOTCERT apply when the URL says nothing; the URL wins', () => {
    const env = { PGSSLMODE: 'verify-full', PGSSLROOTCERT: ca }
    const t = sslOf('postgres://db.example.com/app', env).tls
    expect(t.mode).toBe('verify-full')
    expect(t.rootCert).toBe(ca)
    expect(sslOf('postgres://db.example.com/app?sslmode=disable', env).tls.mode).toBe('disable')
  })

  it('says what is wrong with settings that cannot work', () => {
    expect(sslOf('postgres://db.example.com/app?sslmode=verify-full').tls.problem).toMatch(
      /sslmode=verify-full needs the CA that signed the server's certificate: set sslrootcert in DATABASE_URL or PGSSLROOTCERT/,
    )
    expect(sslOf('postgres://db.example.com/app?sslmode=verify-full&sslrootcert=/nowhere/ca.crt').tls.problem).toBe(
      'The root certificate file /nowhere/ca.crt (sslrootcert) does not exist: point sslrootcert at a readable PEM file.',
    )
    expect(sslOf('postgres://db.example.com/app?sslmode=strict').tls.problem).toMatch(/sslmode "strict" is not one of disable, allow/)
  })

  it("node-postgres' ssl=true means verify-full; a Unix socket never uses TLS", () => {
    expect(sslOf('postgres://db.example.com/app?ssl=true').tls).toMatchObject({ mode: 'verify-full', rootCert: 'system', problem: null })
    expect(sslOf('postgres://u@/app?host=/var/run/postgresql&sslmode=require').tls).toMatchObject({ socket: true, ssl: false })
  })
})

describe('rediss:// for Redis', () => {
  it('verifies the certificate by default, with a CA from REDIS_TLS_CA or the URL', () => {
    const c = redisConnection('rediss://:pw@cache.example.com:6380/0', { REDIS_TLS_CA: ca })
    expect(c.tls).toBe(true)
    expect(c.options.tls).toMatchObject({ rejectUnauthorized: true, ca: expect.stringContaining('BEGIN CERTIFICATE') })
    const viaUrl = redisConnection(`rediss://cache.example.com:6380?ssl_ca_certs=${encodeURIComponent(ca)}`, {})
    expect(viaUrl.caFile).toBe(ca)
    expect(viaUrl.url).toBe('rediss://cache.example.com:6380') // our parameters are not passed to ioredis
    expect(redisConnection('rediss://cache.example.com:6380', {}).options.tls).toEqual({ rejectUnauthorized: true })
  })

  it('redis:// is clear text; ssl_cert_reqs=none encrypts without verifying; a missing CA file is named', () => {
    expect(redisConnection('redis://cache.example.com:6379', { REDIS_TLS_CA: ca }).options).toEqual({})
    expect(redisConnection('rediss://cache.example.com?ssl_cert_reqs=none', {}).options.tls).toEqual({ rejectUnauthorized: false })
    expect(redisConnection('rediss://cache.example.com', { REDIS_TLS_CA: '/nowhere/ca.pem' }).problem).toMatch(
      /The Redis CA file \/nowhere\/ca.pem \(REDIS_TLS_CA or ssl_ca_certs\) does not exist/,
    )
  })
})

describe('transport classification: clear text off this machine is degraded', () => {
  it('knows loopback addresses', () => {
    for (const h of ['localhost', '127.0.0.1', '127.1.2.3', '::1', '[::1]', '/var/run/postgresql', 'app.localhost', ''])
      expect(isLoopbackHost(h), h).toBe(true)
    for (const h of ['db.example.com', '10.0.0.5', '192.168.1.10', '::ffff:10.0.0.1', '2001:db8::1', 'localhost.example.com'])
      expect(isLoopbackHost(h), h).toBe(false)
  })

  it('reads https as encrypted and verified, http as clear text', () => {
    expect(urlTransport('https://api.stripe.com', {})).toMatchObject({ encrypted: true, verified: true, loopback: false })
    expect(urlTransport('https://api.stripe.com', { NODE_TLS_REJECT_UNAUTHORIZED: '0' })).toMatchObject({
      encrypted: true,
      verified: false,
    })
    expect(urlTransport('http://minio.internal:9000', {})).toMatchObject({ encrypted: false, loopback: false })
    expect(urlTransport('http://127.0.0.1:9000', {})).toMatchObject({ encrypted: false, loopback: true })
  })

  const t = (encrypted: boolean, loopback: boolean): HealthTransport => ({ encrypted, verified: false, loopback, detail: '' })
  it('degrades a healthy non-loopback clear-text connection, saying how to encrypt it', () => {
    const out = applyTransportRule(
      { status: 'healthy', reason: 'PostgreSQL 15 answers.', transport: t(false, false) },
      'add sslmode=verify-full.',
    )
    expect(out.status).toBe('degraded')
    expect(out.reason).toBe('PostgreSQL 15 answers. The connection is not encrypted (not a loopback address): add sslmode=verify-full.')
  })

  it('leaves loopback clear text, encrypted connections and worse results alone', () => {
    expect(applyTransportRule({ status: 'healthy', reason: 'ok', transport: t(false, true) }, 'x').status).toBe('healthy')
    expect(applyTransportRule({ status: 'healthy', reason: 'ok', transport: t(true, false) }, 'x').status).toBe('healthy')
    const down = { status: 'unhealthy' as const, reason: 'down', transport: t(false, false) }
    expect(applyTransportRule(down, 'x')).toBe(down)
  })

  it('the health service applies it to every probe and keeps the transport on the result', async () => {
    const probe = (id: Probe['id'], transport: HealthTransport): Probe => ({
      id,
      label: id,
      howToConfigure: '',
      howToEncrypt: `encrypt ${id}.`,
      configured: () => true,
      run: async () => ({ status: 'healthy', reason: 'Answers.', transport }),
    })
    const health = new HealthService({
      probes: [probe('redis', t(false, false)), probe('app', t(false, true)), probe('stripe', t(true, false))],
      timeoutMs: 2000,
      intervalS: 60,
      events: new OpsEvents(),
      log: silentLogger,
      pool: () => null,
    })
    const snap = await health.checkAll()
    const by = Object.fromEntries(snap.results.map((r) => [r.service, r]))
    expect(by.redis.status).toBe('degraded')
    expect(by.redis.reason).toMatch(/not encrypted \(not a loopback address\): encrypt redis\.$/)
    expect(by.app.status).toBe('healthy')
    expect(by.app.transport).toMatchObject({ encrypted: false, loopback: true })
    expect(by.stripe.status).toBe('healthy')
    expect(snap.overall).toBe('degraded')
    // The CLI prints it too.
    const text = renderHealth(snap)
    expect(text).toMatch(/^redis +degraded .*encrypt redis\. {2}\[Not encrypted\]$/m)
    expect(text).toMatch(/^app +healthy .*Answers\. {2}\[Clear text \(loopback\)\]$/m)
    expect(text).toMatch(/^stripe +healthy .*\[Encrypted, not verified\]$/m)
  })
})

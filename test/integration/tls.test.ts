import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { backupNow, openOps } from '../helpers/ops'
import {
  canMakeCerts,
  canRunPostgres15,
  makeTestCa,
  startTlsPostgres,
  startTlsRedis,
  type TestCa,
  type TlsPostgres,
  type TlsRedis,
} from '../helpers/tls'
import { pgClient, pgTransport } from '../../src/core/db/connect'
import { postgresProbe } from '../../src/core/health/probes/postgres'
import { redisProbe } from '../../src/core/health/probes/redis'
import type { Probe } from '../../src/core/health/probe'
import { redisCollector } from '../../src/core/metrics/collectors/redis'
import type { Ops } from '../../src/core/ops'

/**
 * Encrypted connections against real servers: a PostgreSQL 15 with ssl=on (plain connections
 * refused by pg_hba) and a redis-server on a TLS port, both with a certificate from a CA made here.
 */

const run = (p: Probe) => p.run(new AbortController().signal)
const cannot = canRunPostgres15()
const noOpenssl = canMakeCerts()
const plainPgUrl = inject('pgUrl') // the embedded PostgreSQL: loopback, no TLS

/** Whether the server sees this connection encrypted (pg_stat_ssl), asked over the connection itself. */
async function serverSeesTls(url: string): Promise<boolean> {
  const c = pgClient(url)
  await c.connect()
  try {
    const { rows } = await c.query<{ ssl: boolean }>('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()')
    return rows[0].ssl
  } finally {
    await c.end()
  }
}

describe.skipIf(cannot)('PostgreSQL over TLS (sslmode, sslrootcert)', () => {
  let ca: TestCa
  let server: TlsPostgres
  const withParams = (params: string, host = '127.0.0.1') => `${server.url(host)}?${params}`
  beforeAll(async () => {
    ca = makeTestCa()
    server = await startTlsPostgres(ca)
  })
  afterAll(async () => {
    await server?.stop()
    ca?.remove()
  })

  it('verify-full with the CA connects, and Health says encrypted and verified', async () => {
    const r = await run(postgresProbe({ url: withParams(`sslmode=verify-full&sslrootcert=${ca.caFile}`), timeoutMs: 10_000 }))
    expect(r.status).toBe('healthy')
    expect(r.transport).toMatchObject({ encrypted: true, verified: true, loopback: true })
    expect(r.transport?.detail).toMatch(/^Encrypted \(TLSv1\.[23].*certificate verified against .*test-ca\.crt for "127\.0\.0\.1"/)
    expect(r.details).toMatchObject({ sslmode: 'verify-full', serverSeesTls: true })
    // By host name too (the certificate names localhost as well as 127.0.0.1).
    expect(await serverSeesTls(withParams(`sslmode=verify-full&sslrootcert=${ca.caFile}`, 'localhost'))).toBe(true)
  })

  it('PGSSLMODE and PGSSLROOTCERT from the environment do the same', async () => {
    const saved = { mode: process.env.PGSSLMODE, root: process.env.PGSSLROOTCERT }
    process.env.PGSSLMODE = 'verify-full'
    process.env.PGSSLROOTCERT = ca.caFile
    try {
      const c = pgClient(server.url())
      await c.connect()
      expect(pgTransport(c)).toMatchObject({ encrypted: true, verified: true })
      await c.end()
    } finally {
      for (const [k, v] of [
        ['PGSSLMODE', saved.mode],
        ['PGSSLROOTCERT', saved.root],
      ] as const)
        if (v === undefined) delete process.env[k]
        else process.env[k] = v
    }
  })

  it('a wrong CA is refused, naming the certificate problem and what to set', async () => {
    const url = withParams(`sslmode=verify-full&sslrootcert=${ca.otherCaFile}`)
    const c = pgClient(url)
    const err = await c.connect().then(
      () => null,
      (e: Error) => e,
    )
    expect(err?.message).toMatch(/presented a certificate that is not signed by the CA in .*other-ca\.crt/)
    expect(err?.message).toMatch(/set sslrootcert \(or PGSSLROOTCERT\) to the CA that issued the server's certificate/)
    const r = await run(postgresProbe({ url, timeoutMs: 10_000 }))
    expect(r.status).toBe('unhealthy')
    expect(r.reason).toMatch(/not signed by the CA in .*other-ca\.crt.*sslrootcert/)
    // node-postgres alone would have trusted nothing else either: the point is the sentence.
  })

  it('verify-full refuses a host name the certificate does not list; verify-ca accepts it, unverified', async () => {
    const full = pgClient(withParams(`sslmode=verify-full&sslrootcert=${ca.caFile}`, '127.0.0.2'))
    const err = await full.connect().then(
      () => null,
      (e: Error) => e,
    )
    expect(err?.message).toMatch(/certificate does not name "127\.0\.0\.2".*sslmode=verify-ca/)
    const r = await run(postgresProbe({ url: withParams(`sslmode=verify-ca&sslrootcert=${ca.caFile}`, '127.0.0.2'), timeoutMs: 10_000 }))
    expect(r.status).toBe('healthy')
    expect(r.transport).toMatchObject({ encrypted: true, verified: false })
    expect(r.transport?.detail).toMatch(/signed by .*test-ca\.crt, host name not checked/)
  })

  it('require encrypts without verifying (libpq, not node-postgres: no CA needed)', async () => {
    const r = await run(postgresProbe({ url: withParams('sslmode=require'), timeoutMs: 10_000 }))
    expect(r.status).toBe('healthy')
    expect(r.transport).toMatchObject({ encrypted: true, verified: false })
    expect(r.transport?.detail).toMatch(/not verified \(sslmode=require\).*verify-full/)
    // node-postgres' own reading of the same URL verifies, and fails without the CA:
    const raw = new pg.Client({ connectionString: withParams('sslmode=require') })
    await expect(raw.connect()).rejects.toThrow(/self-signed|unable to verify|certificate/i)
  })

  it('no sslmode means prefer: encrypted when the server offers TLS', async () => {
    expect(await serverSeesTls(server.url())).toBe(true)
    const r = await run(postgresProbe({ url: server.url(), timeoutMs: 10_000 }))
    expect(r.transport).toMatchObject({ encrypted: true, verified: false })
    expect(r.details?.sslmode).toBe('prefer')
  })

  it('disable sends clear text, which this server refuses (pg_hba: hostnossl reject)', async () => {
    const r = await run(postgresProbe({ url: withParams('sslmode=disable'), timeoutMs: 10_000 }))
    expect(r.status).toBe('unhealthy')
    expect(r.reason).toMatch(/accepts only encrypted connections \(pg_hba.conf\) and sslmode=disable sent none: use sslmode=verify-full/)
  })

  it('a missing sslrootcert file is named before anything is sent', async () => {
    const missing = join(ca.dir, 'nope.crt')
    const r = await run(postgresProbe({ url: withParams(`sslmode=verify-full&sslrootcert=${missing}`), timeoutMs: 10_000 }))
    expect(r.status).toBe('unhealthy')
    expect(r.reason).toContain(`The root certificate file ${missing} (sslrootcert) does not exist`)
  })

  describe('every connection the console makes honours it (the server refuses clear text)', () => {
    let ops: Ops
    let url: string
    const saved = { mode: process.env.PGSSLMODE, root: process.env.PGSSLROOTCERT }
    beforeAll(async () => {
      // From the environment, as libpq reads it; node-postgres alone would verify against no CA and fail.
      process.env.PGSSLMODE = 'verify-full'
      process.env.PGSSLROOTCERT = ca.caFile
      url = server.url()
      const c = pgClient(url)
      await c.connect()
      await c.query(
        `CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL); INSERT INTO items (name) SELECT 'item ' || g FROM generate_series(1, 200) g`,
      )
      await c.end()
      ops = await openOps({
        DATABASE_URL: url,
        LOCAL_BACKUP_PATH: mkdtempSync(join(tmpdir(), 'ops-tls-backups-')),
        BACKUP_INCREMENTAL: 'on',
        BACKUP_PARALLELISM: '2',
      })
    })
    afterAll(async () => {
      await ops?.close()
      for (const [k, v] of [
        ['PGSSLMODE', saved.mode],
        ['PGSSLROOTCERT', saved.root],
      ] as const)
        if (v === undefined) delete process.env[k]
        else process.env[k] = v
    })

    it('store, health, metrics, full and incremental backups, and a restore test all connect over verified TLS', async () => {
      const snap = await ops.health.checkAll()
      const pgResult = snap.results.find((r) => r.service === 'postgres')!
      expect(pgResult.status).toBe('healthy')
      expect(pgResult.transport).toMatchObject({ encrypted: true, verified: true })
      expect(snap.results.find((r) => r.service === 'backup_slot')!.reason).not.toMatch(/failed|reject/i)
      // The ops store (a pool) wrote the results.
      const stored = await ops.health.history('postgres', 5)
      expect(stored.results.length).toBeGreaterThan(0)
      const values = await ops.metrics.collect()
      expect(Object.keys(values).some((k) => k.startsWith('pg.connections'))).toBe(true)

      await backupNow(ops, 'full') // the slot's replication connection, the snapshot readers
      const c = pgClient(url)
      await c.connect()
      await c.query(`INSERT INTO items (name) VALUES ('after the full')`)
      await c.end()
      const inc = await backupNow(ops, 'incremental') // the change stream (pg-logical-replication's own client)
      expect(inc.type).toBe('incremental')

      const { jobId } = ops.restores.startTest({ actor: 'test' }) // plan, scratch database, parallel loaders, check, drop
      const info = await ops.jobs.wait(jobId)
      expect(info.error?.message ?? null).toBeNull()
      expect(info.state).toBe('succeeded')
    })
  })
})

describe('clear text', () => {
  it('to a server without TLS (loopback): prefer falls back to clear text, Health says so and stays healthy', async () => {
    const r = await run(postgresProbe({ url: plainPgUrl, timeoutMs: 10_000 }))
    expect(r.status).toBe('healthy')
    expect(r.transport).toEqual({
      encrypted: false,
      verified: false,
      loopback: true,
      detail: "Not encrypted (the server offers no TLS); fine on this machine's loopback.",
    })
  })

  it('disable to a loopback server: clear text, said to be fine there', async () => {
    const u = new URL(plainPgUrl)
    u.searchParams.set('sslmode', 'disable')
    const r = await run(postgresProbe({ url: u.toString(), timeoutMs: 10_000 }))
    expect(r.status).toBe('healthy')
    expect(r.transport?.detail).toBe("Not encrypted (sslmode=disable); fine on this machine's loopback.")
  })

  it('require to a server without TLS is refused with what to do', async () => {
    const u = new URL(plainPgUrl)
    u.searchParams.set('sslmode', 'require')
    const r = await run(postgresProbe({ url: u.toString(), timeoutMs: 10_000 }))
    expect(r.status).toBe('unhealthy')
    expect(r.reason).toMatch(/does not offer TLS, but sslmode=require requires it: turn ssl on in the server/)
  })
})

describe.skipIf(noOpenssl)('Redis over TLS (rediss://)', () => {
  let ca: TestCa
  let redis: TlsRedis
  beforeAll(async () => {
    ca = makeTestCa()
    redis = await startTlsRedis(ca)
  })
  afterAll(async () => {
    await redis?.stop()
    ca?.remove()
  })

  it('with the CA (URL or REDIS_TLS_CA): encrypted and verified', async () => {
    const r = await run(redisProbe({ url: `${redis.url}?ssl_ca_certs=${encodeURIComponent(ca.caFile)}`, timeoutMs: 5000 }))
    expect(r.reason).toMatch(/PING answered/)
    expect(r.status).toBe('healthy')
    expect(r.transport).toMatchObject({ encrypted: true, verified: true, loopback: true })
    expect(r.transport?.detail).toMatch(/certificate verified against .*test-ca\.crt/)

    process.env.REDIS_TLS_CA = ca.caFile
    try {
      const viaEnv = await run(redisProbe({ url: redis.url, timeoutMs: 5000 }))
      expect(viaEnv.transport).toMatchObject({ encrypted: true, verified: true })
      const collector = redisCollector(redis.url)
      const samples = await collector.collect(Date.now()).finally(() => collector.close())
      expect(samples.find((s) => s.name === 'redis.clients')?.v).toBeGreaterThan(0)
    } finally {
      delete process.env.REDIS_TLS_CA
    }
  })

  it('without the CA the certificate is refused, saying to set REDIS_TLS_CA', async () => {
    const r = await run(redisProbe({ url: redis.url, timeoutMs: 5000 }))
    expect(r.status).toBe('unhealthy')
    expect(r.reason).toMatch(/not signed by the system's trusted CAs .*set REDIS_TLS_CA/)
  })

  it('ssl_cert_reqs=none encrypts without verifying, and says so', async () => {
    const r = await run(redisProbe({ url: `${redis.url}?ssl_cert_reqs=none`, timeoutMs: 5000 }))
    expect(r.status).toBe('healthy')
    expect(r.transport).toMatchObject({ encrypted: true, verified: false })
  })
})

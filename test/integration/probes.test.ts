import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { appProbe } from '../../src/core/health/probes/app'
import { hostProbe } from '../../src/core/health/probes/host'
import { postgresProbe } from '../../src/core/health/probes/postgres'
import { redisProbe } from '../../src/core/health/probes/redis'
import { s3Probe } from '../../src/core/health/probes/s3'
import { localStorageProbe } from '../../src/core/health/probes/storage'
import { stripeProbe } from '../../src/core/health/probes/stripe'
import type { Probe } from '../../src/core/health/probe'
import { freePort } from '../../src/core/sandbox/cluster'
import { createS3Client } from '../../src/core/storage/s3-client'
import { startHttp, stripeLike } from '../helpers/http'
import { startRedis, type RedisServer } from '../helpers/redis'
import { S3_CREDENTIALS, TEST_BUCKET } from '../helpers/s3'

const run = (p: Probe) => p.run(new AbortController().signal)
const pgUrl = inject('pgUrl')
const systemPgUrl = inject('systemPgUrl')

describe('PostgreSQL probe', () => {
  const targets = [
    { name: 'embedded PostgreSQL', url: pgUrl },
    { name: "the machine's PostgreSQL", url: systemPgUrl },
  ]
  for (const t of targets) {
    it.skipIf(!t.url)(`reports version, connections, size and transactions of ${t.name}`, async () => {
      const r = await run(postgresProbe({ url: t.url, timeoutMs: 5000 }))
      expect(r.status).toBe('healthy')
      expect(r.details?.version).toMatch(/^\d+/)
      expect(r.details?.maxConnections).toBeGreaterThan(0)
      expect(r.details?.connections).toBeGreaterThan(0)
      expect(r.details?.databaseBytes).toBeGreaterThan(0)
      expect(r.details).toHaveProperty('longestTransactionS')
      expect(r.reason).toMatch(/PostgreSQL \d+/)
    })
  }
  if (!systemPgUrl) it.skip("the machine's PostgreSQL is not running here (nothing on 127.0.0.1:5432)", () => {})

  it('says the credentials are wrong, without the password', async () => {
    const u = new URL(pgUrl)
    u.password = 'not-the-password-xyz'
    const r = await run(postgresProbe({ url: u.toString(), timeoutMs: 5000 }))
    expect(r.status).toBe('unhealthy')
    expect(r.reason).toMatch(/rejected the credentials/)
    expect(JSON.stringify(r)).not.toContain('not-the-password-xyz')
  })

  it('says the server refused the connection when nothing listens', async () => {
    const port = await freePort()
    const r = await run(postgresProbe({ url: `postgres://u:secretpw@127.0.0.1:${port}/db`, timeoutMs: 3000 }))
    expect(r.status).toBe('unhealthy')
    expect(r.reason).toMatch(/refused the connection/)
    expect(JSON.stringify(r)).not.toContain('secretpw')
  })

  it('degrades when a transaction has been open too long', async () => {
    const pg = (await import('pg')).default
    const c = new pg.Client({ connectionString: pgUrl })
    await c.connect()
    await c.query('BEGIN')
    await c.query('SELECT txid_current()')
    await new Promise((r) => setTimeout(r, 1100))
    try {
      const r = await run(postgresProbe({ url: pgUrl, timeoutMs: 5000, longTransactionWarnS: 1 }))
      expect(r.status).toBe('degraded')
      expect(r.reason).toMatch(/transaction has been open/)
    } finally {
      await c.query('ROLLBACK')
      await c.end()
    }
  })
})

describe('Redis probe', () => {
  let redis: RedisServer
  beforeAll(async () => {
    redis = await startRedis()
  })
  afterAll(() => redis.stop())

  it('reports PING latency, memory, clients and role', async () => {
    const r = await run(redisProbe({ url: redis.url, timeoutMs: 3000 }))
    expect(r.status).toBe('healthy')
    expect(r.details?.role).toBe('master')
    expect(r.details?.connectedClients).toBeGreaterThanOrEqual(1)
    expect(r.details?.usedMemoryBytes).toBeGreaterThan(0)
    expect(r.latencyMs).toBeGreaterThan(0)
  })

  it('degrades when used memory nears maxmemory', async () => {
    const r0 = await run(redisProbe({ url: redis.url, timeoutMs: 3000 }))
    const used = Number(r0.details?.usedMemoryBytes)
    const Redis = (await import('ioredis')).default
    const c = new Redis(redis.url)
    await c.config('SET', 'maxmemory', String(Math.ceil(used * 1.02)))
    try {
      const r = await run(redisProbe({ url: redis.url, timeoutMs: 3000 }))
      expect(r.status).toBe('degraded')
      expect(r.reason).toMatch(/of maxmemory/)
    } finally {
      await c.config('SET', 'maxmemory', '0')
      c.disconnect()
    }
  })

  it('is unhealthy with a reason when Redis is down', async () => {
    const other = await startRedis()
    await other.stop()
    const r = await run(redisProbe({ url: other.url, timeoutMs: 2000 }))
    expect(r.status).toBe('unhealthy')
    expect(r.reason).toMatch(/Redis refused the connection/)
  })
})

describe('backup storage probes', () => {
  it('a writable folder is healthy with its free space', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ops-store-'))
    const r = await run(localStorageProbe({ path: join(dir, 'backups'), minFreeBytes: 1 }))
    expect(r.status).toBe('healthy')
    expect(r.details?.freeBytes).toBeGreaterThan(0)
  })

  it('a folder that cannot exist is unhealthy and names it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ops-store-'))
    const file = join(dir, 'a-file')
    writeFileSync(file, 'x')
    const r = await run(localStorageProbe({ path: join(file, 'backups') }))
    expect(r.status).toBe('unhealthy')
    expect(r.reason).toContain(join(file, 'backups'))
    expect(r.reason).toMatch(/choose another LOCAL_BACKUP_PATH/)
  })

  const s3 = (bucket: string, endpoint = inject('s3Endpoint')) => {
    const cfg = {
      bucket,
      region: 'us-east-1',
      endpoint,
      prefix: 'ops/',
      accessKeyId: S3_CREDENTIALS.AWS_ACCESS_KEY_ID,
      secretAccessKey: S3_CREDENTIALS.AWS_SECRET_ACCESS_KEY,
    }
    const client = createS3Client(cfg, 3000)
    return s3Probe({ bucket, prefix: 'ops/', client: () => client, region: cfg.region, endpoint })
  }

  it('S3: the bucket answers and the put/get/delete canary passes', async () => {
    const r = await run(s3(TEST_BUCKET))
    expect(r.status).toBe('healthy')
    expect(r.reason).toMatch(/canary passed/)
  })

  it('S3: a missing bucket is named, with the fix', async () => {
    const r = await run(s3('no-such-bucket'))
    expect(r.status).toBe('unhealthy')
    expect(r.reason).toMatch(/"no-such-bucket" does not exist/)
  })

  it('S3: an unreachable endpoint says so', async () => {
    const port = await freePort()
    const r = await run(s3(TEST_BUCKET, `http://127.0.0.1:${port}`))
    expect(r.status).toBe('unhealthy')
    expect(r.reason).toMatch(/could not be reached|ECONNREFUSED/)
  })
})

describe('Stripe probe', () => {
  let api: Awaited<ReturnType<typeof startHttp>>
  beforeAll(async () => {
    api = await startHttp(stripeLike)
  })
  afterAll(() => api.close())

  it('a working key reads the balance', async () => {
    const r = await run(stripeProbe({ secretKey: 'sk_test_good0000000000', apiBase: api.url, timeoutMs: 3000 }))
    expect(r.status).toBe('healthy')
    expect(r.details?.currencies).toBe('usd')
    expect(r.details?.mode).toBe('test')
  })

  it('tells an invalid key from a restricted one and from Stripe being unreachable', async () => {
    const invalid = await run(stripeProbe({ secretKey: 'sk_test_rolled00000000', apiBase: api.url, timeoutMs: 3000 }))
    expect(invalid.status).toBe('unhealthy')
    expect(invalid.reason).toMatch(/invalid/)
    const restricted = await run(stripeProbe({ secretKey: 'rk_test_nobalance00000', apiBase: api.url, timeoutMs: 3000 }))
    expect(restricted.status).toBe('degraded')
    expect(restricted.reason).toMatch(/restricted without "Balance: read"/)
    const port = await freePort()
    const down = await run(stripeProbe({ secretKey: 'sk_test_good0000000000', apiBase: `http://127.0.0.1:${port}`, timeoutMs: 3000 }))
    expect(down.status).toBe('unhealthy')
    expect(down.reason).toMatch(/Stripe is unreachable/)
    for (const r of [invalid, restricted, down]) expect(JSON.stringify(r)).not.toMatch(/sk_test_good|rolled0|nobalance/)
  })
})

describe('web app probe', () => {
  let app: Awaited<ReturnType<typeof startHttp>>
  beforeAll(async () => {
    app = await startHttp((req, res) => {
      if (req.url === '/api/health') res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"status":"ok","db":"up"}')
      else if (req.url === '/broken') res.writeHead(503).end('down')
      else res.writeHead(404).end()
    })
  })
  afterAll(() => app.close())

  it('healthy with status and latency; degraded without the expected keyword; unhealthy on 5xx', async () => {
    const ok = await run(appProbe({ url: app.url, healthPath: '/api/health', keyword: '"ok"', timeoutMs: 3000 }))
    expect(ok.status).toBe('healthy')
    expect(ok.details?.httpStatus).toBe(200)
    const noKeyword = await run(appProbe({ url: app.url, healthPath: '/api/health', keyword: 'examforge-ready', timeoutMs: 3000 }))
    expect(noKeyword.status).toBe('degraded')
    expect(noKeyword.reason).toMatch(/without the expected keyword "examforge-ready"/)
    const broken = await run(appProbe({ url: app.url, healthPath: '/broken', keyword: null, timeoutMs: 3000 }))
    expect(broken.status).toBe('unhealthy')
    expect(broken.reason).toMatch(/answered 503/)
  })
})

describe('host probe', () => {
  it('reports uptime, memory and load of this machine', async () => {
    const r = await run(hostProbe())
    expect(['healthy', 'degraded']).toContain(r.status)
    expect(r.details?.cores).toBeGreaterThan(0)
    expect(r.details?.memoryUsedPercent).toBeGreaterThan(0)
    expect(r.details?.uptimeS).toBeGreaterThan(0)
  })
})

import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import pg from 'pg'
import { loadConfig } from '../../src/core/config/config'
import { migrate, migrations } from '../../src/core/db/migrations'
import { silentLogger } from '../../src/core/log/logger'
import { createOps, type Ops } from '../../src/core/ops'
import type { HealthChange, HealthSnapshot } from '../../src/shared/domain'
import { createDatabase, query } from '../helpers/db'
import { startRedis, type RedisServer } from '../helpers/redis'

describe('health checks on a schedule, recorded in the ops store', () => {
  let db: Awaited<ReturnType<typeof createDatabase>>
  let redis: RedisServer
  let ops: Ops
  const env = () => ({
    DATABASE_URL: db.url,
    REDIS_URL: redis.url,
    HEALTH_INTERVAL_S: '1',
    PROBE_TIMEOUT_MS: '2000',
    LOCAL_BACKUP_PATH: join(mkdtempSync(join(tmpdir(), 'ops-bk-')), 'backups'),
  })

  beforeAll(async () => {
    db = await createDatabase(inject('pgUrl'), 'health')
    redis = await startRedis()
    ops = await createOps({
      config: loadConfig({ env: env(), dataDir: mkdtempSync(join(tmpdir(), 'ops-data-')) }),
      face: 'host',
      log: silentLogger,
    })
  })
  afterAll(async () => {
    await ops?.close()
    await redis?.stop()
    await db?.drop()
  })

  it('the first snapshot a face asks for is a checked one, never "unhealthy" for want of a check', async () => {
    const fresh = await createOps({
      config: loadConfig({ env: env(), dataDir: mkdtempSync(join(tmpdir(), 'ops-data-')) }),
      face: 'host',
      log: silentLogger,
      schedule: false,
    })
    try {
      const { dispatch } = await import('../../src/core/dispatch')
      const r = (await dispatch(fresh, 'health.snapshot', {}, { actor: { via: 'cli', osUser: 'test', email: null } })) as {
        ok: true
        value: HealthSnapshot
      }
      expect(r.value.checkedAt).not.toBeNull()
      expect(r.value.results.find((x) => x.service === 'postgres')!.status).toBe('healthy')
      expect(JSON.stringify(r.value)).not.toContain('Not checked yet')
      // The store answers: the Health page has nothing to say about alerts.
      expect(r.value.alerts).toEqual({ problem: null })
    } finally {
      await fresh.close()
    }
  })

  it('uses the configured database, never the sandbox', () => {
    expect(ops.sandbox.active).toBe(false)
    expect(ops.info().sandbox.active).toBe(false)
  })

  it('runs every probe in parallel and keeps results and state in ops', async () => {
    const snap = await ops.health.checkAll()
    const by = Object.fromEntries(snap.results.map((r) => [r.service, r.status]))
    expect(by).toMatchObject({
      postgres: 'healthy',
      redis: 'healthy',
      storage: 'healthy',
      s3: 'not_configured',
      stripe: 'not_configured',
      app: 'not_configured',
    })
    expect(snap.overall).not.toBe('unhealthy')
    const rows = await query<{ service: string; n: string }>(
      db.url,
      `SELECT service, count(*) AS n FROM ops.health_results GROUP BY service`,
    )
    expect(rows.map((r) => r.service).sort()).toEqual([
      'app',
      'backup_slot',
      'error_ingest',
      'host',
      'postgres',
      'redis',
      's3',
      'storage',
      'stripe',
    ])
    const state = await query<{ status: string }>(db.url, `SELECT status FROM ops.health_state WHERE service = 'redis'`)
    expect(state[0].status).toBe('healthy')
  })

  it('turns Redis unhealthy within one interval of it stopping, with a reason, and records the change', async () => {
    const changed = new Promise<HealthChange>((resolve) => {
      const off = ops.events.on('health.changed', (c) => {
        if (c.service === 'redis') {
          off()
          resolve(c)
        }
      })
    })
    const nextUpdate = new Promise<HealthSnapshot>((resolve) => {
      const off = ops.events.on('health.updated', (s) => {
        if (s.results.find((r) => r.service === 'redis')?.status === 'unhealthy') {
          off()
          resolve(s)
        }
      })
    })
    const stoppedAt = Date.now()
    await redis.stop()
    const change = await changed
    // One interval (1 s) plus the probe's own time.
    expect(Date.now() - stoppedAt).toBeLessThan(1000 + 2000 + 500)
    expect(change).toMatchObject({ service: 'redis', from: 'healthy', to: 'unhealthy' })
    expect(change.reason).toMatch(/Redis refused the connection/)
    const snap = ops.health.snapshot()
    const r = snap.results.find((x) => x.service === 'redis')!
    expect(r.status).toBe('unhealthy')
    expect(r.lastChangeAt).toBe(change.at)
    expect(snap.overall).toBe('unhealthy')
    const hist = await ops.health.history('redis', 10)
    expect(hist.changes[0]).toMatchObject({ from: 'healthy', to: 'unhealthy' })
    // The faces are told too: the next snapshot event carries the red Redis.
    expect((await nextUpdate).overall).toBe('unhealthy')
  })

  it('a restarted console remembers when the status last changed', async () => {
    const before = ops.health.snapshot().results.find((x) => x.service === 'redis')!.lastChangeAt
    const again = await createOps({
      config: loadConfig({ env: env(), dataDir: mkdtempSync(join(tmpdir(), 'ops-data-')) }),
      face: 'host',
      log: silentLogger,
      schedule: false,
    })
    try {
      const snap = await again.health.checkAll()
      expect(snap.results.find((x) => x.service === 'redis')!.lastChangeAt).toBe(before)
    } finally {
      await again.close()
    }
  })

  it('prunes raw results past the retention, keeping recent ones', async () => {
    await query(
      db.url,
      `UPDATE ops.health_results SET checked_at = now() - interval '9 days' WHERE id IN (SELECT id FROM ops.health_results ORDER BY id LIMIT 3)`,
    )
    const [{ n: before }] = await query<{ n: string }>(db.url, 'SELECT count(*) AS n FROM ops.health_results')
    expect(await ops.health.prune(7)).toBe(3)
    const [{ n: after }] = await query<{ n: string }>(db.url, 'SELECT count(*) AS n FROM ops.health_results')
    expect(Number(after)).toBe(Number(before) - 3)
  })

  it('migrations are versioned and idempotent', async () => {
    const rows = await query<{ version: number }>(db.url, 'SELECT version FROM ops.schema_migrations ORDER BY version')
    expect(rows.map((r) => r.version)).toEqual(migrations.map((m) => m.version))
    // Running them again applies nothing.
    const pool = new pg.Pool({ connectionString: db.url, max: 1 })
    try {
      expect(await migrate(pool)).toEqual([])
    } finally {
      await pool.end()
    }
  })
})

describe('health keeps working while the ops store is down', () => {
  it('results stay in memory, the console reports the database unreachable, and Health says alerts are not being evaluated (once, as a desktop notification)', async () => {
    const { freePort } = await import('../../src/core/sandbox/cluster')
    const port = await freePort()
    const ops = await createOps({
      config: loadConfig({
        env: { DATABASE_URL: `postgres://u:pw@127.0.0.1:${port}/x`, PROBE_TIMEOUT_MS: '1000' },
        dataDir: mkdtempSync(join(tmpdir(), 'ops-data-')),
      }),
      face: 'host',
      log: silentLogger,
      schedule: false,
    })
    try {
      const snap = await ops.health.checkAll()
      const pgResult = snap.results.find((r) => r.service === 'postgres')!
      expect(pgResult.status).toBe('unhealthy')
      expect(pgResult.reason).toMatch(/refused the connection/)
      expect(snap.results.find((r) => r.service === 'host')!.status).not.toBe('unhealthy')
      // Through the contract, as the Health page reads it (and in the snapshot every health.updated carries).
      const { dispatch } = await import('../../src/core/dispatch')
      const r = (await dispatch(ops, 'health.snapshot', {}, { actor: { via: 'cli', osUser: 'test', email: null } })) as {
        ok: true
        value: HealthSnapshot
      }
      expect(r.ok).toBe(true)
      expect(r.value.alerts?.problem).toMatch(/^Alerts are not being evaluated: the ops store is not reachable/)
      expect(snap.alerts?.problem).toBe(r.value.alerts?.problem)
      // At each collection (what metrics.tick runs): one desktop notification, not one per collection.
      const notices: { title: string; severity: string }[] = []
      ops.events.on('alerts.notify', (n) => notices.push(n))
      await ops.alerts.evaluate()
      await ops.alerts.evaluate()
      expect(notices).toEqual([expect.objectContaining({ title: 'Alerts are not being evaluated', severity: 'critical' })])
    } finally {
      await ops.close()
    }
  })
})

describe('"check now" joins the check already running instead of hammering the services', () => {
  it('a loop of health.checkNow sends Stripe one request, not one per call', async () => {
    const { startHttp, stripeLike } = await import('../helpers/http')
    const { dispatch } = await import('../../src/core/dispatch')
    let requests = 0
    const stripe = await startHttp((req, res) => {
      requests++
      stripeLike(req, res)
    })
    const db = await createDatabase(inject('pgUrl'), 'checknow')
    const ops = await createOps({
      config: loadConfig({
        env: { DATABASE_URL: db.url, STRIPE_SECRET_KEY: 'sk_test_good0000000000', STRIPE_API_BASE: stripe.url },
        dataDir: mkdtempSync(join(tmpdir(), 'ops-data-')),
      }),
      face: 'host',
      log: silentLogger,
      schedule: false,
    })
    const actor = { via: 'cli', osUser: 'test', email: null } as const
    const checkNow = (input: object) => dispatch(ops, 'health.checkNow', input, { actor })
    try {
      // Twenty at once: one probe of Stripe.
      const burst = await Promise.all(Array.from({ length: 20 }, (_, i) => checkNow(i % 2 ? { service: 'stripe' } : {})))
      expect(burst.every((r) => r.ok)).toBe(true)
      expect(requests).toBe(1)
      // Twenty more, one after another, right after: the fresh result is reused.
      for (let i = 0; i < 20; i++) expect((await checkNow({ service: 'stripe' })).ok).toBe(true)
      expect(requests).toBe(1)
      const last = (await checkNow({})) as { ok: true; value: HealthSnapshot }
      expect(last.value.results.find((r) => r.service === 'stripe')!.status).toBe('healthy')
    } finally {
      await ops.close()
      await stripe.close()
      await db.drop()
    }
  })
})

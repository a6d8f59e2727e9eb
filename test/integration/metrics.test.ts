import { spawn } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import pg from 'pg'
import Redis from 'ioredis'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { silentLogger } from '../../src/core/log/logger'
import { OpsEvents } from '../../src/core/events'
import { appCollector } from '../../src/core/metrics/collectors/app'
import { hostCollector } from '../../src/core/metrics/collectors/host'
import { postgresCollector } from '../../src/core/metrics/collectors/postgres'
import { redisCollector } from '../../src/core/metrics/collectors/redis'
import { MetricsService } from '../../src/core/metrics/service'
import { MetricStore } from '../../src/core/metrics/store'
import { promtoolCheck } from '../helpers/promtool'
import { freePort } from '../../src/core/sandbox/cluster'
import { startHostServer } from '../../src/host/server'
import type { Ops } from '../../src/core/ops'
import { createDatabase, query } from '../helpers/db'
import { startHttp } from '../helpers/http'
import { openOps } from '../helpers/ops'
import { startRedis, type RedisServer } from '../helpers/redis'

const root = resolve(__dirname, '../..')

describe('metrics: collectors, tiered history, Prometheus', () => {
  let db: Awaited<ReturnType<typeof createDatabase>>
  let redis: RedisServer
  let app: Awaited<ReturnType<typeof startHttp>>
  let pool: pg.Pool
  beforeAll(async () => {
    db = await createDatabase(inject('pgUrl'), 'metrics')
    redis = await startRedis()
    let n = 0
    app = await startHttp((_req, res) => {
      n++
      // Every fourth request fails, and answers take a known time.
      setTimeout(() => res.writeHead(n % 4 === 0 ? 503 : 200).end('ok'), 20)
    })
    // The ops schema, migrated by the console.
    const ops = await openOps({ DATABASE_URL: db.url })
    await ops.close()
    pool = new pg.Pool({ connectionString: db.url, max: 2 })
  })
  afterAll(async () => {
    await pool?.end()
    await app?.close()
    await redis?.stop()
    await db?.drop()
  })

  it('collects the host, PostgreSQL, Redis and the web app; rates come from the change between samples', async () => {
    const events = new OpsEvents()
    const m = new MetricsService({
      collectors: [
        hostCollector(),
        postgresCollector(db.url),
        redisCollector(redis.url),
        appCollector({ url: app.url, healthPath: '/health', timeoutMs: 2000 }),
      ],
      intervalMs: 1000,
      pool: () => pool,
      events,
      log: silentLogger,
      host: 'test-host',
    })
    const ticks: unknown[] = []
    events.on('metrics.tick', (t) => ticks.push(t))
    try {
      const t0 = Date.now() - 10_000 // sample times as the collector is told them (in the past, so the live view has them all)
      const first = await m.collect(t0)
      expect(first['host.cpu_percent']).toBeGreaterThanOrEqual(0)
      expect(first['pg.connections']).toBeGreaterThan(0)
      expect(first['redis.clients']).toBeGreaterThan(0)
      // A rate has no value at the first sample, and says why.
      expect(first['pg.tps']).toBeNull()
      expect(m.latest().find((l) => l.id === 'pg.tps')?.note).toMatch(/two samples/)
      // Known work between two samples two seconds apart (as the collector is told): 200 Redis commands, 50 transactions.
      const r = new Redis(redis.url)
      for (let i = 0; i < 200; i++) await r.set(`k${i}`, 'v')
      await r.quit()
      const c = new pg.Client({ connectionString: db.url })
      await c.connect()
      for (let i = 0; i < 50; i++) await c.query('SELECT 1')
      // A backend publishes its counters lazily (PostgreSQL 15+): ask for it now.
      await c.query('SELECT pg_stat_force_next_flush()')
      await c.query('SELECT 1')
      await c.end()
      await new Promise((res) => setTimeout(res, 300))
      await m.collect(t0 + 2000)
      let latest = new Map(m.latest().map((l) => [l.id, l]))
      // 200 SETs and the INFO of each sample, plus a few commands of the client's handshake, over 2 s.
      expect(latest.get('redis.ops_per_s')?.v).toBeGreaterThanOrEqual(100)
      expect(latest.get('redis.ops_per_s')?.v).toBeLessThan(110)
      expect(latest.get('pg.tps')?.v).toBeGreaterThanOrEqual(25) // at least the 50 transactions over 2 s
      expect(latest.get('pg.cache_hit_ratio')?.v).toBeGreaterThan(0)
      await m.collect(t0 + 2300)
      await m.collect(t0 + 2600)
      latest = new Map(m.latest().map((l) => [l.id, l]))
      expect(latest.get('redis.mem_used_bytes')?.v).toBeGreaterThan(0)
      expect(latest.get('host.net_rx_bps')?.v).not.toBeNull()
      expect([...latest.keys()].some((k) => k.startsWith('host.disk_used_percent{mount='))).toBe(true)
      // Four probes of the app: one in four failed; the percentiles come from the ones that answered.
      expect(latest.get('app.error_rate')?.v).toBe(25)
      expect(latest.get('app.p50_ms')?.v).toBeGreaterThanOrEqual(20)
      expect(latest.get('app.p99_ms')?.v).toBeGreaterThanOrEqual(latest.get('app.p50_ms')!.v!)
      // Every series has a unit and a group; every tick went out as an event.
      expect(m.series().every((s) => s.unit && s.group)).toBe(true)
      expect(ticks.length).toBe(4)
      // The live view is served from memory.
      const live = await m.history('pg.connections', Date.now() - 60_000, Date.now(), 100)
      expect(live.tier).toBe('live')
      expect(live.points.length).toBe(4)
      // An hour's range reads raw samples from the store, plus this host's newest ones not written yet.
      const hour = await m.history('pg.connections', Date.now() - 3_600_000, Date.now() + 60_000, 100)
      expect(hour.tier).toBe('raw')
      expect(hour.points.length).toBe(4)
      await m.store.flush()
      const [{ n }] = await query<{ n: number }>(db.url, `SELECT count(*)::int AS n FROM ops.metric_samples WHERE host = 'test-host'`)
      expect(n).toBeGreaterThan(100)
    } finally {
      await m.stop()
    }
  })

  it('rolls samples up into 1-minute and 1-hour buckets with min, max, average and count', async () => {
    const store = new MetricStore({ pool: () => pool, log: silentLogger })
    const base = Date.parse('2026-11-20T10:00:00Z')
    // Two batches touching the same minute: the rollup combines them.
    store.add([10, 20, 30].map((v, i) => ({ series: 'roll.test', host: 'h', t: base + i * 1000, v })))
    await store.flush()
    store.add([
      { series: 'roll.test', host: 'h', t: base + 5000, v: 5 },
      { series: 'roll.test', host: 'h', t: base + 61_000, v: 100 },
      { series: 'roll.test', host: 'h', t: base + 62_000, v: null }, // no value: kept raw, not rolled up
    ])
    await store.flush()
    const rows = await query(
      db.url,
      `SELECT tier, extract(epoch FROM bucket)::bigint * 1000 AS b, min, max, sum, count FROM ops.metric_rollups WHERE series = 'roll.test' ORDER BY tier, bucket`,
    )
    expect(rows.map((r) => ({ ...r, b: Number(r.b) }))).toEqual([
      { tier: '1h', b: base, min: 5, max: 100, sum: 165, count: 5 },
      { tier: '1m', b: base, min: 5, max: 30, sum: 65, count: 4 },
      { tier: '1m', b: base + 60_000, min: 100, max: 100, sum: 100, count: 1 },
    ])
    const m1 = await store.read('1m', 'roll.test', 'h', base, base + 120_000)
    expect(m1).toEqual([
      { t: base, v: 16.25, min: 5, max: 30 },
      { t: base + 60_000, v: 100, min: 100, max: 100 },
    ])
  })

  it('collects at the interval while someone watches, and slows down when nobody does', async () => {
    let n = 0
    const counting = { id: 'host' as const, configured: true, collect: async () => (n++, []), close: async () => {} }
    const m = new MetricsService({ collectors: [counting], intervalMs: 1000, pool: () => null, events: new OpsEvents(), log: silentLogger })
    try {
      m.start()
      await new Promise((r) => setTimeout(r, 3200))
      expect(n).toBe(1) // nobody watching: one collection, the next in 30 s
      m.watch()
      await new Promise((r) => setTimeout(r, 3200))
      expect(n).toBeGreaterThanOrEqual(4) // watched: one a second again, starting at once
      expect(n).toBeLessThanOrEqual(5)
    } finally {
      await m.stop()
    }
  })

  it('prunes each tier past its retention', async () => {
    const store = new MetricStore({ pool: () => pool, log: silentLogger })
    const now = Date.parse('2027-06-01T00:00:00Z')
    store.add([
      { series: 'prune.test', host: 'h', t: now - 47 * 3_600_000, v: 1 }, // raw: kept (under 48 h)
      { series: 'prune.test', host: 'h', t: now - 3 * 86_400_000, v: 2 }, // raw gone; its 1-minute rollup kept
      { series: 'prune.test', host: 'h', t: now - 40 * 86_400_000, v: 3 }, // raw and 1-minute gone; hourly kept
      { series: 'prune.test', host: 'h', t: now - 400 * 86_400_000, v: 4 }, // all gone
    ])
    await store.flush()
    await store.prune(now)
    const raw = await query(db.url, `SELECT value FROM ops.metric_samples WHERE series = 'prune.test' ORDER BY value`)
    const rolls = await query(db.url, `SELECT tier, min FROM ops.metric_rollups WHERE series = 'prune.test' ORDER BY tier, min`)
    expect(raw.map((r) => r.value)).toEqual([1])
    expect(rolls.map((r) => `${r.tier}:${r.min}`)).toEqual(['1h:1', '1h:2', '1h:3', '1m:1', '1m:2'])
  })

  it('keeps samples in memory while the database is down and writes them when it answers again', async () => {
    const deadPort = await freePort()
    const dead = new pg.Pool({ connectionString: `postgres://nobody@127.0.0.1:${deadPort}/x`, connectionTimeoutMillis: 500 })
    dead.on('error', () => {})
    let current: pg.Pool = dead
    const store = new MetricStore({ pool: () => current, log: silentLogger, maxQueued: 1000 })
    const t0 = Date.parse('2026-11-21T10:00:00Z')
    store.add(Array.from({ length: 600 }, (_, i) => ({ series: 'buffer.test', host: 'h', t: t0 + i * 1000, v: i })))
    await store.flush()
    expect(store.queued).toBe(600)
    store.add(Array.from({ length: 600 }, (_, i) => ({ series: 'buffer.test', host: 'h', t: t0 + (600 + i) * 1000, v: 600 + i })))
    expect(store.queued).toBe(1000) // bounded: the oldest went
    expect(store.dropped).toBe(200)
    current = pool
    await store.flush()
    expect(store.queued).toBe(0)
    const [{ n, lo }] = await query<{ n: number; lo: number }>(
      db.url,
      `SELECT count(*)::int AS n, min(value) AS lo FROM ops.metric_samples WHERE series = 'buffer.test'`,
    )
    expect(n).toBe(1000)
    expect(lo).toBe(200)
    await dead.end()
  })

  it('answers history from the tier the range needs, down to the asked points, with the spike in it', async () => {
    const store = new MetricStore({ pool: () => pool, log: silentLogger })
    const now = Date.now()
    const from = now - 7 * 86_400_000
    // A week at one sample per 10 s, with one spike.
    const samples = Array.from({ length: 60_480 }, (_, i) => ({ series: 'week.test', host: 'h', t: from + i * 10_000, v: 50 + (i % 7) }))
    samples[33_333].v = 987
    store.add(samples)
    await store.flush()
    const m = new MetricsService({
      collectors: [],
      intervalMs: 1000,
      pool: () => pool,
      events: new OpsEvents(),
      log: silentLogger,
      host: 'h2',
    })
    const week = await m.history('week.test', from, now, 500, 'h')
    expect(week.tier).toBe('1m')
    expect(week.points.length).toBeLessThanOrEqual(500)
    expect(Math.max(...week.points.map((p) => p.max ?? p.v!))).toBe(987)
    const hour = await m.history('week.test', now - 3_600_000 - 3 * 86_400_000, now - 3 * 86_400_000, 500, 'h')
    expect(hour.tier).toBe('1m')
    const recent = await m.history('week.test', now - 3_600_000, now, 1000, 'h')
    expect(recent.tier).toBe('raw')
    expect(recent.points.length).toBeGreaterThan(300)
    expect(await m.hosts()).toEqual(expect.arrayContaining(['h2']))
  })

  describe('through the host and the CLI', () => {
    let ops: Ops
    let server: Awaited<ReturnType<typeof startHostServer>>
    beforeAll(async () => {
      ops = await openOps({ DATABASE_URL: db.url, REDIS_URL: redis.url, METRICS_INTERVAL_S: '1' }, { schedule: true })
      server = await startHostServer({
        ops,
        rendererDir: mkdtempSync(join(tmpdir(), 'ops-r-')),
        port: 0,
        apiToken: 'prom-token-0123456789',
      })
      await new Promise((r) => setTimeout(r, 2500))
    })
    afterAll(async () => {
      await server?.close()
      await ops?.close()
    })

    it('serves /metrics in Prometheus format to the token, and nothing without it', async () => {
      const denied = await fetch(`${server.origin}/metrics`)
      expect(denied.status).toBe(401)
      const r = await fetch(`${server.origin}/metrics`, { headers: { Authorization: 'Bearer prom-token-0123456789' } })
      expect(r.status).toBe(200)
      expect(r.headers.get('content-type')).toMatch(/text\/plain; version=0.0.4/)
      const text = await r.text()
      expect(text).toMatch(/^examforge_pg_connections\{host="[^"]+"\} \d+$/m)
      expect(text).toMatch(/^examforge_redis_memory_used_bytes\{host="[^"]+"\} \d+$/m)
      // Raw counters (Prometheus computes the rates), ratios from 0 to 1.
      expect(text).toMatch(/^# TYPE examforge_pg_transactions_total counter$/m)
      expect(text).toMatch(/^examforge_pg_transactions_total\{host="[^"]+"\} \d+$/m)
      expect(text).toMatch(/^examforge_redis_commands_processed_total\{host="[^"]+"\} \d+$/m)
      expect(text).toMatch(/^examforge_pg_connections_used_ratio\{host="[^"]+"\} (0(\.\d+)?|1)$/m)
      expect(promtoolCheck(text)).toEqual({ code: 0, output: '' })
      expect(text).not.toContain(db.url)
    })

    it('examforge-ops metrics --json prints the newest value of every series', async () => {
      const out = await new Promise<{ code: number | null; stdout: string }>((done) => {
        const child = spawn(process.execPath, [join(root, 'out/host/cli.js'), 'metrics', '--json'], {
          env: {
            PATH: process.env.PATH!,
            HOME: process.env.HOME!,
            DATABASE_URL: db.url,
            REDIS_URL: redis.url,
            OPS_DATA_DIR: mkdtempSync(join(tmpdir(), 'ops-m-')),
          },
        })
        let stdout = ''
        child.stdout.on('data', (d) => (stdout += d))
        child.on('close', (code) => done({ code, stdout }))
      })
      expect(out.code).toBe(0)
      const latest = JSON.parse(out.stdout) as { id: string; unit: string; v: number | null }[]
      expect(latest.find((l) => l.id === 'pg.tps')?.v).not.toBeNull() // two samples were taken
      expect(latest.find((l) => l.id === 'redis.clients')?.unit).toBe('count')
    })

    it('examforge-ops metrics says in one line that a service is not configured, instead of listing its empty series', async () => {
      const out = await new Promise<{ code: number | null; stdout: string }>((done) => {
        const child = spawn(process.execPath, [join(root, 'out/host/cli.js'), 'metrics'], {
          env: {
            PATH: process.env.PATH!,
            HOME: process.env.HOME!,
            DATABASE_URL: db.url,
            OPS_DATA_DIR: mkdtempSync(join(tmpdir(), 'ops-m-')),
          },
        })
        let stdout = ''
        child.stdout.on('data', (d) => (stdout += d))
        child.on('close', (code) => done({ code, stdout }))
      })
      expect(out.code).toBe(0)
      expect(out.stdout).toMatch(/^pg\.tps\s+\d/m)
      expect(out.stdout).toContain('Redis is not configured — set REDIS_URL to watch it.')
      expect(out.stdout).toContain('The web app is not configured — set APP_URL to watch it.')
      expect(out.stdout).not.toMatch(/^(redis|app)\./m)
    })
  })
})

// Alerts: evaluation of many rules per tick, the time from a threshold crossing to the webhook request,
// and a backtest over 30 days of stored history. Real engine, real PostgreSQL (BENCH_PG_URL, default the
// machine's), a real loopback webhook receiver. Sizes: BENCH_ALERT_RULES (500), BENCH_ALERT_SERIES (50),
// BENCH_ALERT_TICKS (100), BENCH_ALERT_DAYS (30).
import { createServer } from 'node:http'
import pg from 'pg'
import { z } from 'zod'
import { dbUrl } from './shapes'
import { AuditLog } from '../src/core/audit/audit'
import { AlertEngine } from '../src/core/alerts/engine'
import type { RuleSource } from '../src/core/alerts/source'
import type { RuleInput } from '../src/core/alerts/rules'
import { OpsEvents } from '../src/core/events'
import { createLogger } from '../src/core/log/logger'
import { migrate } from '../src/core/db/migrations'
import { writeBatch, MetricStore } from '../src/core/metrics/store'
import { tierFor } from '../src/core/metrics/tiers'

const base = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'
const DB = 'examforge_bench_alerts'
const HOST = 'bench-host'
const num = (k: string, d: number) => (process.env[k] ? Number(process.env[k]) : d)
const round = (n: number, d = 2) => Math.round(n * 10 ** d) / 10 ** d
const log = createLogger({ level: 'error' })

async function freshDb(): Promise<string> {
  const c = new pg.Client({ connectionString: base })
  await c.connect()
  await c.query(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`)
  await c.query(`CREATE DATABASE ${DB}`)
  await c.end()
  const pool = new pg.Pool({ connectionString: dbUrl(DB), max: 2 })
  await migrate(pool)
  await pool.end()
  return dbUrl(DB)
}

/** Synthetic series the bench moves: one value per series id. */
function seriesSource(values: Map<string, number>): RuleSource<unknown> {
  const s: RuleSource<{ series: string }> = {
    kind: 'threshold',
    describe: 'bench series',
    params: z.object({ series: z.string() }),
    condition: false,
    evaluate: async (p) => [{ labels: { host: HOST }, value: values.get(p.series) ?? null }],
  }
  return s as RuleSource<unknown>
}

function engine(
  url: string,
  pool: pg.Pool,
  o: { defaults: RuleInput[]; values: Map<string, number>; webhook?: string; intervalMs: number },
) {
  const e = new AlertEngine({
    pool: () => pool,
    opsUrl: url,
    intervalMs: o.intervalMs,
    log,
    events: new OpsEvents(),
    audit: new AuditLog({ store: () => pool, log }),
    defaults: o.defaults,
    channels: o.webhook
      ? [{ name: 'webhook', type: 'webhook', url: o.webhook, groupWaitMs: 0, groupIntervalMs: 0, repeatIntervalMs: 3_600_000 }]
      : [],
    rulesFile: null,
    knowsSeries: () => true,
    seriesIds: (s) => [s],
    history: (ids, from, to) =>
      Promise.all(
        ids.map(async (id) => ({
          id,
          points: await new MetricStore({ pool: () => pool, log }).read(tierFor(from, to), id, HOST, from, to),
        })),
      ),
  })
  e.registerSource(seriesSource(o.values))
  return e
}

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]

async function evaluation(url: string, pool: pg.Pool) {
  const nRules = num('BENCH_ALERT_RULES', 500)
  const nSeries = num('BENCH_ALERT_SERIES', 50)
  const ticks = num('BENCH_ALERT_TICKS', 100)
  const values = new Map<string, number>()
  const defaults: RuleInput[] = Array.from({ length: nRules }, (_, i) => ({
    name: `r${i}`,
    series: `s${i % nSeries}`,
    threshold: 50 + (i % 50),
    for: i % 3 ? '1m' : '0s',
  }))
  const e = engine(url, pool, { defaults, values, intervalMs: 1000 })
  await e.start({ evaluate: false })
  const t0 = Date.now()
  const times: number[] = []
  const compute: number[] = []
  for (let k = 0; k < ticks; k++) {
    // Values wander, so rules keep crossing (transitions and writes happen, as in life).
    for (let s = 0; s < nSeries; s++) values.set(`s${s}`, 50 + 50 * Math.abs(Math.sin(k / 7 + s)))
    const start = performance.now()
    await e.evaluate(t0 + k * 1000, true)
    times.push(performance.now() - start)
    compute.push(e.lastEvaluation!.computeMs)
  }
  await e.stop()
  return {
    rules: nRules,
    series: nSeries,
    ticks,
    // The whole tick (rules, state machine, the store write of what changed, grouping), and the part before the write.
    computeMedianMs: round(pct(compute, 50)),
    computeP95Ms: round(pct(compute, 95)),
    medianMs: round(pct(times, 50)),
    p95Ms: round(pct(times, 95)),
    maxMs: round(Math.max(...times)),
    targetMs: 20,
  }
}

async function crossingToWebhook(url: string, pool: pg.Pool) {
  const intervalMs = 1000
  let received: number | null = null
  const server = createServer((req, res) => {
    req.resume()
    req.on('end', () => {
      received ??= Date.now()
      res.writeHead(200).end()
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
  const hook = `http://127.0.0.1:${(server.address() as { port: number }).port}/`
  const values = new Map([['cpu', 10]])
  await pool.query('TRUNCATE ops.alert_state, ops.alert_groups')
  const e = engine(url, pool, { defaults: [{ name: 'cross', series: 'cpu', threshold: 80, for: '0s' }], values, webhook: hook, intervalMs })
  await e.start({ evaluate: true })
  // Collections every interval, as the metrics service ticks.
  const tick = setInterval(() => void e.evaluate(), intervalMs)
  try {
    const deadline = Date.now() + 10_000
    while (!e.leader.isLeader && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
    await new Promise((r) => setTimeout(r, 1500))
    const crossed = Date.now()
    values.set('cpu', 95)
    while (received === null && Date.now() < crossed + 10_000) await new Promise((r) => setTimeout(r, 5))
    return { intervalMs, crossingToWebhookMs: received === null ? null : received - crossed, targetMs: intervalMs + 1000 }
  } finally {
    clearInterval(tick)
    await e.stop()
    server.close()
  }
}

async function backtest(url: string, pool: pg.Pool) {
  const days = num('BENCH_ALERT_DAYS', 30)
  const now = Date.now()
  const samples = []
  // One sample a minute for `days` days (what the 1-minute rollups hold), with a daily peak.
  for (let t = now - days * 86_400_000; t < now; t += 60_000)
    samples.push({ series: 'cpu_hist', host: HOST, t, v: 50 + 45 * Math.sin((2 * Math.PI * t) / 86_400_000) })
  for (let i = 0; i < samples.length; i += 20_000) await writeBatch(pool, samples.slice(i, i + 20_000))
  const e = engine(url, pool, {
    defaults: [{ name: 'bt', series: 'cpu_hist', threshold: 90, for: '5m' }],
    values: new Map(),
    intervalMs: 1000,
  })
  const times: number[] = []
  let episodes = 0
  let points = 0
  for (let i = 0; i < 5; i++) {
    const start = performance.now()
    const [r] = await e.backtest('bt', days, now)
    times.push(performance.now() - start)
    episodes = r.result.episodes.length
    points = r.result.points
  }
  await e.stop()
  return { days, points, episodes, medianMs: round(pct(times, 50)), maxMs: round(Math.max(...times)), targetMs: 500 }
}

export async function alertsBench() {
  const url = await freshDb()
  const pool = new pg.Pool({ connectionString: url, max: 4 })
  try {
    return {
      evaluation: await evaluation(url, pool),
      crossing: await crossingToWebhook(url, pool),
      backtest: await backtest(url, pool),
    }
  } finally {
    await pool.end()
  }
}

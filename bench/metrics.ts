/// <reference lib="dom" />
// Metrics: collector overhead at 1 s, a 7-day history query, and the Metrics page in Chromium (7-day chart, an hour of live updates).
import { spawn } from 'node:child_process'
import { createServer } from 'node:http'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { chromium } from 'playwright-core'
import { dbUrl } from './shapes'
import { OpsEvents } from '../src/core/events'
import { createLogger } from '../src/core/log/logger'
import { migrate } from '../src/core/db/migrations'
import { MetricsService } from '../src/core/metrics/service'

const base = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const DB = 'examforge_bench_metrics'
const HOST = 'bench-host'
const round = (n: number, d = 2) => Math.round(n * 10 ** d) / 10 ** d

async function ensureDb(): Promise<string> {
  const c = new pg.Client({ connectionString: base })
  await c.connect()
  if (!(await c.query(`SELECT 1 FROM pg_database WHERE datname = $1`, [DB])).rows.length) await c.query(`CREATE DATABASE ${DB}`)
  await c.end()
  const pool = new pg.Pool({ connectionString: dbUrl(DB), max: 2 })
  await migrate(pool)
  await pool.end()
  return dbUrl(DB)
}

async function collectorOverhead(root: string, seconds: number) {
  const redis = spawn('redis-server', ['--port', '0', '--save', '', '--appendonly', 'no', '--port', '6399'], { stdio: 'ignore' })
  const app = createServer((_q, r) => r.writeHead(200).end('{"status":"ok"}'))
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', () => r()))
  const appUrl = `http://127.0.0.1:${(app.address() as { port: number }).port}`
  await new Promise((r) => setTimeout(r, 300))
  try {
    const script = `require(${JSON.stringify(join(root, 'out/host/bench-collect.js'))}).collectorChild(${seconds}, ${JSON.stringify(dbUrl(DB))}, 'redis://127.0.0.1:6399', ${JSON.stringify(appUrl)})`
    const out = await new Promise<string>((resolve, reject) => {
      const child = spawn(process.execPath, ['-e', script], { env: { ...process.env, BENCH_PG_URL: base } })
      let o = ''
      let e = ''
      child.stdout.on('data', (d) => (o += d))
      child.stderr.on('data', (d) => (e += d))
      child.on('exit', (code) => (code === 0 ? resolve(o) : reject(new Error(`collector child failed: ${e}`))))
    })
    const r = JSON.parse(out.trim().split('\n').pop()!) as { cpuMs: number; wallMs: number; maxEventLoopDelayMs: number }
    return { seconds, intervalS: 1, cpuPercentOfOneCore: round((100 * r.cpuMs) / r.wallMs), maxEventLoopDelayMs: r.maxEventLoopDelayMs }
  } finally {
    redis.kill()
    app.close()
  }
}

/** Seven days of 1 s samples of host.cpu_percent for HOST, with one spike, written through the store once. */
async function ensureWeek(url: string): Promise<{ spike: number; spikeAt: number; samples: number }> {
  const pool = new pg.Pool({ connectionString: url, max: 2 })
  const spike = 99.87
  try {
    const { rows } = await pool.query(
      `SELECT count(*)::int AS n, max(ts) AS last FROM ops.metric_samples WHERE host = $1 AND series = 'host.cpu_percent'`,
      [HOST],
    )
    const fresh = rows[0].n >= 604_800 && Date.now() - new Date(rows[0].last).getTime() < 6 * 3_600_000
    const spikeRow = await pool.query(
      `SELECT extract(epoch FROM ts) * 1000 AS t FROM ops.metric_samples WHERE host = $1 AND series = 'host.cpu_percent' AND value = $2`,
      [HOST, spike],
    )
    if (fresh && spikeRow.rows.length) return { spike, spikeAt: Number(spikeRow.rows[0].t), samples: rows[0].n }
    await pool.query(`DELETE FROM ops.metric_samples WHERE host = $1`, [HOST])
    await pool.query(`DELETE FROM ops.metric_rollups WHERE host = $1`, [HOST])
    const m = storeOnly(pool, HOST)
    const end = Date.now()
    const start = end - 7 * 86_400_000
    const spikeAt = start + 3 * 86_400_000 + 12_345_000
    let seed = 7
    const rnd = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31
    for (let t = start; t < end;) {
      const batch = []
      for (let i = 0; i < 50_000 && t < end; i++, t += 1000)
        batch.push({
          series: 'host.cpu_percent',
          host: HOST,
          t,
          v: t === spikeAt ? spike : round(20 + 15 * Math.sin(t / 3_600_000) + rnd() * 10),
        })
      m.store.add(batch)
      await m.store.flush()
      process.stderr.write(`\rwriting a week of 1 s samples: ${Math.round((100 * (t - start)) / (end - start))}%   `)
    }
    process.stderr.write('\n')
    return { spike, spikeAt, samples: 604_800 }
  } finally {
    await pool.end()
  }
}

/** A metrics service with no collectors: its store and history, as the console reads them. */
const storeOnly = (pool: pg.Pool, host: string) =>
  new MetricsService({
    collectors: [],
    intervalMs: 1000,
    pool: () => pool,
    events: new OpsEvents(),
    log: createLogger({ level: 'error' }),
    host,
  })

async function historyQuery(url: string, week: { spike: number }) {
  const pool = new pg.Pool({ connectionString: url, max: 2 })
  const m = storeOnly(pool, 'elsewhere')
  try {
    const times: number[] = []
    let r = await m.history('host.cpu_percent', Date.now() - 7 * 86_400_000, Date.now(), 1000, HOST)
    for (let i = 0; i < 7; i++) {
      const t0 = performance.now()
      r = await m.history('host.cpu_percent', Date.now() - 7 * 86_400_000, Date.now(), 1000, HOST)
      times.push(performance.now() - t0)
    }
    times.sort((a, b) => a - b)
    const top = Math.max(...r.points.map((p) => p.max ?? p.v!))
    return {
      tier: r.tier,
      points: r.points.length,
      medianMs: round(times[3], 1),
      maxMs: round(times[6], 1),
      largestSpikePresent: top === week.spike,
      largestValueInResult: top,
    }
  } finally {
    await pool.end()
  }
}

async function chromiumChart(root: string, url: string) {
  const dataDir = mkdtempSync(join(tmpdir(), 'ops-bench-metrics-'))
  const host = spawn(process.execPath, [join(root, 'out/host/cli.js'), 'serve', '--port', '0'], {
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      OPS_DATA_DIR: dataDir,
      DATABASE_URL: url,
      METRICS_INTERVAL_S: '1',
      HEALTH_INTERVAL_S: '30',
    },
  })
  let out = ''
  host.stdout.on('data', (d) => (out += d))
  host.stderr.on('data', (d) => (out += d))
  let link: string | undefined
  for (let i = 0; i < 600 && !(link = /http:\/\/127\.0\.0\.1:\d+\/\?token=\S+/.exec(out)?.[0]); i++)
    await new Promise((r) => setTimeout(r, 50))
  if (!link) throw new Error(`serve printed no URL: ${out}`)
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--enable-precise-memory-info', '--js-flags=--expose-gc'],
  })
  try {
    const page = await browser.newPage({ viewport: { width: 1320, height: 900 } })
    await page.goto(link)
    await page.evaluate(() => localStorage.setItem('opsBench', '1'))
    await page.evaluate(() => (location.hash = '/metrics'))
    await page.reload()
    await page.getByTestId('host-picker').waitFor()
    await page.waitForFunction(
      (h) => Array.from(document.querySelectorAll('[data-testid="host-picker"] option')).some((o) => (o as HTMLOptionElement).value === h),
      HOST,
    )
    // The 7-day chart: from the click to the charts drawn (the page records it once they are laid out).
    const renders: number[] = []
    for (let i = 0; i < 3; i++) {
      await page.getByTestId('host-picker').selectOption(HOST)
      await page.getByTestId('range-24h').click()
      await page.waitForFunction(() => !document.querySelector('[data-testid="metrics"]')?.textContent?.includes('Loading'))
      await page.waitForTimeout(500)
      // Measured in the page: from the click on "7d" to the CPU chart drawn with the week's points.
      renders.push(
        await page.evaluate(async () => {
          const t0 = performance.now()
          ;(document.querySelector('[data-testid="range-7d"]') as HTMLButtonElement).click()
          await new Promise<void>((res) => {
            // The week's history is in the store and its chart laid out (not the previous range's points).
            const f = () =>
              document.querySelector('[data-testid="metrics"]')?.getAttribute('data-loaded') === '7d|bench-host' &&
              Number(document.querySelector('[data-testid="chart-host.cpu_percent"]')?.getAttribute('data-points')) > 200
                ? requestAnimationFrame(() => res())
                : requestAnimationFrame(f)
            f()
          })
          return performance.now() - t0
        }),
      )
    }
    const points = Number(await page.getByTestId('chart-host.cpu_percent').getAttribute('data-points'))
    // The week's one-second spike is in what the chart draws (its bucket's maximum).
    const spikeInChart = await page.evaluate(
      (v) =>
        (
          window as unknown as {
            __opsMetricsStore: { getState(): { history: Record<string, { points: { max?: number; v: number | null }[] }> } }
          }
        ).__opsMetricsStore
          .getState()
          .history['host.cpu_percent'].points.some((p) => (p.max ?? p.v) === v),
      99.87,
    )
    await page.screenshot({ path: join(root, 'bench', 'results', 'metrics-7d.png') })
    // An hour of live updates at one a second, fed at speed: the page's heap stays bounded.
    await page.getByTestId('host-picker').selectOption({ index: 0 })
    await page.getByTestId('range-live').click()
    const heap = async () =>
      page.evaluate(() => {
        ;(window as unknown as { gc?: () => void }).gc?.()
        return (performance as unknown as { memory: { usedJSHeapSize: number } }).memory.usedJSHeapSize
      })
    const simulate = (n: number) =>
      page.evaluate((k) => (window as unknown as { __opsMetricsSimulate: (n: number) => Promise<void> }).__opsMetricsSimulate(k), n)
    await simulate(600)
    const afterTenMinutes = await heap()
    const t0 = Date.now()
    await simulate(3000)
    const simulatedMs = Date.now() - t0
    const afterHour = await heap()
    const domNodes = await page.evaluate(() => document.getElementsByTagName('*').length)
    return {
      sevenDayChart: {
        points,
        spikeInChart,
        renderMsMedian: round([...renders].sort((a, b) => a - b)[1], 0),
        renderMs: renders.map((r) => round(r, 0)),
      },
      liveHour: {
        updates: 3600,
        simulatedInMs: simulatedMs,
        heapAfter10MinMB: round(afterTenMinutes / 1e6, 1),
        heapAfterHourMB: round(afterHour / 1e6, 1),
        growthMB: round((afterHour - afterTenMinutes) / 1e6, 1),
        domNodes,
      },
    }
  } finally {
    await browser.close()
    host.kill('SIGTERM')
    await new Promise((r) => host.once('exit', r))
  }
}

export async function metricsBench({ root }: { root: string }) {
  const url = await ensureDb()
  const overhead = await collectorOverhead(root, Number(process.env.BENCH_COLLECT_S ?? 60))
  const week = await ensureWeek(url)
  const history = await historyQuery(url, week)
  const chart = await chromiumChart(root, url)
  return {
    collectorOverhead: overhead,
    historyQuery7Days: { samples: week.samples, ...history, targetMs: 150 },
    chromium: { ...chart, targetRenderMs: 300 },
  }
}

/**
 * The sandbox's ExamForge-like web app: a real HTTP server on loopback, so the web-app tile and its
 * metrics (response time, throughput, error rate) are live on a first start. Its routes read the
 * sandbox database like the real app does (a quiz with its questions, a team's dashboard), cache in the
 * sandbox Redis when there is one, and answer `/api/health` after asking the database. Latency is what
 * the queries cost plus a little think time; about one request in a hundred fails with a 500, as a
 * real app's do now and then.
 *
 * Visitors: while it runs it calls itself a few times a second (the traffic simulator writes to the
 * database; these are the reads a browser would make), so the app's metrics move even when nobody
 * else uses it.
 */
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type Redis from 'ioredis'
import type pg from 'pg'
import { ioredis } from '../deps/lazy'
import { SandboxErrors } from './app-errors'
import type { Logger } from '../log/logger'

export interface SandboxWebApp {
  url: string
  /** Requests served, and of them answered 5xx (for the tests and the banner). */
  readonly served: number
  readonly failed: number
  /** Report its errors with ExamForge's SDK to this DSN (the console's ingest, once it listens). */
  reportErrors(dsn: string): void
  stop(): Promise<void>
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const json = (res: ServerResponse, status: number, body: unknown) => {
  res.writeHead(status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' })
  res.end(JSON.stringify(body))
}

export async function startSandboxWebApp(o: {
  pool: pg.Pool
  redisUrl: string | null
  log: Logger
  /** Visitor requests per second (0: none). */
  visitsPerSecond?: number
  /** Share of requests that fail with a 500. */
  errorRate?: number
}): Promise<SandboxWebApp> {
  let served = 0
  let failed = 0
  let stopped = false
  let redis: Redis | null = null
  if (o.redisUrl) {
    const R = await ioredis()
    redis = new R(o.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1, enableOfflineQueue: false, connectTimeout: 2000 })
    redis.on('error', () => {}) // a cache that is down only makes the app slower
    await redis.connect().catch(() => {})
  }
  const errorRate = o.errorRate ?? 0.02
  const errors = new SandboxErrors()

  const cached = async (key: string, load: () => Promise<unknown>) => {
    const hit = redis?.status === 'ready' ? await redis.get(key).catch(() => null) : null
    if (hit) return JSON.parse(hit) as unknown
    const value = await load()
    if (redis?.status === 'ready') await redis.set(key, JSON.stringify(value), 'EX', 30).catch(() => {})
    return value
  }

  const routes: [RegExp, (m: RegExpExecArray) => Promise<[number, unknown]>][] = [
    [
      /^\/api\/health$/,
      async () => {
        await o.pool.query('SELECT 1')
        return [200, { status: 'ok', database: 'up', cache: redis?.status === 'ready' ? 'up' : 'none' }]
      },
    ],
    [
      /^\/api\/quizzes\/(\d+)$/,
      async (m) => {
        const quiz = await cached(`quiz:${m[1]}`, async () => {
          const { rows } = await o.pool.query(
            `SELECT q.id, q.title, (SELECT count(*) FROM questions WHERE "quizId" = q.id)::int AS questions FROM quizzes q WHERE q.id = $1`,
            [m[1]],
          )
          return rows[0] ?? null
        })
        return quiz ? [200, quiz] : [404, { error: 'quiz not found' }]
      },
    ],
    [
      /^\/api\/teams\/(\d+)\/dashboard$/,
      async (m) => {
        const { rows } = await o.pool.query(`SELECT count(*)::int AS members FROM team_members WHERE "teamId" = $1`, [m[1]])
        return [200, { team: Number(m[1]), ...rows[0] }]
      },
    ],
  ]

  async function handle(req: IncomingMessage, res: ServerResponse) {
    const path = (req.url ?? '/').split('?')[0]
    if (path !== '/api/health') errors.request(req.method ?? 'GET', path)
    for (const [re, fn] of routes) {
      const m = re.exec(path)
      if (!m) continue
      await sleep(2 + Math.random() * 18) // templating, serialisation: what a real handler adds
      if (path !== '/api/health' && Math.random() < errorRate) {
        errors.fail(req.method ?? 'GET', path)
        throw new Error('simulated application error')
      }
      const [status, body] = await fn(m)
      return json(res, status, body)
    }
    json(res, 404, { error: 'not found' })
  }

  const server = createServer((req, res) => {
    served++
    handle(req, res).catch((e) => {
      failed++
      if (!res.headersSent) json(res, 500, { error: 'internal error' })
      else res.end()
      o.log.debug('sandbox web app error', { error: (e as Error).message })
    })
  })
  server.on('clientError', (_e, socket) => socket.destroy())
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  const port = (server.address() as AddressInfo).port
  const url = `http://127.0.0.1:${port}`

  // Visitors: a few reads a second, spread over the routes.
  const perSecond = o.visitsPerSecond ?? 4
  const visit = () => {
    if (stopped) return
    const quiz = 1 + Math.floor(Math.random() * 200)
    const team = 1 + Math.floor(Math.random() * 40)
    const path = Math.random() < 0.7 ? `/api/quizzes/${quiz}` : `/api/teams/${team}/dashboard`
    const r = request({ host: '127.0.0.1', port, path, timeout: 5000 }, (res) => res.resume())
    r.on('error', () => {})
    r.on('timeout', () => r.destroy())
    r.end()
  }
  const timer = perSecond > 0 ? setInterval(visit, Math.max(50, Math.round(1000 / perSecond))) : null
  timer?.unref()

  return {
    url,
    get served() {
      return served
    },
    get failed() {
      return failed
    },
    reportErrors(dsn: string) {
      errors.start(dsn)
    },
    async stop() {
      stopped = true
      await errors.stop()
      if (timer) clearInterval(timer)
      server.closeAllConnections()
      await new Promise<void>((r) => server.close(() => r()))
      redis?.disconnect()
    },
  }
}

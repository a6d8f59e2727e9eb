import { execFile, spawn } from 'node:child_process'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { resolve } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { ErrorTracker } from '../../packages/error-tracker/src/index'
import type { Ops } from '../../src/core/ops'
import { startSandboxWebApp } from '../../src/core/sandbox/webapp'
import { silentLogger } from '../../src/core/log/logger'
import { pgPool } from '../../src/core/db/connect'
import { createDatabase } from '../helpers/db'
import { buildNextFixture, startNextFixture } from '../helpers/next-fixture'
import { openOps } from '../helpers/ops'
import { waitFor } from '../helpers/wait'

const root = resolve(__dirname, '../..')

describe('our error-tracker SDK against the real ingest', () => {
  let db: Awaited<ReturnType<typeof createDatabase>>
  let ops: Ops
  const groups = async (text: string) => (await ops.errors.list({ text, limit: 50 })).groups

  beforeAll(async () => {
    // The fixture app uses the built package, as the web app would.
    await promisify(execFile)(
      process.execPath,
      [resolve(root, 'node_modules/typescript/bin/tsc'), '-p', 'packages/error-tracker/tsconfig.json'],
      { cwd: root },
    )
    db = await createDatabase(inject('pgUrl'), 'sdk')
    ops = await openOps({ DATABASE_URL: db.url, ERROR_INGEST_ADDR: '127.0.0.1:0' }, { sandbox: 'off', errorIngest: true })
  })
  afterAll(async () => {
    await ops?.close()
    await db?.drop()
  })

  it('inside a real HTTP server: a failing route with its request, and an uncaught error with breadcrumbs', async () => {
    const child = spawn(process.execPath, [resolve(root, 'test/fixtures/sdk-app.cjs')], {
      env: { ...process.env, ERROR_DSN: ops.errors.dsn() },
    })
    let out = ''
    child.stdout.on('data', (d: Buffer) => (out += d.toString()))
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)))
    const port = await waitFor(() => /port (\d+)/.exec(out)?.[1], 'the app to listen')
    const base = `http://127.0.0.1:${port}`
    for (const id of [1, 2, 3])
      expect((await fetch(`${base}/quiz/${id}`, { headers: { Authorization: 'Bearer live-token-123456', 'X-Team': 't3' } })).status).toBe(
        500,
      )
    expect((await fetch(`${base}/crash`)).status).toBe(202)
    expect(await exited).toBe(1) // as Node would: the process ends after reporting
    const route = await waitFor(async () => (await groups('has no questions')).find((g) => g.count === 3), 'the route errors')
    const d = await ops.errors.show(route!.id)
    expect(d.event!.request).toMatchObject({ method: 'GET', url: '/quiz/3' })
    expect(d.event!.request!.headers.authorization).toBe('[Filtered]')
    expect(d.event!.request!.headers['x-team']).toBe('t3')
    expect(d.event!.user).toMatchObject({ id: 'teacher-9' })
    expect(d.event!.tags.team_id).toBe('team-3')
    expect(d.event!.release).toBe('examforge@3.1.0')
    const crash = await waitFor(async () => (await groups('Grading worker ran out of slots'))[0], 'the uncaught crash')
    expect(crash.level).toBe('fatal')
    const c = await ops.errors.show(crash.id)
    expect(c.event!.breadcrumbs.map((b) => b.message)).toEqual(['GET /quiz/1', 'GET /quiz/2', 'GET /quiz/3', 'grading worker started'])
    expect(c.event!.exceptions[0].frames.some((f) => f.inApp && f.filename?.includes('sdk-app.cjs'))).toBe(true)
  })

  it('inside a built Next.js app: an uncaught error in a wrapped route handler with its request and breadcrumbs; onRequestError for the rest', async () => {
    const buildMs = await buildNextFixture()
    if (buildMs) console.log(`next build of the fixture: ${Math.round(buildMs)} ms`)
    const app = await startNextFixture({ ERROR_DSN: ops.errors.dsn() })
    try {
      for (const id of [7, 8]) {
        const r = await fetch(`${app.url}/api/quizzes/${id}/grade`, {
          method: 'POST',
          headers: {
            Authorization: 'Bearer live-token-abcdef123456',
            Cookie: 'session=s3cr3t-session',
            'X-User-Id': 'teacher-5',
            'X-Team-Id': 'team-2',
          },
        })
        expect(r.status).toBe(500)
      }
      expect((await fetch(`${app.url}/api/reports/export?month=2026-11`)).status).toBe(500)

      // The two quiz errors are one bug: one group of exactly two events (captured once each, by the wrapper,
      // though Next.js also hands them to onRequestError).
      const quiz = await waitFor(
        async () => (await groups("reading 'score'")).find((g) => g.environments.includes('next-fixture')),
        'the route handler errors',
      )
      await waitFor(async () => (await groups('Report export exceeded')).length === 1, 'the onRequestError error')
      expect((await groups("reading 'score'")).find((g) => g.id === quiz!.id)!.count).toBe(2)
      expect(quiz!.culprit).toContain('gradeQuiz')
      const d = await ops.errors.show(quiz!.id)
      const ev = d.event!
      expect(ev.request).toMatchObject({ method: 'POST' })
      expect(ev.request!.url).toMatch(/\/api\/quizzes\/8\/grade$/)
      expect(ev.request!.headers.authorization).toBe('[Filtered]')
      expect(ev.request!.headers.cookie).toBe('[Filtered]')
      expect(ev.user).toMatchObject({ id: 'teacher-5' })
      expect(ev.tags).toMatchObject({ team_id: 'team-2', handler: 'route' })
      expect(ev.release).toBe('examforge@next-fixture')
      const crumbs = ev.breadcrumbs.map((b) => `${b.category}: ${b.message}`)
      expect(crumbs.slice(-2)).toEqual(['http: POST /api/quizzes/8/grade', 'db.query: SELECT answers FROM quiz_answers WHERE quiz_id = 8'])
      expect(ev.exceptions[0].frames.some((f) => f.function?.includes('gradeQuiz') && f.inApp)).toBe(true)

      const report = (await groups('Report export exceeded'))[0]
      expect(report).toMatchObject({ count: 1, title: 'RangeError: Report export exceeded 5000 rows' })
      const r = (await ops.errors.show(report.id)).event!
      expect(r.tags).toMatchObject({ handler: 'onRequestError', route: '/api/reports/export', route_type: 'route' })
      expect(r.request).toMatchObject({ method: 'GET', url: '/api/reports/export?month=2026-11' })
    } finally {
      await app.stop()
    }
  }, 300_000)

  it('the sandbox web app raises a realistic mix of errors with our SDK, grouped into a few recurring bugs', async () => {
    const pool = pgPool(db.url, { max: 2 })
    const app = await startSandboxWebApp({ pool, redisUrl: null, log: silentLogger, visitsPerSecond: 20, errorRate: 1 })
    try {
      app.reportErrors(ops.errors.dsn())
      const list = await waitFor(
        async () => {
          const r = await ops.errors.list({ limit: 100 })
          const n = r.groups.reduce((a, g) => a + g.count, 0)
          return n >= 40 && r.groups.some((g) => g.title.startsWith('TypeError')) ? r.groups : null
        },
        'forty sandbox errors',
        45_000,
      )
      const sandboxGroups = list!.filter((g) => g.environments.includes('sandbox'))
      // Recurring bugs collapse: far fewer groups than events.
      expect(sandboxGroups.length).toBeLessThan(15)
      const quiz = sandboxGroups.find((g) => g.title.startsWith('TypeError'))!
      expect(quiz.culprit).toContain('loadQuizQuestions')
      const d = await ops.errors.show(quiz.id)
      expect(d.event!.breadcrumbs.some((b) => b.category === 'http')).toBe(true)
      expect(d.event!.request!.headers.cookie).toBe('[Filtered]')
      expect(d.event!.user!.id).toMatch(/^user-\d+$/)
    } finally {
      await app.stop()
      await pool.end()
    }
  })

  it('never throws, bounds its queue and counts drops, retries with back-off, flushes', async () => {
    const t = new ErrorTracker()
    expect(t.init({ dsn: 'not a dsn', captureUnhandled: false })).toMatch(/DSN is not of the form/)
    expect(t.captureError(new Error('x'))).toBe('')
    // A real server that fails twice with 503, then accepts.
    let calls = 0
    const received: string[] = []
    const server: Server = createServer((req, res) => {
      let body = ''
      req.on('data', (d: Buffer) => (body += d.toString()))
      req.on('end', () => {
        calls++
        if (calls <= 2) return void res.writeHead(503, { 'Retry-After': '0' }).end()
        received.push(body)
        res.writeHead(200).end('{}')
      })
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
    try {
      const port = (server.address() as AddressInfo).port
      expect(t.init({ dsn: `http://abc@127.0.0.1:${port}/1`, maxQueue: 5, flushIntervalMs: 60_000, captureUnhandled: false })).toBeNull()
      for (let i = 0; i < 8; i++) t.captureError(new Error(`boom ${i}`), { extra: { password: 'pw-123' } })
      expect(t.stats()).toMatchObject({ captured: 8, dropped: 3, queued: 5 })
      t.captureMessage(undefined as unknown as string)
      t.addBreadcrumb(null as unknown as string, undefined, undefined, { circular: null })
      expect(await t.flush(15_000)).toBe(true)
      expect(t.stats()).toMatchObject({ sent: 5, retries: 2, queued: 0 })
      expect(received.join('')).toContain('boom 4')
      expect(received.join('')).not.toContain('pw-123')
    } finally {
      t.close()
      server.close()
    }
  })
})

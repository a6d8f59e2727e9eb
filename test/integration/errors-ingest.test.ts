import { execFile } from 'node:child_process'
import { gzipSync, brotliCompressSync, deflateSync } from 'node:zlib'
import { randomBytes } from 'node:crypto'
import { resolve } from 'node:path'
import { promisify } from 'node:util'
import { SourceMapGenerator } from 'source-map'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import type { Ops } from '../../src/core/ops'
import { errorRuleSources } from '../../src/core/errors/alert-sources'
import type { ErrorGroup } from '../../src/shared/errors'
import { createDatabase, query } from '../helpers/db'
import { openOps } from '../helpers/ops'
import { waitFor } from '../helpers/wait'

const run = promisify(execFile)
const root = resolve(__dirname, '../..')

describe('error ingest: Sentry protocol, grouping, scrubbing, states', () => {
  let db: Awaited<ReturnType<typeof createDatabase>>
  let ops: Ops
  let base: string
  let key: string
  const post = (path: string, body: Buffer | string, headers: Record<string, string> = {}) =>
    fetch(`${base}${path}`, {
      method: 'POST',
      body: body as unknown as string,
      headers: { 'X-Sentry-Auth': `Sentry sentry_version=7, sentry_key=${key}`, ...headers },
    })
  const envelope = (...events: unknown[]) =>
    [
      JSON.stringify({ sent_at: new Date().toISOString() }),
      ...events.flatMap((e) => [JSON.stringify({ type: 'event' }), JSON.stringify(e)]),
    ].join('\n')
  const groups = async (text?: string) => (await ops.errors.list({ text, limit: 500 })).groups

  beforeAll(async () => {
    db = await createDatabase(inject('pgUrl'), 'errors')
    ops = await openOps(
      { DATABASE_URL: db.url, ERROR_INGEST_ADDR: '127.0.0.1:0', ERROR_INGEST_RATE: '100000', HOST_LOAD_WARN_PER_CORE: '1000' },
      { sandbox: 'off', errorIngest: true },
    )
    base = ops.errors.ingestUrl()!
    key = ops.errors.keys().key
  })
  afterAll(async () => {
    await ops?.close()
    await db?.drop()
  })

  it('the real @sentry/node SDK sends exceptions, messages, breadcrumbs, user and gzip bodies; they group as expected', async () => {
    const { stdout } = await run(process.execPath, [resolve(root, 'test/fixtures/sentry-node-client.cjs')], {
      cwd: root,
      env: { ...process.env, SENTRY_DSN: ops.errors.dsn() },
      timeout: 30_000,
    })
    expect(stdout).toContain('sent')
    const quiz = await waitFor<ErrorGroup>(
      async () => (await groups("reading 'score'")).find((g) => g.count === 3)!,
      'three quiz errors in one group',
    )
    expect(quiz.title).toMatch(/^TypeError: Cannot read properties of undefined/)
    expect(quiz.culprit).toContain('gradeQuiz')
    expect(quiz.users).toBe(1)
    expect(quiz.releases).toEqual(['web@1.4.2'])
    const detail = await ops.errors.show(quiz.id)
    const ev = detail.event!
    // The group's latest event: the three were captured within the same few milliseconds and sent in
    // separate requests, so which of the last two is "latest" depends on arrival; its breadcrumbs are the
    // trail up to its own quiz, in order.
    const trail = ev.breadcrumbs.map((b) => b.message).filter((m) => m?.startsWith('opened quiz'))
    expect(trail.length).toBeGreaterThanOrEqual(2)
    expect(trail).toEqual(['opened quiz 11', 'opened quiz 12', 'opened quiz 13'].slice(0, trail.length))
    expect(ev.user).toMatchObject({ id: 'user-42', email: '[Filtered]' })
    expect(ev.tags.team).toBe('team-7')
    expect(ev.exceptions[0].frames.some((f) => f.function === 'gradeQuiz' && f.inApp && f.contextLine?.includes('TypeError'))).toBe(true)
    expect(detail.why.method).toBe('stacktrace')
    const msg = (await groups('Stripe webhook'))[0]
    expect(msg.level).toBe('warning')
    expect((await groups('Report too large')).length).toBe(1)
    expect((await ops.errors.stats()).encoding_gzip).toBeGreaterThanOrEqual(1)
  })

  it('the same bug with 500 different numbers, ids and e-mails is one group; two bugs are two', async () => {
    const events = Array.from({ length: 500 }, (_, i) => ({
      message: `Invite ${i} for pupil${i}@school.org failed (id ${randomBytes(6).toString('hex')}, after ${i * 3}ms)`,
      level: 'error',
    }))
    for (let i = 0; i < 500; i += 50) expect((await post('/api/1/envelope/', envelope(...events.slice(i, i + 50)))).status).toBe(200)
    await post('/api/1/store/', JSON.stringify({ message: 'Certificate renewal for team 9 overdue' }))
    const invite = await groups('Invite')
    expect(invite.length).toBe(1)
    expect(invite[0].count).toBe(500)
    expect((await groups('Certificate renewal')).length).toBe(1)
  })

  it('a password, a card number and a bearer token sent in every field are nowhere in the store', async () => {
    const PW = 'Sup3rS3cretPw!'
    const CARD = '4242424242424242'
    const TOKEN = 'eyLiveTok3nAbcdef123456'
    const all = `password=${PW} card ${CARD} Authorization: Bearer ${TOKEN} postgres://app:${PW}@db/x`
    const ev = {
      event_id: randomBytes(16).toString('hex'),
      message: all,
      exception: {
        values: [
          {
            type: 'LeakError',
            value: all,
            stacktrace: {
              frames: [
                {
                  filename: 'app.js',
                  function: 'leak',
                  context_line: all,
                  pre_context: [all],
                  post_context: [all],
                  vars: { password: PW, note: all },
                },
              ],
            },
          },
        ],
      },
      breadcrumbs: [{ message: all, category: 'auth', data: { token: TOKEN, url: `https://x.io/?password=${PW}`, card: CARD } }],
      request: {
        url: `https://x.io/login?password=${PW}`,
        method: 'POST',
        headers: { Authorization: `Bearer ${TOKEN}`, Cookie: `session=${TOKEN}`, 'X-Note': all },
        data: { password: PW, card: CARD, note: all },
        query_string: `password=${PW}&card=${CARD}`,
      },
      user: { id: 'u1', email: 'x@y.org', username: all },
      tags: { note: all.slice(0, 190), password: PW },
      contexts: { app: { note: all }, secret: { value: PW } },
      extra: { note: all, api_key: PW, nested: { deeper: { cardNumber: CARD, text: all } } },
      fingerprint: undefined,
      transaction: all,
      server_name: 'web-1',
    }
    expect((await post('/api/1/envelope/', envelope(ev))).status).toBe(200)
    expect(
      (await post('/api/1/store/', gzipSync(JSON.stringify({ ...ev, event_id: undefined })), { 'Content-Encoding': 'gzip' })).status,
    ).toBe(200)
    await waitFor(async () => (await groups('LeakError')).length, 'the leak group')
    const tables = await query<{ t: string }>(db.url, `SELECT tablename AS t FROM pg_tables WHERE schemaname = 'ops'`)
    let haystack = ''
    for (const { t } of tables)
      haystack += (await query<{ x: string }>(db.url, `SELECT coalesce(string_agg(r::text, ' '), '') AS x FROM ops.${t} r`))[0].x
    expect(haystack).toContain('LeakError')
    for (const secret of [PW, CARD, TOKEN, '4242 4242']) expect(haystack).not.toContain(secret)
    expect(haystack).toContain('[Filtered]')
  })

  it('answers bad input with the right status, counts it, and stores nothing of it', async () => {
    const before = (await groups()).reduce((n, g) => n + g.count, 0)
    const bad = [
      await fetch(`${base}/api/1/envelope/`, { method: 'POST', body: envelope({ message: 'no key' }) }),
      await post('/api/1/envelope/', envelope({ message: 'wrong key' }), { 'X-Sentry-Auth': 'Sentry sentry_key=deadbeef' }),
      await post('/api/1/envelope/', '{"not json'),
      await post('/api/1/envelope/', `{}\n{"type":"event","length":500}\n{"message":"short"}`),
      await post('/api/1/envelope/', `{}\n{"type":"hologram"}\n{}`),
      await post('/api/1/envelope/', envelope({ message: 'good one' }, { nothing: true })),
      await post('/api/1/store/', Buffer.alloc(2 * 1024 * 1024, 'a')),
      await post('/api/1/store/', gzipSync(Buffer.alloc(8 * 1024 * 1024, ' ')), { 'Content-Encoding': 'gzip' }), // a zip bomb: small packed, 8 MiB unpacked
      await post('/api/1/store/', 'x', { 'Content-Encoding': 'zstd-9000' }),
      await fetch(`${base}/api/call/app.info`, { method: 'POST' }),
      await fetch(`${base}/`),
    ]
    expect(bad.map((r) => r.status)).toEqual([401, 403, 400, 400, 400, 400, 413, 413, 415, 404, 404])
    expect((await groups()).reduce((n, g) => n + g.count, 0)).toBe(before)
    expect((await groups('good one')).length).toBe(0)
    // Other encodings work.
    expect(
      (await post('/api/1/store/', deflateSync(JSON.stringify({ message: 'deflated one' })), { 'Content-Encoding': 'deflate' })).status,
    ).toBe(200)
    expect(
      (await post('/api/1/store/', brotliCompressSync(JSON.stringify({ message: 'brotli one' })), { 'Content-Encoding': 'br' })).status,
    ).toBe(200)
    // Non-event items beside nothing else are fine (sessions, client reports).
    expect((await post('/api/1/envelope/', `{}\n{"type":"session"}\n{"sid":"x"}`)).status).toBe(200)
    const stats = await ops.errors.stats()
    expect(stats.rejected_auth).toBeGreaterThanOrEqual(2)
    expect(stats.malformed).toBeGreaterThanOrEqual(3)
    expect(stats.too_large).toBeGreaterThanOrEqual(2)
    expect(stats.invalid_event).toBeGreaterThanOrEqual(1)
    expect(stats.unknown_item).toBeGreaterThanOrEqual(1)
  })

  it('states: resolve, regression on a new event, resolved in the next release, ignore until N more', async () => {
    const send = (message: string, release: string) => post('/api/1/store/', JSON.stringify({ message, release }))
    await send('Regressing bug', 'web@1')
    const g = (await groups('Regressing bug'))[0]
    await ops.errors.setState([g.id], { state: 'resolved' })
    expect((await groups('Regressing bug'))[0].state).toBe('resolved')
    await send('Regressing bug', 'web@1')
    expect((await groups('Regressing bug'))[0].state).toBe('regressed')
    // In the next release: events of the current release do not reopen it; a newer one does.
    await ops.errors.setState([g.id], { state: 'resolved', inNextRelease: true })
    await send('Regressing bug', 'web@1')
    expect((await groups('Regressing bug'))[0].state).toBe('resolved')
    await send('Regressing bug', 'web@2')
    expect((await groups('Regressing bug'))[0]).toMatchObject({ state: 'regressed', count: 4 })
    await ops.errors.setState([g.id], { state: 'ignored', untilCount: 2 })
    await send('Regressing bug', 'web@2')
    expect((await groups('Regressing bug'))[0].state).toBe('ignored')
    await send('Regressing bug', 'web@2')
    expect((await groups('Regressing bug'))[0].state).toBe('unresolved')
    await expect(ops.errors.setState([g.id, 'nope'], { state: 'resolved' })).rejects.toThrow(/no error group "nope"; nothing was changed/)
  })

  it("shows what happened around a group's first event: real health changes, a failing first check, not healthy or unconfigured first checks", async () => {
    const ins = (service: string, from: string | null, to: string, reason: string) =>
      query(
        db.url,
        `INSERT INTO ops.health_changes (service, from_status, to_status, reason, at) VALUES ($1, $2, $3, $4, now() - interval '2 minutes')`,
        [service, from, to, reason],
      )
    await ins('around-quizdb', null, 'healthy', 'answered in 3 ms')
    await ins('around-stripe', null, 'not_configured', 'Set STRIPE_SECRET_KEY')
    await ins('around-redis', null, 'down', 'refused the connection')
    await ins('around-quizdb', 'healthy', 'degraded', 'slow: 900 ms')
    expect((await post('/api/1/store/', JSON.stringify({ message: 'Around first event bug' }))).status).toBe(200)
    const g = (await groups('Around first event bug'))[0]
    const texts = (await ops.errors.show(g.id)).around.filter((a) => a.kind === 'health' && a.text.startsWith('around-')).map((a) => a.text)
    expect(texts).toEqual(['around-redis: first check: down (refused the connection)', 'around-quizdb: healthy → degraded (slow: 900 ms)'])
    expect(texts.join(' ')).not.toContain('?')
  })

  it('a minified stack with its uploaded source map groups and displays by original names', async () => {
    const gen = new SourceMapGenerator({ file: 'main.9f8e7d6c.js' })
    const source = Array.from({ length: 50 }, (_, i) => `// line ${i + 1}`)
    source[41] = '    throw new QuizError(`Quiz ${id} cannot be graded`)'
    gen.addMapping({
      generated: { line: 1, column: 120 },
      original: { line: 42, column: 4 },
      source: 'webpack:///src/quiz/grade.ts',
      name: 'gradeQuiz',
    })
    gen.addMapping({
      generated: { line: 1, column: 300 },
      original: { line: 10, column: 2 },
      source: 'webpack:///src/routes/quiz.ts',
      name: 'handleQuiz',
    })
    gen.setSourceContent('webpack:///src/quiz/grade.ts', source.join('\n'))
    const refused = await fetch(`${base}/api/1/sourcemaps/?release=web@2.0.0&name=main.9f8e7d6c.js.map`, {
      method: 'POST',
      body: gen.toString(),
    })
    expect(refused.status).toBe(401)
    const up = await fetch(`${base}/api/1/sourcemaps/?release=web@2.0.0&name=main.9f8e7d6c.js.map`, {
      method: 'POST',
      body: gen.toString(),
      headers: { Authorization: `Bearer ${ops.errors.keys().uploadToken}` },
    })
    expect(up.status).toBe(200)
    const minified = (fn: string, n: number) => ({
      release: 'web@2.0.0',
      exception: {
        values: [
          {
            type: 'QuizError',
            value: `Quiz ${n} cannot be graded`,
            stacktrace: {
              frames: [
                { filename: 'app:///_next/main.9f8e7d6c.js', function: 'q', lineno: 1, colno: 301, in_app: true },
                { filename: 'app:///_next/main.9f8e7d6c.js', function: fn, lineno: 1, colno: 121, in_app: true },
              ],
            },
          },
        ],
      },
    })
    // Two builds minified the same function to different names: without the map they would be two groups.
    for (const [fn, n] of [
      ['a', 1],
      ['zz', 2],
      ['a', 3],
    ] as const)
      expect((await post('/api/1/store/', JSON.stringify(minified(fn, n)))).status).toBe(200)
    const g = await groups('QuizError')
    expect(g.length).toBe(1)
    expect(g[0].count).toBe(3)
    expect(g[0].culprit).toBe('gradeQuiz (src/quiz/grade.ts)')
    const top = (await ops.errors.show(g[0].id)).event!.exceptions[0].frames.at(-1)!
    expect(top).toMatchObject({ function: 'gradeQuiz', filename: 'src/quiz/grade.ts', lineno: 42 })
    expect(top.contextLine).toContain('throw new QuizError')
    expect(top.preContext.at(-1)).toBe('// line 41')
  })

  it('registers alert sources: 10 in 5 minutes, new group, regression, spike', async () => {
    const sources = Object.fromEntries(errorRuleSources(() => ops.store.pool()).map((s) => [s.kind, s]))
    expect(Object.keys(sources).sort()).toEqual(['errors.count', 'errors.new_group', 'errors.regression', 'errors.spike'])
    const now = Date.now()
    const [count] = await sources['errors.count'].evaluate(sources['errors.count'].params.parse({}), now)
    expect(count.value).toBeGreaterThanOrEqual(500)
    expect(count.text).toMatch(/in 5 min \(threshold 10\)/)
    // Nothing in a window that ended before the events.
    const [before] = await sources['errors.count'].evaluate(sources['errors.count'].params.parse({}), now - 3_600_000)
    expect(before.value).toBe(0)
    const fresh = await sources['errors.new_group'].evaluate({ minutes: 10 }, now)
    const invite = (await groups('Invite'))[0]
    expect(fresh.find((r) => r.labels.group === invite.id)?.value).toBe(1)
    const regressed = await sources['errors.regression'].evaluate({ minutes: 10 }, now)
    expect(regressed.some((r) => r.value === 1 && r.text?.includes('regression'))).toBe(true)
    const spikes = await sources['errors.spike'].evaluate(sources['errors.spike'].params.parse({}), now)
    expect(spikes.find((r) => r.labels.group === invite.id)!.value).toBeGreaterThanOrEqual(5)
  })

  it('retention drops whole day partitions and keeps at most N events per group, while counts stay exact', async () => {
    const day = 86_400_000
    const old = Date.now() - 40 * day
    const store = ops.errors.store
    await store.write(
      await ops.errors.prepare(
        '1',
        Array.from({ length: 5 }, (_, i) => ({ message: `Retention probe ${i}` })),
        old,
      ),
    )
    await store.write(
      await ops.errors.prepare(
        '1',
        Array.from({ length: 7 }, (_, i) => ({ message: `Retention probe ${i}` })),
      ),
    )
    const g = (await groups('Retention probe'))[0]
    expect(g.count).toBe(12)
    const partitions = async () =>
      (await query<{ n: string }>(db.url, `SELECT relname AS n FROM pg_class WHERE relname LIKE 'error_events_p%' AND relkind = 'r'`)).map(
        (r) => r.n,
      )
    const oldName = `error_events_p${new Date(old).toISOString().slice(0, 10).replace(/-/g, '')}`
    expect(await partitions()).toContain(oldName)
    const r = await store.prune(30, 4)
    expect(r.partitionsDropped).toBe(1)
    expect(await partitions()).not.toContain(oldName)
    expect((await ops.errors.show(g.id)).eventCount).toBe(4)
    expect((await groups('Retention probe'))[0].count).toBe(12)
  })

  it('a client flooding the ingest gets 429 with Retry-After and X-Sentry-Rate-Limits', async () => {
    const small = await openOps(
      { DATABASE_URL: db.url, ERROR_INGEST_ADDR: '127.0.0.1:0', ERROR_INGEST_RATE: '5' },
      { sandbox: 'off', errorIngest: true },
    )
    try {
      const url = `${small.errors.ingestUrl()}/api/1/store/?sentry_key=${small.errors.keys().key}`
      const codes: number[] = []
      let limited: Response | null = null
      for (let i = 0; i < 15; i++) {
        const r = await fetch(url, { method: 'POST', body: JSON.stringify({ message: `flood ${i}` }) })
        codes.push(r.status)
        if (r.status === 429) limited ??= r
      }
      expect(codes.slice(0, 10).every((c) => c === 200)).toBe(true)
      expect(limited).not.toBeNull()
      expect(Number(limited!.headers.get('retry-after'))).toBeGreaterThanOrEqual(1)
      expect(limited!.headers.get('x-sentry-rate-limits')).toMatch(/^\d+::key$/)
    } finally {
      await small.close()
    }
  })

  it('survives a few thousand malformed requests and still answers', async () => {
    let seed = 7
    const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff
    const pick = <T>(a: T[]) => a[Math.floor(rnd() * a.length)]
    const bodies = [
      () => randomBytes(Math.floor(rnd() * 2000)),
      () => envelope({ message: 'fuzz' }).slice(0, Math.floor(rnd() * 60)),
      () => `{}\n{"type":"event","length":${Math.floor(rnd() * 1e9)}}\n{}`,
      () => `{}\n${'{"type":"event"}\n'.repeat(200)}`,
      () => JSON.stringify({ message: '\u0000\ud800'.repeat(10), exception: { values: [{ stacktrace: { frames: 'x' } }] } }),
      () =>
        JSON.stringify({
          exception: { values: Array(500).fill({ type: 'E', value: 'v', stacktrace: { frames: Array(400).fill({ function: 'f' }) } }) },
        }),
      () => JSON.stringify([1, 2, 3]),
      () => gzipSync(randomBytes(100)),
    ]
    const statuses = new Set<number>()
    for (let i = 0; i < 2000; i += 20) {
      const batch = await Promise.all(
        Array.from({ length: 20 }, () =>
          fetch(`${base}${pick(['/api/1/envelope/', '/api/1/store/', '/api/1/store', '/api/x y/envelope/', '/api/1/sourcemaps/'])}`, {
            method: pick(['POST', 'POST', 'POST', 'GET', 'PUT']),
            body: undefined as unknown as string,
            ...(rnd() < 0.9 ? { body: pick(bodies)() } : {}),
            headers: {
              'X-Sentry-Auth': `Sentry sentry_key=${rnd() < 0.8 ? key : 'bad'}`,
              'Content-Encoding': pick(['identity', 'gzip', 'br', 'deflate', 'x']),
            },
          }).then(
            (r) => r.status,
            () => 0,
          ),
        ),
      )
      for (const s of batch) statuses.add(s)
    }
    expect([...statuses].every((s) => s === 0 || (s >= 200 && s < 600))).toBe(true)
    expect([...statuses].some((s) => s >= 500 && s !== 503)).toBe(false)
    expect((await post('/api/1/store/', JSON.stringify({ message: 'still alive after fuzz' }))).status).toBe(200)
    expect((await groups('still alive after fuzz')).length).toBe(1)
  })
})

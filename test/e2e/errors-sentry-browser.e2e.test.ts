import { mkdtempSync, readFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { chromium, type Browser } from 'playwright-core'
import { build } from 'rolldown'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import type { Ops } from '../../src/core/ops'
import type { ErrorGroup } from '../../src/shared/errors'
import { createDatabase } from '../helpers/db'
import { openOps } from '../helpers/ops'
import { waitFor } from '../helpers/wait'

const root = resolve(__dirname, '../..')
const fixture = join(root, 'test/fixtures/sentry-browser')
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'

/**
 * Sentry's own browser SDK (@sentry/browser from npm, bundled into one script as its CDN bundle is) on a page
 * served from another loopback origin than the ingest: the browser sends cross-origin, authenticated by
 * sentry_key in the query string, and asks the ingest's CORS permission first when the request is not simple.
 */
describe("Sentry's browser SDK in Chromium against the ingest", () => {
  let db: Awaited<ReturnType<typeof createDatabase>>
  let ops: Ops
  let site: Server
  let siteUrl = ''
  let browser: Browser
  const groups = async (text: string) => (await ops.errors.list({ text, limit: 50 })).groups

  beforeAll(async () => {
    const out = mkdtempSync(join(tmpdir(), 'sentry-browser-'))
    await build({
      input: join(fixture, 'entry.js'),
      cwd: root,
      logLevel: 'silent',
      output: { file: join(out, 'sentry.js'), format: 'iife', name: 'Sentry' },
    })
    const files: Record<string, [string, string]> = {
      '/sentry.js': ['text/javascript', readFileSync(join(out, 'sentry.js'), 'utf8')],
      '/app.js': ['text/javascript', readFileSync(join(fixture, 'app.js'), 'utf8')],
      '/': [
        'text/html',
        '<!doctype html><title>Quiz</title><button id="grade" data-quiz="0">Grade</button>' +
          '<script src="/sentry.js"></script><script src="/app.js"></script>',
      ],
    }
    site = createServer((req, res) => {
      const f = files[new URL(req.url ?? '/', 'http://x').pathname]
      res.writeHead(f ? 200 : 404, { 'Content-Type': f?.[0] ?? 'text/plain' }).end(f?.[1] ?? 'not found')
    })
    await new Promise<void>((r) => site.listen(0, '127.0.0.1', () => r()))
    siteUrl = `http://127.0.0.1:${(site.address() as AddressInfo).port}`
    db = await createDatabase(inject('pgUrl'), 'sentry_browser')
    ops = await openOps(
      { DATABASE_URL: db.url, ERROR_INGEST_ADDR: '127.0.0.1:0', HOST_LOAD_WARN_PER_CORE: '1000' },
      { sandbox: 'off', errorIngest: true },
    )
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    })
  })
  afterAll(async () => {
    await browser?.close()
    await ops?.close()
    site?.close()
    await db?.drop()
  })

  const run = async (query: string, quizzes: number[]) => {
    const page = await browser.newPage()
    // Which sends carry an event: the SDK also sends a session envelope when the page loads, which must not be
    // taken for a quiz's error (the page was closed before quiz 12's event left, once in a few runs).
    const ingestCalls: { method: string; url: string; status: number | null; event: boolean }[] = []
    const carriesEvent = (r: { postData(): string | null }) => /"type":"event"/.test(r.postData() ?? '')
    page.on('requestfinished', (r) => {
      if (r.url().startsWith(ops.errors.ingestUrl()!))
        void r
          .response()
          .then((x) => ingestCalls.push({ method: r.method(), url: r.url(), status: x?.status() ?? null, event: carriesEvent(r) }))
    })
    page.on('requestfailed', (r) => {
      if (r.url().startsWith(ops.errors.ingestUrl()!))
        ingestCalls.push({ method: r.method(), url: r.url(), status: null, event: carriesEvent(r) })
    })
    await page.goto(`${siteUrl}/?dsn=${encodeURIComponent(ops.errors.dsn())}${query}`)
    await page.waitForFunction(() => (window as unknown as { appReady?: boolean }).appReady === true)
    // One at a time, so that the group's latest event is the last one.
    for (const [i, n] of quizzes.entries()) {
      await page.locator('#grade').evaluate((b, q) => ((b as HTMLElement).dataset.quiz = String(q)), n)
      await page.locator('#grade').click()
      await waitFor(() => ingestCalls.filter((c) => c.method === 'POST' && c.event).length > i, `the page's envelope for quiz ${n}`, 20_000)
    }
    await page.close()
    return ingestCalls
  }

  it('an uncaught exception with breadcrumbs, sent cross-origin with sentry_key in the query, arrives grouped', async () => {
    const calls = await run('', [11, 12])
    // Every send was accepted, cross-origin, keyed in the query string (no auth header: a simple request).
    expect(
      calls
        .filter((c) => c.method === 'POST')
        .every((c) => c.status === 200 && /[?&]sentry_key=\w+/.test(c.url) && c.url.includes('/api/1/envelope/')),
    ).toBe(true)
    // Both sends were answered 200, which the ingest gives only once they are stored: the group is there to read
    // (a generous wait only for a loaded machine; on failure, say which groups there were).
    let seen = ''
    const g = await waitFor<ErrorGroup>(
      async () => {
        const list = await groups("reading 'score'")
        seen = JSON.stringify(list.map((x) => ({ title: x.title, culprit: x.culprit, count: x.count })))
        return list.find((x) => x.count === 2)!
      },
      'two quiz errors in one group',
      20_000,
    ).catch((e: Error) => {
      throw new Error(`${e.message}; groups seen: ${seen}`)
    })
    expect(g.title).toMatch(/^TypeError: Cannot read properties of (undefined|null) \(reading 'score'\)/)
    expect(g.culprit).toContain('gradeQuiz')
    expect(g.releases).toEqual(['quiz-web@2.0.0'])
    expect(g.environments).toEqual(['browser-test'])
    const { event, why } = await ops.errors.show(g.id)
    expect(why.method).toBe('stacktrace')
    expect(event!.exceptions[0].frames.some((f) => f.function === 'gradeQuiz' && f.filename?.endsWith('/app.js'))).toBe(true)
    // Breadcrumbs: the SDK's own (the click, the console line) and the app's, up to this error.
    const crumbs = event!.breadcrumbs.map((b) => `${b.category}: ${b.message}`)
    expect(crumbs).toEqual(expect.arrayContaining(['ui.click: body > button#grade', 'console: grading quiz 12', 'quiz: opened quiz 12']))
    expect(crumbs.indexOf('quiz: opened quiz 11')).toBeLessThan(crumbs.indexOf('quiz: opened quiz 12'))
    expect(event!.request?.url).toBe(`${siteUrl}/?dsn=${encodeURIComponent(ops.errors.dsn())}`)
    expect(event!.user).toMatchObject({ id: 'teacher-9', email: '[Filtered]' })
    expect(event!.tags.team).toBe('team-3')
  })

  it('a send that needs a CORS preflight (non-simple Content-Type) is allowed by the ingest and stored', async () => {
    const before = (await groups("reading 'score'"))[0]?.count ?? 0
    const calls = await run('&preflight=1', [21])
    expect(calls.filter((c) => c.method === 'POST' && c.event).map((c) => c.status)).toEqual([200])
    await waitFor(
      async () => ((await groups("reading 'score'"))[0]?.count ?? 0) === before + 1,
      'the preflighted event stored in the same group',
    )
  })
})

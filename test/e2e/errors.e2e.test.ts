import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { createDatabase } from '../helpers/db'
import { hostEnv, launchChromium, needBuilt, serveHost, shots, type ServedHost } from '../helpers/served'

/** An event as an SDK sends it: a stack with in-app frames and source context, breadcrumbs, request, user. */
function quizEvent(n: number, release = 'web@5.0.0') {
  return {
    level: 'error',
    release,
    environment: 'production',
    user: { id: `teacher-${n % 7}` },
    tags: { team_id: `team-${n % 3}` },
    request: {
      method: 'POST',
      url: `https://examforge.test/api/quizzes/${n}/grade`,
      headers: { Authorization: 'Bearer abcdefghijkl123', 'User-Agent': 'ua' },
    },
    breadcrumbs: [
      { timestamp: Date.now() / 1000 - 2, category: 'http', message: `POST /api/quizzes/${n}/grade`, level: 'info' },
      { timestamp: Date.now() / 1000 - 1, category: 'db.query', message: 'SELECT questions', level: 'info' },
    ],
    exception: {
      values: [
        {
          type: 'TypeError',
          value: `Cannot read properties of undefined (reading 'score') in quiz ${n}`,
          stacktrace: {
            frames: [
              { filename: 'node_modules/next/dist/server/base-server.js', function: 'handleRequest', lineno: 900, in_app: false },
              {
                filename: 'app/api/quizzes/[id]/grade/route.ts',
                function: 'POST',
                lineno: 12,
                in_app: true,
                context_line: '  return gradeQuiz(id)',
                pre_context: ['export async function POST(req) {', '  const id = params.id'],
                post_context: ['}'],
              },
              {
                filename: 'lib/grading.ts',
                function: 'gradeQuiz',
                lineno: 42,
                in_app: true,
                context_line: '  const total = answers.score + bonus',
                pre_context: ['function gradeQuiz(id) {', '  const answers = load(id)'],
                post_context: ['  return total', '}'],
              },
            ],
          },
        },
      ],
    },
  }
}

describe('the Errors page in Chromium', () => {
  let host: ServedHost
  let browser: Browser
  let page: Page
  let ingest = ''
  let db: Awaited<ReturnType<typeof createDatabase>>
  let dataDir = ''
  let dsnKey = ''
  const send = async (ev: unknown) => {
    const r = await fetch(`${ingest}/api/1/store/?sentry_key=${dsnKey}`, { method: 'POST', body: JSON.stringify(ev) })
    expect(r.status).toBe(200)
  }

  beforeAll(async () => {
    needBuilt()
    mkdirSync(shots, { recursive: true })
    db = await createDatabase(inject('pgUrl'), 'errors_e2e')
    dataDir = mkdtempSync(join(tmpdir(), 'ops-e2e-errors-'))
    host = await serveHost(
      hostEnv({
        OPS_DATA_DIR: dataDir,
        DATABASE_URL: db.url,
        ERROR_INGEST_ADDR: '127.0.0.1:0',
        HOST_LOAD_WARN_PER_CORE: '10000',
      }),
    )
    const url = host.url
    ingest = /Error ingest .* listens on (http:\/\/127\.0\.0\.1:\d+)/.exec(host.output())![1]
    browser = await launchChromium()
    const context = await browser.newContext({ viewport: { width: 1440, height: 900 }, colorScheme: 'dark' })
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: new URL(url).origin })
    page = await context.newPage()
    await page.goto(url)
    await page.getByTestId('nav-errors').click()
    dsnKey = /^http:\/\/(\w+)@/.exec((await page.getByTestId('dsn-value').textContent())!)![1]
  })
  afterAll(async () => {
    await browser?.close()
    await host?.stop()
    await db?.drop()
    if (dataDir) rmSync(dataDir, { recursive: true, force: true })
  })

  it('lists groups with counts, users, sparkline and state; the DSN copies', async () => {
    for (let n = 1; n <= 12; n++) await send(quizEvent(n))
    for (let n = 1; n <= 3; n++)
      await send({
        message: `Stripe webhook evt_1Nq${n}x8Lk3j arrived ${n * 40}s late`,
        level: 'warning',
        release: 'web@5.0.0',
        environment: 'production',
      })
    await send({ message: 'Certificate export for team 4 failed', level: 'error', release: 'web@4.9.0', environment: 'staging' })
    const rows = page.getByTestId('error-groups').locator('tbody tr')
    await expect.poll(() => rows.count(), { timeout: 15_000 }).toBe(3)
    const quizRow = page.locator('tr', { hasText: "reading 'score'" })
    await expect.poll(() => quizRow.getByTestId('count').textContent()).toBe('12')
    expect(await quizRow.textContent()).toMatch(/gradeQuiz \(lib\/grading\.ts\)/)
    // 24 hourly bars, the events just sent in the last one.
    expect(await quizRow.locator('.err-spark').getAttribute('data-bars')).toMatch(/^[01]{23}1$/)
    expect(await page.getByTestId('dsn').getAttribute('data-where')).toBe('here')
    expect(await page.getByTestId('dsn-where').textContent()).toBe(
      `DSN for the web app's SDK (this console's ingest listens on ${new URL(ingest).host}):`,
    )
    await page.getByTestId('dsn-copy').click()
    await expect.poll(() => page.getByTestId('dsn-copy').textContent()).toBe('Copied')
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(await page.getByTestId('dsn-value').textContent())
    await page.screenshot({ path: join(shots, 'errors-list-1440.png') })
    await page.setViewportSize({ width: 900, height: 860 })
    await page.screenshot({ path: join(shots, 'errors-list-900.png') })
    await page.setViewportSize({ width: 1440, height: 900 })
  })

  it('filters by level, release, environment and text', async () => {
    const rows = page.getByTestId('error-groups').locator('tbody tr')
    await page.getByTestId('filter-level').selectOption('warning')
    await expect.poll(() => rows.count()).toBe(1)
    await page.getByTestId('filter-level').selectOption('')
    await page.getByTestId('filter-environment').selectOption('staging')
    await expect.poll(() => rows.count()).toBe(1)
    expect(await rows.first().textContent()).toMatch(/Certificate export/)
    await page.getByTestId('filter-environment').selectOption('')
    await page.getByTestId('filter-text').fill('stripe')
    await page.getByTestId('filter-text').press('Enter')
    await expect.poll(() => rows.count()).toBe(1)
    await page.getByTestId('filter-text').fill('')
    await page.getByTestId('filter-text').press('Enter')
    await expect.poll(() => rows.count()).toBe(3)
  })

  it('a group: stack with in-app frames and source context, breadcrumbs, request scrubbed, user and team, why grouped, older/newer', async () => {
    await page.locator('tr', { hasText: "reading 'score'" }).getByRole('button').first().click()
    const g = page.getByTestId('error-group')
    await g.waitFor()
    await expect.poll(() => page.getByTestId('source-context').count()).toBe(2) // the two in-app frames, expanded
    expect(await page.getByTestId('source-context').first().textContent()).toContain('const total = answers.score + bonus')
    expect(await page.getByTestId('frame').count()).toBe(1) // the library frame, folded
    expect(await page.getByTestId('breadcrumbs').textContent()).toMatch(/POST \/api\/quizzes\/12\/grade.*SELECT questions/)
    expect(await page.getByTestId('latest-event').textContent()).toMatch(/Authorization\[Filtered\]/)
    expect(await page.getByTestId('event-user').textContent()).toMatch(/teacher-5.*team-0/)
    expect(await page.getByTestId('why-grouped').textContent()).toMatch(/in-app call path/)
    expect(await page.getByTestId('around').textContent()).toMatch(/Nothing else|health/)
    await page.screenshot({ path: join(shots, 'errors-group-1440.png'), fullPage: true })
    await page.setViewportSize({ width: 900, height: 860 })
    await page.screenshot({ path: join(shots, 'errors-group-900.png'), fullPage: true })
    await page.setViewportSize({ width: 1440, height: 900 })
    expect(await page.getByTestId('newer').isDisabled()).toBe(true)
    await page.getByTestId('older').click()
    await expect.poll(() => page.getByTestId('breadcrumbs').textContent()).toMatch(/quizzes\/11\//)
    await page.getByTestId('newer').click()
    await expect.poll(() => page.getByTestId('breadcrumbs').textContent()).toMatch(/quizzes\/12\//)
    await page.getByTestId('resolve').click()
    await expect.poll(() => page.getByTestId('group-state').textContent()).toBe('resolved')
    await page.getByTestId('back-to-groups').click()
  })

  it('bulk resolve and ignore; a resolved group that gets an event again shows as regressed, on the Overview too', async () => {
    const rows = page.getByTestId('error-groups').locator('tbody tr')
    await expect.poll(() => rows.count()).toBe(3)
    await page.locator('tr', { hasText: 'Stripe webhook' }).getByRole('checkbox').check()
    await page.locator('tr', { hasText: 'Certificate export' }).getByRole('checkbox').check()
    await page.getByTestId('bulk-ignore').click()
    await expect.poll(() => page.locator('tr', { hasText: 'Stripe webhook' }).textContent()).toMatch(/ignored/)
    await page.getByTestId('filter-state').selectOption('ignored')
    await expect.poll(() => rows.count()).toBe(2)
    await page.getByTestId('filter-state').selectOption('')
    await send(quizEvent(99))
    await expect.poll(() => page.locator('tr', { hasText: "reading 'score'" }).textContent(), { timeout: 15_000 }).toMatch(/regressed/)
    await page.getByTestId('nav-overview').click()
    await expect.poll(() => page.getByTestId('overview-errors').textContent(), { timeout: 20_000 }).toMatch(/regressed.*reading 'score'/)
    await page.screenshot({ path: join(shots, 'errors-overview-1440.png') })
  })
})

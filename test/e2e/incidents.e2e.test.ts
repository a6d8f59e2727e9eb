/**
 * The Incidents page end to end in Chromium against the headless host: an operator declares an incident from
 * the Overview, writes a note (Markdown, with HTML in it that must stay text), pins a series, steps the status
 * to resolved, finds the note, the status changes and the window's events (an error group, a backup) on the
 * timeline and follows their links, edits and saves the review (a bad field said at the field), and exports
 * HTML, JSON and PDF (downloads received and read back); then declares a second incident from an error group.
 * Screenshots of the list and of an incident at 900 and 1440 px, dark and light (test-results/screenshots/).
 */
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { cli } from '../helpers/cli'
import { createDatabase } from '../helpers/db'
import { CHROMIUM, hostEnv, launchChromium, needBuilt, root, serveHost, shots, type ServedHost } from '../helpers/served'
import { waitFor } from '../helpers/wait'

const quizEvent = (n: number) => ({
  level: 'error',
  release: 'web@5.0.0',
  environment: 'production',
  user: { id: `student-${n % 5}` },
  exception: {
    values: [
      {
        type: 'ConnectionError',
        value: `Redis connection refused while saving answers of exam ${n}`,
        stacktrace: { frames: [{ filename: 'lib/answers.ts', function: 'saveAnswers', lineno: 31, in_app: true }] },
      },
    ],
  },
})

describe('the Incidents page in Chromium', () => {
  let host: ServedHost
  let browser: Browser
  let page: Page
  let ingest = ''
  let dsnKey = ''
  let db: Awaited<ReturnType<typeof createDatabase>>
  let dataDir = ''
  let firstId = ''
  const title = 'Exam submissions failing: Redis unreachable'

  /** The theme wanted, whatever the toggle says now (system → light → dark). */
  const theme = async (t: 'light' | 'dark') => {
    for (let i = 0; i < 3 && (await page.evaluate(() => document.documentElement.dataset.theme)) !== t; i++)
      await page.getByTestId('theme-toggle').click()
    expect(await page.evaluate(() => document.documentElement.dataset.theme)).toBe(t)
  }
  /** Screenshots at 900 and 1440 px, dark and light, full page; the 1440 dark one is the docs' picture. */
  const shoot = async (name: string, docs?: string) => {
    for (const t of ['dark', 'light'] as const) {
      await theme(t)
      for (const width of [900, 1440]) {
        await page.setViewportSize({ width, height: 900 })
        await page.waitForTimeout(0)
        const file = join(shots, `${name}-${width}-${t}.png`)
        await page.screenshot({ path: file, fullPage: true })
        if (width === 900) {
          const over = await page.evaluate(() => document.scrollingElement!.scrollWidth - window.innerWidth)
          expect.soft(over, `${name} overflows at 900 px (${t})`).toBeLessThanOrEqual(0)
        }
        if (docs && width === 1440 && t === 'dark') copyFileSync(file, join(root, 'docs', 'screenshots', docs))
      }
    }
    await theme('dark')
    await page.setViewportSize({ width: 1440, height: 900 })
  }
  const entries = () => page.getByTestId('timeline-entry')
  const entryOfType = (type: string) => page.locator(`[data-testid="timeline-entry"][data-type="${type}"]`)
  const openFirst = async () => {
    await page.getByTestId('nav-incidents').click()
    await page.getByTestId(`incident-${firstId}`).getByRole('link').click()
    await page.getByTestId('incident-title').waitFor()
  }

  beforeAll(async () => {
    needBuilt()
    mkdirSync(shots, { recursive: true })
    mkdirSync(join(root, 'docs', 'screenshots'), { recursive: true })
    db = await createDatabase(inject('pgUrl'), 'incidents_e2e')
    dataDir = mkdtempSync(join(tmpdir(), 'ops-e2e-incidents-'))
    host = await serveHost(
      hostEnv({
        OPS_DATA_DIR: dataDir,
        DATABASE_URL: db.url,
        ERROR_INGEST_ADDR: '127.0.0.1:0',
        METRICS_INTERVAL_S: '1',
        HOST_LOAD_WARN_PER_CORE: '10000',
        ALERT_DESKTOP: 'off',
        CHROMIUM_PATH: CHROMIUM,
      }),
    )
    const url = host.url
    ingest = /Error ingest .* listens on (http:\/\/127\.0\.0\.1:\d+)/.exec(host.output())![1]
    browser = await launchChromium()
    const context = await browser.newContext({ viewport: { width: 1440, height: 900 }, colorScheme: 'dark', acceptDownloads: true })
    page = await context.newPage()
    await page.goto(url)
    // Something for the window: an error group, and a full backup.
    await page.getByTestId('nav-errors').click()
    dsnKey = /^http:\/\/(\w+)@/.exec((await page.getByTestId('dsn-value').textContent())!)![1]
    for (let n = 1; n <= 4; n++) {
      const r = await fetch(`${ingest}/api/1/store/?sentry_key=${dsnKey}`, { method: 'POST', body: JSON.stringify(quizEvent(n)) })
      expect(r.status).toBe(200)
    }
    await page.getByTestId('error-groups').waitFor({ timeout: 15_000 })
    await page.getByTestId('nav-backups').click()
    await page.getByTestId('backup-now').click()
    await waitFor(
      async () =>
        /Backup succeeded/.test(
          (await page
            .getByTestId('backup-outcome')
            .textContent()
            .catch(() => '')) ?? '',
        ),
      'the backup',
      90_000,
    )
  }, 180_000)

  afterAll(async () => {
    await browser?.close()
    await host?.stop()
    await db?.drop()
    if (dataDir) rmSync(dataDir, { recursive: true, force: true })
  })

  it('declares an incident from the Overview; it opens, and the Overview counts it', async () => {
    await page.getByTestId('nav-overview').click()
    await expect.poll(() => page.getByTestId('overview-incidents').textContent(), { timeout: 15_000 }).toMatch(/No incident is open/)
    await page.getByTestId('overview-declare').click()
    const dialog = page.getByTestId('declare-dialog')
    // An empty title is refused at its field, before anything is sent.
    await page.getByTestId('declare-submit').click()
    await expect.poll(() => page.getByTestId('declare-error-title').textContent()).toMatch(/Give the incident a title/)
    await dialog.screenshot({ path: join(shots, 'incidents-declare-1440-dark.png') })
    await page.getByTestId('declare-title').fill(title)
    await page.getByTestId('declare-severity').selectOption('critical')
    await page.getByTestId('declare-submit').click()
    await page.getByTestId('incident-title').waitFor()
    expect(await page.getByTestId('incident-title').textContent()).toContain(title)
    firstId = /#\/incidents\/([^/]+)$/.exec(page.url())![1]
    expect(await page.getByTestId('step-investigating').getAttribute('data-state')).toBe('current')
    // The commander defaults to whoever declared it.
    expect((await page.getByTestId('commander-name').textContent())!.length).toBeGreaterThan(0)
    expect(await page.getByTestId('commander-name').textContent()).not.toBe('nobody yet')
    await expect.poll(() => entryOfType('incident.opened').count()).toBe(1)
    // A reload keeps the incident open (it is in the address).
    await page.reload()
    await page.getByTestId('incident-title').waitFor()
    await page.getByTestId('nav-overview').click()
    await expect.poll(() => page.getByTestId('overview-incident-count').textContent()).toMatch(/1 open incident/)
    await page.screenshot({ path: join(shots, 'incidents-overview-1440-dark.png') })
    await page.getByTestId('overview-incident-link').first().click()
    await expect.poll(() => page.getByTestId('incident-title').textContent()).toContain(title)
  })

  it('a Markdown note, added with Ctrl+Enter, is drawn safely: HTML stays text, only https links', async () => {
    const note =
      '**Redis** refuses connections since the 09:00 exam.\n\n- restarted `redis-server`\n- paged the on-call\n\n<img src=x onerror="window.__pwned=1"> [bad](javascript:window.__pwned=2) [runbook](https://runbooks.examforge.test/redis)'
    await page.getByTestId('note-text').fill(note)
    await page.getByTestId('note-text').press('Control+Enter')
    await expect.poll(() => entryOfType('incident.note').count(), { timeout: 10_000 }).toBe(1)
    const body = entryOfType('incident.note').getByTestId('note-body')
    expect(await body.locator('strong').textContent()).toBe('Redis')
    expect(await body.locator('li').count()).toBe(2)
    expect(await body.locator('code').textContent()).toBe('redis-server')
    expect(await body.locator('img').count()).toBe(0)
    expect(await body.textContent()).toContain('<img src=x onerror="window.__pwned=1">')
    expect(await body.locator('a').evaluateAll((as) => as.map((a) => a.getAttribute('href')))).toEqual([
      'https://runbooks.examforge.test/redis',
    ])
    expect(await page.evaluate(() => (window as { __pwned?: number }).__pwned)).toBeUndefined()
    expect(await page.getByTestId('note-text').inputValue()).toBe('')
  })

  it('changes the commander; a note added elsewhere (the CLI, on the same store) appears without a reload', async () => {
    await page.getByTestId('commander-change').click()
    await page.getByTestId('commander-input').fill('oncall@examforge.test')
    await page.getByTestId('commander-input').press('Enter')
    await expect.poll(() => page.getByTestId('commander-name').textContent(), { timeout: 10_000 }).toBe('oncall@examforge.test')
    await expect.poll(() => entryOfType('incident.commander').count()).toBeGreaterThanOrEqual(1)
    const r = await cli(['incidents', 'note', firstId, 'Redis memory at 100 %, _evicting_ nothing.'], { DATABASE_URL: db.url })
    expect(r.code, r.stderr).toBe(0)
    await expect.poll(() => entryOfType('incident.note').count(), { timeout: 20_000 }).toBe(2)
    expect(await entryOfType('incident.note').nth(1).getByTestId('note-body').locator('em').textContent()).toBe('evicting')
  })

  it('pins a series to the chart, and unpins it', async () => {
    const pick = page.getByTestId('pin-series')
    await expect.poll(() => pick.locator('option').count(), { timeout: 15_000 }).toBeGreaterThan(1)
    const series = (await pick.locator('option').nth(1).getAttribute('value'))!
    await pick.selectOption(series)
    await page.getByTestId('pin-add').click()
    await page.getByTestId(`incident-chart-${series}`).waitFor({ timeout: 10_000 })
    await page.getByTestId(`unpin-${series}`).waitFor()
    // pg.connections is charted for the screenshots; anything else pinned first is unpinned again.
    if (series !== 'pg.connections') {
      await page.getByTestId(`unpin-${series}`).click()
      await expect.poll(() => page.getByTestId(`incident-chart-${series}`).count()).toBe(0)
      await pick.selectOption('pg.connections')
      await page.getByTestId('pin-add').click()
      await page.getByTestId('incident-chart-pg.connections').waitFor({ timeout: 10_000 })
    }
    // The chart marks the incident's start.
    await expect
      .poll(() => page.getByTestId('incident-chart-pg.connections').locator('.recharts-reference-line').count())
      .toBeGreaterThan(0)
  })

  it('steps the status to resolved, each step saying when and who, with an optional note', async () => {
    for (const [status, note] of [
      ['identified', 'Redis OOM-killed: maxmemory too low for exam day.'],
      ['monitoring', ''],
      ['resolved', 'Submissions flowing again.'],
    ] as const) {
      await page.getByTestId(`step-${status}`).getByRole('button').click()
      if (note) await page.getByTestId('status-note').fill(note)
      await page.getByTestId('status-confirm').click()
      await expect.poll(() => page.getByTestId(`step-${status}`).getAttribute('data-state'), { timeout: 10_000 }).toBe('current')
    }
    expect(await page.getByTestId('step-identified').getAttribute('data-state')).toBe('done')
    // Each done step says when and who (the time as local time, never ISO).
    const identified = (await page.getByTestId('step-identified').textContent())!
    expect(identified).toMatch(/Identified.*\d{2}:\d{2}.*·\s*\S+/)
    expect(identified).not.toMatch(/\d{4}-\d\d-\d\dT/)
    await expect.poll(() => entryOfType('incident.status').count(), { timeout: 10_000 }).toBe(3)
  })

  it("the timeline holds the note, the status changes and the window's events in time order, with working links", async () => {
    const types = await entries().evaluateAll((els) => els.map((e) => e.getAttribute('data-type')))
    expect(types).toContain('incident.opened')
    expect(types).toContain('incident.note')
    expect(types).toContain('error.new_group')
    expect(types).toContain('backup')
    expect(types.filter((t) => t === 'incident.status')).toHaveLength(3)
    // Time order: every entry's time at or after the one before it.
    const times = await entries()
      .locator('time')
      .evaluateAll((ts) => ts.map((t) => Date.parse(t.getAttribute('datetime')!)))
    expect(times).toEqual([...times].sort((a, b) => a - b))
    // The status notes are on the timeline too.
    expect(await page.getByTestId('timeline').textContent()).toMatch(/Redis OOM-killed/)
    // Filter by type: only the notes, then all again.
    const all = await entries().count()
    for (const g of ['incident', 'alert', 'health', 'error', 'backup', 'restore', 'audit'])
      if (await page.getByTestId(`filter-${g}`).count()) await page.getByTestId(`filter-${g}`).click()
    await expect
      .poll(() => entries().evaluateAll((els) => [...new Set(els.map((e) => e.getAttribute('data-type')))]))
      .toEqual(['incident.note'])
    await page.getByRole('button', { name: 'Show all' }).click()
    await expect.poll(() => entries().count()).toBe(all)
    // The backup entry opens its set on the Backups page.
    await entryOfType('backup').first().getByTestId('timeline-link').click()
    await page.getByTestId('set-details').waitFor({ timeout: 10_000 })
    // The error group entry opens that group on the Errors page.
    await openFirst()
    await entryOfType('error.new_group').first().getByTestId('timeline-link').click()
    await page.getByTestId('error-group').waitFor({ timeout: 10_000 })
    expect(await page.getByTestId('error-group').textContent()).toMatch(/Redis connection refused/)
    await openFirst()
  })

  it('edits and saves the review: a bad field is said at the field; what is saved stays after a reload', async () => {
    await page.getByTestId('review').waitFor({ timeout: 10_000 })
    // Pre-filled from the timeline.
    expect(await page.getByTestId('review-duration').textContent()).not.toBe('—')
    await page
      .getByTestId('review-summary')
      .fill('Redis ran out of memory during the 09:00 exam; answers could not be saved for 14 minutes.')
    await page.getByTestId('review-rootCause').fill('maxmemory was left at the 256 MB default.')
    await page.getByTestId('review-wentWell').fill('The alert fired within a minute.')
    await page.getByTestId('review-wentBadly').fill('Nobody knew where the Redis config lived.')
    const before = await page.getByTestId('action-item').count()
    await page.getByTestId('action-add').click()
    // A row with no text is refused at that row.
    await page.getByTestId('review-save').click()
    await expect.poll(() => page.getByTestId(`review-error-actionItems.${before}.text`).textContent()).toMatch(/Say what is to be done/)
    const row = page.getByTestId('action-item').nth(before)
    await row.getByTestId('action-text').fill('Set maxmemory from the exam-day sizing sheet')
    await row.getByTestId('action-owner').fill('ops@examforge.test')
    await row.getByTestId('action-due').fill('2026-12-15')
    await page.getByTestId('review-save').click()
    await expect.poll(() => page.getByTestId('review-saved').textContent(), { timeout: 10_000 }).toMatch(/Saved by/)
    await page.reload()
    await page.getByTestId('review').waitFor({ timeout: 10_000 })
    expect(await page.getByTestId('review-summary').inputValue()).toMatch(/^Redis ran out of memory/)
    const saved = page.getByTestId('action-item').nth(before)
    expect(await saved.getByTestId('action-owner').inputValue()).toBe('ops@examforge.test')
    expect(await saved.getByTestId('action-due').inputValue()).toBe('2026-12-15')
    expect(await page.getByTestId('review-state').textContent()).toMatch(/Edited by .* \d{2}:\d{2}/)
    await page.getByTestId('incident-title').scrollIntoViewIfNeeded()
    await shoot('incident', 'incident.png')
  })

  it('exports HTML, JSON and PDF as downloads', async () => {
    const get = async (key: string) => {
      const [download] = await Promise.all([page.waitForEvent('download', { timeout: 60_000 }), page.getByTestId(`export-${key}`).click()])
      const file = await download.path()
      await expect.poll(() => page.getByTestId('export-outcome').textContent(), { timeout: 60_000 }).toMatch(/Downloaded/)
      return { name: download.suggestedFilename(), bytes: readFileSync(file) }
    }
    const html = await get('html')
    expect(html.name).toMatch(/\.html$/)
    expect(html.bytes.toString()).toContain(title)
    const json = await get('json')
    expect(json.name).toMatch(/\.json$/)
    const report = JSON.parse(json.bytes.toString()) as { schemaVersion: number; title: string; timeline: { type: string; at: number }[] }
    expect(report.schemaVersion).toBe(1)
    expect(report.title).toContain(title)
    expect(report.timeline.some((e) => e.type === 'incident.note')).toBe(true)
    const md = await get('md')
    expect(md.bytes.toString()).toContain(title)
    // The PDF takes a while to print: the button says so meanwhile.
    const [download] = await Promise.all([
      page.waitForEvent('download', { timeout: 90_000 }),
      (async () => {
        await page.getByTestId('export-pdf-a4').click()
        await expect
          .poll(() =>
            page
              .getByTestId('export-progress')
              .textContent()
              .catch(() => ''),
          )
          .toMatch(/Chromium is printing/)
      })(),
    ])
    expect(download.suggestedFilename()).toMatch(/\.pdf$/)
    expect(
      readFileSync((await download.path())!)
        .subarray(0, 5)
        .toString(),
    ).toBe('%PDF-')
  }, 150_000)

  it('exports a window with no incident declared, and lists open incidents before resolved ones', async () => {
    await page.getByTestId('nav-incidents').click()
    await page.getByTestId('window-export-form').waitFor()
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('window-export-json').click()])
    const report = JSON.parse(readFileSync((await download.path())!, 'utf8')) as { incident: unknown; timeline: unknown[] }
    expect(report.incident).toBeNull()
    expect(report.timeline.length).toBeGreaterThan(0)
    // From after to: refused at the form.
    await page.getByTestId('window-from').fill('2026-11-30T12:00')
    await page.getByTestId('window-to').fill('2026-11-30T11:00')
    await expect.poll(() => page.getByTestId('window-export-form').textContent()).toMatch(/"From" must be before "to"/)
    expect(await page.getByTestId('window-export-json').isDisabled()).toBe(true)
  })

  it('declares a second incident from an error group; its timeline links back to the group', async () => {
    await page.getByTestId('nav-errors').click()
    // The Errors page may still show the group opened from the timeline: back to the list first.
    if (await page.getByTestId('back-to-groups').isVisible()) await page.getByTestId('back-to-groups').click()
    await page.locator('tr', { hasText: 'Redis connection refused' }).getByRole('button').first().click()
    await page.getByTestId('error-group').screenshot({ path: join(shots, 'incidents-error-group-1440-dark.png') })
    await page.getByTestId('declare-from-group').click()
    expect(await page.getByTestId('declare-from').textContent()).toMatch(/error group/)
    expect(await page.getByTestId('declare-title').inputValue()).toMatch(/Redis connection refused/)
    await page.getByTestId('declare-submit').click()
    await page.getByTestId('incident-title').waitFor()
    const opened = entryOfType('incident.opened')
    await expect.poll(() => opened.getByTestId('timeline-link').getAttribute('data-kind')).toBe('error_group')
    await opened.getByTestId('timeline-link').click()
    await page.getByTestId('error-group').waitFor()
    // The list: the open one first, the resolved one after.
    await page.getByTestId('nav-incidents').click()
    await expect.poll(() => page.getByTestId('incidents-open').locator('tbody tr').count()).toBe(1)
    expect(await page.getByTestId('incidents-resolved').textContent()).toContain(title)
    expect(await page.getByTestId('incidents-open').getByTestId('running-for').textContent()).toMatch(/\d+ (s|min)/)
    await shoot('incidents', 'incidents.png')
  })
})

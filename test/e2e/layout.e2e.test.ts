/**
 * Layout and connection, in Chromium against the headless host with its sandbox:
 * - every page at 900 and 1440 px wide, dark and light: a screenshot each (test-results/screenshots/layout-*),
 *   no horizontal overflow of the page at 900 px, and the texts that used to be cut or broken mid-word whole;
 * - the host stops: the page greys out its live data at once and says since when; a host started again
 *   on the same port does not know the tab's session: the page says so, with the command for a new link.
 */
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { sandboxClusterDir } from '../../src/core/sandbox/cluster'
import { hostEnv, launchChromium, needBuilt, serveHost, shots, type ServedHost } from '../helpers/served'
import { waitFor } from '../helpers/wait'

// 'incident' is one incident opened from the Incidents page (declared in beforeAll).
const PAGES = ['overview', 'health', 'metrics', 'backups', 'restore', 'errors', 'alerts', 'incidents', 'incident', 'settings'] as const

/** Overflow of the whole page and of the main content, in CSS pixels (0: none). */
const overflow = (page: Page) =>
  page.evaluate(() => {
    const s = document.scrollingElement!
    const main = document.querySelector('main')!
    return { page: s.scrollWidth - window.innerWidth, main: main.scrollWidth - main.clientWidth }
  })

describe('layout at 900 and 1440 px, and what a lost connection looks like', () => {
  let host: ServedHost
  let browser: Browser
  let page: Page
  let dataDir: string
  let env: Record<string, string>
  let port = 0

  beforeAll(async () => {
    needBuilt()
    mkdirSync(shots, { recursive: true })
    dataDir = mkdtempSync(join(tmpdir(), 'ops-layout-'))
    chmodSync(dataDir, 0o755)
    env = hostEnv({
      OPS_DATA_DIR: dataDir,
      HEALTH_INTERVAL_S: '1',
      METRICS_INTERVAL_S: '1',
      HOST_LOAD_WARN_PER_CORE: '10000',
      SANDBOX_SCALE: '0.2',
    })
    host = await serveHost(env, { timeoutMs: 90_000 })
    port = Number(new URL(host.url).port)
    browser = await launchChromium()
    page = await browser.newPage({ viewport: { width: 1440, height: 900 }, colorScheme: 'dark' })
    await page.goto(host.url)
    await page.getByTestId('sandbox-banner').waitFor({ timeout: 60_000 })
    // Something on every page: a full backup, then an incremental (a set that lists changes).
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
    // An incident with a note, for the incident page.
    await page.getByTestId('nav-incidents').click()
    await page.getByTestId('declare').click()
    await page.getByTestId('declare-title').fill('Exam submissions failing: the answers table is locked by a long migration')
    await page
      .getByTestId('declare-note')
      .fill('**Migration** `0042_answers_index` holds an ACCESS EXCLUSIVE lock; paged the release owner.')
    await page.getByTestId('declare-submit').click()
    await page.getByTestId('incident-title').waitFor({ timeout: 20_000 })
    // Back where the first test starts: the Backups page with its sets.
    await page.getByTestId('nav-backups').click()
    await page.getByTestId('backup-set').first().waitFor({ timeout: 20_000 })
  }, 240_000)

  afterAll(async () => {
    await browser?.close()
    await host?.stop()
    if (dataDir) {
      const cluster = sandboxClusterDir(dataDir)
      if (cluster) rmSync(cluster, { recursive: true, force: true })
      rmSync(dataDir, { recursive: true, force: true })
    }
  })

  it('verify counts the stored objects the details count', async () => {
    await page.getByTestId('backup-set').first().click()
    const objects = Number(/^\d+/.exec((await page.getByTestId('details-objects').textContent()) ?? '')?.[0])
    expect(objects).toBeGreaterThan(2)
    await page.getByTestId('verify').click()
    await expect
      .poll(() => page.getByTestId('backup-outcome').textContent(), { timeout: 60_000 })
      .toMatch(new RegExp(`Verify succeeded — all ${objects} stored objects of \\S+ \\(the manifest included\\) are intact`))
    // The set id is there to copy.
    await expect.poll(() => page.getByTestId('details-set-id').locator('button.copy').count()).toBe(1)
  })

  for (const theme of ['dark', 'light'] as const)
    for (const width of [900, 1440])
      it(`every page at ${width} px (${theme}): nothing cut or overflowing`, async () => {
        await page.setViewportSize({ width, height: 900 })
        // The toggle cycles system → light → dark; set the one wanted whatever it is now.
        for (let i = 0; i < 3 && (await page.evaluate(() => document.documentElement.dataset.theme)) !== theme; i++)
          await page.getByTestId('theme-toggle').click()
        expect(await page.evaluate(() => document.documentElement.dataset.theme)).toBe(theme)
        for (const p of PAGES) {
          await page.getByTestId(`nav-${p === 'incident' ? 'incidents' : p}`).click()
          if (p === 'incident') {
            await page.getByTestId('incidents-open').getByRole('link').first().click()
            await page.getByTestId('timeline-entry').first().waitFor({ timeout: 20_000 })
          }
          if (p === 'backups') {
            await page.getByTestId('backup-set').first().waitFor()
            if (!(await page.getByTestId('set-details').isVisible())) await page.getByTestId('backup-set').first().click()
            await page.getByTestId('set-details').waitFor()
          }
          if (p === 'restore') {
            await page.getByTestId('restore-marker').first().click({ timeout: 20_000 })
            await expect.poll(() => page.getByTestId('restore-chosen').textContent(), { timeout: 20_000 }).toMatch(/Chosen:/)
            // The chosen marker stays on its bar (it used to drop below it).
            const bar = await page.getByTestId('restore-chain').locator('.chain-bar').boundingBox()
            const marker = await page.locator('[data-testid="restore-marker"][data-chosen="true"]').boundingBox()
            expect(marker).not.toBeNull()
            const mid = marker!.y + marker!.height / 2
            expect(Math.abs(mid - (bar!.y + bar!.height / 2))).toBeLessThan(2)
            // The chain has a time axis, and the point reads as local time, not ISO UTC.
            await expect.poll(() => page.getByTestId('chain-axis').locator('.tick').count()).toBeGreaterThan(0)
            expect(await page.getByTestId('restore-chosen').textContent()).not.toMatch(/\d{4}-\d\d-\d\dT\d\d:\d\d/)
            expect(await page.getByTestId('chain-axis').textContent()).not.toMatch(/Invalid/)
          }
          if (p === 'metrics') await page.locator('figure.chart').first().waitFor({ timeout: 20_000 })
          // The sandbox web app raises errors under its simulated traffic: lay the page out with groups in it
          // (an empty list once hid a table 119 px too wide at 900 px).
          if (p === 'errors') await page.getByTestId('error-groups').locator('tbody tr').first().waitFor({ timeout: 90_000 })
          await page.waitForTimeout(0) // one task for layout (no fixed wait)
          await page.screenshot({ path: join(shots, `layout-${p}-${width}-${theme}.png`), fullPage: true })
          const o = await overflow(page)
          if (width === 900) {
            expect.soft(o.page, `${p} page overflows horizontally at ${width} px`).toBeLessThanOrEqual(0)
            expect.soft(await page.evaluate(() => document.scrollingElement!.scrollWidth <= window.innerWidth), p).toBe(true)
          }
        }
        // Texts that used to break: sizes in the sets table on one line, buttons never split, set ids whole.
        await page.getByTestId('nav-backups').click()
        await page.getByTestId('backup-set').first().waitFor()
        const broken = await page.evaluate(() => {
          const lines = (el: Element) => {
            const r = document.createRange()
            r.selectNodeContents(el)
            return new Set(Array.from(r.getClientRects()).map((x) => Math.round(x.top))).size
          }
          const out: string[] = []
          for (const b of Array.from(document.querySelectorAll('main button')))
            if (b.textContent && lines(b) > 1) out.push(`button "${b.textContent}"`)
          for (const c of Array.from(document.querySelectorAll('table.sets td:nth-child(5)')))
            if (lines(c.firstChild!.parentElement!) > 1 && !c.querySelector('div')) out.push(`size "${c.textContent}"`)
          for (const c of Array.from(document.querySelectorAll('code.id'))) if (lines(c) > 1) out.push(`id "${c.textContent}"`)
          return out
        })
        expect(broken).toEqual([])
        // Every column of the sets table is on screen, the status included (no scrolling inside the table).
        const hidden = await page.evaluate(() => {
          const box = document.querySelector('.table-scroll')!
          return box.scrollWidth - box.clientWidth
        })
        expect(hidden, `the sets table is cut at ${width} px`).toBeLessThanOrEqual(0)
      })

  it('the restore target step: radios beside their labels, a database-name field wide enough to read', async () => {
    await page.setViewportSize({ width: 900, height: 900 })
    await page.getByTestId('nav-restore').click()
    await page.getByTestId('restore-marker').first().click({ timeout: 20_000 })
    await expect.poll(() => page.getByTestId('restore-chosen').textContent(), { timeout: 20_000 }).toMatch(/Chosen:/)
    await page.getByTestId('restore-next').click()
    await page.getByTestId('restore-scope').waitFor()
    await page.getByTestId('restore-next').click()
    await page.getByTestId('target-new').check()
    const radio = (await page.getByTestId('target-new').boundingBox())!
    const label = (await page.getByText('A new database on the same server, created by the restore').boundingBox())!
    expect(radio.width).toBeLessThan(30)
    expect(label.x - (radio.x + radio.width)).toBeLessThan(24)
    await page.getByTestId('target-name').fill('examforge_restored_copy')
    expect((await page.getByTestId('target-name').boundingBox())!.width).toBeGreaterThanOrEqual(240)
    await page.screenshot({ path: join(shots, 'layout-restore-target-900.png') })
    await page
      .getByTestId('restore-steps')
      .locator('li')
      .first()
      .click()
      .catch(() => {})
  })

  it('the sandbox scale says what is wrong at its field, not in a banner at the top', async () => {
    await page.getByTestId('nav-settings').click()
    const scale = page.getByLabel('Scale')
    await scale.fill('5000')
    await page.getByRole('button', { name: 'Regenerate sandbox data' }).click()
    await expect.poll(() => page.getByTestId('scale-error').textContent()).toMatch(/0\.01 to 1000/)
    const field = (await scale.boundingBox())!
    const error = (await page.getByTestId('scale-error').boundingBox())!
    expect(Math.abs(error.y - (field.y + field.height))).toBeLessThan(60)
    expect(await page.locator('.banner.danger').count()).toBe(0)
    await scale.scrollIntoViewIfNeeded()
    await page.screenshot({ path: join(shots, 'layout-scale-error-900.png') })
    await scale.fill('0.2')
    await expect.poll(() => page.getByTestId('scale-error').count()).toBe(0)
  })

  it('Live metrics open with the last minutes the host holds, not only what arrived since the page opened', async () => {
    await page.getByTestId('nav-metrics').click()
    await page.getByTestId('range-live').click()
    const openedAt = Date.now()
    await page.reload()
    await page.locator('figure.chart').first().waitFor({ timeout: 20_000 })
    // The host has collected every second since it started (well over 20 s ago); the page, only just now.
    await expect
      .poll(() => page.locator('figure.chart').first().getAttribute('data-points').then(Number), { timeout: 10_000 })
      .toBeGreaterThanOrEqual(15)
    expect(Date.now() - openedAt).toBeLessThan(12_000)
  })

  it('greys out live data at once when the host stops, and says the session is gone when a new host answers', async () => {
    await page.setViewportSize({ width: 1440, height: 900 })
    await page.getByTestId('nav-overview').click()
    await expect.poll(() => page.getByTestId('tile-postgres').getAttribute('data-status'), { timeout: 30_000 }).toBe('healthy')
    expect(await page.getByTestId('content').getAttribute('data-stale')).toBeNull()
    const stoppedAt = Date.now()
    await host.stop()
    // At once: the banner, the greyed tiles, and the overall status no longer claims anything.
    await page.getByTestId('connection-banner').waitFor({ timeout: 5_000 })
    expect(Date.now() - stoppedAt).toBeLessThan(5_000)
    expect(await page.getByTestId('connection-banner').getAttribute('data-state')).toBe('lost')
    expect(await page.getByTestId('connection-banner').textContent()).toMatch(/Lost the connection.*last updated/)
    expect(await page.getByTestId('content').getAttribute('data-stale')).toBe('true')
    expect(await page.getByTestId('overall').textContent()).toMatch(/not connected/)
    const filter = await page.getByTestId('tile-postgres').evaluate((el) => getComputedStyle(el).filter)
    expect(filter).toMatch(/grayscale/)
    await page.screenshot({ path: join(shots, 'layout-connection-lost.png') })
    // A new host on the same port: it answers, but this tab's session died with the old one. (The old
    // host's sandbox PostgreSQL may still be shutting down after the host exits: wait for its pid file to go.)
    const cluster = sandboxClusterDir(dataDir)
    if (cluster)
      await waitFor(
        () => !existsSync(join(cluster, 'postmaster.pid')) && !existsSync(join(cluster, 'pgdata', 'postmaster.pid')),
        'the old sandbox PostgreSQL to stop',
        60_000,
      )
    host = await serveHost(env, { port, timeoutMs: 90_000 })
    await expect
      .poll(() => page.getByTestId('connection-banner').getAttribute('data-state'), { timeout: 60_000, interval: 200 })
      .toBe('ended')
    expect(await page.getByTestId('connection-banner').textContent()).toMatch(/session is gone.*examforge-ops open/)
    expect(await page.getByTestId('content').getAttribute('data-stale')).toBe('true')
    await page.screenshot({ path: join(shots, 'layout-session-gone.png') })
  }, 120_000)
})

import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { createDatabase } from '../helpers/db'
import { hostEnv, launchChromium, needBuilt, serveHost, shots, type ServedHost } from '../helpers/served'

/**
 * Settings cannot break the console: a settings file with bad values still starts (the bad keys at their
 * defaults, flagged at their fields), a bad value typed in is refused at its field, and "clear" puts the
 * default back, all in Chromium against `examforge-ops serve`.
 */
describe('settings that cannot break the console, in Chromium', () => {
  let db: Awaited<ReturnType<typeof createDatabase>>
  let host: ServedHost
  let browser: Browser
  let page: Page
  const dataDir = mkdtempSync(join(tmpdir(), 'ops-e2e-settings-'))
  const file = join(dataDir, 'settings.json')

  beforeAll(async () => {
    needBuilt()
    mkdirSync(shots, { recursive: true })
    db = await createDatabase(inject('pgUrl'), 'e2eset')
    // Two values the console cannot use, saved before this start (as an older console let them be).
    writeFileSync(file, JSON.stringify({ METRICS_INTERVAL_S: '0', BACKUP_COMPRESSION: 'lz4', APP_HEALTH_PATH: '/healthz' }), {
      mode: 0o600,
    })
    host = await serveHost(
      hostEnv({
        OPS_DATA_DIR: dataDir,
        DATABASE_URL: db.url,
        HEALTH_INTERVAL_S: '3600',
        HOST_LOAD_WARN_PER_CORE: '10000',
      }),
    )
    const url = host.url
    browser = await launchChromium()
    page = await browser.newPage({ viewport: { width: 1320, height: 900 } })
    await page.goto(url as string)
    await page.getByTestId('nav-settings').click()
    await page.getByTestId('settings').waitFor()
  })
  afterAll(async () => {
    await browser?.close()
    await host?.stop()
    await db?.drop()
  })

  it('started with a bad settings file: the log and each bad field name the file, the defaults apply', async () => {
    expect(host.output()).toContain(`Setting METRICS_INTERVAL_S in ${file} is "0"`)
    expect(host.output()).toContain(`Setting BACKUP_COMPRESSION in ${file} is "lz4"`)
    const metrics = page.getByTestId('setting-METRICS_INTERVAL_S')
    await expect
      .poll(() => page.getByTestId('setting-METRICS_INTERVAL_S-problem').textContent())
      .toContain(`The settings file ${file} holds "0"`)
    expect(await metrics.textContent()).toMatch(/must be a number from 1 to 60/)
    expect(await page.getByTestId('setting-BACKUP_COMPRESSION-problem').textContent()).toMatch(/"lz4" is not known/)
    expect(await page.getByTestId('setting-APP_HEALTH_PATH').textContent()).toContain('/healthz')
    // A flagged value already runs at its default: nothing waits for a restart.
    expect(await page.getByTestId('restart-bar').count()).toBe(0)
    await page.screenshot({ path: join(shots, 'settings-bad-file.png'), fullPage: true })
  })

  it('a bad value shows its error at the field, and nothing is saved', async () => {
    const row = page.getByTestId('setting-HEALTH_INTERVAL_S')
    await row.getByRole('button', { name: 'Edit' }).click()
    await row.getByLabel('New value for HEALTH_INTERVAL_S').fill('-5')
    expect(await row.textContent()).toMatch(/Applies after a restart/)
    await row.getByRole('button', { name: 'Save' }).click()
    await expect
      .poll(() => page.getByTestId('setting-HEALTH_INTERVAL_S-note').textContent())
      .toMatch(/HEALTH_INTERVAL_S must be a number from 1 to 3600; it is "-5"\. Nothing was saved/)
    // The form stays open at the field, with the value to correct.
    expect(await row.getByLabel('New value for HEALTH_INTERVAL_S').inputValue()).toBe('-5')
    await page.screenshot({ path: join(shots, 'settings-field-error.png'), fullPage: true })
    expect(JSON.parse(readFileSync(file, 'utf8'))).not.toHaveProperty('HEALTH_INTERVAL_S')
    await row.getByRole('button', { name: 'Cancel' }).click()
    expect(await page.getByTestId('setting-HEALTH_INTERVAL_S-note').count()).toBe(0)
  })

  it('"clear" puts the default back: from the row, and from the edit form', async () => {
    const metrics = page.getByTestId('setting-METRICS_INTERVAL_S')
    await metrics.getByRole('button', { name: 'Clear' }).click()
    await expect.poll(() => page.getByTestId('setting-METRICS_INTERVAL_S-problem').count()).toBe(0)
    expect(JSON.parse(readFileSync(file, 'utf8'))).not.toHaveProperty('METRICS_INTERVAL_S')

    const compression = page.getByTestId('setting-BACKUP_COMPRESSION')
    await compression.getByRole('button', { name: 'Edit' }).click()
    await compression.getByRole('button', { name: 'Clear (use the default)' }).click()
    await expect.poll(() => page.getByTestId('setting-BACKUP_COMPRESSION-problem').count()).toBe(0)
    expect(await page.getByTestId('setting-BACKUP_COMPRESSION-note').textContent()).toBe('Cleared: the default, which already applies.')
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({ APP_HEALTH_PATH: '/healthz' })
    await page.screenshot({ path: join(shots, 'settings-cleared.png'), fullPage: true })
  })

  it('a saved value says it applies after a restart, and the browser face says how to restart the host', async () => {
    const row = page.getByTestId('setting-METRICS_INTERVAL_S')
    await row.getByRole('button', { name: 'Edit' }).click()
    await row.getByLabel('New value for METRICS_INTERVAL_S').fill('10')
    await row.getByRole('button', { name: 'Save' }).click()
    await expect.poll(() => row.textContent()).toMatch(/Saved: 10 \(applies after a restart\)/)
    await expect
      .poll(() => page.getByTestId('restart-bar').textContent())
      .toMatch(/METRICS_INTERVAL_S applies after a restart\. Restart the host to apply: stop npm run serve/)
    // No restart button in a browser: the host is restarted where it runs.
    expect(await page.getByTestId('restart-bar').getByRole('button').count()).toBe(0)
    await page.screenshot({ path: join(shots, 'settings-restart.png'), fullPage: true })
  })
})

import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { parseCompression } from '../../src/core/backup/compression'
import { runFullBackup } from '../../src/core/backup/full'
import { newSetId } from '../../src/core/backup/manifest'
import { silentLogger } from '../../src/core/log/logger'
import { LocalStorage } from '../../src/core/storage/local'
import { createDatabase } from '../helpers/db'
import { noProgress, seedExamforge } from '../helpers/seed'
import { hostEnv, launchChromium, needBuilt, serveHost, type ServedHost } from '../helpers/served'

/**
 * With an encryption key configured, the Restore wizard refuses a set whose manifest is not authenticated
 * (here one written without encryption), says why, and offers the acknowledgement that lets the plan through.
 */
describe('the Restore wizard and an unauthenticated backup set', () => {
  let db: Awaited<ReturnType<typeof createDatabase>>
  let host: ServedHost
  let browser: Browser
  let page: Page
  beforeAll(async () => {
    needBuilt()
    db = await createDatabase(inject('pgUrl'), 'authui')
    await seedExamforge(db.url, 0.02)
    const dir = mkdtempSync(join(tmpdir(), 'ops-authui-'))
    // A set written by a console without encryption.
    await runFullBackup(
      newSetId('full'),
      { databaseUrl: db.url, storage: new LocalStorage(dir), compression: parseCompression('gzip:1'), encryption: null, log: silentLogger },
      noProgress(),
    )
    host = await serveHost(
      hostEnv({
        OPS_DATA_DIR: mkdtempSync(join(tmpdir(), 'ops-authui-data-')),
        DATABASE_URL: db.url,
        LOCAL_BACKUP_PATH: dir,
        BACKUP_ENCRYPTION_KEY: 'ab'.repeat(32),
        BACKUP_INCREMENTAL: 'off',
        // The error ingest on a free port, never the fixed default another run may hold.
        ERROR_INGEST_ADDR: '127.0.0.1:0',
      }),
    )
    const url = host.url
    browser = await launchChromium()
    page = await browser.newPage({ viewport: { width: 1320, height: 860 } })
    await page.goto(url)
  }, 120_000)
  afterAll(async () => {
    await browser?.close()
    await host?.stop()
    await db?.drop()
  })

  it('says the set is not authenticated, and plans it only once the operator acknowledges it', async () => {
    await page.getByTestId('nav-backups').click()
    await expect
      .poll(() => page.getByTestId('backup-sets').textContent(), { timeout: 20_000 })
      .toMatch(/Unauthenticated: written without encryption/)
    await page.getByTestId('nav-restore').click()
    await page.getByTestId('restore-marker').first().click({ timeout: 20_000 })
    await expect
      .poll(() => page.getByTestId('restore-chosen').textContent(), { timeout: 20_000 })
      .toMatch(/whose manifest is not authenticated: \S+ \(not encrypted\)/)
    expect(await page.getByTestId('restore-next').isDisabled()).toBe(true)
    await page.getByTestId('restore-allow-unauthenticated').click() // the plan is made again at once (the box goes with the refusal)
    await expect.poll(() => page.getByTestId('restore-chosen').textContent(), { timeout: 20_000 }).toMatch(/Chosen: full backup/)
    expect(await page.getByTestId('restore-next').isDisabled()).toBe(false)
    // The acknowledgement holds through the wizard: the preview shows it among the preflight checks.
    await page.getByTestId('restore-next').click()
    await page.getByTestId('restore-next').click()
    await page.getByTestId('restore-target').waitFor()
    await page.getByTestId('restore-next').click()
    await expect
      .poll(() => page.getByTestId('restore-preflight').textContent(), { timeout: 20_000 })
      .toMatch(/Authenticity.*Not authenticated, restored as acknowledged/)
  })
})

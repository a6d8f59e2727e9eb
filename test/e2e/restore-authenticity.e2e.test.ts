import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { chromium, type Browser, type Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { parseCompression } from '../../src/core/backup/compression'
import { runFullBackup } from '../../src/core/backup/full'
import { newSetId } from '../../src/core/backup/manifest'
import { silentLogger } from '../../src/core/log/logger'
import { LocalStorage } from '../../src/core/storage/local'
import { createDatabase } from '../helpers/db'
import { noProgress, seedExamforge } from '../helpers/seed'
import { waitFor } from '../helpers/wait'

const root = resolve(__dirname, '../..')
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'

/**
 * With an encryption key configured, the Restore wizard refuses a set whose manifest is not authenticated
 * (here one written without encryption), says why, and offers the acknowledgement that lets the plan through.
 */
describe('the Restore wizard and an unauthenticated backup set', () => {
  let db: Awaited<ReturnType<typeof createDatabase>>
  let host: ChildProcess
  let browser: Browser
  let page: Page
  beforeAll(async () => {
    if (!existsSync(CHROMIUM))
      throw new Error(`No Chromium at ${CHROMIUM}: install Debian's chromium (apt-get install chromium) or set CHROMIUM_PATH.`)
    if (!existsSync(join(root, 'out/host/cli.js'))) throw new Error('The host is not built: run "npm run build" (npm test does it first).')
    db = await createDatabase(inject('pgUrl'), 'authui')
    await seedExamforge(db.url, 0.02)
    const dir = mkdtempSync(join(tmpdir(), 'ops-authui-'))
    // A set written by a console without encryption.
    await runFullBackup(
      newSetId('full'),
      { databaseUrl: db.url, storage: new LocalStorage(dir), compression: parseCompression('gzip:1'), encryption: null, log: silentLogger },
      noProgress(),
    )
    host = spawn(process.execPath, [join(root, 'out/host/cli.js'), 'serve', '--port', '0'], {
      cwd: root,
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: process.env.HOME ?? tmpdir(),
        OPS_DATA_DIR: mkdtempSync(join(tmpdir(), 'ops-authui-data-')),
        DATABASE_URL: db.url,
        LOCAL_BACKUP_PATH: dir,
        BACKUP_ENCRYPTION_KEY: 'ab'.repeat(32),
        BACKUP_INCREMENTAL: 'off',
        // The error ingest on a free port, never the fixed default another run may hold.
        ERROR_INGEST_ADDR: '127.0.0.1:0',
      },
    })
    let out = ''
    host.stdout!.on('data', (d) => (out += d))
    host.stderr!.on('data', (d) => (out += d))
    const url = await waitFor(() => /http:\/\/127\.0\.0\.1:\d+\/\?token=\S+/.exec(out)?.[0], 'the host to print its URL', 60_000).catch(
      (e: Error) => {
        throw new Error(`${e.message}. Host output: ${out}`)
      },
    )
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    })
    page = await browser.newPage({ viewport: { width: 1320, height: 860 } })
    await page.goto(url as string)
  }, 120_000)
  afterAll(async () => {
    await browser?.close()
    if (host && host.exitCode === null) {
      const exited = new Promise((r) => host.once('exit', r))
      host.kill('SIGTERM')
      await exited
    }
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

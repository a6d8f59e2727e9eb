import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { _electron, type Browser, type ElectronApplication, type Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { sandboxClusterDir } from '../../src/core/sandbox/cluster'
import { startHttp, stripeLike } from '../helpers/http'
import { startRedis, type RedisServer } from '../helpers/redis'
import { S3_CREDENTIALS, TEST_BUCKET } from '../helpers/s3'
import { hostEnv, launchChromium, needBuilt, root, serveHost, shots, type ServedHost } from '../helpers/served'

const SERVICES = ['postgres', 'redis', 'storage', 's3', 'stripe', 'app', 'host']

/** The downloaded Electron binary, or null; never fetches it (require('electron') would try to download it). */
function electronBinary(): string | null {
  const { installedElectron } = createRequire(import.meta.url)('../../scripts/electron-binary.cjs') as {
    installedElectron(): string | null
  }
  return installedElectron()
}

interface Services {
  redis: RedisServer
  env: Record<string, string>
  dataDir: string
  close(): Promise<void>
}

/** Everything the console watches, real and local: Redis, S3 (s3rver), the web app, Stripe's API shape. */
async function startServices(): Promise<Services> {
  const redis = await startRedis()
  const app = await startHttp((req, res) => {
    if (req.url === '/api/health') res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"status":"ok"}')
    else res.writeHead(404).end()
  })
  const stripe = await startHttp(stripeLike)
  const dataDir = mkdtempSync(join(tmpdir(), 'ops-e2e-'))
  chmodSync(dataDir, 0o755)
  return {
    redis,
    dataDir,
    env: {
      OPS_DATA_DIR: dataDir,
      REDIS_URL: redis.url,
      BACKUP_S3_BUCKET: TEST_BUCKET,
      S3_ENDPOINT: inject('s3Endpoint'),
      AWS_REGION: 'us-east-1',
      ...S3_CREDENTIALS,
      STRIPE_SECRET_KEY: 'sk_test_good0000000000',
      STRIPE_API_BASE: stripe.url,
      APP_URL: app.url,
      HEALTH_INTERVAL_S: '1',
      METRICS_INTERVAL_S: '1',
      PROBE_TIMEOUT_MS: '3000',
      // The host tile must not depend on how busy the test machine is (two cores shared with the suite).
      HOST_LOAD_WARN_PER_CORE: '10000',
      SANDBOX_SCALE: '0.5',
      // Retention keeps only the newest chain, so the e2e can watch it delete the older one.
      BACKUP_RETAIN_DAYS: '0',
      BACKUP_KEEP_FULLS: '1',
      // The error ingest on a free port, never a fixed one other runs may hold.
      ERROR_INGEST_ADDR: '127.0.0.1:0',
    },
    async close() {
      await redis.stop()
      await app.close()
      await stripe.close()
      const cluster = sandboxClusterDir(dataDir)
      if (cluster) rmSync(cluster, { recursive: true, force: true })
      rmSync(dataDir, { recursive: true, force: true })
    },
  }
}

/** The sandbox database the console under test started (its running file names it). */
function sandboxUrl(dataDir: string): string {
  return (JSON.parse(readFileSync(join(dataDir, 'sandbox', 'running.json'), 'utf8')) as { url: string }).url
}

/** The same checks for every face: what an operator sees and does. */
function consoleSpec(face: string, open: () => Promise<{ page: Page; services: Services; startedAt: number }>) {
  let page: Page
  let services: Services
  let startedAt: number
  beforeAll(async () => {
    ;({ page, services, startedAt } = await open())
    mkdirSync(shots, { recursive: true })
  })

  it('shows the sandbox banner and every tile green', async () => {
    await page.getByTestId('sandbox-banner').waitFor({ timeout: 30_000 })
    await expect.poll(() => page.getByTestId('sandbox-banner').textContent()).toMatch(/set DATABASE_URL/)
    await page.getByTestId('nav-health').click()
    for (const s of SERVICES) {
      await expect
        .poll(() => page.getByTestId(`tile-${s}`).getAttribute('data-status'), { timeout: 30_000, interval: 200, message: `the ${s} tile` })
        .toBe('healthy')
    }
    const greenAfterMs = Date.now() - startedAt
    writeFileSync(join(shots, `${face}-timing.json`), JSON.stringify({ face, startToGreenHealthMs: greenAfterMs }, null, 2))
    await expect.poll(() => page.getByTestId('overall').textContent()).toMatch(/Healthy/)
    // How each connection travels: everything here is on loopback without TLS, which is fine and said so.
    for (const s of ['postgres', 'redis', 's3', 'stripe', 'app'])
      await expect.poll(() => page.getByTestId(`transport-${s}`).textContent()).toBe('Clear text (loopback)')
    await expect.poll(() => page.getByTestId('transport-host').count()).toBe(0)
    await page.screenshot({ path: join(shots, `${face}-health-green.png`) })
    await page.getByTestId('tile-postgres').click()
    await expect
      .poll(() => page.getByTestId('transport-detail').textContent())
      .toBe("Not encrypted (the server offers no TLS); fine on this machine's loopback.")
    await page.getByTestId('tile-postgres').click() // closed again
  })

  it('shows the overview tiles, and no page is marked as still to come any more', async () => {
    await page.getByTestId('nav-overview').click()
    // Every probe has a tile (the backup slot's appears as not configured until a chain exists; the error
    // ingest's because this host runs it).
    await expect.poll(() => page.locator('.tile.compact').count()).toBe(SERVICES.length + 2)
    await page.getByTestId('tile-error_ingest').waitFor()
    await page.screenshot({ path: join(shots, `${face}-overview.png`) })
    // Every capability is built: nothing is announced as coming, and Incidents is a page of its own.
    expect(await page.locator('.coming-card').count()).toBe(0)
    expect(await page.locator('nav a .badge').count()).toBe(0)
    await page.getByTestId('nav-incidents').click()
    await page.getByTestId('incidents').waitFor()
  })

  it('draws live metric charts that move, sparklines on the overview, and history by range', async () => {
    await page.getByTestId('nav-overview').click()
    // The key series under the tiles (PostgreSQL transactions, Redis commands, app response time, host CPU).
    await expect.poll(() => page.getByTestId('spark-postgres').locator('path.recharts-curve').count(), { timeout: 15_000 }).toBe(1)
    await page.getByTestId('nav-metrics').click()
    const cpu = page.getByTestId('chart-host.cpu_percent')
    await expect.poll(async () => Number(await cpu.getAttribute('data-points')), { timeout: 15_000 }).toBeGreaterThan(2)
    const before = Number(await cpu.getAttribute('data-points'))
    const pathBefore = await cpu.locator('path.recharts-curve').first().getAttribute('d')
    // Live: new points arrive without reloading, and the line is redrawn.
    await expect.poll(async () => Number(await cpu.getAttribute('data-points')), { timeout: 10_000 }).toBeGreaterThan(before + 1)
    expect(await cpu.locator('path.recharts-curve').first().getAttribute('d')).not.toBe(pathBefore)
    for (const g of ['host', 'database', 'redis', 'app']) await page.getByTestId(`metrics-${g}`).waitFor()
    await expect.poll(() => page.getByTestId('chart-redis.ops_per_s').textContent()).toMatch(/ops\/s/)
    await page.screenshot({ path: join(shots, `${face}-metrics.png`), fullPage: true })
    // The tooltip gives the exact time and the unit.
    const box = (await cpu.locator('.recharts-wrapper').boundingBox())!
    await page.mouse.move(box.x + box.width * 0.8, box.y + box.height / 2)
    await expect.poll(() => cpu.locator('.recharts-tooltip-wrapper').textContent()).toMatch(/\d{1,2}:\d{2}:\d{2}.*%/)
    // A range from the ops store (raw samples for the last hour).
    await page.getByTestId('range-1h').click()
    await expect.poll(() => page.getByTestId('metrics').textContent(), { timeout: 10_000 }).toMatch(/raw samples/)
    await expect.poll(async () => Number(await cpu.getAttribute('data-points')), { timeout: 10_000 }).toBeGreaterThan(0)
    expect(await page.getByTestId('host-picker').locator('option').count()).toBeGreaterThanOrEqual(1)
    await page.getByTestId('range-live').click()
  })

  it('turns the Redis tile red when Redis stops, with the reason, and recovers on "check now"', async () => {
    await page.getByTestId('nav-health').click()
    await services.redis.stop()
    await expect
      .poll(() => page.getByTestId('tile-redis').getAttribute('data-status'), { timeout: 10_000, interval: 200 })
      .toBe('unhealthy')
    await expect.poll(() => page.getByTestId('tile-redis').textContent()).toMatch(/refused the connection/)
    await expect.poll(() => page.getByTestId('overall').textContent()).toMatch(/Unhealthy/)
    await page.getByTestId('tile-redis').click()
    await expect.poll(() => page.getByTestId('details').textContent()).toMatch(/Recent changes/)
    await expect.poll(() => page.getByTestId('details').textContent()).toMatch(/Unhealthy/)
    await page.screenshot({ path: join(shots, `${face}-health-redis-down.png`) })
    await services.redis.restart()
    await page.getByRole('button', { name: 'Check Redis now' }).click()
    await expect.poll(() => page.getByTestId('tile-redis').getAttribute('data-status'), { timeout: 10_000, interval: 200 }).toBe('healthy')
    // Overall is back to healthy: nothing else was left unhealthy by Redis (the host's load threshold is set
    // by this spec, so a busy test machine cannot turn the host tile yellow).
    await expect.poll(() => page.getByTestId('overall').textContent(), { timeout: 15_000, interval: 250 }).toBe('Overall: Healthy')
    await expect
      .poll(() => page.locator('[data-testid^="tile-"]:not([data-status="healthy"]):not([data-status="not_configured"])').count())
      .toBe(0)
  })

  it('never shows a secret: settings are masked', async () => {
    await page.getByTestId('nav-settings').click()
    await page.getByTestId('settings').waitFor()
    await expect.poll(() => page.getByTestId('setting-STRIPE_SECRET_KEY').textContent()).toMatch(/sk_test_•••0000/)
    await expect.poll(() => page.getByTestId('setting-DATABASE_URL').textContent()).toMatch(/postgres:•••@127\.0\.0\.1/)
    const html = await page.content()
    expect(html).not.toContain('sk_test_good0000000000')
    expect(html).not.toContain(`AWS_SECRET_ACCESS_KEY=${S3_CREDENTIALS.AWS_SECRET_ACCESS_KEY}`)
    await page.screenshot({ path: join(shots, `${face}-settings.png`), fullPage: true })
  })

  it('moving STRIPE_API_BASE asks for the Stripe key again, refuses a wrong one and saves with the right one', async () => {
    await page.getByTestId('nav-settings').click()
    const row = page.getByTestId('setting-STRIPE_API_BASE')
    await row.getByRole('button', { name: 'Edit' }).click()
    await row.getByLabel('New value for STRIPE_API_BASE').fill('https://stripe-proxy.example')
    const confirm = row.getByLabel('Confirm with STRIPE_SECRET_KEY')
    await confirm.waitFor()
    await expect.poll(() => row.textContent()).toMatch(/The Stripe secret key is sent to this address/)
    expect(await row.getByRole('button', { name: 'Save' }).isDisabled()).toBe(true)
    await confirm.fill('sk_test_wrong000000000')
    await row.getByRole('button', { name: 'Save' }).click()
    await expect.poll(() => row.getByRole('alert').textContent()).toMatch(/not STRIPE_SECRET_KEY as configured now/)
    await page.screenshot({ path: join(shots, `${face}-settings-confirm.png`), fullPage: true })
    await confirm.fill('sk_test_good0000000000')
    await row.getByRole('button', { name: 'Save' }).click()
    await expect.poll(() => row.textContent()).toMatch(/also set in the environment, which wins/)
    expect(await page.content()).not.toContain('sk_test_good0000000000')
  })

  it('backs up from the Backups page with live progress, lists the set, and verifies it', async () => {
    await page.getByTestId('nav-backups').click()
    await page.getByTestId('backup-sets').waitFor()
    // A session holding a lock on one table keeps the backup waiting, so the page is surely reloaded while it runs.
    const blocker = new pg.Client({ connectionString: sandboxUrl(services.dataDir) })
    await blocker.connect()
    await blocker.query('BEGIN')
    await blocker.query('LOCK TABLE public.plans IN ACCESS EXCLUSIVE MODE')
    try {
      await page.getByTestId('backup-now').click()
      await page.getByTestId('backup-progress').waitFor({ timeout: 10_000 })
      // A reload (or a reopened window) re-attaches: progress and Cancel are back, and no second backup can start.
      await page.reload()
      await page.getByTestId('backup-progress').waitFor({ timeout: 15_000 })
      expect(await page.getByTestId('backup-progress').getByRole('button', { name: 'Cancel' }).isVisible()).toBe(true)
      expect(await page.getByTestId('backup-now').isDisabled()).toBe(true)
      expect(await page.getByTestId('backup-incremental').isDisabled()).toBe(true)
      await page.screenshot({ path: join(shots, `${face}-backup-reattached.png`) })
    } finally {
      await blocker.query('ROLLBACK')
      await blocker.end()
    }
    await expect.poll(() => page.getByTestId('backup-outcome').textContent(), { timeout: 60_000 }).toMatch(/Backup succeeded/)
    // A full with no chain says what that means for point-in-time restore, how to turn incrementals on and their cost.
    expect(await page.getByTestId('backup-outcome').textContent()).toMatch(
      /point-in-time restore needs incremental backups\. Turn them on with BACKUP_INCREMENTAL_EVERY=15m .*keeps the WAL written between two incrementals/,
    )
    await expect.poll(() => page.getByTestId('backup-set').count()).toBe(1)
    // The set that finished after the reload is listed as what it is: complete.
    await expect.poll(() => page.getByTestId('backup-set').first().textContent()).toMatch(/complete/)
    expect(await page.getByTestId('backup-set').first().textContent()).not.toMatch(/incomplete/)
    await page.getByTestId('backup-set').first().click()
    await expect.poll(() => page.getByTestId('set-details').textContent()).toMatch(/public\.question_responses/)
    await page.getByTestId('verify').click()
    await expect
      .poll(() => page.getByTestId('backup-outcome').textContent(), { timeout: 60_000 })
      .toMatch(/Verify succeeded — all \d+ stored objects of \S+ \(the manifest included\) are intact/)
    // The count is the one the details show.
    const stored = /^\d+/.exec((await page.getByTestId('details-objects').textContent()) ?? '')?.[0]
    expect(await page.getByTestId('backup-outcome').textContent()).toContain(`all ${stored} stored objects`)
    // The sandbox allows incrementals. A full on its own holds no WAL back (no slot); the first incremental
    // starts a chain with a full, and the next one follows it.
    await expect.poll(() => page.getByTestId('incrementals').textContent()).toMatch(/Ready: wal_level=logical/)
    await page.getByTestId('backup-incremental').click()
    await expect.poll(() => page.getByTestId('backup-set').count(), { timeout: 60_000 }).toBe(2)
    await expect.poll(() => page.getByTestId('backup-outcome').textContent()).toMatch(/\(full\)\. There was no backup chain yet/)
    await expect.poll(() => page.getByTestId('incrementals').textContent()).toMatch(/examforge_ops_\w+ holds/)
    await page.getByTestId('backup-incremental').click()
    await expect.poll(() => page.getByTestId('backup-set').count(), { timeout: 60_000 }).toBe(3)
    await expect.poll(() => page.getByTestId('backup-outcome').textContent()).toMatch(/Backup succeeded/)
    await expect.poll(() => page.getByTestId('backup-sets').textContent()).toMatch(/↳ incremental/)
    await expect.poll(() => page.getByTestId('backup-sets').textContent()).toMatch(/changes in \d+ tx/)
    // An incremental's details show its changes and the tables they touched, not "0 B → … stored" of table data.
    const listed = /([\d,]+) changes in ([\d,]+) tx/.exec((await page.getByTestId('backup-sets').textContent()) ?? '')!
    await page.locator('[data-testid="backup-set"]', { hasText: '↳ incremental' }).first().click()
    await expect.poll(() => page.getByTestId('details-changes').textContent()).toMatch(/^[\d,]+ transaction\(s\): [\d,]+ inserted/)
    expect(await page.getByTestId('set-details').textContent()).not.toMatch(/table data/)
    const details = (await page.getByTestId('details-changes').textContent())!
    expect(details).toContain(`${listed[2]} transaction(s)`)
    const [ins, upd, del] = [/([\d,]+) inserted/, /([\d,]+) updated/, /([\d,]+) deleted/].map((r) =>
      Number(r.exec(details)![1].replace(/,/g, '')),
    )
    expect(ins + upd + del).toBe(Number(listed[1].replace(/,/g, '')))
    await expect.poll(() => page.getByTestId('details-changed-tables').locator('li').count()).toBeGreaterThan(0)
    await page.getByTestId('set-details').screenshot({ path: join(shots, `${face}-incremental-details.png`) })
    await page.screenshot({ path: join(shots, `${face}-backups.png`) })
  })

  it('previews retention, and deletes the older chain only after "delete" is typed', async () => {
    await page.getByTestId('backup-now').click()
    // The new full closes the live chain first with a last incremental (so no moment between the chains is lost).
    await expect.poll(() => page.getByTestId('backup-set').count(), { timeout: 60_000 }).toBe(5)
    await expect
      .poll(() => page.getByTestId('backup-outcome').textContent())
      .toMatch(/previous chain was closed first by a last incremental/)
    await page.getByTestId('retention-preview').click()
    // Keep the newest full only: the first lone full and the older chain (its full and two incrementals) go.
    await expect.poll(() => page.getByTestId('retention-delete').locator('li').count()).toBe(4)
    expect(await page.getByTestId('retention-apply').isDisabled()).toBe(true)
    await page.getByLabel('Type delete to confirm').fill('delete')
    await page.getByTestId('retention-apply').click()
    await expect.poll(() => page.getByTestId('backup-set').count(), { timeout: 30_000 }).toBe(1)
    await expect.poll(() => page.getByTestId('retention').textContent()).toMatch(/Nothing to delete/)
    await expect.poll(() => page.getByTestId('set-details').count()).toBe(0) // the deleted set's details closed
    await page.getByTestId('retention').scrollIntoViewIfNeeded()
    await page.screenshot({ path: join(shots, `${face}-retention.png`) })
  })

  it('restores chosen tables in place through the wizard, shows the check, undoes it, and proves the backup with a restore test', async () => {
    await page.getByTestId('nav-restore').click()
    await page.getByTestId('restore-chain').first().waitFor({ timeout: 10_000 })
    await page.getByTestId('restore-marker').first().click()
    await expect.poll(() => page.getByTestId('restore-chosen').textContent(), { timeout: 20_000 }).toMatch(/Chosen: full backup/)
    await page.screenshot({ path: join(shots, `${face}-restore-point.png`) })
    await page.getByTestId('restore-next').click()
    // Scope: one table; the wizard names the tables foreign keys tie it to and offers them.
    await page.getByTestId('scope-chosen').check()
    await page.getByLabel('Restore public.subscriptions').check()
    await expect
      .poll(() => page.getByTestId('scope-related').textContent())
      .toMatch(/public\.plans.*public\.teams|public\.teams.*public\.plans/)
    await page.screenshot({ path: join(shots, `${face}-restore-scope.png`) })
    await page.getByTestId('restore-next').click()
    await page.getByTestId('restore-target').waitFor()
    await page.getByTestId('restore-next').click()
    // Preview: preflight and rows now vs after, before anything changes.
    await expect.poll(() => page.getByTestId('restore-preflight').textContent(), { timeout: 20_000 }).toMatch(/Schema compatible/)
    await expect.poll(() => page.getByTestId('restore-rows').textContent()).toMatch(/public\.subscriptions/)
    await page.screenshot({ path: join(shots, `${face}-restore-preview.png`), fullPage: true })
    await page.getByTestId('restore-next').click()
    const name = (await page.getByTestId('restore-confirm-name').getAttribute('placeholder'))!.replace(/^type (\S+) to confirm$/, '$1')
    expect(await page.getByTestId('restore-start').isDisabled()).toBe(true)
    await page.getByTestId('restore-confirm-name').fill(name)
    // A writer's lock keeps the restore waiting for its SHARE lock, so the page is surely reloaded while it runs.
    const writer = new pg.Client({ connectionString: sandboxUrl(services.dataDir) })
    await writer.connect()
    await writer.query('BEGIN')
    await writer.query('LOCK TABLE public.subscriptions IN ROW EXCLUSIVE MODE')
    try {
      await page.getByTestId('restore-start').click()
      await page.getByTestId('restore-progress').waitFor({ timeout: 10_000 })
      // After a reload the wizard shows the running restore (progress, Cancel), not step 1.
      await page.reload()
      await page.getByTestId('restore-progress').waitFor({ timeout: 15_000 })
      await expect.poll(() => page.locator('[data-testid="restore-steps"] li.current').textContent()).toBe('Restore')
      expect(await page.getByTestId('restore-cancel').isVisible()).toBe(true)
      await page.screenshot({ path: join(shots, `${face}-restore-reattached.png`) })
    } finally {
      await writer.query('ROLLBACK')
      await writer.end()
    }
    await expect.poll(() => page.getByTestId('restore-result').textContent(), { timeout: 60_000 }).toMatch(/Restore done: check passed/)
    await expect.poll(() => page.getByTestId('check-tables').textContent()).toMatch(/public\.subscriptions.*matches the backup/)
    expect(await page.getByTestId('restore-result').textContent()).toMatch(/[\d,]+ rows \(.+\) loaded into \S+ in /)
    await page.screenshot({ path: join(shots, `${face}-restore-result.png`), fullPage: true })
    // The restore id the CLI's undo needs is on the page, with the command and a copy button.
    const restoreId = (await page.getByTestId('restore-id').locator('code').textContent())!
    expect(restoreId).toMatch(/^[0-9a-f-]{36}$/)
    expect(await page.getByTestId('restore-ids').textContent()).toContain(`examforge-ops restore --undo ${restoreId}`)
    await page.getByTestId('restore-id').locator('button.copy').click()
    await expect.poll(() => page.getByTestId('restore-id').locator('button.copy').textContent()).toBe('copied')
    // Undo puts back what the restore replaced.
    await page.getByTestId('restore-undo').click()
    // It says what the undo costs: rows written since the restore are replaced (kept in a safety backup first).
    expect(await page.locator('form', { has: page.getByTestId('undo-confirm-name') }).textContent()).toMatch(
      /rows written to them since are replaced.*safety backup of the tables as they are now is taken first/,
    )
    await page.getByTestId('undo-confirm-name').fill(name)
    await page.getByTestId('undo-start').click()
    await expect.poll(() => page.getByTestId('restore-result').textContent(), { timeout: 60_000 }).toMatch(/Undo done: check passed/)
    // A restore test proves the newest backup restorable; history and the Backups page say so.
    await page.getByTestId('restore-test').click()
    await expect.poll(() => page.getByTestId('restore-test-outcome').textContent(), { timeout: 60_000 }).toMatch(/Restore test succeeded/)
    await expect.poll(() => page.getByTestId('restore-history-table').textContent()).toMatch(/restore-test.*undo.*restore/s)
    // The undone restore says so, and is not offered for undo again.
    await expect.poll(() => page.getByTestId('restore-undone').textContent()).toMatch(/^undone by [0-9a-f-]{36}$/)
    await page.getByTestId('restore-history').scrollIntoViewIfNeeded()
    await page.screenshot({ path: join(shots, `${face}-restore-history.png`) })
    // The same id in the history, to copy.
    expect(await page.getByTestId('history-restore-id').locator('code').allTextContents()).toContain(restoreId)
    await page.getByTestId('nav-backups').click()
    await expect.poll(() => page.getByTestId('proven').count(), { timeout: 10_000 }).toBe(1)
    // The safety backups (the restore's, and the undo's own) are listed marked as such, and the list can hide them.
    const all = await page.getByTestId('backup-set').count()
    const safety = page.locator('[data-testid="backup-set"][data-type="safety"]')
    await expect.poll(() => safety.count()).toBeGreaterThanOrEqual(1)
    const n = await safety.count()
    expect(await safety.getByTestId('safety-mark').allTextContents()).toEqual(Array(n).fill('safety backup'))
    expect(await page.locator('[data-testid="backup-set"]:not([data-type="safety"])').getByTestId('safety-mark').count()).toBe(0)
    await page.getByTestId('hide-safety').locator('input').check()
    await expect.poll(() => page.getByTestId('backup-set').count()).toBe(all - n)
    expect(await safety.count()).toBe(0)
    await page.getByTestId('hide-safety').locator('input').uncheck()
    await expect.poll(() => page.getByTestId('backup-set').count()).toBe(all)
  })

  it('follows the system colour scheme, and the toggle overrides it (light and dark, 900 and 1440 px)', async () => {
    const theme = () => page.evaluate(() => document.documentElement.dataset.theme)
    const background = () => page.evaluate(() => getComputedStyle(document.body).backgroundColor)
    await page.emulateMedia({ colorScheme: 'dark' })
    await expect.poll(theme).toBe('dark')
    // The system switches to light while the page is open: the console follows at once.
    await page.emulateMedia({ colorScheme: 'light' })
    await expect.poll(theme).toBe('light')
    expect(await background()).toBe('rgb(246, 248, 250)')
    await expect.poll(() => page.getByTestId('theme-toggle').textContent()).toBe('Theme: system')
    for (const [name, width] of [
      ['overview', 1440],
      ['backups', 900],
      ['restore', 900],
    ] as const) {
      await page.setViewportSize({ width, height: 860 })
      await page.getByTestId(`nav-${name}`).click()
      await page.screenshot({ path: join(shots, `${face}-light-${name}-${width}.png`) })
    }
    await page.setViewportSize({ width: 1320, height: 860 })
    // System → light (kept) → dark (kept, whatever the system says) → system again.
    await page.getByTestId('theme-toggle').click()
    await expect.poll(() => page.getByTestId('theme-toggle').textContent()).toBe('Theme: light')
    await page.getByTestId('theme-toggle').click()
    await expect.poll(theme).toBe('dark')
    expect(await background()).toBe('rgb(15, 20, 25)')
    await page.reload()
    await expect.poll(theme).toBe('dark') // the choice outlives a reload
    await page.getByTestId('theme-toggle').click()
    await expect.poll(() => page.getByTestId('theme-toggle').textContent()).toBe('Theme: system')
    await page.emulateMedia({ colorScheme: 'dark' })
    await expect.poll(theme).toBe('dark')
  })

  it('regenerates the sandbox data as a job with live progress', async () => {
    await page.getByTestId('nav-settings').click()
    await page.getByLabel('Scale').fill('0.8')
    await page.getByRole('button', { name: 'Regenerate sandbox data' }).click()
    await page.getByTestId('job-progress').waitFor({ timeout: 10_000 })
    await expect
      .poll(() => page.getByTestId('job-progress').textContent(), { timeout: 10_000, interval: 50 })
      .toMatch(/generating .* of [\d,]+ rows/)
    await page.getByTestId('job-progress').scrollIntoViewIfNeeded()
    await page.screenshot({ path: join(shots, `${face}-job-progress.png`) })
    await expect.poll(() => page.getByTestId('job-outcome').textContent(), { timeout: 60_000 }).toMatch(/sandbox.seed: succeeded/)
  })

  return {
    get services() {
      return services
    },
    get page() {
      return page
    },
  }
}

describe('the console in Chromium, served by the headless host', () => {
  let host: ServedHost
  let browser: Browser
  let services: Services
  let launchUrl = ''
  const ctx = consoleSpec('chromium', async () => {
    needBuilt()
    services = await startServices()
    const startedAt = Date.now()
    // Exactly what `npm run serve` runs, on a free port.
    host = await serveHost(hostEnv(services.env))
    browser = await launchChromium()
    // An operator's dark desktop (headless Chromium reports "light" by default); the theme test switches it.
    const page = await browser.newPage({ viewport: { width: 1320, height: 860 }, colorScheme: 'dark' })
    launchUrl = host.url
    await page.goto(host.url)
    return { page, services, startedAt }
  })
  afterAll(async () => {
    await browser?.close()
    await host?.stop()
    await ctx.services?.close()
  })

  it('the launch link cannot be used twice: another browser gets 401', async () => {
    const other = await browser.newContext()
    const page = await other.newPage()
    const resp = await page.goto(launchUrl)
    expect(resp?.status()).toBe(401)
    expect(await page.textContent('body')).toMatch(/already used/)
    await other.close()
  })

  it('the session is bound to its tab: another tab with the same cookie is not signed in; Sign out ends the session', async () => {
    const page = ctx.page
    // Same browser, same cookie, but not the tab's secret: the host's page says what to do.
    const otherContext = await browser.newContext()
    await otherContext.addCookies(await page.context().cookies())
    const other = await otherContext.newPage()
    await other.goto(new URL('/', launchUrl).toString())
    await expect.poll(() => other.url()).toMatch(/\/signed-out$/)
    expect(await other.textContent('body')).toMatch(/examforge-ops open/)
    await otherContext.close()
    // The signed-in tab still works, then signs out.
    await page.getByTestId('nav-health').click()
    await page.getByTestId('sign-out').click()
    await expect.poll(() => page.url()).toMatch(/\/signed-out$/)
    expect(await page.textContent('body')).toMatch(/not signed in/)
    const resp = await page.goto(new URL('/', launchUrl).toString())
    expect(resp?.status()).toBe(401)
  })
})

const electron = electronBinary()
if (!electron) {
  describe('the console in Electron', () => {
    it.skip('skipped: no Electron binary has been downloaded here (the electron package fetches it on first use, which needs internet); the shell is covered by electron-shell.test.ts with a stand-in module', () => {})
  })
  console.log(
    '[e2e] Electron specs skipped: no Electron binary has been downloaded (run "node node_modules/electron/install.js" with internet to run them).',
  )
} else {
  describe('the console in Electron', () => {
    let app: ElectronApplication
    const ctx = consoleSpec('electron', async () => {
      const services = await startServices()
      const startedAt = Date.now()
      app = await _electron.launch({ executablePath: electron, args: [root, '--no-sandbox'], env: hostEnv(services.env) })
      const page = await app.firstWindow()
      return { page, services, startedAt }
    })
    afterAll(async () => {
      await app?.close()
      await ctx.services?.close()
    })
  })
}

import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { sandboxClusterDir } from '../../src/core/sandbox/cluster'
import { startHttp } from '../helpers/http'
import { hostEnv, launchChromium, needBuilt, serveHost, shots, type ServedHost } from '../helpers/served'
import { waitFor } from '../helpers/wait'

/**
 * An operator writes a rule in the editor, sees its backtest, saves it, and watches it fire and resolve in
 * the sandbox: the series is the sandbox database's connection count, which the test moves by opening real
 * connections (nothing simulated), while a loopback receiver gets the Alertmanager webhook.
 */
describe('alerts end to end in Chromium, served by the headless host', () => {
  let host: ServedHost
  let browser: Browser
  let page: Page
  let hook: Awaited<ReturnType<typeof startHttp>>
  const received: { status: string; alerts: { labels: Record<string, string>; status: string }[] }[] = []
  const dataDir = mkdtempSync(join(tmpdir(), 'ops-e2e-alerts-'))
  chmodSync(dataDir, 0o755)

  beforeAll(async () => {
    needBuilt()
    mkdirSync(shots, { recursive: true })
    hook = await startHttp((req, res) => {
      let b = ''
      req.on('data', (c) => (b += c))
      req.on('end', () => {
        received.push(JSON.parse(b))
        res.writeHead(200).end()
      })
    })
    host = await serveHost(
      hostEnv({
        OPS_DATA_DIR: dataDir,
        METRICS_INTERVAL_S: '1',
        HEALTH_INTERVAL_S: '5',
        HOST_LOAD_WARN_PER_CORE: '10000',
        SANDBOX_SCALE: '0.05',
        SANDBOX_TRAFFIC: 'off',
        ALERT_WEBHOOK_URL: `${hook.url}/alertmanager`,
        ALERT_GROUP_WAIT: '0s',
        ALERT_GROUP_INTERVAL: '0s',
        ALERT_DESKTOP: 'off',
      }),
      { timeoutMs: 90_000 },
    )
    const url = host.url
    browser = await launchChromium()
    page = await browser.newPage({ viewport: { width: 1440, height: 900 } })
    await page.goto(url)
  })
  afterAll(async () => {
    await browser?.close()
    await host?.stop()
    await hook?.close()
    const cluster = sandboxClusterDir(dataDir)
    if (cluster) rmSync(cluster, { recursive: true, force: true })
    rmSync(dataDir, { recursive: true, force: true })
  })

  it('write a rule, backtest it, save it, see it fire and resolve, with the webhook received', async () => {
    await page.getByTestId('nav-alerts').click()
    await page.getByTestId('rule-cpu_high').waitFor({ timeout: 30_000 })
    await expect.poll(() => page.getByTestId('evaluator').textContent(), { timeout: 30_000 }).toMatch(/by this console/)

    const sandbox = (JSON.parse(readFileSync(join(dataDir, 'sandbox', 'running.json'), 'utf8')) as { url: string }).url
    const count = async () => {
      const c = new pg.Client({ connectionString: sandbox })
      await c.connect()
      const { rows } = await c.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE backend_type = 'client backend'`)
      await c.end()
      return rows[0].n
    }
    const threshold = (await count()) + 10

    // Stored rules of other kinds backtest too: availability over the stored health results, a forecast over
    // the stored disk series; a backup-fact rule says why it cannot be.
    await page.getByTestId('backtest-rule-postgres_down').click()
    await expect
      .poll(() => page.getByTestId('rule-backtest-result').textContent(), { timeout: 30_000 })
      .toMatch(/Over the last 7 days \([1-9]\d* stored points\), this rule would have fired 0 times/)
    await page.getByTestId('backtest-rule-disk_full_soon').click()
    await expect
      .poll(() => page.getByTestId('rule-backtest').textContent(), { timeout: 30_000 })
      .toMatch(/Backtest of disk_full_soon.*Over the last 7 days \(\d+ stored points.*would have fired \d+ time/s)
    await page.getByTestId('rule-backtest').screenshot({ path: join(shots, 'alerts-rule-backtest-1440.png') })
    await page.getByTestId('backtest-rule-backup_slot_wal').click()
    await expect
      .poll(() => page.getByTestId('rule-backtest').textContent(), { timeout: 30_000 })
      .toMatch(/Backtest of backup_slot_wal.*past values .* are not stored, so a backup rule cannot be backtested/s)

    await page.getByTestId('new-rule').click()
    await page.getByTestId('rule-name').fill('db_connections_high')
    await page.getByTestId('rule-series').selectOption('pg.connections')
    await page.getByTestId('rule-threshold').fill(String(threshold))
    await page.getByTestId('rule-for').fill('0s')
    await page.getByTestId('backtest-7').click()
    await expect
      .poll(() => page.getByTestId('backtest-result').textContent(), { timeout: 30_000 })
      .toMatch(/Over the last 7 days .* would have fired 0 times/)
    await page.screenshot({ path: join(shots, 'alerts-editor-1440.png'), fullPage: true })
    await page.getByTestId('rule-save').click()
    await page.getByTestId('rule-db_connections_high').waitFor()

    // Move the series: 15 more connections to the sandbox database.
    const clients: pg.Client[] = []
    for (let i = 0; i < 15; i++) {
      const c = new pg.Client({ connectionString: sandbox })
      await c.connect()
      clients.push(c)
    }
    try {
      await expect
        .poll(
          () =>
            page
              .getByTestId('alert-db_connections_high')
              .getAttribute('data-phase')
              .catch(() => null),
          { timeout: 30_000 },
        )
        .toBe('firing')
      await waitFor(
        () => received.find((r) => r.status === 'firing' && r.alerts[0].labels.alertname === 'db_connections_high'),
        'the firing webhook',
      )
      await expect.poll(() => page.title(), { timeout: 10_000 }).toMatch(/^\(\d+\) ExamForge Ops/)
      await page.screenshot({ path: join(shots, 'alerts-firing-1440.png'), fullPage: true })
      await page.setViewportSize({ width: 900, height: 900 })
      await page.screenshot({ path: join(shots, 'alerts-firing-900.png'), fullPage: true })
      await page.setViewportSize({ width: 1440, height: 900 })
      await page.getByTestId('nav-overview').click()
      await expect.poll(() => page.getByTestId('overview-alerts').textContent(), { timeout: 10_000 }).toMatch(/db_connections_high/)
      await page.screenshot({ path: join(shots, 'alerts-overview-1440.png') })
      await page.getByTestId('nav-alerts').click()
    } finally {
      await Promise.all(clients.map((c) => c.end().catch(() => {})))
    }

    await expect.poll(() => page.getByTestId('alert-db_connections_high').count(), { timeout: 30_000 }).toBe(0)
    await waitFor(
      () => received.find((r) => r.status === 'resolved' && r.alerts[0].labels.alertname === 'db_connections_high'),
      'the resolved webhook',
      30_000,
    )
    await expect
      .poll(() => page.getByTestId('transitions').textContent(), { timeout: 20_000 })
      .toMatch(/db_connections_high.*firing → resolved/s)
    await expect
      .poll(() => page.getByTestId('deliveries').textContent(), { timeout: 20_000 })
      .toMatch(/webhook.*db_connections_high.*resolved.*sent/s)
    // Exactly one firing and one resolved notice for the rule.
    expect(received.filter((r) => r.alerts[0].labels.alertname === 'db_connections_high').map((r) => r.status)).toEqual([
      'firing',
      'resolved',
    ])
    await page.screenshot({ path: join(shots, 'alerts-resolved-1440.png'), fullPage: true })
  })
})

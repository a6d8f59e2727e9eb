import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { createServer, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { createDatabase } from '../helpers/db'
import { hostEnv, launchChromium, needBuilt, serveHost, shots, type ServedHost } from '../helpers/served'

/** The host whose ingest address is taken by another process: the console says so on Health and on Errors. */
describe('the error ingest down, as the console shows it', () => {
  let host: ServedHost
  let squatter: Server
  let port = 0
  let browser: Browser
  let page: Page
  let db: Awaited<ReturnType<typeof createDatabase>>
  let dataDir = ''

  beforeAll(async () => {
    needBuilt()
    mkdirSync(shots, { recursive: true })
    squatter = createServer()
    await new Promise<void>((r) => squatter.listen(0, '127.0.0.1', () => r()))
    port = (squatter.address() as { port: number }).port
    db = await createDatabase(inject('pgUrl'), 'errors_down_e2e')
    dataDir = mkdtempSync(join(tmpdir(), 'ops-e2e-errors-down-'))
    host = await serveHost(
      hostEnv({
        OPS_DATA_DIR: dataDir,
        DATABASE_URL: db.url,
        ERROR_INGEST_ADDR: `127.0.0.1:${port}`,
        HOST_LOAD_WARN_PER_CORE: '10000',
      }),
    )
    const url = host.url
    browser = await launchChromium()
    page = await (await browser.newContext({ viewport: { width: 1440, height: 900 }, colorScheme: 'light' })).newPage()
    await page.goto(url)
  })
  afterAll(async () => {
    await browser?.close()
    await host?.stop()
    squatter?.close()
    await db?.drop()
    if (dataDir) rmSync(dataDir, { recursive: true, force: true })
  })

  it('Health: the Error ingest tile is down and says why; Errors: no DSN offered as if it were served', async () => {
    await page.getByTestId('nav-health').click()
    const tile = page.getByTestId('tile-error_ingest')
    await expect.poll(() => tile.textContent(), { timeout: 30_000 }).toMatch(/Error ingest/)
    await expect
      .poll(() => tile.textContent(), { timeout: 30_000 })
      .toMatch(/not listening: it could not listen on 127\.0\.0\.1:\d+ \(.*EADDRINUSE/)
    expect(await tile.getAttribute('class')).toMatch(/unhealthy/)
    await page.screenshot({ path: join(shots, 'health-ingest-down-1440-light.png') })
    await page.setViewportSize({ width: 900, height: 900 })
    await page.screenshot({ path: join(shots, 'health-ingest-down-900-light.png') })

    await page.getByTestId('nav-errors').click()
    const dsn = page.getByTestId('dsn')
    await expect.poll(() => dsn.getAttribute('data-where')).toBe('failed')
    expect(await page.getByTestId('dsn-where').textContent()).toMatch(
      new RegExp(
        `^Nothing takes events now: this console's ingest is not listening \\(it could not listen on 127\\.0\\.0\\.1:${port} \\(.*EADDRINUSE.*\\)\\)\\. Set ERROR_INGEST_ADDR to a free address and restart`,
      ),
    )
    await page.screenshot({ path: join(shots, 'errors-ingest-down-900-light.png') })
    await page.emulateMedia({ colorScheme: 'dark' })
    await page.setViewportSize({ width: 1440, height: 900 })
    await page.screenshot({ path: join(shots, 'errors-ingest-down-1440-dark.png') })
  })
})

// From `npm run serve` to a green Health page on the sandbox, as an operator would see it in a browser.
/* global document, location -- these run inside the page, through page.evaluate */
import { spawn } from 'node:child_process'
import { chmodSync, mkdtempSync, rmSync } from 'node:fs'
import { createHash } from 'node:crypto'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium } from 'playwright-core'

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'

async function once(root, dataDir) {
  const t0 = performance.now()
  const env = { PATH: process.env.PATH, HOME: process.env.HOME, OPS_DATA_DIR: dataDir, HEALTH_INTERVAL_S: '30' }
  const child = spawn(npm, ['run', '--silent', 'serve', '--', '--port', '0'], { cwd: root, env, detached: true })
  let out = ''
  child.stdout.on('data', (d) => (out += d))
  child.stderr.on('data', (d) => (out += d))
  let url
  while (!(url = /http:\/\/127\.0\.0\.1:\d+\/\?token=\S+/.exec(out)?.[0])) {
    if (child.exitCode !== null) throw new Error(`serve exited: ${out}`)
    if (performance.now() - t0 > 120_000) throw new Error(`no URL after 120 s: ${out}`)
    await new Promise((r) => setTimeout(r, 20))
  }
  const urlPrintedMs = performance.now() - t0
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  })
  const page = await browser.newPage()
  await page.goto(url)
  await page.evaluate(() => (location.hash = '/health'))
  // Green: every configured service healthy (the sandbox configures PostgreSQL, the backup folder and the host).
  await page.waitForFunction(
    () => {
      const tiles = [...document.querySelectorAll('[data-testid^="tile-"]')]
      const configured = tiles.filter((t) => t.getAttribute('data-status') !== 'not_configured')
      return configured.length >= 3 && configured.every((t) => t.getAttribute('data-status') === 'healthy')
    },
    null,
    { timeout: 120_000, polling: 20 },
  )
  const greenMs = performance.now() - t0
  await browser.close()
  process.kill(-child.pid, 'SIGTERM')
  await new Promise((r) => child.once('exit', r))
  return { urlPrintedMs: Math.round(urlPrintedMs), greenHealthPageMs: Math.round(greenMs) }
}

export async function startup({ root }) {
  const dataDir = mkdtempSync(join(tmpdir(), 'ops-bench-startup-'))
  chmodSync(dataDir, 0o755)
  try {
    // Cold: a newcomer's first start (initdb, seed the sandbox). Warm: every start after.
    const cold = await once(root, dataDir)
    const warm = []
    for (let i = 0; i < 3; i++) warm.push(await once(root, dataDir))
    const median = (xs) => xs.map((x) => x.greenHealthPageMs).sort((a, b) => a - b)[Math.floor(xs.length / 2)]
    return {
      what: 'time from spawning `npm run serve` (sandbox, no configuration) to the Health page showing every configured service green in Chromium',
      cold,
      warm,
      warmMedianGreenMs: median(warm),
    }
  } finally {
    const hash = createHash('sha256').update(dataDir).digest('hex').slice(0, 12)
    rmSync(join('/var/tmp', `examforge-ops-sandbox-${hash}`), { recursive: true, force: true })
    rmSync(dataDir, { recursive: true, force: true })
  }
}

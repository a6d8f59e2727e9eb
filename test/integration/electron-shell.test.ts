import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import Module, { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { ipcChannel, methodNames } from '../../src/shared/contract'
import { createDatabase, query } from '../helpers/db'
import { createElectronStandIn } from '../helpers/electron-stand-in'
import { waitFor } from '../helpers/wait'

const root = resolve(__dirname, '../..')
const mainBundle = join(root, 'out/main/index.js')

describe('the Electron shell, loaded from the built bundle with a stand-in electron module', () => {
  const userData = mkdtempSync(join(tmpdir(), 'ops-electron-'))
  const stand = createElectronStandIn({ userData, backend: 'basic_text' })
  const { rec } = stand
  let db: Awaited<ReturnType<typeof createDatabase>>
  const load = (Module as unknown as { _load: (req: string, ...rest: unknown[]) => unknown })._load
  let dbusBefore: string | undefined

  beforeAll(async () => {
    if (!existsSync(mainBundle)) throw new Error('The Electron main bundle is not built: run "npm run build" (npm test does it first).')
    db = await createDatabase(inject('pgUrl'), 'electron')
    process.env.DATABASE_URL = db.url
    process.env.OPS_DATA_DIR = userData
    process.env.HEALTH_INTERVAL_S = '3600'
    // A desktop session with a StatusNotifier host, as on a Linux desktop (the tray is shown only there).
    dbusBefore = process.env.DBUS_SESSION_BUS_ADDRESS
    process.env.DBUS_SESSION_BUS_ADDRESS = 'unix:path=/run/user/1000/bus'
    // A settings file with a value the console cannot use: the shell starts anyway, with the default.
    writeFileSync(join(userData, 'settings.json'), JSON.stringify({ METRICS_INTERVAL_S: '0' }), { mode: 0o600 })
    ;(Module as unknown as { _load: unknown })._load = function (req: string, ...rest: unknown[]) {
      return req === 'electron' ? stand.module : load.call(this, req, ...rest)
    }
    createRequire(import.meta.url)(mainBundle)
    // The shell starts core once Electron is ready: wait until calls are answered.
    await waitFor(async () => ((await call('app.info', {})) as { ok: boolean }).ok, 'the shell to start core')
  })
  afterAll(async () => {
    // Quit as Electron would: before-quit drains core, then quits.
    const event = {
      prevented: false,
      preventDefault() {
        this.prevented = true
      },
    }
    const quitsBefore = rec.quitCalls
    stand.module.app.emit('before-quit', event)
    expect(event.prevented).toBe(true)
    await waitFor(() => rec.quitCalls > quitsBefore, 'the shell to quit after draining')
    ;(Module as unknown as { _load: unknown })._load = load
    if (dbusBefore === undefined) delete process.env.DBUS_SESSION_BUS_ADDRESS
    else process.env.DBUS_SESSION_BUS_ADDRESS = dbusBefore
    await db?.drop()
  })

  const win = () => rec.windows[0]
  const goodEvent = () => ({ sender: win().webContents, senderFrame: win().webContents.mainFrame })
  const call = (method: string, input: unknown, event: unknown = goodEvent()) =>
    rec.ipcHandlers.get(ipcChannel(method as never))!(event, input)

  it('opens one hardened window', () => {
    expect(rec.windows).toHaveLength(1)
    const prefs = win().options.webPreferences
    expect(prefs).toMatchObject({
      sandbox: true,
      contextIsolation: true,
      nodeIntegration: false,
      nodeIntegrationInWorker: false,
      webviewTag: false,
      webSecurity: true,
    })
    expect(existsSync(prefs.preload as string)).toBe(true)
    // The built UI comes from the app's own origin, not from file://.
    expect(win().loaded).toBe('app://console/index.html')
  })

  it('registers app:// as a privileged scheme before Electron is ready, and serves it once ready', () => {
    expect(rec.privilegedSchemes).toEqual([
      { schemes: [{ scheme: 'app', privileges: { standard: true, secure: true, supportFetchAPI: true } }], beforeReady: true },
    ])
    expect([...rec.protocolHandlers.keys()]).toEqual(['app'])
  })

  const fetchApp = (url: string, init?: RequestInit) => Promise.resolve(rec.protocolHandlers.get('app')!(new Request(url, init)))
  const renderer = join(root, 'out/renderer')

  it('serves index.html and its assets from the built renderer folder, with their content types and the CSP', async () => {
    const index = await fetchApp('app://console/index.html')
    expect(index.status).toBe(200)
    expect(index.headers.get('content-type')).toBe('text/html; charset=utf-8')
    expect(index.headers.get('x-content-type-options')).toBe('nosniff')
    expect(index.headers.get('content-security-policy')).toMatch(/default-src 'self'/)
    const html = await index.text()
    expect(html).toBe(readFileSync(join(renderer, 'index.html'), 'utf8'))
    expect(await (await fetchApp('app://console/')).text()).toBe(html)
    // Every asset the page names, resolved against app://console/index.html as Chromium would.
    const assets = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => new URL(m[1], 'app://console/index.html').href)
    expect(assets.some((a) => a.endsWith('.js'))).toBe(true)
    expect(assets.some((a) => a.endsWith('.css'))).toBe(true)
    for (const url of assets) {
      const r = await fetchApp(url)
      expect(r.status, url).toBe(200)
      expect(r.headers.get('content-type'), url).toBe(url.endsWith('.js') ? 'text/javascript; charset=utf-8' : 'text/css; charset=utf-8')
      const onDisk = readFileSync(join(renderer, new URL(url).pathname))
      expect(Buffer.from(await r.arrayBuffer()).equals(onDisk), url).toBe(true)
    }
    const head = await fetchApp('app://console/index.html', { method: 'HEAD' })
    expect(head.status).toBe(200)
    expect(await head.text()).toBe('')
    expect((await fetchApp('app://console/index.html', { method: 'POST', body: 'x' })).status).toBe(405)
  })

  it('answers 404 for paths that climb out of the renderer folder (plain or encoded), other hosts and unknown files', async () => {
    // Real files outside the renderer folder that a traversal would reach: the main bundle and package.json.
    expect(existsSync(join(root, 'out/main/index.js'))).toBe(true)
    const refused = [
      'app://console/../../etc/passwd',
      'app://console/%2e%2e/%2e%2e/etc/passwd',
      'app://console/..%2f..%2f..%2f..%2fetc%2fpasswd',
      'app://console/..%2fmain%2findex.js',
      'app://console/assets/..%2f..%2fmain%2findex.js',
      'app://console/%2e%2e%2f%2e%2e%2fpackage.json',
      'app://console/..%5c..%5cpackage.json',
      'app://console/%252e%252e%252fmain%252findex.js',
      'app://console/index.html%00.js',
      'app://console/%E0%A4%A',
      'app://console/missing.js',
      'app://console/assets',
      'app://console/assets/',
      'app://elsewhere/index.html',
    ]
    for (const url of refused) {
      const r = await fetchApp(url)
      expect(r.status, url).toBe(404)
      const body = await r.text()
      expect(body, url).toBe('Not found.')
    }
  })

  it('sends its own main frame only to app://console; other URLs of the main frame are refused by validSender', async () => {
    const top = win().webContents.mainFrame
    const original = top.url
    try {
      top.url = 'app://console/index.html#/backups'
      expect(await call('app.info', {})).toMatchObject({ ok: true })
      for (const url of [
        `file://${join(renderer, 'index.html')}`,
        'app://elsewhere/index.html',
        'app://console/other.html',
        'https://evil.example/index.html',
        'not a url',
      ]) {
        top.url = url
        expect(await call('app.info', {}), url).toMatchObject({ ok: false, error: { code: 'forbidden' } })
      }
    } finally {
      top.url = original
    }
  })

  it('sets a strict CSP on every response and grants no permission', () => {
    let headers: Record<string, string[]> = {}
    rec.headersHook!({ responseHeaders: {} }, (r) => (headers = (r as { responseHeaders: Record<string, string[]> }).responseHeaders))
    const csp = headers['Content-Security-Policy'][0]
    expect(csp).toMatch(/default-src 'self'/)
    expect(csp).toMatch(/script-src 'self'/)
    expect(csp).toMatch(/object-src 'none'/)
    expect(csp).toMatch(/frame-src 'none'/)
    expect(csp).toMatch(/frame-ancestors 'none'/)
    expect(csp).not.toMatch(/unsafe-eval/)
    let granted: boolean | null = null
    rec.permissionHandler!({}, 'media', (ok) => (granted = ok))
    expect(granted).toBe(false)
    // The renderer's own page carries a policy too (the browser face serves the same page).
    expect(readFileSync(join(root, 'out/renderer/index.html'), 'utf8')).toMatch(/Content-Security-Policy/)
  })

  it('locks navigation and window.open; only allowlisted links open, in the system browser', () => {
    const contents = win().webContents
    // As Electron 45 emits them: details with the url first (will-navigate also passes the url again).
    const navigate = (event: 'will-navigate' | 'will-frame-navigate', url: string, isMainFrame = true) => {
      let prevented = false
      contents.emit(event, { url, isMainFrame, isSameDocument: false, preventDefault: () => (prevented = true) }, url)
      return prevented
    }
    for (const event of ['will-navigate', 'will-frame-navigate'] as const) {
      for (const url of [
        'https://evil.example/',
        `file://${join(root, 'out/renderer/index.html')}`,
        'app://elsewhere/index.html',
        'http://127.0.0.1:7480/',
        'javascript:alert(1)',
        'not a url',
      ])
        expect(navigate(event, url, event === 'will-navigate'), `${event} ${url}`).toBe(true)
      expect(navigate(event, 'app://console/index.html'), `${event} in the app`).toBe(false)
      expect(navigate(event, 'app://console/index.html#/backups'), `${event} in the app`).toBe(false)
    }
    // A subframe (were one ever allowed) cannot leave the app's origin either.
    expect(navigate('will-frame-navigate', 'https://evil.example/frame', false)).toBe(true)
    let redirectPrevented = false
    contents.emit('will-redirect', { preventDefault: () => (redirectPrevented = true) })
    expect(redirectPrevented).toBe(true)
    let attachPrevented = false
    contents.emit('will-attach-webview', { preventDefault: () => (attachPrevented = true) })
    expect(attachPrevented).toBe(true)
    expect(contents.windowOpenHandler!({ url: 'https://evil.example/' })).toEqual({ action: 'deny' })
    expect(contents.windowOpenHandler!({ url: 'https://status.stripe.com/' })).toEqual({ action: 'deny' })
    expect(rec.openedExternal).toEqual(['https://status.stripe.com/'])
  })

  it('registers every contract method on IPC, and nothing else', () => {
    expect([...rec.ipcHandlers.keys()].sort()).toEqual(methodNames.map((m) => ipcChannel(m)).sort())
  })

  it('refuses calls from any frame but the console window', async () => {
    const other = new stand.FakeContents()
    other.mainFrame.url = 'https://evil.example/'
    expect(await call('app.info', {}, { sender: other, senderFrame: other.mainFrame })).toMatchObject({
      ok: false,
      error: { code: 'forbidden' },
    })
    const iframe = { url: win().webContents.mainFrame.url }
    expect(await call('app.info', {}, { sender: win().webContents, senderFrame: iframe })).toMatchObject({
      ok: false,
      error: { code: 'forbidden' },
    })
    expect(await call('app.info', {}, { sender: win().webContents, senderFrame: null })).toMatchObject({
      ok: false,
      error: { code: 'forbidden' },
    })
  })

  it('validates payloads before core sees them, and answers real calls', async () => {
    expect(await call('health.checkNow', { service: 'oracle' })).toMatchObject({ ok: false, error: { code: 'invalid_input' } })
    expect(await call('jobs.cancel', { jobId: 42 })).toMatchObject({ ok: false, error: { code: 'invalid_input' } })
    const r = (await call('health.checkNow', { service: 'postgres' })) as {
      ok: true
      value: { results: { service: string; status: string }[] }
    }
    expect(r.ok).toBe(true)
    expect(r.value.results.find((x) => x.service === 'postgres')!.status).toBe('healthy')
    const info = (await call('app.info', {})) as { value: { face: string; sandbox: { active: boolean } } }
    expect(info.value).toMatchObject({ face: 'electron', sandbox: { active: false } })
  })

  it('pushes events to the window, with no secret in them', async () => {
    await call('health.checkNow', {})
    const sent = win().webContents.sent
    expect(sent.some((s) => (s.payload as { event: string }).event === 'health.updated')).toBe(true)
    expect(JSON.stringify(sent)).not.toContain(new URL(db.url).password)
  })

  it('backs up from the window (compressing on threads of the bundle itself) and verifies the set', async () => {
    await query(
      db.url,
      `CREATE TABLE answers (id int PRIMARY KEY, body text); INSERT INTO answers SELECT g, repeat(md5(g::text), 20) FROM generate_series(1, 30000) g`,
    )
    const job = async (r: unknown) => {
      const { jobId } = (r as { ok: true; value: { jobId: string } }).value
      let info: { state: string; result?: unknown; error: unknown } | undefined
      await waitFor(async () => {
        const jobs = (await call('jobs.list', {})) as { value: { id: string; state: string; result?: unknown; error: unknown }[] }
        info = jobs.value.find((j) => j.id === jobId)
        return !!info && info.state !== 'running' && info.state !== 'queued'
      }, `job ${jobId}`)
      return info!
    }
    const backup = await job(await call('backups.start', { type: 'full' }))
    expect(backup.state, JSON.stringify(backup.error)).toBe('succeeded')
    const setId = (backup.result as { setId: string }).setId
    const detail = (await call('backups.get', { setId })) as { value: { tables: { name: string; rows: number }[] } }
    expect(detail.value.tables.find((t) => t.name === 'answers')?.rows).toBe(30000)
    const verify = await job(await call('backups.verify', { setId }))
    expect(verify.state, JSON.stringify(verify.error)).toBe('succeeded')
    expect(verify.result).toMatchObject({ ok: true })
  })

  it('refuses to persist a secret when safeStorage would only use basic_text, and says what to do', async () => {
    const r = (await call('settings.update', { key: 'STRIPE_SECRET_KEY', value: 'sk_test_never_plain_0001' })) as {
      ok: false
      error: { message: string }
    }
    expect(r.ok).toBe(false)
    expect(r.error.message).toMatch(/No OS keyring is available/)
    expect(existsSync(join(userData, 'secrets.bin'))).toBe(false)
  })

  it('with a real keyring backend, secrets are stored encrypted and never returned unmasked', async () => {
    stand.module.safeStorage.getSelectedStorageBackend = () => 'gnome_libsecret'
    const r = (await call('settings.update', { key: 'STRIPE_SECRET_KEY', value: 'sk_test_keyring_secret_0002' })) as { ok: boolean }
    expect(r.ok).toBe(true)
    const onDisk = readFileSync(join(userData, 'secrets.bin'))
    expect(onDisk.toString()).not.toContain('sk_test_keyring_secret_0002')
    expect(JSON.parse(stand.module.safeStorage.reveal(onDisk).text)).toEqual({ STRIPE_SECRET_KEY: 'sk_test_keyring_secret_0002' })
    expect(statSync(join(userData, 'secrets.bin')).mode & 0o777).toBe(0o600)
    const list = await call('settings.list', {})
    expect(JSON.stringify(list)).not.toContain('keyring_secret')
  })

  it('started despite a bad METRICS_INTERVAL_S in settings.json: the key is at its default and flagged with the file', async () => {
    const list = (await call('settings.list', {})) as { ok: true; value: { key: string; value: string; source: string; problem: string }[] }
    const m = list.value.find((s) => s.key === 'METRICS_INTERVAL_S')!
    expect(m).toMatchObject({ value: '5', source: 'default' })
    expect(m.problem).toContain(join(userData, 'settings.json'))
    expect(m.problem).toMatch(/METRICS_INTERVAL_S must be a number from 1 to 60; it is "0"/)
  })

  it('app.restart relaunches the desktop app (app.relaunch, then quit, which drains running jobs first)', async () => {
    const quitsBefore = rec.quitCalls
    const r = (await call('app.restart', {})) as { ok: true; value: { restarting: boolean; message: string } }
    expect(r.value).toMatchObject({ restarting: true })
    await waitFor(() => rec.relaunchCalls === 1 && rec.quitCalls === quitsBefore + 1, 'the shell to relaunch and quit')
  })

  it('app.saveFile asks where with the system save dialog and writes the file 0600 there; a cancelled dialog saves nothing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ops-save-'))
    const target = join(dir, 'chosen-name.html')
    writeFileSync(target, 'an older file the operator chose to replace', { mode: 0o644 })
    rec.nextSavePath = target
    const html = '<!doctype html><title>Redis down</title><p>Ünïcode ✓</p>'
    // A name with folders in it is offered as its last part only.
    const r = (await call('app.saveFile', { fileName: '../../etc/incident-redis.html', encoding: 'utf8', data: html })) as {
      ok: true
      value: { saved: boolean; path: string | null; message: string }
    }
    expect(r).toMatchObject({ ok: true, value: { saved: true, path: target } })
    expect(rec.saveDialogs.at(-1)!.window).toBe(win())
    expect(rec.saveDialogs.at(-1)!.options.defaultPath).toBe(join(userData, 'incident-redis.html'))
    expect(readFileSync(target, 'utf8')).toBe(html)
    expect(statSync(target).mode & 0o777).toBe(0o600)
    // Binary (a PDF) comes as base64 and is written as bytes; nothing half-written is left beside it.
    const pdf = Buffer.from([0x25, 0x50, 0x44, 0x46, 0x2d, 0x00, 0xff, 0x0a])
    rec.nextSavePath = join(dir, 'report.pdf')
    await call('app.saveFile', { fileName: 'report.pdf', encoding: 'base64', data: pdf.toString('base64') })
    expect(readFileSync(join(dir, 'report.pdf')).equals(pdf)).toBe(true)
    expect(readdirSync(dir).sort()).toEqual(['chosen-name.html', 'report.pdf'])
    // Cancel: nothing written, and the answer says so.
    const cancelled = (await call('app.saveFile', { fileName: 'x.json', encoding: 'utf8', data: '{}' })) as {
      value: { saved: boolean; message: string }
    }
    expect(cancelled.value).toMatchObject({ saved: false })
    expect(cancelled.value.message).toMatch(/Not saved/)
    expect(readdirSync(dir)).toHaveLength(2)
  })

  it('shows a tray with the firing count: red while a rule fires, grey once it resolves; its menu brings the window back', async () => {
    expect(rec.trays).toHaveLength(1)
    const tray = rec.trays[0]
    // Nothing fires yet (a default rule may be pending, which the tooltip adds and the icon shows amber).
    expect(tray.toolTip).toMatch(/^ExamForge Ops — no alert firing(, \d+ pending)?$/)
    expect(tray.image.centre).not.toBe('#d64545')
    // A rule that holds at once (CPU is always ≥ 0), saved through the window as an administrator would.
    const saved = (await call('alerts.saveRule', {
      rule: { name: 'tray_check', series: 'host.cpu_percent', op: '>=', threshold: 0, severity: 'info', channels: [] },
    })) as { ok: boolean; error?: unknown }
    expect(saved).toMatchObject({ ok: true })
    await waitFor(() => tray.toolTip.startsWith('ExamForge Ops — 1 alert firing'), 'the tray to count the firing alert')
    expect(tray.title).toBe('1')
    expect(tray.image.centre).toBe('#d64545')
    expect(tray.menu[0]).toMatchObject({ label: tray.toolTip, enabled: false })
    const shows = rec.windowShows
    tray.menu.find((m) => m.label === 'Show ExamForge Ops')!.click!()
    expect(rec.windowShows).toBe(shows + 1)
    expect((await call('alerts.deleteRule', { name: 'tray_check' })) as { ok: boolean }).toMatchObject({ ok: true })
    await waitFor(() => tray.toolTip.startsWith('ExamForge Ops — no alert firing'), 'the tray to go back to no alert firing')
    expect(tray.title).toBe('')
    expect(tray.image.centre).not.toBe('#d64545')
  })

  it('shows no tray where none can be seen (Linux without a session D-Bus)', async () => {
    const { createAlertTray, traySupported } = await import('../../src/main/tray')
    expect(traySupported('linux', {})).toBe(false)
    expect(traySupported('linux', { DBUS_SESSION_BUS_ADDRESS: 'unix:path=/x' })).toBe(true)
    expect(traySupported('darwin', {})).toBe(true)
    const before = rec.trays.length
    const parts = stand.module as unknown as Parameters<typeof createAlertTray>[0]
    expect(createAlertTray(parts, { show: () => {}, supported: false })).toBeNull()
    expect(rec.trays).toHaveLength(before)
  })
})

import { existsSync, mkdtempSync, readFileSync } from 'node:fs'
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

  beforeAll(async () => {
    if (!existsSync(mainBundle)) throw new Error('The Electron main bundle is not built: run "npm run build" (npm test does it first).')
    db = await createDatabase(inject('pgUrl'), 'electron')
    process.env.DATABASE_URL = db.url
    process.env.OPS_DATA_DIR = userData
    process.env.HEALTH_INTERVAL_S = '3600'
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
    stand.module.app.emit('before-quit', event)
    expect(event.prevented).toBe(true)
    await waitFor(() => rec.quitCalls > 0, 'the shell to quit after draining')
    ;(Module as unknown as { _load: unknown })._load = load
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
    expect(win().loaded).toBe(join(root, 'out/renderer/index.html'))
  })

  it('sets a strict CSP on every response and grants no permission', () => {
    let headers: Record<string, string[]> = {}
    rec.headersHook!({ responseHeaders: {} }, (r) => (headers = (r as { responseHeaders: Record<string, string[]> }).responseHeaders))
    const csp = headers['Content-Security-Policy'][0]
    expect(csp).toMatch(/default-src 'self'/)
    expect(csp).toMatch(/script-src 'self'/)
    expect(csp).toMatch(/object-src 'none'/)
    expect(csp).not.toMatch(/unsafe-eval/)
    let granted: boolean | null = null
    rec.permissionHandler!({}, 'media', (ok) => (granted = ok))
    expect(granted).toBe(false)
    // The renderer's own page carries the same policy for file:// loads.
    expect(readFileSync(join(root, 'out/renderer/index.html'), 'utf8')).toMatch(/Content-Security-Policy/)
  })

  it('locks navigation and window.open; only allowlisted links open, in the system browser', () => {
    const contents = win().webContents
    let prevented = false
    contents.emit('will-navigate', { preventDefault: () => (prevented = true) }, 'https://evil.example/')
    expect(prevented).toBe(true)
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
    expect(JSON.parse(stand.module.safeStorage.decryptString(onDisk))).toEqual({ STRIPE_SECRET_KEY: 'sk_test_keyring_secret_0002' })
    const list = await call('settings.list', {})
    expect(JSON.stringify(list)).not.toContain('keyring_secret')
  })
})

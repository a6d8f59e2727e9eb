import {
  app,
  BrowserWindow,
  dialog,
  ipcMain,
  Menu,
  nativeImage,
  Notification,
  protocol,
  safeStorage,
  session,
  Tray,
  type IpcMainInvokeEvent,
} from 'electron'
import os from 'node:os'
import { join } from 'node:path'
import { loadConfig } from '../core/config/config'
import { dispatch } from '../core/dispatch'
import { createLogger } from '../core/log/logger'
import { scrub } from '../core/log/scrub'
import { createOps, type Ops } from '../core/ops'
import { IPC_EVENT_CHANNEL, ipcChannel, methodNames } from '../shared/contract'
import { APP_INDEX_URL, APP_SCHEME, APP_SCHEME_PRIVILEGES, appProtocolHandler } from './app-protocol'
import { CSP, hardenSession, lockContents, webPreferences } from './hardening'
import { safeStorageSecrets } from './secrets'
import { createElectronPdfPrinter } from './pdf-printer'
import { createAlertTray } from './tray'
import { dialogSaveFile } from './save-file'

/** The Electron shell: adapts core to a window. It decides nothing itself. */
const log = createLogger({ scope: 'electron' })
let ops: Ops | null = null
let win: BrowserWindow | null = null
let startError: string | null = null
const rendererDir = join(__dirname, '../renderer')

// app:// must be known as a privileged (standard, secure) scheme before Electron is ready.
protocol.registerSchemesAsPrivileged([APP_SCHEME_PRIVILEGES])

/** The UI: the dev server while developing, else the built renderer served at app://console. */
const rendererUrl = () => (!app.isPackaged && process.env.ELECTRON_RENDERER_URL ? process.env.ELECTRON_RENDERER_URL : APP_INDEX_URL)

/** Only our own top frame may call core. */
export function validSender(event: IpcMainInvokeEvent): boolean {
  const frame = event.senderFrame
  if (!frame || !win || event.sender !== win.webContents || frame !== win.webContents.mainFrame) return false
  try {
    // The console's page (app://console/index.html, or the dev server's), whatever its #route.
    const expected = new URL(rendererUrl())
    const actual = new URL(frame.url)
    return actual.protocol === expected.protocol && actual.host === expected.host && actual.pathname === expected.pathname
  } catch {
    return false
  }
}

function registerIpc(getOps: () => Ops | null): void {
  const actor = { via: 'desktop', osUser: os.userInfo().username, email: null } as const
  for (const method of methodNames) {
    ipcMain.handle(ipcChannel(method), async (event, input: unknown) => {
      if (!validSender(event))
        return { ok: false, error: { code: 'forbidden', message: 'Calls are accepted only from the console window.' } }
      const o = getOps()
      if (startError) return { ok: false, error: { code: 'start_failed', message: startError } }
      if (!o) return { ok: false, error: { code: 'starting', message: 'The console is still starting; try again in a moment.' } }
      return dispatch(o, method, input, { actor })
    })
  }
}

async function createWindow(): Promise<void> {
  win = new BrowserWindow({
    width: 1320,
    height: 860,
    minWidth: 900,
    minHeight: 600,
    show: false,
    title: 'ExamForge Ops',
    backgroundColor: '#0f1419',
    autoHideMenuBar: true,
    webPreferences: webPreferences(join(__dirname, '../preload/index.js')),
  })
  win.on('ready-to-show', () => win?.show())
  win.on('closed', () => (win = null))
  await win.loadURL(rendererUrl())
}

async function start(): Promise<void> {
  protocol.handle(APP_SCHEME, appProtocolHandler(rendererDir, CSP))
  hardenSession(session.defaultSession)
  app.on('web-contents-created', (_e, contents) => lockContents(contents, rendererUrl))
  registerIpc(() => ops)
  const secrets = safeStorageSecrets(app.getPath('userData'), safeStorage, (m) => log.warn(m))
  let stored: Record<string, string> = {}
  try {
    stored = await secrets.load()
  } catch (e) {
    log.warn('stored secrets could not be read', { error: (e as Error).message })
  }
  const windowReady = createWindow()
  try {
    // Bad values in the settings file fall back to their defaults; bad environment values refuse, all listed.
    const config = loadConfig({ dataDir: process.env.OPS_DATA_DIR ?? app.getPath('userData'), secrets: stored })
    ops = await createOps({
      config,
      face: 'electron',
      log,
      secrets,
      // Incident reports print with Electron's own Chromium (an offscreen window), not a system browser.
      printPdf: createElectronPdfPrinter({ BrowserWindow, session }),
      // app.restart: before-quit drains running jobs, then the relaunched app starts with the saved settings.
      restart: () => {
        app.relaunch()
        app.quit()
      },
      // app.saveFile (incident exports): the system's save dialog, then a 0600 write.
      saveFile: dialogSaveFile({ dialog, window: () => win, folder: () => app.getPath('downloads') }),
    })
  } catch (e) {
    startError = scrub(`The console could not start: ${(e as Error).message}`)
    log.error(startError)
    await windowReady
    return
  }
  ops.events.onAny((event, payload) => win?.webContents.send(IPC_EVENT_CHANNEL, { event, payload }))
  ops.events.on('health.changed', (c) => {
    if (c.to === 'unhealthy' && Notification.isSupported())
      new Notification({ title: `ExamForge Ops: ${c.service} is unhealthy`, body: c.reason }).show()
  })
  // The alerts' desktop channel (never carries a secret: titles and summaries only).
  ops.events.on('alerts.notify', (n) => {
    if (Notification.isSupported()) new Notification({ title: `ExamForge Ops ${n.title}`, body: n.body }).show()
  })
  // The tray: the firing count from the store, at start, at every change and at every collection.
  const tray = createAlertTray(
    { Tray, Menu, nativeImage },
    {
      show: () => {
        if (!win) return void createWindow()
        if (win.isMinimized()) win.restore()
        win.show()
        win.focus()
      },
      warn: (m) => log.warn(m),
    },
  )
  if (tray) {
    const o = ops
    let reading = false
    const refresh = () => {
      if (reading) return
      reading = true
      void o.alerts
        .active()
        .then(
          (list) =>
            tray.update({
              firing: list.filter((a) => a.phase === 'firing').length,
              pending: list.filter((a) => a.phase === 'pending').length,
            }),
          () => {},
        )
        .finally(() => (reading = false))
    }
    refresh()
    o.events.on('alerts.changed', refresh)
    o.events.on('metrics.tick', refresh)
    app.on('will-quit', () => tray.destroy())
  }
  await windowReady
}

let quitting = false
app.on('before-quit', (event) => {
  if (quitting || !ops) return
  // Drain running jobs before the process goes.
  event.preventDefault()
  quitting = true
  void ops.close().finally(() => app.quit())
})
app.on('window-all-closed', () => {
  if (process.platform !== 'darwin') app.quit()
})
app.on('activate', () => {
  if (BrowserWindow.getAllWindows().length === 0) void createWindow()
})

if (!app.requestSingleInstanceLock()) app.quit()
else {
  app.on('second-instance', () => {
    if (win) {
      if (win.isMinimized()) win.restore()
      win.focus()
    }
  })
  app.whenReady().then(start, (e) => log.error('start failed', { error: String(e) }))
}

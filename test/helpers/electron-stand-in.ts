/**
 * A stand-in for the `electron` module, so the built main bundle can be loaded and inspected
 * where no Electron binary can be installed. It records what the shell asks of Electron.
 */
import type { SafeStorage } from 'electron'
import { EventEmitter } from 'node:events'

type Backend = ReturnType<SafeStorage['getSelectedStorageBackend']>

export type Handler = (event: unknown, ...args: unknown[]) => unknown

export function createElectronStandIn(o: { userData: string; backend: Backend }) {
  const rec = {
    windows: [] as FakeWindow[],
    ipcHandlers: new Map<string, Handler>(),
    headersHook: null as null | ((details: { responseHeaders: Record<string, string[]> }, cb: (r: unknown) => void) => void),
    permissionHandler: null as null | ((wc: unknown, permission: string, cb: (ok: boolean) => void) => void),
    openedExternal: [] as string[],
    notifications: [] as { title: string; body: string }[],
    trays: [] as FakeTray[],
    windowShows: 0,
    quitCalls: 0,
    relaunchCalls: 0,
    ready: false,
    privilegedSchemes: [] as { schemes: { scheme: string; privileges?: Record<string, boolean> }[]; beforeReady: boolean }[],
    protocolHandlers: new Map<string, (request: Request) => Response | Promise<Response>>(),
    /** What each save dialog was opened with (its window, options). */
    saveDialogs: [] as { window: unknown; options: { defaultPath?: string; title?: string } }[],
    /** What the next save dialog answers: the chosen path, or null for Cancel. */
    nextSavePath: null as string | null,
    /** Sessions made with session.fromPartition, by partition. */
    partitions: new Map<string, FakeSession>(),
    /** Each printToPDF: the window's URL, the options, and the requests its page made (allowed or cancelled). */
    prints: [] as { url: string; options: Record<string, unknown>; requests: { url: string; cancelled: boolean }[] }[],
    destroyedWindows: 0,
  }
  type BeforeRequest = (details: { url: string }, cb: (r: { cancel?: boolean }) => void) => void
  class FakeSession {
    beforeRequest: BeforeRequest | null = null
    permissionHandler: unknown = null
    constructor(
      readonly partition: string,
      readonly options: Record<string, unknown>,
    ) {}
    webRequest = {
      onBeforeRequest: (h: BeforeRequest) => {
        this.beforeRequest = h
      },
      onHeadersReceived: () => {},
    }
    setPermissionRequestHandler(h: unknown) {
      this.permissionHandler = h
    }
    setPermissionCheckHandler() {}
  }
  const app = Object.assign(new EventEmitter(), {
    isPackaged: false,
    getPath: (name: string) => (name === 'userData' ? o.userData : o.userData),
    // Ready on the next turn, as Electron is after the main script ran.
    whenReady: () =>
      Promise.resolve().then(() => {
        rec.ready = true
      }),
    requestSingleInstanceLock: () => true,
    quit: () => {
      rec.quitCalls++
    },
    relaunch: () => {
      rec.relaunchCalls++
    },
  })

  class FakeContents extends EventEmitter {
    owner: FakeWindow | null = null
    mainFrame = { url: '' }
    sent: { channel: string; payload: unknown }[] = []
    windowOpenHandler: ((d: { url: string }) => { action: string }) | null = null
    setWindowOpenHandler(h: (d: { url: string }) => { action: string }) {
      this.windowOpenHandler = h
    }
    send(channel: string, payload: unknown) {
      this.sent.push({ channel, payload })
    }
    /**
     * As Electron's printToPDF, done by a real Chromium (Playwright, CHROMIUM_PATH or /usr/bin/chromium): the
     * window's page loaded with its JavaScript setting, every request put to its session's onBeforeRequest
     * (cancelled ones aborted), then printed with the options mapped one to one (margins in inches).
     */
    async printToPDF(options: Record<string, unknown> & { margins?: Record<string, number>; pageSize?: string }): Promise<Buffer> {
      const w = this.owner
      if (!w || w.destroyed) throw new Error('Object has been destroyed')
      if (!w.loaded) throw new Error('printToPDF before anything was loaded')
      const { chromium } = await import('playwright-core')
      const prefs = w.options.webPreferences
      const ses = prefs.session as FakeSession | undefined
      const record = { url: w.loaded, options, requests: [] as { url: string; cancelled: boolean }[] }
      rec.prints.push(record)
      const browser = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium' })
      try {
        const context = await browser.newContext({ javaScriptEnabled: prefs.javascript !== false })
        await context.route('**/*', async (route) => {
          const url = route.request().url()
          let cancel = false
          if (ses?.beforeRequest) await new Promise<void>((done) => ses.beforeRequest!({ url }, (r) => ((cancel = !!r.cancel), done())))
          const seen = record.requests.find((x) => x.url === url)
          if (seen) seen.cancelled = cancel
          else record.requests.push({ url, cancelled: cancel })
          return cancel ? route.abort('blockedbyclient') : route.continue()
        })
        const page = await context.newPage()
        page.on('request', (r) => {
          // file:// requests may not pass through the route: recorded here once.
          if (r.url().startsWith('file:') && !record.requests.some((x) => x.url === r.url()))
            record.requests.push({ url: r.url(), cancelled: false })
        })
        await page.goto(w.loaded, { waitUntil: 'load' })
        const m = options.margins ?? {}
        const inch = (v: number | undefined) => (v == null ? undefined : `${v}in`)
        return await page.pdf({
          format: options.pageSize,
          landscape: options.landscape as boolean | undefined,
          printBackground: options.printBackground as boolean | undefined,
          displayHeaderFooter: options.displayHeaderFooter as boolean | undefined,
          headerTemplate: options.headerTemplate as string | undefined,
          footerTemplate: options.footerTemplate as string | undefined,
          preferCSSPageSize: options.preferCSSPageSize as boolean | undefined,
          tagged: options.generateTaggedPDF as boolean | undefined,
          margin: { top: inch(m.top), bottom: inch(m.bottom), left: inch(m.left), right: inch(m.right) },
        })
      } finally {
        await browser.close()
      }
    }
  }

  class FakeWindow extends EventEmitter {
    webContents = new FakeContents()
    loaded: string | null = null
    destroyed = false
    constructor(readonly options: Record<string, unknown> & { webPreferences: Record<string, unknown> }) {
      super()
      this.webContents.owner = this
      rec.windows.push(this)
      app.emit('web-contents-created', {}, this.webContents)
    }
    async loadFile(file: string) {
      this.loaded = file
      this.webContents.mainFrame.url = `file://${file}`
    }
    async loadURL(url: string) {
      this.loaded = url
      this.webContents.mainFrame.url = url
    }
    show() {
      rec.windowShows++
    }
    isDestroyed() {
      return this.destroyed
    }
    destroy() {
      if (this.destroyed) return
      this.destroyed = true
      rec.destroyedWindows++
      rec.windows.splice(rec.windows.indexOf(this), 1)
      this.emit('closed')
    }
    focus() {}
    restore() {}
    isMinimized() {
      return false
    }
    static getAllWindows() {
      return rec.windows
    }
  }

  /** An image made from a bitmap: its size and the colour of its centre pixel (BGRA in, "#rrggbb" out). */
  class FakeImage {
    constructor(
      readonly width: number,
      readonly height: number,
      readonly centre: string,
    ) {}
    isEmpty() {
      return this.width === 0
    }
  }
  const nativeImage = {
    createFromBitmap(buf: Buffer, o: { width: number; height: number }) {
      if (buf.length !== o.width * o.height * 4) throw new Error('Invalid buffer size')
      const i = (Math.floor(o.height / 2) * o.width + Math.floor(o.width / 2)) * 4
      const hex = (n: number) => n.toString(16).padStart(2, '0')
      return new FakeImage(o.width, o.height, `#${hex(buf[i + 2])}${hex(buf[i + 1])}${hex(buf[i])}`)
    },
  }
  type MenuItem = { label: string; enabled?: boolean; click?: () => void }
  class FakeTray extends EventEmitter {
    toolTip = ''
    title = ''
    menu: MenuItem[] = []
    destroyed = false
    constructor(public image: FakeImage) {
      super()
      if (!rec.ready) throw new Error('Cannot create Tray before app is ready')
      if (!(image instanceof FakeImage)) throw new Error('a Tray needs a NativeImage')
      rec.trays.push(this)
    }
    setImage(image: FakeImage) {
      this.image = image
    }
    setToolTip(t: string) {
      this.toolTip = t
    }
    setTitle(t: string) {
      this.title = t
    }
    setContextMenu(m: { items: MenuItem[] }) {
      this.menu = m.items
    }
    destroy() {
      this.destroyed = true
    }
  }

  const module = {
    app,
    Tray: FakeTray,
    Menu: { buildFromTemplate: (items: MenuItem[]) => ({ items }) },
    nativeImage,
    BrowserWindow: FakeWindow,
    ipcMain: {
      handle: (channel: string, h: Handler) => {
        if (rec.ipcHandlers.has(channel)) throw new Error(`second handler for ${channel}`)
        rec.ipcHandlers.set(channel, h)
      },
    },
    protocol: {
      // As Electron: privileged schemes only before ready, handlers only after.
      registerSchemesAsPrivileged: (schemes: { scheme: string; privileges?: Record<string, boolean> }[]) => {
        if (rec.ready) throw new Error('protocol.registerSchemesAsPrivileged should be called before app is ready')
        rec.privilegedSchemes.push({ schemes, beforeReady: !rec.ready })
      },
      handle: (scheme: string, handler: (request: Request) => Response | Promise<Response>) => {
        if (!rec.ready) throw new Error('protocol.handle cannot be called before app is ready')
        if (rec.protocolHandlers.has(scheme)) throw new Error(`second handler for ${scheme}://`)
        rec.protocolHandlers.set(scheme, handler)
      },
    },
    session: {
      fromPartition: (partition: string, options: Record<string, unknown> = {}) => {
        let ses = rec.partitions.get(partition)
        if (!ses) rec.partitions.set(partition, (ses = new FakeSession(partition, options)))
        return ses
      },
      defaultSession: {
        webRequest: { onHeadersReceived: (h: typeof rec.headersHook) => (rec.headersHook = h) },
        setPermissionRequestHandler: (h: typeof rec.permissionHandler) => (rec.permissionHandler = h),
        setPermissionCheckHandler: () => {},
      },
    },
    dialog: {
      // As Electron: (window, options) or (options); resolves with the chosen path or canceled.
      showSaveDialog: async (a: unknown, b?: unknown) => {
        const [window, options] = b === undefined ? [null, a] : [a, b]
        rec.saveDialogs.push({ window, options: options as { defaultPath?: string } })
        const path = rec.nextSavePath
        rec.nextSavePath = null
        return path ? { canceled: false, filePath: path } : { canceled: true, filePath: '' }
      },
    },
    shell: { openExternal: async (url: string) => void rec.openedExternal.push(url) },
    Notification: Object.assign(
      class {
        constructor(readonly n: { title: string; body: string }) {}
        show() {
          rec.notifications.push(this.n)
        }
      },
      { isSupported: () => true },
    ),
    safeStorage: createSafeStorageStandIn(o.backend),
  }
  return { module, rec, FakeContents }
}

/**
 * safeStorage's asynchronous API, as Electron 45 has it (the deprecated synchronous calls are absent, so
 * code still using them fails). The "encryption" only has to be reversible and not plain text; it is
 * tagged with a key version, and raising keyVersion makes older data report shouldReEncrypt.
 */
export function createSafeStorageStandIn(backend: Backend) {
  const storage = {
    keyVersion: 1,
    available: true,
    isAsyncEncryptionAvailable: async () => storage.available,
    getSelectedStorageBackend: (): Backend => backend,
    encryptStringAsync: async (s: string) =>
      Buffer.from(`v${storage.keyVersion}:${Buffer.from(s).toString('base64').split('').reverse().join('')}`),
    decryptStringAsync: async (b: Buffer) => {
      const m = /^v(\d+):(.*)$/s.exec(b.toString())
      if (!m) throw new Error('Error while decrypting the ciphertext provided to safeStorage.decryptString.')
      const result = Buffer.from(m[2].split('').reverse().join(''), 'base64').toString()
      return { result, shouldReEncrypt: Number(m[1]) < storage.keyVersion }
    },
    /** What a file holds, for tests: the key version it was written with and its plain text. */
    reveal: (b: Buffer) => {
      const m = /^v(\d+):(.*)$/s.exec(b.toString())!
      return { keyVersion: Number(m[1]), text: Buffer.from(m[2].split('').reverse().join(''), 'base64').toString() }
    },
  }
  return storage
}

import { app, shell, type BrowserWindowConstructorOptions, type Session, type WebContents } from 'electron'
import { sameOrigin } from './app-protocol'

/**
 * The window's policy. The UI is served from app://console (see app-protocol.ts), so 'self' is exactly
 * the built renderer, not every local file as it was under file://. No frames, workers or plugins.
 */
export const CSP =
  "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; frame-src 'none'; worker-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

/** Links the console may open in the operator's browser; everything else is refused. */
export const externalAllowlist = [
  /^https:\/\/(docs\.)?stripe\.com\//,
  /^https:\/\/status\.stripe\.com\//,
  /^https:\/\/www\.postgresql\.org\/docs\//,
  /^https:\/\/github\.com\/examforge\//,
]

export function webPreferences(preload: string): BrowserWindowConstructorOptions['webPreferences'] {
  return {
    preload,
    sandbox: true,
    contextIsolation: true,
    nodeIntegration: false,
    nodeIntegrationInWorker: false,
    webSecurity: true,
    allowRunningInsecureContent: false,
    webviewTag: false,
    spellcheck: false,
    devTools: !app.isPackaged,
  }
}

/** CSP on every response, and no permission (camera, notifications from the page, ...) is ever granted to web content. */
export function hardenSession(ses: Session): void {
  ses.webRequest.onHeadersReceived((details, callback) => {
    callback({ responseHeaders: { ...details.responseHeaders, 'Content-Security-Policy': [CSP] } })
  })
  ses.setPermissionRequestHandler((_wc, _permission, callback) => callback(false))
  ses.setPermissionCheckHandler(() => false)
}

/**
 * No navigation away from the app's own origin, in the window or in any frame of it, no redirects, no new
 * windows, no webviews; allowlisted links open in the system browser.
 */
export function lockContents(contents: WebContents, appUrl: () => string): void {
  contents.on('will-navigate', (details) => {
    if (!sameOrigin(details.url, appUrl())) details.preventDefault()
  })
  contents.on('will-frame-navigate', (details) => {
    if (!sameOrigin(details.url, appUrl())) details.preventDefault()
  })
  contents.on('will-redirect', (event) => event.preventDefault())
  contents.on('will-attach-webview', (event) => event.preventDefault())
  contents.setWindowOpenHandler(({ url }) => {
    if (externalAllowlist.some((re) => re.test(url))) void shell.openExternal(url)
    return { action: 'deny' }
  })
}

/**
 * The desktop app's PDF printer: Electron's own Chromium prints the self-contained HTML report, so the
 * app needs no other browser. An offscreen, hidden, sandboxed window with JavaScript off, in an in-memory
 * session of its own that refuses every request but the report's own file, loads the HTML from a private
 * temporary file (a data: URL would be cut at Chromium's 2 MB URL limit), prints it with the same page
 * margins and "page X of Y" footer as the host's Playwright printer, and is destroyed — also on failure
 * or after the timeout. The temporary file is removed.
 */
import type { BrowserWindow as ElectronBrowserWindow, Session } from 'electron'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import type { PdfPrinter } from '../core/incidents/report'
import { PDF_HEADER_TEMPLATE, PDF_MARGINS, pdfFooterTemplate, pdfTimeoutMessage } from '../core/incidents/report/pdf-layout'
import { OpsError } from '../shared/contract'

/** What the printer needs of the electron module (passed in, so it is tested with the stand-in). */
export interface ElectronPrintDeps {
  BrowserWindow: new (options: Electron.BrowserWindowConstructorOptions) => ElectronBrowserWindow
  session: { fromPartition(partition: string, options?: { cache?: boolean }): Session }
}

/** The partition of the printing window: no "persist:" prefix, so nothing of it is written to disk. */
export const PDF_PARTITION = 'incident-report-pdf'

const mmToInches = (mm: string) => Number((Number.parseFloat(mm) / 25.4).toFixed(4))

export function electronPrintOptions(paper: 'A4' | 'Letter', title: string): Electron.PrintToPDFOptions {
  return {
    pageSize: paper,
    landscape: false,
    printBackground: true,
    displayHeaderFooter: true,
    headerTemplate: PDF_HEADER_TEMPLATE,
    footerTemplate: pdfFooterTemplate(title),
    margins: {
      top: mmToInches(PDF_MARGINS.top),
      bottom: mmToInches(PDF_MARGINS.bottom),
      left: mmToInches(PDF_MARGINS.left),
      right: mmToInches(PDF_MARGINS.right),
    },
    generateTaggedPDF: true,
  }
}

export function createElectronPdfPrinter(deps: ElectronPrintDeps, o: { timeoutMs?: number } = {}): PdfPrinter {
  let sessionReady: Session | null = null
  const printSession = () => {
    if (sessionReady) return sessionReady
    const ses = deps.session.fromPartition(PDF_PARTITION, { cache: false })
    // Only the report's own file:// is loaded; every other request (there should be none) is cancelled.
    ses.webRequest.onBeforeRequest((details, callback) => callback({ cancel: !/^file:\/\/.*\/incident-report\.html$/.test(details.url) }))
    ses.setPermissionRequestHandler((_wc, _p, callback) => callback(false))
    ses.setPermissionCheckHandler(() => false)
    sessionReady = ses
    return ses
  }

  return async (html, { paper, title }) => {
    const timeoutMs = o.timeoutMs ?? 60_000
    const dir = await mkdtemp(join(tmpdir(), 'examforge-report-'))
    const file = join(dir, 'incident-report.html')
    let win: ElectronBrowserWindow | null = null
    let timer: NodeJS.Timeout | undefined
    try {
      await writeFile(file, html, { mode: 0o600 })
      win = new deps.BrowserWindow({
        show: false,
        width: 1024,
        height: 1400,
        webPreferences: {
          offscreen: true,
          sandbox: true,
          contextIsolation: true,
          nodeIntegration: false,
          javascript: false,
          webSecurity: true,
          images: true,
          spellcheck: false,
          session: printSession(),
        },
      })
      const w = win
      const work = (async () => {
        await w.loadURL(pathToFileURL(file).toString())
        return await w.webContents.printToPDF(electronPrintOptions(paper, title))
      })()
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new OpsError('pdf_timeout', pdfTimeoutMessage(timeoutMs))), timeoutMs)
      })
      work.catch(() => {})
      return await Promise.race([work, timeout])
    } catch (e) {
      if (e instanceof OpsError) throw e
      throw new OpsError(
        'pdf_failed',
        `The PDF could not be printed: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}. Try again, or export HTML.`,
      )
    } finally {
      clearTimeout(timer)
      if (win && !win.isDestroyed()) win.destroy()
      await rm(dir, { recursive: true, force: true }).catch(() => {})
    }
  }
}

/**
 * The PDF printer of the headless host and the CLI: Playwright drives a system Chromium (CHROMIUM_PATH,
 * else the usual install paths) to print the self-contained HTML report. Chromium runs with no network:
 * every request the page could make is aborted and host names resolve nowhere. The browser is closed
 * whatever happens, and a print that takes longer than the timeout fails with a clear error.
 */
import { existsSync } from 'node:fs'
import { chromium, type Browser } from 'playwright-core'
import { OpsError } from '../../../shared/contract'
import { PDF_HEADER_TEMPLATE, PDF_MARGINS, pdfFooterTemplate, pdfTimeoutMessage } from './pdf-layout'
import type { PdfPrinter } from './index'

/** Where Chromium or Chrome usually is, in the order tried when CHROMIUM_PATH is not set. */
export const CHROMIUM_CANDIDATES = [
  '/usr/bin/chromium',
  '/usr/bin/chromium-browser',
  '/usr/bin/google-chrome',
  '/usr/bin/google-chrome-stable',
  '/snap/bin/chromium',
  '/usr/local/bin/chromium',
  '/opt/google/chrome/chrome',
  '/Applications/Google Chrome.app/Contents/MacOS/Google Chrome',
  '/Applications/Chromium.app/Contents/MacOS/Chromium',
  'C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe',
  'C:\\Program Files (x86)\\Google\\Chrome\\Application\\chrome.exe',
]

const INSTALL_HINT =
  'Install Chromium (Debian/Ubuntu: "apt-get install chromium"; or Google Chrome) or set CHROMIUM_PATH to a Chromium or Chrome executable. The HTML, Markdown and JSON exports need no browser.'

/** The Chromium to print with, or an error that says how to get one. */
export function findChromium(env: NodeJS.ProcessEnv = process.env, candidates: string[] = CHROMIUM_CANDIDATES): string {
  const set = env.CHROMIUM_PATH?.trim()
  if (set) {
    if (existsSync(set)) return set
    throw new OpsError(
      'chromium_missing',
      `CHROMIUM_PATH is set to ${set}, but there is no such file, so the PDF cannot be printed. ${INSTALL_HINT}`,
    )
  }
  const found = candidates.find((p) => existsSync(p))
  if (found) return found
  throw new OpsError(
    'chromium_missing',
    `No Chromium was found to print the PDF (CHROMIUM_PATH is not set; looked in ${candidates.slice(0, 4).join(', ')} and other usual places). ${INSTALL_HINT}`,
  )
}

export interface ChromiumPrinterOptions {
  /** Defaults to findChromium() at print time. */
  executablePath?: string
  env?: NodeJS.ProcessEnv
  /** The whole print (launch, layout, PDF); 60 s by default. */
  timeoutMs?: number
  /** Called with the URL of every request the page tried (all are blocked): tests count them. */
  onBlockedRequest?: (url: string) => void
}

export function createChromiumPrinter(o: ChromiumPrinterOptions = {}): PdfPrinter {
  return async (html, { paper, title }) => {
    const executablePath = o.executablePath ?? findChromium(o.env ?? process.env)
    const timeoutMs = o.timeoutMs ?? 60_000
    let browser: Browser | null = null
    let timer: NodeJS.Timeout | undefined
    let finished = false
    const work = (async () => {
      const b = await chromium.launch({
        executablePath,
        headless: true,
        timeout: timeoutMs,
        // No network at all: no proxy, every host name resolves nowhere (requests are also aborted below).
        args: [
          '--no-proxy-server',
          '--host-resolver-rules=MAP * ~NOTFOUND',
          '--disable-background-networking',
          '--disable-component-update',
        ],
      })
      browser = b
      // Timed out while launching: the finally below has already run, so close it here.
      if (finished) {
        await b.close().catch(() => {})
        throw new OpsError('pdf_timeout', 'Printing the PDF was stopped.')
      }
      const context = await b.newContext({ offline: true, javaScriptEnabled: false, serviceWorkers: 'block' })
      await context.route('**/*', (route) => {
        o.onBlockedRequest?.(route.request().url())
        return route.abort('blockedbyclient')
      })
      const page = await context.newPage()
      page.setDefaultTimeout(timeoutMs)
      await page.setContent(html, { waitUntil: 'load' })
      await page.emulateMedia({ media: 'print' })
      return await page.pdf({
        format: paper,
        printBackground: true,
        displayHeaderFooter: true,
        headerTemplate: PDF_HEADER_TEMPLATE,
        footerTemplate: pdfFooterTemplate(title),
        margin: { ...PDF_MARGINS },
        outline: false,
        tagged: true,
      })
    })()
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new OpsError('pdf_timeout', pdfTimeoutMessage(timeoutMs))), timeoutMs)
    })
    try {
      return await Promise.race([work, timeout])
    } catch (e) {
      if (e instanceof OpsError) throw e
      const msg = e instanceof Error ? e.message.split('\n')[0] : String(e)
      throw new OpsError('pdf_failed', `Chromium (${executablePath}) could not print the PDF: ${msg}. ${INSTALL_HINT}`)
    } finally {
      clearTimeout(timer)
      finished = true
      work.catch(() => {})
      // Closed whatever happened (also after a timeout, while the print may still be running).
      await (browser as Browser | null)?.close().catch(() => {})
    }
  }
}

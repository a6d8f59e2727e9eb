/**
 * The desktop app's PDF printer (src/main/pdf-printer.ts) with the stand-in electron module: its
 * BrowserWindow.webContents.printToPDF prints with a real Chromium, so the pages, the footer and the
 * request blocking are checked on a real PDF; the window is hidden, offscreen, sandboxed, without
 * JavaScript, in a session of its own, and destroyed after printing — also when printing fails or hangs.
 */
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { renderReport } from '../../src/core/incidents/report'
import { createElectronPdfPrinter, PDF_PARTITION, type ElectronPrintDeps } from '../../src/main/pdf-printer'
import { createElectronStandIn } from '../helpers/electron-stand-in'
import { buildIncidentFixture, PLANTED } from '../helpers/incident-report-fixture'

const outDir = join(__dirname, '../../test-results/incident-report-electron')
const run = (cmd: string, args: string[]) => execFileSync(cmd, args, { encoding: 'utf8' })

function standIn() {
  const stand = createElectronStandIn({ userData: mkdtempSync(join(tmpdir(), 'ops-electron-pdf-')), backend: 'basic_text' })
  const deps = { BrowserWindow: stand.module.BrowserWindow, session: stand.module.session } as unknown as ElectronPrintDeps
  return { ...stand, deps }
}

describe("the desktop app's PDF printer (Electron printToPDF, with the stand-in electron module)", () => {
  it('prints the report on Letter with "page X of Y", vector charts, no secrets, then destroys its window', async () => {
    rmSync(outDir, { recursive: true, force: true })
    mkdirSync(outDir, { recursive: true })
    const { rec, deps } = standIn()
    const out = await renderReport(buildIncidentFixture(), 'pdf', { paper: 'Letter', printPdf: createElectronPdfPrinter(deps) })
    const file = join(outDir, out.fileName)
    writeFileSync(file, out.data)
    const info = run('pdfinfo', [file])
    expect(info).toMatch(/Page size:\s+612 x 792 pts/)
    const pages = Number(/Pages:\s+(\d+)/.exec(info)![1])
    const text = run('pdftotext', ['-layout', file, '-']).replace(/\s+/g, ' ')
    expect(text).toContain('Redis outage during the <Exam> finals & grading')
    expect(text).toContain(`page 1 of ${pages}`)
    expect(text).toContain('http_error_rate_high')
    for (const s of [PLANTED.password, PLANTED.bearer, PLANTED.card, PLANTED.urlPassword]) expect(text).not.toContain(s)
    expect(run('pdfimages', ['-list', file]).trim().split('\n').slice(2)).toEqual([])
    run('pdftoppm', ['-r', '60', '-png', '-l', '3', file, join(outDir, 'electron-letter-page')])

    // The window: hidden, offscreen, sandboxed, no JavaScript, in its own in-memory session; gone after.
    expect(rec.prints).toHaveLength(1)
    const print = rec.prints[0]
    expect(print.options).toMatchObject({ pageSize: 'Letter', displayHeaderFooter: true, printBackground: true })
    expect(print.options.footerTemplate).toContain('<span class="pageNumber"></span> of <span class="totalPages"></span>')
    const ses = rec.partitions.get(PDF_PARTITION)!
    expect(ses.partition).not.toMatch(/^persist:/)
    expect(rec.destroyedWindows).toBe(1)
    expect(rec.windows).toHaveLength(0)
    // Only the report's own file was loaded, and that file is gone.
    expect(print.requests.map((r) => r.url)).toEqual([print.url])
    expect(existsSync(fileURLToPath(print.url))).toBe(false)
  })

  it('opens its window hidden, offscreen and locked down', async () => {
    const { rec, deps } = standIn()
    const seen: Record<string, unknown>[] = []
    const Spy = class extends (deps.BrowserWindow as unknown as new (o: Record<string, unknown>) => object) {
      constructor(o: Record<string, unknown>) {
        super(o)
        seen.push(o)
      }
    }
    await createElectronPdfPrinter({ ...deps, BrowserWindow: Spy as never })('<!doctype html><p>hello</p>', { paper: 'A4', title: 't' })
    expect(seen[0]).toMatchObject({
      show: false,
      webPreferences: {
        offscreen: true,
        sandbox: true,
        contextIsolation: true,
        nodeIntegration: false,
        javascript: false,
        webSecurity: true,
      },
    })
    expect(rec.destroyedWindows).toBe(1)
  })

  it('cancels every request the page would make beyond its own file', async () => {
    const { rec, deps } = standIn()
    const html =
      '<!doctype html><link rel="stylesheet" href="http://127.0.0.1:9/x.css"><img src="https://example.invalid/a.png"><p>remote</p>'
    const pdf = await createElectronPdfPrinter(deps)(html, { paper: 'A4', title: 'remote' })
    expect(pdf.subarray(0, 5).toString()).toBe('%PDF-')
    const requests = rec.prints[0].requests
    const remote = requests.filter((r) => !r.url.startsWith('file:'))
    expect(remote.map((r) => r.url).sort()).toEqual(['http://127.0.0.1:9/x.css', 'https://example.invalid/a.png'])
    expect(remote.every((r) => r.cancelled)).toBe(true)
  })

  it('destroys its window when printing fails, and says so', async () => {
    const { rec, deps } = standIn()
    const Base = deps.BrowserWindow as unknown as new (o: Record<string, unknown>) => { webContents: { printToPDF: unknown } }
    const Broken = class extends Base {
      constructor(o: Record<string, unknown>) {
        super(o)
        this.webContents.printToPDF = async () => {
          throw new Error('Failed to generate PDF\n    at internal')
        }
      }
    }
    await expect(
      createElectronPdfPrinter({ ...deps, BrowserWindow: Broken as never })('<p>x</p>', { paper: 'A4', title: 'x' }),
    ).rejects.toThrow('The PDF could not be printed: Failed to generate PDF. Try again, or export HTML.')
    expect(rec.destroyedWindows).toBe(1)
  })

  it('stops a print that hangs with a clear error, and destroys its window', async () => {
    const { rec, deps } = standIn()
    const Base = deps.BrowserWindow as unknown as new (o: Record<string, unknown>) => { webContents: { printToPDF: unknown } }
    const Hung = class extends Base {
      constructor(o: Record<string, unknown>) {
        super(o)
        this.webContents.printToPDF = () => new Promise(() => {})
      }
    }
    await expect(
      createElectronPdfPrinter({ ...deps, BrowserWindow: Hung as never }, { timeoutMs: 300 })('<p>x</p>', { paper: 'A4', title: 'x' }),
    ).rejects.toThrow(/Printing the PDF took longer than 300 ms and was stopped/)
    expect(rec.destroyedWindows).toBe(1)
  })
})

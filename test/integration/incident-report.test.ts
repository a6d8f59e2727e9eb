/**
 * The incident report in its four formats, from a hand-built realistic report: the PDF printed by a real
 * Chromium and read back with poppler (pdftoppm pages to look at, pdftotext, pdfimages), the HTML opened
 * in Chromium with every request recorded, the JSON validated against the committed JSON Schema by ajv,
 * and the secrets planted in an error's data and in a note searched for in all four files.
 */
import Ajv2020 from 'ajv/dist/2020'
import { execFileSync } from 'node:child_process'
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { chromium, type Browser } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { registerSecret } from '../../src/core/log/scrub'
import { renderReport, type RenderedReport } from '../../src/core/incidents/report'
import { utcTime } from '../../src/core/incidents/report/format'
import { createChromiumPrinter, findChromium } from '../../src/core/incidents/report/chromium-printer'
import { incidentReport, type ExportFormat, type IncidentReport } from '../../src/shared/incidents'
import { syntheticReport } from '../../bench/incidents-pdf'
import { buildIncidentFixture, PLANTED } from '../helpers/incident-report-fixture'

const root = join(__dirname, '../..')
const outDir = join(root, 'test-results/incident-report')
const REGISTERED = 'Registered-Db-Secret-7731'

function run(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 })
}

describe('the incident report in four formats', () => {
  let report: IncidentReport
  const out = {} as Record<ExportFormat | 'pdf-letter', RenderedReport>
  const file = {} as Record<ExportFormat | 'pdf-letter', string>
  let browser: Browser

  beforeAll(async () => {
    rmSync(outDir, { recursive: true, force: true })
    mkdirSync(outDir, { recursive: true })
    // A secret the process knows (as the host registers its database password) written into a note.
    registerSecret(REGISTERED)
    const base = buildIncidentFixture()
    report = {
      ...base,
      timeline: base.timeline.map((e) =>
        e.type === 'incident.note' && e.detail?.includes('Session expired')
          ? { ...e, detail: `${e.detail}\n\nThe db secret was ${REGISTERED}.` }
          : e,
      ),
    }
    for (const f of ['json', 'md', 'html', 'pdf'] as const) {
      out[f] = await renderReport(report, f, { paper: 'A4' })
      file[f] = join(outDir, `a4-${out[f].fileName}`)
      writeFileSync(file[f], out[f].data)
    }
    out['pdf-letter'] = await renderReport(report, 'pdf', { paper: 'Letter' })
    file['pdf-letter'] = join(outDir, `letter-${out['pdf-letter'].fileName}`)
    writeFileSync(file['pdf-letter'], out['pdf-letter'].data)
    browser = await chromium.launch({ executablePath: findChromium() })
  })
  afterAll(async () => {
    await browser?.close()
  })

  it('names the files safely, each with its type', () => {
    expect(out.pdf.fileName).toBe('incident-inc-42-redis-outage-during-the-exam-finals-grading.pdf')
    expect(out.html.fileName).toMatch(/^incident-inc-42-[a-z0-9-]+\.html$/)
    expect([out.pdf.mimeType, out.html.mimeType, out.md.mimeType, out.json.mimeType]).toEqual([
      'application/pdf',
      'text/html; charset=utf-8',
      'text/markdown; charset=utf-8',
      'application/json',
    ])
    expect(out.pdf.encoding).toBe('base64')
    expect(Buffer.isBuffer(out.pdf.data)).toBe(true)
  })

  it('prints a PDF on A4 and on Letter, turned into PNG pages to look at', () => {
    for (const [f, w, h] of [
      ['pdf', 595.3, 841.9], // A4, 210 × 297 mm
      ['pdf-letter', 612, 792], // Letter, 8.5 × 11 in
    ] as const) {
      const info = run('pdfinfo', [file[f]])
      const size = /Page size:\s+([\d.]+) x ([\d.]+) pts/.exec(info)!
      expect(Math.abs(Number(size[1]) - w)).toBeLessThan(1.5)
      expect(Math.abs(Number(size[2]) - h)).toBeLessThan(1.5)
      const pages = Number(/Pages:\s+(\d+)/.exec(info)![1])
      expect(pages).toBeGreaterThanOrEqual(4)
      const prefix = join(outDir, f === 'pdf' ? 'a4-page' : 'letter-page')
      run('pdftoppm', ['-r', '60', '-png', file[f], prefix])
      expect(readdirSync(outDir).filter((n) => n.startsWith(f === 'pdf' ? 'a4-page' : 'letter-page') && n.endsWith('.png'))).toHaveLength(
        pages,
      )
    }
  })

  it('has the title page, the review, the timeline, the chart labels and "page X of Y" in its text', () => {
    const text = run('pdftotext', ['-layout', file.pdf, '-'])
    const pages = Number(/Pages:\s+(\d+)/.exec(run('pdfinfo', [file.pdf]))![1])
    const flat = text.replace(/\s+/g, ' ')
    expect(flat).toContain('Redis outage during the <Exam> finals & grading')
    expect(flat).toContain('Commander alice@examforge.test')
    expect(flat).toContain('Opened 2026-11-30 08:42:00 UTC')
    expect(flat).toContain('All times are UTC (offset +00:00)')
    expect(flat).toContain('Set maxmemory and an eviction policy')
    // Timeline entries, with their time and level (in reading order: -layout interleaves wrapped table cells).
    const raw = run('pdftotext', ['-raw', file.pdf, '-']).replace(/\s+/g, ' ')
    expect(raw).toContain('Alert redis_down firing: redis unreachable')
    expect(raw).toContain('Restore in place of public.sessions finished')
    expect(raw).toContain('08:42:00 Alert ✖ critical')
    // Every entry's title (compared without white space: a title may wrap inside a word such as a set name).
    const bare = raw.replace(/\s+/g, '')
    for (const e of report.timeline) expect(bare).toContain(e.title.replace(/\s+/g, ''))
    // Chart labels: names, thresholds, incident markers, time axis.
    for (const label of [
      'http_error_rate',
      'redis_latency_ms',
      'http_error_rate_high 5 % (critical)',
      'incident start',
      'incident end',
      '09:00',
      'UTC',
    ])
      expect(raw).toContain(label)
    expect(flat).toContain(`page 1 of ${pages}`)
    expect(flat).toContain(`page ${pages} of ${pages}`)
    // The title page is a page of its own: page 1 ends before the review starts.
    const first = text.split('\f')[0]
    expect(first).toContain('Severity')
    expect(first).not.toContain('Summary and review')
  })

  it('keeps the charts as vector graphics: no raster image in the PDF', () => {
    for (const f of ['pdf', 'pdf-letter'] as const) {
      const list = run('pdfimages', ['-list', file[f]]).trim().split('\n')
      // Only the two header lines: no image at all.
      expect(list.slice(2)).toEqual([])
    }
  })

  it('opens the HTML in Chromium with no network request, the charts drawn as SVG', async () => {
    const ctx = await browser.newContext()
    const requests: string[] = []
    await ctx.route('**/*', (route) => {
      requests.push(route.request().url())
      return route.abort()
    })
    const page = await ctx.newPage()
    page.on('request', (r) => requests.push(r.url()))
    await page.setContent(out.html.data as string, { waitUntil: 'load' })
    expect(await page.locator('svg.chart').count()).toBe(2)
    expect(await page.locator('svg.chart path.line').count()).toBe(2)
    expect(await page.locator('svg.chart line.threshold').count()).toBe(3)
    expect(await page.locator('svg.chart line.marker').count()).toBe(4)
    expect(await page.locator('table.timeline tr.entry').count()).toBe(report.timeline.length)
    expect(await page.locator('script, img, link, iframe, object').count()).toBe(0)
    const box = await page.locator('svg.chart').first().boundingBox()
    expect(box!.width).toBeGreaterThan(300)
    await page.setViewportSize({ width: 900, height: 1200 })
    await page.screenshot({ path: join(outDir, 'html-900.png'), fullPage: false })
    expect(requests).toEqual([])
    await ctx.close()
  })

  it('escapes a title with markup: it renders as text, runs nothing and loads nothing', async () => {
    const evil = '<script>window.pwned = 1</script><img src="http://127.0.0.1:9/x.png" onerror="window.pwned = 2">"quoted" & done'
    const r = { ...report, title: evil, incident: { ...report.incident!, title: evil } }
    const html = (await renderReport(r, 'html', { paper: 'A4' })).data as string
    expect(html).not.toContain('<script>window.pwned')
    expect(html).not.toContain('<img')
    const ctx = await browser.newContext()
    const requests: string[] = []
    await ctx.route('**/*', (route) => {
      requests.push(route.request().url())
      return route.abort()
    })
    const page = await ctx.newPage()
    await page.setContent(html, { waitUntil: 'load' })
    expect(await page.locator('h1').textContent()).toBe(evil)
    expect(await page.title()).toBe(evil)
    expect(await page.evaluate(() => (window as unknown as { pwned?: number }).pwned)).toBeUndefined()
    expect(requests).toEqual([])
    await ctx.close()
    const md = (await renderReport(r, 'md', { paper: 'A4' })).data as string
    expect(md.split('\n')[0]).toBe(
      '# \\<script\\>window.pwned = 1\\</script\\>\\<img src="http://127.0.0.1:9/x.png" onerror="window.pwned = 2"\\>"quoted" \\& done',
    )
  })

  it('writes JSON that validates against the committed JSON Schema (docs/incident-report.schema.json)', () => {
    const schema = JSON.parse(readFileSync(join(root, 'docs/incident-report.schema.json'), 'utf8'))
    const ajv = new Ajv2020({ allErrors: true, strict: false })
    const validate = ajv.compile(schema)
    const doc = JSON.parse(readFileSync(file.json, 'utf8'))
    expect(validate(doc), JSON.stringify(validate.errors)).toBe(true)
    expect(doc.schemaVersion).toBe(1)
    expect(doc.timeline).toHaveLength(report.timeline.length)
    const times = doc.timeline.map((e: { at: number }) => e.at)
    expect(times).toEqual([...times].sort((a, b) => a - b))
    expect(incidentReport.parse(doc).title).toBe(report.title)
    // The schema does reject what is not a report.
    expect(validate({ ...doc, timeline: [{ ...doc.timeline[0], type: 'made.up' }] })).toBe(false)
    expect(validate({ ...doc, schemaVersion: 2 })).toBe(false)
  })

  it('leaves none of the planted secrets in any of the four files', () => {
    const secrets = [
      PLANTED.password,
      PLANTED.urlPassword,
      PLANTED.bearer,
      PLANTED.card,
      PLANTED.cardDigits,
      PLANTED.cardDashed,
      PLANTED.apiKey,
      'wJalrXUtnFEMI',
      REGISTERED,
    ]
    // They were there to find: the report handed in carries every one of them.
    const given = JSON.stringify(report)
    for (const s of secrets) expect(given).toContain(s)
    const texts = {
      json: readFileSync(file.json, 'latin1'),
      md: readFileSync(file.md, 'latin1'),
      html: readFileSync(file.html, 'latin1'),
      pdf: run('pdftotext', [file.pdf, '-']),
      'pdf-raw': readFileSync(file.pdf, 'latin1'),
      'pdf-letter': run('pdftotext', [file['pdf-letter'], '-']),
    }
    for (const [name, text] of Object.entries(texts)) for (const s of secrets) expect(text.includes(s), `${s} in ${name}`).toBe(false)
    // What was scrubbed is marked, not silently dropped, and the rest of the entry is kept.
    expect(texts.json).toContain('"password": "[Filtered]"')
    expect(texts.json).toContain('postgres://exam:[Filtered]@db.internal:5432/exam')
    expect(texts.md).toContain('payment used card \\[Filtered\\]')
    expect(texts.pdf).toContain('RedisConnectionError')
  })

  it('exports a window with no incident declared, named by its times', async () => {
    const r = { ...report, incident: null, review: null, title: 'Window 08:27–09:57 UTC' }
    const html = await renderReport(r, 'html', { paper: 'Letter' })
    expect(html.fileName).toBe('incidents-window-20261130t0827z-20261130t0957z.html')
    expect(html.data).toContain('no incident declared')
    expect(html.data).toContain('size: letter portrait')
    const md = await renderReport(r, 'md', { paper: 'A4' })
    expect(md.data).toContain('*A window report has no review.*')
  })

  it('refuses a report that does not match its schema, writing nothing', async () => {
    const bad = { ...report, timeline: [{ ...report.timeline[0], level: 'fatal' }] } as unknown as IncidentReport
    await expect(renderReport(bad, 'json', { paper: 'A4' })).rejects.toThrow(/does not match its schema .* at timeline\.0\.level/)
  })

  it('prints with no network: whatever a page asks for is blocked, and the PDF still comes out', async () => {
    const blocked: string[] = []
    const printPdf = createChromiumPrinter({ onBlockedRequest: (url) => blocked.push(url) })
    // Not our HTML (that has a CSP allowing nothing): raw markup that asks for a stylesheet and an image.
    const html =
      '<!doctype html><link rel="stylesheet" href="http://127.0.0.1:9/x.css"><img src="https://example.invalid/a.png"><p>remote</p>'
    const pdf = await printPdf(html, { paper: 'A4', title: 'remote' })
    expect(pdf.subarray(0, 5).toString()).toBe('%PDF-')
    expect(blocked.sort()).toEqual(['http://127.0.0.1:9/x.css', 'https://example.invalid/a.png'])
  })

  it('says how to get a Chromium when none is found', async () => {
    await expect(
      renderReport(report, 'pdf', { paper: 'A4', printPdf: createChromiumPrinter({ env: { CHROMIUM_PATH: '/nonexistent/chromium' } }) }),
    ).rejects.toThrow(/CHROMIUM_PATH is set to \/nonexistent\/chromium, but there is no such file.*apt-get install chromium/)
    expect(() => findChromium({}, ['/nonexistent/a', '/nonexistent/b'])).toThrow(
      /No Chromium was found to print the PDF \(CHROMIUM_PATH is not set; looked in \/nonexistent\/a, \/nonexistent\/b.*set CHROMIUM_PATH/,
    )
  })

  it("prints a 24-hour report of 10,000 entries: dense stretches grouped, people's notes whole, charts downsampled", async () => {
    const big = syntheticReport(10_000)
    const pdf = await renderReport(big, 'pdf', { paper: 'A4' })
    const f = join(outDir, 'a4-10000-entries.pdf')
    writeFileSync(f, pdf.data)
    const pages = Number(/Pages:\s+(\d+)/.exec(run('pdfinfo', [f]))![1])
    expect(pages).toBeLessThan(40)
    const raw = run('pdftotext', ['-raw', f, '-']).replace(/\s+/g, ' ')
    expect(raw).toContain('Timeline (10000 entries, UTC)')
    expect(raw).toMatch(/the entries of one type within \d+ min are grouped into one row/)
    expect(raw).toMatch(/\d+ Alert entries/)
    for (const e of big.timeline.filter((x) => x.type === 'incident.note')) expect(raw).toContain(utcTime(e.at))
    expect(raw).toContain(`page ${pages} of ${pages}`)
    expect(run('pdfimages', ['-list', f]).trim().split('\n').slice(2)).toEqual([])
    run('pdftoppm', ['-r', '60', '-png', '-f', '2', '-l', '3', f, join(outDir, 'a4-10000-page')])
    // The HTML export lists every entry.
    const html = (await renderReport(big, 'html', { paper: 'A4' })).data as string
    expect(html.match(/<tr class="entry /g)).toHaveLength(10_000)
  })

  it('stops a print that takes too long with a clear error, and prints again afterwards', async () => {
    await expect(renderReport(report, 'pdf', { paper: 'A4', printPdf: createChromiumPrinter({ timeoutMs: 30 }) })).rejects.toThrow(
      /Printing the PDF took longer than 30 ms and was stopped/,
    )
    const again = await renderReport(report, 'pdf', { paper: 'A4' })
    expect((again.data as Buffer).subarray(0, 5).toString()).toBe('%PDF-')
  })
})

/**
 * The incident report in one of four formats (PDF, HTML, Markdown, JSON), rendered from one IncidentReport.
 *
 * Every format goes the same way: the report is checked against its zod schema (a clear error, nothing
 * written, when it does not match), scrubbed once more (scrub.ts: a secret in an error's context or a
 * note never reaches a file), its timeline put in time order, then written out. The PDF is the HTML
 * printed by Chromium: the face passes its printer (Electron's printToPDF in the desktop app,
 * src/main/pdf-printer.ts); without one, Playwright with a system Chromium (chromium-printer.ts).
 * docs/incident-report.md describes the formats.
 */
import { OpsError } from '../../../shared/contract'
import { INCIDENT_REPORT_SCHEMA_VERSION, incidentReport, type ExportFormat, type IncidentReport } from '../../../shared/incidents'
import { renderHtml } from './html'
import { renderJson } from './json'
import { renderMarkdown } from './markdown'
import { scrubReport } from './scrub'

/** Prints self-contained HTML to PDF: Playwright + a system Chromium in the host and CLI, Electron's printToPDF in the app. */
export type PdfPrinter = (html: string, opts: { paper: 'A4' | 'Letter'; title: string }) => Promise<Buffer>

export interface RenderedReport {
  fileName: string
  mimeType: string
  encoding: 'utf8' | 'base64'
  /** utf8 text, or the PDF's bytes. */
  data: string | Buffer
}

export const MIME_TYPES: Record<ExportFormat, string> = {
  pdf: 'application/pdf',
  html: 'text/html; charset=utf-8',
  md: 'text/markdown; charset=utf-8',
  json: 'application/json',
}

/** Lower-case ASCII letters, digits and single hyphens only, at most `max` characters; never empty. */
export function slugify(s: string, max = 60, fallback = 'report'): string {
  const slug = s
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, max)
    .replace(/-+$/g, '')
  return slug || fallback
}

/** "20261130T1910Z". */
function stamp(ms: number): string {
  return new Date(ms)
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z')
    .replace(/(T\d{4})\d{2}Z$/, '$1Z')
}

/**
 * A file name safe on every system: `incident-<id>-<slug>.<ext>` for an incident, or
 * `incidents-window-<from>-<to>.<ext>` (UTC, to the minute) for a window with no incident declared.
 */
export function reportFileName(r: Pick<IncidentReport, 'incident' | 'title' | 'window'>, format: ExportFormat): string {
  if (r.incident) return `incident-${slugify(r.incident.id, 40, 'x')}-${slugify(r.title || r.incident.title)}.${format}`
  return `incidents-window-${stamp(r.window.from).toLowerCase()}-${stamp(r.window.to).toLowerCase()}.${format}`
}

/** Checked against the schema, scrubbed, timeline in time order: what every format is written from. */
export function prepareReport(report: IncidentReport): IncidentReport {
  const parsed = incidentReport.safeParse(report)
  if (!parsed.success) {
    const first = parsed.error.issues[0]
    throw new OpsError(
      'invalid_report',
      `The report does not match its schema (version ${INCIDENT_REPORT_SCHEMA_VERSION}) at ${first.path.join('.') || 'the top'}: ${first.message}. Nothing was written.`,
    )
  }
  const r = scrubReport(parsed.data)
  // Stable: entries at the same millisecond keep the order core gave them.
  r.timeline = r.timeline
    .map((e, i) => [e, i] as const)
    .sort((a, b) => a[0].at - b[0].at || a[1] - b[1])
    .map(([e]) => e)
  return r
}

export async function renderReport(
  report: IncidentReport,
  format: ExportFormat,
  opts: { paper: 'A4' | 'Letter'; printPdf?: PdfPrinter },
): Promise<RenderedReport> {
  const r = prepareReport(report)
  const fileName = reportFileName(r, format)
  const mimeType = MIME_TYPES[format]
  switch (format) {
    case 'json':
      return { fileName, mimeType, encoding: 'utf8', data: renderJson(r) }
    case 'md':
      return { fileName, mimeType, encoding: 'utf8', data: renderMarkdown(r) }
    case 'html':
      return { fileName, mimeType, encoding: 'utf8', data: renderHtml(r, { paper: opts.paper }) }
    case 'pdf': {
      // Loaded only when needed: the desktop app prints with Electron and never loads Playwright.
      const printPdf = opts.printPdf ?? (await import('./chromium-printer')).createChromiumPrinter()
      const pdf = await printPdf(renderHtml(r, { paper: opts.paper, print: true }), { paper: opts.paper, title: r.title })
      if (pdf.subarray(0, 5).toString('latin1') !== '%PDF-')
        throw new OpsError(
          'pdf_failed',
          'The PDF printer returned something that is not a PDF. Nothing was written; try again or export HTML.',
        )
      return { fileName, mimeType, encoding: 'base64', data: pdf }
    }
    default:
      throw new OpsError('bad_format', `Unknown export format "${String(format)}": use pdf, html, md or json.`)
  }
}
